"""The sandbox's EventBridge: the drift-check schedules and their targets' input transformers."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from control_plane.sandbox.clock import VirtualClock
from control_plane.sandbox.events import RuleTarget, SandboxEventBridge, transform_input
from control_plane.sandbox.lambda_runtime import FunctionSpec
from control_plane.sandbox.template import load_resources, synthesize

REPO_ROOT = Path(__file__).resolve().parents[2]
DRIFT_HANDLER = "lambdas.start_drift_check.handler"
EVENT = {
    "id": "89d1a02d",
    "time": "2026-01-01T06:00:00Z",
    "detail": {"state": "RUNNING", "count": 2},
}


class RecordingRuntime:
    """Stands in for LambdaRuntime: records each invocation's handler and payload."""

    def __init__(self, functions: dict[str, FunctionSpec]) -> None:
        self._functions = functions
        self.calls: list[tuple[str, Any]] = []
        self._lock = threading.Lock()

    def function_for(self, name_or_arn: str) -> FunctionSpec | None:
        return self._functions.get(name_or_arn.split(":function:")[-1])

    def invoke(self, spec: FunctionSpec, payload: bytes) -> tuple[bytes, str | None]:
        with self._lock:
            self.calls.append((spec.handler, json.loads(payload)))
        return b'{"action": "recorded"}', None


@pytest.fixture(scope="module")
def resources() -> Any:
    template = synthesize(REPO_ROOT / ".sandbox" / "cdk-cache")
    return load_resources(template, "us-east-1", "123456789012")


def test_drift_schedules_deliver_environments(resources: Any) -> None:
    clock = VirtualClock()
    runtime = RecordingRuntime(resources.functions)
    events = SandboxEventBridge(
        resources.rules, runtime, clock, region="us-east-1", account_id="123456789012"
    )
    clock.add_actor()
    try:
        events.let_time_pass(6 * 3600 - 1)
        before = [payload for handler, payload in runtime.calls if handler == DRIFT_HANDLER]
        events.let_time_pass(2)
    finally:
        clock.remove_actor()

    delivered = [payload for handler, payload in runtime.calls if handler == DRIFT_HANDLER]
    assert before == []
    assert sorted(payload["environment"] for payload in delivered) == ["dev", "prod", "staging"]
    assert {payload["scheduledAt"] for payload in delivered} == {"2026-01-01T06:00:00Z"}
    assert all(payload["eventId"] for payload in delivered)


def test_placeholder_outside_a_string_is_inserted_as_json() -> None:
    transformer = {
        "InputPathsMap": {"time": "$.time", "count": "$.detail.count", "gone": "$.detail.gone"},
        "InputTemplate": '{"at": <time>, "count": <count>, "gone": <gone>}',
    }

    assert transform_input(transformer, EVENT) == {
        "at": "2026-01-01T06:00:00Z",
        "count": 2,
        "gone": None,
    }


def test_placeholder_inside_a_string_is_inserted_as_text() -> None:
    transformer = {
        "InputPathsMap": {"state": "$.detail.state", "id": "$.id"},
        "InputTemplate": '{"message": "event <id> is in state \\"<state>\\""}',
    }

    assert transform_input(transformer, EVENT) == {
        "message": 'event 89d1a02d is in state "RUNNING"'
    }


@pytest.mark.parametrize(
    ("transformer", "problem"),
    [
        ({"InputTemplate": '{"rule": <aws.events.rule-name>}'}, "not in InputPathsMap"),
        ({"InputPathsMap": {"id": "$.id"}, "InputTemplate": "event <id>"}, "does not render"),
        ({"InputPathsMap": {"a": "$.detail[0]"}, "InputTemplate": "{}"}, "dotted paths"),
    ],
)
def test_unsupported_transformer_is_named(transformer: dict[str, Any], problem: str) -> None:
    with pytest.raises(NotImplementedError, match=problem):
        transform_input(transformer, EVENT)


def test_constant_input_replaces_the_event() -> None:
    target = RuleTarget(FunctionSpec("F", "lambdas.x.handler", {}), constant_input='{"a": 1}')

    assert target.payload(EVENT) == {"a": 1}
    assert RuleTarget(FunctionSpec("F", "lambdas.x.handler", {})).payload(EVENT) == EVENT
