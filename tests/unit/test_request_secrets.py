"""ValidateRequest rejects secret values in the execution input and never repeats them."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest

from lambdas.common.errors import InvalidRequest
from lambdas.common.secret_screen import secret_kind
from lambdas.record import build_record
from lambdas.validate_request import recordable_fields, validate

VALID = {
    "environment": "dev",
    "version": "v1",
    "bundle": "s3://bundles-bucket/bundles/dev/abc.zip",
    "requestId": "r-1",
    "trigger": "github",
}
# A value shaped like the sandbox's seeded secrets (secrets.token_urlsafe(18)).
TOKEN = "q7Rk2Zp9XwL4mN8vT3bY6cHd"
AWS_KEY_ID = "AKIAQ2ZJ7RTW3EXAMPLE"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("startedBy", f"deployer {AWS_KEY_ID}"),
        ("startedBy", "ci password=hunter2"),
        ("startedBy", TOKEN),
        ("version", TOKEN),
        ("requestId", TOKEN),
        ("bundle", f"s3://bundles-bucket/{TOKEN}.zip"),
        ("environment", TOKEN),
    ],
)
def test_secret_value_in_field_rejected(environments_file: Path, field: str, value: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate({**VALID, field: value})

    message = str(raised.value)
    assert f"{field}: looks like a secret value" in message
    assert "required_secrets in environments.yaml" in message
    assert value not in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    "options",
    [
        {"dbPassword": "hunter2"},
        {"api_key": "x"},
        {"nested": {"token": "abc"}},
        {"env": [{"name": "DB", "value": TOKEN}]},
    ],
)
def test_secret_in_options_rejected(environments_file: Path, options: dict) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate({**VALID, "options": options})

    message = str(raised.value)
    assert "secret" in message
    assert "hunter2" not in message
    assert TOKEN not in message


def test_key_that_looks_secret_not_repeated(environments_file: Path) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate({**VALID, TOKEN: 1})

    message = str(raised.value)
    assert TOKEN not in message
    assert "<key that looks like a secret>: Extra inputs are not permitted" in message


def test_unmanaged_environment_repeated_only_when_name_shaped(environments_file: Path) -> None:
    with pytest.raises(InvalidRequest) as named:
        validate({**VALID, "environment": "qa"})
    with pytest.raises(InvalidRequest) as odd:
        validate({**VALID, "environment": "Not An Environment!"})

    assert "'qa' is not a managed environment" in str(named.value)
    assert "the value is not a managed environment" in str(odd.value)
    assert "Not An Environment!" not in str(odd.value)


@pytest.mark.parametrize(
    "value",
    [
        "v1.2.3",
        "2024.01.15-build42",
        "f75cb8a88c4651bfd893ffa53c51643762fe1c0d",
        "GitHubActionsDeployRole2024",
        "arn:aws:sts::123456789012:assumed-role/GitHubActions/GitHubActions",
        "cli",
        "gh-1234567890-1",
        "s3://bundles-bucket/bundles/dev/" + "0" * 64 + ".zip",
    ],
)
def test_ordinary_values_not_taken_for_secrets(value: str) -> None:
    assert secret_kind(value) is None


def test_random_tokens_taken_for_secrets() -> None:
    # Seeded, so the run is the same each time; the alphabet is secrets.token_urlsafe's.
    generator = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "-_"
    tokens = ["".join(generator.choices(alphabet, k=24)) for _ in range(200)]

    found = sum(secret_kind(token) is not None for token in tokens)

    # The heuristic misses tokens without a digit or an upper-case letter, about 3 % of them.
    assert found >= 180


def test_rejected_input_recorded_without_secret() -> None:
    state = {
        "environment": "dev",
        "version": TOKEN,
        "requestId": "r-1",
        "startedBy": f"ci {AWS_KEY_ID}",
        "failure": {"Error": "InvalidRequest", "Cause": "the deployment request is invalid"},
    }

    record = build_record(state, "arn:aws:states:us-east-1:1:execution:m:dev-r-1", "dev-r-1")

    assert record["environment"] == "dev"
    assert record["requestId"] == "r-1"
    assert record["version"] is None
    assert record["startedBy"] is None
    assert TOKEN not in str(record)
    assert AWS_KEY_ID not in str(record)


def test_recordable_fields_keep_valid_ones() -> None:
    fields = recordable_fields({**VALID, "startedBy": "cli", "version": "not a label!"})

    assert fields == {
        "environment": "dev",
        "bundle": VALID["bundle"],
        "requestId": "r-1",
        "trigger": "github",
        "startedBy": "cli",
    }
