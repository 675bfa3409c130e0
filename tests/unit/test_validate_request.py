"""ValidateRequest: bad input is rejected with every problem listed at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.common.errors import InvalidRequest
from lambdas.validate_request import validate

VALID = {
    "environment": "dev",
    "version": "v1",
    "bundle": "s3://bundles-bucket/bundles/dev/abc.zip",
    "requestId": "r-1",
    "trigger": "github",
}


def test_valid_request_is_normalized(environments_file: Path) -> None:
    request = validate(VALID)

    assert request.request_id == "r-1"
    assert request.model_dump(by_alias=True)["requestId"] == "r-1"
    assert request.started_by == "unknown"


def test_every_problem_is_listed(environments_file: Path) -> None:
    bad = {"environment": "qa", "version": "not a label!", "bundle": "x.tar", "extra": 1}

    with pytest.raises(InvalidRequest) as raised:
        validate(bad)

    message = str(raised.value)
    assert "5 problems" in message
    assert "version:" in message
    assert "bundle:" in message
    assert "requestId: Field required" in message
    assert "extra: Extra inputs are not permitted" in message
    assert "'qa' is not a managed environment" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("trigger", "cron"),
        ("requestId", "has spaces"),
        ("bundle", "https://example.invalid/app.zip"),
        ("version", ""),
        ("options", {"unknownOption": True}),
    ],
)
def test_invalid_field_is_named(environments_file: Path, field: str, value: object) -> None:
    with pytest.raises(InvalidRequest, match=field):
        validate({**VALID, field: value})


def test_non_object_input_is_rejected(environments_file: Path) -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        validate(["dev"])


def test_single_problem_is_singular(environments_file: Path) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate({**VALID, "version": "not a label!"})

    message = str(raised.value)
    assert "(1 problem)" in message
    assert "version:" in message
