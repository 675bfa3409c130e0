"""Faults that scenarios inject into a stack's DIY backend, written as Pulumi itself leaves them.

- A lock file of another Pulumi process (`.pulumi/locks/organization/<project>/<stack>/<uuid>.json`
  with pid, username, hostname and an RFC 3339 timestamp), live or left behind by a killed run.
- The checkpoint of an `up` killed while it created the EB environment: the environment is in
  `pending_operations` as a `creating` operation with its inputs and no ID or outputs, and not
  in `resources`, although EB runs it.
- A checkpoint whose root stack resource lost its outputs while every other resource stays.

The checkpoint is edited as raw JSON, so encrypted secrets are kept byte for byte.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from .backend import DiyBackend
from .errors import StackNotFoundError
from .state import STACK_TYPE, empty_checkpoint

EB_ENVIRONMENT_TYPE = "aws:elasticbeanstalk/environment:Environment"
# Fields a pending create records: the resource's goal state, before the provider returned.
PENDING_CREATE_FIELDS = (
    "urn",
    "custom",
    "type",
    "inputs",
    "parent",
    "provider",
    "dependencies",
    "propertyDependencies",
)


class BackendFaultError(RuntimeError):
    """The fault cannot be applied to the stack as it is (no checkpoint, no such resource)."""


def write_lock_file(
    backend: DiyBackend,
    stack: str,
    *,
    username: str,
    hostname: str,
    pid: int,
    created: datetime,
) -> str:
    """Write another process's lock file for the stack and return its object key.

    `created` must be timezone-aware. It becomes the lock's `timestamp`, from which the
    deployment runner computes the lock's age. A stack that does not exist yet is created
    empty first, as that process's `pulumi stack init` would have done before its update.
    """
    if created.tzinfo is None:
        raise ValueError("the lock's creation time needs a time zone")
    if not backend.stack_exists(stack):
        backend.write_checkpoint(stack, empty_checkpoint(backend.fully_qualified_name(stack)))
    key = f"{backend.lock_dir(stack)}{uuid.uuid4()}.json"
    content = {
        "pid": pid,
        "username": username,
        "hostname": hostname,
        "timestamp": created.isoformat().replace("+00:00", "Z"),
    }
    backend.put_object(key, json.dumps(content).encode())
    return key


def interrupt_environment_create(backend: DiyBackend, stack: str) -> str:
    """Rewrite the checkpoint as an `up` killed while creating the EB environment left it.

    Returns the URN of the environment, which the checkpoint now lists as a pending create.
    """
    checkpoint = _read(backend, stack)
    latest = checkpoint["checkpoint"]["latest"]
    resources = latest.get("resources") or []
    environment = next((r for r in resources if r.get("type") == EB_ENVIRONMENT_TYPE), None)
    if environment is None:
        raise BackendFaultError(
            f"stack {stack} has no {EB_ENVIRONMENT_TYPE} in its state to leave half-created"
        )
    pending = {field: environment[field] for field in PENDING_CREATE_FIELDS if field in environment}
    latest["resources"] = [r for r in resources if r is not environment]
    latest["pending_operations"] = [
        *(latest.get("pending_operations") or []),
        {"resource": pending, "type": "creating"},
    ]
    backend.write_checkpoint(stack, checkpoint)
    return str(environment["urn"])


def wipe_stack_outputs(backend: DiyBackend, stack: str) -> list[str]:
    """Remove the outputs of the root stack resource and return the names that were removed."""
    checkpoint = _read(backend, stack)
    resources = checkpoint["checkpoint"]["latest"].get("resources") or []
    root = next((r for r in resources if r.get("type") == STACK_TYPE), None)
    if root is None or not root.get("outputs"):
        raise BackendFaultError(f"stack {stack} has no outputs to wipe")
    names = sorted(root["outputs"])
    root["outputs"] = {}
    backend.write_checkpoint(stack, checkpoint)
    return names


def _read(backend: DiyBackend, stack: str) -> dict[str, Any]:
    try:
        checkpoint = backend.read_checkpoint(stack)
    except StackNotFoundError:
        raise BackendFaultError(
            f"stack {stack} has no checkpoint yet. Arm the fault at a step after a deployment."
        ) from None
    if not (checkpoint.get("checkpoint") or {}).get("latest"):
        raise BackendFaultError(f"stack {stack} has an empty checkpoint: nothing was deployed")
    return checkpoint
