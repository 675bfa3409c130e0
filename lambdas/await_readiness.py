"""AwaitEnvironment and AwaitDeployment: wait for the environment on EB's events.

A `waitForTaskToken` task: Step Functions keeps the state waiting until its token is
completed. The handler stores a waiter for the token, then runs the polling task's check once
(lambdas/common/readiness.py). When that check decides the wait, it completes the token
itself; otherwise EB's next status-change event releases it through release_waiters. Where the
environment's `readiness` setting is `polling`, it hands the wait to the polling task at once.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.readiness import (
    POLLING_ERROR,
    Verdict,
    WaitFor,
    check_readiness,
    complete,
    put_waiter,
    settle,
)
from .common.settings import current_settings

# Fields of the task's payload that are not part of the polling task's input.
_AWAIT_FIELDS = ("taskToken", "waitFor")


class AwaitEvent(TaskEvent):
    """The await task's payload: the polling task's input, the token and what it waits for."""

    task_token: str = Field(alias="taskToken", min_length=1)
    wait_for: WaitFor = Field(alias="waitFor")


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = AwaitEvent.model_validate(event)
    environment = task.request.environment
    if current_settings().environment(environment).readiness == "polling":
        verdict = Verdict(
            "polling",
            error=POLLING_ERROR,
            cause=f"environment {environment} sets readiness: polling, so the wait polls",
        )
        complete(task.task_token, verdict)
        logger.info("await handed to polling", extra={"wait_for": task.wait_for})
        return {"waitFor": task.wait_for, "outcome": "polling"}

    check_event = {key: value for key, value in event.items() if key not in _AWAIT_FIELDS}
    waiter = put_waiter(
        environment,
        task.execution_arn,
        task.wait_for,
        task.task_token,
        task.require_outputs().eb_environment_name,
        check_event,
    )
    # Registered first, then checked: an event that came before the waiter existed changed
    # what this check reads, so it cannot be missed.
    outcome = settle(waiter, check_readiness(task.wait_for, check_event), heartbeat=False)
    logger.info("await registered", extra={"wait_for": task.wait_for, "outcome": outcome})
    return {"waitFor": task.wait_for, "outcome": outcome}
