"""Event-driven readiness: waits on the environment that EB's status-change events release.

AwaitEnvironment and AwaitDeployment are `waitForTaskToken` tasks. Their Lambda
(await_readiness) stores a waiter with the task token, then runs the polling task's check once,
so an event that arrived before the waiter existed cannot be missed. From then on, each EB
event about the environment runs the release Lambda (release_waiters), which runs the same
check for every waiter of the environment. What the check finds decides what the task gets:

- ready: SendTaskSuccess with the check's result, which the task state stores as the polling
  task would.
- failed (DeploymentFailed, WaitTimedOut, ...): SendTaskFailure with the error's name and
  message, so the task state routes it as the polling task routes it.
- EB still busy (Launching, Updating, no environment yet): the waiter stays, and the event
  sends it a SendTaskHeartbeat, since EB evidently still reports progress.
- EB done but health undecided (Grey, Yellow where only Green counts, or Yellow within its
  settling window): SendTaskFailure with EnvironmentNotReady, which the task state catches to
  go on polling, because the rest of the wait may depend on time rather than on an event.

A waiter is deleted with a condition on its token before its token is completed, so two
invocations (a duplicate event, or the registration racing an event) never complete a token
twice. Polling stays the fallback: without an event within READINESS_HEARTBEAT_SECONDS the
task state times out into its polling task.

Items in the deployment table: pk="ENV#<environment>", sk="WAITER#<execution ARN>#<wait>",
with the token, the check's input, the EB environment's name and a `ttl`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from . import clock
from .aws import client, error_code
from .beanstalk import TRANSITIONAL_STATUSES, find_environment
from .errors import ControlPlaneError, EnvironmentNotReady
from .models import TaskEvent
from .observability import logger
from .recovery import TTL_ATTRIBUTE
from .store import from_item, table_name
from .waits import DEPLOYMENT_WAIT_SECONDS, ENVIRONMENT_WAIT_SECONDS

WaitFor = Literal["environment", "deployment"]
# The detail-type of EB's health events, besides recovery.RESOURCE_STATUS_CHANGE.
HEALTH_STATUS_CHANGE = "Health status change"

# How long an await waits for an EB event about its environment before it falls back to
# polling. A launch of the sandbox's default 300 s, or of 600 s, sends no event between its
# start and its end, and fits within it.
# NOTE: an estimate, not a measured figure: a real launch that stays silent for longer falls
# back to polling, which then finishes the wait.
READINESS_HEARTBEAT_SECONDS = 600
# Each await ends at the budget of its wait (the polling task's deadline counts from the same
# start), so its waiter is useless after that, and DynamoDB deletes it an hour later.
WAIT_BUDGET_SECONDS: dict[str, int] = {
    "environment": ENVIRONMENT_WAIT_SECONDS,
    "deployment": DEPLOYMENT_WAIT_SECONDS,
}
WAITER_RETENTION_SECONDS = 3600
WAITER_PREFIX = "WAITER#"
# The error a released await fails with to continue by polling.
POLLING_ERROR = EnvironmentNotReady.__name__
# SendTask* errors meaning the task no longer waits: it timed out, ended or never existed.
ENDED_TASK_ERRORS = frozenset({"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"})

Outcome = Literal["ready", "failed", "waiting", "polling"]


@dataclass(frozen=True)
class Verdict:
    """The decision of one readiness check, with what completes the waiting task."""

    outcome: Outcome
    # The check's result, for `ready`.
    output: dict[str, Any] | None = None
    # The error name and message for `failed` and `polling`. For `waiting`, `cause` is what the
    # check found.
    error: str | None = None
    cause: str | None = None


@dataclass(frozen=True)
class Waiter:
    """One await's registration in the table."""

    environment: str
    sort_key: str
    task_token: str
    wait_for: WaitFor
    eb_environment: str
    check_event: dict[str, Any]
    registered_at: float

    @property
    def expired(self) -> bool:
        """Whether the await has timed out: its task no longer waits for the token."""
        return clock.now() >= self.registered_at + WAIT_BUDGET_SECONDS[self.wait_for]


def _polling_check(wait_for: WaitFor) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Return the polling task's check for `wait_for`, without its handler's logging wrapper.

    The wrapper would reset the calling handler's log keys. Imported here, not at the top,
    because the task modules import this package.
    """
    if wait_for == "environment":
        from .. import wait_for_environment as module
    else:
        from .. import wait_for_deployment as module
    return inspect.unwrap(module.handler)


def check_readiness(wait_for: WaitFor, check_event: dict[str, Any]) -> Verdict:
    """Run the polling task's check once and return whether, and how, it decides the wait.

    Errors other than the control plane's own (an AWS call that keeps failing) propagate.
    """
    try:
        output = _polling_check(wait_for)(check_event, None)
    except EnvironmentNotReady as error:
        return _undecided(check_event, str(error))
    except ControlPlaneError as error:
        return Verdict("failed", error=type(error).__name__, cause=str(error))
    return Verdict("ready", output=output)


def _undecided(check_event: dict[str, Any], observed: str) -> Verdict:
    """Decide whether an undecided wait waits for the next event or goes on by polling."""
    task = TaskEvent.model_validate(check_event)
    target, outputs = task.require_target(), task.require_outputs()
    environment = find_environment(
        target.region, outputs.eb_application_name, outputs.eb_environment_name
    )
    if environment is None or environment.get("Status") in TRANSITIONAL_STATUSES:
        return Verdict("waiting", cause=observed)
    return Verdict(
        "polling",
        error=POLLING_ERROR,
        cause=(
            f"{observed}; Elastic Beanstalk's operation has ended, so the wait goes on by "
            "polling until health is decided"
        ),
    )


# Waiters in the table


def _waiter_key(environment: str, sort_key: str) -> dict[str, Any]:
    return {"pk": {"S": f"ENV#{environment}"}, "sk": {"S": sort_key}}


def put_waiter(
    environment: str,
    execution_arn: str,
    wait_for: WaitFor,
    task_token: str,
    eb_environment: str,
    check_event: dict[str, Any],
) -> Waiter:
    """Store the await's waiter, replacing the one an earlier attempt of the task stored."""
    now = clock.now()
    waiter = Waiter(
        environment=environment,
        sort_key=f"{WAITER_PREFIX}{execution_arn}#{wait_for}",
        task_token=task_token,
        wait_for=wait_for,
        eb_environment=eb_environment,
        check_event=check_event,
        registered_at=now,
    )
    expires = int(now) + WAIT_BUDGET_SECONDS[wait_for] + WAITER_RETENTION_SECONDS
    client("dynamodb").put_item(
        TableName=table_name(),
        Item={
            **_waiter_key(environment, waiter.sort_key),
            "taskToken": {"S": task_token},
            "waitFor": {"S": wait_for},
            "ebEnvironment": {"S": eb_environment},
            "check": {"S": json.dumps(check_event)},
            "registeredAt": {"N": str(now)},
            TTL_ATTRIBUTE: {"N": str(expires)},
        },
    )
    return waiter


def list_waiters(environment: str) -> list[Waiter]:
    """Return the environment's waiters, oldest first."""
    paginator = client("dynamodb").get_paginator("query")
    pages = paginator.paginate(
        TableName=table_name(),
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": f"ENV#{environment}"},
            ":prefix": {"S": WAITER_PREFIX},
        },
    )
    waiters = []
    for page in pages:
        for item in page["Items"]:
            values = from_item(item)
            waiters.append(
                Waiter(
                    environment=environment,
                    sort_key=values["sk"],
                    task_token=values["taskToken"],
                    wait_for=values["waitFor"],
                    eb_environment=values["ebEnvironment"],
                    check_event=json.loads(values["check"]),
                    registered_at=float(values["registeredAt"]),
                )
            )
    return sorted(waiters, key=lambda waiter: waiter.registered_at)


def delete_waiter(waiter: Waiter) -> bool:
    """Delete the waiter if its token is still this one, and return whether this call did.

    Whoever deletes the waiter completes its token, so each token is completed once. A waiter
    that a retried task replaced has another token and stays.
    """
    try:
        client("dynamodb").delete_item(
            TableName=table_name(),
            Key=_waiter_key(waiter.environment, waiter.sort_key),
            ConditionExpression="taskToken = :token",
            ExpressionAttributeValues={":token": {"S": waiter.task_token}},
        )
    except Exception as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


# Completing the task


def complete(task_token: str, verdict: Verdict) -> bool:
    """Send the verdict's SendTaskSuccess or SendTaskFailure, and return whether a task got it.

    A task that has already ended (timed out into polling, stopped) is logged and skipped.
    """
    sfn = client("stepfunctions")
    try:
        if verdict.outcome == "ready":
            sfn.send_task_success(taskToken=task_token, output=json.dumps(verdict.output))
        else:
            sfn.send_task_failure(
                taskToken=task_token, error=verdict.error or "", cause=verdict.cause or ""
            )
    except Exception as error:
        if error_code(error) not in ENDED_TASK_ERRORS:
            raise
        logger.info("task no longer waits; token not completed", extra={"error": error_code(error)})
        return False
    return True


def send_heartbeat(task_token: str) -> bool:
    """Send SendTaskHeartbeat, and return False when the task no longer waits."""
    try:
        client("stepfunctions").send_task_heartbeat(taskToken=task_token)
    except Exception as error:
        if error_code(error) not in ENDED_TASK_ERRORS:
            raise
        return False
    return True


def settle(waiter: Waiter, verdict: Verdict, *, heartbeat: bool) -> str:
    """Act on a verdict for a waiter and return what happened, for the logs and the result.

    `heartbeat` sends a heartbeat to a task that keeps waiting; the registration sends none,
    since its task has just started.
    """
    if verdict.outcome == "waiting":
        if heartbeat and not send_heartbeat(waiter.task_token):
            delete_waiter(waiter)
            return "ended"
        return "waiting"
    if not delete_waiter(waiter):
        return "taken"
    if not complete(waiter.task_token, verdict):
        return "ended"
    return verdict.outcome
