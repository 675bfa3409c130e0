"""The health faults in scenario files: validated before any sandbox starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.sandbox.scenario import ScenarioError, load_scenario

STEPS = "name: x\nenvironment: dev\nsteps:\n  - deploy: {version: v1}\nexpect:\n  - {step: 1}\n"


def load_fault(tmp_path: Path, fault: str) -> list:
    path = tmp_path / "scenario.yaml"
    path.write_text(STEPS + "faults:\n  - " + fault + "\n")
    return load_scenario(path, {"dev"}).faults


@pytest.mark.parametrize(
    "fault",
    [
        "environment_health: {color: Yellow, after_version: v1}",
        "environment_health: {color: Red, status: Severe, causes: [down], after_version: v1}",
        "health_sequence: {after_version: v1, colors: [[Yellow, 0], [Green, 300]]}",
    ],
)
def test_health_faults_load(tmp_path: Path, fault: str) -> None:
    (loaded,) = load_fault(tmp_path, fault)

    assert loaded.arguments.after_version == "v1"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            "environment_health: {color: Blue, after_version: v1}",
            "faults.0.environment_health: color: Input should be 'Green', 'Yellow', 'Red' or "
            "'Grey'",
        ),
        (
            "environment_health: {color: Red, status: Warning, after_version: v1}",
            "health status 'Warning' is not Red; Red is Degraded, Severe",
        ),
        ("environment_health: {color: Red}", "after_version: Field required"),
        (
            "health_sequence: {after_version: v1, colors: [[Yellow, 60], [Green, 30]]}",
            "offsets must increase: 30.0 s follows 60.0 s",
        ),
        (
            "health_sequence: {after_version: v1, colors: [[Yellow, -5]]}",
            r"colors.0.1: Input should be greater than or equal to 0",
        ),
        ("health_sequence: {after_version: v1, colors: []}", "colors: List should have at least 1"),
        ("health_sequence: {after_version: v1, colors: [[Yellow]]}", "colors.0.1: Field required"),
    ],
)
def test_bad_health_faults_name_the_problem(tmp_path: Path, fault: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_fault(tmp_path, fault)
