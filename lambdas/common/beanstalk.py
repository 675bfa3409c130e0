"""Elastic Beanstalk look-ups shared by several tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from .aws import client, error_code

# Statuses in which EB is still working on the environment; a deployment waits them out.
TRANSITIONAL_STATUSES = frozenset(
    {"Launching", "Updating", "Terminating", "Aborting", "LinkingFrom", "LinkingTo"}
)


def find_environment(region: str, application: str, name: str) -> dict[str, Any] | None:
    """Return the live environment of that name, or None when it is missing or Terminated.

    IncludeDeleted=False matters: EB keeps listing a terminated environment of the same name for
    about an hour, and picking that one would hide the live environment.
    """
    response = client("elasticbeanstalk", region).describe_environments(
        ApplicationName=application, EnvironmentNames=[name], IncludeDeleted=False
    )
    live = [env for env in response["Environments"] if env.get("Status") != "Terminated"]
    return live[0] if live else None


def live_environments(region: str, application: str) -> list[dict[str, Any]]:
    response = client("elasticbeanstalk", region).describe_environments(
        ApplicationName=application, IncludeDeleted=False
    )
    return [env for env in response["Environments"] if env.get("Status") != "Terminated"]


def environment_url(environment: dict[str, Any]) -> str | None:
    cname = environment.get("CNAME") or environment.get("EndpointURL")
    return f"http://{cname}" if cname else None


def log_fields(summary: dict[str, Any]) -> dict[str, Any]:
    """Name the summary's fields for a log line; `name` would clash with LogRecord.name."""
    return {
        "eb_environment": summary.get("name"),
        "status": summary.get("status"),
        "health": summary.get("health"),
        "health_status": summary.get("healthStatus"),
        "version_label": summary.get("versionLabel"),
    }


def summarize(environment: dict[str, Any]) -> dict[str, Any]:
    """Return the fields worth logging and passing on, without datetimes."""
    return {
        "name": environment.get("EnvironmentName"),
        "id": environment.get("EnvironmentId"),
        "status": environment.get("Status"),
        "health": environment.get("Health"),
        "healthStatus": environment.get("HealthStatus"),
        "versionLabel": environment.get("VersionLabel"),
        "abortableOperationInProgress": environment.get("AbortableOperationInProgress", False),
    }


def describe_state(summary: dict[str, Any]) -> str:
    """Describe the status, version and health of a summary, for messages."""
    health = summary.get("health")
    if summary.get("healthStatus"):
        health = f"{health} ({summary['healthStatus']})"
    return (
        f"environment {summary.get('name')} is {summary.get('status')} on version "
        f"{summary.get('versionLabel')}, health {health}"
    )


def health_causes(region: str, name: str) -> list[str]:
    """Return the causes EB gives for the environment's health; empty when it gives none.

    DescribeEnvironmentHealth works only with enhanced health reporting. An environment on
    basic health returns InvalidRequestException, and then there are no causes to report.
    """
    from .observability import logger

    try:
        response = client("elasticbeanstalk", region).describe_environment_health(
            EnvironmentName=name, AttributeNames=["Causes"]
        )
    except ClientError as error:
        logger.warning(
            "describe_environment_health failed; reporting no causes",
            extra={"eb_environment": name, "error_code": error_code(error)},
        )
        return []
    return [str(cause) for cause in response.get("Causes") or []]


def events_since(
    region: str, application: str, name: str, since: datetime
) -> list[tuple[float, str]]:
    """Return the date (epoch seconds) and message of each event EB logged since `since`."""
    response = client("elasticbeanstalk", region).describe_events(
        ApplicationName=application, EnvironmentName=name, StartTime=since
    )
    return [(event["EventDate"].timestamp(), event["Message"]) for event in response["Events"]]


def error_events(region: str, application: str, name: str, since: str) -> list[str]:
    """Return the messages of ERROR events EB logged for the environment since `since`."""
    response = client("elasticbeanstalk", region).describe_events(
        ApplicationName=application,
        EnvironmentName=name,
        StartTime=datetime.fromisoformat(since),
        Severity="ERROR",
    )
    return [event["Message"] for event in response["Events"] if event.get("Severity") == "ERROR"]
