"""The time the tasks act on.

On AWS this is the system clock. The sandbox installs its virtual clock here, so lease expiry,
ledger times and drift-check ages follow the same timeline as the simulated waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_source: Callable[[], float] = time.time


def now() -> float:
    """Return the current time in epoch seconds."""
    return _source()


def install(source: Callable[[], float] | None) -> None:
    """Use `source` as the clock; None restores the system clock."""
    global _source
    _source = source or time.time
