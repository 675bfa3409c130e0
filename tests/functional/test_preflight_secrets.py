"""Preflight's secret checks against the sandbox's SSM and Secrets Manager (moto).

Each test declares its environment's required secrets, stores some of them, and checks that
Preflight names every missing one with its source and the command that sets it, reads no value
and returns references only.
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
from lambdas import preflight
from lambdas.common.errors import ConfigurationMissing
from lambdas.common.settings import EnvironmentSettings, read_stack_config_keys
from tests.sandbox_handlers import Context, point_clients_at_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    options = SandboxOptions(work_dir=tmp_path_factory.mktemp("preflight-secrets"))
    with Sandbox(options) as running:
        yield running


@pytest.fixture(autouse=True)
def sandbox_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    point_clients_at_sandbox(sandbox, monkeypatch)


def environment(secrets: dict[str, Any], stack: str = "qa") -> EnvironmentSettings:
    return EnvironmentSettings.model_validate(
        {
            "region": REGION,
            "pulumi_project": "webapp",
            "pulumi_stack": stack,
            "backend_url": "s3://{state_bucket}",
            "eb_application": "webapp-qa",
            "required_secrets": secrets,
        }
    )


def stage_stack_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stack: str, config: str
) -> None:
    """Write infra/Pulumi.<stack>.yaml and stage its keys as `cdk synth` does."""
    infra = tmp_path / "infra"
    infra.mkdir(exist_ok=True)
    (infra / f"Pulumi.{stack}.yaml").write_text(f"config:\n{config}", encoding="utf-8")
    staged = tmp_path / "stack_config_keys.json"
    staged.write_text(json.dumps(read_stack_config_keys(infra)), encoding="utf-8")
    monkeypatch.setenv("STACK_CONFIG_KEYS_FILE", str(staged))


def test_every_missing_secret_named_at_once(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage_stack_config(tmp_path, monkeypatch, "qa", "  webapp:apiKey: plain-text\n")
    settings = environment(
        {
            "db:password": {"ssm": "/control-plane/qa/db-password"},
            "db:username": {"secretsmanager": "control-plane/qa/db", "key": "username"},
            "db:token": {"secretsmanager": "control-plane/qa/db", "key": "token"},
            "webapp:apiKey": {"stack_config": True},
            "webapp:signingKey": {"stack_config": True},
        }
    )

    problems = preflight.missing_secrets(settings)

    assert [problem.split(" ", 1)[0] for problem in problems] == [
        "db:password",
        "db:token",
        "db:username",
        "webapp:apiKey",
        "webapp:signingKey",
    ]
    text = "\n".join(problems)
    assert (
        "aws ssm put-parameter --type SecureString --name /control-plane/qa/db-password "
        "--value <secret> --region us-east-1" in text
    )
    assert "Secrets Manager secret control-plane/qa/db not found in us-east-1" in text
    # One command creates the secret with a field for every key read from it.
    assert (
        "aws secretsmanager create-secret --name control-plane/qa/db --secret-string "
        """'{"token":"<secret>","username":"<secret>"}' --region us-east-1""" in text
    )
    assert "webapp:apiKey (set in plain text in infra/Pulumi.qa.yaml, not as a secret" in text
    assert "webapp:signingKey (not set in infra/Pulumi.qa.yaml" in text
    assert "`pulumi config set --secret webapp:signingKey --stack qa`" in text


def test_secrets_that_exist_pass(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage_stack_config(
        tmp_path, monkeypatch, "qa", "  webapp:apiKey:\n    secure: v1:c2FsdA==:Y2lwaGVy\n"
    )
    sandbox.client("ssm").put_parameter(
        Name="/control-plane/qa/present", Value="ssm-value-1", Type="SecureString"
    )
    sandbox.client("secretsmanager").create_secret(
        Name="control-plane/qa/present", SecretString=json.dumps({"password": "sm-value-1"})
    )
    settings = environment(
        {
            "db:password": {"secretsmanager": "control-plane/qa/present", "key": "password"},
            "db:other": {"ssm": "/control-plane/qa/present"},
            "webapp:apiKey": {"stack_config": True},
        }
    )

    assert preflight.missing_secrets(settings) == []


def test_secret_scheduled_for_deletion_names_restore(sandbox: Sandbox) -> None:
    manager = sandbox.client("secretsmanager")
    manager.create_secret(Name="control-plane/qa/deleted", SecretString="deleted-value-1")
    manager.delete_secret(SecretId="control-plane/qa/deleted", RecoveryWindowInDays=7)
    settings = environment({"db:password": {"secretsmanager": "control-plane/qa/deleted"}})

    problems = preflight.missing_secrets(settings)

    assert len(problems) == 1
    assert "is scheduled for deletion" in problems[0]
    assert (
        "aws secretsmanager restore-secret --secret-id control-plane/qa/deleted "
        "--region us-east-1" in problems[0]
    )


def test_secret_without_value_names_put_secret_value(sandbox: Sandbox) -> None:
    sandbox.client("secretsmanager").create_secret(Name="control-plane/qa/empty")
    settings = environment({"db:password": {"secretsmanager": "control-plane/qa/empty"}})

    problems = preflight.missing_secrets(settings)

    assert len(problems) == 1
    assert "has no current value" in problems[0]
    assert "aws secretsmanager put-secret-value --secret-id control-plane/qa/empty" in problems[0]


def test_secret_by_arn_is_checked_in_its_region(sandbox: Sandbox) -> None:
    created = sandbox.client("secretsmanager", "eu-west-1").create_secret(
        Name="control-plane/qa/by-arn", SecretString="arn-value-1"
    )
    settings = environment({"db:password": {"secretsmanager": created["ARN"]}})

    assert preflight.missing_secrets(settings) == []
    assert preflight.secret_references(settings)["db:password"].region == "eu-west-1"


def test_missing_stack_settings_file_named(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage_stack_config(tmp_path, monkeypatch, "other", "  webapp:apiKey: x\n")
    settings = environment({"webapp:apiKey": {"stack_config": True}})

    problems = preflight.missing_secrets(settings)

    assert problems == [
        "webapp:apiKey (stack qa has no settings file infra/Pulumi.qa.yaml in this deployment; "
        "set it with `pulumi config set --secret webapp:apiKey --stack qa` in infra/ (it "
        "prompts for the value), commit infra/Pulumi.qa.yaml and run `cdk deploy`)"
    ]


def test_staging_secrets_manager_secret_passes_as_reference(sandbox: Sandbox) -> None:
    data = build_bundle(REPO_ROOT / "samples" / "webapp")
    bundle = upload_bundle(sandbox.client("s3"), sandbox.resources.bundle_bucket, "staging", data)
    event = {
        "request": {
            "environment": "staging",
            "version": "v1",
            "bundle": bundle,
            "requestId": "r-1",
        },
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:staging-r-1",
    }

    target = preflight.handler(event, Context())

    assert target["secrets"] == {
        "db:password": {
            "source": "secretsmanager",
            "name": "control-plane/staging/db",
            "region": "us-east-1",
            "jsonKey": "password",
        },
        "db:username": {
            "source": "secretsmanager",
            "name": "control-plane/staging/db",
            "region": "us-east-1",
            "jsonKey": "username",
        },
    }
    assert not any(value in json.dumps(target) for value in sandbox.secret_values)


def test_deleted_staging_secret_fails_with_both_keys(sandbox: Sandbox) -> None:
    manager = sandbox.client("secretsmanager")
    stored = manager.get_secret_value(SecretId="control-plane/staging/db")["SecretString"]
    settings = environment(
        {
            "db:password": {"secretsmanager": "control-plane/staging/db", "key": "password"},
            "db:username": {"secretsmanager": "control-plane/staging/db", "key": "username"},
        }
    )
    manager.delete_secret(SecretId="control-plane/staging/db", ForceDeleteWithoutRecovery=True)
    try:
        with pytest.raises(ConfigurationMissing) as raised:
            preflight.handler(
                {
                    "request": {
                        "environment": "staging",
                        "version": "v1",
                        "bundle": "s3://bucket-name/bundles/staging/a.zip",
                        "requestId": "r-2",
                    },
                    "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:s-r-2",
                },
                Context(),
            )
    finally:
        manager.create_secret(Name="control-plane/staging/db", SecretString=stored)

    message = str(raised.value)
    # The secret scan of every scenario looks for the seeded Secrets Manager values too.
    assert set(json.loads(stored).values()) <= set(sandbox.secret_values)
    assert "is missing 2 required secret(s)" in message
    assert "db:password (Secrets Manager secret control-plane/staging/db not found" in message
    assert "db:username (Secrets Manager secret control-plane/staging/db not found" in message
    assert not any(value in message for value in sandbox.secret_values)
    assert preflight.missing_secrets(settings) == []


# Events whose details are the execution's own state data, which Step Functions records as the
# caller passed it: the input, and each state's input and task parameters built from it.
STATE_DATA_FIELDS = ("input", "output", "parameters")


def test_secret_in_input_rejected_and_never_repeated(sandbox: Sandbox) -> None:
    from control_plane.executions import wait_for_execution
    from lambdas.common.store import ledger_records

    secret = "Zq8vK2mX7pR4tW9yB3nD6fHj"
    sfn = sandbox.client("stepfunctions")
    request = {
        "environment": "dev",
        "version": "v1",
        "bundle": "s3://bundles-bucket/bundles/dev/abc.zip",
        "requestId": "leak-1",
        "startedBy": f"ci token={secret}",
        "options": {"dbPassword": secret},
    }
    arn = sfn.start_execution(
        stateMachineArn=sandbox.resources.state_machine_arn,
        name="dev-leak-1",
        input=json.dumps(request),
    )["executionArn"]

    report = wait_for_execution(sfn, arn, timeout_seconds=120)

    assert report.status == "FAILED"
    assert report.error == "InvalidRequest"
    assert "startedBy: looks like a secret value" in (report.cause or "")
    assert "options.dbPassword: a field for a secret" in (report.cause or "")
    assert secret not in (report.cause or "")
    assert report.output is None
    written = [
        (event["type"], name, text)
        for event in report.events
        for name, details in event.items()
        if name.endswith("EventDetails")
        for field, text in details.items()
        if field not in STATE_DATA_FIELDS and isinstance(text, str)
    ]
    assert written
    assert [entry for entry in written if secret in entry[2]] == []
    record = ledger_records("dev", sandbox.resources.table_name)
    assert [item for item in record if item["requestId"] == "leak-1"]
    assert secret not in json.dumps(record, default=str)
    assert not any(secret in line for line in sandbox.log_capture.lines)
