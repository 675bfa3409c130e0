"""Runs the task Lambdas in-process, as the Lambda service would run them.

moto without Docker only echoes Lambda payloads, so the sandbox handles Invoke itself: it imports
the handler named in the synthesized template and calls it with the event and a context object.
An exception becomes a function error whose payload has the exception's class name as
`errorType`, which Step Functions reports as the error name, exactly as on AWS.
"""

from __future__ import annotations

import importlib
import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Invocation:
    function: str
    event: Any
    error_type: str | None


# Called before a handler runs; may raise to simulate a crash (fault injection).
BeforeInvoke = Callable[[FunctionSpec, Any], None]


class LambdaRuntime:
    """Dispatches Invoke calls to the handlers of the template's functions."""

    def __init__(self, functions: dict[str, FunctionSpec], account_id: str, region: str) -> None:
        self._functions = functions
        self._account_id = account_id
        self._region = region
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        self._lock = threading.Lock()
        self.invocations: list[Invocation] = []
        self.before_invoke: BeforeInvoke | None = None

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

    def invoke(self, spec: FunctionSpec, payload: bytes) -> tuple[bytes, str | None]:
        """Run the handler; return the response payload and the function error kind, if any."""
        event = json.loads(payload or b"{}")
        context = LambdaContext(
            function_name=spec.name,
            invoked_function_arn=(
                f"arn:aws:lambda:{self._region}:{self._account_id}:function:{spec.name}"
            ),
        )
        try:
            if self.before_invoke is not None:
                self.before_invoke(spec, event)
            result = self._handler(spec)(event, context)
        except Exception as error:
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
