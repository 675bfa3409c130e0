"""Workflow tier: each scenario file runs the synthesized state machine in a fresh sandbox.

The expectations live in the files (tests/scenarios/); this test fails with every check line
of a scenario that did not hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from control_plane.sandbox.scenario_runner import run_scenario_file

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))

pytestmark = pytest.mark.workflow


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_scenario_expectations_hold(path: Path, tmp_path: Path) -> None:
    result = run_scenario_file(path, work_root=tmp_path)

    failed = [check.line for check in result.checks if not check.passed]
    assert not failed, "\n".join(check.line for check in result.checks)
    assert len(result.checks) >= 4  # the file's expectations plus the three always-checked
