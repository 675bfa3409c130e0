"""Stack state in Pulumi's checkpoint format (version 3), with secrets encrypted at rest.

In memory, a secret value is wrapped as `{SECRET_SIG_KEY: SECRET_SIG, "value": plaintext}`,
the same shape the Pulumi SDK uses on the wire. In the checkpoint it is stored as
`{SECRET_SIG_KEY: SECRET_SIG, "ciphertext": "v1:..."}`, where the ciphertext encrypts the
JSON encoding of the value (`sdk/go/common/apitype/core.go`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .crypto import Crypter

SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
STACK_TYPE = "pulumi:pulumi:Stack"
PROVIDER_TYPE_PREFIX = "pulumi:providers:"
CHECKPOINT_VERSION = 3

# Fields of a checkpoint resource (ResourceV3) that this module reads and writes; any other
# field found in a checkpoint is kept as it is.
_KNOWN_FIELDS = frozenset(
    {
        "urn",
        "custom",
        "id",
        "type",
        "inputs",
        "outputs",
        "parent",
        "protect",
        "dependencies",
        "propertyDependencies",
        "provider",
        "additionalSecretOutputs",
        "created",
        "modified",
    }
)


def make_urn(stack: str, project: str, qualified_type: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{project}::{qualified_type}::{name}"


def urn_qualified_type(urn: str) -> str:
    return urn.split("::")[2]


def urn_name(urn: str) -> str:
    return urn.split("::", 3)[3]


def child_qualified_type(parent_urn: str, type_token: str) -> str:
    """Qualified type of a child: the parent's chain plus `$type`, without the root stack."""
    if not parent_urn:
        return type_token
    parent_type = urn_qualified_type(parent_urn)
    if parent_type == STACK_TYPE:
        return type_token
    return f"{parent_type}${type_token}"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def wrap_secret(value: Any) -> dict[str, Any]:
    return {SECRET_SIG_KEY: SECRET_SIG, "value": value}


def unwrap_secrets(value: Any) -> Any:
    """Plain value with every secret wrapper removed."""
    if is_secret(value):
        return unwrap_secrets(value.get("value"))
    if isinstance(value, dict):
        return {key: unwrap_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(item) for item in value]
    return value


def contains_unknown(value: Any) -> bool:
    """Whether a value contains a preview's unknown (`pulumi.output.Unknown`) anywhere."""
    # Imported here so that commands that never run the program skip importing pulumi.
    from pulumi.output import Unknown

    if isinstance(value, Unknown):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(item) for item in value.values())
    if isinstance(value, list):
        return any(contains_unknown(item) for item in value)
    return False


def normalize(value: Any) -> Any:
    """JSON-ready value: integral floats become ints (the SDK sends every number as float)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


@dataclass
class ResourceState:
    """One resource of a checkpoint, with plaintext (wrapped) secrets."""

    urn: str
    type: str
    custom: bool
    id: str = ""
    parent: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    provider: str = ""
    protect: bool = False
    additional_secret_outputs: list[str] = field(default_factory=list)
    created: str = ""
    modified: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return urn_name(self.urn)

    @property
    def is_provider(self) -> bool:
        return self.type.startswith(PROVIDER_TYPE_PREFIX)


@dataclass
class Snapshot:
    """The `latest` deployment of a checkpoint."""

    resources: list[ResourceState] = field(default_factory=list)
    pending_operations: list[dict[str, Any]] = field(default_factory=list)
    salt_state: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    exists: bool = False

    def find(self, urn: str) -> ResourceState | None:
        return next((resource for resource in self.resources if resource.urn == urn), None)

    @property
    def root(self) -> ResourceState | None:
        return next((r for r in self.resources if r.type == STACK_TYPE), None)

    @property
    def outputs(self) -> dict[str, Any]:
        root = self.root
        return dict(root.outputs) if root else {}


class _Cipher:
    """Encrypts and decrypts secret values, building the crypter only on first use."""

    def __init__(self, get_crypter: Callable[[], Crypter]) -> None:
        self._get_crypter = get_crypter
        self._crypter: Crypter | None = None

    def _ensure(self) -> Crypter:
        if self._crypter is None:
            self._crypter = self._get_crypter()
        return self._crypter

    def encrypt_tree(self, value: Any) -> Any:
        if is_secret(value):
            plaintext = json.dumps(normalize(unwrap_secrets(value)), separators=(",", ":"))
            return {SECRET_SIG_KEY: SECRET_SIG, "ciphertext": self._ensure().encrypt(plaintext)}
        if isinstance(value, dict):
            return {key: self.encrypt_tree(item) for key, item in sorted(value.items())}
        if isinstance(value, list):
            return [self.encrypt_tree(item) for item in value]
        return normalize(value)

    def decrypt_tree(self, value: Any) -> Any:
        if is_secret(value):
            if "ciphertext" in value:
                return wrap_secret(json.loads(self._ensure().decrypt(value["ciphertext"])))
            return wrap_secret(value.get("plaintext", value.get("value")))
        if isinstance(value, dict):
            return {key: self.decrypt_tree(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.decrypt_tree(item) for item in value]
        return value


def load_snapshot(checkpoint: dict[str, Any], get_crypter: Callable[[], Crypter]) -> Snapshot:
    """Parse a versioned checkpoint document (`{"version": 3, "checkpoint": {...}}`)."""
    latest = (checkpoint.get("checkpoint") or {}).get("latest")
    if not latest:
        return Snapshot(exists=True)

    cipher = _Cipher(get_crypter)
    resources = [_load_resource(raw, cipher) for raw in latest.get("resources") or []]
    providers = latest.get("secrets_providers") or {}
    return Snapshot(
        resources=resources,
        pending_operations=list(latest.get("pending_operations") or []),
        salt_state=(providers.get("state") or {}).get("salt"),
        metadata=dict(latest.get("metadata") or {}),
        exists=True,
    )


def load_resource(raw: dict[str, Any], get_crypter: Callable[[], Crypter]) -> ResourceState:
    """Parse one checkpoint resource, such as the resource of a pending operation."""
    return _load_resource(raw, _Cipher(get_crypter))


def _load_resource(raw: dict[str, Any], cipher: _Cipher) -> ResourceState:
    return ResourceState(
        urn=raw["urn"],
        type=raw["type"],
        custom=bool(raw.get("custom")),
        id=raw.get("id") or "",
        parent=raw.get("parent") or "",
        inputs=cipher.decrypt_tree(raw.get("inputs") or {}),
        outputs=cipher.decrypt_tree(raw.get("outputs") or {}),
        dependencies=list(raw.get("dependencies") or []),
        property_dependencies=dict(raw.get("propertyDependencies") or {}),
        provider=raw.get("provider") or "",
        protect=bool(raw.get("protect")),
        additional_secret_outputs=list(raw.get("additionalSecretOutputs") or []),
        created=raw.get("created") or "",
        modified=raw.get("modified") or "",
        extra={key: value for key, value in raw.items() if key not in _KNOWN_FIELDS},
    )


def dump_checkpoint(
    stack_fqn: str,
    snapshot: Snapshot,
    get_crypter: Callable[[], Crypter],
    manifest: dict[str, Any],
) -> dict[str, Any]:
    """Build the versioned checkpoint document for `snapshot`."""
    cipher = _Cipher(get_crypter)
    # Resources first: encrypting the first secret may create the salt (`get_crypter`
    # then sets snapshot.salt_state), which the secrets provider entry records.
    resources = [_dump_resource(resource, cipher) for resource in snapshot.resources]
    latest: dict[str, Any] = {"manifest": manifest}
    if snapshot.salt_state:
        latest["secrets_providers"] = {
            "type": "passphrase",
            "state": {"salt": snapshot.salt_state},
        }
    latest["resources"] = resources
    if snapshot.pending_operations:
        latest["pending_operations"] = snapshot.pending_operations
    latest["metadata"] = snapshot.metadata
    return {"version": CHECKPOINT_VERSION, "checkpoint": {"stack": stack_fqn, "latest": latest}}


def _dump_resource(resource: ResourceState, cipher: _Cipher) -> dict[str, Any]:
    raw: dict[str, Any] = {"urn": resource.urn, "custom": resource.custom}
    if resource.custom:
        raw["id"] = resource.id
    raw["type"] = resource.type
    raw["inputs"] = cipher.encrypt_tree(resource.inputs)
    raw["outputs"] = cipher.encrypt_tree(resource.outputs)
    if resource.parent:
        raw["parent"] = resource.parent
    if resource.protect:
        raw["protect"] = True
    if resource.dependencies:
        raw["dependencies"] = resource.dependencies
    if resource.provider:
        raw["provider"] = resource.provider
    if resource.property_dependencies:
        raw["propertyDependencies"] = resource.property_dependencies
    if resource.additional_secret_outputs:
        raw["additionalSecretOutputs"] = resource.additional_secret_outputs
    if resource.created:
        raw["created"] = resource.created
    if resource.modified:
        raw["modified"] = resource.modified
    raw.update(resource.extra)
    return raw


def empty_checkpoint(stack_fqn: str) -> dict[str, Any]:
    """Checkpoint of a stack that was created but never updated (`latest` is absent)."""
    return {"version": CHECKPOINT_VERSION, "checkpoint": {"stack": stack_fqn}}
