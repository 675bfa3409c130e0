"""DeployVersion: register the application version and point the environment at it.

Registering is idempotent: the same label with the same bundle is reused, the same label with a
different bundle is a VersionConflict. The version label is also set as the environment property
APP_VERSION so the app can report which version it serves.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from .common.aws import client, error_code
from .common.beanstalk import find_environment
from .common.errors import EnvironmentBusy, EnvironmentNotReady, VersionConflict
from .common.models import TaskEvent
from .common.observability import logger, task_handler

APP_ENVIRONMENT_NAMESPACE = "aws:elasticbeanstalk:application:environment"


def register_version(eb: Any, application: str, label: str, bundle: str, request_id: str) -> bool:
    """Create the application version; return True when an identical one was reused."""
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
    eb.create_application_version(
        ApplicationName=application,
        VersionLabel=label,
        SourceBundle=source,
        Description=f"control-plane request {request_id}",
        Process=True,
    )
    return False


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
    previous = environment.get("VersionLabel")
    reused = register_version(
        eb, outputs.eb_application_name, request.version, request.bundle, request.request_id
    )

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
