"""CloudWatch metrics of deployments and recoveries, as embedded metric format (EMF) log lines.

Lambda's log pipeline turns each EMF line into metrics in the namespace below; the CDK stack's
dashboard and alarms read them. Each metric is written on its own line with its own
dimensions, so a handler can publish metrics of several states or outcomes in one call.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

NAMESPACE = "EbControlPlane"

# The states whose time counts as waiting for the environment to become Ready: the
# event-driven awaits and the polling waits that follow them or replace them.
READINESS_STATES = (
    "AwaitEnvironment",
    "AwaitDeployment",
    "WaitForEnvironment",
    "WaitForDeployment",
    "WaitForTransition",
)


def write_line(line: str) -> None:
    """Write one line to stdout."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# The destination of EMF lines: stdout, which Lambda sends to CloudWatch Logs. The sandbox
# sends them to its task log file instead.
sink: Callable[[str], None] = write_line


def publish(name: str, value: float, unit: MetricUnit, **dimensions: str) -> None:
    """Write one metric with its dimensions as one EMF line."""
    metric = EphemeralMetrics(namespace=NAMESPACE)
    for key, dimension in dimensions.items():
        metric.add_dimension(name=key, value=str(dimension))
    metric.add_metric(name=name, unit=unit, value=value)
    sink(json.dumps(metric.serialize_metric_set(), separators=(",", ":")))


def publish_deployment(record: dict[str, Any]) -> None:
    """Publish an execution's outcome, plan, duration, per-state times and readiness wait."""
    environment = str(record.get("environment") or "unknown")
    outcome = str(record.get("outcome") or "unknown")
    publish("Deployments", 1, MetricUnit.Count, environment=environment, outcome=outcome)
    if outcome in {"RolledBack", "RollbackFailed"}:
        publish("Rollbacks", 1, MetricUnit.Count, environment=environment, outcome=outcome)
    if record.get("plan"):
        publish("PlansChosen", 1, MetricUnit.Count, environment=environment, plan=record["plan"])
    if isinstance(record.get("durationSeconds"), int | float):
        publish(
            "DeploymentDuration",
            record["durationSeconds"],
            MetricUnit.Seconds,
            environment=environment,
        )
    phases = record.get("phases") or {}
    for state, seconds in sorted(phases.items()):
        publish("PhaseDuration", seconds, MetricUnit.Seconds, environment=environment, state=state)
    waited = sum(seconds for state, seconds in phases.items() if state in READINESS_STATES)
    if waited:
        publish("ReadinessWait", waited, MetricUnit.Seconds, environment=environment)


def publish_recovery(environment: str, action: str) -> None:
    """Publish a started recovery or an opened circuit breaker."""
    if action == "started":
        publish("Recoveries", 1, MetricUnit.Count, environment=environment)
    elif action == "breaker-opened":
        publish("BreakerOpened", 1, MetricUnit.Count, environment=environment)
