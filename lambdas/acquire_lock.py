"""AcquireLock: take the environment's deployment lease, queue behind its holder, or yield.

The newest request wins: a request queued behind the holder is superseded by a newer one and
ends as Superseded without touching anything. The holder itself is never preempted. A scheduled
drift check never queues: it ends as Superseded whenever another request holds or waits for
the lease.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .common.drift import DRIFT_CHECK_TRIGGER
from .common.errors import InvalidRequest
from .common.lease import Lease
from .common.models import TaskEvent
from .common.observability import logger, task_handler


def start_time_ms(started_at: str) -> int:
    """Convert the execution's start time (ISO 8601, as Step Functions gives it) to epoch ms."""
    try:
        parsed = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise InvalidRequest(
            f"the execution start time {started_at!r} is not an ISO 8601 timestamp; the state "
            "machine passes $$.Execution.StartTime to AcquireLock"
        ) from None
    return int(parsed.timestamp() * 1000)


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    lease = Lease(
        task.request.environment,
        task.request.request_id,
        task.execution_arn,
        start_time_ms(event.get("startedAt", "")),
        # A scheduled drift check gives way to every deployment; the next slot checks again.
        yields=task.request.trigger == DRIFT_CHECK_TRIGGER,
    )
    result = lease.acquire()
    if result.get("yielded"):
        logger.info("drift check yielded the lock", extra={"yielded_to": result["by"]})
    elif result.get("superseded"):
        logger.info("request superseded", extra={"superseded_by": result["by"]})
    else:
        logger.info("lock acquired", extra={"fencing_token": result["token"]})
    return result
