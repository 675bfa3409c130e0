"""The JSON document of `pulumi preview --json`.

The shape is the CLI's `PreviewDigest` (`sdk/go/common/display`, written by
`pkg/backend/display/json.go`): `config`, `steps` (the root stack and every step that is not
`same`), `diagnostics`, `duration` (Go nanoseconds), `changeSummary` (count per operation).
Each step carries `op`, `urn`, `provider`, `oldState` and `newState` (checkpoint resources
with secrets shown as "[secret]"), `diffReasons` and `detailedDiff`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from .state import STACK_TYPE, ResourceState, contains_unknown, is_secret, normalize

# The value the CLI writes for a property that is unknown during a preview
# (`UnknownStringValue` of the Pulumi SDK).
UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _json_value(value: Any) -> Any:
    if is_secret(value):
        return "[secret]"
    if contains_unknown(value) and not isinstance(value, dict | list):
        return UNKNOWN_VALUE
    if isinstance(value, dict):
        return {key: _json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_value(item) for item in value]
    return normalize(value)


def resource_json(resource: ResourceState) -> dict[str, Any]:
    """Serialize a resource as the digest shows it: ResourceV3 fields, secrets masked."""
    document: dict[str, Any] = {"urn": resource.urn, "custom": resource.custom}
    if resource.custom:
        document["id"] = resource.id
    document["type"] = resource.type
    document["inputs"] = _json_value(resource.inputs)
    document["outputs"] = _json_value(resource.outputs)
    if resource.parent:
        document["parent"] = resource.parent
    if resource.protect:
        document["protect"] = True
    if resource.dependencies:
        document["dependencies"] = resource.dependencies
    if resource.provider:
        document["provider"] = resource.provider
    return document


class PreviewDigest:
    """Collects a preview's steps and diagnostics and prints them as one JSON document."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.config: dict[str, str] = {}
        self.steps: list[dict[str, Any]] = []
        self.diagnostics: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()

    def add_step(
        self,
        op: str,
        urn: str,
        *,
        changed: list[str],
        old: ResourceState | None,
        new: ResourceState | None,
    ) -> None:
        self.counts[op] += 1
        is_root = urn.split("::")[2:3] == [STACK_TYPE] if urn else False
        if op == "same" and not is_root:
            return
        step: dict[str, Any] = {"op": op, "urn": urn}
        provider = (new or old).provider if (new or old) is not None else ""
        if provider:
            step["provider"] = provider
        if old is not None:
            step["oldState"] = resource_json(old)
        if new is not None:
            step["newState"] = resource_json(new)
        if changed:
            step["diffReasons"] = list(changed)
            step["detailedDiff"] = {key: {"kind": "update", "inputDiff": False} for key in changed}
        else:
            step["detailedDiff"] = None
        self.steps.append(step)

    def add_diagnostic(self, severity: str, message: str, urn: str = "") -> None:
        """Record a diagnostic. The CLI writes the `<severity>: ` prefix into the message."""
        diagnostic: dict[str, Any] = {}
        if urn:
            diagnostic["urn"] = urn
        diagnostic["message"] = f"{severity}: {message}\n"
        diagnostic["severity"] = severity
        self.diagnostics.append(diagnostic)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {}
        if self.config:
            document["config"] = self.config
        if self.steps:
            document["steps"] = self.steps
        if self.diagnostics:
            document["diagnostics"] = self.diagnostics
        document["duration"] = int((time.monotonic() - self.started) * 1e9)
        summary = {op: count for op, count in sorted(self.counts.items()) if count}
        if summary:
            document["changeSummary"] = summary
        return document

    def print(self) -> None:
        print(json.dumps(self.to_json(), indent=4), flush=True)
