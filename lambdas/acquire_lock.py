"""AcquireLock: take the environment's deployment lease."""

from __future__ import annotations

from typing import Any

from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.store import acquire_lock


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    lock = acquire_lock(task.request.environment, task.request.request_id, task.execution_arn)
    logger.info("lock acquired", extra={"fencing_token": lock["token"]})
    return lock
