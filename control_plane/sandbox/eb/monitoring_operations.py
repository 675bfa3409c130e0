"""Handlers of DescribeEvents and DescribeEnvironmentHealth."""

from __future__ import annotations

from typing import Any

from control_plane.sandbox.eb.context import OperationContext, paginate
from control_plane.sandbox.eb.descriptions import describe_event, timestamp
from control_plane.sandbox.eb.errors import invalid_parameter
from control_plane.sandbox.eb.events import SEVERITY_ORDER

# Keys of DescribeEnvironmentHealth's InstancesHealth, one count per enhanced health status.
INSTANCE_HEALTH_KEYS = (
    "NoData",
    "Unknown",
    "Pending",
    "Ok",
    "Info",
    "Warning",
    "Degraded",
    "Severe",
)

# Filters that compare an event attribute with the request member of the same meaning.
EVENT_FILTERS = (
    ("ApplicationName", "application_name"),
    ("EnvironmentName", "environment_name"),
    ("EnvironmentId", "environment_id"),
    ("VersionLabel", "version_label"),
    ("RequestId", "request_id"),
)


def describe_events(context: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    """Return matching events newest first; Severity selects that severity and higher."""
    minimum_severity = 0
    if "Severity" in request:
        if request["Severity"] not in SEVERITY_ORDER:
            raise invalid_parameter(
                f"Invalid Severity '{request['Severity']}': use one of {', '.join(SEVERITY_ORDER)}."
            )
        minimum_severity = SEVERITY_ORDER.index(request["Severity"])
    start = request["StartTime"].timestamp() if "StartTime" in request else None
    end = request["EndTime"].timestamp() if "EndTime" in request else None
    matching = []
    for event in context.state.events:
        if any(
            member in request and getattr(event, attribute) != request[member]
            for member, attribute in EVENT_FILTERS
        ):
            continue
        if SEVERITY_ORDER.index(event.severity) < minimum_severity:
            continue
        if start is not None and event.date < start:
            continue
        if end is not None and event.date >= end:
            continue
        matching.append(event)
    matching.sort(key=lambda event: (event.date, event.sequence), reverse=True)
    page, next_token = paginate(matching, request)
    return {"Events": [describe_event(event) for event in page], "NextToken": next_token}


def describe_environment_health(
    context: OperationContext, request: dict[str, Any]
) -> dict[str, Any]:
    """Return enhanced health for the attributes requested; with none, only the name.

    NOTE: the sandbox treats every environment as using enhanced health and a single instance,
    and it records no request metrics, so ApplicationMetrics has only a zero RequestCount.
    """
    environment = context.state.require_live_environment(request)
    requested = set(request.get("AttributeNames", []))
    include_all = "All" in requested
    instances = dict.fromkeys(INSTANCE_HEALTH_KEYS, 0)
    if environment.health_status in instances:
        instances[environment.health_status] = 1
    available = {
        "HealthStatus": environment.health_status,
        "Status": environment.status,
        "Color": environment.health,
        "Causes": list(environment.health_causes),
        "ApplicationMetrics": {"RequestCount": 0},
        "InstancesHealth": instances,
        "RefreshedAt": timestamp(context.now),
    }
    result: dict[str, Any] = {"EnvironmentName": environment.name}
    for name, value in available.items():
        if include_all or name in requested:
            result[name] = value
    return result
