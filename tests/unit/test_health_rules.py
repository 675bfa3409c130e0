"""Health acceptance rules and wait deadlines, as pure logic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.cli import EXIT_CODES
from lambdas.common import clock
from lambdas.common.errors import WaitTimedOut
from lambdas.common.health import color_of, judge_health, settled_since
from lambdas.common.settings import (
    HealthSettings,
    SettingsError,
    load_settings,
    parse_settings,
)
from lambdas.common.waits import DEPLOYMENT_WAIT_SECONDS, WaitDeadline, parse_entered_time

GREEN_ONLY = HealthSettings()
YELLOW_OK = HealthSettings(accept_yellow=True, settling_seconds=120)
NOW = 1_800_000_000.0


@pytest.fixture
def fixed_clock() -> Iterator[list[float]]:
    """Make clock.now() return the list's first value, which a test may change."""
    time = [NOW]
    clock.install(lambda: time[0])
    yield time
    clock.install(None)


def never_called() -> float:
    raise AssertionError("settled_for must not be called for this color")


@pytest.mark.parametrize(
    ("color", "status", "rules", "outcome"),
    [
        ("Green", "Ok", GREEN_ONLY, "accepted"),
        ("Green", "Info", YELLOW_OK, "accepted"),
        ("Red", "Degraded", GREEN_ONLY, "failed"),
        ("Red", "Severe", YELLOW_OK, "failed"),
        ("Grey", "NoData", GREEN_ONLY, "waiting"),
        ("Grey", "Pending", YELLOW_OK, "waiting"),
        ("Yellow", "Warning", GREEN_ONLY, "waiting"),
    ],
)
def test_health_verdict_by_color(
    color: str, status: str, rules: HealthSettings, outcome: str
) -> None:
    verdict = judge_health(color, status, rules, never_called)

    assert verdict.outcome == outcome
    assert color in verdict.reason
    assert status in verdict.reason


def test_yellow_not_accepted_names_the_setting() -> None:
    verdict = judge_health("Yellow", "Warning", GREEN_ONLY, never_called)

    assert "accepts only Green (health.accept_yellow is false)" in verdict.reason


@pytest.mark.parametrize(
    ("settled", "outcome"), [(0, "waiting"), (119, "waiting"), (120, "accepted")]
)
def test_yellow_is_accepted_after_the_settling_window(settled: float, outcome: str) -> None:
    verdict = judge_health("Yellow", "Warning", YELLOW_OK, lambda: settled)

    assert verdict.outcome == outcome
    assert "120 s" in verdict.reason


def test_settling_starts_when_the_update_completed() -> None:
    events = [(NOW, "Environment health has transitioned from Pending to Warning.")]

    assert settled_since(NOW, events) == NOW


def test_settling_restarts_after_red_or_grey() -> None:
    events = [
        (NOW + 90, "Environment health has transitioned from Degraded to Warning."),
        (NOW, "Environment health has transitioned from Pending to Warning."),
        (NOW + 30, "Environment health has transitioned from Warning to Degraded."),
        (NOW + 40, "New application version was deployed to running EC2 instances."),
    ]

    assert settled_since(NOW, events) == NOW + 90


def test_settling_has_not_started_while_health_is_worse() -> None:
    events = [(NOW + 30, "Environment health has transitioned from Warning to NoData.")]

    assert settled_since(NOW, events) is None


def test_basic_health_colors_are_recognised() -> None:
    events = [
        (NOW + 10, "Environment health has transitioned from GREEN to RED."),
        (NOW + 20, "Environment health has transitioned from RED to YELLOW."),
    ]

    assert settled_since(NOW, events) == NOW + 20
    assert [color_of(name) for name in ("Ok", "info", "WARNING", "Severe", "Suspended")] == [
        "Green",
        "Green",
        "Yellow",
        "Red",
        "Grey",
    ]
    assert color_of("Purple") is None


def test_entered_time_parses_the_aws_format() -> None:
    # The example of the Step Functions documentation's Context object page.
    assert parse_entered_time("2019-03-26T20:14:13.192Z") == pytest.approx(1553631253.192)
    assert parse_entered_time("2026-01-01T00:00:00+00:00") == 1767225600.0
    with pytest.raises(ValueError, match="no time zone"):
        parse_entered_time("2026-01-01T00:00:00")


def test_deadline_counts_from_the_entered_time(fixed_clock: list[float]) -> None:
    event = {"waitStartedAt": "2027-01-15T08:00:00Z"}
    started = parse_entered_time("2027-01-15T08:00:00Z")

    fixed_clock[0] = started + 1199
    deadline = WaitDeadline.from_event(event, 1200)
    before = deadline.expired()
    fixed_clock[0] = started + 1200

    assert before is False
    assert deadline.expired() is True
    error = deadline.timed_out("webapp-dev to run v2", "environment webapp-dev is Updating")
    assert isinstance(error, WaitTimedOut)
    assert str(error) == (
        "gave up waiting for webapp-dev to run v2 after 1200 s (budget 1200 s): "
        "environment webapp-dev is Updating"
    )


@pytest.mark.parametrize("event", [{}, {"waitStartedAt": "yesterday"}])
def test_deadline_without_entered_time_starts_now(
    fixed_clock: list[float], event: dict[str, str]
) -> None:
    deadline = WaitDeadline.from_event(event, 900)

    assert deadline.started_at == NOW
    assert deadline.elapsed() == 0


def environments_with_health(health: object) -> dict:
    base = {
        "region": "us-east-1",
        "pulumi_project": "webapp",
        "pulumi_stack": "dev",
        "backend_url": "s3://{state_bucket}",
        "eb_application": "webapp-dev",
    }
    return {"environments": {"dev": {**base, "health": health}}}


def test_health_settings_default_to_green_only() -> None:
    settings = parse_settings(environments_with_health({}), "environments.yaml")

    assert settings.environment("dev").health == HealthSettings(
        accept_yellow=False, settling_seconds=120
    )


@pytest.mark.parametrize(
    ("health", "message"),
    [
        (
            {"accept_yellow": "yes"},
            "environments.dev.health.accept_yellow: Input should be a valid boolean",
        ),
        (
            {"settling_seconds": -1},
            "environments.dev.health.settling_seconds: Input should be greater",
        ),
        (
            {"settling_seconds": DEPLOYMENT_WAIT_SECONDS},
            "environments.dev.health.settling_seconds: Input should be less than or equal to 600",
        ),
        (
            {"accept_red": True},
            "environments.dev.health.accept_red: Extra inputs are not permitted",
        ),
    ],
)
def test_health_settings_reject_bad_values(health: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse_settings(environments_with_health(health), "environments.yaml")


def test_sample_settings_accept_yellow_only_in_staging() -> None:
    settings = load_settings(Path(__file__).resolve().parents[2] / "environments.yaml")

    accepting = {name for name, env in settings.environments.items() if env.health.accept_yellow}
    assert accepting == {"staging"}
    assert settings.environment("staging").health.settling_seconds == 120


def test_wait_timed_out_has_its_own_exit_code() -> None:
    assert EXIT_CODES["WaitTimedOut"] == 27
    assert list(EXIT_CODES.values()).count(27) == 1
