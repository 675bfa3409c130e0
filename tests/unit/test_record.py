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
