"""AWS API throttling as the sandbox injects it: which call is which, and AWS's error for it.

Each service throttles with its own error, and the SDKs retry it because botocore lists the code
as a throttling error (`botocore.retries.standard.ThrottledRetryableChecker`):

- Elastic Beanstalk and the other Query services: `Throttling`, HTTP 400, "Rate exceeded".
- DynamoDB: `ProvisionedThroughputExceededException` on the item and query operations that model
  it, `ThrottlingException` on the others, HTTP 400.
- S3: `SlowDown`, HTTP 503, "Please reduce your request rate."
- Lambda Invoke: `TooManyRequestsException`, HTTP 429, "Rate Exceeded.", which Step Functions
  reports as `Lambda.TooManyRequestsException`.
- Other JSON services (SSM, Secrets Manager, Step Functions): `ThrottlingException`, HTTP 400.

Service and operation names are botocore's, so a scenario names them as boto3 and the AWS docs do.
"""

from __future__ import annotations

import difflib
import json
import re
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import botocore.session
from botocore import xform_name

# Wire protocols whose requests and errors the sandbox can read and write.
SUPPORTED_PROTOCOLS = ("query", "json", "rest-json", "rest-xml")


class ThrottleSpecError(ValueError):
    """A throttle fault names a service or operation that botocore does not know."""


@dataclass(frozen=True)
class ThrottleError:
    """AWS's throttling error for one operation: code, HTTP status and message."""

    code: str
    status: int
    message: str


@dataclass(frozen=True)
class Call:
    """One AWS API call as the gateway receives it."""

    service: str
    operation: str
    protocol: str


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def service_model(service: str) -> Any:
    return _session().get_service_model(service)


def check_throttle(service: str, operation: str) -> None:
    """Raise ThrottleSpecError unless botocore models the operation and the sandbox can throttle it.

    The message suggests the closest names, for example DescribeEnvironments for
    describe_environments.
    """
    services = _session().get_available_services()
    if service not in services:
        close = difflib.get_close_matches(service, services, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ThrottleSpecError(
            f"service {service!r} is not a botocore service name{hint} "
            "(use the name boto3.client() takes, such as elasticbeanstalk or dynamodb)"
        )
    model = service_model(service)
    names = list(model.operation_names)
    if operation not in names:
        by_snake_case = {xform_name(name): name for name in names}
        close = [by_snake_case[operation]] if operation in by_snake_case else []
        close = close or difflib.get_close_matches(operation, names, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ThrottleSpecError(
            f"operation {operation!r} is not an operation of {service}{hint} "
            "(use the API name, such as DescribeEnvironments)"
        )
    protocol = model.metadata.get("protocol")
    if protocol not in SUPPORTED_PROTOCOLS:
        raise ThrottleSpecError(
            f"service {service} uses the {protocol} protocol, which the sandbox cannot throttle "
            f"(supported: {', '.join(SUPPORTED_PROTOCOLS)})"
        )


def signing_name(service: str) -> str:
    """Return the name in the request's SigV4 scope, e.g. `states` for stepfunctions."""
    metadata = service_model(service).metadata
    return str(metadata.get("signingName") or metadata["endpointPrefix"])


def throttle_error(service: str, operation: str) -> ThrottleError:
    """Return the error AWS sends for a throttled call of this operation."""
    if service == "lambda":
        return ThrottleError("TooManyRequestsException", 429, "Rate Exceeded.")
    if service == "s3":
        return ThrottleError("SlowDown", 503, "Please reduce your request rate.")
    if service == "dynamodb":
        modeled = {
            shape.name for shape in service_model(service).operation_model(operation).error_shapes
        }
        if "ProvisionedThroughputExceededException" in modeled:
            return ThrottleError(
                "ProvisionedThroughputExceededException",
                400,
                "The level of configured provisioned throughput for the table was exceeded. "
                "Consider increasing your provisioning level with the UpdateTable API.",
            )
        return ThrottleError(
            "ThrottlingException", 400, "Rate of requests exceeds the allowed throughput."
        )
    if service_model(service).metadata.get("protocol") == "query":
        return ThrottleError("Throttling", 400, "Rate exceeded")
    return ThrottleError("ThrottlingException", 400, "Rate exceeded")


def identify_call(environ: dict[str, Any], service: str, body: bytes) -> Call | None:
    """Return the operation of a request already known to be for `service`, or None."""
    model = service_model(service)
    protocol = model.metadata.get("protocol", "")
    if protocol == "query":
        params = dict(parse_qsl(body.decode("utf-8", "replace")))
        params.update(parse_qsl(environ.get("QUERY_STRING", "")))
        operation = params.get("Action")
    elif protocol == "json":
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rsplit(".", 1)[-1] if target else None
    else:
        operation = _rest_operation(
            service,
            environ.get("REQUEST_METHOD", ""),
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
        )
    if not operation:
        return None
    return Call(service=service, operation=operation, protocol=protocol)


def _rest_operation(service: str, method: str, path: str, query: str) -> str | None:
    """Match a REST request to the operation whose method, path and query keys fit best."""
    keys = {key for key, _ in parse_qsl(query, keep_blank_values=True)}
    best: tuple[int, str] | None = None
    for name, pattern, required in _rest_routes(service).get(method, []):
        if not pattern.match(path) or not required <= keys:
            continue
        score = len(required) * 100 + len(pattern.pattern)
        if best is None or score > best[0]:
            best = (score, name)
    return best[1] if best else None


@cache
def _rest_routes(service: str) -> dict[str, list[tuple[str, re.Pattern[str], frozenset[str]]]]:
    """Compile each operation's requestUri, such as `/{Bucket}/{Key+}?uploads`, into a route."""
    model = service_model(service)
    routes: dict[str, list[tuple[str, re.Pattern[str], frozenset[str]]]] = {}
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri, _, query = http["requestUri"].partition("?")
        pattern = re.escape(uri)
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", pattern)
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        required = frozenset(item.split("=", 1)[0] for item in query.split("&") if item)
        route = (name, re.compile(f"^{pattern}/?$"), required)
        routes.setdefault(http["method"], []).append(route)
    return routes


def error_response(call: Call, error: ThrottleError) -> tuple[bytes, str, dict[str, str]]:
    """Render the error in the call's wire protocol: body, content type and extra headers."""
    request_id = str(uuid.uuid4())
    if call.protocol == "query":
        namespace = service_model(call.service).metadata.get("xmlNamespace", "")
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type>'
            f"<Code>{error.code}</Code><Message>{error.message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return body.encode(), "text/xml", {}
    if call.protocol == "rest-xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f"<Error><Code>{error.code}</Code><Message>{error.message}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        return body.encode(), "application/xml", {}
    if call.protocol == "rest-json":
        document: dict[str, str] = {"message": error.message}
        if call.service == "lambda":
            document = {
                "Reason": "ConcurrentInvocationLimitExceeded",
                "Type": "User",
                "message": error.message,
            }
        headers = {"x-amzn-ErrorType": error.code}
        return json.dumps(document).encode(), "application/json", headers
    json_version = service_model(call.service).metadata.get("jsonVersion", "1.0")
    document = {"__type": error.code, "message": error.message}
    return json.dumps(document).encode(), f"application/x-amz-json-{json_version}", {}
