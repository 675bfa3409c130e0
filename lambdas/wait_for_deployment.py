"""WaitForDeployment: wait until the environment is Ready on the requested version.

EB can abort an update and return to Ready on the old version looking healthy, so Ready alone
is not success: the version label must be the requested one.
"""

from __future__ import annotations

from typing import Any

from .common.beanstalk import find_environment, log_fields, summarize
from .common.errors import DeploymentFailed, EnvironmentNotReady
from .common.models import TaskEvent
from .common.observability import logger, task_handler


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target, outputs = task.require_target(), task.require_outputs()

    environment = find_environment(
        target.region, outputs.eb_application_name, outputs.eb_environment_name
    )
    if environment is None:
        raise DeploymentFailed(f"environment {outputs.eb_environment_name} disappeared mid-update")
    summary = summarize(environment)
    logger.info("deployment check", extra=log_fields(summary))
    if summary["status"] != "Ready":
        raise EnvironmentNotReady(
            f"environment {outputs.eb_environment_name} is {summary['status']} "
            f"(health {summary['health']})"
        )
    if summary["versionLabel"] != task.request.version:
        raise DeploymentFailed(
            f"environment {outputs.eb_environment_name} is Ready on version "
            f"{summary['versionLabel']}, not {task.request.version}: Elastic Beanstalk aborted "
            "the update; read `aws elasticbeanstalk describe-events` for the cause"
        )
    return summary
