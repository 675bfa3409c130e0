"""Record: the ledger record and the outcome name for every path."""

from __future__ import annotations

import json

from lambdas.record import build_record, failure_cause, outcome_of


def test_success_is_deployed() -> None:
    state = {
        "request": {"environment": "dev", "requestId": "r-1", "version": "v2"},
        "inspection": {"plan": "check-drift"},
        "deployment": {"previousVersion": "v1"},
    }

    record = build_record(state, "arn:exec", "dev-r-1")

    assert record["outcome"] == "Deployed"
    assert record["plan"] == "check-drift"
    assert record["previousVersion"] == "v1"
    assert "errorName" not in record


def test_lambda_error_document_becomes_its_message() -> None:
    cause = json.dumps(
        {"errorType": "UpFailed", "errorMessage": "pulumi up failed", "stackTrace": []}
    )

    assert failure_cause({"Error": "UpFailed", "Cause": cause}) == "pulumi up failed"


def test_unknown_error_routes_to_unexpected() -> None:
    assert outcome_of({"Error": "States.Runtime", "Cause": "x"}) == "UnexpectedError"
    assert outcome_of({"Error": "StackLocked", "Cause": "x"}) == "StackLocked"


def test_invalid_request_is_keyed_by_execution_name() -> None:
    state = {
        "environment": "dev",
        "failure": {"Error": "InvalidRequest", "Cause": "bad"},
    }

    record = build_record(state, "arn:exec", "dev-r-9")

    assert record["requestId"] == "dev-r-9"
    assert record["outcome"] == "InvalidRequest"
    assert record["cause"] == "bad"


def test_superseded_request_records_who_superseded_it() -> None:
    state = {
        "request": {"environment": "dev", "requestId": "r-2", "version": "v2"},
        "lock": {"superseded": True, "by": "r-3"},
    }

    record = build_record(state, "arn:exec", "dev-r-2")

    assert record["outcome"] == "Superseded"
    assert "superseded by the newer request r-3" in record["cause"]
    assert "errorName" not in record


def _event(kind: str, name: str, second: float) -> dict:
    from datetime import UTC, datetime

    details = "stateEnteredEventDetails" if kind.endswith("Entered") else "stateExitedEventDetails"
    return {
        "type": kind,
        details: {"name": name},
        "timestamp": datetime.fromtimestamp(1_790_000_000 + second, UTC),
    }


def test_phase_timings_add_up_each_states_time_and_skip_the_running_one(monkeypatch) -> None:
    from lambdas.common import clock
    from lambdas.record import phase_timings

    monkeypatch.setattr(clock, "_source", lambda: 1_790_000_000 + 500.0)
    events = [
        {"type": "ExecutionStarted", "timestamp": _event("X", "x", 0)["timestamp"]},
        _event("TaskStateEntered", "AcquireLock", 1),
        _event("TaskStateExited", "AcquireLock", 91),
        _event("TaskStateEntered", "InspectInfrastructure", 91),
        _event("TaskStateExited", "InspectInfrastructure", 92),
        _event("TaskStateEntered", "WaitForTransition", 92),
        _event("TaskStateExited", "WaitForTransition", 392),
        _event("TaskStateEntered", "InspectInfrastructure", 392),
        _event("TaskStateExited", "InspectInfrastructure", 394),
        _event("TaskStateEntered", "Record", 499),
    ]

    timings = phase_timings(events)

    assert timings["startedAt"] == 1_790_000_000
    assert timings["durationSeconds"] == 500.0
    assert timings["phases"] == {
        "AcquireLock": 90.0,
        "InspectInfrastructure": 3.0,
        "WaitForTransition": 300.0,
    }
