"""Pins the AWS behaviour the sandbox patches into moto's Step Functions interpreter.

- Retry intervals and Wait states cost virtual time, not wall time.
- Full jitter draws from a seeded generator, and `$$.State.EnteredTime` is virtual time that
  stays the same across the Retry attempts of one state entry.
- codebuild:startBuild.sync takes PascalCase parameters, returns {"Build": {...}} with
  PascalCase keys, and a failed build fails the task with States.TaskFailed whose cause is
  the build as JSON.
"""

from __future__ import annotations

import json
import threading
import time
import types
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from control_plane.executions import wait_for_execution
from control_plane.sandbox.moto_patches import jitter_fraction, wait_for_environment
from control_plane.sandbox.sandbox import Sandbox, SandboxOptions


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(SandboxOptions(work_dir=tmp_path_factory.mktemp("sandbox"))) as running:
        yield running


def run_definition(sandbox: Sandbox, name: str, definition: dict) -> tuple[dict, float]:
    sfn = sandbox.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=sandbox.resources.state_machine_role_arn,
    )["stateMachineArn"]
    started = time.monotonic()
    execution = sfn.start_execution(stateMachineArn=arn, name=f"{name}-1", input="{}")
    report = wait_for_execution(sfn, execution["executionArn"], timeout_seconds=60)
    description = sfn.describe_execution(executionArn=execution["executionArn"])
    return {"report": report, "description": description}, time.monotonic() - started


def test_wait_state_costs_virtual_time(sandbox: Sandbox) -> None:
    before = sandbox.clock.now()
    definition = {
        "StartAt": "Pause",
        "States": {
            "Pause": {"Type": "Wait", "Seconds": 300, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }

    result, wall = run_definition(sandbox, "wait-test", definition)

    assert result["report"].status == "SUCCEEDED"
    assert sandbox.clock.now() - before == pytest.approx(300)
    assert wall < 30


def test_retry_interval_costs_virtual_time(sandbox: Sandbox) -> None:
    before = sandbox.clock.now()
    definition = {
        "StartAt": "Broken",
        "States": {
            "Broken": {
                "Type": "Task",
                "Resource": "arn:aws:states:::codebuild:startBuild.sync",
                "Parameters": {"ProjectName": "no-such-project"},
                "Retry": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "IntervalSeconds": 10,
                        "MaxAttempts": 3,
                        "BackoffRate": 2,
                    }
                ],
                "End": True,
            }
        },
    }

    result, wall = run_definition(sandbox, "retry-test", definition)

    assert result["report"].status == "FAILED"
    # 10 + 20 + 40 seconds of retry intervals, with no build started.
    assert sandbox.clock.now() - before == pytest.approx(70)
    assert wall < 30


def write_buildspec(root: Path, commands: list[str]) -> None:
    (root / "infra").mkdir(parents=True, exist_ok=True)
    spec = {
        "version": 0.2,
        "env": {"exported-variables": ["GREETING"]},
        "phases": {"build": {"commands": commands}},
    }
    (root / "infra" / "buildspec.yml").write_text(json.dumps(spec))


@pytest.mark.parametrize(("exit_code", "status"), [(0, "SUCCEEDED"), (3, "FAILED")])
def test_codebuild_sync_follows_aws(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int, status: str
) -> None:
    last_command = "true" if exit_code == 0 else f"exit {exit_code}"
    write_buildspec(tmp_path, ['export GREETING="hello $WHO"', last_command])
    monkeypatch.setattr(sandbox.codebuild, "_repo_root", tmp_path)
    definition = {
        "StartAt": "Build",
        "States": {
            "Build": {
                "Type": "Task",
                "Resource": "arn:aws:states:::codebuild:startBuild.sync",
                "Parameters": {
                    "ProjectName": sandbox.resources.codebuild_project,
                    "EnvironmentVariablesOverride": [
                        {"Name": "WHO", "Type": "PLAINTEXT", "Value": "world"}
                    ],
                },
                "End": True,
            }
        },
    }

    result, _ = run_definition(sandbox, f"build-test-{exit_code}", definition)
    description = result["description"]

    if status == "SUCCEEDED":
        output = json.loads(description["output"])
        assert output["Build"]["BuildStatus"] == "SUCCEEDED"
        assert output["Build"]["ExportedEnvironmentVariables"] == [
            {"Name": "GREETING", "Value": "hello world"}
        ]
    else:
        assert description["status"] == "FAILED"
        assert description["error"] == "States.TaskFailed"
        assert json.loads(description["cause"])["Build"]["BuildStatus"] == "FAILED"


def test_full_jitter_is_seeded_and_entered_time_is_kept(sandbox: Sandbox) -> None:
    """Jittered retry delays come from the seeded generator, and every attempt of one state
    entry sees the same virtual `$$.State.EnteredTime`."""
    interval, backoff, cap, retries = 10, 2, 15, 3
    definition = {
        "StartAt": "Broken",
        "States": {
            "Broken": {
                "Type": "Task",
                "Resource": "arn:aws:states:::codebuild:startBuild.sync",
                "Parameters": {
                    "ProjectName": "no-such-project",
                    "SourceVersion.$": "$$.State.EnteredTime",
                },
                "Retry": [
                    {
                        "ErrorEquals": ["States.ALL"],
                        "IntervalSeconds": interval,
                        "MaxAttempts": retries,
                        "BackoffRate": backoff,
                        "MaxDelaySeconds": cap,
                        "JitterStrategy": "FULL",
                    }
                ],
                "End": True,
            }
        },
    }
    before = sandbox.clock.now()

    result, _ = run_definition(sandbox, "jitter-test", definition)

    arn = result["description"]["executionArn"]
    expected_delays = [
        min(interval * backoff**attempt, cap) * jitter_fraction(arn, "Broken", attempt)
        for attempt in range(retries)
    ]
    assert result["report"].status == "FAILED"
    assert sandbox.clock.now() - before == pytest.approx(sum(expected_delays))
    # Full jitter: each delay lies between 0 and its capped interval, here 10, 15 and 15 s.
    assert all(0 <= delay <= cap for delay in expected_delays)
    assert len(set(expected_delays)) == retries
    history = sandbox.client("stepfunctions").get_execution_history(executionArn=arn)["events"]
    scheduled = [
        json.loads(event["taskScheduledEventDetails"]["parameters"])
        for event in history
        if event["type"] == "TaskScheduled"
    ]
    assert len(scheduled) == retries + 1
    entered = {parameters["SourceVersion"] for parameters in scheduled}
    assert len(entered) == 1
    assert datetime.fromisoformat(entered.pop()).timestamp() == pytest.approx(before)


def test_jitter_fraction_is_the_same_for_the_same_attempt() -> None:
    first = jitter_fraction("arn:execution:a", "WaitForDeployment", 3)

    assert jitter_fraction("arn:execution:a", "WaitForDeployment", 3) == first
    assert jitter_fraction("arn:execution:a", "WaitForDeployment", 4) != first
    assert jitter_fraction("arn:execution:b", "WaitForDeployment", 3) != first
    assert 0 <= first < 1


def test_stop_waits_for_execution_environment() -> None:
    worker = types.SimpleNamespace(env=None)

    def set_up_later() -> None:
        time.sleep(0.05)
        worker.env = "environment"

    thread = threading.Thread(target=set_up_later)
    thread.start()
    wait_for_environment(worker, timeout_seconds=5)
    thread.join()

    assert worker.env == "environment"
