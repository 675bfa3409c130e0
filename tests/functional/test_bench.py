"""The benchmark (bench/run.py) at a small scale: one launch time per configuration.

The current configuration and the baseline (readiness polled every 20 s for up to 30 checks, a
Pulumi preview on every deployment) each deploy the sample app in fresh sandboxes, as the full
benchmark does. The tests check what the figures rest on, never how long anything took.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_STATES = {"RunPulumi", "RunDriftCheck"}


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", REPO_ROOT / "bench" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


@pytest.fixture(scope="module")
def work_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def current(work_root: Path):
    return bench.run_mode(bench.CURRENT, offsets=(0,), work_root=work_root)


@pytest.fixture(scope="module")
def baseline(work_root: Path):
    return bench.run_mode(bench.BASELINE, offsets=(0,), work_root=work_root)


def test_every_deployment_succeeds(current, baseline) -> None:
    assert bench.failed_deployments(current, baseline) == []


def test_baseline_polls_every_wait(current, baseline) -> None:
    for run in baseline.runs:
        assert "WaitForEnvironment" in run.path
        assert "WaitForDeployment" in run.path
    for run in current.runs:
        assert "WaitForEnvironment" not in run.path
        assert "WaitForDeployment" not in run.path


def test_long_launch_costs_baseline_more_transitions(current, baseline) -> None:
    assert baseline.long.transitions > current.long.transitions
    assert baseline.long.transitions > baseline.happy.transitions
    assert current.long.transitions == current.happy.transitions


def test_no_change_redeploy_builds(current, baseline) -> None:
    current_again = current.happy.redeploy
    baseline_again = baseline.happy.redeploy

    assert current_again.status == "SUCCEEDED"
    assert current_again.builds_started == 0
    assert "SkipPulumi" in current_again.path
    assert not BUILD_STATES & set(current_again.path)
    assert baseline_again.status == "SUCCEEDED"
    assert baseline_again.builds_started >= 1
    assert "CheckDrift" in baseline_again.path


def test_first_deployment_runs_one_build(current, baseline) -> None:
    assert current.happy.builds_started == 1
    assert baseline.happy.builds_started == 1


def test_figure_lines_parse(current, baseline) -> None:
    figures = bench.deployment_figures(current, baseline)
    lines = bench.format_figures(figures).splitlines()

    assert re.split(r"\s{2,}", lines[0]) == ["figure", "current", "baseline", "ratio"]
    assert len(lines) == len(figures) + 1
    for line, figure in zip(lines[1:], figures, strict=True):
        name, current_value, reference, ratio = re.split(r"\s{2,}", line.strip())
        rounding = 0.5 * 10**-figure.digits
        assert name == figure.name
        assert float(current_value) == pytest.approx(figure.current, abs=rounding)
        assert float(reference) == pytest.approx(figure.reference, abs=rounding)
        if figure.reference:
            assert float(ratio) == pytest.approx(figure.current / figure.reference, abs=0.006)
        else:
            assert ratio == "-"


def test_cost_follows_transitions(current, baseline) -> None:
    figures = {figure.name: figure for figure in bench.deployment_figures(current, baseline)}
    long_launch = f"first deployment, {bench.LONG_LAUNCH_SECONDS // 60} min launch"
    transitions = figures[f"state transitions: {long_launch}"]
    cost = figures[f"Step Functions USD per deployment: {long_launch}"]

    assert cost.current == pytest.approx(transitions.current * 0.025 / 1000)
    assert cost.reference == pytest.approx(transitions.reference * 0.025 / 1000)


def test_target_and_missing_reference_lines() -> None:
    target = bench.Figure("import ms: lambdas.record", 150.0, 300, is_target=True)
    alone = bench.Figure("wall s: cdk synth --quiet", 12.5)

    assert re.split(r"\s{2,}", target.line().strip()) == [
        "import ms: lambdas.record",
        "150.0",
        "target 300.0",
        "0.50",
    ]
    assert re.split(r"\s{2,}", alone.line().strip()) == [
        "wall s: cdk synth --quiet",
        "12.5",
        "-",
        "-",
    ]


IMPORTTIME_OUTPUT = """\
import time: self [us] | cumulative | imported package
import time:       500 |       1200 | site
import time:       100 |        100 |     boto3.compat
import time:       300 |        400 |   boto3
import time:        50 |         50 |     json.decoder
import time:        70 |        120 |   json
import time:        40 |         40 |   lambdas
import time:        20 |         20 |     lambdas.common.clock
import time:       900 |       1480 | lambdas.record
"""


def test_importtime_output_parses() -> None:
    entries = bench.parse_importtime(IMPORTTIME_OUTPUT)

    assert [entry.name for entry in entries][:3] == ["site", "boto3.compat", "boto3"]
    assert [entry.depth for entry in entries] == [0, 2, 1, 2, 1, 1, 2, 0]
    assert bench.module_import_us(entries, "lambdas.record") == 1480
    assert bench.dominant_imports(entries) == [("boto3", 0.4), ("json", 0.12)]


def test_handler_import_is_measured() -> None:
    milliseconds, entries = bench.measure_import("lambdas.release_lock", runs=1)

    assert milliseconds > 0
    assert any(entry.name == "lambdas.release_lock" for entry in entries)
    assert "lambdas.release_lock" in bench.handler_modules()


def test_unknown_polling_context_is_rejected() -> None:
    from control_plane.workflow import READINESS_RETRY, readiness_retry

    assert readiness_retry(None) is READINESS_RETRY
    assert readiness_retry("fixed").interval_seconds == 20
    assert readiness_retry("fixed").max_attempts == 29
    with pytest.raises(ValueError, match="readinessPolling is 'sometimes'; set it to backoff"):
        readiness_retry("sometimes")
