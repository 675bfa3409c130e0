"""Completes simulated Elastic Beanstalk operations at their virtual time, unasked.

The EB simulator applies a transition (an operation completing, a health fault's next phase)
only when it is called. Polling tasks call it often enough, but an execution waiting for an
EB event calls nothing, and EB's status-change event must still go out when the operation
completes. So the sandbox keeps a timer for the simulator's earliest pending transition: a
thread that sleeps on the virtual clock until that time, then refreshes the simulator, which
publishes the transition's events at that instant.

A timer is an actor of the clock from the moment it is scheduled, so time cannot pass its
due time before it has refreshed. It sleeps as a clock timer: it holds time at its due time
but never moves time on by itself, so the sandbox stays still while nothing else waits.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .clock import VirtualClock

if TYPE_CHECKING:
    from .eb.simulator import ElasticBeanstalkSimulator

LOG = logging.getLogger(__name__)


class TransitionTimers:
    """Keeps one timer for the simulator's earliest pending transition."""

    def __init__(self, clock: VirtualClock, eb: ElasticBeanstalkSimulator) -> None:
        self._clock = clock
        self._eb = eb
        self._lock = threading.Lock()
        # Due times that have a timer; a timer refreshes whatever is due by its time.
        self._scheduled: set[float] = set()
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def schedule_next(self) -> None:
        """Start a timer for the earliest pending transition unless one exists.

        The simulator calls this after every call that may have changed its transitions
        (see `watch_transitions`), so a timer exists before the caller lets time move on.
        """
        due = self._eb.next_transition_at()
        if due is None:
            return
        with self._lock:
            if self._stopped or due in self._scheduled:
                return
            self._scheduled.add(due)
            self._clock.add_actor()
            thread = threading.Thread(
                target=self._run, args=(due,), daemon=True, name=f"eb-timer-{due:.3f}"
            )
            self._threads = [running for running in self._threads if running.is_alive()]
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout_seconds: float = 10) -> None:
        """End every timer and wait for them, so none refreshes the simulator afterwards."""
        with self._lock:
            self._stopped = True
            threads = list(self._threads)
        self._clock.wake_sleepers()
        for thread in threads:
            thread.join(timeout=timeout_seconds)

    def _run(self, due: float) -> None:
        try:
            self._clock.sleep(
                max(0.0, due - self._clock.now()), until=lambda: self._stopped, timer=True
            )
            # Past `due`, `advance()` jumped over it. The code that advanced the clock refreshes
            # or calls the simulator next, which applies the transition with its own time.
            if not self._stopped and self._clock.now() <= due:
                self._eb.refresh()
        except Exception:
            LOG.exception("EB transition timer for %.3f failed", due)
        finally:
            with self._lock:
                self._scheduled.discard(due)
            self._clock.remove_actor()
