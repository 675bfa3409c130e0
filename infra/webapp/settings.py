"""Stack settings read from Pulumi config, checked before any resource is declared."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

DEFAULT_SOLUTION_STACK = "64bit Amazon Linux 2023 v4.7.0 running Python 3.12"


class MissingSecretError(pulumi.RunError):
    """A secret config key that the stack's settings require is not set."""


class InvalidSettingError(pulumi.RunError):
    """A config value is outside its allowed range."""


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

    @property
    def tags(self) -> dict[str, str]:
        """Tags put on every taggable resource of the stack."""
        return {"project": self.project, "environment": self.stack, "managed-by": "pulumi"}


def load_settings() -> WebAppSettings:
    """Read and check the stack config.

    Raises MissingSecretError when the database is on and `db:password` is not set, so the
    program stops before it declares any resource.
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

    return WebAppSettings(
        project=project,
        stack=stack,
        health_check_path=health_check_path,
        instance_type=webapp.get("instanceType") or "t3.small",
        min_instances=min_instances,
        max_instances=max_instances,
        solution_stack=webapp.get("solutionStack") or DEFAULT_SOLUTION_STACK,
        database=database,
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
