"""The result document the runner writes to RESULT_URI, and what it parses into it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import RunnerError
from .settings import parse_result_uri

# Lines of the "Resources:" block the CLI prints after a preview or an update.
_SUMMARY_LINE = re.compile(
    r"^\s*(?:\+-|[+~-])?\s*(\d+)\s+"
    r"(to create|created|to update|updated|to delete|deleted|to replace|replaced|unchanged)\b"
)
_SUMMARY_KEYS = {
    "to create": "create",
    "created": "create",
    "to update": "update",
    "updated": "update",
    "to delete": "delete",
    "deleted": "delete",
    "to replace": "replace",
    "replaced": "replace",
    "unchanged": "same",
}
CHANGE_KEYS = ("create", "update", "delete", "replace")


def parse_change_summary(output: str) -> dict[str, int]:
    """Resource counts from the last "Resources:" block of a preview or update output."""
    block = output.rsplit("Resources:", 1)
    if len(block) != 2:
        return {}
    counts: dict[str, int] = {}
    for line in block[1].splitlines()[1:]:
        match = _SUMMARY_LINE.match(line)
        if match:
            key = _SUMMARY_KEYS[match.group(2)]
            counts[key] = counts.get(key, 0) + int(match.group(1))
        elif line.strip() and counts:
            break
    return counts


def has_changes(counts: dict[str, int]) -> bool:
    return any(counts.get(key, 0) for key in CHANGE_KEYS)


def public_outputs(stack_output_json: str) -> dict[str, Any]:
    """Stack outputs from `pulumi stack output --json`, without the masked secret ones."""
    outputs = json.loads(stack_output_json or "{}")
    return {key: value for key, value in outputs.items() if value != "[secret]"}


@dataclass
class ResultDocument:
    """Result of one build, read back by the state machine."""

    action: str
    stack: str
    project: str
    request_id: str
    changes: bool | None = None
    commands: list[str] = field(default_factory=list)
    summary: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    # What the runner fixed before or during the action (pending operations, stale locks,
    # an `up` run again after EB became Ready), one object per repair.
    repairs: list[dict[str, Any]] = field(default_factory=list)
    # Differences of a drift check that are EB's rewrites of option settings (see noise.py).
    ignored_diffs: list[dict[str, str]] = field(default_factory=list)
    # What the drift check's preview found different from the program, one line per resource
    # (`check` and `check-only`).
    drift: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0
    error: RunnerError | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "stack": self.stack,
            "project": self.project,
            "requestId": self.request_id,
            "changes": self.changes,
            "commands": self.commands,
            "summary": self.summary,
            "outputs": self.outputs,
            "repairs": self.repairs,
            "ignoredDiffs": self.ignored_diffs,
            "drift": self.drift,
            "durationSeconds": round(self.duration_seconds, 3),
            "error": (
                None
                if self.error is None
                else {"name": self.error.name, "message": str(self.error)}
            ),
        }

    def write(self, s3: Any, result_uri: str) -> None:
        bucket, key = parse_result_uri(result_uri)
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(self.to_json(), indent=2).encode(),
            ContentType="application/json",
        )
