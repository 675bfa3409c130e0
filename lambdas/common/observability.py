"""Structured logging for the task handlers.

Every line carries the environment, the request id and, as correlation id, the execution ARN,
so an operator can follow one deployment across all tasks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

logger = Logger(service="control-plane")

Handler = Callable[[dict[str, Any], Any], Any]


def task_handler(function: Handler) -> Handler:
    """Wrap a task handler so each log line names the environment and request."""

    @logger.inject_lambda_context(clear_state=True)
    @functools.wraps(function)
    def wrapper(event: dict[str, Any], context: Any) -> Any:
        request = event.get("request") if isinstance(event, dict) else None
        if isinstance(request, dict):
            logger.append_keys(
                environment=request.get("environment"), request_id=request.get("requestId")
            )
        elif isinstance(event, dict):
            logger.append_keys(
                environment=event.get("environment"), request_id=event.get("requestId")
            )
        if isinstance(event, dict) and isinstance(event.get("executionArn"), str):
            logger.set_correlation_id(event["executionArn"])
        return function(event, context)

    return wrapper
