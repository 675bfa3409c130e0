"""Pins how the sandbox's throttles, crashes and timeouts look to the caller, as on AWS.

- A throttled call gets the service's own throttling error and HTTP status, and only the task
  handlers' calls and Step Functions' Lambda invocations are throttled.
- Step Functions reports a throttled invocation as Lambda.TooManyRequestsException, a timed-out
  function as Sandbox.Timedout and a crashed runtime as Runtime.ExitError, each with the cause
  AWS gives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from control_plane.executions import ExecutionReport, wait_for_execution
from control_plane.sandbox.faults import TaskFault
from control_plane.sandbox.sandbox import Sandbox, SandboxOptions
from lambdas.common import aws


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox(SandboxOptions(work_dir=tmp_path_factory.mktemp("sandbox"))) as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults_left(sandbox: Sandbox) -> Iterator[None]:
    yield
    sandbox.faults.clear()


def handler_client(sandbox: Sandbox, service: str) -> Any:
    """A client that calls as the task handlers do, but makes a single attempt."""
    return boto3.client(
        service,
        region_name=sandbox.options.region,
        endpoint_url=sandbox.endpoint_url,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
        config=Config(
            user_agent_extra=aws.USER_AGENT, retries={"mode": "standard", "total_max_attempts": 1}
        ),
    )


def run_task(sandbox: Sandbox, state_name: str) -> tuple[ExecutionReport, dict[str, Any]]:
    """Run a one-state machine whose task invokes the ValidateRequest function."""
    function = next(name for name in sandbox.resources.functions if name.startswith("Validate"))
    arn = f"arn:aws:lambda:{sandbox.options.region}:{sandbox.resources.account_id}:function:"
    definition = {
        "StartAt": state_name,
        "States": {
            state_name: {
                "Type": "Task",
                "Resource": arn + function,
                "Parameters": {"input.$": "$", "executionArn.$": "$$.Execution.Id"},
                "End": True,
            }
        },
    }
    sfn = sandbox.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"fault-{state_name}",
        definition=json.dumps(definition),
        roleArn=sandbox.resources.state_machine_role_arn,
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name=f"{state_name}-1", input="{}")
    report = wait_for_execution(sfn, execution["executionArn"], timeout_seconds=60)
    return report, sfn.describe_execution(executionArn=execution["executionArn"])


@pytest.mark.parametrize(
    ("service", "operation", "code", "status"),
    [
        ("elasticbeanstalk", "DescribeEnvironments", "Throttling", 400),
        ("dynamodb", "GetItem", "ProvisionedThroughputExceededException", 400),
        ("s3", "GetObject", "SlowDown", 503),
        ("ssm", "DescribeParameters", "ThrottlingException", 400),
    ],
)
def test_throttled_call_gets_the_services_error(
    sandbox: Sandbox, service: str, operation: str, code: str, status: int
) -> None:
    calls = {
        "DescribeEnvironments": lambda client: client.describe_environments(),
        "GetItem": lambda client: client.get_item(
            TableName=sandbox.resources.table_name,
            Key={"pk": {"S": "ENV#dev"}, "sk": {"S": "LOCK"}},
        ),
        "GetObject": lambda client: client.get_object(
            Bucket=sandbox.resources.state_bucket, Key="any"
        ),
        "DescribeParameters": lambda client: client.describe_parameters(),
    }
    sandbox.faults.add_throttle(service, operation, 1)

    with pytest.raises(ClientError) as raised:
        calls[operation](handler_client(sandbox, service))

    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert sandbox.faults.unused() == []


def test_task_handler_client_rides_out_throttles(sandbox: Sandbox) -> None:
    sandbox.faults.add_throttle("elasticbeanstalk", "DescribeEnvironments", 2)

    response = aws.client("elasticbeanstalk").describe_environments()

    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert sandbox.faults.unused() == []


def test_sandbox_own_calls_are_not_throttled(sandbox: Sandbox) -> None:
    sandbox.faults.add_throttle("elasticbeanstalk", "DescribeEnvironments", 1)

    sandbox.client("elasticbeanstalk").describe_environments()

    assert sandbox.faults.unused() == [
        "throttle elasticbeanstalk DescribeEnvironments: 1 of 1 calls never came"
    ]


def test_throttled_invocation_fails_as_lambda_too_many_requests(sandbox: Sandbox) -> None:
    sandbox.faults.add_throttle("lambda", "Invoke", 1)

    report, description = run_task(sandbox, "Throttled")

    assert report.status == "FAILED"
    assert description["error"] == "Lambda.TooManyRequestsException"
    assert re.fullmatch(
        r"Rate Exceeded\. \(Service: AWSLambda; Status Code: 429; Error Code: "
        r"TooManyRequestsException; Request ID: [-0-9a-f]+; Proxy: null\)",
        description["cause"],
    )


def test_timed_out_function_fails_as_sandbox_timedout(sandbox: Sandbox) -> None:
    sandbox.faults.add_task_fault(TaskFault.TIMEOUT, "Slow", 1)
    before = sandbox.clock.now()

    report, description = run_task(sandbox, "Slow")

    cause = json.loads(description["cause"])
    assert report.status == "FAILED"
    assert description["error"] == "Sandbox.Timedout"
    assert cause["errorType"] == "Sandbox.Timedout"
    assert re.fullmatch(
        r"RequestId: [-0-9a-f]+ Error: Task timed out after 60\.00 seconds", cause["errorMessage"]
    )
    # The invocation lasted the function's whole timeout, in virtual time.
    assert sandbox.clock.now() - before >= 60


def test_crashed_runtime_fails_as_runtime_exit_error(sandbox: Sandbox) -> None:
    sandbox.faults.add_task_fault(TaskFault.CRASH, "Crashing", 1)

    report, description = run_task(sandbox, "Crashing")

    cause = json.loads(description["cause"])
    assert report.status == "FAILED"
    assert description["error"] == "Runtime.ExitError"
    assert cause["errorMessage"].endswith("Error: Runtime exited with error: exit status 1")
    assert sandbox.faults.unused() == []


def test_task_fault_spares_other_states(sandbox: Sandbox) -> None:
    sandbox.faults.add_task_fault(TaskFault.CRASH, "SomeOtherState", 1)

    _, description = run_task(sandbox, "Unaffected")

    # ValidateRequest rejects the empty input: the function ran and raised its own error.
    assert description["error"] == "InvalidRequest"
    assert sandbox.faults.unused() == ["task_crash SomeOtherState: 1 of 1 invocations never came"]
