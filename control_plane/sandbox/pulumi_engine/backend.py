"""Pulumi's DIY S3 backend layout (project mode, `.pulumi/meta.yaml` version 1).

Paths and texts follow `pkg/backend/diy/{backend,state,lock}.go` of the Pulumi CLI:
checkpoints in `.pulumi/stacks/<project>/<stack>.json` (the previous one copied to `.bak`),
update history and backups, and one lock file per running operation in
`.pulumi/locks/organization/<project>/<stack>/<uuid>.json`.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from botocore.exceptions import ClientError

from .errors import ConfigurationError, StackLockedError, StackNotFoundError

META_KEY = ".pulumi/meta.yaml"


@dataclass(frozen=True)
class BackendUrl:
    """A parsed `s3://bucket[/prefix][?region=...]` backend URL."""

    original: str
    bucket: str
    prefix: str
    region: str | None
    query: str

    @classmethod
    def parse(cls, url: str) -> BackendUrl:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigurationError(
                f"PULUMI_BACKEND_URL={url!r} is not supported by the sandbox engine: it "
                "stores state only in an S3 bucket (s3://bucket)."
            )
        region = parse_qs(parts.query).get("region", [None])[0]
        prefix = parts.path.strip("/")
        return cls(url, parts.netloc, f"{prefix}/" if prefix else "", region, parts.query)

    def object_url(self, key: str) -> str:
        """URL of an object as the CLI prints it in lock errors (query kept)."""
        query = f"?{self.query}" if self.query else ""
        return f"s3://{self.bucket}/{self.prefix}{key}{query}"


class DiyBackend:
    """State storage for one project's stacks in an S3 bucket."""

    def __init__(
        self, url: BackendUrl, project: str, s3: Any, *, write_backups: bool = True
    ) -> None:
        self.url = url
        self.project = project
        self._s3 = s3
        self._write_backups = write_backups
        self._lock_id = str(uuid.uuid4())

    # Paths ---------------------------------------------------------------------------

    def _key(self, relative: str) -> str:
        return f"{self.url.prefix}{relative}"

    def stack_key(self, stack: str) -> str:
        return self._key(f".pulumi/stacks/{self.project}/{stack}.json")

    def lock_dir(self, stack: str) -> str:
        return self._key(f".pulumi/locks/organization/{self.project}/{stack}/")

    def _own_lock_key(self, stack: str) -> str:
        return f"{self.lock_dir(stack)}{self._lock_id}.json"

    def fully_qualified_name(self, stack: str) -> str:
        return f"organization/{self.project}/{stack}"

    # Objects -------------------------------------------------------------------------

    def _get(self, key: str) -> bytes | None:
        try:
            response = self._s3.get_object(Bucket=self.url.bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            if error.response["Error"]["Code"] == "NoSuchBucket":
                raise ConfigurationError(
                    f"the state bucket {self.url.bucket!r} of PULUMI_BACKEND_URL does not "
                    "exist; create it before running pulumi"
                ) from error
            raise
        return response["Body"].read()

    def put_object(self, key: str, body: bytes) -> None:
        self._s3.put_object(Bucket=self.url.bucket, Key=key, Body=body)

    def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self._s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.url.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except ClientError as error:
            if error.response["Error"]["Code"] == "NoSuchBucket":
                raise ConfigurationError(
                    f"the state bucket {self.url.bucket!r} of PULUMI_BACKEND_URL does not "
                    "exist; create it before running pulumi"
                ) from error
            raise
        return sorted(keys)

    # Layout metadata -----------------------------------------------------------------

    def ensure_layout(self) -> None:
        """Write `.pulumi/meta.yaml` (version 1) if missing; reject the legacy layout."""
        meta = self._get(self._key(META_KEY))
        if meta is None:
            self.put_object(self._key(META_KEY), b"version: 1\n")
            return
        text = meta.decode()
        if "version: 1" not in text:
            raise ConfigurationError(
                f"{self.url.object_url(META_KEY)} declares a layout other than version 1 "
                f"({text.strip()!r}); the sandbox engine supports only the project layout"
            )

    # Stacks --------------------------------------------------------------------------

    def list_stacks(self) -> list[str]:
        prefix = self._key(f".pulumi/stacks/{self.project}/")
        names = []
        for key in self._list(prefix):
            file_name = key[len(prefix) :]
            if "/" not in file_name and file_name.endswith(".json"):
                names.append(file_name[: -len(".json")])
        return names

    def stack_exists(self, stack: str) -> bool:
        return self._get(self.stack_key(stack)) is not None

    def read_checkpoint(self, stack: str) -> dict[str, Any]:
        body = self._get(self.stack_key(stack))
        if body is None:
            raise StackNotFoundError(f"no stack named '{stack}' found")
        return json.loads(body)

    def write_checkpoint(self, stack: str, checkpoint: dict[str, Any]) -> None:
        """Copy the current checkpoint to `<stack>.json.bak`, then write the new one."""
        key = self.stack_key(stack)
        if self._get(key) is not None:
            self._s3.copy_object(
                Bucket=self.url.bucket,
                Key=f"{key}.bak",
                CopySource={"Bucket": self.url.bucket, "Key": key},
            )
        self.put_object(key, json.dumps(checkpoint, indent=4).encode())

    def write_backup(self, stack: str) -> None:
        """Copy the checkpoint to `.pulumi/backups/...`, as the CLI does after an update."""
        if not self._write_backups:
            return
        body = self._get(self.stack_key(stack))
        if body is None:
            return
        key = self._key(f".pulumi/backups/{self.project}/{stack}/{stack}.{time.time_ns()}.json")
        self.put_object(key, body)

    def add_history(self, stack: str, update_info: dict[str, Any]) -> None:
        """Write `<stack>-<unixnano>.history.json` and a copy of the checkpoint beside it."""
        prefix = self._key(f".pulumi/history/{self.project}/{stack}/{stack}-{time.time_ns()}")
        self.put_object(f"{prefix}.history.json", json.dumps(update_info).encode())
        self._s3.copy_object(
            Bucket=self.url.bucket,
            Key=f"{prefix}.checkpoint.json",
            CopySource={"Bucket": self.url.bucket, "Key": self.stack_key(stack)},
        )

    # Locks ---------------------------------------------------------------------------

    def lock(self, stack: str) -> None:
        """Take the stack's lock, raising StackLockedError when another lock exists.

        Like the CLI, it checks, writes its own lock file, then checks again, so two
        operations that start together both see each other's lock and back off.
        """
        self._check_for_lock(stack)
        content = {
            "pid": os.getpid(),
            "username": _username(),
            "hostname": socket.gethostname(),
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        self.put_object(self._own_lock_key(stack), json.dumps(content).encode())
        try:
            self._check_for_lock(stack)
        except StackLockedError:
            self.unlock(stack)
            raise

    def unlock(self, stack: str) -> None:
        self._s3.delete_object(Bucket=self.url.bucket, Key=self._own_lock_key(stack))

    def _check_for_lock(self, stack: str) -> None:
        own_key = self._own_lock_key(stack)
        others = [key for key in self._list(self.lock_dir(stack)) if key != own_key]
        if not others:
            return
        message = (
            f"the stack is currently locked by {len(others)} lock(s). Either wait for the "
            "other process(es) to end or delete the lock file with `pulumi cancel`."
        )
        for key in others:
            content = json.loads(self._get(key) or b"{}")
            message += (
                f"\n  {self.url.object_url(key[len(self.url.prefix) :])}: created by "
                f"{content.get('username')}@{content.get('hostname')} "
                f"(pid {content.get('pid')}) at {_rfc3339_seconds(content.get('timestamp'))}"
            )
        raise StackLockedError(message)

    def is_locked(self, stack: str) -> bool:
        return bool(self._list(self.lock_dir(stack)))

    def cancel(self, stack: str) -> int:
        """Delete every lock file of the stack and return how many there were."""
        keys = self._list(self.lock_dir(stack))
        for key in keys:
            self._s3.delete_object(Bucket=self.url.bucket, Key=key)
        return len(keys)


def _username() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _rfc3339_seconds(timestamp: str | None) -> str:
    """Format a lock timestamp as Go's time.RFC3339 (no fractional seconds)."""
    if not timestamp:
        return "<unknown time>"
    # Go writes up to nanoseconds, which fromisoformat rejects: drop the fraction.
    whole_seconds = re.sub(r"\.\d+", "", timestamp)
    try:
        parsed = datetime.fromisoformat(whole_seconds.replace("Z", "+00:00"))
    except ValueError:
        return timestamp
    text = parsed.replace(microsecond=0).isoformat()
    return text.replace("+00:00", "Z")
