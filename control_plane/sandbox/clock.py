"""Virtual clock shared by the sandbox's simulators.

Every wait in the sandbox (Retry intervals, Wait states, simulated Elastic Beanstalk
durations, CodeBuild builds) advances this clock instead of sleeping, so a deployment with a
five-minute environment launch finishes in seconds of wall time and yields the same virtual
timeline on every run.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

# A fixed origin keeps timelines identical between runs.
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


class VirtualClock:
    """Thread-safe virtual time in epoch seconds."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._start = start
        self._now = start
        self._lock = threading.Lock()

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
            return self._now

    def sleep(self, seconds: float) -> None:
        """Stand in for ``time.sleep``: advance the clock and return at once."""
        self.advance(max(seconds, 0.0))
