"""AwaitReadiness and ReleaseWaiters against moto's DynamoDB, with a recording Step Functions.

The readiness check itself is the polling tasks' (tests/functional/test_wait_handlers.py), and
it runs end to end in the scenarios. Here each test replaces it with chosen verdicts and pins
what the handlers do with them: who completes a token, how often, and what they tolerate.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lambdas import await_readiness, release_waiters
from lambdas.common import aws, clock, readiness
from lambdas.common.readiness import Verdict
from tests.ledger_table import create_ledger_table

REPO_ROOT = Path(__file__).resolve().parents[2]
TABLE = "deployments"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:deployments:dev-r-1"
EVENT = json.loads((REPO_ROOT / "tests/fixtures/eb-environment-terminated.json").read_text())


class Context:
    function_name = "ReleaseWaitersFunction"
    aws_request_id = "req-1"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:ReleaseWaiters"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class RecordingStepFunctions:
    """Records SendTask* calls; tokens in `ended` fail as a task that no longer waits does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.ended: dict[str, str] = {}

    def _call(self, name: str, **kwargs: Any) -> dict[str, Any]:
        code = self.ended.get(kwargs["taskToken"])
        if code is not None:
            raise ClientError({"Error": {"Code": code, "Message": code}}, name)
        self.calls.append((name, kwargs))
        return {}

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("SendTaskSuccess", **kwargs)

    def send_task_failure(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("SendTaskFailure", **kwargs)

    def send_task_heartbeat(self, **kwargs: Any) -> dict[str, Any]:
        return self._call("SendTaskHeartbeat", **kwargs)


@pytest.fixture
def sfn(environments_file: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    recording = RecordingStepFunctions()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_ledger_table(dynamodb, TABLE)
        monkeypatch.setenv("TABLE_NAME", TABLE)
        real_client = aws.client

        def client(service: str, region: str | None = None) -> Any:
            return recording if service == "stepfunctions" else real_client(service, region)

        monkeypatch.setattr(readiness, "client", client)
        clock.install(lambda: NOW)
        try:
            yield recording
        finally:
            clock.install(None)


@pytest.fixture
def verdicts(monkeypatch: pytest.MonkeyPatch) -> list[Verdict]:
    """The verdicts the readiness check returns, one per call, in order."""
    queue: list[Verdict] = []

    def check(wait_for: str, check_event: dict[str, Any]) -> Verdict:
        return queue.pop(0)

    monkeypatch.setattr(await_readiness, "check_readiness", check)
    monkeypatch.setattr(release_waiters, "check_readiness", check)
    return queue


def await_event(token: str = "token-1", wait_for: str = "deployment") -> dict[str, Any]:
    return {
        "request": {
            "environment": "dev",
            "version": "v2",
            "bundle": "s3://bundles/bundles/dev/0123abcd.zip",
            "requestId": "r-1",
        },
        "executionArn": EXECUTION,
        "taskToken": token,
        "waitFor": wait_for,
        "outputs": {"ebEnvironmentName": "webapp-dev", "ebApplicationName": "webapp-dev"},
        "waitStartedAt": "2026-01-01T00:00:00Z",
    }


def eb_event(status: str = "Environment update successful", name: str = "webapp-dev") -> dict:
    event = copy.deepcopy(EVENT)
    event["detail"]["Status"] = status
    event["detail"]["EnvironmentName"] = name
    return event


def register(verdicts: list[Verdict], verdict: Verdict, **kwargs: Any) -> dict[str, Any]:
    verdicts.append(verdict)
    return await_readiness.handler(await_event(**kwargs), Context())


WAITING = Verdict("waiting", cause="environment webapp-dev is Updating")
READY = Verdict("ready", output={"status": "Ready", "versionLabel": "v2"})


def test_registration_completes_a_decided_wait_itself(
    sfn: RecordingStepFunctions, verdicts: list[Verdict]
) -> None:
    result = register(verdicts, READY)

    assert result == {"waitFor": "deployment", "outcome": "ready"}
    assert sfn.calls == [
        ("SendTaskSuccess", {"taskToken": "token-1", "output": json.dumps(READY.output)})
    ]
    assert readiness.list_waiters("dev") == []


def test_registration_leaves_a_waiter_for_the_event(
    sfn: RecordingStepFunctions, verdicts: list[Verdict]
) -> None:
    result = register(verdicts, WAITING)

    waiters = readiness.list_waiters("dev")
    assert result["outcome"] == "waiting"
    assert sfn.calls == []
    assert [waiter.task_token for waiter in waiters] == ["token-1"]
    assert waiters[0].eb_environment == "webapp-dev"
    assert "taskToken" not in waiters[0].check_event
    assert waiters[0].check_event["waitStartedAt"] == "2026-01-01T00:00:00Z"


def test_polling_setting_hands_over_at_once(
    sfn: RecordingStepFunctions, verdicts: list[Verdict], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = await_readiness.current_settings().model_copy(deep=True)
    settings.environments["dev"].readiness = "polling"
    monkeypatch.setattr(await_readiness, "current_settings", lambda: settings)

    result = await_readiness.handler(await_event(), Context())

    assert result["outcome"] == "polling"
    assert [(name, call["error"]) for name, call in sfn.calls] == [
        ("SendTaskFailure", "EnvironmentNotReady")
    ]
    assert "readiness: polling" in sfn.calls[0][1]["cause"]
    assert readiness.list_waiters("dev") == []


def test_event_releases_a_ready_waiter_once(
    sfn: RecordingStepFunctions, verdicts: list[Verdict]
) -> None:
    register(verdicts, WAITING)
    verdicts.extend([READY, READY])

    first = release_waiters.handler(eb_event(), Context())
    duplicate = release_waiters.handler(eb_event(), Context())

    assert list(first["waiters"].values()) == ["ready"]
    assert duplicate["waiters"] == {}
    assert [name for name, _ in sfn.calls] == ["SendTaskSuccess"]
    assert readiness.list_waiters("dev") == []


def test_token_completed_once_when_the_waiter_is_taken(
    sfn: RecordingStepFunctions, verdicts: list[Verdict]
) -> None:
    register(verdicts, WAITING)
    [waiter] = readiness.list_waiters("dev")

    first = readiness.settle(waiter, READY, heartbeat=True)
    second = readiness.settle(waiter, READY, heartbeat=True)

    assert (first, second) == ("ready", "taken")
    assert len(sfn.calls) == 1


def test_undecided_event_sends_a_heartbeat(
    sfn: RecordingStepFunctions, verdicts: list[Verdict]
) -> None:
    register(verdicts, WAITING)
    verdicts.append(WAITING)

    result = release_waiters.handler(eb_event("Environment update started"), Context())

    assert list(result["waiters"].values()) == ["waiting"]
    assert sfn.calls == [("SendTaskHeartbeat", {"taskToken": "token-1"})]
    assert len(readiness.list_waiters("dev")) == 1


def test_failure_and_handover_fail_the_task(
    sfn: RecordingStepFunctions, verdicts: list[Verdict]
) -> None:
    failed = Verdict("failed", error="DeploymentFailed", cause="health is Red (Degraded)")
    handover = Verdict("polling", error="EnvironmentNotReady", cause="health is Grey")
    register(verdicts, WAITING, token="token-1")
    verdicts.append(failed)
    release_waiters.handler(eb_event(), Context())
    register(verdicts, WAITING, token="token-2", wait_for="environment")
    verdicts.append(handover)
    release_waiters.handler(eb_event(), Context())

    assert sfn.calls == [
        (
            "SendTaskFailure",
            {"taskToken": "token-1", "error": "DeploymentFailed", "cause": failed.cause},
        ),
        (
            "SendTaskFailure",
            {"taskToken": "token-2", "error": "EnvironmentNotReady", "cause": handover.cause},
        ),
    ]


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_ended_task_is_tolerated_and_its_waiter_removed(
    sfn: RecordingStepFunctions, verdicts: list[Verdict], code: str
) -> None:
    register(verdicts, WAITING)
    sfn.ended["token-1"] = code
    verdicts.append(WAITING)

    result = release_waiters.handler(eb_event(), Context())

    assert list(result["waiters"].values()) == ["ended"]
    assert readiness.list_waiters("dev") == []


def test_expired_waiter_is_removed_without_a_check(
    sfn: RecordingStepFunctions, verdicts: list[Verdict]
) -> None:
    register(verdicts, WAITING)
    clock.install(lambda: NOW + readiness.WAIT_BUDGET_SECONDS["deployment"])

    result = release_waiters.handler(eb_event(), Context())

    assert list(result["waiters"].values()) == ["expired"]
    assert sfn.calls == []
    assert readiness.list_waiters("dev") == []


def test_events_of_other_environments_leave_waiters_alone(
    sfn: RecordingStepFunctions, verdicts: list[Verdict]
) -> None:
    register(verdicts, WAITING)

    unmanaged = release_waiters.handler(eb_event(name="someone-else"), Context())
    malformed = release_waiters.handler({"detail-type": "Scheduled Event"}, Context())

    assert unmanaged["action"] == "ignored"
    assert malformed["action"] == "ignored"
    assert sfn.calls == []
    assert len(readiness.list_waiters("dev")) == 1


def test_failed_check_keeps_the_waiter(
    sfn: RecordingStepFunctions, monkeypatch: pytest.MonkeyPatch, verdicts: list[Verdict]
) -> None:
    register(verdicts, WAITING)

    def throttled(wait_for: str, check_event: dict[str, Any]) -> Verdict:
        raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "X")

    monkeypatch.setattr(release_waiters, "check_readiness", throttled)

    with pytest.raises(ClientError, match="Throttling"):
        release_waiters.handler(eb_event(), Context())
    assert len(readiness.list_waiters("dev")) == 1


@pytest.mark.parametrize(
    ("environment", "outcome"),
    [
        (None, "waiting"),
        ({"Status": "Launching"}, "waiting"),
        ({"Status": "Updating"}, "waiting"),
        ({"Status": "Ready"}, "polling"),
    ],
)
def test_undecided_wait_polls_once_eb_has_finished(
    monkeypatch: pytest.MonkeyPatch, environment: dict | None, outcome: str
) -> None:
    monkeypatch.setattr(readiness, "find_environment", lambda *args: environment)
    event = await_event()
    event["target"] = {
        "environment": "dev",
        "region": "us-east-1",
        "project": "webapp",
        "stack": "dev",
        "backendUrl": "s3://state",
        "ebApplication": "webapp-dev",
        "healthPath": "/health",
    }

    verdict = readiness._undecided(event, "health is Grey (Pending)")

    assert verdict.outcome == outcome
    if outcome == "polling":
        assert verdict.error == "EnvironmentNotReady"
        assert verdict.cause.startswith("health is Grey (Pending)")
