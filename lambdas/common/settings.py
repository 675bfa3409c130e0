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
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
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
SSM_PARAMETER_PATTERN = r"^/[A-Za-z0-9_.\-/]+$"
# A Secrets Manager secret name (1 to 512 of these characters) or a full secret ARN.
SECRETS_MANAGER_ID_PATTERN = (
    r"^([A-Za-z0-9/_+=.@-]{1,512}"
    r"|arn:aws[a-z-]*:secretsmanager:[a-z]{2}(-[a-z]+)+-\d:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512})$"
)
# The SSM SecureString parameter, in the control plane's region, that contains
# PULUMI_CONFIG_PASSPHRASE: the passphrase of the stacks' secrets provider.
DEFAULT_PULUMI_PASSPHRASE_PARAMETER = "/control-plane/pulumi-config-passphrase"
# A hierarchical parameter name: one or more `/segment`s, without a trailing slash.
PASSPHRASE_PARAMETER_PATTERN = re.compile(r"^(/[A-Za-z0-9_.-]+)+$")
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


class SsmSecret(BaseModel):
    """A secret stored as an SSM Parameter Store SecureString in the environment's region."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["ssm"]
    name: str = Field(min_length=1, max_length=2048, pattern=SSM_PARAMETER_PATTERN)

    def reference(self, region: str) -> dict[str, str]:
        return {"source": self.source, "name": self.name, "region": region}


class SecretsManagerSecret(BaseModel):
    """A Secrets Manager secret, by name or ARN; `key` picks one field of a JSON secret."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["secretsmanager"]
    name: str = Field(
        pattern=SECRETS_MANAGER_ID_PATTERN,
        description="the secret's name in the environment's region, or its full ARN",
    )
    key: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="a top-level key of the secret's JSON SecretString; without it, the whole "
        "SecretString is the value",
    )

    def region(self, environment_region: str) -> str:
        """Return the secret's region: the ARN's, or the environment's for a plain name."""
        if self.name.startswith("arn:"):
            return self.name.split(":")[3]
        return environment_region

    def reference(self, region: str) -> dict[str, str]:
        reference = {"source": self.source, "name": self.name, "region": self.region(region)}
        if self.key is not None:
            reference["jsonKey"] = self.key
        return reference


class StackConfigSecret(BaseModel):
    """A secret already set in the stack's settings file (infra/Pulumi.<stack>.yaml) with
    `pulumi config set --secret`, so only its ciphertext is stored."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["stack_config"]

    def reference(self, region: str) -> dict[str, str]:
        return {"source": self.source}


SECRET_SOURCES = ("ssm", "secretsmanager", "stack_config")
SECRET_SOURCE_FORMS = (
    "{ssm: /parameter/name}, {secretsmanager: name-or-arn, key: json-key} (key optional) "
    "or {stack_config: true}"
)


def _expand_secret_short_form(value: Any) -> Any:
    """Turn the short forms `{ssm: NAME}`, `{secretsmanager: NAME, key: KEY}` and
    `{stack_config: true}` into the `{source: ..., ...}` form that the models validate."""
    if not isinstance(value, dict):
        raise ValueError(f"must be a mapping such as {SECRET_SOURCE_FORMS}")
    named = [source for source in SECRET_SOURCES if source in value]
    if "source" in value:
        if named:
            raise ValueError(
                f"uses both `source` and the short form {named[0]!r}; write one of them"
            )
        return value
    if len(named) != 1:
        found = ", ".join(map(repr, named)) if named else "none"
        raise ValueError(
            f"must name exactly one secret source (found {found}); write {SECRET_SOURCE_FORMS}"
        )
    source = named[0]
    rest = {key: item for key, item in value.items() if key != source}
    if source == "stack_config":
        if value[source] is not True:
            raise ValueError("stack_config must be true: the secret is set in the stack's config")
        return {"source": source, **rest}
    return {"source": source, "name": value[source], **rest}


SecretSource = Annotated[
    SsmSecret | SecretsManagerSecret | StackConfigSecret,
    Field(discriminator="source"),
    BeforeValidator(_expand_secret_short_form),
]


def _check_secret_key(key: str) -> str:
    if not SECRET_KEY_PATTERN.match(key):
        raise ValueError(f"{key!r} is not a Pulumi config key of the form namespace:name")
    return key


SecretKey = Annotated[str, AfterValidator(_check_secret_key)]


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


# The workflow's own limits allow an execution about 2 h 40 min, an estimate that adds them up.
# They are 30 min queued for the lock, 10 min of WaitForTransition, the 60 min CodeBuild
# timeout, the 15 min environment wait, 5 min of EnvironmentBusy retries, and the 20 min
# deployment and rollback waits. An execution still running after this default is probably
# stuck where those limits do not reach, such as a build left in CodeBuild's queue (8 hours by
# default).
DEFAULT_EXPECTED_EXECUTION_SECONDS = 3 * 60 * 60
# A shorter time would count ordinary deployments, whose tasks and waits take minutes.
MIN_EXPECTED_EXECUTION_SECONDS = 60


# A drift check holds the environment's lock for a CodeBuild run of a few minutes, during which
# deployments queue, so checks may not run more often than this.
MIN_DRIFT_CHECK_MINUTES = 15


class DriftCheckSettings(BaseModel):
    """The scheduled drift check of a deployed environment (see lambdas/common/drift.py)."""

    model_config = ConfigDict(extra="forbid")

    every_minutes: int = Field(
        default=6 * 60,
        ge=0,
        description=(
            "minutes between two scheduled checks (an EventBridge rate schedule); 0 turns "
            f"scheduled checks off, otherwise at least {MIN_DRIFT_CHECK_MINUTES}"
        ),
    )
    remediate: StrictBool = Field(
        default=False,
        description=(
            "true: a check that finds drift runs `pulumi up --refresh` to apply the program; "
            "false: it only records and reports the drift"
        ),
    )

    @field_validator("every_minutes")
    @classmethod
    def _check_period(cls, value: int) -> int:
        if 0 < value < MIN_DRIFT_CHECK_MINUTES:
            raise ValueError(
                f"must be 0 (no scheduled checks) or at least {MIN_DRIFT_CHECK_MINUTES}, got "
                f"{value}: each check holds the environment's lock while CodeBuild runs "
                "`pulumi preview --refresh`"
            )
        return value


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
    required_secrets: dict[SecretKey, SecretSource] = Field(
        default_factory=dict,
        description=(
            "Pulumi config key -> where its secret value is stored; only the reference travels "
            "through the workflow"
        ),
    )
    infra_check: Literal["always", "auto", "never"] = Field(
        default="auto",
        description=(
            "always: a drift check (pulumi preview --refresh) on every deployment; auto: skip it "
            "while the program is unchanged and the last check is recent; never: run Pulumi only "
            "to provision or recover"
        ),
    )
    drift_check_max_age_seconds: int = Field(default=6 * 60 * 60, ge=0)
    expected_execution_seconds: int = Field(
        default=DEFAULT_EXPECTED_EXECUTION_SECONDS,
        ge=MIN_EXPECTED_EXECUTION_SECONDS,
        description=(
            "how long an execution of this environment may run before the overdue-execution "
            "check counts it and its CloudWatch alarm fires; the execution is not stopped"
        ),
    )
    version_retention: int = Field(
        default=20,
        ge=1,
        description=(
            "application versions kept, besides those in use, when EB's version quota is hit"
        ),
    )
    recovery: RecoverySettings = Field(default_factory=RecoverySettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    drift_check: DriftCheckSettings = Field(default_factory=DriftCheckSettings)
    readiness: Literal["events", "polling"] = Field(
        default="events",
        description=(
            "events: the waits for the environment end on EB's status-change events, and poll "
            "only when none arrives; polling: they poll from the start, for an environment "
            "whose EB events do not reach the control plane's event bus"
        ),
    )

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
    pulumi_passphrase_parameter: str = Field(
        default=DEFAULT_PULUMI_PASSPHRASE_PARAMETER,
        max_length=1011,
        description=(
            "name of the SSM SecureString parameter, in the control plane's region, that "
            "contains the passphrase of every stack's secrets provider; the CodeBuild project "
            "passes it to each build as PULUMI_CONFIG_PASSPHRASE"
        ),
    )

    @field_validator("pulumi_passphrase_parameter")
    @classmethod
    def _check_passphrase_parameter(cls, value: str) -> str:
        if not PASSPHRASE_PARAMETER_PATTERN.match(value):
            raise ValueError(
                f"{value!r} is not an SSM parameter name: start it with '/' and use letters, "
                "digits and the characters _ . - / only, such as "
                f"{DEFAULT_PULUMI_PASSPHRASE_PARAMETER}"
            )
        return value

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
    except UnicodeDecodeError as error:
        raise SettingsError(
            f"{path} is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    except OSError as error:
        raise SettingsError(f"environments file {path} could not be read: {error}") from None
    if path.suffix == ".json":
        try:
            document = json.loads(text)
        except ValueError as error:
            raise SettingsError(f"{path} is not valid JSON: {error}") from None
        except RecursionError:
            raise SettingsError(f"{path} is not valid JSON: nested too deeply") from None
    else:
        import yaml  # Lambdas receive JSON, so only the CLI and the CDK app need PyYAML.

        from .strict_yaml import load_yaml

        try:
            document = load_yaml(text)
        except (yaml.YAMLError, ValueError) as error:
            raise SettingsError(f"{path} is not valid YAML: {error}") from None
        except RecursionError:
            raise SettingsError(f"{path} is not valid YAML: nested too deeply") from None
    return parse_settings(document, str(path))


@cache
def current_settings() -> Settings:
    """Return the settings named by ENVIRONMENTS_FILE, loaded once per process."""
    return load_settings(os.environ.get("ENVIRONMENTS_FILE", "environments.json"))


STACK_SETTINGS_GLOB = "Pulumi.*.yaml"


def read_stack_config_keys(infra_dir: Path) -> dict[str, dict[str, str]]:
    """Map each stack with a settings file `Pulumi.<stack>.yaml` in `infra_dir` to its config
    keys, each marked `secure` (set with `pulumi config set --secret`, stored encrypted) or
    `plain`. No value is read into the result, so it can ship with the Lambda code."""
    import yaml

    from .strict_yaml import load_yaml

    stacks: dict[str, dict[str, str]] = {}
    for path in sorted(infra_dir.glob(STACK_SETTINGS_GLOB)):
        stack = path.name[len("Pulumi.") : -len(".yaml")]
        try:
            document = load_yaml(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, ValueError) as error:
            raise SettingsError(f"{path} is not valid YAML: {error}") from None
        except RecursionError:
            raise SettingsError(f"{path} is not valid YAML: nested too deeply") from None
        config = document.get("config") if isinstance(document, dict) else None
        if not isinstance(config, dict):
            config = {}
        stacks[stack] = {
            str(key): "secure" if isinstance(value, dict) and "secure" in value else "plain"
            for key, value in config.items()
        }
    return stacks
