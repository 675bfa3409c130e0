"""Event-driven readiness in the sandbox: how soon a deployment goes on once EB is done.

Each run deploys the sample app to a new environment in a fresh sandbox
(control_plane/sandbox/readiness_bench.py, which bench/readiness.py also runs). Polling notices
a Ready environment at its next check, on average about 10 s later, and its transitions grow
with the launch time. Released by EB's event, the next state starts within a second, and the
transitions stay the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.sandbox.readiness_bench import ReadinessRun, measure_deployment

POLLING_STATES = {"WaitForEnvironment", "WaitForDeployment"}
LAUNCH_SECONDS = (120, 600)


@pytest.fixture(scope="module")
def work_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("readiness")


@pytest.fixture(scope="module")
def runs(work_root: Path) -> dict[int, ReadinessRun]:
    return {
        launch: measure_deployment("events", launch, work_root=work_root)
        for launch in LAUNCH_SECONDS
    }


@pytest.mark.parametrize("launch_seconds", LAUNCH_SECONDS)
def test_event_releases_each_wait_within_a_second(
    runs: dict[int, ReadinessRun], launch_seconds: int
) -> None:
    run = runs[launch_seconds]

    assert run.status == "SUCCEEDED"
    assert not POLLING_STATES & set(run.path)
    assert run.latency_seconds["environment"] < 1
    assert run.latency_seconds["deployment"] < 1


def test_transitions_do_not_grow_with_launch_time(runs: dict[int, ReadinessRun]) -> None:
    short, long = (runs[launch] for launch in LAUNCH_SECONDS)

    assert short.status == long.status == "SUCCEEDED"
    assert short.transitions == long.transitions


def test_same_deployment_gives_the_same_timeline(
    runs: dict[int, ReadinessRun], work_root: Path
) -> None:
    again = measure_deployment("events", LAUNCH_SECONDS[0], work_root=work_root)

    assert again.timeline == runs[LAUNCH_SECONDS[0]].timeline
