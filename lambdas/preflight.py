"""Preflight: resolve the environment's stack, check its secrets and the bundle.

Each required secret is checked where environments.yaml declares it, and no value is read: an
SSM parameter with DescribeParameters, a Secrets Manager secret with DescribeSecret, a stack
config secret in the stack settings that ship with the Lambda code. Every missing secret is
reported at once, each with the command that sets it. Only references travel on through the
state machine; the CodeBuild runner reads the values.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from .common.aws import client, error_code
from .common.errors import BundleInvalid, ConfigurationMissing
from .common.models import SecretReference, Target, TaskEvent
from .common.observability import logger, task_handler
from .common.settings import (
    EnvironmentSettings,
    SecretsManagerSecret,
    SsmSecret,
    current_settings,
)

# Elastic Beanstalk rejects source bundles larger than 500 MB.
MAX_BUNDLE_BYTES = 500 * 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"
# The config keys of each stack settings file infra/Pulumi.<stack>.yaml, without values, staged
# beside the Lambda code at synth (control_plane/stack.py).
STACK_CONFIG_KEYS_FILE = "STACK_CONFIG_KEYS_FILE"
# Secrets Manager appends a hyphen and six random characters to a secret's name in its ARN.
ARN_SUFFIX = re.compile(r"-[A-Za-z0-9]{6}$")
# Errors that mean the function may not describe the secret: a missing IAM grant, or a resource
# policy that denies it.
ACCESS_ERRORS = frozenset({"AccessDeniedException", "AccessDenied"})


def missing_secrets(settings: EnvironmentSettings) -> list[str]:
    """Describe each required secret that is not set, with the command that sets it."""
    problems = []
    for key, source in sorted(settings.required_secrets.items()):
        if isinstance(source, SsmSecret):
            problem = _check_ssm_parameter(source, settings.region)
        elif isinstance(source, SecretsManagerSecret):
            problem = _check_secrets_manager_secret(source, settings)
        else:
            problem = _check_stack_config(key, settings.pulumi_stack)
        if problem:
            problems.append(f"{key} ({problem})")
    return problems


def _check_ssm_parameter(source: SsmSecret, region: str) -> str | None:
    found = client("ssm", region).describe_parameters(
        ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [source.name]}]
    )["Parameters"]
    if found:
        return None
    return (
        f"SSM parameter {source.name} not found in {region}; set it with "
        f"`aws ssm put-parameter --type SecureString --name {source.name} "
        f"--value <secret> --region {region}`"
    )


def _check_secrets_manager_secret(
    source: SecretsManagerSecret, settings: EnvironmentSettings
) -> str | None:
    region = source.region(settings.region)
    where = f"Secrets Manager secret {source.name}"
    value = _secret_string_example(source, settings)
    try:
        secret = client("secretsmanager", region).describe_secret(SecretId=source.name)
    except Exception as error:
        code = error_code(error)
        if code == "ResourceNotFoundException":
            return (
                f"{where} not found in {region}; create it with `aws secretsmanager "
                f"create-secret --name {_secret_name(source.name)} --secret-string {value} "
                f"--region {region}`" + _new_arn_note(source.name)
            )
        if code in ACCESS_ERRORS:
            return (
                f"{where} could not be described in {region} ({code}); allow "
                "secretsmanager:DescribeSecret on it to the Preflight function (`cdk deploy` "
                "grants it for every secret in environments.yaml)"
            )
        raise
    if secret.get("DeletedDate"):
        return (
            f"{where} is scheduled for deletion; restore it with `aws secretsmanager "
            f"restore-secret --secret-id {source.name} --region {region}`"
        )
    stages = secret.get("VersionIdsToStages") or {}
    if not any("AWSCURRENT" in labels for labels in stages.values()):
        return (
            f"{where} has no current value (no version is labeled AWSCURRENT); set one with "
            f"`aws secretsmanager put-secret-value --secret-id {source.name} --secret-string "
            f"{value} --region {region}`"
        )
    return None


def _secret_string_example(source: SecretsManagerSecret, settings: EnvironmentSettings) -> str:
    """Return a placeholder SecretString: one JSON field per key read from this secret."""
    json_keys = sorted(
        other.key
        for other in settings.required_secrets.values()
        if isinstance(other, SecretsManagerSecret)
        and other.name == source.name
        and other.key is not None
    )
    if not json_keys:
        return "'<secret>'"
    return "'" + json.dumps(dict.fromkeys(json_keys, "<secret>"), separators=(",", ":")) + "'"


def _secret_name(name_or_arn: str) -> str:
    if not name_or_arn.startswith("arn:"):
        return name_or_arn
    return ARN_SUFFIX.sub("", name_or_arn.split(":", 6)[6])


def _new_arn_note(name_or_arn: str) -> str:
    if not name_or_arn.startswith("arn:"):
        return ""
    return ", then put the new secret's ARN in environments.yaml"


def _check_stack_config(key: str, stack: str) -> str | None:
    settings_file = f"infra/Pulumi.{stack}.yaml"
    fix = (
        f"set it with `pulumi config set --secret {key} --stack {stack}` in infra/ (it prompts "
        f"for the value), commit {settings_file} and run `cdk deploy`"
    )
    keys = stack_config_keys().get(stack)
    if keys is None:
        return f"stack {stack} has no settings file {settings_file} in this deployment; {fix}"
    kind = keys.get(key)
    if kind is None:
        return f"not set in {settings_file}; {fix}"
    if kind != "secure":
        return f"set in plain text in {settings_file}, not as a secret; {fix}"
    return None


def stack_config_keys() -> dict[str, dict[str, str]]:
    """Return the staged config keys of every stack: stack -> {key: "secure" or "plain"}."""
    return _load_stack_config_keys(os.environ.get(STACK_CONFIG_KEYS_FILE, "stack_config_keys.json"))


@cache
def _load_stack_config_keys(path: str) -> dict[str, dict[str, str]]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        logger.warning("stack config keys file not found", extra={"path": path})
        return {}


def secret_references(settings: EnvironmentSettings) -> dict[str, SecretReference]:
    """Return where the runner reads each required secret: names and regions, no values."""
    return {
        key: SecretReference.model_validate(source.reference(settings.region))
        for key, source in settings.required_secrets.items()
    }


def check_bundle(uri: str, region: str) -> int:
    """Return the bundle's size after checking that it exists, is a zip and fits EB's limit."""
    parsed = urlparse(uri)
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    s3 = client("s3", region)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception as error:
        if error_code(error) in {"404", "NoSuchKey", "NotFound"}:
            raise BundleInvalid(
                f"bundle {uri} not found; upload it first (control-plane deploy does this)"
            ) from None
        raise
    size = int(head["ContentLength"])
    if size > MAX_BUNDLE_BYTES:
        raise BundleInvalid(
            f"bundle {uri} is {size} bytes; Elastic Beanstalk accepts at most 500 MB"
        )
    start = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-3")["Body"].read()
    if start != ZIP_MAGIC:
        raise BundleInvalid(f"bundle {uri} is not a zip file; build it with `control-plane bundle`")
    return size


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    settings = current_settings().environment(task.request.environment)

    missing = missing_secrets(settings)
    if missing:
        logger.warning(
            "required secrets missing",
            extra={"missing": [problem.split(" ", 1)[0] for problem in missing]},
        )
        raise ConfigurationMissing(
            f"environment {task.request.environment} is missing {len(missing)} required "
            "secret(s): " + "; ".join(missing)
        )
    size = check_bundle(task.request.bundle, settings.region)

    target = Target(
        environment=task.request.environment,
        region=settings.region,
        project=settings.pulumi_project,
        stack=settings.pulumi_stack,
        backend_url=settings.resolved_backend_url(os.environ["STATE_BUCKET"]),
        eb_application=settings.eb_application,
        health_path=settings.health_path,
        secrets=secret_references(settings),
        pulumi_org=settings.pulumi_org,
        pulumi_token_secret=settings.pulumi_token_secret,
    )
    logger.info(
        "preflight passed",
        extra={"stack": target.stack, "bundle_bytes": size, "secrets": sorted(target.secrets)},
    )
    return target.model_dump(by_alias=True)
