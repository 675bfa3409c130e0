"""WaitForTransition: wait until EB finishes the operation it is running on the environment."""

from __future__ import annotations

from typing import Any

from .common.beanstalk import TRANSITIONAL_STATUSES, find_environment, summarize
from .common.errors import EnvironmentNotReady
from .common.models import TaskEvent
from .common.observability import logger, task_handler


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target = task.require_target()
    name = (task.inspection or {}).get("environmentName")

    environment = find_environment(target.region, target.eb_application, name) if name else None
    status = environment.get("Status") if environment else "missing"
    logger.info("transition check", extra={"eb_environment": name, "status": status})
    if status in TRANSITIONAL_STATUSES:
        raise EnvironmentNotReady(f"environment {name} is still {status}")
    return summarize(environment) if environment else {"name": name, "status": status}
