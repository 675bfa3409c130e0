"""Interface of the engine's resource providers and the helpers they share."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..aws import ClientFactory
from ..simulation import check_credentials
from ..state import ResourceState, normalize, unwrap_secrets, urn_name

# Properties that the AWS provider fills with `<name>-<7 hex chars>` when the program
# leaves them out (Pulumi autonaming).
AUTONAME_PROPERTIES = {
    "aws:s3/bucketV2:BucketV2": "bucket",
    "aws:s3/bucket:Bucket": "bucket",
    "aws:iam/role:Role": "name",
    "aws:iam/instanceProfile:InstanceProfile": "name",
    "aws:iam/rolePolicy:RolePolicy": "name",
    "aws:iam/policy:Policy": "name",
    "aws:ec2/securityGroup:SecurityGroup": "name",
    "aws:rds/instance:Instance": "identifier",
    "aws:rds/subnetGroup:SubnetGroup": "name",
    "aws:elasticbeanstalk/application:Application": "name",
    "aws:elasticbeanstalk/environment:Environment": "name",
}
LOWERCASE_NAMES = frozenset(
    {"aws:s3/bucketV2:BucketV2", "aws:s3/bucket:Bucket", "aws:rds/instance:Instance"}
)


@dataclass(frozen=True)
class ProviderContext:
    """AWS clients, region and account id that providers act on, and the AWS behaviours
    switched on for this command (see `simulation`)."""

    clients: ClientFactory
    region: str
    account_id: str
    simulations: frozenset[str] = frozenset()

    def client(self, service: str) -> Any:
        return self.clients.client(service, self.region)

    def configure(self, provider_urn: str) -> None:
        """Configure the AWS provider, as the engine does before its first resource operation.

        Raises ProviderError when a simulated credentials failure is switched on.
        """
        check_credentials(self.simulations, provider_urn)


def stable_hex(seed: str, length: int) -> str:
    """Deterministic hex string, so a scenario gives the same ids on every run."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


class ResourceProvider:
    """Create, read, update and delete for one resource type.

    The base class only records resources in state; subclasses that act on the sandbox's
    AWS APIs override the operations they support.
    """

    # Properties whose change needs a new resource (delete, then create).
    replace_properties: frozenset[str] = frozenset()

    def __init__(self, type_token: str, context: ProviderContext) -> None:
        self.type = type_token
        self.context = context

    def check(self, urn: str, inputs: dict[str, Any], old: ResourceState | None) -> dict[str, Any]:
        """Fill autonamed properties: the old value if there is one, else a new name."""
        prop = AUTONAME_PROPERTIES.get(self.type)
        if prop is None or inputs.get(prop) is not None:
            return inputs
        if old is not None and old.inputs.get(prop) is not None:
            return {**inputs, prop: old.inputs[prop]}
        prefix = inputs.get(f"{prop}Prefix")
        base = f"{prefix}" if prefix else f"{urn_name(urn)}-"
        name = f"{base}{stable_hex(urn, 7)}"
        if self.type in LOWERCASE_NAMES:
            name = name.lower()
        return {**inputs, prop: name}

    def diff(self, old: ResourceState, inputs: dict[str, Any]) -> set[str]:
        """Names of the top-level inputs whose value differs from the state's."""
        return diff_properties(old.inputs, inputs)

    def create(self, urn: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        resource_id = self.new_id(urn, inputs)
        return resource_id, {**inputs, **self.computed_outputs(resource_id, inputs)}

    def update(
        self, old: ResourceState, inputs: dict[str, Any], changed: set[str]
    ) -> dict[str, Any]:
        return {**old.outputs, **inputs, **self.computed_outputs(old.id, inputs)}

    def delete(self, old: ResourceState) -> None:
        """Delete the resource. The base class has nothing to delete outside state."""

    def read(self, old: ResourceState) -> ResourceState | None:
        """Return the refreshed state, or None when the resource no longer exists."""
        return old

    def new_id(self, urn: str, inputs: dict[str, Any]) -> str:
        return f"{urn_name(urn)}-{stable_hex(urn, 8)}"

    def computed_outputs(self, resource_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """Outputs the provider computes beyond the inputs (ARNs, addresses, ...)."""
        return {"id": resource_id}


def diff_properties(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    changed = set()
    for key in set(old) | set(new):
        if comparable(old.get(key)) != comparable(new.get(key)):
            changed.add(key)
    return changed


def comparable(value: Any) -> Any:
    return normalize(unwrap_secrets(value))


def plain(value: Any) -> Any:
    """Plain value for an AWS call: secrets unwrapped, integral floats as ints."""
    return normalize(unwrap_secrets(value))
