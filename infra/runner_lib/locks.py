"""Pulumi stack locks as the CLI reports them, and the runner's description of them.

A DIY backend lists each lock in its error as
`  s3://bucket/.pulumi/locks/organization/<project>/<stack>/<id>.json: created by
user@host (pid N) at <RFC3339 time>` (pkg/backend/diy/lock.go).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

LOCK_TEXTS = (
    "the stack is currently locked by",
    # Pulumi Cloud's error while another update runs.
    "[409] Conflict: Another update is currently in progress.",
)
_LOCK_LINE = re.compile(
    r"^\s*(?P<path>\S+): created by (?P<user>\S*)@(?P<host>\S*) \(pid (?P<pid>\d+)\) "
    r"at (?P<created>\S+)\s*$"
)


@dataclass(frozen=True)
class LockInfo:
    """One lock file: where it is, who created it and when (None when unreadable)."""

    path: str
    owner: str
    created_text: str
    created: datetime | None

    def age_seconds(self, now: datetime) -> int | None:
        if self.created is None:
            return None
        return max(0, int((now - self.created).total_seconds()))


def is_locked(output: str) -> bool:
    return any(text in output for text in LOCK_TEXTS)


def parse_locks(output: str) -> list[LockInfo]:
    locks = []
    for line in output.splitlines():
        match = _LOCK_LINE.match(line)
        if match is None:
            continue
        created_text = match.group("created")
        locks.append(
            LockInfo(
                path=match.group("path"),
                owner=f"{match.group('user')}@{match.group('host')} (pid {match.group('pid')})",
                created_text=created_text,
                created=_parse_time(created_text),
            )
        )
    return locks


def _parse_time(text: str) -> datetime | None:
    # Go prints up to nanoseconds, which fromisoformat rejects: drop the fraction.
    whole_seconds = re.sub(r"\.\d+", "", text).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(whole_seconds)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def format_age(seconds: int) -> str:
    """Format an age as "45 s", "12 min" or "3 h 12 min"."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def describe_locks(locks: list[LockInfo], now: datetime) -> str:
    """Describe each lock in one sentence: path, owner, creation time and age."""
    if not locks:
        return "The error names no lock file, so the lock's owner and age are unknown."
    sentences = []
    for lock in locks:
        age = lock.age_seconds(now)
        when = lock.created_text
        if age is not None:
            when = f"{when} ({format_age(age)} ago)"
        sentences.append(f"Lock {lock.path} is held by {lock.owner}, created {when}.")
    return " ".join(sentences)
