"""Pins the AWS behaviour of `.waitForTaskToken` tasks that the sandbox patches into moto.

- The wait costs virtual time: TimeoutSeconds and HeartbeatSeconds pass on the virtual clock,
  and both fail the task with States.Timeout (moto reports a missed heartbeat so too).
- SendTaskHeartbeat starts a new heartbeat period; SendTaskSuccess ends the wait at once.
- SendTaskFailure fails the task with the error and the cause sent.
- Once the task has ended, completing its token again fails with TaskTimedOut.
- StopExecution during the wait ends the execution ABORTED.

The tokens travel through SQS (`sqs:sendMessage.waitForTaskToken`), the test's stand-in for a
worker. The test thread is an actor of the clock, so time moves only while it sleeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from control_plane.executions import build_report
from control_plane.sandbox.sandbox import Sandbox, SandboxOptions

SUCCEED = {"Type": "Succeed"}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(SandboxOptions(work_dir=tmp_path_factory.mktemp("token-wait"))) as running:
        yield running


@pytest.fixture
def actor(sandbox: Sandbox) -> Iterator[None]:
    sandbox.clock.add_actor()
    yield
    sandbox.clock.remove_actor()


def start(sandbox: Sandbox, name: str, timeouts: dict[str, int], then: dict[str, Any]) -> str:
    """Start a machine whose first task waits for a token sent to a new queue."""
    sqs = sandbox.client("sqs")
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    definition = {
        "StartAt": "Await",
        "States": {
            "Await": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                **timeouts,
                "Next": "Then",
            },
            "Then": then,
        },
    }
    sfn = sandbox.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=sandbox.resources.state_machine_role_arn,
    )["stateMachineArn"]
    return sfn.start_execution(stateMachineArn=machine, name=f"{name}-1", input="{}")[
        "executionArn"
    ]


def receive_token(sandbox: Sandbox, name: str) -> str:
    sqs = sandbox.client("sqs")
    queue = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue).get("Messages", [])
        if messages:
            return json.loads(messages[0]["Body"])["token"]
        time.sleep(0.05)
    raise AssertionError(f"no task token arrived on queue {name}")


def wait_until_ended(sandbox: Sandbox, arn: str) -> dict[str, Any]:
    """Let time pass (the test is an actor) until the execution ends; return its description."""
    sfn = sandbox.client("stepfunctions")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        description = sfn.describe_execution(executionArn=arn)
        if description["status"] != "RUNNING":
            return description
        sandbox.clock.sleep(1)
    raise AssertionError(f"execution {arn} still running")


def test_missed_heartbeat_times_out_in_virtual_time(sandbox: Sandbox, actor: None) -> None:
    started = sandbox.clock.now()
    wall = time.monotonic()
    arn = start(
        sandbox,
        "heartbeat-missed",
        {"TimeoutSeconds": 900, "HeartbeatSeconds": 600},
        {"Type": "Succeed"},
    )
    receive_token(sandbox, "heartbeat-missed")

    description = wait_until_ended(sandbox, arn)

    assert description["status"] == "FAILED"
    assert description["error"] == "States.Timeout"
    assert sandbox.clock.now() - started == pytest.approx(600, abs=1)
    assert time.monotonic() - wall < 30


def test_timeout_passes_in_virtual_time(sandbox: Sandbox, actor: None) -> None:
    started = sandbox.clock.now()
    arn = start(sandbox, "timeout", {"TimeoutSeconds": 300}, {"Type": "Succeed"})
    receive_token(sandbox, "timeout")

    description = wait_until_ended(sandbox, arn)

    assert description["error"] == "States.Timeout"
    assert sandbox.clock.now() - started == pytest.approx(300, abs=1)


def test_heartbeat_extends_the_wait_and_success_ends_it(sandbox: Sandbox, actor: None) -> None:
    started = sandbox.clock.now()
    arn = start(
        sandbox,
        "heartbeat-kept",
        {"TimeoutSeconds": 1000, "HeartbeatSeconds": 100},
        {"Type": "Succeed"},
    )
    token = receive_token(sandbox, "heartbeat-kept")
    sfn = sandbox.client("stepfunctions")

    sandbox.clock.sleep(60)
    sfn.send_task_heartbeat(taskToken=token)
    sandbox.clock.sleep(60)  # past the first heartbeat period, within the second
    sfn.send_task_success(taskToken=token, output=json.dumps({"ready": True}))
    description = wait_until_ended(sandbox, arn)

    assert description["status"] == "SUCCEEDED"
    assert json.loads(description["output"]) == {"ready": True}
    # Ended by the token, within the wait of the test's next one-second sleep.
    assert sandbox.clock.now() - started == pytest.approx(120, abs=1)


def test_failure_keeps_its_cause(sandbox: Sandbox, actor: None) -> None:
    arn = start(sandbox, "failure-cause", {"TimeoutSeconds": 300}, {"Type": "Succeed"})
    token = receive_token(sandbox, "failure-cause")

    sandbox.client("stepfunctions").send_task_failure(
        taskToken=token, error="DeploymentFailed", cause="health is Red (Degraded)"
    )
    description = wait_until_ended(sandbox, arn)

    assert description["error"] == "DeploymentFailed"
    assert description["cause"] == "health is Red (Degraded)"


def test_completed_token_cannot_complete_again(sandbox: Sandbox, actor: None) -> None:
    arn = start(
        sandbox,
        "completed-twice",
        {"TimeoutSeconds": 300},
        {"Type": "Wait", "Seconds": 30, "End": True},
    )
    token = receive_token(sandbox, "completed-twice")
    sfn = sandbox.client("stepfunctions")

    sfn.send_task_success(taskToken=token, output="{}")
    deadline = time.monotonic() + 30
    while "Then" not in build_report(sfn, arn).path and time.monotonic() < deadline:
        time.sleep(0.05)  # wall time: the execution moves on while the clock stays still
    with pytest.raises(ClientError) as raised:
        sfn.send_task_success(taskToken=token, output="{}")
    description = wait_until_ended(sandbox, arn)

    assert raised.value.response["Error"]["Code"] == "TaskTimedOut"
    assert description["status"] == "SUCCEEDED"


def test_stopped_wait_ends_aborted(sandbox: Sandbox, actor: None) -> None:
    arn = start(sandbox, "stopped", {"TimeoutSeconds": 900, "HeartbeatSeconds": 600}, SUCCEED)
    receive_token(sandbox, "stopped")

    sandbox.client("stepfunctions").stop_execution(executionArn=arn, error="Stopped", cause="test")
    description = wait_until_ended(sandbox, arn)

    assert description["status"] == "ABORTED"
