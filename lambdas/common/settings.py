"""The environments file: which environments the control plane deploys and how.

One pydantic model validates the file for the CDK app (at synth), the Lambdas and the CLI, so a
bad file fails early with every problem listed by key.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    field_validator,
    model_validator,
)

from .github_settings import GitHubSettings
from .waits import DEPLOYMENT_WAIT_SECONDS

SECRET_KEY_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*:[A-Za-z][A-Za-z0-9_.-]*$")
# Hosts where a plain http:// Pulumi Cloud URL is accepted: a local stand-in, never a remote API.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def is_pulumi_cloud_url(url: str) -> bool:
    """Return whether a backend URL names the Pulumi Cloud API (https://, or http:// on
    loopback)."""
    parts = urlparse(url)
    if parts.scheme == "https":
        return bool(parts.netloc)
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS


class SettingsError(ValueError):
    """The environments file is missing or invalid."""


class SecretSource(BaseModel):
    """The store of a required secret; only its reference travels through the workflow."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["ssm"] = Field(description="ssm: an SSM Parameter Store SecureString")
    name: str = Field(min_length=1, pattern=r"^/[A-Za-z0-9_.\-/]+$")


class HealthSettings(BaseModel):
    """The Elastic Beanstalk health that counts as healthy for a deployment."""

    model_config = ConfigDict(extra="forbid")

    accept_yellow: StrictBool = Field(
        default=False,
        description=(
            "true: Yellow (Warning) counts as healthy once it has lasted settling_seconds; "
            "false: only Green does"
        ),
    )
    settling_seconds: int = Field(
        default=120,
        ge=0,
        le=DEPLOYMENT_WAIT_SECONDS // 2,
        description=(
            "how long the environment must stay Ready and Yellow or better before Yellow is "
            f"accepted; at most half of the {DEPLOYMENT_WAIT_SECONDS} s deployment wait"
        ),
    )


class RecoverySettings(BaseModel):
    """Automatic recovery of a terminated environment, and its circuit breaker."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=True, description="false: a terminated environment waits for an operator"
    )
    max_recoveries: int = Field(
        default=3,
        ge=1,
        description="recoveries within window_seconds after which the circuit breaker opens",
    )
    window_seconds: int = Field(default=3600, ge=60)


class EnvironmentSettings(BaseModel):
    """One deployable environment: its Pulumi stack and its Elastic Beanstalk application."""

    model_config = ConfigDict(extra="forbid")

    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    pulumi_project: str = Field(min_length=1)
    pulumi_stack: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    backend_url: str = Field(
        description=(
            "Pulumi backend: s3://{state_bucket} (the control plane's DIY state bucket) or the "
            "Pulumi Cloud API, e.g. https://api.pulumi.com"
        )
    )
    pulumi_org: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
        description="Pulumi Cloud organization of the stack; only with an https:// backend_url",
    )
    pulumi_token_secret: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$",
        description=(
            "name of the Secrets Manager secret that stores the Pulumi Cloud access token; "
            "only the name travels through the workflow"
        ),
    )
    eb_application: str = Field(min_length=1, max_length=100)
    eb_environment: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{2,38}[A-Za-z0-9]$",
        description=(
            "EB environment name; by default <pulumi_project>-<pulumi_stack>, the name the "
            "Pulumi program in infra/ gives it"
        ),
    )
    health_path: str = Field(default="/health", pattern=r"^/")
    required_secrets: dict[str, SecretSource] = Field(default_factory=dict)
    infra_check: Literal["always", "auto", "never"] = Field(
        default="auto",
        description=(
            "always: a drift check (pulumi preview --refresh) on every deployment; auto: skip it "
            "while the program is unchanged and the last check is recent; never: run Pulumi only "
            "to provision or recover"
        ),
    )
    drift_check_max_age_seconds: int = Field(default=6 * 60 * 60, ge=0)
    version_retention: int = Field(
        default=20,
        ge=1,
        description=(
            "application versions kept, besides those in use, when EB's version quota is hit"
        ),
    )
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    health: HealthSettings = Field(default_factory=HealthSettings)

    @property
    def eb_environment_name(self) -> str:
        """Return the EB environment's name, which EventBridge events carry."""
        return self.eb_environment or f"{self.pulumi_project}-{self.pulumi_stack}"

    @field_validator("backend_url")
    @classmethod
    def _check_backend(cls, value: str) -> str:
        if not value.startswith("s3://") and not is_pulumi_cloud_url(value):
            raise ValueError(
                "must be an s3:// URL (the Pulumi DIY S3 backend) or the https:// URL of the "
                "Pulumi Cloud API (plain http:// only on 127.0.0.1 or localhost)"
            )
        return value

    @model_validator(mode="after")
    def _check_pulumi_cloud_fields(self) -> EnvironmentSettings:
        if is_pulumi_cloud_url(self.backend_url):
            missing = [
                name
                for name in ("pulumi_org", "pulumi_token_secret")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"{' and '.join(missing)} must be set when backend_url is a Pulumi Cloud "
                    "URL: the outputs are read from its API with that organization and token"
                )
        elif self.pulumi_org is not None or self.pulumi_token_secret is not None:
            raise ValueError(
                "pulumi_org and pulumi_token_secret are used only with an https:// backend_url "
                "(Pulumi Cloud); remove them for an s3:// backend"
            )
        return self

    @field_validator("required_secrets", mode="before")
    @classmethod
    def _check_secret_keys(cls, value: Any) -> Any:
        if isinstance(value, dict):
            bad = [key for key in value if not SECRET_KEY_PATTERN.match(str(key))]
            if bad:
                raise ValueError(
                    f"{', '.join(map(repr, bad))}: not Pulumi config keys of the form "
                    "namespace:name"
                )
        return value

    def resolved_backend_url(self, state_bucket: str) -> str:
        return self.backend_url.replace("{state_bucket}", state_bucket)


class Settings(BaseModel):
    """The whole environments file."""

    model_config = ConfigDict(extra="forbid")

    environments: dict[str, EnvironmentSettings] = Field(min_length=1)
    github: GitHubSettings | None = Field(
        default=None,
        description="GitHub Actions jobs that may deploy through the OIDC role; none without it",
    )

    @field_validator("environments")
    @classmethod
    def _check_names(cls, value: dict[str, EnvironmentSettings]) -> dict[str, EnvironmentSettings]:
        problem = _environment_name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def environment(self, name: str) -> EnvironmentSettings:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise SettingsError(f"environment {name!r} is not defined (known: {known})") from None


ENVIRONMENT_NAME_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,30}")


def _environment_name_problem(environments: Any) -> str | None:
    if not isinstance(environments, dict):
        return None
    bad = [name for name in environments if not ENVIRONMENT_NAME_PATTERN.fullmatch(str(name))]
    if not bad:
        return None
    return (
        f"environment names {', '.join(map(repr, bad))} must be 1 to 31 lowercase letters, "
        "digits and dashes, starting with a letter"
    )


def format_validation_error(error: ValidationError) -> str:
    """Render every pydantic problem as ``key.path: message`` lines."""
    lines = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"{location}: {problem['msg']}")
    return "\n".join(lines)


def parse_settings(document: object, source: str) -> Settings:
    """Validate a parsed environments file, reporting every problem at once."""
    environments = document.get("environments") if isinstance(document, dict) else None
    name_problem = _environment_name_problem(environments)
    problems = [f"environments: {name_problem}"] if name_problem else []
    try:
        settings = Settings.model_validate(document)
    except ValidationError as error:
        lines = format_validation_error(error).splitlines()
        problems.extend(line for line in lines if name_problem is None or name_problem not in line)
    if problems:
        listed = "\n".join(problems)
        raise SettingsError(
            f"{source} is invalid:\n{listed}\nFix these keys and run the command again."
        )
    return settings


def load_settings(path: str | Path) -> Settings:
    """Load and validate an environments file (.yaml or .json)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            f"environments file {path} not found; set ENVIRONMENTS_FILE or create it"
        ) from None
    if path.suffix == ".json":
        document = json.loads(text)
    else:
        import yaml  # Lambdas receive JSON, so only the CLI and the CDK app need PyYAML.

        from .strict_yaml import load_yaml

        try:
            document = load_yaml(text)
        except (yaml.YAMLError, ValueError) as error:
            raise SettingsError(f"{path} is not valid YAML: {error}") from None
    return parse_settings(document, str(path))


@cache
def current_settings() -> Settings:
    """Return the settings named by ENVIRONMENTS_FILE, loaded once per process."""
    return load_settings(os.environ.get("ENVIRONMENTS_FILE", "environments.json"))
