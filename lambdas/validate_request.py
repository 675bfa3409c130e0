"""ValidateRequest: check the execution input before anything is touched."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .common.errors import InvalidRequest
from .common.models import DeploymentRequest
from .common.observability import logger, task_handler
from .common.settings import current_settings, format_validation_error


def validate(raw: Any) -> DeploymentRequest:
    """Return the validated request, or raise InvalidRequest listing every problem at once."""
    problems: list[str] = []
    request: DeploymentRequest | None = None
    if not isinstance(raw, dict):
        raise InvalidRequest(f"the execution input must be a JSON object, got {type(raw).__name__}")
    try:
        request = DeploymentRequest.model_validate(raw)
    except ValidationError as error:
        problems.extend(format_validation_error(error).splitlines())
    environment = raw.get("environment")
    known = current_settings().environments
    if isinstance(environment, str) and environment and environment not in known:
        problems.append(
            f"environment: {environment!r} is not a managed environment "
            f"(known: {', '.join(sorted(known))}); add it to the environments file first"
        )
    if problems or request is None:
        listed = "\n".join(f"- {problem}" for problem in problems)
        count = f"{len(problems)} problem" if len(problems) == 1 else f"{len(problems)} problems"
        raise InvalidRequest(f"the deployment request is invalid ({count}):\n{listed}")
    return request


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = validate(event.get("input"))
    logger.info("request accepted", extra={"version": request.version, "trigger": request.trigger})
    return request.model_dump(by_alias=True, mode="json")
