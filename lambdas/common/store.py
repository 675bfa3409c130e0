"""The DynamoDB table: the deployment ledger and the infrastructure record.

The lease lives in the same table (see lease.py). Keys: a ledger record is
(pk="ENV#<environment>", sk="REQUEST#<requestId>"), so a retried Record overwrites its own record
and every request has exactly one.
"""

from __future__ import annotations

import os
from typing import Any

from .aws import client, error_code


def table_name() -> str:
    return os.environ["TABLE_NAME"]


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
    client("dynamodb").put_item(TableName=table_name(), Item=item)


def put_ledger_record_if_absent(
    environment: str,
    request_id: str,
    record: dict[str, Any],
    table: str | None = None,
    dynamodb: Any = None,
) -> bool:
    """Write the record unless the request has one; return whether it wrote."""
    item = {key: _to_attribute(value) for key, value in record.items()}
    item["pk"] = {"S": f"ENV#{environment}"}
    item["sk"] = {"S": f"REQUEST#{request_id}"}
    try:
        (dynamodb or client("dynamodb")).put_item(
            TableName=table or table_name(),
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",
        )
    except Exception as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def query_items(
    environment: str, prefix: str, table: str | None = None, dynamodb: Any = None
) -> list[dict[str, Any]]:
    """Return the raw items of an environment whose sort key starts with `prefix`.

    Reads every page, because one Query returns at most 1 MB of items.
    """
    paginator = (dynamodb or client("dynamodb")).get_paginator("query")
    pages = paginator.paginate(
        TableName=table or table_name(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": f"ENV#{environment}"},
            ":prefix": {"S": prefix},
        },
    )
    return [item for page in pages for item in page["Items"]]


def ledger_records(
    environment: str, table: str | None = None, dynamodb: Any = None
) -> list[dict[str, Any]]:
    """Return every ledger record of an environment, oldest first."""
    records = [from_item(item) for item in query_items(environment, "REQUEST#", table, dynamodb)]
    return sorted(records, key=lambda record: record.get("finishedAt", 0))


def _infrastructure_key(environment: str) -> dict[str, Any]:
    return {"pk": {"S": f"ENV#{environment}"}, "sk": {"S": "INFRASTRUCTURE"}}


def read_infrastructure_record(environment: str) -> dict[str, Any] | None:
    """Return the last good Pulumi run's program fingerprint and drift-check time, if any."""
    item = (
        client("dynamodb")
        .get_item(TableName=table_name(), Key=_infrastructure_key(environment))
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
    client("dynamodb").put_item(TableName=table_name(), Item=item)


def clear_infrastructure_record(environment: str) -> None:
    """Forget the last clean Pulumi run, so the next deployment runs the drift check."""
    client("dynamodb").delete_item(TableName=table_name(), Key=_infrastructure_key(environment))
