"""Rollback: put the environment back on the version it ran before this deployment.

While EB can still cancel the update (AbortableOperationInProgress), aborting it is the
quickest way back; otherwise the previous version is deployed again. The previous version's
label is also set as APP_VERSION, so the app reports what it serves.
"""

from __future__ import annotations

import json
from typing import Any

from .common.aws import client, error_code
from .common.beanstalk import find_environment
from .common.errors import EnvironmentBusy, RollbackFailed
from .common.lease import check_fence
from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .deploy_version import APP_ENVIRONMENT_NAMESPACE


def failure_message(failure: dict[str, Any]) -> str:
    """Return `Error: message` for a caught failure, unwrapping Lambda's error document."""
    cause = failure.get("Cause") or ""
    try:
        document = json.loads(cause)
        if isinstance(document, dict) and "errorMessage" in document:
            cause = document["errorMessage"]
    except ValueError:
        pass
    return f"{failure.get('Error', 'an error')}: {cause}"[:1500]


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target, outputs = task.require_target(), task.require_outputs()
    previous = (task.deployment or {}).get("previousVersion")
    name = outputs.eb_environment_name
    if not previous:
        raise RollbackFailed(f"no previous version of {name} is known to roll back to")
    check_fence(task.request.environment, task.request.request_id, task.lock)
    eb = client("elasticbeanstalk", target.region)

    environment = find_environment(target.region, outputs.eb_application_name, name)
    if environment is None:
        raise RollbackFailed(f"environment {name} disappeared; recover it with a new deployment")
    try:
        if environment.get("AbortableOperationInProgress"):
            eb.abort_environment_update(EnvironmentName=name)
            method = "abort"
        else:
            eb.update_environment(
                EnvironmentName=name,
                VersionLabel=previous,
                OptionSettings=[
                    {
                        "Namespace": APP_ENVIRONMENT_NAMESPACE,
                        "OptionName": "APP_VERSION",
                        "Value": previous,
                    }
                ],
            )
            method = "update"
    except Exception as error:
        if error_code(error) == "InvalidParameterValue" and "invalid state" in str(error):
            raise EnvironmentBusy(f"environment {name} is busy: {error}") from None
        raise

    cause = f"rolled back to {previous} after {failure_message(task.failure or {})}"
    logger.info(
        "rollback started",
        extra={
            "previous_version": previous,
            "method": method,
            "failed_version": task.request.version,
        },
    )
    return {"rolledBackTo": previous, "method": method, "cause": cause}
