"""Health faults of the Elastic Beanstalk simulator, seen through a real boto3 client.

`environment_health` makes EB report a color while a version runs; `health_sequence` changes
the color at set virtual times after the version is Ready. Both show in DescribeEnvironments,
DescribeEnvironmentHealth (with causes for every color but Green) and the event log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_eb_simulator import ENV, UPDATE, Harness


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "eb")
    harness.client.create_application(ApplicationName="shop")
    yield harness
    harness.close()


def health_of(harness: Harness) -> tuple[str, str, list[str]]:
    described = harness.describe()
    health = harness.client.describe_environment_health(
        EnvironmentName=ENV, AttributeNames=["Color", "HealthStatus", "Causes"]
    )
    assert (health["Color"], health["HealthStatus"]) == (
        described["Health"],
        described["HealthStatus"],
    )
    return health["Color"], health["HealthStatus"], health["Causes"]


def update_to(harness: Harness, label: str) -> None:
    harness.add_version(label)
    harness.deploy(label)


@pytest.mark.parametrize(
    ("color", "status"),
    [("Green", "Ok"), ("Yellow", "Warning"), ("Red", "Degraded"), ("Grey", "NoData")],
)
def test_environment_health_reports_color_after_update(
    harness: Harness, color: str, status: str
) -> None:
    harness.launch_ready("v1")
    harness.sim.set_environment_health("v2", color)
    update_to(harness, "v2")

    during_update = health_of(harness)
    harness.clock.advance(UPDATE)
    reported_color, reported_status, causes = health_of(harness)

    assert during_update[:2] == ("Grey", "Pending")
    assert harness.describe()["Status"] == "Ready"
    assert (reported_color, reported_status) == (color, status)
    assert bool(causes) == (color != "Green")


def test_environment_health_applies_only_to_its_version(harness: Harness) -> None:
    harness.sim.set_environment_health("v2", "Red", status="Severe", causes=["it broke"])
    harness.launch_ready("v1")
    update_to(harness, "v2")
    harness.clock.advance(UPDATE)

    red = health_of(harness)
    harness.deploy("v1")
    harness.clock.advance(UPDATE)

    assert red == ("Red", "Severe", ["it broke"])
    assert health_of(harness) == ("Green", "Ok", [])


def test_environment_health_applies_at_once_to_a_running_version(harness: Harness) -> None:
    harness.launch_ready("v1")

    harness.sim.set_environment_health("v1", "Yellow")

    assert health_of(harness)[:2] == ("Yellow", "Warning")
    assert harness.event_messages()[0] == "Environment health has transitioned from Ok to Warning."


def test_health_sequence_changes_color_at_its_offsets(harness: Harness) -> None:
    harness.launch_ready("v1")
    harness.sim.set_health_sequence("v2", [("Yellow", 0), ("Red", 60), ("Green", 300)])
    update_to(harness, "v2")
    harness.clock.advance(UPDATE)
    ready_at = harness.describe()["DateUpdated"].timestamp()

    seen = [health_of(harness)[:2]]
    for seconds in (59, 1, 239, 1):
        harness.clock.advance(seconds)
        seen.append(health_of(harness)[:2])

    assert seen == [
        ("Yellow", "Warning"),
        ("Yellow", "Warning"),
        ("Red", "Degraded"),
        ("Red", "Degraded"),
        ("Green", "Ok"),
    ]
    transitions = [
        (event["EventDate"].timestamp() - ready_at, event["Message"])
        for event in harness.client.describe_events(
            EnvironmentName=ENV, StartTime=harness.describe()["DateUpdated"]
        )["Events"]
        if event["Message"].startswith("Environment health")
    ]
    assert transitions == [
        (300, "Environment health has transitioned from Degraded to Ok."),
        (60, "Environment health has transitioned from Warning to Degraded."),
        (0, "Environment health has transitioned from Pending to Warning."),
    ]


def test_health_sequence_starts_with_app_health_before_first_offset(harness: Harness) -> None:
    harness.launch_ready("v1")
    harness.sim.set_health_sequence("v2", [("Yellow", 30)])
    update_to(harness, "v2")
    harness.clock.advance(UPDATE)

    before = health_of(harness)[:2]
    harness.clock.advance(30)

    assert before == ("Green", "Ok")
    assert health_of(harness)[:2] == ("Yellow", "Warning")


def test_new_update_ends_the_health_sequence(harness: Harness) -> None:
    harness.launch_ready("v1")
    harness.sim.set_health_sequence("v2", [("Yellow", 0), ("Red", 60)])
    update_to(harness, "v2")
    harness.clock.advance(UPDATE)

    harness.deploy("v1")
    harness.clock.advance(UPDATE + 60)

    assert health_of(harness) == ("Green", "Ok", [])


def test_rolling_update_stays_updating_until_done(harness: Harness) -> None:
    """EB reports the new label at once but stays Updating until every batch is done."""
    harness.launch_ready("v1")
    update_to(harness, "v2")

    harness.clock.advance(UPDATE - 1)
    during = harness.describe()
    harness.clock.advance(1)

    assert (during["Status"], during["VersionLabel"], during["Health"]) == (
        "Updating",
        "v2",
        "Grey",
    )
    assert harness.describe()["Status"] == "Ready"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"color": "Blue"}, "unknown health color 'Blue'; use one of Green, Yellow, Red, Grey"),
        ({"color": "Red", "status": "Warning"}, "'Warning' is not Red; Red is Degraded, Severe"),
    ],
)
def test_environment_health_rejects_bad_colors(
    harness: Harness, call: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        harness.sim.set_environment_health("v2", **call)


@pytest.mark.parametrize(
    ("colors", "message"),
    [
        ([], "needs at least one"),
        ([("Yellow", 10), ("Green", 10)], "offsets must increase: 10.0 s follows 10.0 s"),
        ([("Yellow", -1)], "must not be negative"),
    ],
)
def test_health_sequence_rejects_bad_phases(
    harness: Harness, colors: list[tuple[str, float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        harness.sim.set_health_sequence("v2", colors)
