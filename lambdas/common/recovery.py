"""Automatic recovery of terminated environments: event mapping, guards, circuit breaker.

Two Lambdas start recoveries through `start_recovery` below: start_recovery (target of the
EventBridge rule on EB status-change events) and sweep_environments (an EventBridge schedule).
A recovery is a `trigger=recovery` execution of the deployment state machine that redeploys the
last version the ledger records as Deployed. Its request id derives from the ledger record of
that deployment, which is the one the termination destroyed. So duplicate events, and a sweep
that finds the same terminated environment, start one execution with one name.

Items this module keeps in the deployment table, beside the lease and the ledger
(pk="ENV#<environment>"):

- sk="RECOVERY#<requestId>": a recovery that was started and when (`startedAt`, epoch
  seconds); the circuit breaker counts them. `ttl` lets DynamoDB delete it after the window.
- sk="BREAKER": present while the circuit breaker is open, with when (`openedAt`) and why
  (`reason`). Only an operator closes it (`control-plane recovery reset`).
- sk="DESTROYED": the environment was destroyed on purpose (`control-plane destroy`) at
  `destroyedAt`. It suppresses recovery until a later deployment succeeds.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import clock
from .aws import client, error_code
from .beanstalk import find_environment
from .metrics import publish_recovery
from .observability import logger
from .settings import Settings, current_settings
from .store import from_item, ledger_records, put_ledger_record, query_items, table_name

EB_SOURCE = "aws.elasticbeanstalk"
RESOURCE_STATUS_CHANGE = "Elastic Beanstalk resource status change"
TERMINATION_SUCCESSFUL = "Environment termination successful"
RECOVERY_TRIGGER = "recovery"
RECOVERY_STARTED_BY = "control-plane-recovery"
BREAKER_OUTCOME = "CircuitBreakerOpen"
# The SSM parameter an operator sets to "on" to suppress recovery of one environment.
MAINTENANCE_PARAMETER = "/control-plane/{environment}/maintenance"
MAINTENANCE_OFF_VALUES = frozenset({"", "off", "false", "0", "no"})

# Lambda timeouts. The idempotency record of an event stays "in progress" for the invocation's
# remaining time, so a start_recovery that timed out blocks duplicates for at most this long.
START_RECOVERY_TIMEOUT_SECONDS = 30
SWEEP_TIMEOUT_SECONDS = 120
SWEEP_RATE_MINUTES = 15
# EventBridge retries a failed delivery to a Lambda target for up to 24 hours, so an event id is
# remembered that long.
EVENT_ID_RETENTION_SECONDS = 24 * 60 * 60
# Attribute of the table's DynamoDB TTL: idempotency records and RECOVERY# items carry it.
TTL_ATTRIBUTE = "ttl"

Action = Literal["started", "already-started", "skipped", "breaker-opened"]


class EventDetail(BaseModel):
    """The `detail` of an EB "Elastic Beanstalk resource status change" event."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: str = Field(alias="Status")
    environment_name: str = Field(alias="EnvironmentName", min_length=1)
    application_name: str | None = Field(default=None, alias="ApplicationName")
    event_date: int | None = Field(default=None, alias="EventDate")


class StatusChangeEvent(BaseModel):
    """The EventBridge envelope of an EB status-change event, with the fields recovery reads."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(min_length=1)
    source: str
    detail_type: str = Field(alias="detail-type")
    region: str | None = None
    detail: EventDetail


@dataclass
class StartDecision:
    """The action a starter Lambda took for one environment, and its reason."""

    environment: str
    action: str
    reason: str
    request_id: str | None = None
    execution_arn: str | None = None

    def as_result(self) -> dict[str, Any]:
        """Return the decision as the Lambda's JSON result, in the workflow's camelCase."""
        names = {"request_id": "requestId", "execution_arn": "executionArn"}
        return {
            names.get(key, key): value for key, value in asdict(self).items() if value is not None
        }


@dataclass
class RecoveryDecision(StartDecision):
    """The action start_recovery took for one environment, and its reason."""

    action: Action


def managed_environment(
    settings: Settings, eb_environment: str, application: str | None
) -> str | None:
    """Return the control plane's name for an EB environment, or None when it is not managed.

    The EB environment name and, when the event carries it, the application must both match.
    """
    for name, environment in settings.environments.items():
        if environment.eb_environment_name != eb_environment:
            continue
        if application is None or application == environment.eb_application:
            return name
    return None


def recovery_request_id(environment: str, basis_request_id: str) -> str:
    """Derive the recovery's request id from the deployment whose environment was terminated."""
    digest = hashlib.sha256(f"{environment}\0{basis_request_id}".encode()).hexdigest()
    return f"recovery-{digest[:20]}"


def execution_name(environment: str, request_id: str) -> str:
    """Name the execution as `control-plane deploy` does: `<environment>-<requestId>`."""
    return f"{environment}-{request_id}"


def maintenance_parameter(environment: str) -> str:
    return MAINTENANCE_PARAMETER.format(environment=environment)


def maintenance_on(environment: str) -> bool:
    """Return whether the environment's maintenance switch is set.

    Any value other than off, false, 0 or no counts as on, so a typo errs on the side of not
    touching an environment under maintenance.
    """
    try:
        parameter = client("ssm").get_parameter(Name=maintenance_parameter(environment))
    except Exception as error:
        if error_code(error) == "ParameterNotFound":
            return False
        raise
    return parameter["Parameter"]["Value"].strip().lower() not in MAINTENANCE_OFF_VALUES


def last_deployed_record(
    environment: str, table: str | None = None, dynamodb: Any = None
) -> dict[str, Any] | None:
    """Return the newest ledger record with outcome Deployed and a bundle, if any."""
    deployed = [
        record
        for record in ledger_records(environment, table, dynamodb)
        if record.get("outcome") == "Deployed" and record.get("bundle") and record.get("version")
    ]
    return deployed[-1] if deployed else None


def _key(environment: str, sort_key: str) -> dict[str, Any]:
    return {"pk": {"S": f"ENV#{environment}"}, "sk": {"S": sort_key}}


def _read_item(
    environment: str, sort_key: str, table: str | None = None, dynamodb: Any = None
) -> dict[str, Any] | None:
    item = (
        (dynamodb or client("dynamodb"))
        .get_item(TableName=table or table_name(), Key=_key(environment, sort_key))
        .get("Item")
    )
    return from_item(item) if item else None


def read_breaker(
    environment: str, table: str | None = None, dynamodb: Any = None
) -> dict[str, Any] | None:
    """Return the open circuit breaker's item (openedAt, reason), or None while it is closed."""
    return _read_item(environment, "BREAKER", table, dynamodb)


def close_breaker(environment: str, table: str, dynamodb: Any) -> bool:
    """Close the circuit breaker and forget the counted recoveries; return whether it was open."""
    response = dynamodb.delete_item(
        TableName=table, Key=_key(environment, "BREAKER"), ReturnValues="ALL_OLD"
    )
    for item in _recovery_items(environment, table, dynamodb):
        dynamodb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    return bool(response.get("Attributes"))


def read_destroy_intent(
    environment: str, table: str | None = None, dynamodb: Any = None
) -> dict[str, Any] | None:
    return _read_item(environment, "DESTROYED", table, dynamodb)


def record_destroy_intent(
    environment: str, destroyed_by: str, destroyed_at: float, table: str, dynamodb: Any
) -> None:
    """Remember that the environment is destroyed on purpose, so recovery leaves it alone."""
    dynamodb.put_item(
        TableName=table,
        Item={
            **_key(environment, "DESTROYED"),
            "destroyedAt": {"N": str(int(destroyed_at))},
            "destroyedBy": {"S": destroyed_by[:200]},
        },
    )


def destroy_intent_in_force(
    environment: str,
    last_deployed: dict[str, Any] | None,
    table: str | None = None,
    dynamodb: Any = None,
) -> dict[str, Any] | None:
    """Return the environment's destroy intent while it counts, else None.

    The intent counts until a deployment succeeds after it: deploying again brings the
    environment back under automatic recovery.
    """
    intent = read_destroy_intent(environment, table, dynamodb)
    if not intent:
        return None
    destroyed_at = float(intent.get("destroyedAt", 0))
    if last_deployed and float(last_deployed.get("finishedAt", 0)) > destroyed_at:
        return None
    return intent


def destroyed_on_purpose(environment: str, last_deployed: dict[str, Any] | None) -> str | None:
    """Return why recovery must skip a destroyed environment, or None."""
    intent = destroy_intent_in_force(environment, last_deployed)
    if intent is None:
        return None
    return (
        f"environment {environment} was destroyed on purpose by {intent.get('destroyedBy')} "
        "(control-plane destroy); deploy it again to resume automatic recovery"
    )


def _recovery_items(environment: str, table: str, dynamodb: Any) -> list[dict[str, Any]]:
    return query_items(environment, "RECOVERY#", table, dynamodb)


def recoveries_since(environment: str, since: float) -> int:
    """Count the recoveries of the environment started at or after `since` (epoch seconds)."""
    items = _recovery_items(environment, table_name(), client("dynamodb"))
    return sum(1 for item in items if float(item["startedAt"]["N"]) >= since)


def register_recovery(
    environment: str, request_id: str, started_at: float, window_seconds: int, source: str
) -> bool:
    """Count a recovery for the circuit breaker; return False when it was counted before."""
    try:
        client("dynamodb").put_item(
            TableName=table_name(),
            Item={
                **_key(environment, f"RECOVERY#{request_id}"),
                "startedAt": {"N": str(int(started_at))},
                "source": {"S": source},
                TTL_ATTRIBUTE: {"N": str(int(started_at) + window_seconds + 24 * 60 * 60)},
            },
            ConditionExpression="attribute_not_exists(sk)",
        )
    except Exception as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def is_registered(environment: str, request_id: str) -> bool:
    return _read_item(environment, f"RECOVERY#{request_id}") is not None


def publish(environment: str, subject: str, document: dict[str, Any]) -> None:
    """Send a notification to the control plane's SNS topic, when one is configured."""
    topic = os.environ.get("TOPIC_ARN")
    if not topic:
        return
    client("sns").publish(
        TopicArn=topic,
        Subject=f"{environment}: {subject}"[:100],
        Message=json.dumps(document, indent=2, default=str),
        MessageAttributes={
            "outcome": {"DataType": "String", "StringValue": subject},
            "environment": {"DataType": "String", "StringValue": environment},
        },
    )


def _open_breaker(
    environment: str, request_id: str, last_deployed: dict[str, Any], count: int, now: float
) -> RecoveryDecision:
    """Stop automatic recovery: keep the breaker item, write the ledger record, notify."""
    recovery = current_settings().environment(environment).recovery
    reason = (
        f"automatic recovery of {environment} stopped: {count} recoveries started within the "
        f"last {recovery.window_seconds} s (recovery.max_recoveries is "
        f"{recovery.max_recoveries}). Find out why the environment keeps terminating, then "
        f"close the breaker with `control-plane recovery reset --environment {environment}`."
    )
    client("dynamodb").put_item(
        TableName=table_name(),
        Item={
            **_key(environment, "BREAKER"),
            "openedAt": {"N": str(int(now))},
            "reason": {"S": reason},
            "requestId": {"S": request_id},
        },
    )
    record = {
        "environment": environment,
        "requestId": request_id,
        "version": last_deployed.get("version"),
        "bundle": last_deployed.get("bundle"),
        "trigger": RECOVERY_TRIGGER,
        "startedBy": RECOVERY_STARTED_BY,
        "plan": None,
        "outcome": BREAKER_OUTCOME,
        "errorName": BREAKER_OUTCOME,
        "cause": reason,
        "executionArn": None,
        "finishedAt": int(now),
    }
    put_ledger_record(environment, request_id, record)
    publish(environment, BREAKER_OUTCOME, record)
    logger.warning(
        "circuit breaker opened",
        extra={"environment": environment, "request_id": request_id, "recoveries": count},
    )
    return RecoveryDecision(environment, "breaker-opened", reason, request_id)


def _start_execution(environment: str, request: dict[str, Any]) -> str:
    """Start the recovery execution and return its ARN.

    Step Functions returns the same ARN for the same name and input while the execution runs.
    It raises ExecutionAlreadyExists once that execution has ended (names stay taken for 90
    days), so one request id starts at most one execution.
    """
    state_machine_arn = os.environ["STATE_MACHINE_ARN"]
    name = execution_name(environment, request["requestId"])
    try:
        response = client("stepfunctions").start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(request)
        )
    except Exception as error:
        if error_code(error) != "ExecutionAlreadyExists":
            raise
        return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"
    return str(response["executionArn"])


def start_recovery(environment: str, source: str) -> RecoveryDecision:
    """Decide and start the recovery (see `_decide_recovery`), and publish its metric."""
    decision = _decide_recovery(environment, source)
    publish_recovery(environment, decision.action)
    return decision


def _decide_recovery(environment: str, source: str) -> RecoveryDecision:
    """Start the recovery of a managed environment unless a guard stops it.

    The guards run in this order. Recovery is disabled in the settings, or the ledger has
    nothing to redeploy. The environment was destroyed on purpose, or its maintenance switch
    is on. An environment of that name is live, so the event is stale. A request is queued
    for the lock. The circuit breaker is open, or this recovery reaches its limit.
    """
    settings = current_settings().environment(environment)

    def skip(reason: str) -> RecoveryDecision:
        logger.info("recovery skipped", extra={"environment": environment, "reason": reason})
        return RecoveryDecision(environment, "skipped", reason)

    if not settings.recovery.enabled:
        return skip("recovery.enabled is false in the environments file")
    last_deployed = last_deployed_record(environment)
    if last_deployed is None:
        return skip("the ledger has no Deployed record with a bundle to redeploy")
    destroyed = destroyed_on_purpose(environment, last_deployed)
    if destroyed:
        return skip(destroyed)
    if maintenance_on(environment):
        return skip(f"the maintenance switch {maintenance_parameter(environment)} is on")
    live = find_environment(settings.region, settings.eb_application, settings.eb_environment_name)
    if live is not None:
        return skip(
            f"EB environment {settings.eb_environment_name} exists and is {live.get('Status')}"
        )

    waiting = (_read_item(environment, "LOCK") or {}).get("waiting")
    if waiting:
        # A queued recovery would supersede it (the newest request wins), yet that request
        # recovers the environment itself when it runs, with the version it was asked for.
        return skip(f"request {waiting} is queued for the environment and recovers it")
    request_id = recovery_request_id(environment, str(last_deployed["requestId"]))
    breaker = read_breaker(environment)
    if breaker:
        return skip(f"the circuit breaker is open: {breaker.get('reason')}")
    now = clock.now()
    first = False
    if not is_registered(environment, request_id):
        window = settings.recovery.window_seconds
        count = recoveries_since(environment, now - window)
        if count >= settings.recovery.max_recoveries:
            return _open_breaker(environment, request_id, last_deployed, count, now)
        first = register_recovery(environment, request_id, now, window, source)

    request = {
        "environment": environment,
        "version": last_deployed["version"],
        "bundle": last_deployed["bundle"],
        "requestId": request_id,
        "trigger": RECOVERY_TRIGGER,
        "startedBy": RECOVERY_STARTED_BY,
    }
    # Started again even when counted before: the earlier attempt may have stopped between
    # counting and StartExecution, and Step Functions collapses a repeat by its name.
    arn = _start_execution(environment, request)
    action: Action = "started" if first else "already-started"
    reason = (
        f"EB environment {settings.eb_environment_name} is terminated or missing; redeploying "
        f"{last_deployed['version']} from request {last_deployed['requestId']}"
    )
    logger.info(
        "recovery started" if first else "recovery already started",
        extra={
            "environment": environment,
            "request_id": request_id,
            "execution_arn": arn,
            "version": last_deployed["version"],
            "source": source,
        },
    )
    return RecoveryDecision(environment, action, reason, request_id, arn)
