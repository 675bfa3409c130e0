"""ClassifyBuildFailure: turn a failed CodeBuild build into the named error the runner reported.

The runner writes a result document before it exits; its `error.name` is one of StackLocked,
PreviewFailed, UpFailed, StackNotSelected or ConfigurationMissing. A build that CodeBuild failed
before the runner started, because it could not read a PARAMETER_STORE variable such as the
Pulumi passphrase, is ConfigurationMissing, named from the build's phase context. Any other build
that died before writing a result is reported as UpFailed with the build id, so the operator can
open its log.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from .common.aws import client, error_code
from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.settings import current_settings

RUNNER_ERRORS = frozenset(
    {"StackLocked", "PreviewFailed", "UpFailed", "StackNotSelected", "ConfigurationMissing"}
)
# CodeBuild's phase context when it cannot read a PARAMETER_STORE variable at the start of a
# build. It fails the DOWNLOAD_SOURCE phase with, for example, "parameter does not exist: NAME"
# or an AccessDeniedException for ssm:GetParameters, and the runner never runs.
# NOTE: these texts come from CodeBuild build logs that users published; the CodeBuild User
# Guide does not list them. Any other text of this context is taken as a missing parameter.
VARIABLES_ERROR_CODE = "Decrypted Variables Error"
MISSING_PARAMETER = re.compile(r"parameter does not exist: (\S+)")


def result_key(environment: str, request_id: str) -> str:
    return f"results/{environment}/{request_id}.json"


def read_result(environment: str, request_id: str, region: str) -> dict[str, Any] | None:
    try:
        body = (
            client("s3", region)
            .get_object(Bucket=os.environ["STATE_BUCKET"], Key=result_key(environment, request_id))[
                "Body"
            ]
            .read()
        )
    except Exception as error:
        if error_code(error) in {"NoSuchKey", "404"}:
            return None
        raise
    return json.loads(body)


def failed_build(failure: dict[str, Any]) -> dict[str, Any]:
    """Return the build that the failed RunPulumi task's cause carries, or {}."""
    try:
        build = json.loads(failure.get("Cause", "")).get("Build", {})
    except (TypeError, ValueError, AttributeError):
        return {}
    return build if isinstance(build, dict) else {}


def variables_error(build: dict[str, Any]) -> str | None:
    """Return CodeBuild's message when it could not read the build's environment variables."""
    for phase in build.get("Phases") or []:
        for context in phase.get("Contexts") or []:
            if context.get("StatusCode") == VARIABLES_ERROR_CODE:
                return str(context.get("Message", ""))
    return None


def describe_variables_error(message: str, build_id: str) -> str:
    """Name the parameter CodeBuild could not read and the command or grant that fixes it."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "")
    where = f" --region {region}" if region else ""
    failed = (
        f"CodeBuild build {build_id} failed before the runner started, because CodeBuild could "
        f"not read a PARAMETER_STORE variable ({message})."
    )
    if "AccessDenied" in message:
        return (
            f"{failed} The CodeBuild role needs ssm:GetParameters on the parameter, which `cdk "
            "deploy` grants on the environments file's pulumi_passphrase_parameter, and "
            "kms:Decrypt on its key when a customer managed key encrypts it. Fix the grant and "
            "deploy again."
        )
    missing = MISSING_PARAMETER.search(message)
    name = missing.group(1) if missing else current_settings().pulumi_passphrase_parameter
    return (
        f"{failed} Create the SSM SecureString parameter that contains the stacks' Pulumi "
        f"passphrase: `aws ssm put-parameter --type SecureString --name {name} --value "
        f"<passphrase>{where}`. Stacks that already exist need the passphrase they were "
        "created with, because another one cannot decrypt their secrets. Keep a copy of it, "
        "then deploy again."
    )


def build_summary(failure: dict[str, Any]) -> str:
    """Describe the failed RunPulumi task: the build's id and status, or the task error."""
    cause = failure.get("Cause", "")
    build = failed_build(failure)
    if build:
        return f"CodeBuild build {build.get('Id', '?')} ended {build.get('BuildStatus', 'FAILED')}"
    return f"RunPulumi failed with {failure.get('Error', 'an unknown error')}: {cause}"[:1000]


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    task = TaskEvent.model_validate(event)
    target = task.require_target()
    failure = task.failure or {}

    build = failed_build(failure)
    message = variables_error(build)
    if message is not None:
        # The runner never ran, so a result document of this request would be stale.
        name = "ConfigurationMissing"
        logger.info("build failure classified", extra={"error": name, "phase": "DOWNLOAD_SOURCE"})
        return {"Error": name, "Cause": describe_variables_error(message, build.get("Id", "?"))}

    result = read_result(task.request.environment, task.request.request_id, target.region)
    error = (result or {}).get("error") or {}
    name = error.get("name")
    if name in RUNNER_ERRORS:
        cause = error.get("message") or build_summary(failure)
    else:
        name = "UpFailed"
        cause = f"{build_summary(failure)}; the runner wrote no result; read the build log"
    logger.info("build failure classified", extra={"error": name})
    return {"Error": name, "Cause": cause}
