"""Decide what `pulumi preview --refresh --diff --expect-no-changes --json` found.

The decision comes from the JSON document (the CLI's PreviewDigest with `steps`, `diagnostics`
and `changeSummary`), not from the exit code alone. Exit code 7 means that the preview counted
changes, but some of those are EB's rewrites of option settings (see `noise`), and a failed
preview may also print steps.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .noise import settings_noise
from .pulumi_cli import CommandResult

EXIT_CHANGES_PROPOSED = 7
EB_ENVIRONMENT_TYPE = "aws:elasticbeanstalk/environment:Environment"
# Step operations that change nothing: Pulumi's engine.HasChanges skips same, read, discard and
# read-replacement, and a refresh step only reads.
NO_CHANGE_OPS = frozenset({"same", "read", "discard", "read-replacement", "refresh"})
# AWS error codes of expired or unknown credentials (STS and the other services).
CREDENTIAL_ERROR = re.compile(
    r"\b(ExpiredToken(?:Exception)?|InvalidClientTokenId|UnrecognizedClientException)\b"
)
SUMMARY_KEYS = {
    "create": "create",
    "update": "update",
    "delete": "delete",
    "replace": "replace",
    "create-replacement": "replace",
    "same": "same",
}


@dataclass
class PreviewOutcome:
    """Result of a preview: a failure, real changes, or none (`clean`)."""

    kind: Literal["failed", "changes", "clean"]
    reason: str
    summary: dict[str, int] = field(default_factory=dict)
    changes: list[str] = field(default_factory=list)
    ignored: list[dict[str, str]] = field(default_factory=list)


def parse_digest(stdout: str) -> dict[str, Any] | None:
    """Return the JSON document in the preview's stdout, or None when there is none."""
    text = stdout.strip()
    if not text:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        # Lines before the document (a warning from a plugin) do not hide it.
        start = text.find("\n{")
        if start < 0:
            return None
        try:
            document, _ = json.JSONDecoder().raw_decode(text[start + 1 :])
        except json.JSONDecodeError:
            return None
    return document if isinstance(document, dict) else None


def classify_preview(result: CommandResult) -> PreviewOutcome:
    """Classify a finished preview. A failure never counts as changes."""
    digest = parse_digest(result.stdout)
    if digest is None:
        return PreviewOutcome(
            "failed",
            f"`pulumi preview --json` printed no JSON document (exit code {result.exit_code}): "
            f"{result.error_text()}",
        )
    summary = _summary(digest.get("changeSummary"))
    errors = [
        str(item.get("message", "")).strip()
        for item in digest.get("diagnostics") or []
        if isinstance(item, dict) and item.get("severity") == "error"
    ]
    if errors:
        return PreviewOutcome("failed", _error_reason(errors), summary)
    if result.exit_code not in (0, EXIT_CHANGES_PROPOSED):
        return PreviewOutcome(
            "failed",
            f"`pulumi preview` failed (exit code {result.exit_code}): {result.error_text()}",
            summary,
        )

    changes: list[str] = []
    ignored: list[dict[str, str]] = []
    noise_steps = 0
    for step in digest.get("steps") or []:
        op = step.get("op", "")
        if op in NO_CHANGE_OPS:
            continue
        noise = _settings_noise(step)
        if noise is None:
            reasons = ", ".join(step.get("diffReasons") or []) or "-"
            changes.append(f"{op} {step.get('urn', '?')} (diff: {reasons})")
        else:
            noise_steps += 1
            ignored.extend({"urn": step.get("urn", ""), **item} for item in noise)

    if result.exit_code == EXIT_CHANGES_PROPOSED and not changes and not noise_steps:
        # The CLI counted a change that no step shows, so `up --refresh` settles it.
        changes.append("exit code 7 (changes proposed) with no changed step in the JSON")
    if changes:
        return PreviewOutcome("changes", "; ".join(changes), summary, changes, ignored)
    return PreviewOutcome("clean", "no changes", summary, [], ignored)


def _summary(change_summary: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op, count in (change_summary or {}).items():
        key = SUMMARY_KEYS.get(op)
        if key is not None and isinstance(count, int):
            counts[key] = counts.get(key, 0) + count
    return counts


def _error_reason(errors: list[str]) -> str:
    text = "\n".join(errors)
    credential = CREDENTIAL_ERROR.search(text)
    if credential:
        return (
            f"AWS rejected the build's credentials ({credential.group(1)}), so the preview "
            "could not read the stack's resources. Check the CodeBuild role and its session, "
            f"then deploy again. Preview diagnostics: {text[-1500:]}"
        )
    return f"`pulumi preview` reported errors: {text[-2000:]}"


def _settings_noise(step: dict[str, Any]) -> list[dict[str, str]] | None:
    """Return the differences of a step when EB's rewrites of settings cause all of them."""
    if step.get("op") != "update":
        return None
    old_state = step.get("oldState") or {}
    new_state = step.get("newState") or {}
    qualified_type = (str(step.get("urn", "")).split("::")[2:3] or [""])[0]
    type_token = new_state.get("type") or old_state.get("type") or qualified_type
    if not type_token.endswith(EB_ENVIRONMENT_TYPE):
        return None
    keys = set(step.get("diffReasons") or [])
    detailed = step.get("detailedDiff") or {}
    keys |= {re.split(r"[.\[]", key, maxsplit=1)[0] for key in detailed}
    if keys != {"settings"}:
        return None
    # The refreshed state keeps EB's values in outputs, and the program's values are inputs.
    old = (old_state.get("outputs") or {}).get("settings")
    if old is None:
        old = (old_state.get("inputs") or {}).get("settings")
    new = (new_state.get("inputs") or {}).get("settings")
    return settings_noise(old, new)
