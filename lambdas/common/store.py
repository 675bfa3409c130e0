"""The DynamoDB table: per-environment deployment lock and the deployment ledger.

Keys: the lock is (pk="ENV#<environment>", sk="LOCK"); a ledger record is
(pk="ENV#<environment>", sk="REQUEST#<requestId>"), so a retried Record overwrites its own record
and every request has exactly one.
"""

from __future__ import annotations

import os
from typing import Any

from . import clock
from .aws import client, error_code
from .errors import EnvironmentLocked

# A lease long enough for the slowest deployment; a crashed holder loses it after this.
LOCK_LEASE_SECONDS = 2 * 60 * 60


def _table_name() -> str:
    return os.environ["TABLE_NAME"]


def _lock_key(environment: str) -> dict[str, Any]:
    return {"pk": {"S": f"ENV#{environment}"}, "sk": {"S": "LOCK"}}


def acquire_lock(environment: str, request_id: str, execution_arn: str) -> dict[str, Any]:
    """Take the environment's lease, or raise EnvironmentLocked naming its holder and age.

    The fencing token grows by one on every acquisition, so a task holding a stale token can be
    distinguished from the current holder.
    """
    now = int(clock.now())
    dynamodb = client("dynamodb")
    try:
        response = dynamodb.update_item(
            TableName=_table_name(),
            Key=_lock_key(environment),
            UpdateExpression=(
                "SET holder = :me, executionArn = :arn, acquiredAt = :now, expiresAt = :exp "
                "ADD fencingToken :one"
            ),
            ConditionExpression=(
                "attribute_not_exists(holder) OR expiresAt < :now OR holder = :me"
            ),
            ExpressionAttributeValues={
                ":me": {"S": request_id},
                ":arn": {"S": execution_arn},
                ":now": {"N": str(now)},
                ":exp": {"N": str(now + LOCK_LEASE_SECONDS)},
                ":one": {"N": "1"},
            },
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except Exception as error:
        if error_code(error) != "ConditionalCheckFailedException":
            raise
        held = getattr(error, "response", {}).get("Item") or {}
        holder = held.get("holder", {}).get("S", "unknown")
        acquired = int(held.get("acquiredAt", {}).get("N", now))
        raise EnvironmentLocked(
            f"environment {environment} is locked by request {holder} "
            f"(held for {now - acquired} s, execution {held.get('executionArn', {}).get('S')}); "
            "this request waits and retries. If that execution has ended, release the lock with "
            f"`control-plane lock release --environment {environment}`."
        ) from None
    item = response["Attributes"]
    return {"token": int(item["fencingToken"]["N"]), "acquiredAt": now}


def _remove_holder(environment: str, holder: str, table_name: str, dynamodb: Any) -> bool:
    """Clear the lease while `holder` holds it; return whether it did.

    The item stays, without a holder, so the fencing token keeps growing across leases.
    """
    try:
        dynamodb.update_item(
            TableName=table_name,
            Key=_lock_key(environment),
            UpdateExpression="REMOVE holder, executionArn, acquiredAt, expiresAt",
            ConditionExpression="holder = :holder",
            ExpressionAttributeValues={":holder": {"S": holder}},
        )
    except Exception as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def release_lock(environment: str, request_id: str) -> bool:
    """Release the lease if this request holds it; return whether anything was released."""
    return _remove_holder(environment, request_id, _table_name(), client("dynamodb"))


def read_lock(
    environment: str, table_name: str | None = None, dynamodb: Any = None
) -> dict[str, Any] | None:
    """Return the lock item while a request holds it, else None."""
    response = (dynamodb or client("dynamodb")).get_item(
        TableName=table_name or _table_name(), Key=_lock_key(environment)
    )
    item = response.get("Item")
    return item if item and "holder" in item else None


def force_release_lock(environment: str, holder: str, table_name: str, dynamodb: Any) -> bool:
    """Release a lock an operator found stuck, but only while `holder` still holds it.

    The condition keeps a request that took the lock after the operator looked from losing it.
    """
    return _remove_holder(environment, holder, table_name, dynamodb)


def _to_attribute(value: Any) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, dict):
        return {"M": {key: _to_attribute(item) for key, item in value.items()}}
    if isinstance(value, list):
        return {"L": [_to_attribute(item) for item in value]}
    return {"S": str(value)}


def _from_attribute(attribute: dict[str, Any]) -> Any:
    ((kind, value),) = attribute.items()
    if kind == "NULL":
        return None
    if kind == "N":
        number = float(value)
        return int(number) if number.is_integer() else number
    if kind == "M":
        return {key: _from_attribute(item) for key, item in value.items()}
    if kind == "L":
        return [_from_attribute(item) for item in value]
    return value


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """Decode a DynamoDB item (attribute-value form) into plain Python values."""
    return {key: _from_attribute(value) for key, value in item.items()}


def put_ledger_record(environment: str, request_id: str, record: dict[str, Any]) -> None:
    item = {key: _to_attribute(value) for key, value in record.items()}
    item["pk"] = {"S": f"ENV#{environment}"}
    item["sk"] = {"S": f"REQUEST#{request_id}"}
    client("dynamodb").put_item(TableName=_table_name(), Item=item)


def ledger_records(
    environment: str, table_name: str | None = None, dynamodb: Any = None
) -> list[dict[str, Any]]:
    """Return every ledger record of an environment, oldest first."""
    response = (dynamodb or client("dynamodb")).query(
        TableName=table_name or _table_name(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": f"ENV#{environment}"},
            ":prefix": {"S": "REQUEST#"},
        },
    )
    records = [from_item(item) for item in response["Items"]]
    return sorted(records, key=lambda record: record.get("finishedAt", 0))


def _infrastructure_key(environment: str) -> dict[str, Any]:
    return {"pk": {"S": f"ENV#{environment}"}, "sk": {"S": "INFRASTRUCTURE"}}


def read_infrastructure_record(environment: str) -> dict[str, Any] | None:
    """Return the last good Pulumi run's program fingerprint and drift-check time, if any."""
    item = (
        client("dynamodb")
        .get_item(TableName=_table_name(), Key=_infrastructure_key(environment))
        .get("Item")
    )
    return from_item(item) if item else None


def write_infrastructure_record(environment: str, fingerprint: str, checked_at: int) -> None:
    """Remember that Pulumi ran cleanly for this program fingerprint at `checked_at`."""
    item = {
        **_infrastructure_key(environment),
        "fingerprint": {"S": fingerprint},
        "checkedAt": {"N": str(checked_at)},
    }
    client("dynamodb").put_item(TableName=_table_name(), Item=item)
