"""ClassifyBuildFailure: turn a failed CodeBuild build into the named error the runner reported.

The runner writes a result document before it exits; its `error.name` is one of StackLocked,
PreviewFailed, UpFailed, StackNotSelected or ConfigurationMissing. A build that died before
writing one is reported as UpFailed with the build id, so the operator can open its log.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .common.aws import client, error_code
from .common.models import TaskEvent
from .common.observability import logger, task_handler

RUNNER_ERRORS = frozenset(
    {"StackLocked", "PreviewFailed", "UpFailed", "StackNotSelected", "ConfigurationMissing"}
)


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


def build_summary(failure: dict[str, Any]) -> str:
    """Describe the failed RunPulumi task: the build's id and status, or the task error."""
    cause = failure.get("Cause", "")
    try:
        build = json.loads(cause).get("Build", {})
    except (TypeError, ValueError, AttributeError):
        build = {}
    if build:
        return f"CodeBuild build {build.get('Id', '?')} ended {build.get('BuildStatus', 'FAILED')}"
    return f"RunPulumi failed with {failure.get('Error', 'an unknown error')}: {cause}"[:1000]


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    task = TaskEvent.model_validate(event)
    target = task.require_target()
    failure = task.failure or {}

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
