"""ReadDriftResult: turn a scheduled drift check's result document into its outcome.

The runner of a drift check (PULUMI_ACTION check-only, or check when the environment
remediates) exits 0 whether or not the preview found drift, and lists the resources that
differ from the program in the result document's `drift`. The outcome is NoDrift,
DriftDetected (check-only found drift and changed nothing) or DriftRemediated (the runner found
drift and `pulumi up --refresh` applied the program).

After NoDrift or DriftRemediated the stack matches the program, which the fast path records as
a clean run. After DriftDetected the clean run is forgotten, so the next deployment runs the
drift check and applies the program, whatever the fast path would have decided.
"""

from __future__ import annotations

import os
from typing import Any

from .classify_build_failure import read_result, result_key
from .common import clock
from .common.drift import (
    DRIFT_DETECTED,
    DRIFT_REMEDIATED,
    MAX_CHANGE_CHARS,
    MAX_RECORDED_CHANGES,
    NO_DRIFT,
    REMEDIATE_ACTION,
)
from .common.errors import PreviewFailed
from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.store import clear_infrastructure_record, write_infrastructure_record

# Changed resources quoted in the message. The record's `drift` field lists more.
QUOTED_CHANGES = 5


def drift_outcome(document: dict[str, Any]) -> tuple[str, list[str]]:
    """Return the outcome of a result document and the changed resources it lists."""
    drift = [str(change)[:MAX_CHANGE_CHARS] for change in document.get("drift") or []]
    if not drift:
        return NO_DRIFT, drift
    if document.get("action") == REMEDIATE_ACTION:
        return DRIFT_REMEDIATED, drift
    return DRIFT_DETECTED, drift


def drift_message(outcome: str, drift: list[str]) -> str:
    """Describe the outcome for the ledger record and the notification."""
    if outcome == NO_DRIFT:
        return "`pulumi preview --refresh` found no difference from the program"
    quoted = "; ".join(drift[:QUOTED_CHANGES])
    more = f" and {len(drift) - QUOTED_CHANGES} more" if len(drift) > QUOTED_CHANGES else ""
    found = f"`pulumi preview --refresh` found {len(drift)} difference(s) from the program"
    if outcome == DRIFT_REMEDIATED:
        return f"{found}; `pulumi up --refresh` applied the program: {quoted}{more}"
    return (
        f"{found}; nothing was changed. The next deployment applies the program (or set "
        f"drift_check.remediate): {quoted}{more}"
    )


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target = task.require_target()
    environment, request_id = task.request.environment, task.request.request_id

    document = read_result(environment, request_id, target.region)
    if document is None:
        raise PreviewFailed(
            f"the drift check's build {(task.build or {}).get('id', '?')} succeeded but wrote "
            f"no result document to s3://{os.environ['STATE_BUCKET']}/"
            f"{result_key(environment, request_id)}; read the build log"
        )
    outcome, drift = drift_outcome(document)

    fingerprint = (task.inspection or {}).get("fingerprint")
    if outcome == DRIFT_DETECTED:
        clear_infrastructure_record(environment)
    elif fingerprint:
        write_infrastructure_record(environment, fingerprint, int(clock.now()))
    logger.info(
        "drift check read",
        extra={"outcome": outcome, "changes": len(drift), "action": document.get("action")},
    )
    return {
        "outcome": outcome,
        "action": document.get("action"),
        "message": drift_message(outcome, drift),
        "changes": drift[:MAX_RECORDED_CHANGES],
        "changeCount": len(drift),
        "summary": document.get("summary") or {},
    }
