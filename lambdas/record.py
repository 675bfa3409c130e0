"""Record: write the request's ledger record and publish the outcome.

Runs on every path, including a request that failed validation, so it reads the state leniently.
"""

from __future__ import annotations

import json
import os
from typing import Any

from .common import clock
from .common.aws import client
from .common.errors import FAILURE_NAMES, UNEXPECTED_FAILURE
from .common.metrics import publish_deployment
from .common.observability import logger, task_handler
from .common.store import put_ledger_record
from .validate_request import recordable_fields

MAX_CAUSE_CHARS = 2000


def failure_cause(failure: dict[str, Any]) -> str:
    """Return the human message of a failure; Lambda errors wrap it in a JSON document."""
    cause = failure.get("Cause") or ""
    try:
        document = json.loads(cause)
    except (TypeError, ValueError):
        return str(cause)[:MAX_CAUSE_CHARS]
    if isinstance(document, dict) and "errorMessage" in document:
        return str(document["errorMessage"])[:MAX_CAUSE_CHARS]
    return str(cause)[:MAX_CAUSE_CHARS]


def outcome_of(failure: dict[str, Any] | None, superseded: bool = False) -> str:
    if superseded:
        return "Superseded"
    if not failure:
        return "Deployed"
    name = failure.get("Error")
    return name if name in FAILURE_NAMES else UNEXPECTED_FAILURE


def build_record(state: dict[str, Any], execution_arn: str, execution_name: str) -> dict[str, Any]:
    # Before validation succeeds there is no $.request: the raw input is the state itself. Only
    # its fields that are valid and do not look like a secret are recorded.
    request = state.get("request") or recordable_fields(state)
    failure = state.get("failure")
    inspection = state.get("inspection") or {}
    deployment = state.get("deployment") or {}
    lock = state.get("lock") or {}
    superseded = bool(lock.get("superseded"))
    # The result of a scheduled drift check (ReadDriftResult), whose outcome replaces Deployed.
    drift = state.get("drift") or {}
    record = {
        "environment": str(request.get("environment") or "unknown")[:64],
        "requestId": str(request.get("requestId") or execution_name)[:128],
        "version": request.get("version"),
        # Recovery redeploys the last Deployed record's version from this bundle.
        "bundle": request.get("bundle"),
        "previousVersion": deployment.get("previousVersion"),
        "trigger": request.get("trigger"),
        "startedBy": request.get("startedBy"),
        "plan": inspection.get("plan"),
        "outcome": outcome_of(failure, superseded),
        "executionArn": execution_arn,
        "finishedAt": int(clock.now()),
    }
    if superseded and lock.get("yielded"):
        record["cause"] = (
            f"the drift check gave way to request {lock.get('by')}, which holds or waits for the "
            "lock; nothing was checked"
        )
    elif superseded:
        record["cause"] = f"superseded by the newer request {lock.get('by')}; nothing was changed"
    elif failure:
        record["errorName"] = failure.get("Error")
        record["cause"] = failure_cause(failure)
        skipped = (state.get("rollback") or {}).get("skipped")
        if skipped:
            record["cause"] = f"{record['cause']} ({skipped})"
    elif drift.get("outcome"):
        record["outcome"] = drift["outcome"]
        record["cause"] = drift.get("message")
        record["drift"] = drift.get("changes") or []
        record["driftSummary"] = drift.get("summary") or {}
    return record


def phase_timings(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Return seconds spent in each state (retries and waits included) and since the start.

    States still running (Record itself) are left out. A state entered twice (a loop back to
    InspectInfrastructure) adds up.
    """
    if not events:
        return {}
    entered: dict[str, Any] = {}
    phases: dict[str, float] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            entered[event["stateEnteredEventDetails"]["name"]] = event["timestamp"]
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            if name in entered:
                seconds = (event["timestamp"] - entered.pop(name)).total_seconds()
                phases[name] = round(phases.get(name, 0.0) + seconds, 3)
    started = events[0]["timestamp"]
    return {
        "startedAt": int(started.timestamp()),
        "durationSeconds": round(max(0.0, clock.now() - started.timestamp()), 3),
        "phases": phases,
    }


def _execution_history(execution_arn: str) -> list[dict[str, Any]]:
    """Read the execution's own history; an unreadable one costs the timings, not the record."""
    events: list[dict[str, Any]] = []
    try:
        pages = client("stepfunctions").get_paginator("get_execution_history")
        for page in pages.paginate(executionArn=execution_arn):
            events.extend(page["events"])
    except Exception as error:
        logger.warning(
            "execution history not readable; recording without phase timings",
            extra={"error": str(error)[:300]},
        )
        return []
    return events


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    record = build_record(event["state"], event["executionArn"], event["executionName"])
    record.update(phase_timings(_execution_history(event["executionArn"])))
    publish_deployment(record)

    put_ledger_record(record["environment"], record["requestId"], record)
    topic = os.environ.get("TOPIC_ARN")
    if topic:
        client("sns").publish(
            TopicArn=topic,
            Subject=f"{record['environment']}: {record['outcome']}"[:100],
            Message=json.dumps(record, indent=2),
            MessageAttributes={
                "outcome": {"DataType": "String", "StringValue": record["outcome"]},
                "environment": {"DataType": "String", "StringValue": record["environment"]},
            },
        )
    logger.info("deployment recorded", extra={"outcome": record["outcome"], "plan": record["plan"]})
    if "errorName" not in record:
        return {"outcome": record["outcome"]}
    # On a failure path this result replaces $.failure, so the Fail state shows the message
    # rather than the Lambda error document, and unknown errors route to UnexpectedError.
    return {"outcome": record["outcome"], "Error": record["outcome"], "Cause": record["cause"]}
