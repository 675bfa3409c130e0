"""Preflight: resolve the environment's stack, check its secrets and the bundle.

Secrets are checked for existence with DescribeParameters, which returns no values; only their
parameter names travel on through the state machine.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from .common.aws import client, error_code
from .common.errors import BundleInvalid, ConfigurationMissing
from .common.models import Target, TaskEvent
from .common.observability import logger, task_handler
from .common.settings import EnvironmentSettings, current_settings

# Elastic Beanstalk rejects source bundles larger than 500 MB.
MAX_BUNDLE_BYTES = 500 * 1024 * 1024
ZIP_MAGIC = b"PK\x03\x04"


def missing_secrets(settings: EnvironmentSettings) -> list[str]:
    """Describe each required secret that is not set, with the command that sets it."""
    ssm = client("ssm", settings.region)
    problems = []
    for key, source in sorted(settings.required_secrets.items()):
        found = ssm.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [source.name]}]
        )["Parameters"]
        if not found:
            problems.append(
                f"{key} (SSM parameter {source.name} not found; set it with "
                f"`aws ssm put-parameter --type SecureString --name {source.name} "
                f"--value <secret> --region {settings.region}`)"
            )
    return problems


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
        secrets={key: source.name for key, source in settings.required_secrets.items()},
        pulumi_org=settings.pulumi_org,
        pulumi_token_secret=settings.pulumi_token_secret,
    )
    logger.info(
        "preflight passed",
        extra={"stack": target.stack, "bundle_bytes": size, "secrets": sorted(target.secrets)},
    )
    return target.model_dump(by_alias=True)
