"""The runner's contract with the CodeBuild build: environment variables and pinned versions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigurationMissing
from .secrets import SecretReference, parse_secret_references

# `check-only` previews and reports drift without changing anything (a scheduled drift check).
CHECK_ONLY = "check-only"
ACTIONS = ("up", "recover", "check", CHECK_ONLY)
# Actions whose failures are PreviewFailed, because they never run `up` after a failed preview.
PREVIEW_ACTIONS = ("check", CHECK_ONLY)
STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class RunnerSettings:
    """Validated build environment.

    PULUMI_SECRETS maps a Pulumi config key to where its value is stored (SSM Parameter Store,
    Secrets Manager or the stack's config), so the values never pass through the environment.
    """

    action: str
    stack: str
    backend_url: str
    result_uri: str
    request_id: str
    secrets: dict[str, SecretReference] = field(default_factory=dict)
    lock_retries: int = 3
    lock_retry_seconds: float = 10.0
    cancel_stale_locks: bool = False
    stale_lock_seconds: float = 3600.0
    eb_wait_timeout_seconds: float = 900.0
    eb_wait_poll_seconds: float = 20.0


def parse_result_uri(uri: str) -> tuple[str, str]:
    """Split `s3://bucket/key` into bucket and key."""
    match = re.match(r"^s3://([^/]+)/(.+)$", uri)
    if not match:
        raise ConfigurationMissing(
            f"RESULT_URI={uri!r} is invalid: expected s3://<bucket>/<key>. The build must "
            "set it to where the runner writes its result document."
        )
    return match.group(1), match.group(2)


def load_settings(environ: dict[str, str]) -> RunnerSettings:
    """Read and check the build environment; raise ConfigurationMissing on a bad value."""
    action = _required(environ, "PULUMI_ACTION")
    if action not in ACTIONS:
        raise ConfigurationMissing(
            f"PULUMI_ACTION={action!r} is invalid: expected one of {', '.join(ACTIONS)}."
        )

    stack = _required(environ, "PULUMI_STACK")
    if not STACK_NAME.match(stack):
        raise ConfigurationMissing(
            f"PULUMI_STACK={stack!r} is invalid: use letters, digits, '-', '_' and '.' only."
        )

    backend_url = _required(environ, "PULUMI_BACKEND_URL")
    if not environ.get("PULUMI_CONFIG_PASSPHRASE") and not environ.get(
        "PULUMI_CONFIG_PASSPHRASE_FILE"
    ):
        raise ConfigurationMissing(
            "PULUMI_CONFIG_PASSPHRASE is not set: the stacks use the passphrase secrets "
            "provider, so the build must pass the passphrase (for example from a "
            "PARAMETER_STORE environment variable of the CodeBuild project)."
        )

    result_uri = _required(environ, "RESULT_URI")
    parse_result_uri(result_uri)

    return RunnerSettings(
        action=action,
        stack=stack,
        backend_url=backend_url,
        result_uri=result_uri,
        request_id=environ.get("CONTROL_PLANE_REQUEST_ID", ""),
        secrets=parse_secret_references(environ.get("PULUMI_SECRETS", "")),
        lock_retries=_int(environ, "PULUMI_LOCK_RETRIES", 3),
        lock_retry_seconds=_float(environ, "PULUMI_LOCK_RETRY_SECONDS", 10.0),
        cancel_stale_locks=_bool(environ, "PULUMI_CANCEL_STALE_LOCKS"),
        stale_lock_seconds=_float(environ, "PULUMI_STALE_LOCK_SECONDS", 3600.0),
        eb_wait_timeout_seconds=_float(environ, "EB_WAIT_TIMEOUT_SECONDS", 900.0),
        eb_wait_poll_seconds=_positive_float(environ, "EB_WAIT_POLL_SECONDS", 20.0),
    )


def _required(environ: dict[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationMissing(f"{name} is not set; the build must set it for the runner.")
    return value


def _int(environ: dict[str, str], name: str, default: int) -> int:
    try:
        value = int(environ.get(name, default))
    except ValueError as error:
        raise ConfigurationMissing(f"{name}={environ[name]!r} is not an integer.") from error
    if value < 0:
        raise ConfigurationMissing(f"{name} must be 0 or more, got {value}.")
    return value


def _float(environ: dict[str, str], name: str, default: float) -> float:
    try:
        value = float(environ.get(name, default))
    except ValueError as error:
        raise ConfigurationMissing(f"{name}={environ[name]!r} is not a number.") from error
    if value < 0:
        raise ConfigurationMissing(f"{name} must be 0 or more, got {value}.")
    return value


def _positive_float(environ: dict[str, str], name: str, default: float) -> float:
    value = _float(environ, name, default)
    if value == 0:
        raise ConfigurationMissing(f"{name} must be more than 0, got {value}.")
    return value


def _bool(environ: dict[str, str], name: str) -> bool:
    """Read a flag that only an explicit `true` turns on.

    Any text other than `true` and `false` raises, so a typo never changes what the runner does.
    """
    value = environ.get(name, "")
    if value.lower() in ("", "false"):
        return False
    if value.lower() == "true":
        return True
    raise ConfigurationMissing(f"{name}={value!r} is invalid: set it to true or false.")


def read_versions(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines of versions.env (comments and blank lines skipped)."""
    versions: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        versions[key.strip()] = value.strip().strip('"')
    return versions


def read_project_name(infra_dir: Path) -> str:
    """Project name from Pulumi.yaml."""
    project_file = infra_dir / "Pulumi.yaml"
    name = (yaml.safe_load(project_file.read_text()) or {}).get("name")
    if not name:
        raise ConfigurationMissing(f"{project_file} has no project name ('name:').")
    return str(name)
