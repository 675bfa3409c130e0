"""Scenario files are rejected before any sandbox starts, naming the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.sandbox.scenario import ScenarioError, check_unique_names, load_scenario

KNOWN = {"dev", "staging", "prod"}
SCENARIOS = sorted((Path(__file__).parents[1] / "scenarios").glob("*.yaml"))


def load_text(tmp_path: Path, text: str | bytes) -> None:
    path = tmp_path / "scenario.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    load_scenario(path, KNOWN)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps:\n  - wait_all: 5\nexpect:\n  - {step: 1}\n", "expected a mapping of arguments"),
        (
            "steps:\n  - terminate_environment: true\nexpect:\n  - {step: 1}\n",
            "expected a mapping of arguments",
        ),
        ("steps:\n  - 7\nexpect:\n  - {step: 1}\n", "steps.0: Input should be a valid dictionary"),
        (
            "steps:\n  - {deploy: {version: v1}, at_step: 1}\nexpect:\n  - {step: 1}\n",
            "at_step belongs to a fault",
        ),
        (
            "steps:\n  - deploy: {version: v1}\nfaults:\n  - {outputs_unavailable: {reads: 1},"
            " at_step: true}\nexpect:\n  - {step: 1}\n",
            "at_step: must be a step number",
        ),
        (
            "steps:\n  - deploy: {version: v1}\n  - wait_all: {}\nexpect:\n  - {step: 2}\n",
            "expectations apply to deploy steps",
        ),
        (
            "steps:\n  - deploy: {version: v1, request_id: a}\n"
            "  - deploy: {version: v2, request_id: a}\nexpect:\n  - {step: 2}\n",
            "'a' is already used by step 1",
        ),
        (
            "steps:\n  - deploy: {version: v1, bundle: no-such-folder}\nexpect:\n  - {step: 1}\n",
            "deploy.bundle",
        ),
        (
            "steps:\n  - deploy: {version: v1}\n  - deploy: {version: v1}\nsteps: []\n"
            "expect:\n  - {step: 1}\n",
            "key 'steps' appears twice",
        ),
    ],
)
def test_invalid_scenario_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_text(tmp_path, "name: x\nenvironment: dev\n" + text)


def test_non_utf8_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not UTF-8"):
        load_text(tmp_path, b"name: \xff\xfe\n")


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_shipped_scenarios_load(path: Path) -> None:
    loaded = load_scenario(path, KNOWN)

    assert loaded.steps


def test_names_are_unique_in_the_suite() -> None:
    loaded = [load_scenario(path, KNOWN) for path in SCENARIOS]

    check_unique_names(loaded)
    with pytest.raises(ScenarioError, match="is also used by"):
        check_unique_names([*loaded, loaded[0]])
