"""Faults the sandbox can inject, armed by scenario files.

Each fault acts where AWS itself would misbehave (an S3 read, an EB status, a build, an API
call, the Lambda runtime), never inside the control plane's code.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import Enum

# Marker in the user agent of the local Pulumi engine's AWS calls (see pulumi_engine).
ENGINE_USER_AGENT = "control-plane-sandbox-pulumi-engine"


class TaskFault(Enum):
    """Kind of failure injected into an invocation of a task's Lambda function."""

    CRASH = "task_crash"
    TIMEOUT = "task_timeout"


class FaultState:
    """Counters of the armed faults; thread-safe because requests arrive on many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outputs_unavailable_reads: int | None = None
        self._unavailable_left = 0
        # (service, operation) -> calls still to throttle, and how many were armed.
        self._throttles: dict[tuple[str, str], int] = {}
        self._throttles_armed: dict[tuple[str, str], int] = {}
        # (fault, state name) -> invocations still to fail, and how many were armed.
        self._task_faults: dict[tuple[TaskFault, str], int] = {}
        self._task_faults_armed: dict[tuple[TaskFault, str], int] = {}
        # A Pulumi lock file held by another run: its S3 path (/bucket/key), how many more
        # lock checks find it, and what removes it when that run ends.
        self._held_lock_path: str | None = None
        self._held_lock_checks = 0
        self._release_held_lock: Callable[[], None] | None = None
        # Whether a held lock was armed that no lock check has read yet.
        self._held_lock_unread = False

    def set_outputs_unavailable(self, reads: int) -> None:
        """After each Pulumi run, hide the checkpoint from the next `reads` reads (-1: always)."""
        with self._lock:
            self._outputs_unavailable_reads = reads

    def pulumi_run_finished(self) -> None:
        with self._lock:
            if self._outputs_unavailable_reads is not None:
                self._unavailable_left = self._outputs_unavailable_reads

    def take_checkpoint_read(self) -> bool:
        """Return True when this checkpoint read must find nothing."""
        with self._lock:
            if self._unavailable_left == 0:
                return False
            if self._unavailable_left > 0:
                self._unavailable_left -= 1
            return True

    def hold_stack_lock(self, path: str, checks: int, release: Callable[[], None]) -> None:
        """Keep the lock file at `path` (`/bucket/key`) until `checks` lock checks found it.

        The Pulumi CLI reads every other lock file of the stack when it finds the stack
        locked, to name its owner. After the last of those reads, `release` removes the file,
        as the other run does when it ends.
        """
        with self._lock:
            self._held_lock_path = path
            self._held_lock_checks = checks
            self._release_held_lock = release
            self._held_lock_unread = True

    def object_read(self, path: str) -> None:
        """Count an S3 GET of `path`, and release the held lock after its last check."""
        with self._lock:
            if path != self._held_lock_path:
                return
            self._held_lock_unread = False
            self._held_lock_checks -= 1
            if self._held_lock_checks > 0:
                return
            release = self._release_held_lock
            self._held_lock_path = None
            self._release_held_lock = None
        if release is not None:
            release()

    def add_throttle(self, service: str, operation: str, times: int) -> None:
        """Throttle the next `times` calls of `operation` of `service` (botocore names)."""
        key = (service, operation)
        with self._lock:
            self._throttles[key] = self._throttles.get(key, 0) + times
            self._throttles_armed[key] = self._throttles_armed.get(key, 0) + times

    def throttled_services(self) -> set[str]:
        """Return the services some of whose calls are still to be throttled."""
        with self._lock:
            return {service for (service, _), left in self._throttles.items() if left > 0}

    def take_throttle(self, service: str, operation: str) -> bool:
        """Return True when this call must be throttled, counting it."""
        key = (service, operation)
        with self._lock:
            if self._throttles.get(key, 0) <= 0:
                return False
            self._throttles[key] -= 1
            return True

    def add_task_fault(self, fault: TaskFault, state: str, times: int) -> None:
        """Fail the next `times` invocations of the Lambda function behind task state `state`."""
        key = (fault, state)
        with self._lock:
            self._task_faults[key] = self._task_faults.get(key, 0) + times
            self._task_faults_armed[key] = self._task_faults_armed.get(key, 0) + times

    def task_faults_pending(self) -> bool:
        with self._lock:
            return any(left > 0 for left in self._task_faults.values())

    def take_task_fault(self, state: str) -> TaskFault | None:
        """Return how this invocation by task state `state` must fail, counting it; or None."""
        with self._lock:
            for fault in TaskFault:
                key = (fault, state)
                if self._task_faults.get(key, 0) > 0:
                    self._task_faults[key] -= 1
                    return fault
            return None

    def unused(self) -> list[str]:
        """Describe every armed throttle or task fault that fewer calls consumed than armed.

        A scenario whose fault never fired tested nothing, so the runner reports these.
        """
        lines = []
        with self._lock:
            for (service, operation), left in self._throttles.items():
                if left > 0:
                    armed = self._throttles_armed[(service, operation)]
                    lines.append(
                        f"throttle {service} {operation}: {left} of {armed} calls never came"
                    )
            for (fault, state), left in self._task_faults.items():
                if left > 0:
                    armed = self._task_faults_armed[(fault, state)]
                    lines.append(f"{fault.value} {state}: {left} of {armed} invocations never came")
            if self._held_lock_unread:
                lines.append("stack_locked: no Pulumi run found the stack locked")
        return lines

    def clear(self) -> None:
        with self._lock:
            self._outputs_unavailable_reads = None
            self._unavailable_left = 0
            self._throttles.clear()
            self._throttles_armed.clear()
            self._task_faults.clear()
            self._task_faults_armed.clear()
            self._held_lock_path = None
            self._held_lock_checks = 0
            self._release_held_lock = None
            self._held_lock_unread = False
