"""ValidateRequest: check the execution input before anything is touched.

The request carries references only. A field that looks like a secret value, or is named like
one, is rejected, and no message repeats an input value that failed validation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, get_args

from pydantic import ValidationError

from .common.errors import InvalidRequest
from .common.models import (
    REQUEST_ID_PATTERN,
    S3_URI_PATTERN,
    VERSION_LABEL_PATTERN,
    DeploymentRequest,
    Trigger,
)
from .common.observability import logger, task_handler
from .common.secret_screen import is_secret_key_name, secret_kind
from .common.settings import ENVIRONMENT_NAME_PATTERN, current_settings

# A cause longer than this is cut; Step Functions keeps at most 32768 characters of it.
MAX_LISTED_PROBLEMS = 20
# Nested values past this many are not screened; the request model rejects them anyway.
MAX_SCREENED_VALUES = 1000
RECORDED_FIELD_PATTERNS = {
    "environment": ENVIRONMENT_NAME_PATTERN,
    "version": re.compile(VERSION_LABEL_PATTERN),
    "bundle": re.compile(S3_URI_PATTERN),
    "requestId": re.compile(REQUEST_ID_PATTERN),
    "trigger": re.compile("|".join(get_args(Trigger))),
    "startedBy": re.compile(r".{1,200}", re.DOTALL),
}
SECRET_ADVICE = (
    "the request carries references only: declare the secret under required_secrets in "
    "environments.yaml (SSM Parameter Store, Secrets Manager or the stack's config)"
)


def validate(raw: Any) -> DeploymentRequest:
    """Return the validated request, or raise InvalidRequest listing every problem at once."""
    if not isinstance(raw, dict):
        raise InvalidRequest(f"the execution input must be a JSON object, got {type(raw).__name__}")
    problems: list[str] = []
    request: DeploymentRequest | None = None
    try:
        request = DeploymentRequest.model_validate(raw)
    except ValidationError as error:
        problems.extend(_model_problems(error))
    problems.extend(_secret_problems(raw))
    environment = raw.get("environment")
    known = current_settings().environments
    if isinstance(environment, str) and environment and environment not in known:
        # The value is repeated only when it has the form of an environment name.
        label = (
            repr(environment) if ENVIRONMENT_NAME_PATTERN.fullmatch(environment) else "the value"
        )
        problems.append(
            f"environment: {label} is not a managed environment "
            f"(known: {', '.join(sorted(known))}); add it to the environments file first"
        )
    if problems or request is None:
        raise InvalidRequest(_problem_report(problems))
    return request


def _model_problems(error: ValidationError) -> list[str]:
    """Render pydantic's problems as `key.path: message`, hiding key names that look secret.

    pydantic's messages name the rule, never the input value.
    """
    lines = []
    for problem in error.errors():
        location = ".".join(_shown_key(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"{location}: {problem['msg']}")
    return lines


def _secret_problems(raw: dict[str, Any]) -> list[str]:
    problems = []
    for path, key, value in _walk(raw):
        location = ".".join(path)
        if key is not None and is_secret_key_name(key):
            problems.append(f"{location}: a field for a secret; {SECRET_ADVICE}")
        elif isinstance(value, str):
            kind = secret_kind(value)
            if kind is not None:
                problems.append(f"{location}: looks like a secret value ({kind}); {SECRET_ADVICE}")
    return problems


def _walk(value: Any) -> Iterator[tuple[list[str], str | None, Any]]:
    """Yield (path, key, value) for every value nested in the input, breadth first."""
    queue: list[tuple[list[str], str | None, Any]] = [([], None, value)]
    for index, (path, key, item) in enumerate(queue):
        if index >= MAX_SCREENED_VALUES:
            return
        if path:
            yield path, key, item
        if isinstance(item, dict):
            queue.extend(
                ([*path, _shown_key(name)], str(name), child) for name, child in item.items()
            )
        elif isinstance(item, list):
            queue.extend(([*path, str(number)], None, child) for number, child in enumerate(item))


def _shown_key(part: Any) -> str:
    text = str(part)
    return "<key that looks like a secret>" if secret_kind(text) else text


def _problem_report(problems: list[str]) -> str:
    count = f"{len(problems)} problem" if len(problems) == 1 else f"{len(problems)} problems"
    listed = "\n".join(f"- {problem}" for problem in problems[:MAX_LISTED_PROBLEMS])
    if len(problems) > MAX_LISTED_PROBLEMS:
        listed += f"\n- and {len(problems) - MAX_LISTED_PROBLEMS} more"
    return f"the deployment request is invalid ({count}):\n{listed}"


def recordable_fields(raw: dict[str, Any]) -> dict[str, str]:
    """Return the fields of a rejected input that may go into the ledger and notification.

    A field is kept only when it is valid on its own and does not look like a secret, so a
    rejected request never carries a secret into DynamoDB or SNS.
    """
    fields = {}
    for name, pattern in RECORDED_FIELD_PATTERNS.items():
        value = raw.get(name)
        if isinstance(value, str) and pattern.fullmatch(value) and secret_kind(value) is None:
            fields[name] = value
    return fields


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = validate(event.get("input"))
    logger.info("request accepted", extra={"version": request.version, "trigger": request.trigger})
    return request.model_dump(by_alias=True, mode="json")
