"""Builders of the API's description structures from the simulator's records.

Keys follow the output shapes of botocore's ``elasticbeanstalk`` model, and timestamps are
datetimes, so the dicts serialize directly and match what a boto3 client returns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from control_plane.sandbox.eb.state import (
    Application,
    ApplicationVersion,
    Environment,
    Event,
    SimulatorState,
)


def timestamp(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC)


def describe_application(state: SimulatorState, application: Application) -> dict[str, Any]:
    labels = [
        version.label
        for version in state.versions.values()
        if version.application_name == application.name
    ]
    return {
        "ApplicationArn": application.arn,
        "ApplicationName": application.name,
        "Description": application.description,
        "DateCreated": timestamp(application.created),
        "DateUpdated": timestamp(application.updated),
        "Versions": labels,
        "ConfigurationTemplates": [],
        "ResourceLifecycleConfig": application.resource_lifecycle_config,
    }


def describe_version(version: ApplicationVersion) -> dict[str, Any]:
    description: dict[str, Any] = {
        "ApplicationVersionArn": version.arn,
        "ApplicationName": version.application_name,
        "Description": version.description,
        "VersionLabel": version.label,
        "DateCreated": timestamp(version.created),
        "DateUpdated": timestamp(version.updated),
        "Status": version.status,
    }
    if version.source_bundle is not None:
        bucket, key = version.source_bundle
        description["SourceBundle"] = {"S3Bucket": bucket, "S3Key": key}
    return description


def describe_environment(environment: Environment) -> dict[str, Any]:
    # The sandbox serves the app on loopback, so the CNAME is host:port rather than EB's
    # <prefix>.<region>.elasticbeanstalk.com.
    endpoint = f"127.0.0.1:{environment.port}"
    return {
        "EnvironmentName": environment.name,
        "EnvironmentId": environment.environment_id,
        "ApplicationName": environment.application_name,
        "VersionLabel": environment.version_label,
        "SolutionStackName": environment.solution_stack_name,
        "PlatformArn": environment.platform_arn,
        "Description": environment.description,
        "EndpointURL": endpoint,
        "CNAME": endpoint,
        "DateCreated": timestamp(environment.created),
        "DateUpdated": timestamp(environment.updated),
        "Status": environment.status,
        "AbortableOperationInProgress": environment.status == "Updating",
        "Health": environment.health,
        "HealthStatus": environment.health_status,
        "Tier": dict(environment.tier),
        "EnvironmentLinks": [],
        "EnvironmentArn": environment.arn,
    }


def describe_event(event: Event) -> dict[str, Any]:
    return {
        "EventDate": timestamp(event.date),
        "Message": event.message,
        "ApplicationName": event.application_name,
        "VersionLabel": event.version_label,
        "EnvironmentName": event.environment_name,
        "RequestId": event.request_id,
        "Severity": event.severity,
    }
