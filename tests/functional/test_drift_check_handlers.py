"""Scheduled drift checks against moto: StartDriftCheck, ReadDriftResult and the yielding lease.

StartDriftCheck receives the input its schedule rule's input transformer renders
(`{"environment", "scheduledAt", "eventId"}`). Executions are started on moto's Step Functions,
which records them without running them, and which keeps one execution per name as AWS does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from lambdas import read_drift_result, start_drift_check
from lambdas.common import aws, clock, lease, recovery
from lambdas.common.drift import drift_check_request_id
from lambdas.common.errors import PreviewFailed
from lambdas.common.settings import current_settings
from lambdas.common.store import (
    put_ledger_record,
    read_infrastructure_record,
    write_infrastructure_record,
)
from tests.ledger_table import create_ledger_table

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLE = "deployments"
STATE_BUCKET = "pulumi-state"
BUNDLE = "s3://bundles/bundles/dev/{version}.zip"
NOW = 1_767_247_200.0  # 2026-01-01T06:00:00Z
ENV_URN = "urn:pulumi:dev::webapp::aws:elasticbeanstalk/environment:Environment::webapp-dev"


class Context:
    """The Lambda context fields that Powertools' logger reads."""

    function_name = "StartDriftCheckFunction"
    aws_request_id = "req-1"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:StartDriftCheck"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def deployed(request_id: str, version: str, *, finished_at: float) -> dict[str, Any]:
    return {
        "environment": "dev",
        "requestId": request_id,
        "version": version,
        "bundle": BUNDLE.format(version=version),
        "trigger": "manual",
        "outcome": "Deployed",
        "finishedAt": int(finished_at),
    }


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch, environments_file: Path) -> Iterator[dict[str, Any]]:
    with mock_aws():
        aws.client.cache_clear()
        region = "us-east-1"
        create_ledger_table(boto3.client("dynamodb", region_name=region), TABLE)
        boto3.client("s3", region_name=region).create_bucket(Bucket=STATE_BUCKET)
        machine = boto3.client("stepfunctions", region_name=region).create_state_machine(
            name="deployments",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        monkeypatch.setenv("TABLE_NAME", TABLE)
        monkeypatch.setenv("STATE_BUCKET", STATE_BUCKET)
        monkeypatch.setenv("STATE_MACHINE_ARN", machine)
        clock.install(lambda: NOW)
        put_ledger_record("dev", "r-1", deployed("r-1", "v1", finished_at=NOW - 7200))
        yield {"state_machine": machine}
        clock.install(None)
        aws.client.cache_clear()


def executions(account: dict[str, Any]) -> list[dict[str, Any]]:
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    listed = sfn.list_executions(stateMachineArn=account["state_machine"])["executions"]
    return [sfn.describe_execution(executionArn=item["executionArn"]) for item in listed]


def scheduled(environment: str = "dev", at: str | None = "2026-01-01T06:00:07Z") -> dict:
    """The input the schedule rule's input transformer renders from a Scheduled Event."""
    event: dict[str, Any] = {"environment": environment, "eventId": "7bf73129-1428"}
    if at is not None:
        event["scheduledAt"] = at
    return event


def put_lock(**attributes: str) -> None:
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName=TABLE,
        Item={
            **lease.lock_key("dev"),
            **{name: {"S": value} for name, value in attributes.items()},
        },
    )


# StartDriftCheck: what it starts


def test_schedule_starts_check_of_last_deployed_version(account: dict[str, Any]) -> None:
    put_ledger_record("dev", "r-2", deployed("r-2", "v2", finished_at=NOW - 3600))
    failed = {**deployed("r-3", "v3", finished_at=NOW - 600), "outcome": "RolledBack"}
    put_ledger_record("dev", "r-3", failed)

    result = start_drift_check.handler(scheduled(), Context())

    started = executions(account)
    assert result["action"] == "started"
    assert len(started) == 1
    request = json.loads(started[0]["input"])
    assert request == {
        "environment": "dev",
        "version": "v2",
        "bundle": BUNDLE.format(version="v2"),
        "requestId": "drift-20260101T0600Z",
        "trigger": "schedule",
        "startedBy": "control-plane-drift-check",
    }
    assert started[0]["name"] == "dev-drift-20260101T0600Z"
    assert result["executionArn"] == started[0]["executionArn"]


def test_repeated_delivery_starts_one_check(account: dict[str, Any]) -> None:
    first = start_drift_check.handler(scheduled(), Context())
    second = start_drift_check.handler(scheduled(), Context())

    assert first["action"] == "started"
    assert second["executionArn"] == first["executionArn"]
    assert len(executions(account)) == 1


def test_two_events_in_one_slot_start_one_check(account: dict[str, Any]) -> None:
    # The dev schedule runs every 360 minutes, so 06:00 to 11:59 is one slot.
    first = start_drift_check.handler(scheduled(at="2026-01-01T06:00:07Z"), Context())
    second = start_drift_check.handler(scheduled(at="2026-01-01T11:59:00Z"), Context())

    assert first["requestId"] == second["requestId"] == "drift-20260101T0600Z"
    assert len(executions(account)) == 1


def test_next_slot_starts_another_check(account: dict[str, Any]) -> None:
    first = start_drift_check.handler(scheduled(at="2026-01-01T06:00:07Z"), Context())
    second = start_drift_check.handler(scheduled(at="2026-01-01T12:00:05Z"), Context())

    assert first["requestId"] == "drift-20260101T0600Z"
    assert second["requestId"] == "drift-20260101T1200Z"
    assert len(executions(account)) == 2


def test_ended_check_is_not_started_again(account: dict[str, Any]) -> None:
    first = start_drift_check.handler(scheduled(), Context())
    boto3.client("stepfunctions", region_name="us-east-1").stop_execution(
        executionArn=first["executionArn"]
    )

    again = start_drift_check.handler(scheduled(), Context())

    assert again["action"] == "already-started"
    assert again["executionArn"] == first["executionArn"]
    assert len(executions(account)) == 1


def test_manual_invocation_checks_the_current_slot(account: dict[str, Any]) -> None:
    result = start_drift_check.handler(scheduled(at=None), Context())

    assert result["action"] == "started"
    assert result["requestId"] == drift_check_request_id(int(NOW))


# StartDriftCheck: when it starts nothing


def test_nothing_deployed_skips_the_check(account: dict[str, Any]) -> None:
    result = start_drift_check.handler(scheduled("staging"), Context())

    assert result["action"] == "skipped"
    assert "nothing deployed yet" in result["reason"]
    assert executions(account) == []


def test_maintenance_switch_skips_the_check(account: dict[str, Any]) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/control-plane/dev/maintenance", Value="on", Type="String"
    )

    result = start_drift_check.handler(scheduled(), Context())

    assert result["action"] == "skipped"
    assert "/control-plane/dev/maintenance is on" in result["reason"]
    assert executions(account) == []


@pytest.mark.parametrize(
    ("lock", "reason"),
    [
        ({"holder": "r-7", "executionArn": "arn:7"}, "request r-7 holds the lock"),
        ({"waiting": "r-8", "waitingExecutionArn": "arn:8"}, "request r-8 is queued"),
    ],
)
def test_busy_lock_skips_the_check(
    account: dict[str, Any], lock: dict[str, str], reason: str
) -> None:
    put_lock(**lock)

    result = start_drift_check.handler(scheduled(), Context())

    assert result["action"] == "skipped"
    assert reason in result["reason"]
    assert executions(account) == []


def test_destroyed_environment_is_not_checked(account: dict[str, Any]) -> None:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    recovery.record_destroy_intent("dev", "alice", NOW - 60, TABLE, dynamodb)

    result = start_drift_check.handler(scheduled(), Context())

    assert result["action"] == "skipped"
    assert "destroyed on purpose by alice" in result["reason"]
    assert executions(account) == []


def test_checks_turned_off_skip_the_check(
    account: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    document = yaml.safe_load((REPO_ROOT / "environments.yaml").read_text())
    document["environments"]["dev"]["drift_check"] = {"every_minutes": 0}
    path = tmp_path / "environments.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("ENVIRONMENTS_FILE", str(path))
    current_settings.cache_clear()

    result = start_drift_check.handler(scheduled(), Context())

    assert result["action"] == "skipped"
    assert "every_minutes is 0" in result["reason"]
    assert executions(account) == []


@pytest.mark.parametrize(
    ("event", "problem"),
    [
        ({"scheduledAt": "2026-01-01T06:00:07Z"}, "environment: Field required"),
        ({"environment": "qa"}, "environment 'qa' is not defined"),
        ({"environment": "dev", "scheduledAt": "2026-01-01T06:00:07"}, "timezone"),
    ],
)
def test_invalid_input_is_rejected(
    account: dict[str, Any], event: dict[str, Any], problem: str
) -> None:
    result = start_drift_check.handler(event, Context())

    assert result["action"] == "rejected"
    assert problem in result["reason"]
    assert executions(account) == []


# AcquireLock: a drift check never queues


def deployment(request_id: str, queued_at_ms: int) -> lease.Lease:
    return lease.Lease(
        "dev",
        request_id,
        f"arn:{request_id}",
        queued_at_ms,
        execution_status=lambda arn: "RUNNING",
    )


def test_check_takes_a_free_lease(account: dict[str, Any]) -> None:
    taken = lease.Lease("dev", "drift-1", "arn:d", 2000, yields=True).acquire()

    assert taken["token"] == 1


def test_check_yields_to_the_holder_without_queueing(account: dict[str, Any]) -> None:
    deployment("r-1", 1000).acquire()

    result = lease.Lease("dev", "drift-1", "arn:d", 2000, yields=True).acquire()

    assert result == {"superseded": True, "by": "r-1", "yielded": True}
    assert "waiting" not in (lease.read_lock("dev") or {})


def test_check_never_supersedes_a_queued_deployment(account: dict[str, Any]) -> None:
    # GIVEN a deployment queued behind a holder that has just released the lease
    deployment("r-1", 1000).acquire()
    with pytest.raises(Exception, match="locked by request r-1"):
        deployment("r-2", 2000).acquire()
    lease.release_lock("dev", "r-1")

    # WHEN a newer drift check requests the free lease
    result = lease.Lease("dev", "drift-1", "arn:d", 3000, yields=True).acquire()

    # THEN it gives way, and the queued deployment still takes the lease
    assert result == {"superseded": True, "by": "r-2", "yielded": True}
    assert deployment("r-2", 2000).acquire()["token"] == 2


def test_deployment_queues_behind_a_running_check(account: dict[str, Any]) -> None:
    lease.Lease("dev", "drift-1", "arn:d", 1000, yields=True).acquire()

    with pytest.raises(Exception, match="locked by request drift-1"):
        deployment("r-2", 2000).acquire()
    lease.release_lock("dev", "drift-1")

    assert deployment("r-2", 2000).acquire()["token"] == 2


# ReadDriftResult


def put_result(request_id: str, **document: Any) -> None:
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=STATE_BUCKET,
        Key=f"results/dev/{request_id}.json",
        Body=json.dumps({"error": None, "summary": {"same": 22, "update": 1}, **document}),
    )


def read_event(request_id: str = "drift-20260101T0600Z") -> dict[str, Any]:
    return {
        "request": {
            "environment": "dev",
            "version": "v1",
            "bundle": BUNDLE.format(version="v1"),
            "requestId": request_id,
            "trigger": "schedule",
        },
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:deployments:x",
        "target": {
            "environment": "dev",
            "region": "us-east-1",
            "project": "webapp",
            "stack": "dev",
            "backendUrl": f"s3://{STATE_BUCKET}",
            "ebApplication": "webapp-dev",
            "healthPath": "/health",
        },
        "inspection": {"plan": "check-drift", "fingerprint": "f-123"},
        "build": {"id": "PulumiRunner:00000001", "status": "SUCCEEDED"},
    }


def test_no_drift_records_a_clean_run(account: dict[str, Any]) -> None:
    put_result("drift-20260101T0600Z", action="check-only", drift=[])

    result = read_drift_result.handler(read_event(), Context())

    assert result["outcome"] == "NoDrift"
    assert result["changes"] == []
    assert read_infrastructure_record("dev") == {
        "pk": "ENV#dev",
        "sk": "INFRASTRUCTURE",
        "fingerprint": "f-123",
        "checkedAt": int(NOW),
    }


def test_drift_detected_forgets_the_clean_run(account: dict[str, Any]) -> None:
    write_infrastructure_record("dev", "f-123", int(NOW) - 600)
    change = f"update {ENV_URN} (diff: settings)"
    put_result("drift-20260101T0600Z", action="check-only", drift=[change])

    result = read_drift_result.handler(read_event(), Context())

    assert result["outcome"] == "DriftDetected"
    assert result["changes"] == [change]
    assert result["changeCount"] == 1
    assert result["summary"] == {"same": 22, "update": 1}
    assert "nothing was changed" in result["message"]
    assert change in result["message"]
    assert read_infrastructure_record("dev") is None


def test_remediated_drift_records_a_clean_run(account: dict[str, Any]) -> None:
    put_result("drift-20260101T0600Z", action="check", changes=True, drift=["create bucket"])

    result = read_drift_result.handler(read_event(), Context())

    assert result["outcome"] == "DriftRemediated"
    assert "`pulumi up --refresh` applied the program" in result["message"]
    assert (read_infrastructure_record("dev") or {}).get("fingerprint") == "f-123"


def test_many_changes_are_capped(account: dict[str, Any]) -> None:
    drift = [f"update urn:pulumi:dev::webapp::bucket-{number}" for number in range(30)]
    put_result("drift-20260101T0600Z", action="check-only", drift=drift)

    result = read_drift_result.handler(read_event(), Context())

    assert result["changeCount"] == 30
    assert len(result["changes"]) == 20
    assert "and 25 more" in result["message"]


def test_missing_result_document_is_preview_failed(account: dict[str, Any]) -> None:
    with pytest.raises(PreviewFailed, match="wrote no result document"):
        read_drift_result.handler(read_event("drift-missing"), Context())
