"""The DynamoDB lease and ledger against moto."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from lambdas.common import aws, clock, lease, store
from lambdas.common.errors import EnvironmentLocked, LeaseLost
from tests.ledger_table import create_ledger_table


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with mock_aws():
        aws.client.cache_clear()
        create_ledger_table(boto3.client("dynamodb", region_name="us-east-1"), "deployments")
        monkeypatch.setenv("TABLE_NAME", "deployments")
        yield "deployments"
        aws.client.cache_clear()


RUNNING = {"arn:1": "RUNNING", "arn:2": "RUNNING", "arn:3": "RUNNING", "arn:4": "RUNNING"}


def request(
    request_id: str, queued_at_ms: int, environment: str = "dev", statuses: dict | None = None
) -> lease.Lease:
    """A lease handle for `request_id`, whose execution started at `queued_at_ms`."""
    arn = f"arn:{request_id.split('-')[1]}"
    known = RUNNING if statuses is None else statuses
    return lease.Lease(
        environment,
        request_id,
        arn,
        queued_at_ms,
        execution_status=lambda arn: known.get(arn),
        execution_input=lambda arn: {"version": f"v{arn.split(':')[1]}", "bundle": 7},
    )


def test_lock_is_exclusive_per_environment(table: str) -> None:
    first = request("r-1", 1000).acquire()

    with pytest.raises(EnvironmentLocked) as raised:
        request("r-2", 2000).acquire()
    other = request("r-3", 3000, environment="staging").acquire()

    assert first["token"] == 1
    assert other["token"] == 1
    assert "locked by request r-1" in str(raised.value)
    assert "control-plane lock release --environment dev" in str(raised.value)


def test_fencing_token_grows_with_each_acquisition(table: str) -> None:
    request("r-1", 1000).acquire()
    lease.release_lock("dev", "r-1")

    second = request("r-2", 2000).acquire()

    assert second["token"] == 2


def test_a_retried_acquisition_keeps_the_same_token(table: str) -> None:
    first = request("r-1", 1000).acquire()

    again = request("r-1", 1000).acquire()

    assert again["token"] == first["token"] == 1


def test_only_the_holder_releases(table: str) -> None:
    request("r-1", 1000).acquire()

    released_by_other = lease.release_lock("dev", "r-2")
    released_by_holder = lease.release_lock("dev", "r-1")

    assert released_by_other is False
    assert released_by_holder is True
    assert lease.read_lock("dev") is None


def test_newer_queued_request_supersedes_the_older_one(table: str) -> None:
    request("r-1", 1000).acquire()
    with pytest.raises(EnvironmentLocked):
        request("r-2", 2000).acquire()
    with pytest.raises(EnvironmentLocked):
        request("r-3", 5000).acquire()

    older = request("r-2", 2000).acquire()
    lease.release_lock("dev", "r-1")
    older_after_release = request("r-2", 2000).acquire()
    newest = request("r-3", 5000).acquire()

    assert older == {"superseded": True, "by": "r-3"}
    assert older_after_release == {"superseded": True, "by": "r-3"}
    assert newest["token"] == 2


def test_older_request_arriving_late_is_superseded_by_the_newer_queued_one(table: str) -> None:
    request("r-1", 1000).acquire()
    with pytest.raises(EnvironmentLocked):
        request("r-3", 5000).acquire()

    # r-2 started before r-3 but its first attempt runs after r-3 queued.
    late = request("r-2", 2000).acquire()

    assert late == {"superseded": True, "by": "r-3"}


def test_request_older_than_a_free_lease_holder_is_superseded(table: str) -> None:
    request("r-3", 5000).acquire()

    older = request("r-2", 2000).acquire()

    assert older == {"superseded": True, "by": "r-3"}


def test_the_holder_is_never_preempted_by_a_newer_request(table: str) -> None:
    request("r-1", 1000).acquire()

    with pytest.raises(EnvironmentLocked):
        request("r-2", 2000).acquire()

    assert lease.read_lock("dev")["holder"]["S"] == "r-1"


def test_lease_of_a_holder_whose_execution_ended_is_taken_over(table: str) -> None:
    request("r-1", 1000).acquire()
    statuses = {**RUNNING, "arn:1": "FAILED"}

    taken = request("r-2", 2000, statuses=statuses).acquire()

    assert taken["token"] == 2
    assert lease.read_lock("dev")["holder"]["S"] == "r-2"
    (abandoned,) = store.ledger_records("dev")
    assert abandoned["requestId"] == "r-1"
    assert abandoned["errorName"] == "ExecutionFailed"
    assert "ended FAILED while it held the lease" in abandoned["cause"]
    assert "request r-2 took the lease over" in abandoned["cause"]
    assert abandoned["version"] == "v1"
    assert "bundle" not in abandoned


def test_unreadable_holder_status_waits_instead_of_taking_over(table: str) -> None:
    request("r-1", 1000).acquire()

    with pytest.raises(EnvironmentLocked):
        request("r-2", 2000, statuses={}).acquire()


def test_lease_expiry_is_in_epoch_seconds_and_a_dead_holders_lease_expires(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = 1_790_000_000.0
    monkeypatch.setattr(clock, "_source", lambda: start)
    request("r-1", 1000, statuses={}).acquire()
    expires = int(lease.read_lock("dev")["expiresAt"]["N"])
    # The holder's status cannot be read, so only expiry frees the lease.
    with pytest.raises(EnvironmentLocked):
        request("r-2", 2000, statuses={}).acquire()
    monkeypatch.setattr(clock, "_source", lambda: start + lease.LOCK_LEASE_SECONDS + 1)

    taken = request("r-2", 2000, statuses={}).acquire()

    assert expires == int(start) + lease.LOCK_LEASE_SECONDS
    assert len(str(expires)) == 10  # seconds, not milliseconds
    assert taken["token"] == 2


def test_fence_check_passes_for_the_holder_and_renews_the_lease(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "_source", lambda: 1_790_000_000.0)
    token = request("r-1", 1000).acquire()["token"]
    monkeypatch.setattr(clock, "_source", lambda: 1_790_000_600.0)

    lease.check_fence("dev", "r-1", {"token": token})

    assert int(lease.read_lock("dev")["expiresAt"]["N"]) == (
        1_790_000_600 + lease.LOCK_LEASE_SECONDS
    )


def test_fence_check_stops_a_task_with_a_stale_token(table: str) -> None:
    request("r-1", 1000).acquire()
    statuses = {**RUNNING, "arn:1": "ABORTED"}
    request("r-2", 2000, statuses=statuses).acquire()

    with pytest.raises(LeaseLost) as raised:
        lease.check_fence("dev", "r-1", {"token": 1})
    with pytest.raises(LeaseLost):
        lease.check_fence("dev", "r-2", None)

    assert "held by r-2 with token 2" in str(raised.value)


def test_ledger_keeps_one_record_per_request(table: str) -> None:
    store.put_ledger_record("dev", "r-1", {"outcome": "UpFailed", "finishedAt": 1})
    store.put_ledger_record("dev", "r-1", {"outcome": "Deployed", "finishedAt": 2})
    store.put_ledger_record("dev", "r-2", {"outcome": "Deployed", "finishedAt": 3, "plan": None})

    records = store.ledger_records("dev")

    assert [record["sk"] for record in records] == [
        "REQUEST#r-1",
        "REQUEST#r-2",
    ]
    assert records[0]["outcome"] == "Deployed"
    assert records[1]["plan"] is None


def test_operator_release_only_frees_the_holder_seen(table: str) -> None:
    dynamodb = store.client("dynamodb")
    request("r-1", 1000).acquire()

    stale = lease.force_release_lock("dev", "r-0", table, dynamodb)
    current = lease.force_release_lock("dev", "r-1", table, dynamodb)

    assert stale is False
    assert current is True
    assert lease.read_lock("dev", table, dynamodb) is None


def test_a_repeated_update_finds_the_previous_version_noted_by_the_first_run(table: str) -> None:
    lock = request("r-1", 1000).acquire()

    first = lease.remember_update("dev", "r-1", lock, "v1")
    repeated = lease.remember_update("dev", "r-1", lock, "v2")
    lease.release_lock("dev", "r-1")
    next_lock = request("r-2", 2000).acquire()
    next_request = lease.remember_update("dev", "r-2", next_lock, "v2")

    assert first is None
    assert repeated == "v1"
    assert next_request is None


def test_a_first_deployment_notes_that_there_was_no_previous_version(table: str) -> None:
    lock = request("r-1", 1000).acquire()
    lease.remember_update("dev", "r-1", lock, None)

    assert lease.remember_update("dev", "r-1", lock, "v1") == ""


def test_ledger_records_read_every_page() -> None:
    """Records beyond one Query page are returned, oldest first."""
    import boto3
    from moto import mock_aws

    from lambdas.common import aws, store

    with mock_aws():
        aws.client.cache_clear()
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(dynamodb, "ledger")
        # About 1.6 MB of records, more than the 1 MB one Query page returns.
        padding = "x" * 200_000
        for number in range(8):
            dynamodb.put_item(
                TableName="ledger",
                Item={
                    "pk": {"S": "ENV#dev"},
                    "sk": {"S": f"REQUEST#r-{number}"},
                    "finishedAt": {"N": str(100 - number)},
                    "cause": {"S": padding},
                },
            )
        first_page = dynamodb.query(
            TableName="ledger",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "ENV#dev"}},
        )

        records = store.ledger_records("dev", "ledger", dynamodb)
        aws.client.cache_clear()

    assert "LastEvaluatedKey" in first_page
    assert len(records) == 8
    assert [record["finishedAt"] for record in records] == sorted(100 - n for n in range(8))
