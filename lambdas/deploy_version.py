"""DeployVersion: register the application version and point the environment at it.

Registering is idempotent: the same label with the same bundle is reused, the same label with a
different bundle is a VersionConflict. A bundle outside the environment's region is first copied
into EB's storage bucket of that region (see common/regional_bundle.py). The version label is also
set as the environment property APP_VERSION so the app can report which version it serves.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from .common.aws import client, error_code
from .common.beanstalk import find_environment
from .common.errors import BundleInvalid, EnvironmentBusy, EnvironmentNotReady, VersionConflict
from .common.lease import remember_update
from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.regional_bundle import bundle_in_region
from .common.settings import current_settings

APP_ENVIRONMENT_NAMESPACE = "aws:elasticbeanstalk:application:environment"


def prune_versions(eb: Any, application: str, keep: set[str], retention: int) -> list[str]:
    """Delete the oldest application versions no environment uses; return their labels.

    Versions in `keep` (the running and the previous one) and in use by any environment are
    never deleted, and the newest `retention` of the others stay.
    """
    versions = eb.describe_application_versions(ApplicationName=application)["ApplicationVersions"]
    environments = eb.describe_environments(ApplicationName=application, IncludeDeleted=False)
    in_use = {env.get("VersionLabel") for env in environments["Environments"]} | keep
    candidates = sorted(
        (version for version in versions if version["VersionLabel"] not in in_use),
        key=lambda version: version["DateCreated"],
    )
    doomed = [
        version["VersionLabel"] for version in candidates[: max(0, len(candidates) - retention)]
    ]
    if not doomed and candidates:
        doomed = [candidates[0]["VersionLabel"]]
    for label in doomed:
        eb.delete_application_version(
            ApplicationName=application, VersionLabel=label, DeleteSourceBundle=False
        )
    logger.info("old application versions deleted", extra={"deleted": doomed})
    return doomed


def register_version(
    eb: Any,
    application: str,
    label: str,
    bundle: str,
    request_id: str,
    *,
    keep: set[str] | None = None,
    retention: int = 20,
) -> bool:
    """Create the application version; return True when an identical one was reused.

    When EB's application version quota is reached, the oldest unused versions are deleted and
    the creation is tried once more.
    """
    parsed = urlparse(bundle)
    source = {"S3Bucket": parsed.netloc, "S3Key": parsed.path.lstrip("/")}
    existing = eb.describe_application_versions(ApplicationName=application, VersionLabels=[label])[
        "ApplicationVersions"
    ]
    if existing:
        if existing[0].get("SourceBundle") == source:
            return True
        raise VersionConflict(
            f"version {label} already exists in {application} with bundle "
            f"s3://{existing[0]['SourceBundle']['S3Bucket']}/{existing[0]['SourceBundle']['S3Key']}"
            f", not {bundle}; deploy under a new version label"
        )
    arguments = {
        "ApplicationName": application,
        "VersionLabel": label,
        "SourceBundle": source,
        "Description": f"control-plane request {request_id}",
        "Process": True,
    }
    try:
        eb.create_application_version(**arguments)
    except Exception as error:
        if error_code(error) != "TooManyApplicationVersionsException":
            raise
        if not prune_versions(eb, application, keep or set(), retention):
            raise
        eb.create_application_version(**arguments)
    return False


def require_processed(eb: Any, application: str, label: str) -> None:
    """Raise unless EB has processed the version: retried while it processes, named if it failed."""
    (version,) = eb.describe_application_versions(
        ApplicationName=application, VersionLabels=[label]
    )["ApplicationVersions"]
    status = version.get("Status", "PROCESSED")
    if status == "FAILED":
        raise BundleInvalid(
            f"EB could not process version {label} of {application} (status FAILED): the bundle "
            "is not a valid zip or its .ebextensions are invalid; check the application's events, "
            "fix the bundle and deploy it under a new version label"
        )
    if status not in ("PROCESSED", "UNPROCESSED"):
        raise EnvironmentBusy(f"EB is still processing version {label} ({status}); retrying")


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target, outputs = task.require_target(), task.require_outputs()
    request = task.request
    eb = client("elasticbeanstalk", target.region)

    environment = find_environment(
        target.region, outputs.eb_application_name, outputs.eb_environment_name
    )
    if environment is None:
        raise EnvironmentNotReady(f"environment {outputs.eb_environment_name} disappeared")
    noted = remember_update(
        request.environment, request.request_id, task.lock, environment.get("VersionLabel")
    )
    if noted is not None and environment.get("VersionLabel") == request.version:
        # A repeated run (the first one crashed or timed out after starting the update):
        # the update is under way or done; report it with the version noted before it.
        logger.info("update already started by this request", extra={"previous_version": noted})
        return {
            "versionLabel": request.version,
            "previousVersion": noted or None,
            "versionReused": True,
            "updateStartedAt": environment["DateUpdated"].isoformat(),
        }
    if environment.get("Status") != "Ready" or environment.get("AbortableOperationInProgress"):
        raise EnvironmentBusy(
            f"environment {outputs.eb_environment_name} is {environment.get('Status')}"
            + (
                " with an operation in progress"
                if environment.get("AbortableOperationInProgress")
                else ""
            )
            + "; the update waits until it is Ready"
        )
    previous = environment.get("VersionLabel") if noted is None else (noted or None)
    settings = current_settings().environment(request.environment)
    bundle = bundle_in_region(request.bundle, target.region, outputs.eb_application_name)
    logger.info(
        "bundle location chosen",
        extra={
            # Named on the line itself, not only in the logger's keys, because the sandbox runs
            # other handlers in the same process, and those replace the keys.
            "environment": request.environment,
            "request_id": request.request_id,
            "environment_region": target.region,
            "decision": bundle.decision,
            "source": request.bundle,
            "destination": bundle.uri,
        },
    )
    reused = register_version(
        eb,
        outputs.eb_application_name,
        request.version,
        bundle.uri,
        request.request_id,
        keep={label for label in (previous,) if label},
        retention=settings.version_retention,
    )

    require_processed(eb, outputs.eb_application_name, request.version)
    try:
        updated = eb.update_environment(
            EnvironmentName=outputs.eb_environment_name,
            VersionLabel=request.version,
            OptionSettings=[
                {
                    "Namespace": APP_ENVIRONMENT_NAMESPACE,
                    "OptionName": "APP_VERSION",
                    "Value": request.version,
                }
            ],
        )
    except Exception as error:
        if error_code(error) == "InvalidParameterValue" and "invalid state" in str(error):
            raise EnvironmentBusy(
                f"environment {outputs.eb_environment_name} is busy: {error}"
            ) from None
        raise
    logger.info(
        "update started",
        extra={"version": request.version, "previous_version": previous, "reused": reused},
    )
    return {
        "versionLabel": request.version,
        "previousVersion": previous,
        "versionReused": reused,
        # EB's own clock, so WaitForDeployment reads only this update's events.
        "updateStartedAt": updated["DateUpdated"].isoformat(),
    }
