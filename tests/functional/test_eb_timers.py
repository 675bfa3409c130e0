"""The sandbox's EB transition timers: operations complete at their virtual time, unasked.

The simulator applies a transition only when it is called. Its timers call it at the
transition's due time, so its status-change events go out then, while nothing polls EB.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.sandbox.clock import VirtualClock
from control_plane.sandbox.eb import ElasticBeanstalkSimulator
from control_plane.sandbox.eb_timers import TransitionTimers

LAUNCH = 120
UPDATE = 90


class Timed:
    """A simulator with transition timers, recording each event and the clock when it went out."""

    def __init__(self, work_dir: Path) -> None:
        self.clock = VirtualClock(start=0)
        self.eb = ElasticBeanstalkSimulator(
            self.clock,
            lambda bucket, key: b"",
            work_dir,
            launch_seconds=LAUNCH,
            update_seconds=UPDATE,
        )
        self.timers = TransitionTimers(self.clock, self.eb)
        self.eb.watch_transitions(self.timers.schedule_next)
        self.events: list[tuple[str, float]] = []
        self.eb.subscribe(
            lambda event: self.events.append((event["detail"]["Status"], self.clock.now()))
        )

    def call(self, action: str, **params: str) -> None:
        status, body = self.eb.handle({"Action": action, **params})
        assert status == 200, body

    def launch(self) -> None:
        self.call("CreateApplication", ApplicationName="app")
        self.call("CreateEnvironment", ApplicationName="app", EnvironmentName="app-dev")


@pytest.fixture
def timed(tmp_path: Path) -> Iterator[Timed]:
    harness = Timed(tmp_path)
    yield harness
    harness.timers.stop()
    harness.eb.shutdown()


def test_launch_completes_at_its_time_unasked(timed: Timed) -> None:
    timed.launch()

    timed.clock.let_pass(300)

    assert ("Environment creation started", 0) in timed.events
    assert ("Environment creation successful", LAUNCH) in timed.events


def test_update_started_later_completes_first(timed: Timed) -> None:
    timed.launch()
    timed.clock.let_pass(LAUNCH)
    timed.call("UpdateEnvironment", EnvironmentName="app-dev", Description="changed")

    timed.clock.let_pass(1000)

    assert ("Environment update successful", LAUNCH + UPDATE) in timed.events


def test_timers_alone_leave_the_clock_still(timed: Timed) -> None:
    timed.launch()

    time.sleep(0.7)  # wall time, while only the timer waits on the clock

    assert timed.clock.now() == 0
    assert ("Environment creation successful", LAUNCH) not in timed.events
