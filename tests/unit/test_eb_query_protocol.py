"""Round trips between botocore's Query serializer and parser and the simulator's counterparts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from control_plane.sandbox.eb.errors import ElasticBeanstalkError
from control_plane.sandbox.eb.query_protocol import (
    format_timestamp,
    operation_model,
    parse_request,
    serialize_error,
    serialize_result,
)

WHEN = datetime(2026, 1, 1, 0, 5, 0, 250000, tzinfo=UTC)


def form_fields(operation: str, parameters: dict) -> dict[str, str]:
    """Serialize ``parameters`` as botocore does and return the form fields as strings."""
    request = create_serializer("query").serialize_to_request(
        parameters, operation_model(operation)
    )
    return {key: str(value) for key, value in request["body"].items()}


def parse_response(operation: str, xml: str, status: int = 200) -> dict:
    model = operation_model(operation)
    response = {"status_code": status, "headers": {}, "body": xml.encode()}
    return create_parser("query").parse(response, model.output_shape)


@pytest.mark.parametrize(
    ("operation", "parameters"),
    [
        (
            "CreateEnvironment",
            {
                "ApplicationName": "shop",
                "EnvironmentName": "shop-dev",
                "VersionLabel": "v1",
                "Tier": {"Name": "WebServer", "Type": "Standard"},
                "Tags": [{"Key": "team", "Value": "web"}, {"Key": "cost", "Value": "42"}],
                "OptionSettings": [
                    {
                        "Namespace": "aws:elasticbeanstalk:application:environment",
                        "OptionName": "APP_VERSION",
                        "Value": "v1",
                    },
                    {"ResourceName": "AWSEBAutoScalingGroup", "Namespace": "n", "OptionName": "o"},
                ],
            },
        ),
        (
            "DescribeEnvironments",
            {
                "EnvironmentNames": ["shop-dev", "shop-prod"],
                "IncludeDeleted": False,
                "IncludedDeletedBackTo": WHEN,
                "MaxRecords": 5,
            },
        ),
        ("DescribeEnvironments", {"EnvironmentIds": []}),
        (
            "DescribeEvents",
            {"ApplicationName": "shop", "Severity": "WARN", "StartTime": WHEN, "MaxRecords": 10},
        ),
        (
            "CreateApplicationVersion",
            {
                "ApplicationName": "shop",
                "VersionLabel": "v1",
                "SourceBundle": {"S3Bucket": "bundles", "S3Key": "shop/v1.zip"},
                "Process": True,
                "AutoCreateApplication": False,
            },
        ),
        (
            "UpdateTagsForResource",
            {
                "ResourceArn": "arn:x",
                "TagsToAdd": [{"Key": "a", "Value": "b"}],
                "TagsToRemove": ["c"],
            },
        ),
        ("DescribeEnvironmentHealth", {"EnvironmentName": "shop-dev", "AttributeNames": ["All"]}),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_parse_request_inverts_botocore_serializer(operation, parameters):
    parsed = parse_request(operation_model(operation), form_fields(operation, parameters))

    assert parsed == parameters


def test_parse_request_rejects_missing_required_member():
    with pytest.raises(ElasticBeanstalkError) as raised:
        parse_request(operation_model("CreateApplication"), {"Action": "CreateApplication"})

    assert raised.value.code == "MissingRequiredParameter"
    assert "ApplicationName" in raised.value.message


@pytest.mark.parametrize(
    ("operation", "fields"),
    [
        ("DescribeEnvironments", {"IncludeDeleted": "yes"}),
        ("DescribeEvents", {"MaxRecords": "ten"}),
        ("DescribeEvents", {"StartTime": "yesterday"}),
    ],
)
def test_parse_request_rejects_malformed_scalar(operation, fields):
    with pytest.raises(ElasticBeanstalkError) as raised:
        parse_request(operation_model(operation), fields)

    assert raised.value.code == "InvalidParameterValue"
    assert next(iter(fields)) in raised.value.message


ENVIRONMENT = {
    "EnvironmentName": "shop-dev",
    "EnvironmentId": "e-abcdefghij",
    "ApplicationName": "shop",
    "VersionLabel": "v1",
    "EndpointURL": "127.0.0.1:8000",
    "CNAME": "127.0.0.1:8000",
    "DateCreated": WHEN,
    "DateUpdated": WHEN,
    "Status": "Updating",
    "AbortableOperationInProgress": True,
    "Health": "Grey",
    "HealthStatus": "Pending",
    "Tier": {"Name": "WebServer", "Type": "Standard", "Version": "1.0"},
    "EnvironmentLinks": [],
    "EnvironmentArn": "arn:aws:elasticbeanstalk:us-east-1:123456789012:environment/shop/shop-dev",
}


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("DescribeEnvironments", {"Environments": [ENVIRONMENT, ENVIRONMENT], "NextToken": "2"}),
        ("DescribeEnvironments", {"Environments": []}),
        ("UpdateEnvironment", ENVIRONMENT),
        (
            "DescribeEvents",
            {
                "Events": [
                    {
                        "EventDate": WHEN,
                        "Message": "createEnvironment is starting.",
                        "ApplicationName": "shop",
                        "EnvironmentName": "shop-dev",
                        "RequestId": "r-1",
                        "Severity": "INFO",
                    }
                ]
            },
        ),
        (
            "DescribeEnvironmentHealth",
            {
                "EnvironmentName": "shop-dev",
                "HealthStatus": "Severe",
                "Status": "Ready",
                "Color": "Red",
                "Causes": ["Following services are not running: web."],
                "ApplicationMetrics": {"RequestCount": 0},
                "InstancesHealth": {"Ok": 0, "Severe": 1},
                "RefreshedAt": WHEN,
            },
        ),
        (
            "ListTagsForResource",
            {"ResourceArn": "arn:x", "ResourceTags": [{"Key": "team", "Value": "web"}]},
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_serialize_result_parses_back_with_botocore(operation, result):
    xml = serialize_result(operation_model(operation), result, "request-1")

    parsed = parse_response(operation, xml)

    metadata = parsed.pop("ResponseMetadata")
    assert metadata["RequestId"] == "request-1"
    assert parsed == result


def test_serialize_result_without_output_shape_has_only_metadata():
    xml = serialize_result(operation_model("DeleteApplication"), None, "request-2")

    assert xml.startswith('<DeleteApplicationResponse xmlns="http://elasticbeanstalk')
    assert parse_response("DeleteApplication", xml)["ResponseMetadata"]["RequestId"] == "request-2"


def test_serialize_result_writes_aws_scalar_formats():
    xml = serialize_result(operation_model("UpdateEnvironment"), ENVIRONMENT, "request-3")

    assert "<DateCreated>2026-01-01T00:05:00.250Z</DateCreated>" in xml
    assert "<AbortableOperationInProgress>true</AbortableOperationInProgress>" in xml
    assert "<UpdateEnvironmentResult>" in xml


def test_serialize_result_rejects_unknown_member():
    with pytest.raises(ValueError, match="Colour"):
        serialize_result(operation_model("DescribeEnvironmentHealth"), {"Colour": "Red"}, "r")


def test_serialize_error_parses_back_with_botocore():
    error = ElasticBeanstalkError(
        "InvalidParameterValue",
        "Environment named shop-dev is in an invalid state for this operation. Must be Ready.",
    )

    parsed = parse_response("UpdateEnvironment", serialize_error(error, "request-4"), status=400)

    assert parsed["Error"]["Code"] == "InvalidParameterValue"
    assert parsed["Error"]["Message"] == error.message
    assert parsed["Error"]["Type"] == "Sender"
    assert parsed["ResponseMetadata"]["RequestId"] == "request-4"


def test_format_timestamp_accepts_epoch_seconds():
    assert format_timestamp(WHEN.timestamp()) == "2026-01-01T00:05:00.250Z"
