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

    def sleep(self, seconds: float) -> None:
        """Stand in for ``time.sleep``: return once virtual time has moved `seconds` on.

        With no other actor awake this returns at once; otherwise it waits in real time
        until the others sleep too or end.
        """
        with self._lock:
            wake = self._now + max(seconds, 0.0)
            entry = (wake, next(self._sequence))
            heapq.heappush(self._sleepers, entry)
            self._lock.notify_all()
            while self._now < wake:
                everyone_asleep = len(self._sleepers) >= self._actors
                if everyone_asleep and self._sleepers[0] == entry:
                    self._now = wake
                    self._lock.notify_all()
                    break
                self._lock.wait(timeout=0.5)
            self._sleepers.remove(entry)
            heapq.heapify(self._sleepers)

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
