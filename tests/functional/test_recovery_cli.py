"""`control-plane destroy` and `control-plane recovery` against moto's DynamoDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import click
import pytest
from click.testing import CliRunner
from moto import mock_aws

from control_plane.cli import CliError, Target, _target_options
from control_plane.recovery_cli import add_recovery_commands
from lambdas.common import aws, recovery
from tests.ledger_table import create_ledger_table

TABLE = "deployments"


class FakeBeanstalk:
    """Records TerminateEnvironment calls (moto does not implement it)."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.terminated: list[str] = []

    def describe_environments(self, **kwargs: Any) -> dict[str, Any]:
        return {
            "Environments": [
                {"EnvironmentName": name, "Status": status}
                for name, status in self.statuses.items()
                if name in kwargs.get("EnvironmentNames", [name])
            ]
        }

    def terminate_environment(self, EnvironmentName: str) -> None:
        self.terminated.append(EnvironmentName)


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        aws.client.cache_clear()
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(client, TABLE)
        yield client
        aws.client.cache_clear()


def cli_for(dynamodb: Any, eb: FakeBeanstalk, sfn: Any = None) -> click.Group:
    target = Target(
        sfn=sfn,
        s3=None,
        dynamodb=dynamodb,
        elasticbeanstalk=eb,
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:deployments",
        bundle_bucket="bundles",
        table_name=TABLE,
        sandbox_endpoint="http://127.0.0.1:1",
    )
    target.virtual_seconds = lambda: 120.0  # type: ignore[method-assign]

    @click.group()
    def main() -> None:
        pass

    add_recovery_commands(main, lambda sandbox, region: target, _target_options, CliError)
    return main


def test_destroy_records_intent_then_terminates(dynamodb: Any) -> None:
    eb = FakeBeanstalk({"webapp-dev": "Ready"})

    result = CliRunner().invoke(cli_for(dynamodb, eb), ["destroy", "-e", "dev", "--yes"])

    assert result.exit_code == 0, result.output
    assert eb.terminated == ["webapp-dev"]
    intent = recovery.read_destroy_intent("dev", TABLE, dynamodb)
    assert intent is not None
    assert intent["destroyedAt"] > 0
    assert "recovery will skip it" in result.output
    assert "pulumi destroy --stack dev" in result.output


def test_destroy_refuses_while_a_deployment_holds_the_lock(dynamodb: Any) -> None:
    dynamodb.put_item(
        TableName=TABLE,
        Item={"pk": {"S": "ENV#dev"}, "sk": {"S": "LOCK"}, "holder": {"S": "r-7"}},
    )
    eb = FakeBeanstalk({"webapp-dev": "Ready"})

    result = CliRunner().invoke(cli_for(dynamodb, eb), ["destroy", "-e", "dev", "--yes"])

    assert result.exit_code == 1
    assert "locked by request r-7" in result.output
    assert eb.terminated == []
    assert recovery.read_destroy_intent("dev", TABLE, dynamodb) is None


def test_destroy_of_unknown_environment_names_the_known_ones(dynamodb: Any) -> None:
    result = CliRunner().invoke(
        cli_for(dynamodb, FakeBeanstalk({})), ["destroy", "-e", "qa", "--yes"]
    )

    assert result.exit_code == 2
    assert "environment 'qa' is not defined (known: dev, prod, staging)" in result.output
    assert "Invalid value for '--environment'" in result.output


def put_ledger(dynamodb: Any, request_id: str, outcome: str, finished_at: int) -> None:
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "ENV#dev"},
            "sk": {"S": f"REQUEST#{request_id}"},
            "outcome": {"S": outcome},
            "bundle": {"S": "s3://bundles/dev/app.zip"},
            "version": {"S": "v1"},
            "finishedAt": {"N": str(finished_at)},
        },
    )


def test_recovery_status_drops_destroy_intent_after_later_deployment(dynamodb: Any) -> None:
    recovery.record_destroy_intent("dev", "alice", 1_000, TABLE, dynamodb)
    cli = cli_for(dynamodb, FakeBeanstalk({}))
    put_ledger(dynamodb, "before", "Deployed", 900)

    while_destroyed = CliRunner().invoke(cli, ["recovery", "status", "-e", "dev"])
    put_ledger(dynamodb, "failed-after", "DeploymentFailed", 1_100)
    after_failure = CliRunner().invoke(cli, ["recovery", "status", "-e", "dev"])
    put_ledger(dynamodb, "after", "Deployed", 1_200)
    after_deployment = CliRunner().invoke(cli, ["recovery", "status", "-e", "dev"])

    assert "destroyed on purpose by alice" in while_destroyed.output
    assert "destroyed on purpose by alice" in after_failure.output
    assert after_deployment.exit_code == 0
    assert "destroyed on purpose" not in after_deployment.output


def test_recovery_reset_closes_an_open_breaker(dynamodb: Any) -> None:
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "ENV#dev"},
            "sk": {"S": "BREAKER"},
            "openedAt": {"N": "1767225600"},
            "reason": {"S": "3 recoveries within the last 3600 s"},
        },
    )
    cli = cli_for(dynamodb, FakeBeanstalk({}))

    status = CliRunner().invoke(cli, ["recovery", "status", "-e", "dev"])
    reset = CliRunner().invoke(cli, ["recovery", "reset", "-e", "dev"])
    again = CliRunner().invoke(cli, ["recovery", "reset", "-e", "dev"])

    assert "circuit breaker OPEN since 2026-01-01 00:00:00 UTC" in status.output
    assert "3 recoveries within the last 3600 s" in status.output
    assert reset.exit_code == 0
    assert "circuit breaker closed; automatic recovery resumes" in reset.output
    assert recovery.read_breaker("dev", TABLE, dynamodb) is None
    assert "was not open" in again.output


def test_recovery_commands_print_json(dynamodb: Any) -> None:
    recovery.record_destroy_intent("dev", "alice", 1_000, TABLE, dynamodb)
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "ENV#dev"},
            "sk": {"S": "BREAKER"},
            "openedAt": {"N": "1767225600"},
            "reason": {"S": "3 recoveries within the last 3600 s"},
        },
    )
    cli = cli_for(dynamodb, FakeBeanstalk({}))

    status = CliRunner().invoke(cli, ["recovery", "status", "-e", "dev", "--output", "json"])
    reset = CliRunner().invoke(cli, ["recovery", "reset", "-e", "dev", "--output", "json"])

    assert status.exit_code == 0, status.output
    view = json.loads(status.output)
    assert view["breaker"]["reason"] == "3 recoveries within the last 3600 s"
    assert view["destroyIntent"]["destroyedBy"] == "alice"
    assert view["maintenanceParameter"] == "/control-plane/dev/maintenance"
    assert json.loads(reset.output) == {"environment": "dev", "closed": True}


def test_destroy_prints_json(dynamodb: Any) -> None:
    eb = FakeBeanstalk({"webapp-dev": "Ready"})

    result = CliRunner().invoke(
        cli_for(dynamodb, eb), ["destroy", "-e", "dev", "--yes", "--output", "json"]
    )

    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert view["terminating"] == ["webapp-dev"]
    assert view["pulumiStack"] == "dev"
    assert eb.terminated == ["webapp-dev"]


def test_destroy_with_ended_holder_suggests_release(dynamodb: Any) -> None:
    class EndedExecutions:
        def describe_execution(self, executionArn: str) -> dict[str, str]:
            return {"status": "ABORTED"}

    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "ENV#dev"},
            "sk": {"S": "LOCK"},
            "holder": {"S": "r-7"},
            "executionArn": {"S": "arn:aws:states:us-east-1:123456789012:execution:d:dev-r-7"},
        },
    )
    cli = cli_for(dynamodb, FakeBeanstalk({"webapp-dev": "Ready"}), sfn=EndedExecutions())

    result = CliRunner().invoke(cli, ["destroy", "-e", "dev", "--yes"])

    assert result.exit_code == 1
    assert "whose execution ended ABORTED" in result.output
    assert "control-plane lock release --environment dev" in result.output
