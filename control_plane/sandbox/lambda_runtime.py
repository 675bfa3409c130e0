"""Runs the task Lambdas in-process, as the Lambda service would run them.

moto without Docker only echoes Lambda payloads, so the sandbox handles Invoke itself: it imports
the handler named in the synthesized template and calls it with the event and a context object.
An exception becomes a function error whose payload has the exception's class name as
`errorType`, which Step Functions reports as the error name, exactly as on AWS.

Injected faults fail an invocation the way the Lambda service does. A timed-out invocation
returns errorType `Sandbox.Timedout` and "Task timed out after N.00 seconds", after the
function's timeout has passed on the virtual clock. A crashed one returns errorType
`Runtime.ExitError`, as when the runtime process exits. In both cases the handler runs to the
end first and only its response is lost. That is the hardest case for a retried task, because
its side effects already happened.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .faults import TaskFault

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function of the template: its handler path and resolved environment."""

    name: str
    handler: str
    environment: dict[str, str]
    timeout_seconds: int = 60


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    timeout_seconds: int = 60

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


@dataclass
class Invocation:
    function: str
    event: Any
    error_type: str | None


def fault_payload(fault: TaskFault, spec: FunctionSpec, request_id: str) -> dict[str, str]:
    """Return the error document Lambda sends for a timed-out or crashed invocation.

    Lambda's own texts: "RequestId: <id> Error: Task timed out after 3.00 seconds" with errorType
    Sandbox.Timedout (Lambda developer guide, "Troubleshoot invocation issues"), and "Runtime
    exited with error: exit status 1" with errorType Runtime.ExitError.
    """
    if fault is TaskFault.TIMEOUT:
        return {
            "errorType": "Sandbox.Timedout",
            "errorMessage": (
                f"RequestId: {request_id} Error: Task timed out after "
                f"{spec.timeout_seconds:.2f} seconds"
            ),
        }
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: exit status 1",
    }


class LambdaRuntime:
    """Dispatches Invoke calls to the handlers of the template's functions."""

    def __init__(self, functions: dict[str, FunctionSpec], account_id: str, region: str) -> None:
        self._functions = functions
        self._account_id = account_id
        self._region = region
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []

    def function_for(self, name_or_arn: str) -> FunctionSpec | None:
        name = name_or_arn.split(":function:")[-1].split(":")[0]
        return self._functions.get(name)

    def _handler(self, spec: FunctionSpec) -> Callable[[Any, Any], Any]:
        with self._lock:
            if spec.handler not in self._handlers:
                module_name, _, attribute = spec.handler.rpartition(".")
                self._handlers[spec.handler] = getattr(
                    importlib.import_module(module_name), attribute
                )
            return self._handlers[spec.handler]

    def invoke(
        self,
        spec: FunctionSpec,
        payload: bytes,
        *,
        fault: TaskFault | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> tuple[bytes, str | None]:
        """Run the handler; return the response payload and the function error kind, if any.

        With `fault`, the invocation then fails as Lambda reports that fault; a timeout first
        lets the function's timeout pass through `sleep`.
        """
        event = json.loads(payload or b"{}")
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=(
                f"arn:aws:lambda:{self._region}:{self._account_id}:function:{spec.name}"
            ),
            timeout_seconds=spec.timeout_seconds,
        )
        error: Exception | None = None
        try:
            result = self._handler(spec)(event, context)
        except Exception as caught:
            error = caught

        if fault is not None:
            if fault is TaskFault.TIMEOUT:
                sleep(spec.timeout_seconds)
            document = fault_payload(fault, spec, context.aws_request_id)
            LOG.info("injected %s in %s", fault.value, spec.name)
            self.invocations.append(Invocation(spec.name, event, document["errorType"]))
            return json.dumps(document).encode(), "Unhandled"
        if error is not None:
            self.invocations.append(Invocation(spec.name, event, type(error).__name__))
            body = {
                "errorType": type(error).__name__,
                "errorMessage": str(error),
                "requestId": context.aws_request_id,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            return json.dumps(body).encode(), "Unhandled"
        self.invocations.append(Invocation(spec.name, event, None))
        return json.dumps(result).encode(), None
