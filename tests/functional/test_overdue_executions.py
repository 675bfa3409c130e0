"""CheckOverdueExecutions against moto's Step Functions, and on its schedule in the sandbox.

moto's default Step Functions records executions without running them, so a started execution
stays RUNNING until the test stops it. Its start date comes from moto's clock, which the tests
set, and the check reads the time from the task clock.
"""

from __future__ import annotations

import datetime as real_datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from control_plane.bundle import build_bundle
from control_plane.executions import execution_name, start_deployment, upload_bundle
from control_plane.sandbox.sandbox import Sandbox, SandboxOptions
from lambdas import check_overdue_executions
from lambdas.common import aws, clock, metrics
from lambdas.common.settings import (
    DEFAULT_EXPECTED_EXECUTION_SECONDS,
    SettingsError,
    current_settings,
    load_settings,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DEV_EXPECTED_SECONDS = 1800
SERVICE = "control-plane"


class Context:
    """The Lambda context fields that Powertools reads."""

    function_name = "CheckOverdueExecutionsFunction"
    aws_request_id = "req-1"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:CheckOverdue"

    def get_remaining_time_in_millis(self) -> int:
        return check_overdue_executions.CHECK_TIMEOUT_SECONDS * 1000


def write_environments(path: Path, changes: dict[str, dict[str, Any]]) -> Path:
    """Write the sample environments file with `changes` merged into its environments."""
    document = yaml.safe_load((REPO_ROOT / "environments.yaml").read_text())
    for name, values in changes.items():
        document["environments"][name].update(values)
    path.write_text(yaml.safe_dump(document))
    return path


def parse_metric_lines(lines: list[str], name: str) -> list[dict[str, Any]]:
    """Return the value and dimensions of each EMF line that publishes metric `name`."""
    found = []
    for line in lines:
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        if [metric["Name"] for metric in directive["Metrics"]] != [name]:
            continue
        assert directive["Namespace"] == metrics.NAMESPACE
        (dimension_names,) = directive["Dimensions"]
        value = document[name]
        found.append(
            {
                "value": value[0] if isinstance(value, list) else value,
                "dimensions": {key: document[key] for key in dimension_names},
            }
        )
    return found


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Collect the EMF lines the handler writes, with the service name the stack sets."""
    lines: list[str] = []
    monkeypatch.setattr(metrics, "sink", lines.append)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", SERVICE)
    return lines


@pytest.fixture
def state_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    environments = write_environments(
        tmp_path / "environments.yaml",
        {"dev": {"expected_execution_seconds": DEV_EXPECTED_SECONDS}},
    )
    monkeypatch.setenv("ENVIRONMENTS_FILE", str(environments))
    current_settings.cache_clear()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        aws.client.cache_clear()
        machine = boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
            name="deployments",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", machine)
        clock.install(lambda: NOW)
        yield machine
        clock.install(None)
        aws.client.cache_clear()
    current_settings.cache_clear()


def start_at(monkeypatch: pytest.MonkeyPatch, machine: str, name: str, started_at: float) -> str:
    """Start an execution that moto dates `started_at` (epoch seconds)."""
    from moto.stepfunctions import models

    moment = real_datetime.datetime.fromtimestamp(started_at, tz=real_datetime.UTC)
    monkeypatch.setattr(models, "utcnow", lambda: moment)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    return sfn.start_execution(stateMachineArn=machine, name=name, input="{}")["executionArn"]


def test_overdue_running_execution_is_counted(
    monkeypatch: pytest.MonkeyPatch, state_machine: str, emitted: list[str]
) -> None:
    old = start_at(monkeypatch, state_machine, "dev-r-old", NOW - DEV_EXPECTED_SECONDS - 60)
    start_at(monkeypatch, state_machine, "dev-r-fresh", NOW - 60)
    start_at(monkeypatch, state_machine, "dev-r-at-limit", NOW - DEV_EXPECTED_SECONDS)
    finished = start_at(monkeypatch, state_machine, "dev-r-done", NOW - 5 * DEV_EXPECTED_SECONDS)
    boto3.client("stepfunctions", region_name="us-east-1").stop_execution(executionArn=finished)
    # Staging keeps the default expected time, so an age past dev's does not count there.
    start_at(monkeypatch, state_machine, "staging-r-1", NOW - DEV_EXPECTED_SECONDS - 60)

    result = check_overdue_executions.handler({"id": "event-1"}, Context())

    assert result["overdue"] == {"dev": 1, "prod": 0, "staging": 0}
    (overdue,) = result["executions"]
    assert overdue["execution_arn"] == old
    assert overdue["running_seconds"] == DEV_EXPECTED_SECONDS + 60
    assert overdue["expected_seconds"] == DEV_EXPECTED_SECONDS
    published = parse_metric_lines(emitted, check_overdue_executions.METRIC_NAME)
    by_environment = {item["dimensions"]["environment"]: item for item in published}
    assert sorted(by_environment) == ["dev", "prod", "staging"]
    assert by_environment["dev"]["value"] == 1
    assert by_environment["staging"]["value"] == 0
    assert by_environment["prod"]["value"] == 0
    assert by_environment["dev"]["dimensions"] == {"environment": "dev", "service": SERVICE}


def test_default_expected_time_applies_per_environment(
    monkeypatch: pytest.MonkeyPatch, state_machine: str, emitted: list[str]
) -> None:
    age = DEFAULT_EXPECTED_EXECUTION_SECONDS + 1
    start_at(monkeypatch, state_machine, "staging-r-1", NOW - age)
    start_at(monkeypatch, state_machine, "prod-r-1", NOW - DEFAULT_EXPECTED_EXECUTION_SECONDS)

    result = check_overdue_executions.handler({}, Context())

    assert DEFAULT_EXPECTED_EXECUTION_SECONDS == 3 * 60 * 60
    assert result["overdue"] == {"dev": 0, "prod": 0, "staging": 1}


def test_nothing_running_publishes_zero_for_every_environment(
    state_machine: str, emitted: list[str]
) -> None:
    result = check_overdue_executions.handler({}, Context())

    published = parse_metric_lines(emitted, check_overdue_executions.METRIC_NAME)
    assert result["overdue"] == {"dev": 0, "prod": 0, "staging": 0}
    assert sorted(item["dimensions"]["environment"] for item in published) == [
        "dev",
        "prod",
        "staging",
    ]
    assert {item["value"] for item in published} == {0}


def test_unmanaged_execution_is_not_counted(
    monkeypatch: pytest.MonkeyPatch, state_machine: str, emitted: list[str]
) -> None:
    start_at(monkeypatch, state_machine, "manual-test-run", NOW - 10 * DEV_EXPECTED_SECONDS)

    result = check_overdue_executions.handler({}, Context())

    assert result["overdue"] == {"dev": 0, "prod": 0, "staging": 0}
    assert result["executions"] == []


def test_longest_environment_name_wins() -> None:
    settings = load_settings(REPO_ROOT / "environments.yaml")
    settings.environments["dev-eu"] = settings.environments["dev"]

    assert check_overdue_executions.environment_of("dev-eu-r-1", settings) == "dev-eu"
    assert check_overdue_executions.environment_of("dev-r-1", settings) == "dev"
    assert check_overdue_executions.environment_of("devx-r-1", settings) is None


def test_redriven_execution_counts_from_its_redrive() -> None:
    started = real_datetime.datetime(2026, 1, 1, tzinfo=real_datetime.UTC)
    redriven = started + real_datetime.timedelta(hours=5)

    assert check_overdue_executions.running_since({"startDate": started}) == started
    assert (
        check_overdue_executions.running_since({"startDate": started, "redriveDate": redriven})
        == redriven
    )


def test_expected_time_below_a_minute_is_rejected(tmp_path: Path) -> None:
    path = write_environments(
        tmp_path / "environments.yaml", {"dev": {"expected_execution_seconds": 59}}
    )

    with pytest.raises(SettingsError) as raised:
        load_settings(path)

    assert "environments.dev.expected_execution_seconds" in str(raised.value)
    assert "greater than or equal to 60" in str(raised.value)


# The schedule in the sandbox

SANDBOX_EXPECTED_SECONDS = 300
# A first deployment waits this long for EB to launch the environment, so it runs through at
# least one check of the 10-minute schedule.
SANDBOX_LAUNCH_SECONDS = 800


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    options = SandboxOptions(
        work_dir=tmp_path_factory.mktemp("overdue"),
        launch_seconds=SANDBOX_LAUNCH_SECONDS,
        environment_overrides={"dev": {"expected_execution_seconds": SANDBOX_EXPECTED_SECONDS}},
    )
    with Sandbox(options) as running:
        yield running


def test_schedule_reports_long_deployment_in_sandbox(sandbox: Sandbox) -> None:
    sfn = sandbox.client("stepfunctions")
    bundle = upload_bundle(
        sandbox.client("s3"),
        sandbox.resources.bundle_bucket,
        "dev",
        build_bundle(REPO_ROOT / "samples" / "webapp"),
    )
    request = {
        "environment": "dev",
        "version": "v1",
        "bundle": bundle,
        "requestId": "slow-1",
        "trigger": "manual",
        "startedBy": "test",
    }
    sandbox.clock.add_actor()
    try:
        arn = start_deployment(sfn, sandbox.resources.state_machine_arn, request)
        periods = 0
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING" and periods < 6:
            sandbox.events.let_time_pass(check_overdue_executions.CHECK_RATE_MINUTES * 60)
            periods += 1
        status = sfn.describe_execution(executionArn=arn)["status"]
        # One more check after the deployment ended.
        sandbox.events.let_time_pass(check_overdue_executions.CHECK_RATE_MINUTES * 60)
    finally:
        sandbox.clock.remove_actor()

    lines = (sandbox.options.work_dir / "lambdas.log").read_text().splitlines()
    published = parse_metric_lines(lines, check_overdue_executions.METRIC_NAME)
    dev = [item["value"] for item in published if item["dimensions"]["environment"] == "dev"]
    others = [item["value"] for item in published if item["dimensions"]["environment"] != "dev"]
    reported = [
        json.loads(line) for line in lines if line.startswith("{") and '"execution overdue"' in line
    ]
    assert status == "SUCCEEDED"
    assert 1 in dev
    assert dev[-1] == 0
    assert others
    assert set(others) == {0}
    assert reported
    assert {entry["execution_name"] for entry in reported} == {execution_name("dev", "slow-1")}
    assert all(entry["running_seconds"] > SANDBOX_EXPECTED_SECONDS for entry in reported)
