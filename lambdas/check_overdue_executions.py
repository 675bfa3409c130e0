"""CheckOverdueExecutions: counts the executions running past their expected time.

CloudWatch has no metric for the age of running executions: AWS/States counts executions when
they start and end. An EventBridge schedule (control_plane/monitoring.py) runs this check every
CHECK_RATE_MINUTES. It lists the state machine's RUNNING executions and publishes, for every
managed environment, the metric OverdueExecutions: how many of them have run longer than the
environment's `expected_execution_seconds`. The count is published as 0 too, so the alarm on
it receives a data point from each run, and a check that stopped running shows as missing data.

An execution belongs to the environment that its name starts with, because the name is
`<environment>-<requestId>` (control_plane/executions.py). The longest matching environment
name wins. A running execution whose name matches no managed environment is logged, not
counted.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from .common import clock
from .common.aws import client
from .common.metrics import publish
from .common.observability import logger
from .common.settings import Settings, current_settings

METRIC_NAME = "OverdueExecutions"
CHECK_RATE_MINUTES = 10
CHECK_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class OverdueExecution:
    """A running execution older than its environment's expected time."""

    environment: str
    execution_name: str
    execution_arn: str
    running_seconds: int
    expected_seconds: int


def environment_of(execution_name: str, settings: Settings) -> str | None:
    """Return the managed environment whose name prefixes `execution_name`, or None."""
    matches = [name for name in settings.environments if execution_name.startswith(f"{name}-")]
    return max(matches, key=len, default=None)


def running_since(execution: dict[str, Any]) -> datetime:
    """Return when the execution's current run started.

    A redriven execution runs again from its `redriveDate`, while `startDate` stays the date
    of its first run.
    """
    return execution.get("redriveDate") or execution["startDate"]


def find_overdue(state_machine_arn: str, settings: Settings, now: float) -> list[OverdueExecution]:
    """List the RUNNING executions that have run longer than their environment expects."""
    overdue = []
    pages = (
        client("stepfunctions")
        .get_paginator("list_executions")
        .paginate(stateMachineArn=state_machine_arn, statusFilter="RUNNING")
    )
    for page in pages:
        for execution in page["executions"]:
            running_seconds = int(now - running_since(execution).timestamp())
            environment = environment_of(execution["name"], settings)
            if environment is None:
                logger.warning(
                    "running execution belongs to no managed environment; not counted",
                    extra={
                        "execution_arn": execution["executionArn"],
                        "running_seconds": running_seconds,
                    },
                )
                continue
            expected = settings.environments[environment].expected_execution_seconds
            if running_seconds > expected:
                overdue.append(
                    OverdueExecution(
                        environment=environment,
                        execution_name=execution["name"],
                        execution_arn=execution["executionArn"],
                        running_seconds=running_seconds,
                        expected_seconds=expected,
                    )
                )
    return overdue


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if isinstance(event, dict):
        logger.set_correlation_id(event.get("id"))
    settings = current_settings()
    overdue = find_overdue(os.environ["STATE_MACHINE_ARN"], settings, clock.now())
    counts = {name: 0 for name in sorted(settings.environments)}
    for execution in overdue:
        counts[execution.environment] += 1
        logger.warning("execution overdue", extra=asdict(execution))
    for environment, count in counts.items():
        publish(METRIC_NAME, count, MetricUnit.Count, environment=environment)
    logger.info("overdue executions counted", extra={"overdue": counts})
    return {"overdue": counts, "executions": [asdict(execution) for execution in overdue]}
