"""Faults the sandbox can inject, armed by scenario files.

Each fault acts where AWS itself would misbehave (an S3 read, an EB status, a build), never
inside the control plane's code.
"""

from __future__ import annotations

import threading

# Marker in the user agent of the local Pulumi engine's AWS calls (see pulumi_engine).
ENGINE_USER_AGENT = "control-plane-sandbox-pulumi-engine"


class FaultState:
    """Counters of the armed faults; thread-safe because requests arrive on many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outputs_unavailable_reads: int | None = None
        self._unavailable_left = 0

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

    def clear(self) -> None:
        with self._lock:
            self._outputs_unavailable_reads = None
            self._unavailable_left = 0
