"""The control plane's DynamoDB table, created in moto for tests that use it directly."""

from __future__ import annotations

from typing import Any


def create_ledger_table(dynamodb: Any, name: str) -> str:
    """Create the table with the stack's key schema (pk, sk) and return its name."""
    dynamodb.create_table(
        TableName=name,
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
    return name
