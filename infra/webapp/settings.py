"""Stack settings read from Pulumi config, checked before any resource is declared.

Optional parts of the stack, each off unless its keys are set:

- `webapp:domains` (a list) with `webapp:hostedZoneId` or `webapp:hostedZoneName`: a
  CloudFront distribution on those domains, with an ACM certificate and Route 53 records.
- `webapp:sshPublicKey`: an EC2 key pair for SSH to the EB instances.
- `webapp:staticSite` and `webapp:dashboardBucket` (true or false): private S3 buckets.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pulumi

DEFAULT_SOLUTION_STACK = "64bit Amazon Linux 2023 v4.7.0 running Python 3.12"


class MissingSecretError(pulumi.RunError):
    """A secret config key that the stack's settings require is not set."""


class InvalidSettingError(pulumi.RunError):
    """A config value is outside its allowed range, or config keys contradict each other."""


# A lower-case DNS host name with two or more labels of 1 to 63 letters, digits or inner
# hyphens, optionally a wildcard such as `*.example.com`. Its 253-character limit is checked
# separately.
_DOMAIN_PATTERN = re.compile(
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
)
# Route 53 hosted zone ids, such as Z0123456789ABCDEFGHIJ, without the /hostedzone/ prefix.
_HOSTED_ZONE_ID_PATTERN = re.compile(r"^Z[A-Z0-9]{1,31}$")
# Key types that EC2 ImportKeyPair accepts: RSA and ED25519 in OpenSSH format.
_SSH_KEY_TYPES = ("ssh-rsa", "ssh-ed25519")


@dataclass(frozen=True)
class DatabaseSettings:
    """PostgreSQL instance settings from the `db:` config namespace."""

    password: pulumi.Output[str]
    instance_class: str
    allocated_storage_gb: int
    engine_version: str
    name: str
    username: str
    deletion_protection: bool
    skip_final_snapshot: bool


@dataclass(frozen=True)
class DomainSettings:
    """Custom domains that CloudFront serves, from `webapp:domains` and the hosted zone keys.

    Exactly one of `hosted_zone_id` and `hosted_zone_name` is set.
    """

    domains: tuple[str, ...]
    hosted_zone_id: str | None
    hosted_zone_name: str | None


@dataclass(frozen=True)
class WebAppSettings:
    """Environment settings from the `webapp:` config namespace."""

    project: str
    stack: str
    health_check_path: str
    instance_type: str
    min_instances: int
    max_instances: int
    solution_stack: str
    database: DatabaseSettings | None
    domain: DomainSettings | None
    ssh_public_key: str | None
    static_site_bucket: bool
    dashboard_bucket: bool

    @property
    def tags(self) -> dict[str, str]:
        """Tags put on every taggable resource of the stack."""
        return {"project": self.project, "environment": self.stack, "managed-by": "pulumi"}


def load_settings() -> WebAppSettings:
    """Read and check the stack config.

    Raises MissingSecretError when the database is on and `db:password` is not set, and
    InvalidSettingError for a bad or inconsistent value, so the program stops before it
    declares any resource.
    """
    project = pulumi.get_project()
    stack = pulumi.get_stack()
    webapp = pulumi.Config("webapp")

    health_check_path = webapp.get("healthCheckPath") or "/health"
    if not health_check_path.startswith("/"):
        raise InvalidSettingError(
            f"webapp:healthCheckPath must start with '/', got {health_check_path!r}. "
            f"Fix it with: pulumi config set webapp:healthCheckPath /health --stack {stack}"
        )

    min_instances = webapp.get_int("minInstances") or 1
    max_instances = webapp.get_int("maxInstances") or max(min_instances, 2)
    if not 1 <= min_instances <= max_instances:
        raise InvalidSettingError(
            f"webapp:minInstances ({min_instances}) must be at least 1 and at most "
            f"webapp:maxInstances ({max_instances}). Fix the values in Pulumi.{stack}.yaml."
        )

    database = _load_database_settings(stack) if webapp.get_bool("database") else None
    domain = _load_domain_settings(webapp, stack)
    ssh_public_key = _load_ssh_public_key(webapp, stack)

    return WebAppSettings(
        project=project,
        stack=stack,
        health_check_path=health_check_path,
        instance_type=webapp.get("instanceType") or "t3.small",
        min_instances=min_instances,
        max_instances=max_instances,
        solution_stack=webapp.get("solutionStack") or DEFAULT_SOLUTION_STACK,
        database=database,
        domain=domain,
        ssh_public_key=ssh_public_key,
        static_site_bucket=_get_bool(webapp, "staticSite", default=False),
        dashboard_bucket=_get_bool(webapp, "dashboardBucket", default=False),
    )


def _load_database_settings(stack: str) -> DatabaseSettings:
    db = pulumi.Config("db")
    password = db.get_secret("password")
    if password is None:
        raise MissingSecretError(
            f"Missing required secret config key 'db:password' for stack '{stack}': the "
            "database is turned on (webapp:database: true) and its master password comes "
            "only from secret config. Set it with: "
            f"pulumi config set --secret db:password <value> --stack {stack}"
        )

    is_dev = stack == "dev"
    return DatabaseSettings(
        password=password,
        instance_class=db.get("instanceClass") or "db.t4g.micro",
        allocated_storage_gb=db.get_int("allocatedStorage") or 20,
        engine_version=db.get("engineVersion") or "16",
        name=db.get("name") or "webapp",
        username=db.get("username") or "webapp",
        deletion_protection=_get_bool(db, "deletionProtection", default=not is_dev),
        skip_final_snapshot=_get_bool(db, "skipFinalSnapshot", default=is_dev),
    )


def _get_bool(config: pulumi.Config, key: str, *, default: bool) -> bool:
    value = config.get_bool(key)
    return default if value is None else value


def _load_domain_settings(webapp: pulumi.Config, stack: str) -> DomainSettings | None:
    hosted_zone_id = webapp.get("hostedZoneId")
    hosted_zone_name = webapp.get("hostedZoneName")
    raw_domains = webapp.get("domains")

    if raw_domains is None:
        for key, value in (("hostedZoneId", hosted_zone_id), ("hostedZoneName", hosted_zone_name)):
            if value is not None:
                raise InvalidSettingError(
                    f"webapp:{key} is set but webapp:domains is not, so no domain uses the "
                    "hosted zone. Set the domains with: pulumi config set --path "
                    f"'webapp:domains[0]' <domain> --stack {stack}, or remove the key with: "
                    f"pulumi config rm webapp:{key} --stack {stack}"
                )
        return None

    domains = _parse_domains(raw_domains, stack)
    hosted_zone_name = _check_hosted_zone(domains, hosted_zone_id, hosted_zone_name, stack)

    return DomainSettings(
        domains=domains,
        hosted_zone_id=hosted_zone_id,
        hosted_zone_name=hosted_zone_name,
    )


def _check_hosted_zone(
    domains: tuple[str, ...], hosted_zone_id: str | None, hosted_zone_name: str | None, stack: str
) -> str | None:
    """Check that exactly one valid hosted zone key is set.

    Returns the zone name in lower case without a trailing dot, or None for a zone id.
    """
    if hosted_zone_id is None and hosted_zone_name is None:
        raise InvalidSettingError(
            "webapp:domains is set, but neither webapp:hostedZoneId nor webapp:hostedZoneName "
            "is. The certificate's validation records and the domains' alias records go into "
            "that Route 53 hosted zone. Set one with: pulumi config set webapp:hostedZoneId "
            f"<zone-id> --stack {stack}, or: pulumi config set webapp:hostedZoneName "
            f"<zone-name> --stack {stack}"
        )
    if hosted_zone_id is not None and hosted_zone_name is not None:
        raise InvalidSettingError(
            "webapp:hostedZoneId and webapp:hostedZoneName are both set, but only one may be. "
            f"Remove one with: pulumi config rm webapp:hostedZoneName --stack {stack}"
        )

    if hosted_zone_id is not None and not _HOSTED_ZONE_ID_PATTERN.match(hosted_zone_id):
        raise InvalidSettingError(
            f"webapp:hostedZoneId must be a Route 53 hosted zone id such as "
            f"Z0123456789ABCDEFGHIJ, got {hosted_zone_id!r}. Fix it with: pulumi config set "
            f"webapp:hostedZoneId <zone-id> --stack {stack}"
        )

    if hosted_zone_name is not None:
        hosted_zone_name = hosted_zone_name.lower().removesuffix(".")
        outside = [d for d in domains if not _is_in_zone(d, hosted_zone_name)]
        if outside:
            raise InvalidSettingError(
                f"webapp:domains {outside} are not in the hosted zone {hosted_zone_name!r} "
                "named by webapp:hostedZoneName. Fix the zone with: pulumi config set "
                f"webapp:hostedZoneName <zone-name> --stack {stack}, or the domains with: "
                f"pulumi config set --path 'webapp:domains[0]' <domain> --stack {stack}"
            )

    return hosted_zone_name


def _parse_domains(raw_domains: str, stack: str) -> tuple[str, ...]:
    """Parse `webapp:domains`, which Pulumi passes to the program as a JSON list."""
    fix = (
        "Set each domain with: pulumi config set --path 'webapp:domains[0]' www.example.com "
        f"--stack {stack} (then [1], [2], ... for more)"
    )
    try:
        value = json.loads(raw_domains)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidSettingError(
            f"webapp:domains must be a list of domain names, got {raw_domains!r}. {fix}"
        )
    if not value:
        raise InvalidSettingError(f"webapp:domains must list at least one domain name. {fix}")

    domains = tuple(item.strip().lower() for item in value)
    invalid = [d for d in domains if len(d) > 253 or not _DOMAIN_PATTERN.match(d)]
    if invalid:
        raise InvalidSettingError(
            f"webapp:domains contains invalid domain names {invalid}. Each must be a host "
            "name such as www.example.com or *.example.com, without a scheme, path or "
            f"trailing dot. {fix}"
        )
    duplicates = sorted({d for d in domains if domains.count(d) > 1})
    if duplicates:
        raise InvalidSettingError(
            f"webapp:domains lists {duplicates} more than once. Remove the repeated entry "
            f"with: pulumi config rm --path 'webapp:domains[<index>]' --stack {stack}"
        )
    return domains


def _is_in_zone(domain: str, zone_name: str) -> bool:
    name = domain.removeprefix("*.")
    return name == zone_name or name.endswith(f".{zone_name}")


def _load_ssh_public_key(webapp: pulumi.Config, stack: str) -> str | None:
    public_key = webapp.get("sshPublicKey")
    if public_key is None:
        return None
    public_key = public_key.strip()
    fix = (
        "Set it with: pulumi config set webapp:sshPublicKey "
        f'"$(cat ~/.ssh/id_ed25519.pub)" --stack {stack}'
    )
    # The value is never echoed: a private key pasted by mistake must not reach the logs.
    if "PRIVATE KEY" in public_key:
        raise InvalidSettingError(
            "webapp:sshPublicKey contains a private key, but it must be the public key (the "
            f".pub file). Remove the private key from the stack config and rotate it. {fix}"
        )
    key_type, _, key_body = public_key.partition(" ")
    if key_type not in _SSH_KEY_TYPES or not key_body.strip():
        raise InvalidSettingError(
            "webapp:sshPublicKey must be an OpenSSH public key that starts with "
            f"{' or '.join(_SSH_KEY_TYPES)}, the key types EC2 imports. {fix}"
        )
    return public_key
