"""The sandbox's throttling errors are the ones AWS sends and botocore retries as throttling.

Each error is parsed by botocore's own response parser for the service's protocol and then
classified by botocore's standard retry checkers, so the test fails when the sandbox's error
would not look like AWS's to the SDK.
"""

from __future__ import annotations

import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from botocore.retries import standard

from control_plane.sandbox.throttling import (
    Call,
    ThrottleSpecError,
    check_throttle,
    error_response,
    identify_call,
    service_model,
    signing_name,
    throttle_error,
)


def parse_error(service: str, operation: str) -> tuple[dict, int]:
    """Render the sandbox's throttling error and parse it as botocore would."""
    model = service_model(service)
    call = Call(service, operation, model.metadata["protocol"])
    error = throttle_error(service, operation)
    body, content_type, headers = error_response(call, error)
    response = {
        "status_code": error.status,
        "headers": HeadersDict({"content-type": content_type, **headers}),
        "body": body,
    }
    parser = create_parser(call.protocol)
    return parser.parse(response, model.operation_model(operation).output_shape), error.status


@pytest.mark.parametrize(
    ("service", "operation", "code", "status", "message"),
    [
        ("elasticbeanstalk", "DescribeEnvironments", "Throttling", 400, "Rate exceeded"),
        ("dynamodb", "PutItem", "ProvisionedThroughputExceededException", 400, "provisioned"),
        ("dynamodb", "DescribeTable", "ThrottlingException", 400, "allowed throughput"),
        ("s3", "GetObject", "SlowDown", 503, "reduce your request rate"),
        ("lambda", "Invoke", "TooManyRequestsException", 429, "Rate Exceeded."),
        ("ssm", "DescribeParameters", "ThrottlingException", 400, "Rate exceeded"),
        ("sns", "Publish", "Throttling", 400, "Rate exceeded"),
        ("stepfunctions", "DescribeExecution", "ThrottlingException", 400, "Rate exceeded"),
    ],
)
def test_throttle_error_parses_as_aws_error(
    service: str, operation: str, code: str, status: int, message: str
) -> None:
    parsed, http_status = parse_error(service, operation)

    assert parsed["Error"]["Code"] == code
    assert message in parsed["Error"]["Message"]
    assert http_status == status


@pytest.mark.parametrize(
    ("service", "operation"),
    [
        ("elasticbeanstalk", "DescribeEnvironments"),
        ("dynamodb", "PutItem"),
        ("s3", "GetObject"),
        ("lambda", "Invoke"),
        ("secretsmanager", "GetSecretValue"),
    ],
)
def test_throttle_error_is_retried_as_throttling_by_botocore(service: str, operation: str) -> None:
    parsed, status = parse_error(service, operation)
    context = standard.RetryContext(
        attempt_number=1,
        operation_model=service_model(service).operation_model(operation),
        parsed_response=parsed,
        http_response=type("Response", (), {"status_code": status})(),
    )

    assert standard.ThrottledRetryableChecker().is_retryable(context)


@pytest.mark.parametrize(
    ("service", "operation", "message"),
    [
        ("beanstalk", "DescribeEnvironments", "did you mean elasticbeanstalk"),
        ("elasticbeanstalk", "describe_environments", "did you mean DescribeEnvironments"),
        ("elasticbeanstalk", "DescribeEnvironment", "did you mean DescribeEnvironments"),
        ("dynamodb", "Shout", "not an operation of dynamodb"),
        ("cloudwatch", "PutMetricData", "cannot throttle"),
    ],
)
def test_unknown_names_are_rejected_with_a_hint(service: str, operation: str, message: str) -> None:
    with pytest.raises(ThrottleSpecError, match=message):
        check_throttle(service, operation)


def test_signing_name_is_the_sigv4_scope_name() -> None:
    assert signing_name("stepfunctions") == "states"
    assert signing_name("elasticbeanstalk") == "elasticbeanstalk"


@pytest.mark.parametrize(
    ("service", "environ", "body", "operation"),
    [
        (
            "elasticbeanstalk",
            {},
            b"Action=DescribeEnvironments&Version=2010-12-01",
            "DescribeEnvironments",
        ),
        ("dynamodb", {"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.UpdateItem"}, b"{}", "UpdateItem"),
        ("s3", {"REQUEST_METHOD": "GET", "PATH_INFO": "/bucket/a/b.json"}, b"", "GetObject"),
        ("s3", {"REQUEST_METHOD": "HEAD", "PATH_INFO": "/bucket/a.zip"}, b"", "HeadObject"),
        (
            "s3",
            {"REQUEST_METHOD": "GET", "PATH_INFO": "/bucket", "QUERY_STRING": "list-type=2"},
            b"",
            "ListObjectsV2",
        ),
        (
            "lambda",
            {"REQUEST_METHOD": "POST", "PATH_INFO": "/2015-03-31/functions/f/invocations"},
            b"{}",
            "Invoke",
        ),
    ],
)
def test_identify_call_names_the_operation(
    service: str, environ: dict, body: bytes, operation: str
) -> None:
    call = identify_call(environ, service, body)

    assert call is not None
    assert call.operation == operation
