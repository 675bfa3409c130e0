"""SweepEnvironments: the scheduled check that recovers what a lost event left terminated.

EventBridge delivers EB events on a best-effort basis, so one can be lost. Every run checks
each managed environment and starts the same deduplicated recovery that StartRecovery would
start for one that is terminated or missing (see common/recovery.py). A lost event therefore
delays recovery by at most one schedule period, and never skips it.

An environment whose lock a request holds is left to that request: its own InspectInfrastructure
recovers the environment, and the next sweep checks again.
"""

from __future__ import annotations

from typing import Any

from .common.lease import read_lock
from .common.observability import logger
from .common.recovery import RecoveryDecision, start_recovery
from .common.settings import current_settings


def sweep() -> list[RecoveryDecision]:
    """Check every managed environment; one that fails to check does not stop the others."""
    decisions = []
    for environment in sorted(current_settings().environments):
        holder = read_lock(environment)
        if holder is not None:
            reason = f"request {holder.get('holder', {}).get('S')} holds the lock"
            logger.info("sweep skipped", extra={"environment": environment, "reason": reason})
            decisions.append(RecoveryDecision(environment, "skipped", reason))
            continue
        try:
            decisions.append(start_recovery(environment, source="schedule"))
        except Exception as error:
            logger.exception(
                "sweep failed for one environment",
                extra={"environment": environment, "error": str(error)[:300]},
            )
            decisions.append(RecoveryDecision(environment, "skipped", f"check failed: {error}"))
    return decisions


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(event.get("id") if isinstance(event, dict) else None)
    decisions = sweep()
    started = [d.environment for d in decisions if d.action in ("started", "already-started")]
    logger.info("sweep finished", extra={"recovering": started, "checked": len(decisions)})
    return {"environments": [decision.as_result() for decision in decisions]}
