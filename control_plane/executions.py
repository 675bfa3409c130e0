"""Start deployments and read their outcome from the Step Functions execution history."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .bundle import checksum

TERMINAL_STATUSES = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
MAX_EXECUTION_NAME_LENGTH = 80


def execution_name(environment: str, request_id: str) -> str:
    """Derive the execution name, so a retried StartExecution of one request is idempotent.

    The name is `<environment>-<requestId>`. Step Functions allows at most 80 characters, so a
    longer name keeps its first 63 characters and ends in `-` and 16 hex digits of its sha256.
    Two request ids that share a long prefix therefore still get different names.
    """
    name = f"{environment}-{request_id}"
    if len(name) <= MAX_EXECUTION_NAME_LENGTH:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:16]
    return f"{name[: MAX_EXECUTION_NAME_LENGTH - len(digest) - 1]}-{digest}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """Return the ARN of the state machine's execution called `name`."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def upload_bundle(s3: Any, bucket: str, environment: str, data: bytes) -> str:
    """Upload a bundle under its checksum and return its s3:// URI."""
    key = f"bundles/{environment}/{checksum(data)}.zip"
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def start_deployment(
    sfn: Any, state_machine_arn: str, request: dict[str, Any], *, name: str | None = None
) -> str:
    """Start the execution and return its ARN.

    While the execution of the same name runs with the same input, Step Functions returns its
    ARN again. Once it has ended, or when the input differs, StartExecution fails with
    ExecutionAlreadyExists.
    """
    name = name or execution_name(str(request.get("environment")), str(request.get("requestId")))
    response = sfn.start_execution(
        stateMachineArn=state_machine_arn, name=name, input=json.dumps(request)
    )
    return response["executionArn"]


class RequestConflict(ValueError):
    """The request id already ran with another version or bundle; a new request id is needed."""


def start_or_attach(
    sfn: Any, state_machine_arn: str, request: dict[str, Any], *, name: str | None = None
) -> tuple[str, dict[str, Any] | None]:
    """Start the request's execution, or find the one this request id already started.

    Returns the execution ARN and, when the request ran before, that execution's input.
    While it runs with the same input Step Functions itself returns its ARN; once it has ended,
    or when the input differs, StartExecution fails with ExecutionAlreadyExists and the
    execution is looked up by name, so a retried request reports the outcome it already had.
    Raises RequestConflict when that execution deployed another version or another bundle.
    Bundles are reproducible, so rebuilding the same source gives the same bundle URI.
    """
    from botocore.exceptions import ClientError

    name = name or execution_name(str(request.get("environment")), str(request.get("requestId")))
    try:
        return start_deployment(sfn, state_machine_arn, request, name=name), None
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
    arn = execution_arn(state_machine_arn, name)
    description = sfn.describe_execution(executionArn=arn)
    try:
        previous = json.loads(description.get("input") or "{}")
    except ValueError:
        previous = {}
    if not isinstance(previous, dict):
        previous = {}
    if previous.get("version") != request.get("version"):
        raise RequestConflict(
            f"request {request.get('requestId')} already ran for version "
            f"{previous.get('version')!r} (execution {arn}); pass a new request id to deploy "
            f"{request.get('version')}"
        )
    if previous.get("bundle") != request.get("bundle"):
        raise RequestConflict(
            f"request {request.get('requestId')} already deployed version "
            f"{request.get('version')} from bundle {previous.get('bundle')} (execution {arn}), "
            f"not from {request.get('bundle')}; pass a new request id, and a new version label "
            "if the code changed"
        )
    return arn, previous


@dataclass
class ExecutionReport:
    """An execution's outcome: final status, the states it passed through and how it ended."""

    arn: str
    status: str
    path: list[str] = field(default_factory=list)
    transitions: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    cause: str | None = None
    output: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final_state(self) -> str | None:
        return self.path[-1] if self.path else None


def _history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


def build_report(sfn: Any, arn: str) -> ExecutionReport:
    """Summarize the execution history.

    Transitions are counted the way Step Functions bills them: one per state entered plus one per
    retry attempt of a task.
    """
    description = sfn.describe_execution(executionArn=arn)
    events = _history(sfn, arn)
    path: list[str] = []
    scheduled: dict[str, int] = {}
    entered: dict[str, int] = {}
    current = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
            path.append(current)
            entered[current] = entered.get(current, 0) + 1
        elif kind in {"LambdaFunctionScheduled", "TaskScheduled"} and current:
            scheduled[current] = scheduled.get(current, 0) + 1
    retries = {
        state: count - entered.get(state, 0)
        for state, count in scheduled.items()
        if count > entered.get(state, 0)
    }
    output = description.get("output")
    return ExecutionReport(
        arn=arn,
        status=description["status"],
        path=path,
        transitions=len(path) + sum(retries.values()),
        retries=retries,
        error=description.get("error"),
        cause=description.get("cause"),
        output=json.loads(output) if output else None,
        events=events,
    )


def wait_for_execution(
    sfn: Any,
    arn: str,
    *,
    on_state: Callable[[str], None] | None = None,
    poll_seconds: float = 0.1,
    timeout_seconds: float | None = 600,
) -> ExecutionReport:
    """Poll until the execution ends; call `on_state` with each newly entered state.

    `timeout_seconds=None` waits as long as the execution runs (Step Functions ends it).
    """
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    seen = 0
    while True:
        status = sfn.describe_execution(executionArn=arn)["status"]
        if on_state is not None:
            events = _history(sfn, arn)
            names = [
                event["stateEnteredEventDetails"]["name"]
                for event in events
                if event["type"].endswith("StateEntered")
            ]
            for name in names[seen:]:
                on_state(name)
            seen = len(names)
        if status in TERMINAL_STATUSES:
            return build_report(sfn, arn)
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"execution {arn} still {status} after {timeout_seconds} s")
        time.sleep(poll_seconds)
