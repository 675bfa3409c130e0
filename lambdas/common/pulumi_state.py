"""Read stack outputs straight from Pulumi's DIY S3 backend, without the Pulumi CLI.

The checkpoint layout is Pulumi's own (pkg/backend/diy): `.pulumi/stacks/<project>/<stack>.json`
for the project-scoped layout (meta.yaml version 1) and `.pulumi/stacks/<stack>.json` for the
legacy one. Stack outputs are the `outputs` of the root `pulumi:pulumi:Stack` resource. Secret
outputs stay encrypted: they are reported as "[secret]" and never decrypted or logged.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from .aws import client, error_code

SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


@dataclass(frozen=True)
class Backend:
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> Backend:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(
                f"unsupported Pulumi backend URL {url!r}: expected s3://bucket[/prefix]"
            )
        return cls(bucket=parsed.netloc, prefix=parsed.path.strip("/"))

    def key(self, *parts: str) -> str:
        return "/".join(part for part in (self.prefix, ".pulumi", *parts) if part)


@dataclass
class StackState:
    """What the checkpoint says about a stack."""

    exists: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    resource_count: int = 0
    pending_operations: int = 0


def _mask_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if SECRET_SIGNATURE in value:
            return "[secret]"
        return {key: _mask_secrets(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_secrets(item) for item in value]
    return value


def _get(bucket: str, key: str, region: str | None) -> bytes | None:
    s3 = client("s3", region)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as error:
        if error_code(error) in {"NoSuchKey", "404", "NotFound"}:
            return None
        raise
    return gzip.decompress(body) if key.endswith(".gz") else body


def parse_checkpoint(document: dict[str, Any]) -> StackState:
    """Extract the outputs and health of a checkpoint document (format version 3 or 4)."""
    latest = (document.get("checkpoint") or {}).get("latest") or {}
    resources = latest.get("resources") or []
    outputs: dict[str, Any] = {}
    for resource in resources:
        if resource.get("type") == ROOT_STACK_TYPE:
            outputs = _mask_secrets(resource.get("outputs") or {})
            break
    return StackState(
        exists=True,
        outputs=outputs,
        resource_count=len(resources),
        pending_operations=len(latest.get("pending_operations") or []),
    )


def read_stack_state(backend_url: str, project: str, stack: str, region: str) -> StackState:
    """Read the stack's checkpoint; `exists` is False when the stack has no state yet."""
    backend = Backend.parse(backend_url)
    candidates = [
        backend.key("stacks", project, f"{stack}.json"),
        backend.key("stacks", project, f"{stack}.json.gz"),
        backend.key("stacks", f"{stack}.json"),
    ]
    for key in candidates:
        body = _get(backend.bucket, key, region)
        if body is not None:
            return parse_checkpoint(json.loads(body))
    return StackState(exists=False)
