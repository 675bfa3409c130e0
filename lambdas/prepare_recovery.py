"""PrepareRecovery: once a recovery holds the lock, choose the version it redeploys.

The recovery was started with the version the ledger named at termination time. A deployment
that held the lock meanwhile may have succeeded since, so the newest Deployed version is read
again now: a recovery never rolls the environment back to an older version. An environment
destroyed on purpose, or put under maintenance, while the recovery waited is left alone.
"""

from __future__ import annotations

from typing import Any

from .common.errors import RecoveryCancelled
from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.recovery import (
    destroyed_on_purpose,
    last_deployed_record,
    maintenance_on,
    maintenance_parameter,
)


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    request = task.request
    environment = request.environment

    last_deployed = last_deployed_record(environment)
    destroyed = destroyed_on_purpose(environment, last_deployed)
    if destroyed:
        raise RecoveryCancelled(f"recovery cancelled: {destroyed}")
    if maintenance_on(environment):
        raise RecoveryCancelled(
            f"recovery cancelled: the maintenance switch {maintenance_parameter(environment)} "
            "is on; turn it off and deploy, or wait for the next sweep"
        )
    prepared = request.model_dump(by_alias=True, mode="json")
    if last_deployed is not None and last_deployed["version"] != request.version:
        prepared["version"] = last_deployed["version"]
        prepared["bundle"] = last_deployed["bundle"]
    logger.info(
        "recovery prepared",
        extra={"version": prepared["version"], "started_with_version": request.version},
    )
    return prepared
