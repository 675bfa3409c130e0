"""The DynamoDB lease and ledger against moto."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from lambdas.common import aws, store
from lambdas.common.errors import EnvironmentLocked


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with mock_aws():
        aws.client.cache_clear()
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName="deployments",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        monkeypatch.setenv("TABLE_NAME", "deployments")
        yield "deployments"
        aws.client.cache_clear()


def test_lock_is_exclusive_per_environment(table: str) -> None:
    first = store.acquire_lock("dev", "r-1", "arn:1")

    with pytest.raises(EnvironmentLocked) as raised:
        store.acquire_lock("dev", "r-2", "arn:2")
    other = store.acquire_lock("staging", "r-3", "arn:3")

    assert first["token"] == 1
    assert other["token"] == 1
    assert "locked by request r-1" in str(raised.value)
    assert "control-plane lock release --environment dev" in str(raised.value)


def test_fencing_token_grows_with_each_acquisition(table: str) -> None:
    store.acquire_lock("dev", "r-1", "arn:1")
    store.release_lock("dev", "r-1")

    second = store.acquire_lock("dev", "r-2", "arn:2")

    assert second["token"] == 2


def test_only_the_holder_releases(table: str) -> None:
    store.acquire_lock("dev", "r-1", "arn:1")

    released_by_other = store.release_lock("dev", "r-2")
    released_by_holder = store.release_lock("dev", "r-1")

    assert released_by_other is False
    assert released_by_holder is True
    assert store.read_lock("dev") is None


def test_expired_lease_can_be_taken(table: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store.acquire_lock("dev", "r-1", "arn:1")
    real_time = store.time.time
    monkeypatch.setattr(store.time, "time", lambda: real_time() + store.LOCK_LEASE_SECONDS + 1)

    taken = store.acquire_lock("dev", "r-2", "arn:2")

    assert taken["token"] == 2


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
    store.acquire_lock("dev", "r-1", "arn:1")

    stale = store.force_release_lock("dev", "r-0", table, dynamodb)
    current = store.force_release_lock("dev", "r-1", table, dynamodb)

    assert stale is False
    assert current is True
    assert store.read_lock("dev", table, dynamodb) is None
