"""One overall deadline per wait on an Elastic Beanstalk environment.

A wait task is retried statelessly by its state's Retry rule, so it cannot count its own time.
The workflow passes `$$.State.EnteredTime` as `waitStartedAt`. Step Functions documents it as
the time the state was entered, next to `State.RetryCount`, which counts the Retry attempts of
that same entry, so the value stays fixed across retries. Each check compares it with the
task clock and ends the wait with WaitTimedOut once the budget is spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import clock
from .errors import WaitTimedOut

# WaitForEnvironment: the environment exists and is Ready.
ENVIRONMENT_WAIT_SECONDS = 900
# WaitForDeployment and WaitForRollback: Ready on the version, healthy, and settled when Yellow
# is accepted. A rolling deployment of several batches fits in it.
DEPLOYMENT_WAIT_SECONDS = 1200


def parse_entered_time(value: str) -> float:
    """Return the epoch seconds of an ISO 8601 time such as `2019-03-26T20:14:13.192Z`.

    Raises ValueError for a value without a time zone, which no Step Functions time lacks.
    """
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no time zone")
    return parsed.timestamp()


@dataclass(frozen=True)
class WaitDeadline:
    """The start and budget of one wait, and the check that ends it."""

    started_at: float
    budget_seconds: int

    @classmethod
    def from_event(cls, event: dict[str, Any], budget_seconds: int) -> WaitDeadline:
        """Read `waitStartedAt` from the task's payload.

        Without it (an older state machine definition) the wait starts at this check, so only
        the Retry rule's MaxAttempts bounds it. A warning is logged then.
        """
        from .observability import logger

        raw = event.get("waitStartedAt") if isinstance(event, dict) else None
        if isinstance(raw, str):
            try:
                return cls(parse_entered_time(raw), budget_seconds)
            except ValueError:
                logger.warning("invalid waitStartedAt; the wait starts now", extra={"value": raw})
        else:
            logger.warning("no waitStartedAt in the payload; the wait starts now")
        return cls(clock.now(), budget_seconds)

    def elapsed(self) -> float:
        return max(0.0, clock.now() - self.started_at)

    def expired(self) -> bool:
        return self.elapsed() >= self.budget_seconds

    def timed_out(self, awaited: str, observed: str) -> WaitTimedOut:
        """Build the error that ends the wait, naming what it awaited and what it saw last."""
        return WaitTimedOut(
            f"gave up waiting for {awaited} after {self.elapsed():.0f} s (budget "
            f"{self.budget_seconds} s): {observed}"
        )
