"""Scheduled drift checks: settings, schedule slots, the plan of a check and its ledger record."""

from __future__ import annotations

import pytest

from lambdas.common.drift import drift_check_request_id, schedule_slot
from lambdas.common.settings import EnvironmentSettings, SettingsError, parse_settings
from lambdas.inspect_infrastructure import scheduled_check_plan
from lambdas.read_drift_result import drift_message, drift_outcome
from lambdas.record import build_record

BASE = {
    "region": "us-east-1",
    "pulumi_project": "webapp",
    "pulumi_stack": "dev",
    "backend_url": "s3://state",
    "eb_application": "webapp-dev",
}
SIX_AM = 1_767_247_200  # 2026-01-01T06:00:00Z


def environment(**drift_check: object) -> EnvironmentSettings:
    return EnvironmentSettings.model_validate({**BASE, "drift_check": drift_check})


# Settings


def test_drift_check_defaults() -> None:
    settings = EnvironmentSettings.model_validate(BASE)

    assert settings.drift_check.every_minutes == 360
    assert settings.drift_check.remediate is False


@pytest.mark.parametrize("minutes", [0, 15, 60, 1440])
def test_valid_check_periods(minutes: int) -> None:
    assert environment(every_minutes=minutes).drift_check.every_minutes == minutes


@pytest.mark.parametrize(
    ("drift_check", "problem"),
    [
        ({"every_minutes": 5}, "must be 0 (no scheduled checks) or at least 15, got 5"),
        ({"every_minutes": -1}, "greater than or equal to 0"),
        ({"remediate": "yes"}, "drift_check.remediate: Input should be a valid boolean"),
        ({"every_hours": 6}, "drift_check.every_hours: Extra inputs are not permitted"),
    ],
)
def test_invalid_drift_check_is_listed_by_key(drift_check: dict, problem: str) -> None:
    document = {"environments": {"dev": {**BASE, "drift_check": drift_check}}}

    with pytest.raises(SettingsError) as raised:
        parse_settings(document, "environments.yaml")

    assert "environments.dev.drift_check" in str(raised.value)
    assert problem in str(raised.value)


# Schedule slots


@pytest.mark.parametrize(
    ("at", "minutes", "slot"),
    [
        (SIX_AM, 360, SIX_AM),
        (SIX_AM + 7, 360, SIX_AM),
        (SIX_AM + 6 * 3600 - 1, 360, SIX_AM),
        (SIX_AM + 6 * 3600, 360, SIX_AM + 6 * 3600),
        (SIX_AM + 20 * 60, 15, SIX_AM + 15 * 60),
    ],
)
def test_schedule_slot_start(at: int, minutes: int, slot: int) -> None:
    assert schedule_slot(at, minutes) == slot


def test_request_id_names_the_slot_in_utc() -> None:
    assert drift_check_request_id(SIX_AM) == "drift-20260101T0600Z"
    assert drift_check_request_id(SIX_AM + 15 * 60) == "drift-20260101T0615Z"


# The plan of a scheduled check


@pytest.mark.parametrize("remediate", [False, True])
def test_transitional_environment_is_waited_out(remediate: bool) -> None:
    plan, _, check_only = scheduled_check_plan(
        environment(remediate=remediate), "wait-transitional", "environment is Updating"
    )

    assert plan == "wait-transitional"
    assert check_only is True


@pytest.mark.parametrize("state_plan", ["provision", "recover"])
@pytest.mark.parametrize("remediate", [False, True])
def test_missing_environment_is_only_previewed(state_plan: str, remediate: bool) -> None:
    plan, reason, check_only = scheduled_check_plan(
        environment(remediate=remediate), state_plan, "environment webapp-dev is terminated"
    )

    assert plan == "check-drift"
    assert check_only is True
    assert "recovery or a deployment recreates it" in reason


@pytest.mark.parametrize(("remediate", "check_only"), [(False, True), (True, False)])
def test_live_environment_follows_remediate(remediate: bool, check_only: bool) -> None:
    plan, _, chosen = scheduled_check_plan(
        environment(remediate=remediate), "check-drift", "environment webapp-dev is Ready"
    )

    assert plan == "check-drift"
    assert chosen is check_only


# Outcome and ledger record


@pytest.mark.parametrize(
    ("document", "outcome"),
    [
        ({"action": "check-only", "drift": []}, "NoDrift"),
        ({"action": "check-only", "drift": ["update a"]}, "DriftDetected"),
        ({"action": "check", "drift": []}, "NoDrift"),
        ({"action": "check", "drift": ["update a"], "changes": True}, "DriftRemediated"),
    ],
)
def test_outcome_of_result_document(document: dict, outcome: str) -> None:
    assert drift_outcome(document)[0] == outcome


def test_no_drift_message_names_the_preview() -> None:
    assert "found no difference" in drift_message("NoDrift", [])


def test_drift_check_record_carries_outcome_and_changes() -> None:
    state = {
        "request": {
            "environment": "dev",
            "requestId": "drift-20260101T0600Z",
            "version": "v1",
            "trigger": "schedule",
        },
        "inspection": {"plan": "check-drift"},
        "drift": {
            "outcome": "DriftDetected",
            "message": "`pulumi preview --refresh` found 1 difference(s)",
            "changes": ["update urn:pulumi:dev::webapp::bucket"],
            "summary": {"update": 1, "same": 22},
        },
    }

    record = build_record(state, "arn:exec", "dev-drift-20260101T0600Z")

    assert record["outcome"] == "DriftDetected"
    assert record["plan"] == "check-drift"
    assert record["trigger"] == "schedule"
    assert record["drift"] == ["update urn:pulumi:dev::webapp::bucket"]
    assert record["driftSummary"] == {"update": 1, "same": 22}
    assert record["cause"].startswith("`pulumi preview --refresh` found 1")
    assert "errorName" not in record


def test_failed_drift_check_records_the_failure() -> None:
    state = {
        "request": {"environment": "dev", "requestId": "drift-1", "trigger": "schedule"},
        "inspection": {"plan": "check-drift"},
        "failure": {"Error": "PreviewFailed", "Cause": "`pulumi preview` failed"},
    }

    record = build_record(state, "arn:exec", "dev-drift-1")

    assert record["outcome"] == "PreviewFailed"
    assert record["errorName"] == "PreviewFailed"


def test_yielded_drift_check_is_superseded_with_its_reason() -> None:
    state = {
        "request": {"environment": "dev", "requestId": "drift-1", "trigger": "schedule"},
        "lock": {"superseded": True, "by": "r-7", "yielded": True},
    }

    record = build_record(state, "arn:exec", "dev-drift-1")

    assert record["outcome"] == "Superseded"
    assert "gave way to request r-7" in record["cause"]
    assert "nothing was checked" in record["cause"]
