"""Virtual clock shared by the sandbox's simulators.

Every wait in the sandbox (Retry intervals, Wait states, simulated Elastic Beanstalk
durations, CodeBuild builds) advances this clock instead of sleeping. A deployment with a
five-minute environment launch therefore finishes in seconds of wall time, with the same
virtual timeline on every run.

Executions register as actors. A sleeping actor moves the clock only once every actor is
asleep, and then only to the earliest wake-up time, as in a discrete-event simulation. So an
execution waiting for a lock does not burn through its retries while the holder is still busy
in real time (a CodeBuild build, an HTTP health check).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from datetime import UTC, datetime

# A fixed origin keeps timelines identical between runs.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


class VirtualClock:
    """Thread-safe virtual time in epoch seconds."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._start = start
        self._now = start
        self._lock = threading.Condition()
        self._actors = 0
        self._sleepers: list[tuple[float, int]] = []
        # Sleepers that end early once their condition is true (see `sleep(until=...)`).
        self._conditions: dict[tuple[float, int], Callable[[], bool]] = {}
        # Sleepers that never move time on by themselves (see `sleep(timer=True)`).
        self._timers: set[tuple[float, int]] = set()
        self._sequence = itertools.count()

    def now(self) -> float:
        with self._lock:
            return self._now

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)

    def elapsed(self) -> float:
        """Return the virtual seconds passed since the clock started."""
        with self._lock:
            return self._now - self._start

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` and return the new time; negative values raise."""
        if seconds < 0:
            raise ValueError(f"cannot move the virtual clock backwards by {seconds} s")
        with self._lock:
            self._now += seconds
            self._lock.notify_all()
            return self._now

    def add_actor(self) -> None:
        """Count a thread of work (an execution) that sleeps on this clock."""
        with self._lock:
            self._actors += 1

    def remove_actor(self) -> None:
        with self._lock:
            self._actors = max(0, self._actors - 1)
            self._lock.notify_all()

    def sleep(
        self, seconds: float, *, until: Callable[[], bool] | None = None, timer: bool = False
    ) -> bool:
        """Stand in for ``time.sleep``: return once virtual time has moved `seconds` on.

        With no other actor awake this returns at once; otherwise it waits in real time
        until the others sleep too or end.

        With `until`, the sleep also ends as soon as `until()` returns true, and returns True
        then (False when the time passed). A sleeper whose condition holds counts as awake, so
        time cannot move on before it resumes. `until` runs under the clock's lock, on any
        thread that checks the sleepers, so it must be quick and take no lock. The thread that
        makes it true calls `wake_sleepers()`, so the sleeper resumes without delay.

        A `timer` sleeper wakes at its time like any other, but time moves on only while some
        other sleeper waits too. So pending timers, such as a simulated operation that
        completes later, hold time where they are due without running it forward while the
        sandbox is otherwise idle.
        """
        with self._lock:
            wake = self._now + max(seconds, 0.0)
            entry = (wake, next(self._sequence))
            heapq.heappush(self._sleepers, entry)
            if until is not None:
                self._conditions[entry] = until
            if timer:
                self._timers.add(entry)
            self._lock.notify_all()
            ended_by_condition = False
            try:
                while self._now < wake:
                    if until is not None and until():
                        ended_by_condition = True
                        break
                    if self._first_to_wake() == entry:
                        self._now = wake
                        self._lock.notify_all()
                        break
                    self._lock.wait(timeout=0.5)
            finally:
                self._sleepers.remove(entry)
                heapq.heapify(self._sleepers)
                self._conditions.pop(entry, None)
                self._timers.discard(entry)
                self._lock.notify_all()
            return ended_by_condition

    def wake_sleepers(self) -> None:
        """Make every sleeper check its `until` condition now."""
        with self._lock:
            self._lock.notify_all()

    def _first_to_wake(self) -> tuple[float, int] | None:
        """Return the sleeper that moves time on, or None while an actor is awake.

        Called with the lock held. Sleepers whose condition is true are awake, and timers
        alone never move time.
        """
        asleep = [
            entry
            for entry in sorted(self._sleepers)
            if entry not in self._conditions or not self._conditions[entry]()
        ]
        if len(asleep) < self._actors or all(entry in self._timers for entry in asleep):
            return None
        return asleep[0]

    def let_pass(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass while running executions keep their order.

        Unlike `advance`, the caller joins as an actor, so every sleeper due before the end
        wakes at its own time rather than all at once at the end.
        """
        self.add_actor()
        try:
            self.sleep(seconds)
        finally:
            self.remove_actor()
