"""The sandbox's bookkeeping of Pulumi faults: a lock held by another run, and the size check
of execution state."""

from __future__ import annotations

import json

from control_plane.sandbox.faults import FaultState
from control_plane.sandbox.scenario_runner import STATE_SIZE_LIMIT_BYTES, _largest_state_data

LOCK_PATH = "/state/.pulumi/locks/organization/webapp/dev/1b2c.json"


def test_held_lock_released_after_its_checks() -> None:
    faults = FaultState()
    released: list[str] = []
    faults.hold_stack_lock(LOCK_PATH, 2, lambda: released.append("lock"))

    faults.object_read("/state/.pulumi/stacks/webapp/dev.json")
    faults.object_read(LOCK_PATH)
    after_first = list(released)
    faults.object_read(LOCK_PATH)
    faults.object_read(LOCK_PATH)

    assert after_first == []
    assert released == ["lock"]
    assert faults.unused() == []


def test_held_lock_never_read_is_reported() -> None:
    faults = FaultState()
    faults.hold_stack_lock(LOCK_PATH, 3, lambda: None)

    assert faults.unused() == ["stack_locked: no Pulumi run found the stack locked"]


def test_largest_state_data_finds_oversized_output() -> None:
    big = json.dumps({"preview": "x" * (STATE_SIZE_LIMIT_BYTES + 1)})
    events = [
        {"type": "ExecutionStarted", "executionStartedEventDetails": {"input": "{}"}},
        {"type": "TaskSucceeded", "taskSucceededEventDetails": {"output": big}},
        {"type": "TaskStateEntered", "stateEnteredEventDetails": {"input": "{}", "name": "A"}},
    ]

    size, where = _largest_state_data(events)

    assert size == len(big.encode())
    assert size > STATE_SIZE_LIMIT_BYTES
    assert where == "TaskSucceeded output"
