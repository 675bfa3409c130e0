"""The sandbox's EventBridge: the synthesized rules, delivered to in-process Lambda targets."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from control_plane.sandbox.clock import VirtualClock
from control_plane.sandbox.events import SandboxEventBridge
from control_plane.sandbox.lambda_runtime import FunctionSpec
from control_plane.sandbox.template import load_resources, synthesize

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((REPO_ROOT / "tests/fixtures/eb-environment-terminated.json").read_text())


class RecordingRuntime:
    """Stands in for LambdaRuntime: records each invocation with its wall-clock time."""

    def __init__(self, functions: dict[str, FunctionSpec]) -> None:
        self._functions = functions
        self.calls: list[tuple[str, dict[str, Any], float]] = []
        self._lock = threading.Lock()

    def function_for(self, name_or_arn: str) -> FunctionSpec | None:
        return self._functions.get(name_or_arn.split(":function:")[-1])

    def invoke(self, spec: FunctionSpec, payload: bytes) -> tuple[bytes, str | None]:
        with self._lock:
            self.calls.append((spec.handler, json.loads(payload), time.monotonic()))
        return b'{"action": "recorded"}', None


@pytest.fixture(scope="module")
def resources() -> Any:
    template = synthesize(REPO_ROOT / ".sandbox" / "cdk-cache")
    return load_resources(template, "us-east-1", "123456789012")


@pytest.fixture
def bus(resources: Any) -> tuple[SandboxEventBridge, RecordingRuntime, VirtualClock]:
    clock = VirtualClock()
    runtime = RecordingRuntime(resources.functions)
    events = SandboxEventBridge(
        resources.rules, runtime, clock, region="us-east-1", account_id="123456789012"
    )
    return events, runtime, clock


def handlers(runtime: RecordingRuntime) -> list[str]:
    return sorted(handler for handler, _, _ in runtime.calls)


RELEASE_WAITERS = "lambdas.release_waiters.handler"
START_RECOVERY = "lambdas.start_recovery.handler"


def test_termination_event_reaches_start_recovery(bus: Any) -> None:
    events, runtime, _ = bus

    events.publish(EVENT)
    events.wait_idle()

    # Every status change of a managed environment also reaches the readiness rule's target.
    assert handlers(runtime) == [RELEASE_WAITERS, START_RECOVERY]
    assert all(event == EVENT for _, event, _ in runtime.calls)


@pytest.mark.parametrize(
    "change",
    [
        {"detail": {**EVENT["detail"], "Status": "Environment termination started"}},
        {"detail-type": "Health status change"},
    ],
)
def test_other_changes_reach_only_readiness(bus: Any, change: dict[str, Any]) -> None:
    events, runtime, _ = bus

    events.publish({**EVENT, **change})
    events.wait_idle()

    assert handlers(runtime) == [RELEASE_WAITERS]


@pytest.mark.parametrize(
    "change",
    [
        {"detail": {**EVENT["detail"], "EnvironmentName": "billing-prod"}},
        {"source": "aws.ec2"},
    ],
)
def test_other_events_match_no_rule(bus: Any, change: dict[str, Any]) -> None:
    events, runtime, _ = bus

    events.publish({**EVENT, **change})
    events.wait_idle()

    assert runtime.calls == []


def test_lost_events_are_dropped(bus: Any) -> None:
    events, runtime, _ = bus
    events.lose_events()

    events.publish(EVENT)
    events.wait_idle()

    assert runtime.calls == []
    assert events.dropped == [EVENT]


def test_duplicated_events_arrive_twice_200_ms_apart(bus: Any) -> None:
    events, runtime, _ = bus
    events.duplicate_events()

    events.publish(EVENT)
    events.wait_idle()

    recoveries = [(event, at) for handler, event, at in runtime.calls if handler == START_RECOVERY]
    assert handlers(runtime) == [RELEASE_WAITERS] * 2 + [START_RECOVERY] * 2
    assert recoveries[0][0] == recoveries[1][0]
    assert recoveries[1][1] - recoveries[0][1] >= 0.19


SWEEP = "lambdas.sweep_environments.handler"


def sweeps(runtime: Any) -> list[tuple[str, Any, float]]:
    """Return the sweep's invocations; other schedules of the stack run meanwhile."""
    return [call for call in runtime.calls if call[0] == SWEEP]


def test_sweep_runs_every_15_minutes_of_virtual_time(bus: Any) -> None:
    events, runtime, clock = bus
    clock.add_actor()
    try:
        events.let_time_pass(899)
        before_first = sweeps(runtime)
        events.let_time_pass(2)
        events.let_time_pass(1800)
    finally:
        clock.remove_actor()

    assert before_first == []
    assert [handler for handler, _, _ in sweeps(runtime)] == [SWEEP] * 3
    scheduled = sweeps(runtime)[0][1]
    assert scheduled["detail-type"] == "Scheduled Event"
    assert scheduled["source"] == "aws.events"
    assert clock.elapsed() == pytest.approx(2701)
