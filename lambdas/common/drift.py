"""Scheduled drift checks: the schedule slot, the guards, and the start of a check execution.

An EventBridge rule per environment (control_plane/stack.py) invokes StartDriftCheck every
`drift_check.every_minutes`. StartDriftCheck starts a `trigger=schedule` execution of the
deployment state machine for the environment's last Deployed version. That execution runs
`pulumi preview --refresh --expect-no-changes` and deploys nothing. With
`drift_check.remediate` it runs `pulumi up --refresh` when the preview finds drift. The
execution's ledger record has outcome NoDrift, DriftDetected or DriftRemediated.

The request id names the schedule slot that the event's time falls in: the rule's period,
counted from the Unix epoch. A repeated delivery of one scheduled event, or two events in one
slot, therefore name the same execution, and Step Functions starts it once.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Literal

from .aws import client, error_code
from .lease import lock_key
from .observability import logger
from .recovery import (
    StartDecision,
    destroyed_on_purpose,
    execution_name,
    last_deployed_record,
    maintenance_on,
    maintenance_parameter,
)
from .settings import current_settings
from .store import from_item, table_name

DRIFT_CHECK_TRIGGER = "schedule"
DRIFT_CHECK_STARTED_BY = "control-plane-drift-check"
# Outcomes of a drift check that ran. Each ends the execution in the Succeed state of its name.
NO_DRIFT = "NoDrift"
DRIFT_DETECTED = "DriftDetected"
DRIFT_REMEDIATED = "DriftRemediated"
DRIFT_OUTCOMES = (NO_DRIFT, DRIFT_DETECTED, DRIFT_REMEDIATED)
# Runner actions (PULUMI_ACTION) of a scheduled check: preview only, or preview and `up`.
CHECK_ONLY_ACTION = "check-only"
REMEDIATE_ACTION = "check"
START_DRIFT_CHECK_TIMEOUT_SECONDS = 30
# Changed resources that the execution state and the ledger record carry. The build log lists
# all of them.
MAX_RECORDED_CHANGES = 20
MAX_CHANGE_CHARS = 300

Action = Literal["started", "already-started", "skipped"]


@dataclass
class DriftCheckDecision(StartDecision):
    """The action start_drift_check took for one environment, and its reason."""

    action: Action


def schedule_slot(scheduled_at: float, every_minutes: int) -> int:
    """Return the start (epoch seconds) of the schedule slot that `scheduled_at` falls in."""
    period = every_minutes * 60
    return int(scheduled_at // period) * period


def drift_check_request_id(slot_start: int) -> str:
    """Name the check of one schedule slot by the slot's start, in UTC to the minute."""
    return "drift-" + time.strftime("%Y%m%dT%H%MZ", time.gmtime(slot_start))


def lock_busy_reason(environment: str) -> str | None:
    """Return why the environment's lock keeps a check away (held, or a request queued)."""
    item = client("dynamodb").get_item(TableName=table_name(), Key=lock_key(environment))
    lock = from_item(item["Item"]) if "Item" in item else {}
    if lock.get("holder"):
        return f"request {lock['holder']} holds the lock"
    if lock.get("waiting"):
        return f"request {lock['waiting']} is queued for the lock"
    return None


def _start_execution(environment: str, request: dict[str, Any]) -> tuple[str, bool]:
    """Start the check's execution and return its ARN and whether this call started it.

    Step Functions returns the running execution for a repeated name and input, and raises
    ExecutionAlreadyExists once it has ended or when the input differs.
    """
    state_machine_arn = os.environ["STATE_MACHINE_ARN"]
    name = execution_name(environment, request["requestId"])
    try:
        response = client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(request)
        )
    except Exception as error:
        if error_code(error) != "ExecutionAlreadyExists":
            raise
        return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}", False
    return str(response["executionArn"]), True


def start_drift_check(environment: str, scheduled_at: float) -> DriftCheckDecision:
    """Start the environment's drift check for the slot of `scheduled_at`, unless a guard stops it.

    The guards run in this order: scheduled checks are off, nothing was deployed yet, the
    environment was destroyed on purpose, its maintenance switch is on, or a request holds or
    waits for its lock. A check never queues behind a deployment: the next slot checks again.
    """
    settings = current_settings().environment(environment)

    def skip(reason: str) -> DriftCheckDecision:
        logger.info("drift check skipped", extra={"environment": environment, "reason": reason})
        return DriftCheckDecision(environment, "skipped", reason)

    if settings.drift_check.every_minutes == 0:
        return skip("drift_check.every_minutes is 0: scheduled drift checks are off")
    last_deployed = last_deployed_record(environment)
    if last_deployed is None:
        return skip("nothing deployed yet: the ledger has no Deployed record")
    destroyed = destroyed_on_purpose(environment, last_deployed)
    if destroyed:
        return skip(destroyed)
    if maintenance_on(environment):
        return skip(f"the maintenance switch {maintenance_parameter(environment)} is on")
    busy = lock_busy_reason(environment)
    if busy:
        return skip(f"{busy}; the next scheduled check runs after it")

    slot = schedule_slot(scheduled_at, settings.drift_check.every_minutes)
    request_id = drift_check_request_id(slot)
    request = {
        "environment": environment,
        "version": last_deployed["version"],
        "bundle": last_deployed["bundle"],
        "requestId": request_id,
        "trigger": DRIFT_CHECK_TRIGGER,
        "startedBy": DRIFT_CHECK_STARTED_BY,
    }
    arn, started = _start_execution(environment, request)
    action: Action = "started" if started else "already-started"
    mode = "preview and remediate" if settings.drift_check.remediate else "check only"
    reason = f"drift check ({mode}) of version {last_deployed['version']}"
    logger.info(
        "drift check started" if started else "drift check already started",
        extra={
            "environment": environment,
            "request_id": request_id,
            "execution_arn": arn,
            "version": last_deployed["version"],
            "remediate": settings.drift_check.remediate,
        },
    )
    return DriftCheckDecision(environment, action, reason, request_id, arn)
