"""Source bundles of environments outside the control plane's region.

EB accepts an application version's source bundle only from a bucket in its own region. The
sandbox's bundle bucket is in us-east-1 and the sample `prod` environment in eu-west-1, so
DeployVersion copies the bundle into EB's storage bucket of eu-west-1 before it creates the
version. The handlers run in-process against the sandbox's AWS endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from control_plane.bundle import build_bundle
from control_plane.executions import upload_bundle
from control_plane.sandbox.sandbox import ACCOUNT_ID, Sandbox, SandboxOptions
from lambdas import deploy_version
from lambdas.common.lease import Lease
from tests.sandbox_handlers import Context, point_clients_at_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
SOLUTION_STACK = "64bit Amazon Linux 2023 v4.7.0 running Python 3.12"
PROD_REGION = "eu-west-1"
PROD_APPLICATION = "webapp-prod"
PROD_STORAGE_BUCKET = f"elasticbeanstalk-{PROD_REGION}-{ACCOUNT_ID}"
DEV_STORAGE_BUCKET = f"elasticbeanstalk-us-east-1-{ACCOUNT_ID}"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    options = SandboxOptions(work_dir=tmp_path_factory.mktemp("cross-region"), launch_seconds=10)
    with Sandbox(options) as running:
        yield running


@pytest.fixture(autouse=True)
def sandbox_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    point_clients_at_sandbox(sandbox, monkeypatch)


@pytest.fixture(scope="module")
def bundle_uri(sandbox: Sandbox) -> str:
    data = build_bundle(REPO_ROOT / "samples" / "webapp")
    return upload_bundle(sandbox.client("s3"), sandbox.resources.bundle_bucket, "prod", data)


def split(uri: str) -> tuple[str, str]:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return bucket, key


def ready_environment(sandbox: Sandbox, region: str, application: str, name: str) -> None:
    eb = sandbox.client("elasticbeanstalk", region)
    if not eb.describe_applications(ApplicationNames=[application])["Applications"]:
        eb.create_application(ApplicationName=application)
    eb.create_environment(
        ApplicationName=application, EnvironmentName=name, SolutionStackName=SOLUTION_STACK
    )
    sandbox.clock.advance(11)


def task_event(
    environment: str, region: str, application: str, version: str, bundle: str, request_id: str
) -> dict[str, Any]:
    execution = f"arn:aws:states:us-east-1:123456789012:execution:m:{environment}-{request_id}"
    lock = Lease(environment, request_id, execution, 1_000).acquire()
    return {
        "request": {
            "environment": environment,
            "version": version,
            "bundle": bundle,
            "requestId": request_id,
        },
        "executionArn": execution,
        "target": {
            "environment": environment,
            "region": region,
            "project": "webapp",
            "stack": environment,
            "backendUrl": "s3://unused",
            "ebApplication": application,
            "healthPath": "/health",
            "secrets": {},
        },
        "outputs": {"ebEnvironmentName": application, "ebApplicationName": application},
        "lock": lock,
    }


def source_bundle(sandbox: Sandbox, region: str, application: str, label: str) -> dict[str, str]:
    (version,) = sandbox.client("elasticbeanstalk", region).describe_application_versions(
        ApplicationName=application, VersionLabels=[label]
    )["ApplicationVersions"]
    return version["SourceBundle"]


def copy_decisions(sandbox: Sandbox, request_id: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in sandbox.log_capture.lines if "bundle location" in line]
    return [line for line in lines if line.get("request_id") == request_id]


def test_simulator_rejects_bundle_of_another_region(sandbox: Sandbox, bundle_uri: str) -> None:
    bucket, key = split(bundle_uri)
    eb = sandbox.client("elasticbeanstalk", PROD_REGION)
    eb.create_application(ApplicationName="region-check")

    with pytest.raises(ClientError) as raised:
        eb.create_application_version(
            ApplicationName="region-check",
            VersionLabel="v1",
            SourceBundle={"S3Bucket": bucket, "S3Key": key},
        )

    error = raised.value.response
    assert error["Error"]["Code"] == "S3LocationNotInServiceRegionException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"].startswith(
        "The specified S3 bucket does not belong to the S3 region in which the service is running"
    )
    assert not eb.describe_application_versions(ApplicationName="region-check")[
        "ApplicationVersions"
    ]


def test_simulator_creates_storage_location(sandbox: Sandbox) -> None:
    first = sandbox.client("elasticbeanstalk", "us-west-2").create_storage_location()
    again = sandbox.client("elasticbeanstalk", "us-west-2").create_storage_location()

    bucket = f"elasticbeanstalk-us-west-2-{ACCOUNT_ID}"
    assert first["S3Bucket"] == bucket
    assert again["S3Bucket"] == bucket
    location = sandbox.client("s3").get_bucket_location(Bucket=bucket)
    assert location["LocationConstraint"] == "us-west-2"


def test_deploy_to_other_region_copies_bundle(sandbox: Sandbox, bundle_uri: str) -> None:
    ready_environment(sandbox, PROD_REGION, PROD_APPLICATION, PROD_APPLICATION)
    event = task_event("prod", PROD_REGION, PROD_APPLICATION, "v1", bundle_uri, "r-1")

    result = deploy_version.handler(event, Context())

    source_bucket, source_key = split(bundle_uri)
    expected_key = f"{PROD_APPLICATION}/control-plane/{source_key}"
    assert result["versionLabel"] == "v1"
    assert source_bundle(sandbox, PROD_REGION, PROD_APPLICATION, "v1") == {
        "S3Bucket": PROD_STORAGE_BUCKET,
        "S3Key": expected_key,
    }
    s3 = sandbox.client("s3", PROD_REGION)
    assert s3.get_bucket_location(Bucket=PROD_STORAGE_BUCKET)["LocationConstraint"] == PROD_REGION
    copied = s3.get_object(Bucket=PROD_STORAGE_BUCKET, Key=expected_key)["Body"].read()
    original = sandbox.client("s3").get_object(Bucket=source_bucket, Key=source_key)
    assert copied == original["Body"].read()
    (decision,) = copy_decisions(sandbox, "r-1")
    assert decision["decision"] == "copied"
    assert decision["environment"] == "prod"
    assert decision["source"] == bundle_uri
    assert decision["destination"] == f"s3://{PROD_STORAGE_BUCKET}/{expected_key}"


def test_retried_deploy_copies_bundle_once(
    sandbox: Sandbox, bundle_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready_environment(sandbox, PROD_REGION, "webapp-retry", "webapp-retry")
    event = task_event("prod", PROD_REGION, "webapp-retry", "v1", bundle_uri, "r-2")
    register_version = deploy_version.register_version

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("the task crashed after copying the bundle")

    monkeypatch.setattr(deploy_version, "register_version", crash)
    with pytest.raises(RuntimeError, match="crashed"):
        deploy_version.handler(event, Context())
    # A copy made again would add a version of the object.
    s3 = sandbox.client("s3", PROD_REGION)
    s3.put_bucket_versioning(
        Bucket=PROD_STORAGE_BUCKET, VersioningConfiguration={"Status": "Enabled"}
    )
    monkeypatch.setattr(deploy_version, "register_version", register_version)
    result = deploy_version.handler(event, Context())

    key = f"webapp-retry/control-plane/{split(bundle_uri)[1]}"
    versions = s3.list_object_versions(Bucket=PROD_STORAGE_BUCKET, Prefix=key)["Versions"]
    assert result["versionLabel"] == "v1"
    assert len(versions) == 1
    decisions = [line["decision"] for line in copy_decisions(sandbox, "r-2")]
    assert decisions == ["copied", "copy found"]
    assert source_bundle(sandbox, PROD_REGION, "webapp-retry", "v1")["S3Key"] == key


def test_same_region_deploy_makes_no_copy(sandbox: Sandbox, bundle_uri: str) -> None:
    ready_environment(sandbox, "us-east-1", "webapp-dev", "webapp-dev")
    event = task_event("dev", "us-east-1", "webapp-dev", "v1", bundle_uri, "r-3")

    result = deploy_version.handler(event, Context())

    bucket, key = split(bundle_uri)
    buckets = {entry["Name"] for entry in sandbox.client("s3").list_buckets()["Buckets"]}
    assert result["versionLabel"] == "v1"
    assert source_bundle(sandbox, "us-east-1", "webapp-dev", "v1") == {
        "S3Bucket": bucket,
        "S3Key": key,
    }
    assert DEV_STORAGE_BUCKET not in buckets
    (decision,) = copy_decisions(sandbox, "r-3")
    assert decision["decision"] == "in region"
    assert decision["destination"] == bundle_uri
