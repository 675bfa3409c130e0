"""ReleaseLock: give the environment's lease back (only if this request holds it)."""

from __future__ import annotations

from typing import Any

from .common.lease import release_lock
from .common.models import TaskEvent
from .common.observability import logger, task_handler


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    released = release_lock(task.request.environment, task.request.request_id)
    logger.info("lock released" if released else "lock not held by this request")
    return {"released": released}
