"""WaitForEnvironment: check that the environment exists and is Ready; log its health."""

from __future__ import annotations

from typing import Any

from .common.beanstalk import require_ready
from .common.errors import EnvironmentNotReady
from .common.models import TaskEvent
from .common.observability import task_handler


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target, outputs = task.require_target(), task.require_outputs()

    summary = require_ready(target.region, outputs.eb_application_name, outputs.eb_environment_name)
    if summary is None:
        raise EnvironmentNotReady(f"environment {outputs.eb_environment_name} does not exist yet")
    return summary
