"""EventBridge events: StartRecovery and SweepEnvironments ignore or process any event.

EventBridge retries a failed delivery for a day, so an event that raises would come back again
and again. Every event must end as "ignored" with a log line or as a recovery decision. AWS
calls go to moto in-process.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from lambdas import start_recovery, sweep_environments
from lambdas.common import aws, clock, recovery
from lambdas.common.observability import logger
from lambdas.common.store import put_ledger_record
from tests.ledger_table import create_ledger_table

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((REPO_ROOT / "tests/fixtures/eb-environment-terminated.json").read_text())
TABLE = "deployments"
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ACTIONS = {"ignored", "started", "already-started", "skipped", "breaker-opened"}


class Context:
    function_name = "StartRecoveryFunction"
    aws_request_id = "fuzz"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:StartRecovery"

    def get_remaining_time_in_millis(self) -> int:
        return recovery.START_RECOVERY_TIMEOUT_SECONDS * 1000


@pytest.fixture(scope="module")
def aws_account() -> Iterator[None]:
    """One moto account for the module: a table, a topic, a state machine, a Deployed record."""
    patch = pytest.MonkeyPatch()
    patch.setenv("ENVIRONMENTS_FILE", str(REPO_ROOT / "environments.yaml"))
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    patch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        from lambdas.common.settings import current_settings

        current_settings.cache_clear()
        aws.client.cache_clear()
        region = "us-east-1"
        create_ledger_table(boto3.client("dynamodb", region_name=region), TABLE)
        topic = boto3.client("sns", region_name=region).create_topic(Name="events")["TopicArn"]
        machine = boto3.client("stepfunctions", region_name=region).create_state_machine(
            name="deployments",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
        patch.setenv("TABLE_NAME", TABLE)
        patch.setenv("TOPIC_ARN", topic)
        patch.setenv("STATE_MACHINE_ARN", machine)
        clock.install(lambda: NOW)
        put_ledger_record(
            "dev",
            "r-1",
            {
                "environment": "dev",
                "requestId": "r-1",
                "version": "v1",
                "bundle": "s3://bundles/bundles/dev/v1.zip",
                "trigger": "manual",
                "outcome": "Deployed",
                "finishedAt": int(NOW - 600),
            },
        )
        yield
        clock.install(None)
        aws.client.cache_clear()
        current_settings.cache_clear()
    patch.undo()


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
    max_leaves=15,
)
statuses = st.sampled_from(
    [
        recovery.TERMINATION_SUCCESSFUL,
        "Environment update completed successfully",
        "Environment health has transitioned from Ok to Severe",
    ]
)
names = st.sampled_from(["webapp-dev", "webapp-staging", "webapp-prod", "other-env"])


@st.composite
def near_valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """The EB termination event, with some fields changed, removed or of another type."""
    event = copy.deepcopy(EVENT)
    event["id"] = draw(st.uuids().map(str) | text)
    detail = event["detail"]
    detail["Status"] = draw(statuses | values)
    detail["EnvironmentName"] = draw(names | values)
    detail["ApplicationName"] = draw(names | values)
    for key in draw(st.lists(st.sampled_from([*event, *(f"detail.{k}" for k in detail)]))):
        if key.startswith("detail."):
            detail.pop(key[len("detail.") :], None)
        else:
            event.pop(key, None)
    if draw(st.booleans()):
        event[draw(st.sampled_from(["source", "detail-type", "region", "detail"]))] = draw(values)
    return event


@pytest.mark.usefixtures("aws_account")
@settings(max_examples=200)
@given(event=values | near_valid_events() | st.builds(lambda value: {"id": value}, values))
def test_start_recovery_ignores_or_processes_any_event(event: Any) -> None:
    result = start_recovery.handler(event, Context())

    assert isinstance(result, dict)
    assert result.get("action") in ACTIONS
    if result["action"] == "ignored":
        assert result.get("reason")


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.mark.usefixtures("aws_account")
def test_ignored_event_is_logged() -> None:
    lines = Lines()
    logging.getLogger(logger.service).addHandler(lines)
    try:
        result = start_recovery.handler({"id": "x", "detail": "not a detail"}, Context())
    finally:
        logging.getLogger(logger.service).removeHandler(lines)

    assert result["action"] == "ignored"
    assert "event ignored: not an EB status-change event" in lines.messages


@pytest.mark.usefixtures("aws_account")
@settings(max_examples=40)
@given(event=values | near_valid_events() | st.builds(lambda value: {"id": value}, values))
def test_sweep_runs_for_any_event(event: Any) -> None:
    result = sweep_environments.handler(event, Context())

    assert isinstance(result, dict)
    assert {decision["environment"] for decision in result["environments"]} == {
        "dev",
        "staging",
        "prod",
    }
