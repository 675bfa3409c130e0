"""Arm the scenario faults that act on a stack's Pulumi backend, its builds, EB and its secrets.

Each fault leaves what the real system would leave: lock files and checkpoints in Pulumi's
S3 layout, a terminated environment in EB's listing, a missing SSM parameter (a required
secret or the stacks' Pulumi passphrase) or Secrets Manager secret. None of them reaches into
the control plane's own code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .pulumi_engine.backend import BackendUrl, DiyBackend
from .pulumi_engine.backend_faults import (
    BackendFaultError,
    interrupt_environment_create,
    wipe_stack_outputs,
    write_lock_file,
)
from .pulumi_engine.errors import EngineError
from .pulumi_engine.simulation import PREVIEW_OUTPUT_VARIABLE

if TYPE_CHECKING:
    from lambdas.common.settings import EnvironmentSettings

    from .sandbox import Sandbox

STACK_FAULTS = (
    "stack_locked",
    "stale_lock",
    "pending_operations",
    "outputs_wiped",
    "large_preview",
    "stale_terminated_environment",
    "missing_secret",
    "missing_pulumi_passphrase",
)
# Owners written into the injected lock files: another CI job that is still running, and a
# CodeBuild build that was killed mid-update.
LIVE_LOCK_OWNER = {"username": "deployer", "hostname": "ci-runner-2", "pid": 4242}
STALE_LOCK_OWNER = {"username": "root", "hostname": "ip-10-0-3-41.ec2.internal", "pid": 812}


class FaultNotArmed(RuntimeError):
    """The fault cannot act on the sandbox in its current state. The message gives the reason."""


def arm_stack_fault(
    sandbox: Sandbox, settings: EnvironmentSettings, kind: str, arguments: Any
) -> None:
    """Arm one fault of STACK_FAULTS for the environment that `settings` describes."""
    if kind == "large_preview":
        # The sandbox engine prints this much program output in every later preview.
        sandbox.codebuild.project_environment[PREVIEW_OUTPUT_VARIABLE] = str(arguments.kilobytes)
    elif kind == "stale_terminated_environment":
        sandbox.eb.list_terminated_twin()
    elif kind == "missing_secret":
        sandbox.delete_secret(settings, arguments.key)
    elif kind == "missing_pulumi_passphrase":
        sandbox.delete_pulumi_passphrase()
    else:
        _arm_backend_fault(sandbox, settings, kind, arguments)


def _arm_backend_fault(
    sandbox: Sandbox, settings: EnvironmentSettings, kind: str, arguments: Any
) -> None:
    backend = _backend(sandbox, settings)
    stack = settings.pulumi_stack
    try:
        if kind == "stack_locked":
            key = write_lock_file(backend, stack, created=datetime.now(UTC), **LIVE_LOCK_OWNER)
            s3 = sandbox.client("s3")
            bucket = backend.url.bucket
            sandbox.faults.hold_stack_lock(
                f"/{bucket}/{key}",
                arguments.runs,
                lambda: s3.delete_object(Bucket=bucket, Key=key),
            )
        elif kind == "stale_lock":
            # Lock ages use wall-clock time, because the runner compares them with its own clock.
            created = datetime.now(UTC) - timedelta(seconds=arguments.age_seconds)
            write_lock_file(backend, stack, created=created, **STALE_LOCK_OWNER)
            if arguments.cancel_stale_locks:
                sandbox.codebuild.project_environment["PULUMI_CANCEL_STALE_LOCKS"] = "true"
        elif kind == "pending_operations":
            interrupt_environment_create(backend, stack)
        elif kind == "outputs_wiped":
            wipe_stack_outputs(backend, stack)
        else:
            raise ValueError(f"{kind!r} is not a fault of the stack's backend")
    except BackendFaultError as error:
        raise FaultNotArmed(f"{kind}: {error}") from None


def _backend(sandbox: Sandbox, settings: EnvironmentSettings) -> DiyBackend:
    url = settings.resolved_backend_url(sandbox.resources.state_bucket)
    try:
        parsed = BackendUrl.parse(url)
    except EngineError as error:
        raise FaultNotArmed(
            f"the stack's backend cannot be edited in the sandbox: {error}"
        ) from None
    return DiyBackend(parsed, settings.pulumi_project, sandbox.client("s3"))
