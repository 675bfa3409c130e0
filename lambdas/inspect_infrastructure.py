"""InspectInfrastructure: read the stack's outputs and the EB environment, then choose a plan.

The order matters. No `ebEnvironmentName` output means the stack was never provisioned. An
environment missing or Terminated in EB means Pulumi's state is stale and must be recovered.
An environment mid-operation is waited out. A live environment gets a drift check, unless the
environment's infra_check policy lets the fast path skip Pulumi (plan `none`): the program's
fingerprint is the one of the last good run and that run is recent enough. A scheduled drift
check (trigger=schedule) gets `check-drift` whatever the policy (see scheduled_check_plan).
"""

from __future__ import annotations

import os
from typing import Any

from .common import clock
from .common.beanstalk import TRANSITIONAL_STATUSES, find_environment, summarize
from .common.drift import DRIFT_CHECK_TRIGGER
from .common.lease import check_fence
from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.settings import EnvironmentSettings, current_settings
from .common.store import read_infrastructure_record


def choose_plan(outputs: dict[str, Any], environment: dict[str, Any] | None) -> tuple[str, str]:
    """Return (plan, reason) from the state alone; a live environment gets `check-drift`."""
    name = outputs.get("ebEnvironmentName")
    if not name:
        return "provision", "the stack has no ebEnvironmentName output"
    if environment is None:
        return "recover", f"environment {name} is terminated or missing in Elastic Beanstalk"
    status = environment.get("Status")
    if status in TRANSITIONAL_STATUSES:
        return "wait-transitional", f"environment {name} is {status}"
    return "check-drift", f"environment {name} is {status}"


def apply_policy(
    settings: EnvironmentSettings,
    fingerprint: str,
    last_run: dict[str, Any] | None,
    now: float,
    *,
    pending_operations: int = 0,
) -> tuple[str, str]:
    """Decide between `check-drift` and `none` for a live environment.

    Pending operations in the state mean a Pulumi run was killed after the last clean one,
    so `auto` runs the check, whose runner repairs them first.
    """
    if settings.infra_check == "never":
        return "none", "infra_check is never: Pulumi runs only to provision or recover"
    if settings.infra_check == "always":
        return "check-drift", "infra_check is always"
    if pending_operations:
        return "check-drift", (
            f"the state has {pending_operations} pending operation(s) from an interrupted "
            "Pulumi run"
        )
    if not last_run:
        return "check-drift", "no clean Pulumi run is recorded for this environment"
    if last_run.get("fingerprint") != fingerprint:
        return "check-drift", "the Pulumi program or its stack config changed since the last run"
    age = now - float(last_run.get("checkedAt", 0))
    if age > settings.drift_check_max_age_seconds:
        return "check-drift", f"the last drift check is {age:.0f} s old"
    return "none", f"program unchanged and drift checked {age:.0f} s ago"


def scheduled_check_plan(
    settings: EnvironmentSettings, plan: str, reason: str
) -> tuple[str, str, bool]:
    """Return (plan, reason, check_only) for a scheduled drift check (trigger=schedule).

    A scheduled check always previews and never provisions or recovers. A terminated or
    missing environment shows up in the refreshing preview as drift, and automatic recovery
    recreates it with its app version, so the check does not remediate it. An environment
    mid-operation is waited out first, as for a deployment.
    """
    if plan == "wait-transitional":
        return plan, reason, True
    if plan != "check-drift":
        return (
            "check-drift",
            f"{reason}; a scheduled check only previews it, and recovery or a deployment "
            "recreates it",
            True,
        )
    if settings.drift_check.remediate:
        return "check-drift", f"{reason}; scheduled check, drift_check.remediate is true", False
    return "check-drift", f"{reason}; scheduled check only", True


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target = task.require_target()
    settings = current_settings().environment(target.environment)
    fingerprint = os.environ.get("PROGRAM_FINGERPRINT", "unknown")

    state = target.read_state()
    environment = None
    name = state.outputs.get("ebEnvironmentName")
    application = state.outputs.get("ebApplicationName") or target.eb_application
    if name:
        environment = find_environment(target.region, application, name)
    plan, reason = choose_plan(state.outputs, environment)
    check_only = False
    if task.request.trigger == DRIFT_CHECK_TRIGGER:
        plan, reason, check_only = scheduled_check_plan(settings, plan, reason)
    elif plan == "check-drift":
        last_run = read_infrastructure_record(target.environment)
        plan, reason = apply_policy(
            settings,
            fingerprint,
            last_run,
            clock.now(),
            pending_operations=state.pending_operations,
        )

    if plan != "none":
        # The Pulumi run follows this task: it must start only under a live lease.
        check_fence(target.environment, task.request.request_id, task.lock)
    logger.info(
        "plan chosen",
        extra={
            "plan": plan,
            "reason": reason,
            "policy": settings.infra_check,
            "check_only": check_only,
            "pending_operations": state.pending_operations,
        },
    )
    return {
        "plan": plan,
        "reason": reason,
        "fingerprint": fingerprint,
        # ChoosePlan reads it: a scheduled check previews without `pulumi up`.
        "checkOnly": check_only,
        "environmentName": name,
        "environment": summarize(environment) if environment else None,
    }
