"""The control-plane command: exit codes and messages, against moto and stand-ins, never AWS."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import yaml
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner
from moto import mock_aws

from control_plane import cli
from control_plane.cli import SAMPLE_APP, Target, _build_local_bundle, _ledger_record, main
from control_plane.executions import execution_arn, start_deployment
from control_plane.sandbox import daemon
from control_plane.sandbox.eb.app_host import process_start_time
from lambdas.common.models import REQUEST_ID_PATTERN
from tests.ledger_table import create_ledger_table

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CONTROL_PLANE_SANDBOX_DIR", str(tmp_path / "sandbox-state"))
    return CliRunner()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


VALID_HEAD = "name: x\nenvironment: dev\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("steps:\n  - deploy: {version: v1}\n", "expect: Field required"),
        (
            "steps:\n  - advance: {seconds: -5}\nexpect:\n  - {step: 1}\n",
            "advance: seconds: Input should be greater than 0",
        ),
        ("steps:\n  - jump: {}\nexpect:\n  - {step: 1}\n", "unknown step 'jump'"),
        (
            "steps:\n  - deploy: {version: v1}\nfaults:\n  - lost_event: {}\n"
            "expect:\n  - {step: 1}\n",
            "unknown fault 'lost_event'",
        ),
        ("steps:\n  - deploy: {version: v1}\nexpect:\n  - {step: 2}\n", "expect refers to step 2"),
        (
            "steps:\n  - deploy: {version: v1}\nexpect:\n  - {step: 1, outcome: Fine}\n",
            "expect.0.outcome",
        ),
        (
            "steps:\n  - deploy: {version: v1, colour: red}\nexpect:\n  - {step: 1}\n",
            "colour: Extra inputs are not permitted",
        ),
        (
            "steps:\n  - deploy: {version: v1, request_id: has space}\nexpect:\n  - {step: 1}\n",
            "request_id: String should match pattern",
        ),
    ],
)
def test_invalid_scenario_exits_2(
    runner: CliRunner, tmp_path: Path, body: str, message: str
) -> None:
    result = runner.invoke(main, ["sandbox", "run", str(write(tmp_path, VALID_HEAD + body))])

    assert result.exit_code == 2
    assert message in result.output


def test_unknown_environment_in_scenario_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: x\nenvironment: qa\nsteps:\n  - deploy: {version: v1}\nexpect:\n  - {step: 1}\n",
    )

    result = runner.invoke(main, ["sandbox", "run", str(path)])

    assert result.exit_code == 2
    assert "'qa' is not defined" in result.output


def test_missing_scenario_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["sandbox", "run", str(tmp_path / "absent.yaml")])

    assert result.exit_code == 2
    assert "cannot read the file" in result.output


def test_status_without_sandbox(runner: CliRunner) -> None:
    result = runner.invoke(main, ["sandbox", "status"])

    assert result.exit_code == 3
    assert "sandbox not running" in result.output


def test_malformed_bundle_is_rejected_before_anything_starts(
    runner: CliRunner, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    (app / "nested").mkdir(parents=True)
    (app / "nested" / "application.py").write_text("application = None\n")

    result = runner.invoke(
        main, ["deploy", "--sandbox", "-e", "dev", "-v", "v1", "--bundle", str(app)]
    )

    assert result.exit_code == 13
    assert "bundle rejected:" in result.output
    assert "neither a Procfile nor application.py at its root" in result.output
    assert "zip that folder instead" in result.output
    assert not (tmp_path / "sandbox-state").exists()


def test_missing_bundle_folder_exits_13(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        main, ["deploy", "--sandbox", "-e", "dev", "-v", "v1", "-b", str(tmp_path / "absent")]
    )

    assert result.exit_code == 13
    assert "bundle rejected:" in result.output
    assert "does not exist" in result.output
    assert not (tmp_path / "sandbox-state").exists()


def test_deploy_help_shows_sample_app_default(runner: CliRunner) -> None:
    result = runner.invoke(main, ["deploy", "--help"])

    assert result.exit_code == 0
    assert str(SAMPLE_APP) in " ".join(result.output.split())


def test_default_bundle_works_outside_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert _build_local_bundle(str(SAMPLE_APP))


@pytest.mark.parametrize("request_id", ["has spaces", "-leading-dash", "x" * 65])
def test_invalid_request_id_exits_2(runner: CliRunner, tmp_path: Path, request_id: str) -> None:
    result = runner.invoke(
        main, ["deploy", "--sandbox", "-e", "dev", "-v", "v1", "--request-id", request_id]
    )

    assert result.exit_code == 2
    assert "--request-id" in result.output
    assert REQUEST_ID_PATTERN in result.output
    assert not (tmp_path / "sandbox-state").exists()


def test_ledger_null_is_none() -> None:
    item = {
        "outcome": {"S": "Deployed"},
        "plan": {"NULL": True},
        "finishedAt": {"N": "1700000000"},
    }
    dynamodb = SimpleNamespace(get_item=lambda **_: {"Item": item})
    target = Target(None, None, dynamodb, None, "arn", "bucket", "table")

    record = _ledger_record(target, "dev", "r-1")

    assert record["plan"] is None
    assert record["outcome"] == "Deployed"
    assert record["finishedAt"] == 1700000000


class UnreachableCloudFormation:
    def describe_stacks(self, StackName: str) -> None:
        raise EndpointConnectionError(endpoint_url="https://cloudformation.not-a-region.invalid/")


class OfflineSession:
    """A boto3 session whose CloudFormation endpoint cannot be reached; no network is used."""

    def __init__(self, region_name: str | None = None) -> None:
        self.region_name = region_name

    def client(self, service: str, config: object = None) -> UnreachableCloudFormation:
        return UnreachableCloudFormation()


def test_unreachable_region_is_named(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(boto3.session, "Session", OfflineSession)

    result = runner.invoke(main, ["history", "-e", "dev", "--region", "not-a-region"])

    assert result.exit_code == 1
    assert "Error:" in result.output
    assert "'not-a-region'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


FAILING_DAEMON = (
    "print('sandbox: environments.yaml is invalid:')\n"
    "print('environments.dev.region: String should match pattern')\n"
    "raise SystemExit(1)\n"
)


@pytest.mark.parametrize(
    "arguments", [["deploy", "--sandbox", "-e", "dev", "-v", "v1"], ["demo"], ["sandbox", "start"]]
)
def test_failed_sandbox_start_shows_its_log(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, arguments: list[str]
) -> None:
    monkeypatch.setattr(
        daemon, "daemon_command", lambda state_dir: [sys.executable, "-c", FAILING_DAEMON]
    )

    result = runner.invoke(main, arguments)

    assert result.exit_code == 1
    assert "exited with code 1 while starting" in result.output
    assert "environments.dev.region: String should match pattern" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.fixture
def silent_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, object]]:
    """A daemon.json whose process is alive and whose endpoint accepts but never responds."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    state = {
        "pid": sleeper.pid,
        "endpoint": f"http://127.0.0.1:{listener.getsockname()[1]}",
        "region": "us-east-1",
        "startTime": process_start_time(sleeper.pid),
    }
    state_dir = tmp_path / "sandbox-state"
    state_dir.mkdir()
    (state_dir / daemon.STATE_FILE).write_text(json.dumps(state))
    monkeypatch.setattr(daemon, "STATUS_TIMEOUT_SECONDS", 0.5)
    yield state
    listener.close()
    sleeper.kill()
    sleeper.wait()


def test_status_of_silent_sandbox_exits_3(
    runner: CliRunner, silent_sandbox: dict[str, object]
) -> None:
    result = runner.invoke(main, ["sandbox", "status"])

    assert result.exit_code == 3
    assert f"sandbox (pid {silent_sandbox['pid']}) is not responding" in result.output
    assert str(silent_sandbox["endpoint"]) in result.output
    assert "control-plane sandbox stop" in result.output


PASS_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}})
BUNDLE_URI = "s3://bundles/bundles/dev/abc.zip"


@pytest.fixture
def moto_target(monkeypatch: pytest.MonkeyPatch) -> Iterator[Target]:
    """A control plane in moto whose executions stay RUNNING until stopped, used as --sandbox."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        region = "us-east-1"
        sfn = boto3.client("stepfunctions", region_name=region)
        dynamodb = boto3.client("dynamodb", region_name=region)
        state_machine = sfn.create_state_machine(
            name="Deploy",
            definition=PASS_DEFINITION,
            roleArn="arn:aws:iam::123456789012:role/deploy",
        )["stateMachineArn"]
        create_ledger_table(dynamodb, "ledger")
        target = Target(
            sfn=sfn,
            s3=boto3.client("s3", region_name=region),
            dynamodb=dynamodb,
            elasticbeanstalk=boto3.client("elasticbeanstalk", region_name=region),
            state_machine_arn=state_machine,
            bundle_bucket="bundles",
            table_name="ledger",
            make_client=lambda service, other: boto3.client(service, region_name=other or region),
        )
        monkeypatch.setattr(cli, "_sandbox_target", lambda start: target)
        yield target


def finished_request(target: Target, request_id: str, outcome: str) -> str:
    """Run request_id for version v1 to its end, as an earlier deploy would; return its ARN."""
    request = {
        "environment": "dev",
        "version": "v1",
        "bundle": BUNDLE_URI,
        "requestId": request_id,
        "trigger": "manual",
        "startedBy": "cli",
    }
    arn = start_deployment(target.sfn, target.state_machine_arn, request)
    target.sfn.stop_execution(executionArn=arn)
    target.dynamodb.put_item(
        TableName=target.table_name,
        Item={
            "pk": {"S": "ENV#dev"},
            "sk": {"S": f"REQUEST#{request_id}"},
            "outcome": {"S": outcome},
            "plan": {"NULL": True},
        },
    )
    return arn


def deploy_arguments(version: str, request_id: str) -> list[str]:
    options = ["--sandbox", "-e", "dev", "-v", version, "-b", BUNDLE_URI]
    return ["deploy", *options, "--request-id", request_id]


def test_rerun_request_reports_recorded_outcome(runner: CliRunner, moto_target: Target) -> None:
    arn = finished_request(moto_target, "r-1", "VersionConflict")

    result = runner.invoke(main, deploy_arguments("v1", "r-1"))

    assert result.exit_code == 20
    assert f"request r-1 already started execution {arn}" in result.output
    assert "outcome      VersionConflict" in result.output
    assert "plan         -" in result.output
    assert "None" not in result.output


def test_rerun_request_for_other_version_exits_2(runner: CliRunner, moto_target: Target) -> None:
    finished_request(moto_target, "r-1", "Deployed")

    result = runner.invoke(main, deploy_arguments("v2", "r-1"))

    assert result.exit_code == 2
    assert "already ran for version 'v1'" in result.output
    assert "pass a new request id" in result.output


def test_ctrl_c_names_the_running_execution(
    runner: CliRunner, moto_target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "wait_for_execution", interrupt)

    result = runner.invoke(main, deploy_arguments("v1", "r-2"))

    arn = execution_arn(moto_target.state_machine_arn, "dev-r-2")
    assert result.exit_code == 130
    assert f"The deployment continues in execution {arn}" in result.output
    assert "control-plane history -e dev --sandbox" in result.output
    assert "Aborted!" not in result.output


class StoppedStepFunctions:
    def start_execution(self, **kwargs: object) -> None:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")


def test_sandbox_stopping_mid_deploy_is_explained(
    runner: CliRunner, moto_target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_endpoint = f"http://127.0.0.1:{probe.getsockname()[1]}"
    stopped = dataclasses.replace(
        moto_target, sfn=StoppedStepFunctions(), sandbox_endpoint=closed_endpoint
    )
    monkeypatch.setattr(cli, "_sandbox_target", lambda start: stopped)

    result = runner.invoke(main, deploy_arguments("v1", "r-3"))

    assert result.exit_code == 1
    assert "the sandbox stopped during the deployment" in result.output
    assert "control-plane sandbox start" in result.output
    assert "Could not connect" not in result.output


def test_bundle_command_is_reproducible(runner: CliRunner, tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[2] / "samples" / "webapp"
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"

    one = runner.invoke(main, ["bundle", str(sample), "-o", str(first)])
    two = runner.invoke(main, ["bundle", str(sample), "-o", str(second)])

    assert one.exit_code == 0, one.output
    assert two.exit_code == 0, two.output
    assert first.read_bytes() == second.read_bytes()
    assert one.output.split("sha256 ")[1] == two.output.split("sha256 ")[1]


def test_show_prints_the_path_and_the_failure(runner: CliRunner, moto_target: Target) -> None:
    arn = finished_request(moto_target, "r-1", "VersionConflict")

    by_name = runner.invoke(main, ["show", "dev-r-1", "--sandbox"])
    as_json = runner.invoke(main, ["show", arn, "--sandbox", "--output", "json"])

    assert by_name.exit_code == 0, by_name.output
    assert f"execution {arn}: ABORTED" in by_name.output
    view = json.loads(as_json.output)
    assert view["status"] == "ABORTED"
    assert view["executionArn"] == arn


def test_show_of_unknown_execution_says_where_to_find_one(
    runner: CliRunner, moto_target: Target
) -> None:
    result = runner.invoke(main, ["show", "dev-r-9", "--sandbox"])

    assert result.exit_code == 1
    assert "no execution" in result.output
    assert "control-plane history" in result.output


def test_status_reports_lease_queue_and_last_deployment(
    runner: CliRunner, moto_target: Target
) -> None:
    finished_request(moto_target, "r-1", "Deployed")
    moto_target.dynamodb.update_item(
        TableName="ledger",
        Key={"pk": {"S": "ENV#dev"}, "sk": {"S": "REQUEST#r-1"}},
        UpdateExpression="SET version = :v, requestId = :r, finishedAt = :t",
        ExpressionAttributeValues={":v": {"S": "v1"}, ":r": {"S": "r-1"}, ":t": {"N": "1"}},
    )
    moto_target.dynamodb.put_item(
        TableName="ledger",
        Item={
            "pk": {"S": "ENV#dev"},
            "sk": {"S": "LOCK"},
            "holder": {"S": "r-2"},
            "fencingToken": {"N": "4"},
            "acquiredAt": {"N": "0"},
            "waiting": {"S": "r-3"},
        },
    )

    text = runner.invoke(main, ["status", "-e", "dev", "--sandbox"])
    as_json = runner.invoke(main, ["status", "-e", "dev", "--sandbox", "--output", "json"])

    assert text.exit_code == 0, text.output
    assert "dev: locked by r-2" in text.output
    assert "queued behind it: r-3" in text.output
    assert "last deployed: v1 by request r-1" in text.output
    view = json.loads(as_json.output)
    assert view["lease"]["fencingToken"] == 4
    assert view["lastDeployed"]["version"] == "v1"
    assert view["ebEnvironments"] == []


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["history"],
        ["lock", "show"],
        ["lock", "release"],
        ["recovery", "status"],
        ["recovery", "reset"],
        ["destroy", "--yes"],
        ["deploy", "-v", "v1"],
    ],
)
def test_unknown_environment_rejected_before_calls(
    runner: CliRunner, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_target(*args: object) -> None:
        raise AssertionError("the command reached for a target")

    monkeypatch.setattr(cli, "_sandbox_target", no_target)

    result = runner.invoke(main, [*command, "-e", "qa", "--sandbox"])

    assert result.exit_code == 2, result.output
    assert "Invalid value for '--environment'" in result.output
    assert "environment 'qa' is not defined (known: dev, prod, staging)" in result.output


def environments_file_with_qa(tmp_path: Path) -> Path:
    """Copy the repository's environments file with dev renamed to qa."""
    document = yaml.safe_load((REPO_ROOT / "environments.yaml").read_text())
    document["environments"]["qa"] = document["environments"].pop("dev")
    path = tmp_path / "other-environments.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("how", ["variable", "option"])
def test_environments_file_from_variable_or_option_is_read(
    runner: CliRunner, moto_target: Target, tmp_path: Path, how: str
) -> None:
    path = environments_file_with_qa(tmp_path)
    arguments = ["history", "-e", "qa", "--sandbox"]
    if how == "option":
        result = runner.invoke(main, ["--environments-file", str(path), *arguments])
    else:
        result = runner.invoke(main, arguments, env={"ENVIRONMENTS_FILE": str(path)})
    dev = runner.invoke(main, ["--environments-file", str(path), "history", "-e", "dev"])

    assert result.exit_code == 0, result.output
    assert "qa: no deployments recorded" in result.output
    assert dev.exit_code == 2
    assert "(known: prod, qa, staging)" in dev.output


def test_missing_environments_file_is_named(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"

    result = runner.invoke(main, ["--environments-file", str(missing), "history", "-e", "dev"])

    assert result.exit_code == 2
    assert f"environments file {missing} not found" in result.output
    assert "--environments-file" in result.output


def test_stopped_execution_without_record_exits_31(runner: CliRunner, moto_target: Target) -> None:
    request = {
        "environment": "dev",
        "version": "v1",
        "bundle": BUNDLE_URI,
        "requestId": "r-5",
        "trigger": "manual",
        "startedBy": "cli",
    }
    arn = start_deployment(moto_target.sfn, moto_target.state_machine_arn, request)
    moto_target.sfn.stop_execution(executionArn=arn)

    text = runner.invoke(main, deploy_arguments("v1", "r-5"))
    as_json = runner.invoke(main, [*deploy_arguments("v1", "r-5"), "--output", "json"])

    assert text.exit_code == 31, text.output
    assert "outcome      ExecutionAborted (ABORTED)" in text.output
    assert "error        ExecutionAborted: the execution was stopped" in text.output
    assert "None" not in text.output
    summary = json.loads(as_json.output[as_json.output.index("{") :])
    assert summary["outcome"] == "ExecutionAborted"
    assert as_json.exit_code == 31


def lock_item(holder: str, arn: str) -> dict[str, object]:
    return {
        "pk": {"S": "ENV#dev"},
        "sk": {"S": "LOCK"},
        "holder": {"S": holder},
        "executionArn": {"S": arn},
        "fencingToken": {"N": "3"},
        "acquiredAt": {"N": "0"},
    }


def test_lock_release_records_the_dead_holder(runner: CliRunner, moto_target: Target) -> None:
    arn = start_deployment(
        moto_target.sfn,
        moto_target.state_machine_arn,
        {"environment": "dev", "version": "v1", "bundle": BUNDLE_URI, "requestId": "r-6"},
    )
    moto_target.sfn.stop_execution(executionArn=arn)
    moto_target.dynamodb.put_item(TableName="ledger", Item=lock_item("r-6", arn))

    result = runner.invoke(main, ["lock", "release", "-e", "dev", "--sandbox"])

    assert result.exit_code == 0, result.output
    assert "released the lock held by request r-6" in result.output
    record = _ledger_record(moto_target, "dev", "r-6")
    assert record["outcome"] == "UnexpectedError"
    assert record["errorName"] == "ExecutionAborted"
    assert "control-plane lock release" in record["cause"]
    assert record["executionArn"] == arn
    assert record["version"] == "v1"
    assert record["bundle"] == BUNDLE_URI
    lock = moto_target.dynamodb.get_item(
        TableName="ledger", Key={"pk": {"S": "ENV#dev"}, "sk": {"S": "LOCK"}}
    )["Item"]
    assert "holder" not in lock
    assert lock["fencingToken"] == {"N": "3"}


def test_lock_release_prints_json(runner: CliRunner, moto_target: Target) -> None:
    arn = start_deployment(
        moto_target.sfn,
        moto_target.state_machine_arn,
        {"environment": "dev", "version": "v1", "bundle": BUNDLE_URI, "requestId": "r-9"},
    )
    moto_target.sfn.stop_execution(executionArn=arn)
    moto_target.dynamodb.put_item(TableName="ledger", Item=lock_item("r-9", arn))

    released = runner.invoke(
        main, ["lock", "release", "-e", "dev", "--sandbox", "--output", "json"]
    )
    again = runner.invoke(main, ["lock", "release", "-e", "dev", "--sandbox", "--output", "json"])

    assert released.exit_code == 0, released.output
    assert "lease freed from a holder" in released.stderr
    assert json.loads(released.stdout) == {
        "environment": "dev",
        "released": "r-9",
        "recorded": True,
    }
    assert json.loads(again.stdout) == {"environment": "dev", "released": None, "recorded": False}


def test_bundle_prints_json(runner: CliRunner, tmp_path: Path) -> None:
    zip_path = tmp_path / "app.zip"

    result = runner.invoke(
        main, ["bundle", str(SAMPLE_APP), "-o", str(zip_path), "--output", "json"]
    )

    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert view["path"] == str(zip_path)
    assert view["bytes"] == zip_path.stat().st_size


def test_lock_release_keeps_a_recorded_outcome(runner: CliRunner, moto_target: Target) -> None:
    arn = finished_request(moto_target, "r-7", "Deployed")
    moto_target.dynamodb.put_item(TableName="ledger", Item=lock_item("r-7", arn))

    result = runner.invoke(main, ["lock", "release", "-e", "dev", "--sandbox"])

    assert result.exit_code == 0, result.output
    assert _ledger_record(moto_target, "dev", "r-7")["outcome"] == "Deployed"


def test_lock_release_refuses_a_running_holder(runner: CliRunner, moto_target: Target) -> None:
    arn = start_deployment(
        moto_target.sfn,
        moto_target.state_machine_arn,
        {"environment": "dev", "version": "v1", "bundle": BUNDLE_URI, "requestId": "r-8"},
    )
    moto_target.dynamodb.put_item(TableName="ledger", Item=lock_item("r-8", arn))

    result = runner.invoke(main, ["lock", "release", "-e", "dev", "--sandbox"])

    assert result.exit_code == 1
    assert "which is still running" in result.output
    assert _ledger_record(moto_target, "dev", "r-8") == {}


@pytest.mark.parametrize(
    "command",
    [["deploy", "-e", "dev", "-v", "v1"], ["bundle", str(SAMPLE_APP), "-o", "/tmp/app.zip"]],
)
def test_ctrl_c_while_bundling_exits_130(
    runner: CliRunner, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: object) -> bytes:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_bundle", interrupt)

    result = runner.invoke(main, command)

    assert result.exit_code == 130
    assert "Interrupted." in result.output
    assert "Aborted!" not in result.output


@pytest.mark.parametrize("command", [["lock", "show"], ["history"], ["status"]])
def test_silent_sandbox_fails_fast_with_exit_3(
    runner: CliRunner, silent_sandbox: dict[str, object], command: list[str]
) -> None:
    result = runner.invoke(main, [*command, "-e", "dev", "--sandbox"])

    assert result.exit_code == 3, result.output
    assert f"sandbox (pid {silent_sandbox['pid']}) is not responding" in result.output
    assert "Traceback" not in result.output


def test_aws_region_variable_picks_the_region(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(boto3.session, "Session", OfflineSession)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)

    result = runner.invoke(main, ["history", "-e", "dev"], env={"AWS_REGION": "eu-west-9"})

    assert result.exit_code == 1
    assert "'eu-west-9'" in result.output
    assert "no AWS region set" not in result.output


def test_sandbox_status_json_when_stopped(runner: CliRunner) -> None:
    result = runner.invoke(main, ["sandbox", "status", "--output", "json"])

    assert result.exit_code == 3
    assert json.loads(result.output) == {"running": False}


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("-v", "bad/label", "is not a version label"),
        ("-v", "", "is not a version label"),
        ("-v", "v" * 101, "is not a version label"),
        ("--request-id", "AKIAIOSFODNN7EXAMPLE", "looks like an AWS access key id"),
    ],
)
def test_deploy_checks_labels_before_any_call(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    value: str,
    message: str,
) -> None:
    def no_target(*args: object) -> None:
        raise AssertionError("the command reached for a target")

    monkeypatch.setattr(cli, "_sandbox_target", no_target)
    arguments = ["deploy", "--sandbox", "-e", "dev", "-v", "v1", option, value]

    result = runner.invoke(main, arguments)

    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "AKIAIOSFODNN7EXAMPLE" not in result.output


def test_rerun_request_with_other_bundle_exits_2(runner: CliRunner, moto_target: Target) -> None:
    finished_request(moto_target, "r-1", "Deployed")
    arguments = ["deploy", "--sandbox", "-e", "dev", "-v", "v1", "--request-id", "r-1"]

    result = runner.invoke(main, [*arguments, "-b", "s3://bundles/bundles/dev/other.zip"])

    assert result.exit_code == 2
    assert "already deployed version v1 from bundle" in result.output
    assert "pass a new request id" in result.output


def test_sandbox_deploy_of_environment_it_lacks_exits_2(
    runner: CliRunner, moto_target: Target, tmp_path: Path
) -> None:
    path = environments_file_with_qa(tmp_path)

    result = runner.invoke(
        main, ["--environments-file", str(path), "deploy", "--sandbox", "-e", "qa", "-v", "v1"]
    )

    assert result.exit_code == 2, result.output
    assert "which the sandbox's stack and tasks are built from" in result.output


def test_superseded_deploy_exits_0(
    runner: CliRunner, moto_target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    def superseded(target: Target, arn: str, request: dict, output: str) -> dict:
        return {
            "environment": "dev",
            "version": request["version"],
            "requestId": request["requestId"],
            "outcome": "Superseded",
            "status": "SUCCEEDED",
            "plan": None,
            "url": None,
            "servingVersion": None,
            "states": 4,
            "transitions": 5,
            "path": [],
            "virtualSeconds": None,
            "wallSeconds": None,
            "executionArn": arn,
        }

    monkeypatch.setattr(cli, "_follow_execution", superseded)

    result = runner.invoke(main, deploy_arguments("v2", "r-4"))

    assert result.exit_code == 0, result.output
    assert "outcome      Superseded (SUCCEEDED)" in result.output
    assert "reports version" not in result.output


def test_show_accepts_a_request_id(runner: CliRunner, moto_target: Target) -> None:
    arn = finished_request(moto_target, "r-11", "Deployed")

    result = runner.invoke(main, ["show", "r-11", "--sandbox", "--output", "json"])
    empty = runner.invoke(main, ["show", "", "--sandbox"])

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["executionArn"] == arn
    assert empty.exit_code == 2


@pytest.mark.parametrize("inside", ["app.zip", "application.py"])
def test_bundle_inside_app_folder_exits_2(runner: CliRunner, tmp_path: Path, inside: str) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "application.py").write_text("application = None\n")

    result = runner.invoke(main, ["bundle", str(app), "-o", str(app / inside)])

    assert result.exit_code == 2
    assert "is inside the app folder" in result.output
    assert (app / "application.py").read_text() == "application = None\n"


def test_sandbox_start_of_silent_sandbox_exits_3(
    runner: CliRunner, silent_sandbox: dict[str, object]
) -> None:
    result = runner.invoke(main, ["sandbox", "start"])

    assert result.exit_code == 3, result.output
    assert f"sandbox (pid {silent_sandbox['pid']}) is not responding" in result.output
    assert "sandbox running" not in result.output
