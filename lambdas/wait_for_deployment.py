"""WaitForDeployment: wait until the environment runs the requested version and is healthy.

EB can abort an update and return to Ready on the old version looking healthy, so Ready alone
is not success. The deployment is done when the environment is Ready (EB reports Updating
until every batch of a rolling deployment is done), its version label is the requested one,
EB logged no ERROR event for this update, and its health is accepted: Green, or Yellow where
the environment's settings accept it and it has settled (lambdas/common/health.py). Red fails
the deployment at once. Anything else keeps it waiting until the deadline. WaitForRollback
runs the same checks for the previous version.
"""

from __future__ import annotations

from typing import Any

from .common import clock
from .common.beanstalk import (
    describe_state,
    error_events,
    events_since,
    find_environment,
    health_causes,
    log_fields,
    summarize,
)
from .common.errors import DeploymentFailed, EnvironmentNotReady
from .common.health import judge_health, settled_since
from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.settings import current_settings
from .common.waits import DEPLOYMENT_WAIT_SECONDS, WaitDeadline

# At most this many of EB's causes go into a failure message. EB can list one per instance.
MAX_CAUSES = 5


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target, outputs = task.require_target(), task.require_outputs()
    region, application = target.region, outputs.eb_application_name
    name, version = outputs.eb_environment_name, task.version_to_check
    deadline = WaitDeadline.from_event(event, DEPLOYMENT_WAIT_SECONDS)
    rules = current_settings().environment(task.request.environment).health

    started_at = (task.deployment or {}).get("updateStartedAt")
    if started_at and task.expected_version is None:
        errors = error_events(region, application, name, started_at)
        if errors:
            raise DeploymentFailed(
                f"Elastic Beanstalk reported {len(errors)} ERROR event(s) during the update of "
                f"{name} to {task.request.version}: " + " | ".join(errors[:3])
            )
    environment = find_environment(region, application, name)
    if environment is None:
        raise DeploymentFailed(f"environment {name} disappeared mid-update")
    summary = summarize(environment)
    logger.info("environment check", extra=log_fields(summary))
    if summary["status"] != "Ready":
        raise _keep_waiting(deadline, name, version, describe_state(summary))
    if summary["versionLabel"] != version:
        raise DeploymentFailed(
            f"environment {name} is Ready on version {summary['versionLabel']}, not "
            f"{version}: Elastic Beanstalk aborted the update; read "
            "`aws elasticbeanstalk describe-events` for the cause"
        )

    def settled_for() -> float:
        updated = environment.get("DateUpdated")
        if updated is None:
            return 0.0
        since = settled_since(updated.timestamp(), events_since(region, application, name, updated))
        return 0.0 if since is None else max(0.0, clock.now() - since)

    verdict = judge_health(summary["health"], summary["healthStatus"], rules, settled_for)
    logger.info(
        "health judged",
        extra={**log_fields(summary), "verdict": verdict.outcome, "reason": verdict.reason},
    )
    if verdict.outcome == "accepted":
        return {**summary, "healthAccepted": verdict.reason}
    if verdict.outcome == "failed":
        raise DeploymentFailed(_red_message(region, name, version, verdict.reason))
    observed = f"environment {name} is Ready on version {version}, {verdict.reason}"
    raise _keep_waiting(deadline, name, version, observed)


def _keep_waiting(deadline: WaitDeadline, name: str, version: str, observed: str) -> Exception:
    """Return the error that retries the check, or WaitTimedOut once the budget is spent."""
    if deadline.expired():
        logger.info("wait timed out", extra={"eb_environment": name, "observed": observed})
        return deadline.timed_out(f"{name} to run {version} with accepted health", observed)
    return EnvironmentNotReady(observed)


def _red_message(region: str, name: str, version: str, reason: str) -> str:
    causes = health_causes(region, name)
    message = f"environment {name} is Ready on version {version} but its {reason}"
    if causes:
        message += "; Elastic Beanstalk reports: " + " | ".join(causes[:MAX_CAUSES])
    return (
        f"{message}; read `aws elasticbeanstalk describe-environment-health "
        f"--environment-name {name} --attribute-names All`"
    )
