"""Health colors and statuses the simulator reports, and the phases of the health faults.

The color of each enhanced health status follows EB's API reference (InstanceHealthSummary);
the developer guide's "Health colors and statuses" page lists Suspended as Grey as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

# Enhanced health statuses of each color. A fault reports the first one unless it names another.
STATUSES_BY_COLOR: dict[str, tuple[str, ...]] = {
    "Green": ("Ok", "Info"),
    "Yellow": ("Warning",),
    "Red": ("Degraded", "Severe"),
    "Grey": ("NoData", "Unknown", "Pending", "Suspended"),
}

# NOTE: modelled on the causes EB's enhanced health reports; the real text depends on what the
# health agent observed.
DEFAULT_CAUSES: dict[str, tuple[str, ...]] = {
    "Ok": (),
    "Info": (),
    "Warning": ("20.0 % of the requests are failing with HTTP 5xx.",),
    "Degraded": ("75.0 % of the requests are failing with HTTP 5xx.",),
    "Severe": ("100.0 % of the requests are failing with HTTP 5xx.",),
    "NoData": ("None of the instances are sending data.",),
    "Unknown": ("Insufficient data to determine the health of the instances.",),
    "Pending": ("Command is executing on all instances.",),
    "Suspended": ("Health monitoring of the environment is suspended.",),
}


@dataclass(frozen=True)
class HealthPhase:
    """Health a fault reports from `offset` virtual seconds after its version became Ready."""

    offset: float
    color: str
    status: str
    causes: tuple[str, ...]


def health_phase(
    color: str,
    offset: float = 0.0,
    status: str | None = None,
    causes: Iterable[str] | None = None,
) -> HealthPhase:
    """Build a validated phase; raise ValueError naming the bad color, status or offset."""
    if color not in STATUSES_BY_COLOR:
        raise ValueError(
            f"unknown health color {color!r}; use one of {', '.join(STATUSES_BY_COLOR)}"
        )
    statuses = STATUSES_BY_COLOR[color]
    status = status or statuses[0]
    if status not in statuses:
        raise ValueError(
            f"health status {status!r} is not {color}; {color} is {', '.join(statuses)}"
        )
    if offset < 0:
        raise ValueError(f"health phase offset must not be negative, got {offset}")
    chosen = DEFAULT_CAUSES[status] if causes is None else tuple(causes)
    return HealthPhase(offset=float(offset), color=color, status=status, causes=chosen)


def check_sequence(phases: Sequence[HealthPhase]) -> None:
    """Raise ValueError unless there is a phase and their offsets strictly increase."""
    if not phases:
        raise ValueError("a health sequence needs at least one [COLOR, SECONDS] phase")
    for earlier, later in pairwise(phases):
        if later.offset <= earlier.offset:
            raise ValueError(
                f"health phase offsets must increase: {later.offset} s follows {earlier.offset} s"
            )
