"""InspectInfrastructure: read the stack's outputs and the EB environment, then choose a plan.

The order matters: no `ebEnvironmentName` output means the stack was never provisioned;
an environment missing or Terminated in EB means Pulumi's state is stale and must be recovered;
an environment mid-operation is waited out; otherwise a drift check decides whether to run `up`.
"""

from __future__ import annotations

from typing import Any

from .common.beanstalk import TRANSITIONAL_STATUSES, find_environment, summarize
from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.pulumi_state import read_stack_state


def choose_plan(outputs: dict[str, Any], environment: dict[str, Any] | None) -> tuple[str, str]:
    """Return (plan, reason)."""
    name = outputs.get("ebEnvironmentName")
    if not name:
        return "provision", "the stack has no ebEnvironmentName output"
    if environment is None:
        return "recover", f"environment {name} is terminated or missing in Elastic Beanstalk"
    status = environment.get("Status")
    if status in TRANSITIONAL_STATUSES:
        return "wait-transitional", f"environment {name} is {status}"
    return "check-drift", f"environment {name} is {status}"


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target = task.require_target()

    state = read_stack_state(target.backend_url, target.project, target.stack, target.region)
    environment = None
    name = state.outputs.get("ebEnvironmentName")
    application = state.outputs.get("ebApplicationName") or target.eb_application
    if name:
        environment = find_environment(target.region, application, name)

    plan, reason = choose_plan(state.outputs, environment)
    logger.info(
        "plan chosen",
        extra={"plan": plan, "reason": reason, "pending_operations": state.pending_operations},
    )
    return {
        "plan": plan,
        "reason": reason,
        "environmentName": name,
        "environment": summarize(environment) if environment else None,
    }
