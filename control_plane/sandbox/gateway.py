"""WSGI front of the sandbox's AWS endpoint.

It serves the calls moto cannot serve faithfully (Lambda Invoke, Elastic Beanstalk, CodeBuild
builds), applies armed faults to S3 reads of the Pulumi checkpoint, serves the sandbox's own
control API under /_sandbox/, and passes everything else to moto unchanged.

An armed throttle fails the task handlers' calls (marked by their user agent) and Step
Functions' Lambda invocations with the service's throttling error. Calls of the sandbox itself,
the CodeBuild runner and the local Pulumi engine are never throttled, so a throttle count only
depends on what the control plane does.
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from botocore.exceptions import ClientError

from lambdas.common.aws import USER_AGENT

from . import throttling
from .codebuild import ProjectNotFound
from .faults import ENGINE_USER_AGENT, TaskFault

if TYPE_CHECKING:
    from .sandbox import Sandbox

LOG = logging.getLogger(__name__)
StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
_CHECKPOINT_PATH = re.compile(r"^/(?P<bucket>[^/]+)/(?:.+/)?\.pulumi/stacks/.+\.json(?:\.gz)?$")


def _respond(
    start_response: StartResponse, status: int, body: bytes, content_type: str, **headers: str
) -> list[bytes]:
    reasons = {
        200: "OK",
        400: "Bad Request",
        404: "Not Found",
        429: "Too Many Requests",
        500: "Internal Server Error",
        503: "Slow Down",
    }
    header_list = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    header_list += [("x-amzn-RequestId", str(uuid.uuid4()))]
    header_list += list(headers.items())
    start_response(f"{status} {reasons.get(status, 'Error')}", header_list)
    return [body]


def _body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


class SandboxGateway:
    def __init__(self, moto_app: WsgiApp, sandbox: Sandbox) -> None:
        self._moto_app = moto_app
        self._sandbox = sandbox

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self._route(environ, start_response)
        except Exception as error:
            LOG.exception("sandbox gateway failed on %s", environ.get("PATH_INFO"))
            body = json.dumps({"__type": "ServiceException", "message": f"sandbox: {error!r}"})
            return _respond(start_response, 500, body.encode(), "application/json")

    def _route(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_sandbox/"):
            return self._control(path, start_response)
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = scope.group("service") if scope else ""
        throttled = self._throttle(environ, service, start_response)
        if throttled is not None:
            return throttled
        if service == "lambda" and (match := _INVOKE_PATH.match(path)):
            return self._invoke(match.group("name"), _body(environ), start_response)
        if service == "elasticbeanstalk":
            params = dict(parse_qsl(_body(environ).decode("utf-8"), keep_blank_values=True))
            status, xml = self._sandbox.eb.handle(params, region=scope.group("region"))
            return _respond(start_response, status, xml.encode("utf-8"), "text/xml")
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if service == "codebuild" and target.endswith((".StartBuild", ".BatchGetBuilds")):
            return self._codebuild(target.rsplit(".", 1)[1], _body(environ), start_response)
        if service == "s3" and environ.get("REQUEST_METHOD") == "GET":
            blocked = self._checkpoint_read_blocked(path, environ.get("HTTP_USER_AGENT", ""))
            if blocked:
                return self._no_such_key(path, start_response)
            response = self._moto_app(environ, start_response)
            # A held Pulumi lock is released once enough lock checks have read it.
            self._sandbox.faults.object_read(path)
            return response
        return self._moto_app(environ, start_response)

    def _invoke(self, name: str, payload: bytes, start_response: StartResponse) -> list[bytes]:
        spec = self._sandbox.lambdas.function_for(name)
        if spec is None:
            body = json.dumps({"Type": "User", "Message": f"Function not found: {name}"})
            return _respond(
                start_response,
                404,
                body.encode(),
                "application/json",
                **{"x-amzn-ErrorType": "ResourceNotFoundException"},
            )
        response, function_error = self._sandbox.lambdas.invoke(
            spec, payload, fault=self._task_fault(payload), sleep=self._sandbox.clock.sleep
        )
        headers = {"X-Amz-Executed-Version": "$LATEST"}
        if function_error:
            headers["X-Amz-Function-Error"] = function_error
        return _respond(start_response, 200, response, "application/json", **headers)

    def _throttle(
        self, environ: dict[str, Any], signing_name: str, start_response: StartResponse
    ) -> list[bytes] | None:
        """Return the service's throttling error for the call while a throttle is armed for it."""
        services = [
            name
            for name in sorted(self._sandbox.faults.throttled_services())
            if throttling.signing_name(name) == signing_name
        ]
        if not services:
            return None
        from_control_plane = USER_AGENT in environ.get("HTTP_USER_AGENT", "").split()
        # Only Step Functions calls Lambda; the task handlers call everything else.
        if signing_name != "lambda" and not from_control_plane:
            return None
        body = _body(environ)
        environ["wsgi.input"] = io.BytesIO(body)
        for name in services:
            call = throttling.identify_call(environ, name, body)
            if call is None or not self._sandbox.faults.take_throttle(name, call.operation):
                continue
            error = throttling.throttle_error(name, call.operation)
            document, content_type, headers = throttling.error_response(call, error)
            LOG.info("throttled %s %s with %s", name, call.operation, error.code)
            return _respond(start_response, error.status, document, content_type, **headers)
        return None

    def _task_fault(self, payload: bytes) -> TaskFault | None:
        """Return the armed fault for the task state that sent this invocation, if any.

        The invoking state is the one the execution entered last: Step Functions invokes the
        function synchronously, and every task payload carries the execution's ARN.
        """
        if not self._sandbox.faults.task_faults_pending():
            return None
        try:
            arn = json.loads(payload or b"{}").get("executionArn")
        except (ValueError, AttributeError):
            return None
        if not isinstance(arn, str):
            return None
        try:
            history = self._sandbox.client("stepfunctions").get_execution_history(executionArn=arn)
        except ClientError as error:
            LOG.warning("no task fault applied: history of %s not readable: %s", arn, error)
            return None
        for event in reversed(history["events"]):
            if event["type"].endswith("StateEntered"):
                return self._sandbox.faults.take_task_fault(
                    event["stateEnteredEventDetails"]["name"]
                )
        return None

    def _codebuild(self, action: str, body: bytes, start_response: StartResponse) -> list[bytes]:
        request = json.loads(body or b"{}")
        if action == "StartBuild":
            try:
                result = self._sandbox.codebuild.start_build(request)
            except ProjectNotFound as error:
                document = {"__type": "ResourceNotFoundException", "message": str(error)}
                return _respond(
                    start_response,
                    400,
                    json.dumps(document).encode(),
                    "application/x-amz-json-1.1",
                )
        else:
            result = self._sandbox.codebuild.batch_get_builds(request.get("ids", []))
        return _respond(
            start_response, 200, json.dumps(result).encode(), "application/x-amz-json-1.1"
        )

    def _checkpoint_read_blocked(self, path: str, user_agent: str) -> bool:
        match = _CHECKPOINT_PATH.match(path)
        if not match or match.group("bucket") != self._sandbox.resources.state_bucket:
            return False
        if ENGINE_USER_AGENT in user_agent:
            return False
        return self._sandbox.faults.take_checkpoint_read()

    @staticmethod
    def _no_such_key(path: str, start_response: StartResponse) -> list[bytes]:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code>'
            f"<Message>The specified key does not exist.</Message><Key>{path}</Key></Error>"
        )
        return _respond(start_response, 404, body.encode(), "application/xml")

    def _control(self, path: str, start_response: StartResponse) -> list[bytes]:
        if path == "/_sandbox/status":
            document = self._sandbox.status()
        else:
            return _respond(start_response, 404, b'{"message": "unknown"}', "application/json")
        return _respond(start_response, 200, json.dumps(document).encode(), "application/json")
