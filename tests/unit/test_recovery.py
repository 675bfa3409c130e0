"""Recovery's pure logic: event parsing, environment mapping, request ids, settings."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from control_plane.sandbox.events import rate_seconds
from lambdas.common.models import REQUEST_ID_PATTERN
from lambdas.common.recovery import (
    StatusChangeEvent,
    managed_environment,
    recovery_request_id,
)
from lambdas.common.settings import SettingsError, load_settings, parse_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = load_settings(REPO_ROOT / "environments.yaml")


def test_aws_shaped_event_parses() -> None:
    event = json.loads((REPO_ROOT / "tests/fixtures/eb-environment-terminated.json").read_text())

    parsed = StatusChangeEvent.model_validate(event)

    assert parsed.source == "aws.elasticbeanstalk"
    assert parsed.detail_type == "Elastic Beanstalk resource status change"
    assert parsed.detail.status == "Environment termination successful"
    assert parsed.detail.environment_name == "webapp-dev"
    assert parsed.detail.application_name == "webapp-dev"
    assert parsed.detail.event_date == 1767227513951


@pytest.mark.parametrize(
    ("eb_environment", "application", "expected"),
    [
        ("webapp-dev", "webapp-dev", "dev"),
        ("webapp-prod", "webapp-prod", "prod"),
        ("webapp-dev", None, "dev"),
        ("webapp-dev", "webapp-prod", None),
        ("billing-prod", "billing", None),
        ("dev", "webapp-dev", None),
    ],
)
def test_event_maps_to_managed_environment(
    eb_environment: str, application: str | None, expected: str | None
) -> None:
    assert managed_environment(SETTINGS, eb_environment, application) == expected


def test_recovery_request_id_is_deterministic() -> None:
    first = recovery_request_id("dev", "r-1")

    assert first == recovery_request_id("dev", "r-1")
    assert first != recovery_request_id("dev", "r-2")
    assert first != recovery_request_id("staging", "r-1")
    assert re.fullmatch(REQUEST_ID_PATTERN, first)
    # The execution name `<environment>-<requestId>` must fit Step Functions' 80 characters.
    assert len(f"{'e' * 31}-{first}") <= 80


def test_recovery_settings_default_to_three_per_hour() -> None:
    dev = SETTINGS.environment("dev")

    assert dev.recovery.enabled is True
    assert dev.recovery.max_recoveries == 3
    assert dev.recovery.window_seconds == 3600
    assert dev.eb_environment_name == "webapp-dev"


def test_recovery_settings_per_environment() -> None:
    document = SETTINGS.model_dump(mode="json")
    document["environments"]["dev"]["recovery"] = {"max_recoveries": 5, "window_seconds": 7200}
    document["environments"]["dev"]["eb_environment"] = "webapp-dev-blue"

    dev = parse_settings(document, "environments.yaml").environment("dev")

    assert dev.recovery.max_recoveries == 5
    assert dev.recovery.window_seconds == 7200
    assert dev.eb_environment_name == "webapp-dev-blue"


def test_invalid_recovery_settings_are_named() -> None:
    document = SETTINGS.model_dump(mode="json")
    document["environments"]["dev"]["recovery"] = {"max_recoveries": 0, "windows": 5}

    with pytest.raises(SettingsError) as raised:
        parse_settings(document, "environments.yaml")

    assert "environments.dev.recovery.max_recoveries" in str(raised.value)
    assert "environments.dev.recovery.windows" in str(raised.value)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(15 minutes)", 900), ("rate(1 minute)", 60), ("rate(2 hours)", 7200)],
)
def test_rate_expression_period(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


def test_cron_schedule_is_rejected_by_name() -> None:
    with pytest.raises(NotImplementedError, match="cron"):
        rate_seconds("cron(0 12 * * ? *)")
