"""Event texts of Elastic Beanstalk transitions and their EventBridge envelope.

The ``Status``/``Severity``/``Message`` triples come from the EB developer guide's
EventBridge page ("Elastic Beanstalk events", field mapping table). EB writes the same
messages to the environment's event log that DescribeEvents returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from control_plane.sandbox.eb.state import Event

RESOURCE_STATUS_CHANGE = "Elastic Beanstalk resource status change"
HEALTH_STATUS_CHANGE = "Health status change"

# DescribeEvents' Severity filter returns events of the given severity or higher.
SEVERITY_ORDER = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


@dataclass(frozen=True)
class StatusChange:
    """The ``detail.Status``, severity and message of one resource status change."""

    status: str
    severity: str
    message: str


CREATION_STARTED = StatusChange(
    "Environment creation started", "INFO", "createEnvironment is starting."
)
CREATION_SUCCESSFUL = StatusChange(
    "Environment creation successful", "INFO", "createEnvironment completed successfully."
)
CREATION_WITH_ISSUES = StatusChange(
    "Environment creation successful",
    "INFO",
    "Launched environment: {environment}. However, there were issues during launch. "
    "See event log for details.",
)
UPDATE_STARTED = StatusChange(
    "Environment update started", "INFO", "Environment update is starting."
)
UPDATE_SUCCESSFUL = StatusChange(
    "Environment update successful", "INFO", "Environment update completed successfully."
)
UPDATE_FAILED = StatusChange(
    "Environment update failed", "ERROR", "Failed to deploy configuration."
)
TERMINATION_STARTED = StatusChange(
    "Environment termination started", "INFO", "terminateEnvironment is starting."
)
TERMINATION_SUCCESSFUL = StatusChange(
    "Environment termination successful", "INFO", "terminateEnvironment completed successfully."
)

# Log-only messages, which EB writes to the event log without an EventBridge event.
VERSION_DEPLOYED_MESSAGE = "New application version was deployed to running EC2 instances."
# NOTE: modelled on EB's "<operation> is starting." messages, because the real text is unknown.
# EB's event when a version fails to deploy and the instances keep the previous one.
DEPLOYMENT_FAILED_MESSAGE = "Failed to deploy application."
ABORT_STARTED_MESSAGE = "abortEnvironmentUpdate is starting."
ABORT_COMPLETED_MESSAGE = (
    "During an aborted deployment, some instances may have deployed the new application "
    "version. To ensure all instances are running the same version, re-deploy the "
    "appropriate application version."
)

HEALTH_CHANGED_STATUS = "Environment health changed"
# Enhanced health statuses from best to worst, to choose INFO or WARN for a change.
HEALTH_STATUS_ORDER = (
    "Ok",
    "Info",
    "NoData",
    "Unknown",
    "Pending",
    "Suspended",
    "Warning",
    "Degraded",
    "Severe",
)


def health_change_message(previous: str, current: str) -> str:
    return f"Environment health has transitioned from {previous} to {current}."


def health_change_severity(previous: str, current: str) -> str:
    worse = HEALTH_STATUS_ORDER.index(current) > HEALTH_STATUS_ORDER.index(previous)
    return "WARN" if worse and current in ("Warning", "Degraded", "Severe") else "INFO"


def to_eventbridge(
    event: Event, *, event_id: str, region: str, account_id: str, environment_arn: str
) -> dict[str, Any]:
    """Wrap a log event in the envelope that EventBridge delivers for ``aws.elasticbeanstalk``."""
    event_time = datetime.fromtimestamp(event.date, tz=UTC)
    return {
        "version": "0",
        "id": event_id,
        "detail-type": event.detail_type,
        "source": "aws.elasticbeanstalk",
        "account": account_id,
        "time": event_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [environment_arn],
        "detail": {
            "Status": event.detail_status,
            "EventDate": round(event.date * 1000),
            "ApplicationName": event.application_name,
            "Message": event.message,
            "EnvironmentName": event.environment_name,
            "Severity": event.severity,
        },
    }
