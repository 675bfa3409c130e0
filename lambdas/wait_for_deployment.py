"""WaitForDeployment: wait until the environment is Ready on the requested version.

EB can abort an update and return to Ready on the old version looking healthy, so Ready alone
is not success: the version label must be the requested one.
"""

from __future__ import annotations

from typing import Any

from .common.beanstalk import error_events, require_ready
from .common.errors import DeploymentFailed
from .common.models import TaskEvent
from .common.observability import task_handler


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target, outputs = task.require_target(), task.require_outputs()
    name = outputs.eb_environment_name

    started_at = (task.deployment or {}).get("updateStartedAt")
    if started_at and task.expected_version is None:
        errors = error_events(target.region, outputs.eb_application_name, name, started_at)
        if errors:
            raise DeploymentFailed(
                f"Elastic Beanstalk reported {len(errors)} ERROR event(s) during the update of "
                f"{name} to {task.request.version}: " + " | ".join(errors[:3])
            )
    summary = require_ready(target.region, outputs.eb_application_name, name)
    if summary is None:
        raise DeploymentFailed(f"environment {name} disappeared mid-update")
    if summary["versionLabel"] != task.version_to_check:
        raise DeploymentFailed(
            f"environment {name} is Ready on version {summary['versionLabel']}, not "
            f"{task.version_to_check}: Elastic Beanstalk aborted the update; read "
            "`aws elasticbeanstalk describe-events` for the cause"
        )
    return summary
