"""StartExecution input: any JSON value is a valid request or InvalidRequest, nothing else.

The input reaches ValidateRequest as Step Functions passes it: `{"input": <value>,
"executionArn": ...}`. Every other exception would end the execution as UnexpectedError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas import validate_request
from lambdas.common.errors import InvalidRequest
from lambdas.common.models import DeploymentRequest

EXECUTION_ARN = "arn:aws:states:us-east-1:123456789012:execution:Deploy:dev-r-1"
VALID = {
    "environment": "dev",
    "version": "v1",
    "bundle": "s3://bundles-bucket/bundles/dev/abc.zip",
    "requestId": "r-1",
    "trigger": "manual",
    "startedBy": "cli",
}
FIELDS = [*VALID, "options"]
# Values as the secret scan in the sandbox finds them: a token, an AWS key id, a key=value.
SECRET_VALUES = ["Zq8vK2mX7pR4tW9yB3nD6fHj", "AKIAQ2ZJ7RTW3EXAMPLE", "password=hunter2-x9"]


class Context:
    function_name = "ValidateRequest"
    aws_request_id = "fuzz"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ValidateRequest"


# JSON as Step Functions parses it: no NaN or infinity, strings without lone surrogates.
json_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(json_text, children, max_size=5)
    ),
    max_leaves=25,
)
# Requests close to valid, so the fuzzer reaches every field's own checks.
near_valid = st.fixed_dictionaries(
    {},
    optional={field: json_values | json_text for field in FIELDS}
    | {name: json_values for name in ("extra", "Options", "request_id")},
).map(lambda changes: {**VALID, **changes})


def run_handler(raw: Any) -> dict[str, Any] | InvalidRequest:
    try:
        return validate_request.handler({"input": raw, "executionArn": EXECUTION_ARN}, Context())
    except InvalidRequest as error:
        return error


@pytest.mark.usefixtures("environments_file")
@settings(max_examples=300)
@given(raw=json_values | near_valid)
def test_any_input_valid_or_invalid_request(raw: Any) -> None:
    outcome = run_handler(raw)

    if isinstance(outcome, InvalidRequest):
        message = str(outcome)
        assert message.startswith(("the deployment request is invalid", "the execution input"))
        assert "Traceback" not in message
    else:
        assert DeploymentRequest.model_validate(outcome).model_dump(by_alias=True) == outcome


@pytest.mark.usefixtures("environments_file")
@settings(max_examples=150)
@given(
    field=st.sampled_from([*FIELDS, "dbPassword"]),
    secret=st.sampled_from(SECRET_VALUES),
    wrap=st.sampled_from(["{}", "ci {}", "s3://bundles-bucket/{}.zip", "{}-1"]),
    nested=st.booleans(),
)
def test_secret_value_rejected_and_not_repeated(
    field: str, secret: str, wrap: str, nested: bool
) -> None:
    value: Any = wrap.format(secret)
    if field == "options" or nested:
        value = {"note": value} if field == "options" else [value]
    outcome = run_handler({**VALID, field: value})

    assert isinstance(outcome, InvalidRequest)
    assert secret not in str(outcome)
    assert "hunter2" not in str(outcome)


def test_fuzz_inputs_reach_a_valid_request(environments_file: Path) -> None:
    """The near-valid strategy's base is itself accepted, so the property covers both outcomes."""
    assert not isinstance(run_handler(dict(VALID)), InvalidRequest)
