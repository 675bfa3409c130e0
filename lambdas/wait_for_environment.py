"""WaitForEnvironment: wait until the environment exists and is Ready; log its health.

One deadline covers both parts of the wait, from the moment the state was entered.
"""

from __future__ import annotations

from typing import Any

from .common.beanstalk import describe_state, find_environment, log_fields, summarize
from .common.errors import EnvironmentNotReady
from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.waits import ENVIRONMENT_WAIT_SECONDS, WaitDeadline


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target, outputs = task.require_target(), task.require_outputs()
    name = outputs.eb_environment_name
    deadline = WaitDeadline.from_event(event, ENVIRONMENT_WAIT_SECONDS)

    environment = find_environment(target.region, outputs.eb_application_name, name)
    if environment is None:
        logger.info("environment check", extra={"eb_environment": name, "status": "missing"})
        observed = f"environment {name} does not exist yet"
    else:
        summary = summarize(environment)
        logger.info("environment check", extra=log_fields(summary))
        if summary["status"] == "Ready":
            return summary
        observed = describe_state(summary)

    if deadline.expired():
        logger.info("wait timed out", extra={"eb_environment": name, "observed": observed})
        raise deadline.timed_out(f"environment {name} to be Ready", observed)
    raise EnvironmentNotReady(observed)
