"""Plain-text progress, diffs and summaries in the shape of the CLI's non-interactive output."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TextIO

from .state import contains_unknown, is_secret, normalize

if TYPE_CHECKING:
    from .digest import PreviewDigest
    from .state import ResourceState

SYMBOLS = {"create": "+", "update": "~", "delete": "-", "replace": "+-", "same": " "}
PAST_TENSE = {"create": "created", "update": "updated", "delete": "deleted", "replace": "replaced"}
CHANGE_OPS = ("create", "update", "delete", "replace")
MAX_VALUE_CHARS = 240


def display_type(type_token: str) -> str:
    """Type as the CLI shows it: `aws:s3/bucketV2:BucketV2` becomes `aws:s3:BucketV2`."""
    parts = type_token.split(":")
    if len(parts) == 3 and "/" in parts[1]:
        module, member = parts[1].split("/", 1)
        if member[:1].lower() + member[1:] == parts[2][:1].lower() + parts[2][1:]:
            return f"{parts[0]}:{module}:{parts[2]}"
    return type_token


def format_value(value: Any) -> str:
    """Value as the CLI shows it: secrets masked, unknowns as `output<string>`."""
    if is_secret(value):
        return "[secret]"
    if contains_unknown(value):
        return "output<string>"
    text = json.dumps(_mask_secrets(normalize(value)), sort_keys=True)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 3] + "..."
    return text


def _mask_secrets(value: Any) -> Any:
    if is_secret(value):
        return "[secret]"
    if isinstance(value, dict):
        return {key: _mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_secrets(item) for item in value]
    return value


class Display:
    """Writes one operation's progress to stdout.

    With a `digest` (`preview --json`), every step and warning is also recorded there.
    """

    def __init__(
        self,
        *,
        applied: bool,
        show_diff: bool = False,
        out: TextIO | None = None,
        digest: PreviewDigest | None = None,
    ):
        self.applied = applied
        self.show_diff = show_diff
        self.out = out or sys.stdout
        self.digest = digest
        self.counts: Counter[str] = Counter()

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def warning(self, message: str) -> None:
        self.line(f"warning: {message}")
        if self.digest is not None:
            self.digest.add_diagnostic("warning", message)

    def step(
        self,
        op: str,
        type_token: str,
        name: str,
        *,
        changed: Iterable[str] = (),
        old: dict[str, Any] | None = None,
        new: dict[str, Any] | None = None,
        urn: str = "",
        old_state: ResourceState | None = None,
        new_state: ResourceState | None = None,
    ) -> None:
        """Count a step and print it unless it changes nothing.

        `old` and `new` are the property maps the diff shows; `old_state` and `new_state`
        are the whole resources that a digest records.
        """
        self.counts[op] += 1
        changed = sorted(changed)
        if self.digest is not None:
            self.digest.add_step(op, urn, changed=changed, old=old_state, new=new_state)
        if op == "same":
            return
        verb = PAST_TENSE[op] if self.applied else op
        suffix = f" [diff: {', '.join('~' + key for key in changed)}]" if changed else ""
        self.line(f" {SYMBOLS[op]:<2} {display_type(type_token)} {name} {verb}{suffix}")
        if self.show_diff and changed and old is not None and new is not None:
            for key in changed:
                self._property_diff(key, old.get(key), new.get(key), key in old, key in new)

    def _property_diff(
        self, key: str, before: Any, after: Any, had_before: bool, has_after: bool
    ) -> None:
        if isinstance(before, list) and isinstance(after, list):
            # Lists (such as EB option settings) show the elements removed and added.
            self.line(f"      ~ {key}:")
            old_items = [format_value(item) for item in before]
            new_items = [format_value(item) for item in after]
            for item in old_items:
                if item not in new_items:
                    self.line(f"          - {item}")
            for item in new_items:
                if item not in old_items:
                    self.line(f"          + {item}")
            return
        old_text = format_value(before) if had_before else "undefined"
        new_text = format_value(after) if has_after else "undefined"
        self.line(f"      ~ {key}: {old_text} => {new_text}")

    def outputs(self, outputs: dict[str, Any]) -> None:
        if not outputs:
            return
        self.line()
        self.line("Outputs:")
        for name in sorted(outputs):
            self.line(f"    {name}: {format_value(outputs[name])}")

    def summary(self) -> None:
        self.line()
        self.line("Resources:")
        for op in CHANGE_OPS:
            count = self.counts.get(op, 0)
            if count:
                label = PAST_TENSE[op] if self.applied else f"to {op}"
                self.line(f"    {SYMBOLS[op]}{'' if op == 'replace' else ' '}{count} {label}")
        unchanged = self.counts.get("same", 0)
        if unchanged:
            self.line(f"    {unchanged} unchanged")

    def has_changes(self) -> bool:
        return any(self.counts.get(op, 0) for op in CHANGE_OPS)

    def change_counts(self) -> dict[str, int]:
        return {op: count for op, count in self.counts.items() if count}
