"""Task handlers against the sandbox's AWS endpoint (moto plus the EB simulator).

Each test calls a handler directly with the event Step Functions would pass, and asserts the
named error or the result.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control_plane.bundle import build_bundle
from control_plane.executions import upload_bundle
from control_plane.sandbox.sandbox import Sandbox, SandboxOptions
from lambdas import (
    classify_build_failure,
    deploy_version,
    fallback_outputs,
    preflight,
    resolve_outputs,
    verify_health,
)
from lambdas.common.errors import (
    BundleInvalid,
    ConfigurationMissing,
    HealthCheckFailed,
    OutputsNotAvailable,
    VersionConflict,
)
from lambdas.common.lease import Lease
from lambdas.common.settings import current_settings
from tests.sandbox_handlers import Context, point_clients_at_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
APPLICATION = "webapp-dev"
# The sandbox's Pulumi state bucket, set by the module's sandbox fixture.
STATE_BUCKET: list[str] = []


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    options = SandboxOptions(work_dir=tmp_path_factory.mktemp("handlers"), launch_seconds=10)
    with Sandbox(options) as running:
        STATE_BUCKET[:] = [running.resources.state_bucket]
        yield running


@pytest.fixture(autouse=True)
def sandbox_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    point_clients_at_sandbox(sandbox, monkeypatch)


@pytest.fixture(scope="module")
def bundle_uri(sandbox: Sandbox) -> str:
    data = build_bundle(REPO_ROOT / "samples" / "webapp")
    return upload_bundle(sandbox.client("s3"), sandbox.resources.bundle_bucket, "dev", data)


def event(bundle: str, **extra: Any) -> dict[str, Any]:
    target = {
        "environment": "dev",
        "region": "us-east-1",
        "project": "webapp",
        "stack": "dev",
        "backendUrl": current_settings().environment("dev").resolved_backend_url(STATE_BUCKET[0]),
        "ebApplication": APPLICATION,
        "healthPath": "/health",
        "secrets": {},
    }
    execution = "arn:aws:states:us-east-1:123456789012:execution:m:dev-r-1"
    # The mutating tasks check the lease; r-1 takes it once and gets the same token again.
    lock = Lease("dev", "r-1", execution, 1_000).acquire()
    return {
        "request": {"environment": "dev", "version": "v1", "bundle": bundle, "requestId": "r-1"},
        "executionArn": execution,
        "target": target,
        "lock": lock,
        **extra,
    }


def ready_environment(sandbox: Sandbox, name: str) -> dict[str, Any]:
    eb = sandbox.client("elasticbeanstalk")
    if not eb.describe_applications(ApplicationNames=[APPLICATION])["Applications"]:
        eb.create_application(ApplicationName=APPLICATION)
    eb.create_environment(
        ApplicationName=APPLICATION,
        EnvironmentName=name,
        SolutionStackName="64bit Amazon Linux 2023 v4.7.0 running Python 3.12",
    )
    sandbox.clock.advance(11)
    return eb.describe_environments(EnvironmentNames=[name], IncludeDeleted=False)["Environments"][
        0
    ]


def test_preflight_names_a_missing_secret_and_its_fix(sandbox: Sandbox, bundle_uri: str) -> None:
    ssm = sandbox.client("ssm")
    value = ssm.get_parameter(Name="/control-plane/dev/db-password", WithDecryption=True)
    ssm.delete_parameter(Name="/control-plane/dev/db-password")
    try:
        with pytest.raises(ConfigurationMissing) as raised:
            preflight.handler(event(bundle_uri), Context())
    finally:
        ssm.put_parameter(
            Name="/control-plane/dev/db-password",
            Value=value["Parameter"]["Value"],
            Type="SecureString",
        )

    message = str(raised.value)
    assert "db:password" in message
    assert (
        "aws ssm put-parameter --type SecureString --name /control-plane/dev/db-password" in message
    )
    assert value["Parameter"]["Value"] not in message


def test_preflight_returns_references_only(sandbox: Sandbox, bundle_uri: str) -> None:
    target = preflight.handler(event(bundle_uri), Context())

    assert target["secrets"] == {
        "db:password": {
            "source": "ssm",
            "name": "/control-plane/dev/db-password",
            "region": "us-east-1",
            "jsonKey": None,
        }
    }
    assert target["backendUrl"] == f"s3://{sandbox.resources.state_bucket}"
    assert not any(value in json.dumps(target) for value in sandbox.secret_values)


@pytest.mark.parametrize(
    ("body", "message"), [(b"not a zip at all", "not a zip file"), (None, "not found")]
)
def test_preflight_rejects_a_bad_bundle(sandbox: Sandbox, body: bytes | None, message: str) -> None:
    bucket = sandbox.resources.bundle_bucket
    if body is not None:
        sandbox.client("s3").put_object(Bucket=bucket, Key="bundles/dev/bad.zip", Body=body)

    with pytest.raises(BundleInvalid, match=message):
        preflight.handler(
            event(
                f"s3://{bucket}/bundles/dev/bad.zip"
                if body
                else f"s3://{bucket}/bundles/dev/absent.zip"
            ),
            Context(),
        )


def test_resolve_outputs_without_state(sandbox: Sandbox, bundle_uri: str) -> None:
    with pytest.raises(OutputsNotAvailable, match="no state"):
        resolve_outputs.handler(event(bundle_uri), Context())


def test_fallback_and_deploy_version(sandbox: Sandbox, bundle_uri: str) -> None:
    with pytest.raises(OutputsNotAvailable, match="0 live environments"):
        fallback_outputs.handler(event(bundle_uri), Context())
    ready_environment(sandbox, "webapp-dev")

    outputs = fallback_outputs.handler(event(bundle_uri), Context())
    first = deploy_version.handler(event(bundle_uri, outputs=outputs), Context())
    sandbox.clock.advance(120)
    repeat = deploy_version.register_version(
        sandbox.client("elasticbeanstalk"), APPLICATION, "v1", bundle_uri, "r-2"
    )

    assert outputs["source"] == "fallback"
    assert outputs["healthCheckUrl"].endswith("/health")
    assert first["versionLabel"] == "v1"
    assert first["previousVersion"] is None
    assert first["versionReused"] is False
    assert first["updateStartedAt"].startswith("2026-01-01T")
    assert repeat is True
    with pytest.raises(VersionConflict, match="deploy under a new version label"):
        deploy_version.register_version(
            sandbox.client("elasticbeanstalk"),
            APPLICATION,
            "v1",
            bundle_uri.replace(".zip", "-other.zip"),
            "r-3",
        )


def test_verify_health_rejects_another_version(sandbox: Sandbox, bundle_uri: str) -> None:
    outputs = fallback_outputs.handler(event(bundle_uri), Context())
    request = {"environment": "dev", "version": "v9", "bundle": bundle_uri, "requestId": "r-9"}

    with pytest.raises(HealthCheckFailed, match="reports version v1, not v9"):
        verify_health.handler({**event(bundle_uri, outputs=outputs), "request": request}, Context())


def test_fallback_refuses_an_ambiguous_application(sandbox: Sandbox, bundle_uri: str) -> None:
    ready_environment(sandbox, "webapp-dev-2")

    with pytest.raises(OutputsNotAvailable, match="2 live environments"):
        fallback_outputs.handler(event(bundle_uri), Context())


def test_classify_uses_the_runner_result(sandbox: Sandbox, bundle_uri: str) -> None:
    sandbox.client("s3").put_object(
        Bucket=sandbox.resources.state_bucket,
        Key="results/dev/r-1.json",
        Body=json.dumps({"error": {"name": "StackLocked", "message": "locked by ci@host"}}),
    )
    failure = {"Error": "States.TaskFailed", "Cause": json.dumps({"Build": {"Id": "p:1"}})}

    named = classify_build_failure.handler(event(bundle_uri, failure=failure), Context())
    request = {"environment": "dev", "version": "v1", "bundle": bundle_uri, "requestId": "r-x"}
    unnamed = classify_build_failure.handler(
        {**event(bundle_uri, failure=failure), "request": request}, Context()
    )

    assert named == {"Error": "StackLocked", "Cause": "locked by ci@host"}
    assert unnamed["Error"] == "UpFailed"
    assert "CodeBuild build p:1" in unnamed["Cause"]


def test_log_lines_carry_environment_and_request(sandbox: Sandbox, bundle_uri: str) -> None:
    preflight.handler(event(bundle_uri), Context())

    lines = [json.loads(line) for line in sandbox.log_capture.lines if "preflight passed" in line]

    assert lines
    assert lines[-1]["environment"] == "dev"
    assert lines[-1]["request_id"] == "r-1"
    assert lines[-1]["correlation_id"].endswith(":dev-r-1")
    assert lines[-1]["secrets"] == ["db:password"]


def test_version_quota_prunes_oldest_unused(sandbox: Sandbox, bundle_uri: str) -> None:
    eb = sandbox.client("elasticbeanstalk")
    bucket, key = bundle_uri[len("s3://") :].split("/", 1)
    for number in range(4):
        eb.create_application_version(
            ApplicationName=APPLICATION,
            VersionLabel=f"old-{number}",
            SourceBundle={"S3Bucket": bucket, "S3Key": key},
        )
        sandbox.clock.advance(1)
    count = len(
        eb.describe_application_versions(ApplicationName=APPLICATION)["ApplicationVersions"]
    )
    sandbox.eb.configure(max_application_versions=count)

    reused = deploy_version.register_version(
        eb, APPLICATION, "v-new", bundle_uri, "r-5", keep={"old-0"}, retention=2
    )
    labels = {
        version["VersionLabel"]
        for version in eb.describe_application_versions(ApplicationName=APPLICATION)[
            "ApplicationVersions"
        ]
    }
    sandbox.eb.configure(max_application_versions=1000)

    assert reused is False
    assert "v-new" in labels
    assert "old-0" in labels  # the previous version is never deleted
    assert "v1" in labels  # the running version is never deleted
    assert "old-1" not in labels
    assert {"old-2", "old-3"} <= labels  # the newest `retention` unused versions stay
