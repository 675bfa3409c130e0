"""Handlers of the application and application-version operations."""

from __future__ import annotations

import io
import logging
import zipfile
from typing import Any

from control_plane.sandbox.eb.context import OperationContext, paginate
from control_plane.sandbox.eb.descriptions import describe_application, describe_version
from control_plane.sandbox.eb.errors import (
    ElasticBeanstalkError,
    application_not_found,
    invalid_parameter,
)
from control_plane.sandbox.eb.state import Application, ApplicationVersion
from control_plane.sandbox.eb.storage import storage_bucket_name
from control_plane.sandbox.eb.tag_operations import tag_pairs_to_dict

logger = logging.getLogger(__name__)


def create_application(context: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    state = context.state
    name = request["ApplicationName"]
    if name in state.applications:
        raise invalid_parameter(f"Application {name} already exists.")
    application = _add_application(context, name, request.get("Description"))
    application.resource_lifecycle_config = request.get("ResourceLifecycleConfig")
    state.tags[application.arn] = tag_pairs_to_dict(request.get("Tags", []))
    return {"Application": describe_application(state, application)}


def update_application(context: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    application = context.state.require_application(request["ApplicationName"])
    if "Description" in request:
        application.description = request["Description"]
        application.updated = context.now
    return {"Application": describe_application(context.state, application)}


def update_application_resource_lifecycle(
    context: OperationContext, request: dict[str, Any]
) -> dict[str, Any]:
    application = context.state.require_application(request["ApplicationName"])
    application.resource_lifecycle_config = request["ResourceLifecycleConfig"]
    application.updated = context.now
    return {
        "ApplicationName": application.name,
        "ResourceLifecycleConfig": application.resource_lifecycle_config,
    }


def _add_application(context: OperationContext, name: str, description: str | None) -> Application:
    application = Application(
        name=name,
        arn=context.state.application_arn(name),
        description=description,
        created=context.now,
        updated=context.now,
    )
    context.state.applications[name] = application
    return application


def describe_applications(context: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    state = context.state
    names = request.get("ApplicationNames")
    applications = [
        describe_application(state, application)
        for application in state.applications.values()
        if not names or application.name in names
    ]
    return {"Applications": applications}


def delete_application(context: OperationContext, request: dict[str, Any]) -> None:
    state = context.state
    application = state.require_application(request["ApplicationName"])
    live = [
        environment
        for environment in state.environments
        if environment.application_name == application.name and environment.is_live
    ]
    if live and not request.get("TerminateEnvByForce", False):
        # NOTE: the real message for this case is unconfirmed.
        raise invalid_parameter(
            f"Unable to delete application {application.name} because it has running "
            "environments. Terminate them first or set TerminateEnvByForce."
        )
    for environment in live:
        if environment.status != "Terminating":
            context.lifecycle.begin_termination(environment, context.now, context.request_id)
    for key in [key for key in state.versions if key[0] == application.name]:
        state.tags.pop(state.versions.pop(key).arn, None)
    del state.applications[application.name]
    state.tags.pop(application.arn, None)


def create_application_version(
    context: OperationContext, request: dict[str, Any]
) -> dict[str, Any]:
    state = context.state
    application_name = request["ApplicationName"]
    label = request["VersionLabel"]
    if "BuildConfiguration" in request or "SourceBuildInformation" in request:
        raise invalid_parameter(
            "The Elastic Beanstalk sandbox supports only SourceBundle as a version's source."
        )

    application = state.applications.get(application_name)
    if application is None:
        if not request.get("AutoCreateApplication", False):
            raise application_not_found(application_name)
        _add_application(context, application_name, None)

    if (application_name, label) in state.versions:
        raise invalid_parameter(f"Application Version {label} already exists.")
    quota = state.durations.max_application_versions
    if len(state.versions) >= quota:
        raise ElasticBeanstalkError(
            "TooManyApplicationVersionsException",
            f"You cannot have more than {quota} Application Versions. Either remove some "
            "Application Versions or request a limit increase.",
        )

    source_bundle = _source_bundle(request.get("SourceBundle"))
    _require_bucket_in_region(context, source_bundle)
    status = "UNPROCESSED"
    if request.get("Process", False):
        status = _process_bundle(context, source_bundle)
    version = ApplicationVersion(
        application_name=application_name,
        label=label,
        arn=state.version_arn(application_name, label),
        description=request.get("Description"),
        source_bundle=source_bundle,
        status=status,
        created=context.now,
        updated=context.now,
    )
    state.versions[(application_name, label)] = version
    state.tags[version.arn] = tag_pairs_to_dict(request.get("Tags", []))
    return {"ApplicationVersion": describe_version(version)}


def _source_bundle(location: dict[str, str] | None) -> tuple[str, str] | None:
    if location is None:
        return None
    bucket = location.get("S3Bucket")
    key = location.get("S3Key")
    if not bucket or not key:
        raise invalid_parameter("SourceBundle must contain both S3Bucket and S3Key.")
    return bucket, key


def _require_bucket_in_region(
    context: OperationContext, source_bundle: tuple[str, str] | None
) -> None:
    """Reject a source bundle in a bucket of another region than the endpoint's, as EB does.

    A bucket that does not exist passes: processing the version marks it FAILED instead.
    """
    if source_bundle is None or context.buckets is None:
        return
    bucket_region = context.buckets.bucket_region(source_bundle[0])
    if bucket_region is None or bucket_region == context.region:
        return
    logger.info(
        "SourceBundle bucket %s is in %s, not in the endpoint's region %s",
        source_bundle[0],
        bucket_region,
        context.region,
    )
    # The error code and HTTP status are botocore's model of the error; the message is the
    # error's documented description.
    # NOTE: the message EB sends on the wire for this error is unconfirmed.
    raise ElasticBeanstalkError(
        "S3LocationNotInServiceRegionException",
        "The specified S3 bucket does not belong to the S3 region in which the service is running.",
    )


def create_storage_location(context: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    """Return EB's storage bucket of the endpoint's region, creating it when it is missing."""
    bucket = storage_bucket_name(context.region, context.state.account_id)
    if context.buckets is not None:
        context.buckets.create_bucket(bucket, context.region)
    return {"S3Bucket": bucket}


def _process_bundle(context: OperationContext, source_bundle: tuple[str, str] | None) -> str:
    """Return PROCESSED when the bundle can be fetched and is a zip file, otherwise FAILED.

    Real EB also validates ``.ebextensions`` and passes through PROCESSING first. The sandbox
    checks only that the bundle is a readable zip, and it sets the final status at once.
    """
    if source_bundle is None:
        return "PROCESSED"
    bucket, key = source_bundle
    # Any fetch failure (missing object or bucket, S3 error) makes the version FAILED.
    try:
        data = context.fetch_object(bucket, key)
    except Exception as error:
        logger.warning("Processing s3://%s/%s failed: %s", bucket, key, error)
        return "FAILED"
    return "PROCESSED" if zipfile.is_zipfile(io.BytesIO(data)) else "FAILED"


def describe_application_versions(
    context: OperationContext, request: dict[str, Any]
) -> dict[str, Any]:
    application_name = request.get("ApplicationName")
    labels = request.get("VersionLabels")
    matching = [
        version
        for version in context.state.versions.values()
        if application_name in (None, version.application_name)
        and (not labels or version.label in labels)
    ]
    # Sort newest first. Reversing the insertion order first puts the later of two versions
    # created at the same instant ahead.
    newest_first = sorted(reversed(matching), key=lambda version: version.created, reverse=True)
    page, next_token = paginate(newest_first, request)
    return {
        "ApplicationVersions": [describe_version(version) for version in page],
        "NextToken": next_token,
    }


def delete_application_version(context: OperationContext, request: dict[str, Any]) -> None:
    """Delete a version record, even one still deployed to an environment, as real EB does.

    NOTE: DeleteSourceBundle is accepted but the sandbox leaves the S3 object in place.
    """
    state = context.state
    application = state.require_application(request["ApplicationName"])
    version = state.require_version(application.name, request["VersionLabel"])
    del state.versions[(application.name, version.label)]
    state.tags.pop(version.arn, None)
