"""Workflow tier: each scenario file runs the synthesized state machine in a fresh sandbox.

The expectations live in the files (tests/scenarios/). The suite runs one test file per
worker process (a sandbox is one per process), so the scenarios are split over the
test_scenarios_*.py files by a stable hash of their names, and the workers share them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from control_plane.sandbox.scenario_runner import run_scenario_file

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))
SHARDS = 4


def scenarios_of(shard: int) -> list[Path]:
    """Return the scenario files that shard `shard` (0 to SHARDS - 1) runs."""
    return [path for path in SCENARIOS if zlib.crc32(path.stem.encode()) % SHARDS == shard]


def scenario_test(shard: int) -> Callable[..., None]:
    """Build the parametrized test that runs one shard's scenario files."""
    paths = scenarios_of(shard)

    @pytest.mark.workflow
    @pytest.mark.parametrize("path", paths, ids=[path.stem for path in paths])
    def test_scenario_expectations_hold(path: Path, tmp_path: Path) -> None:
        result = run_scenario_file(path, work_root=tmp_path)

        failed = [check.line for check in result.checks if not check.passed]
        assert not failed, "\n".join(check.line for check in result.checks)
        # The file's expectations plus the always-checked invariants.
        assert len(result.checks) >= 4

    return test_scenario_expectations_hold
