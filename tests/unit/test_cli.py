"""The control-plane command: exit codes and messages for bad input, without AWS."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from control_plane.cli import main


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CONTROL_PLANE_SANDBOX_DIR", str(tmp_path / "sandbox-state"))
    return CliRunner()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


VALID_HEAD = "name: x\nenvironment: dev\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("steps:\n  - deploy: {version: v1}\n", "expect: Field required"),
        (
            "steps:\n  - advance: {seconds: 5}\nexpect:\n  - {step: 1}\n",
            "step 'advance' is not supported",
        ),
        ("steps:\n  - jump: {}\nexpect:\n  - {step: 1}\n", "unknown step 'jump'"),
        (
            "steps:\n  - deploy: {version: v1}\nfaults:\n  - lost_events: {}\n"
            "expect:\n  - {step: 1}\n",
            "fault 'lost_events' is not supported",
        ),
        ("steps:\n  - deploy: {version: v1}\nexpect:\n  - {step: 2}\n", "expect refers to step 2"),
        (
            "steps:\n  - deploy: {version: v1}\nexpect:\n  - {step: 1, outcome: Fine}\n",
            "expect.0.outcome",
        ),
        (
            "steps:\n  - deploy: {version: v1, colour: red}\nexpect:\n  - {step: 1}\n",
            "colour: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_scenario_exits_2(
    runner: CliRunner, tmp_path: Path, body: str, message: str
) -> None:
    result = runner.invoke(main, ["sandbox", "run", str(write(tmp_path, VALID_HEAD + body))])

    assert result.exit_code == 2
    assert message in result.output


def test_unknown_environment_in_scenario_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: x\nenvironment: qa\nsteps:\n  - deploy: {version: v1}\nexpect:\n  - {step: 1}\n",
    )

    result = runner.invoke(main, ["sandbox", "run", str(path)])

    assert result.exit_code == 2
    assert "'qa' is not defined" in result.output


def test_missing_scenario_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["sandbox", "run", str(tmp_path / "absent.yaml")])

    assert result.exit_code == 2
    assert "cannot read the file" in result.output


def test_status_without_sandbox(runner: CliRunner) -> None:
    result = runner.invoke(main, ["sandbox", "status"])

    assert result.exit_code == 3
    assert "sandbox not running" in result.output


def test_malformed_bundle_is_rejected_before_anything_starts(
    runner: CliRunner, tmp_path: Path
) -> None:
    app = tmp_path / "app"
    (app / "nested").mkdir(parents=True)
    (app / "nested" / "application.py").write_text("application = None\n")

    result = runner.invoke(
        main, ["deploy", "--sandbox", "-e", "dev", "-v", "v1", "--bundle", str(app)]
    )

    assert result.exit_code == 1
    assert "neither a Procfile nor application.py at its root" in result.output
    assert "zip that folder instead" in result.output
    assert not (tmp_path / "sandbox-state").exists()
