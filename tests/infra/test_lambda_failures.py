"""Infra tier: every Lambda task handles Lambda's own failures by the same rules.

Lambda's service errors and throttles are retried 6 times from 2 s, doubling. A crash of the
runtime is retried twice and a timeout once, except in the tasks whose second run would repeat
a side effect. After that, the task's state is named in the failure's cause.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control_plane.sandbox.template import load_resources, synthesize
from control_plane.stack import TASK_TIMEOUT_SECONDS

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the CDK's LambdaInvoke adds with retry_on_service_exceptions (on by default), the retry
# AWS recommends for Lambda's transient service errors.
CDK_SERVICE_RETRY = {
    "ErrorEquals": [
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
    ],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
}
THROTTLE_RETRY = {
    "ErrorEquals": ["Lambda.TooManyRequestsException"],
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
}
CRASH_RETRY = {
    "ErrorEquals": ["Runtime.ExitError"],
    "IntervalSeconds": 2,
    "MaxAttempts": 2,
    "BackoffRate": 2,
}
TIMEOUT_RETRY = {
    "ErrorEquals": ["Sandbox.Timedout", "Lambda.Unknown", "States.Timeout"],
    "IntervalSeconds": 2,
    "MaxAttempts": 1,
    "BackoffRate": 2,
}
MUTATING = {"Rollback"}
# Tasks whose own Catch handles every failure without ending the execution.
CLOSING = {
    "ReleaseLock",
    "ReleaseLockAfterFailure",
    "ReleaseLockAfterDriftCheck",
    "Record",
    "RecordFailure",
    "RecordSuperseded",
    "RecordDriftCheck",
}


@pytest.fixture(scope="module")
def resources() -> Any:
    return load_resources(synthesize(REPO_ROOT / ".sandbox" / "cdk-cache"), "us-east-1", "1" * 12)


@pytest.fixture(scope="module")
def states(resources: Any) -> dict[str, Any]:
    return resources.definition["States"]


def lambda_tasks(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: state
        for name, state in states.items()
        if state["Type"] == "Task" and state["Resource"].startswith("arn:aws:lambda:")
    }


def test_every_lambda_task_retries_service_errors_and_throttles(states: dict[str, Any]) -> None:
    tasks = lambda_tasks(states)

    assert len(tasks) >= 15
    for name, state in tasks.items():
        assert state["Retry"][0] == CDK_SERVICE_RETRY, name
        assert state["Retry"][1] == THROTTLE_RETRY, name


def test_idempotent_tasks_retry_crashes_twice_and_timeouts_once(states: dict[str, Any]) -> None:
    for name, state in lambda_tasks(states).items():
        if name in MUTATING:
            continue
        assert state["Retry"][2] == CRASH_RETRY, name
        assert state["Retry"][3] == TIMEOUT_RETRY, name


@pytest.mark.parametrize("name", sorted(MUTATING))
def test_mutating_tasks_never_run_again_after_a_crash(states: dict[str, Any], name: str) -> None:
    retried = {error for rule in states[name]["Retry"] for error in rule["ErrorEquals"]}

    assert not retried & {"Runtime.ExitError", "Sandbox.Timedout", "Lambda.Unknown"}


def test_unfinished_task_is_caught_with_its_state_named(states: dict[str, Any]) -> None:
    for name, state in lambda_tasks(states).items():
        if name in CLOSING:
            continue
        first = state["Catch"][0]
        catch_all = next(c for c in state["Catch"] if c["ErrorEquals"] == ["States.ALL"])
        mark = states[first["Next"]]

        assert first["Next"] == f"Mark{name}Unfinished", name
        assert {"Sandbox.Timedout", "Runtime.ExitError", "Lambda.TooManyRequestsException"} <= set(
            first["ErrorEquals"]
        ), name
        assert mark["Type"] == "Pass", name
        assert f"'{name} did not finish" in mark["Parameters"]["Cause.$"], name
        assert mark["ResultPath"] == first["ResultPath"], name
        expected_next = catch_all["Next"]
        if name == "AcquireLock":
            # An attempt that crashed or timed out may have taken the lease.
            expected_next = "ReleaseLockAfterFailure"
        assert mark["Next"] == expected_next, name


def test_closing_tasks_catch_everything_themselves(states: dict[str, Any]) -> None:
    for name in CLOSING & set(states):
        assert [c["ErrorEquals"] for c in states[name]["Catch"]] == [["States.ALL"]], name


def test_task_functions_time_out_after_sixty_seconds(
    resources: Any, states: dict[str, Any]
) -> None:
    for name, state in lambda_tasks(states).items():
        function = state["Resource"].rsplit(":", 1)[-1]

        assert resources.functions[function].timeout_seconds == TASK_TIMEOUT_SECONDS == 60, name
