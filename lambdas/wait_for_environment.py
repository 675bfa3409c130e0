"""WaitForEnvironment: check that the environment exists and is Ready; log its health."""

from __future__ import annotations

from typing import Any

from .common.beanstalk import find_environment, log_fields, summarize
from .common.errors import EnvironmentNotReady
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
        logger.info("environment check", extra={"status": "missing"})
        raise EnvironmentNotReady(f"environment {outputs.eb_environment_name} does not exist yet")
    summary = summarize(environment)
    logger.info("environment check", extra=log_fields(summary))
    if summary["status"] != "Ready":
        raise EnvironmentNotReady(
            f"environment {outputs.eb_environment_name} is {summary['status']} "
            f"(health {summary['health']})"
        )
    return summary
