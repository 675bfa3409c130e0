"""Elastic Beanstalk health colors, and the rule that accepts an environment's health.

A deployment is healthy when EB reports Green. Yellow counts only where the environment's
settings accept it (`health.accept_yellow`), and only once health has stayed Yellow or better
for the settling window. Red fails the deployment. Grey means EB has no health data yet, so
the wait goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from .settings import HealthSettings

# Enhanced health statuses by color, from EB's API reference (InstanceHealthSummary) and the
# developer guide's "Health colors and statuses" page, which lists Suspended as Grey.
STATUS_COLORS = {
    "ok": "Green",
    "info": "Green",
    "warning": "Yellow",
    "degraded": "Red",
    "severe": "Red",
    "nodata": "Grey",
    "unknown": "Grey",
    "pending": "Grey",
    "suspended": "Grey",
}
COLORS = ("Green", "Yellow", "Red", "Grey")

# EB's health event, e.g. "Environment health has transitioned from Ok to Warning." Basic
# health names colors where enhanced health names statuses, so both are recognised.
HEALTH_TRANSITION = re.compile(r"Environment health has transitioned from (\w+) to (\w+)")


def color_of(name: str | None) -> str | None:
    """Return the color of a health color or status name (any case), or None when unknown."""
    if not name:
        return None
    lowered = name.lower()
    for color in COLORS:
        if color.lower() == lowered:
            return color
    return STATUS_COLORS.get(lowered)


def color_accepted(color: str | None, accept_yellow: bool) -> bool:
    """Return whether a health color counts as healthy, leaving the settling window aside."""
    return color == "Green" or (color == "Yellow" and accept_yellow)


def settled_since(updated_at: float, events: Iterable[tuple[float, str]]) -> float | None:
    """Return since when health has stayed Yellow or better, or None while it is worse.

    `updated_at` is the environment's DateUpdated, when its last update completed; `events`
    are EB's event dates and messages since then, in any order. A health transition to Red or
    Grey restarts the window at the next transition back to Yellow or better.
    """
    since: float | None = updated_at
    for date, message in sorted(events, key=lambda event: event[0]):
        match = HEALTH_TRANSITION.search(message)
        if match is None:
            continue
        if color_accepted(color_of(match.group(2)), accept_yellow=True):
            since = date if since is None else since
        else:
            since = None
    return since


@dataclass(frozen=True)
class HealthVerdict:
    """The decision on one health check, and why."""

    outcome: Literal["accepted", "waiting", "failed"]
    reason: str


def judge_health(
    color: str | None,
    status: str | None,
    rules: HealthSettings,
    settled_for: Callable[[], float],
) -> HealthVerdict:
    """Decide whether a Ready environment's health accepts, fails or keeps the deployment waiting.

    `settled_for` returns the seconds health has stayed Yellow or better. It reads EB's events,
    so it is called only for Yellow in an environment that accepts Yellow.
    """
    described = f"{color} ({status})" if status else str(color)
    if color == "Green":
        return HealthVerdict("accepted", f"health {described}")
    if color == "Red":
        return HealthVerdict("failed", f"health is {described}")
    if color == "Yellow" and not rules.accept_yellow:
        return HealthVerdict(
            "waiting",
            f"health is {described}; this environment accepts only Green (health.accept_yellow is "
            "false)",
        )
    if color == "Yellow":
        settled = settled_for()
        window = rules.settling_seconds
        if settled >= window:
            return HealthVerdict(
                "accepted",
                f"health {described} accepted after {settled:.0f} s (settling {window} s)",
            )
        return HealthVerdict(
            "waiting",
            f"health is {described} for {settled:.0f} s of the {window} s settling window",
        )
    return HealthVerdict(
        "waiting", f"health is {described}: Elastic Beanstalk has no health data yet"
    )
