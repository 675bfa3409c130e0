"""The per-environment deployment lease in DynamoDB: one holder, one queued request, a fence.

The lease item is (pk="ENV#<environment>", sk="LOCK"). Its fields:

- `holder`, `holderQueuedAt`, `executionArn`, `acquiredAt`, `expiresAt`: the request that holds
  the lease, when its execution started (epoch milliseconds), and when the lease lapses
  (epoch seconds, the unit of DynamoDB TTL; renewed by every fence check).
- `waiting`, `waitingQueuedAt`, `waitingExecutionArn`: the newest request queued behind the
  holder. A newer request replaces it; the replaced one ends as Superseded.
- `fencingToken`: grows by one on every acquisition. Mutating tasks present the token they got;
  a task whose token is no longer the current one has lost the lease and stops.

Order is decided by execution start time, so "newest" means the request that reached Step
Functions last, whatever order their Lambda calls run in. The holder is never preempted: a
running Pulumi update or EB update always finishes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import clock
from .aws import client, error_code
from .errors import UNEXPECTED_FAILURE, EnvironmentLocked, LeaseLost, ended_execution_error
from .observability import logger
from .store import put_ledger_record_if_absent, table_name

# A lease long enough for the slowest phase between two fence checks, because CodeBuild caps a
# Pulumi run at 60 minutes. A holder that dies without releasing it loses it after this.
LOCK_LEASE_SECONDS = 2 * 60 * 60

# Statuses of a Step Functions execution that still runs; any other status is a dead holder.
_LIVE_EXECUTION_STATUSES = {"RUNNING", "PENDING_REDRIVE"}

ExecutionStatus = Callable[[str], str | None]


def lock_key(environment: str) -> dict[str, Any]:
    return {"pk": {"S": f"ENV#{environment}"}, "sk": {"S": "LOCK"}}


def _execution_status(execution_arn: str) -> str | None:
    """Return the status of the holder's execution, or None when it cannot be read."""
    try:
        return client("stepfunctions").describe_execution(executionArn=execution_arn)["status"]
    except Exception as error:
        if error_code(error) == "ExecutionDoesNotExist":
            return "DOES_NOT_EXIST"
        return None


def _execution_input(execution_arn: str) -> dict[str, Any] | None:
    """Return the input of the holder's execution, or None when it cannot be read."""
    try:
        described = client("stepfunctions").describe_execution(executionArn=execution_arn)
        document = json.loads(described.get("input") or "null")
    except Exception as error:
        logger.info(
            "input of the dead holder's execution not read",
            extra={"execution_arn": execution_arn, "error": str(error)},
        )
        return None
    return document if isinstance(document, dict) else None


def _number(item: dict[str, Any], name: str, default: int = 0) -> int:
    return int(item.get(name, {}).get("N", default))


def _string(item: dict[str, Any], name: str) -> str | None:
    return item.get(name, {}).get("S")


class Lease:
    """Lease operations for one request of one environment."""

    def __init__(
        self,
        environment: str,
        request_id: str,
        execution_arn: str,
        queued_at_ms: int,
        *,
        execution_status: ExecutionStatus = _execution_status,
        execution_input: Callable[[str], dict[str, Any] | None] = _execution_input,
        yields: bool = False,
    ) -> None:
        self.environment = environment
        self.request_id = request_id
        self.execution_arn = execution_arn
        self.queued_at_ms = queued_at_ms
        # A request that yields (a scheduled drift check) never queues and never supersedes:
        # it takes a free lease or gives way to any request that holds the lease or waits.
        self.yields = yields
        self._execution_status = execution_status
        self._execution_input = execution_input
        self._dynamodb = client("dynamodb")
        self._table = table_name()

    def acquire(self) -> dict[str, Any]:
        """Take the lease, or report that a newer request superseded this one.

        Returns {"token", "acquiredAt"} when this request holds the lease, or
        {"superseded": True, "by": <request id>} when a newer request holds it or waits for it.
        Raises EnvironmentLocked (retried by the workflow) while an older request holds it;
        this request is then the queued one. A yielding request returns {"superseded": True,
        "by": <request id>, "yielded": True} instead, whenever another request holds the lease
        or waits for it.
        """
        now = int(clock.now())
        free = "attribute_not_exists(holder) OR expiresAt < :now"
        if self.yields:
            free = f"({free}) AND attribute_not_exists(waiting)"
        try:
            return self._take(now, free)
        except _ConditionFailed as failed:
            item = failed.item
        holder = _string(item, "holder")
        if holder == self.request_id:
            # A retried AcquireLock whose first attempt took the lease.
            return {
                "token": _number(item, "fencingToken"),
                "acquiredAt": _number(item, "acquiredAt"),
            }
        other = holder or _string(item, "waiting")
        if self.yields and other:
            return {"superseded": True, "by": other, "yielded": True}
        newer = self._newer_request(item)
        if newer:
            return {"superseded": True, "by": newer}
        dead_status = self._dead_holder_status(item) if holder else None
        if dead_status:
            try:
                taken = self._take(now, "holder = :dead AND fencingToken = :deadToken", item)
            except _ConditionFailed:
                # Another request took over first, so the next attempt reads the new holder.
                raise self._locked(item, now) from None
            self._record_abandoned(item, dead_status, now)
            return taken
        if holder:
            self._queue()
        # Otherwise the item changed between the write and its read; the next attempt decides.
        raise self._locked(item, now)

    def check_fence(self, token: int) -> None:
        """Raise LeaseLost unless this request still holds the lease with `token`; renew it."""
        now = int(clock.now())
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=lock_key(self.environment),
                UpdateExpression="SET expiresAt = :exp",
                ConditionExpression="holder = :me AND fencingToken = :token",
                ExpressionAttributeValues={
                    ":me": {"S": self.request_id},
                    ":token": {"N": str(token)},
                    ":exp": {"N": str(now + LOCK_LEASE_SECONDS)},
                },
            )
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            current = read_lock(self.environment) or {}
            raise LeaseLost(
                f"request {self.request_id} no longer holds the lease of environment "
                f"{self.environment} (its fencing token {token}; the lease is now held by "
                f"{_string(current, 'holder') or 'nobody'} with token "
                f"{_number(current, 'fencingToken')}); it stopped before changing anything. "
                "Check `control-plane lock show` and deploy again if needed."
            ) from None

    # Internals

    def _take(self, now: int, free: str, dead: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write this request as the holder when the `free` condition is true and no newer request
        is queued."""
        values = {
            ":me": {"S": self.request_id},
            ":queued": {"N": str(self.queued_at_ms)},
            ":arn": {"S": self.execution_arn},
            ":now": {"N": str(now)},
            ":exp": {"N": str(now + LOCK_LEASE_SECONDS)},
            ":one": {"N": "1"},
        }
        if dead is not None:
            values[":dead"] = {"S": _string(dead, "holder") or ""}
            values[":deadToken"] = {"N": str(_number(dead, "fencingToken"))}
        try:
            response = self._dynamodb.update_item(
                TableName=self._table,
                Key=lock_key(self.environment),
                UpdateExpression=(
                    "SET holder = :me, holderQueuedAt = :queued, executionArn = :arn, "
                    "acquiredAt = :now, expiresAt = :exp "
                    "REMOVE waiting, waitingQueuedAt, waitingExecutionArn, updateRequest, "
                    "updatePrevious ADD fencingToken :one"
                ),
                ConditionExpression=(
                    f"({free}) AND (attribute_not_exists(waitingQueuedAt) "
                    "OR waitingQueuedAt <= :queued)"
                ),
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            raise _ConditionFailed(getattr(error, "response", {}).get("Item") or {}) from None
        item = response["Attributes"]
        return {"token": _number(item, "fencingToken"), "acquiredAt": now}

    def _newer_request(self, item: dict[str, Any]) -> str | None:
        """Return the id of a request newer than this one that holds or waits for the lease."""
        for who, when in (("holder", "holderQueuedAt"), ("waiting", "waitingQueuedAt")):
            other = _string(item, who)
            if other and other != self.request_id and _number(item, when) > self.queued_at_ms:
                return other
        return None

    def _dead_holder_status(self, item: dict[str, Any]) -> str | None:
        """Return the status of the holder's execution when it has ended, else None."""
        arn = _string(item, "executionArn")
        if not arn:
            return None
        status = self._execution_status(arn)
        if status is None or status in _LIVE_EXECUTION_STATUSES:
            return None
        return status

    def _record_abandoned(self, item: dict[str, Any], status: str, now: int) -> None:
        """Give the dead holder's request its ledger record, unless it wrote one itself."""
        record_abandoned_request(
            self.environment,
            item,
            status,
            now,
            f"request {self.request_id} took the lease over",
            self._table,
            self._dynamodb,
            self._execution_input(arn) if (arn := _string(item, "executionArn")) else None,
        )

    def _queue(self) -> None:
        """Become the queued request, unless a newer one queued meanwhile."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=lock_key(self.environment),
                UpdateExpression=(
                    "SET waiting = :me, waitingQueuedAt = :queued, waitingExecutionArn = :arn"
                ),
                ConditionExpression=(
                    "attribute_exists(holder) AND (attribute_not_exists(waitingQueuedAt) "
                    "OR waitingQueuedAt <= :queued)"
                ),
                ExpressionAttributeValues={
                    ":me": {"S": self.request_id},
                    ":queued": {"N": str(self.queued_at_ms)},
                    ":arn": {"S": self.execution_arn},
                },
            )
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            # A newer request queued, or the lease was freed: the next attempt decides.

    def _locked(self, item: dict[str, Any], now: int) -> EnvironmentLocked:
        holder = _string(item, "holder") or "unknown"
        acquired = _number(item, "acquiredAt", now)
        return EnvironmentLocked(
            f"environment {self.environment} is locked by request {holder} "
            f"(held for {now - acquired} s, execution {_string(item, 'executionArn')}); "
            f"request {self.request_id} is queued behind it and retries. If that execution has "
            "ended, the lease is taken over at the next attempt; to free it by hand run "
            f"`control-plane lock release --environment {self.environment}`."
        )


class _ConditionFailed(Exception):
    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("condition failed")
        self.item = item


def _remove_holder(environment: str, holder: str, table: str, dynamodb: Any) -> bool:
    """Clear the lease while `holder` holds it; return whether it did.

    The item stays, without a holder, so the fencing token keeps growing across leases and a
    queued request stays queued.
    """
    try:
        dynamodb.update_item(
            TableName=table,
            Key=lock_key(environment),
            UpdateExpression="REMOVE holder, holderQueuedAt, executionArn, acquiredAt, expiresAt",
            ConditionExpression="holder = :holder",
            ExpressionAttributeValues={":holder": {"S": holder}},
        )
    except Exception as error:
        if error_code(error) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def release_lock(environment: str, request_id: str) -> bool:
    """Release the lease if this request holds it; return whether anything was released."""
    return _remove_holder(environment, request_id, table_name(), client("dynamodb"))


def read_lock(
    environment: str, table: str | None = None, dynamodb: Any = None
) -> dict[str, Any] | None:
    """Return the lock item while a request holds it, else None."""
    response = (dynamodb or client("dynamodb")).get_item(
        TableName=table or table_name(), Key=lock_key(environment)
    )
    item = response.get("Item")
    return item if item and "holder" in item else None


def record_abandoned_request(
    environment: str,
    item: dict[str, Any],
    status: str,
    now: float,
    taken_by: str,
    table: str,
    dynamodb: Any,
    request: dict[str, Any] | None = None,
) -> bool:
    """Record the outcome of a holder whose execution ended without recording one.

    `item` is the lease item it held, `status` its execution's final status and `taken_by`
    who freed the lease. `request`, the execution's input when known, adds what it deployed.
    Writes nothing when the request has a ledger record already; returns whether it wrote.
    """
    known = request if isinstance(request, dict) else {}
    deployed = {
        key: known[key]
        for key in ("version", "bundle", "trigger", "startedBy")
        if isinstance(known.get(key), str)
    }
    holder = _string(item, "holder") or "unknown"
    arn = _string(item, "executionArn")
    written = put_ledger_record_if_absent(
        environment,
        holder,
        {
            **deployed,
            "environment": environment,
            "requestId": holder,
            "outcome": UNEXPECTED_FAILURE,
            "errorName": ended_execution_error(status),
            "cause": (
                f"execution {arn} ended {status} while it held the lease, without recording "
                f"an outcome; {taken_by}"
            ),
            "executionArn": arn,
            "finishedAt": int(now),
        },
        table,
        dynamodb,
    )
    logger.warning(
        "lease freed from a holder whose execution ended",
        extra={
            "environment": environment,
            "dead_holder": holder,
            "status": status,
            "taken_by": taken_by,
            "ledger_record_written": written,
        },
    )
    return written


def force_release_lock(environment: str, holder: str, table: str, dynamodb: Any) -> bool:
    """Release a lock an operator found stuck, but only while `holder` still holds it.

    The condition keeps a request that took the lock after the operator looked from losing it.
    """
    return _remove_holder(environment, holder, table, dynamodb)


def remember_update(
    environment: str, request_id: str, lock: dict[str, Any] | None, previous: str | None
) -> str | None:
    """Note on the lease that this request starts its EB update, from version `previous`.

    Returns the previous version an earlier run of the same task already noted (a retried
    DeployVersion), or None when this is the first run. The write is fenced like any
    mutating task.
    """
    check_fence(environment, request_id, lock)
    item = read_lock(environment) or {}
    if _string(item, "updateRequest") == request_id:
        noted = item.get("updatePrevious", {})
        return noted.get("S") if "S" in noted else ""
    client("dynamodb").update_item(
        TableName=table_name(),
        Key=lock_key(environment),
        UpdateExpression="SET updateRequest = :me, updatePrevious = :previous",
        ConditionExpression="holder = :me",
        ExpressionAttributeValues={
            ":me": {"S": request_id},
            ":previous": {"S": previous} if previous else {"NULL": True},
        },
    )
    return None


def check_fence(environment: str, request_id: str, lock: dict[str, Any] | None) -> None:
    """Stop a mutating task unless its request still holds the lease it acquired.

    `lock` is AcquireLock's result as the state machine passes it on ($.lock).
    """
    if not lock or "token" not in lock:
        raise LeaseLost(
            f"request {request_id} reached a mutating task of environment {environment} "
            "without a lease; the state machine must pass $.lock to it"
        )
    Lease(environment, request_id, "", 0).check_fence(int(lock["token"]))
