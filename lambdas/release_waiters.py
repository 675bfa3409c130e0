"""ReleaseWaiters: the EventBridge target that ends the waits EB's events decide.

The rule sends every status-change and health event of a managed EB environment here. The
handler maps the event to the control plane's environment, runs the polling task's check for
each of that environment's waiters and completes the tokens it decides, sends a heartbeat to
the others, or hands them over to polling (lambdas/common/readiness.py). The event's own
status is not trusted: the check reads the environment as it is now, so a late, duplicated or
out-of-order event can only cause one more check.

A check that fails (an AWS call that keeps failing) leaves its waiter for the next event or
the polling fallback, and fails the invocation once the other waiters are done, so Lambda's
asynchronous retry runs it again.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .common.observability import logger
from .common.readiness import check_readiness, delete_waiter, list_waiters, settle
from .common.recovery import StatusChangeEvent, managed_environment
from .common.settings import current_settings


def handle_event(event: dict[str, Any]) -> dict[str, Any]:
    """Release, keep or hand over the waiters of the environment the event is about."""
    parsed = StatusChangeEvent.model_validate(event)
    detail = parsed.detail
    environment = managed_environment(
        current_settings(), detail.environment_name, detail.application_name
    )
    if environment is None:
        logger.info(
            "event ignored: environment not managed by the control plane",
            extra={"eb_environment": detail.environment_name},
        )
        return {"action": "ignored", "reason": f"{detail.environment_name} is not managed"}
    logger.append_keys(environment=environment)

    outcomes: dict[str, str] = {}
    failure: Exception | None = None
    for waiter in list_waiters(environment):
        if waiter.eb_environment != detail.environment_name:
            continue
        if waiter.expired:
            # Its task has timed out into polling; only the item is left.
            delete_waiter(waiter)
            outcomes[waiter.sort_key] = "expired"
            continue
        try:
            verdict = check_readiness(waiter.wait_for, waiter.check_event)
            outcomes[waiter.sort_key] = settle(waiter, verdict, heartbeat=True)
        except Exception as error:
            logger.exception("waiter check failed", extra={"waiter": waiter.sort_key})
            failure = failure or error
            continue
        logger.info(
            "waiter checked",
            extra={
                "waiter": waiter.sort_key,
                "outcome": outcomes[waiter.sort_key],
                "eb_status": detail.status,
            },
        )
    if failure is not None:
        raise failure
    return {"action": "checked", "environment": environment, "waiters": outcomes}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(event.get("id") if isinstance(event, dict) else None)
    try:
        StatusChangeEvent.model_validate(event)
    except ValidationError as error:
        # Retrying a malformed event cannot help, so it is dropped here.
        logger.warning(
            "event ignored: not an EB status-change event", extra={"problems": str(error)[:500]}
        )
        return {"action": "ignored", "reason": "not an EB status-change event"}
    return handle_event(event)
