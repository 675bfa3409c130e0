"""The sandbox's CodeBuild gets the stacks' passphrase the way CodeBuild does.

The synthesized project declares PULUMI_CONFIG_PASSPHRASE as a PARAMETER_STORE variable. The
sandbox seeds that SSM parameter and resolves the project's variables when a build starts. A
missing parameter fails the build with CodeBuild's phase context before the runner runs, and
ClassifyBuildFailure turns that into ConfigurationMissing, naming the parameter and its fix.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from control_plane.sandbox.sandbox import Sandbox, SandboxOptions
from lambdas import classify_build_failure
from lambdas.common.settings import DEFAULT_PULUMI_PASSPHRASE_PARAMETER
from tests.sandbox_handlers import Context, point_clients_at_sandbox

PARAMETER = DEFAULT_PULUMI_PASSPHRASE_PARAMETER
MISSING_MESSAGE = f"parameter does not exist: {PARAMETER}"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    options = SandboxOptions(work_dir=tmp_path_factory.mktemp("passphrase"))
    with Sandbox(options) as running:
        yield running


@pytest.fixture(autouse=True)
def sandbox_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    point_clients_at_sandbox(sandbox, monkeypatch)


def run_build(sandbox: Sandbox, **variables: str) -> dict[str, Any]:
    """Start a build of the sandbox's project with these PLAINTEXT overrides and wait for it."""
    codebuild = sandbox.client("codebuild")
    build_id = codebuild.start_build(
        projectName=sandbox.resources.codebuild_project,
        environmentVariablesOverride=[
            {"name": name, "value": value, "type": "PLAINTEXT"} for name, value in variables.items()
        ],
    )["build"]["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        if build["buildStatus"] != "IN_PROGRESS":
            return build
        time.sleep(0.2)
    raise AssertionError(f"build {build_id} did not end within 120 s")


def build_log(sandbox: Sandbox, build_id: str) -> str:
    build = next(item for item in sandbox.codebuild.builds if item.id == build_id)
    assert build.log_path is not None
    return build.log_path.read_text(encoding="utf-8")


def test_passphrase_seeded_as_secure_string(sandbox: Sandbox) -> None:
    parameter = sandbox.client("ssm").get_parameter(Name=PARAMETER, WithDecryption=True)

    assert parameter["Parameter"]["Type"] == "SecureString"
    assert parameter["Parameter"]["Value"] in sandbox.secret_values


def test_project_variables_from_template(sandbox: Sandbox) -> None:
    assert sandbox.resources.codebuild_environment == [
        {"name": "PULUMI_CONFIG_PASSPHRASE", "type": "PARAMETER_STORE", "value": PARAMETER}
    ]


def test_runner_receives_the_passphrase(sandbox: Sandbox) -> None:
    # An invalid RESULT_URI stops the runner right after its check of the passphrase.
    build = run_build(
        sandbox,
        PULUMI_ACTION="up",
        PULUMI_STACK="dev",
        PULUMI_BACKEND_URL=f"s3://{sandbox.resources.state_bucket}",
        RESULT_URI="not-an-s3-uri",
    )
    log = build_log(sandbox, build["id"])

    assert build["buildStatus"] == "FAILED"
    assert "RESULT_URI='not-an-s3-uri' is invalid" in log
    assert "PULUMI_CONFIG_PASSPHRASE is not set" not in log
    assert not any(value in log for value in sandbox.secret_values)


def test_missing_parameter_fails_build(sandbox: Sandbox) -> None:
    ssm = sandbox.client("ssm")
    value = ssm.get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    ssm.delete_parameter(Name=PARAMETER)
    try:
        build = run_build(sandbox, PULUMI_ACTION="up", PULUMI_STACK="dev")
    finally:
        ssm.put_parameter(Name=PARAMETER, Value=value, Type="SecureString")
    phases = {phase["phaseType"]: phase for phase in build["phases"]}
    log = build_log(sandbox, build["id"])

    assert build["buildStatus"] == "FAILED"
    assert phases["DOWNLOAD_SOURCE"]["phaseStatus"] == "FAILED"
    assert phases["DOWNLOAD_SOURCE"]["contexts"] == [
        {"statusCode": "Decrypted Variables Error", "message": MISSING_MESSAGE}
    ]
    assert "BUILD" not in phases
    assert f"Phase context status code: Decrypted Variables Error Message: {MISSING_MESSAGE}" in log
    # The runner never started: every line is CodeBuild's own.
    assert all(line.startswith("[Container] ") for line in log.splitlines())


def failed_build_cause(message: str) -> dict[str, str]:
    """The RunPulumi failure Step Functions passes on: the build in its PascalCase output."""
    build = {
        "Id": "PulumiRunner:00000007",
        "BuildStatus": "FAILED",
        "Phases": [
            {"PhaseType": "SUBMITTED", "PhaseStatus": "SUCCEEDED"},
            {
                "PhaseType": "DOWNLOAD_SOURCE",
                "PhaseStatus": "FAILED",
                "Contexts": [{"StatusCode": "Decrypted Variables Error", "Message": message}],
            },
            {"PhaseType": "COMPLETED"},
        ],
    }
    return {"Error": "States.TaskFailed", "Cause": json.dumps({"Build": build})}


def classify_event(failure: dict[str, str]) -> dict[str, Any]:
    return {
        "request": {
            "environment": "dev",
            "version": "v1",
            "bundle": "s3://bundles/dev/v1.zip",
            "requestId": "r-passphrase",
        },
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:dev-r-passphrase",
        "target": {
            "environment": "dev",
            "region": "us-east-1",
            "project": "webapp",
            "stack": "dev",
            "backendUrl": "s3://state",
            "ebApplication": "webapp-dev",
            "healthPath": "/health",
            "secrets": {},
        },
        "failure": failure,
    }


def test_classify_names_missing_parameter(sandbox: Sandbox) -> None:
    result = classify_build_failure.handler(
        classify_event(failed_build_cause(MISSING_MESSAGE)), Context()
    )

    assert result["Error"] == "ConfigurationMissing"
    assert MISSING_MESSAGE in result["Cause"]
    assert (
        f"aws ssm put-parameter --type SecureString --name {PARAMETER} --value <passphrase> "
        "--region us-east-1" in result["Cause"]
    )
    assert "PulumiRunner:00000007" in result["Cause"]


def test_classify_reports_denied_read(sandbox: Sandbox) -> None:
    denied = (
        "AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/runner/AWSCodeBuild-1 "
        "is not authorized to perform: ssm:GetParameters on resource: "
        f"arn:aws:ssm:us-east-1:123456789012:parameter{PARAMETER}"
    )

    result = classify_build_failure.handler(classify_event(failed_build_cause(denied)), Context())

    assert result["Error"] == "ConfigurationMissing"
    assert denied in result["Cause"]
    assert "kms:Decrypt" in result["Cause"]
    assert "put-parameter" not in result["Cause"]


def test_classify_unknown_message_names_parameter(sandbox: Sandbox) -> None:
    # A context text the classifier does not know still names the passphrase parameter.
    message = "invalid parameters"

    result = classify_build_failure.handler(classify_event(failed_build_cause(message)), Context())

    assert result["Error"] == "ConfigurationMissing"
    assert f"({message})" in result["Cause"]
    assert f"put-parameter --type SecureString --name {PARAMETER} " in result["Cause"]
