"""StartRecovery, SweepEnvironments and PrepareRecovery against moto.

The events are EventBridge's EB status-change events in AWS's shape (see
tests/fixtures/eb-environment-terminated.json). Executions are started on moto's Step
Functions, which records them without running them.
"""

from __future__ import annotations

import copy
import datetime as real_datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from moto import mock_aws

from lambdas import prepare_recovery, start_recovery, sweep_environments
from lambdas.common import aws, clock, recovery
from lambdas.common.errors import RecoveryCancelled
from lambdas.common.settings import current_settings
from lambdas.common.store import ledger_records, put_ledger_record
from tests.ledger_table import create_ledger_table

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((REPO_ROOT / "tests/fixtures/eb-environment-terminated.json").read_text())
TABLE = "deployments"
BUNDLE = "s3://bundles/bundles/dev/0123abcd.zip"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class Context:
    """The Lambda context fields that Powertools reads, for a function with `timeout` seconds."""

    function_name = "StartRecoveryFunction"
    aws_request_id = "req-1"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:StartRecovery"

    def __init__(self, timeout_seconds: int = recovery.START_RECOVERY_TIMEOUT_SECONDS) -> None:
        self.timeout_seconds = timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


class InvocationKilled(BaseException):
    """Stands for the Lambda runtime ending an invocation at its timeout.

    A BaseException, like the runtime's own stop, escapes Powertools' `except Exception`, so
    the idempotency record stays "in progress" as it does after a real timeout.
    """


@pytest.fixture
def aws_account(
    monkeypatch: pytest.MonkeyPatch, environments_file: Path
) -> Iterator[dict[str, Any]]:
    with mock_aws():
        aws.client.cache_clear()
        region = "us-east-1"
        create_ledger_table(boto3.client("dynamodb", region_name=region), TABLE)
        sns = boto3.client("sns", region_name=region)
        topic = sns.create_topic(Name="deployment-events")["TopicArn"]
        sqs = boto3.client("sqs", region_name=region)
        queue = sqs.create_queue(QueueName="notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        machine = boto3.client("stepfunctions", region_name=region).create_state_machine(
            name="deployments",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        monkeypatch.setenv("TABLE_NAME", TABLE)
        monkeypatch.setenv("TOPIC_ARN", topic)
        monkeypatch.setenv("STATE_MACHINE_ARN", machine)
        clock.install(lambda: NOW)
        put_ledger_record("dev", "r-1", deployed("r-1", "v1", finished_at=NOW - 600))
        yield {"queue": queue, "state_machine": machine}
        clock.install(None)
        aws.client.cache_clear()


def deployed(request_id: str, version: str, *, finished_at: float) -> dict[str, Any]:
    return {
        "environment": "dev",
        "requestId": request_id,
        "version": version,
        "bundle": BUNDLE.replace("0123abcd", version),
        "trigger": "manual",
        "outcome": "Deployed",
        "finishedAt": int(finished_at),
    }


def termination_event(event_id: str = EVENT["id"], **detail: Any) -> dict[str, Any]:
    event = copy.deepcopy(EVENT)
    event["id"] = event_id
    event["detail"].update(detail)
    return event


def executions(account: dict[str, Any]) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    listed = sfn.list_executions(stateMachineArn=account["state_machine"])["executions"]
    return [sfn.describe_execution(executionArn=item["executionArn"]) for item in listed]


def notifications(account: dict[str, Any]) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    messages = sqs.receive_message(QueueUrl=account["queue"], MaxNumberOfMessages=10)
    return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def launch_live_environment() -> None:
    eb = boto3.client("elasticbeanstalk", region_name="us-east-1")
    eb.create_application(ApplicationName="webapp-dev")
    eb.create_environment(ApplicationName="webapp-dev", EnvironmentName="webapp-dev")


# The Lambda's filtering


def test_termination_event_starts_recovery_of_last_deployed_version(
    aws_account: dict[str, Any],
) -> None:
    put_ledger_record("dev", "r-2", deployed("r-2", "v2", finished_at=NOW - 300))
    failed = {**deployed("r-3", "v3", finished_at=NOW - 100), "outcome": "RolledBack"}
    put_ledger_record("dev", "r-3", failed)

    result = start_recovery.handler(EVENT, Context())

    started = executions(aws_account)
    assert result["action"] == "started"
    assert len(started) == 1
    request = json.loads(started[0]["input"])
    assert request["trigger"] == "recovery"
    assert request["version"] == "v2"
    assert request["bundle"] == BUNDLE.replace("0123abcd", "v2")
    assert started[0]["name"] == f"dev-{request['requestId']}"
    assert request["requestId"] == recovery.recovery_request_id("dev", "r-2")


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ({"EnvironmentName": "billing-prod", "ApplicationName": "billing"}, "not in the"),
        ({"ApplicationName": "another-app"}, "not in the"),
        ({"Status": "Environment termination started"}, "is not a termination"),
        ({"Status": "Environment update successful"}, "is not a termination"),
    ],
)
def test_event_that_names_no_managed_termination_is_ignored(
    aws_account: dict[str, Any], detail: dict[str, Any], reason: str
) -> None:
    result = start_recovery.handler(termination_event(**detail), Context())

    assert result["action"] == "ignored"
    assert reason in result["reason"]
    assert executions(aws_account) == []


def test_malformed_event_is_ignored(aws_account: dict[str, Any]) -> None:
    event = termination_event()
    del event["detail"]["EnvironmentName"]

    result = start_recovery.handler(event, Context())

    assert result["action"] == "ignored"
    assert executions(aws_account) == []


def test_live_environment_makes_event_stale(aws_account: dict[str, Any]) -> None:
    launch_live_environment()

    result = start_recovery.handler(EVENT, Context())

    assert result["action"] == "skipped"
    assert "exists and is Ready" in result["reason"]
    assert executions(aws_account) == []


def test_nothing_deployed_means_nothing_to_recover(aws_account: dict[str, Any]) -> None:
    event = termination_event(EnvironmentName="webapp-staging", ApplicationName="webapp-staging")

    result = start_recovery.handler(event, Context())

    assert result["action"] == "skipped"
    assert "no Deployed record" in result["reason"]
    assert executions(aws_account) == []


@pytest.mark.parametrize(("value", "recovers"), [("on", False), ("ON ", False), ("off", True)])
def test_maintenance_switch(aws_account: dict[str, Any], value: str, recovers: bool) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/control-plane/dev/maintenance", Value=value, Type="String"
    )

    result = start_recovery.handler(EVENT, Context())

    assert (result["action"] == "started") is recovers
    assert len(executions(aws_account)) == (1 if recovers else 0)


def test_destroyed_environment_is_not_recovered_until_deployed_again(
    aws_account: dict[str, Any],
) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    recovery.record_destroy_intent("dev", "alice", NOW - 60, TABLE, dynamodb)

    first = start_recovery.handler(termination_event("event-1"), Context())
    put_ledger_record("dev", "r-9", deployed("r-9", "v9", finished_at=NOW - 30))
    second = start_recovery.handler(termination_event("event-2"), Context())

    assert first["action"] == "skipped"
    assert "destroyed on purpose by alice" in first["reason"]
    assert second["action"] == "started"
    assert len(executions(aws_account)) == 1


# Idempotency and deduplication


def test_same_event_delivered_twice_starts_one_recovery(aws_account: dict[str, Any]) -> None:
    first = start_recovery.handler(EVENT, Context())
    second = start_recovery.handler(EVENT, Context())

    assert first["action"] == "started"
    assert second == first
    assert len(executions(aws_account)) == 1


def test_two_events_for_one_termination_start_one_recovery(
    aws_account: dict[str, Any],
) -> None:
    first = start_recovery.handler(termination_event("event-1"), Context())
    second = start_recovery.handler(termination_event("event-2"), Context())

    assert first["action"] == "started"
    assert second["action"] == "already-started"
    assert second["executionArn"] == first["executionArn"]
    assert len(executions(aws_account)) == 1


class _ShiftedDatetime(real_datetime.datetime):
    """datetime whose now() runs `shift` seconds ahead, for Powertools' expiry checks."""

    shift = 0.0

    @classmethod
    def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
        return real_datetime.datetime.now(tz) + real_datetime.timedelta(seconds=cls.shift)


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> type[_ShiftedDatetime]:
    """Let the test move Powertools' wall clock forward (it reads datetime.now directly)."""
    from aws_lambda_powertools.utilities.idempotency import base
    from aws_lambda_powertools.utilities.idempotency.persistence import (
        base as persistence_base,
    )
    from aws_lambda_powertools.utilities.idempotency.persistence import datarecord, dynamodb

    shim = type("dt", (), {"datetime": _ShiftedDatetime, "timedelta": real_datetime.timedelta})
    for module in (base, persistence_base, datarecord, dynamodb):
        monkeypatch.setattr(module, "dt", shim)
    _ShiftedDatetime.shift = 0.0
    return _ShiftedDatetime


def kill_invocation(*args: Any, **kwargs: Any) -> Any:
    raise InvocationKilled()


def idempotency_item() -> dict[str, Any]:
    items = boto3.client("dynamodb", region_name="us-east-1").query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": start_recovery.IDEMPOTENCY_PARTITION}},
    )["Items"]
    assert len(items) == 1
    return items[0]


def test_timed_out_invocation_blocks_duplicates_until_its_timeout(
    aws_account: dict[str, Any],
    later: type[_ShiftedDatetime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeout = recovery.START_RECOVERY_TIMEOUT_SECONDS
    before_ms = real_datetime.datetime.now().timestamp() * 1000
    with monkeypatch.context() as patch, pytest.raises(InvocationKilled):
        patch.setattr(start_recovery, "start_recovery", kill_invocation)
        start_recovery.handler(EVENT, Context(timeout))
    item = idempotency_item()

    later.shift = timeout - 2
    with pytest.raises(IdempotencyAlreadyInProgressError):
        start_recovery.handler(EVENT, Context(timeout))

    assert item["status"]["S"] == "INPROGRESS"
    expires_ms = int(item["in_progress_expiration"]["N"])
    assert before_ms + (timeout - 1) * 1000 <= expires_ms <= before_ms + (timeout + 5) * 1000
    expires_s = int(item[recovery.TTL_ATTRIBUTE]["N"])
    assert expires_s >= before_ms / 1000 + recovery.EVENT_ID_RETENTION_SECONDS - 5
    assert executions(aws_account) == []


def test_retry_after_timeout_runs_and_starts_one_recovery(
    aws_account: dict[str, Any],
    later: type[_ShiftedDatetime],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timeout = recovery.START_RECOVERY_TIMEOUT_SECONDS
    with monkeypatch.context() as patch, pytest.raises(InvocationKilled):
        patch.setattr(start_recovery, "start_recovery", kill_invocation)
        start_recovery.handler(EVENT, Context(timeout))

    later.shift = timeout + 1
    retried = start_recovery.handler(EVENT, Context(timeout))
    duplicate = start_recovery.handler(EVENT, Context(timeout))

    assert retried["action"] == "started"
    assert duplicate == retried
    assert idempotency_item()["status"]["S"] == "COMPLETED"
    assert len(executions(aws_account)) == 1


# Circuit breaker


def count_recoveries(started_at: list[float]) -> None:
    for number, moment in enumerate(started_at):
        recovery.register_recovery("dev", f"recovery-old-{number}", moment, 3600, "test")


def test_breaker_opens_after_three_recoveries_in_an_hour(aws_account: dict[str, Any]) -> None:
    count_recoveries([NOW - 3000, NOW - 2000, NOW - 1000])

    result = start_recovery.handler(termination_event("event-4"), Context())
    again = start_recovery.handler(termination_event("event-5"), Context())

    assert result["action"] == "breaker-opened"
    assert executions(aws_account) == []
    record = next(r for r in ledger_records("dev") if r["requestId"] == result["requestId"])
    assert record["outcome"] == "CircuitBreakerOpen"
    assert record["trigger"] == "recovery"
    assert "3 recoveries started within the last 3600 s" in record["cause"]
    assert "control-plane recovery reset --environment dev" in record["cause"]
    sent = notifications(aws_account)
    assert len(sent) == 1
    assert sent[0]["Subject"] == "dev: CircuitBreakerOpen"
    assert again["action"] == "skipped"
    assert "circuit breaker is open" in again["reason"]
    assert notifications(aws_account) == []


def test_recoveries_outside_the_window_do_not_count(aws_account: dict[str, Any]) -> None:
    count_recoveries([NOW - 7200, NOW - 5000, NOW - 1000])

    result = start_recovery.handler(EVENT, Context())

    assert result["action"] == "started"


def test_breaker_limit_is_configurable_per_environment(
    aws_account: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = current_settings().model_dump(mode="json")
    settings["environments"]["dev"]["recovery"] = {"max_recoveries": 1, "window_seconds": 600}
    custom = tmp_path / "environments.json"
    custom.write_text(json.dumps(settings))
    monkeypatch.setenv("ENVIRONMENTS_FILE", str(custom))
    current_settings.cache_clear()
    count_recoveries([NOW - 300])

    result = start_recovery.handler(EVENT, Context())

    assert result["action"] == "breaker-opened"
    assert "recovery.max_recoveries is 1" in result["reason"]


def test_reset_closes_the_breaker(aws_account: dict[str, Any]) -> None:
    count_recoveries([NOW - 3000, NOW - 2000, NOW - 1000])
    assert start_recovery.handler(termination_event("event-1"), Context())["action"] == (
        "breaker-opened"
    )

    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    closed = recovery.close_breaker("dev", TABLE, dynamodb)
    result = start_recovery.handler(termination_event("event-2"), Context())

    assert closed is True
    assert result["action"] == "started"


# The scheduled sweep


def test_sweep_recovers_terminated_environment_once(aws_account: dict[str, Any]) -> None:
    first = sweep_environments.handler({"id": "tick-1"}, Context())
    second = sweep_environments.handler({"id": "tick-2"}, Context())

    actions = {item["environment"]: item["action"] for item in first["environments"]}
    assert actions == {"dev": "started", "prod": "skipped", "staging": "skipped"}
    assert {item["environment"]: item["action"] for item in second["environments"]}["dev"] == (
        "already-started"
    )
    assert len(executions(aws_account)) == 1


def test_sweep_and_event_start_the_same_recovery(aws_account: dict[str, Any]) -> None:
    swept = sweep_environments.handler({"id": "tick-1"}, Context())
    event = start_recovery.handler(EVENT, Context())

    dev = next(item for item in swept["environments"] if item["environment"] == "dev")
    assert event["action"] == "already-started"
    assert event["executionArn"] == dev["executionArn"]
    assert len(executions(aws_account)) == 1


def test_sweep_leaves_a_locked_environment_to_its_holder(aws_account: dict[str, Any]) -> None:
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "ENV#dev"},
            "sk": {"S": "LOCK"},
            "holder": {"S": "r-2"},
            "expiresAt": {"N": str(int(NOW) + 3600)},
        },
    )

    result = sweep_environments.handler({"id": "tick-1"}, Context())

    dev = next(item for item in result["environments"] if item["environment"] == "dev")
    assert dev["action"] == "skipped"
    assert "r-2 holds the lock" in dev["reason"]
    assert executions(aws_account) == []


def test_queued_request_recovers_instead(aws_account: dict[str, Any]) -> None:
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "ENV#dev"},
            "sk": {"S": "LOCK"},
            "holder": {"S": "r-2"},
            "waiting": {"S": "r-3"},
            "expiresAt": {"N": str(int(NOW) + 3600)},
        },
    )

    result = start_recovery.handler(EVENT, Context())

    assert result["action"] == "skipped"
    assert "request r-3 is queued" in result["reason"]
    assert executions(aws_account) == []


# PrepareRecovery, once the recovery holds the lock


def recovery_task(version: str = "v1") -> dict[str, Any]:
    return {
        "request": {
            "environment": "dev",
            "version": version,
            "bundle": BUNDLE.replace("0123abcd", version),
            "requestId": recovery.recovery_request_id("dev", "r-1"),
            "trigger": "recovery",
            "startedBy": recovery.RECOVERY_STARTED_BY,
        },
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:deployments:x",
    }


def test_prepare_recovery_takes_the_newest_deployed_version(
    aws_account: dict[str, Any],
) -> None:
    put_ledger_record("dev", "r-2", deployed("r-2", "v2", finished_at=NOW - 10))

    prepared = prepare_recovery.handler(recovery_task("v1"), Context())

    assert prepared["version"] == "v2"
    assert prepared["bundle"] == BUNDLE.replace("0123abcd", "v2")
    assert prepared["requestId"] == recovery_task()["request"]["requestId"]


def test_prepare_recovery_cancels_under_maintenance(aws_account: dict[str, Any]) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/control-plane/dev/maintenance", Value="on", Type="String"
    )

    with pytest.raises(RecoveryCancelled, match="/control-plane/dev/maintenance"):
        prepare_recovery.handler(recovery_task(), Context())


def test_prepare_recovery_cancels_for_a_destroyed_environment(
    aws_account: dict[str, Any],
) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    recovery.record_destroy_intent("dev", "bob", NOW, TABLE, dynamodb)

    with pytest.raises(RecoveryCancelled, match="destroyed on purpose by bob"):
        prepare_recovery.handler(recovery_task(), Context())
