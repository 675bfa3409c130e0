"""CLI errors the fuzz tests found: each ends with a message and exit status, not a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from control_plane import cli

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_APP = REPO_ROOT / "samples" / "webapp"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CONTROL_PLANE_SANDBOX_DIR", str(tmp_path / "sandbox-state"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


@pytest.fixture
def target_without_table(monkeypatch: pytest.MonkeyPatch) -> Iterator[cli.Target]:
    """A control plane in moto whose table is missing, as with a stack deleted meanwhile."""
    with mock_aws():
        region = "us-east-1"
        target = cli.Target(
            sfn=boto3.client("stepfunctions", region_name=region),
            s3=boto3.client("s3", region_name=region),
            dynamodb=boto3.client("dynamodb", region_name=region),
            elasticbeanstalk=boto3.client("elasticbeanstalk", region_name=region),
            state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:Deploy",
            bundle_bucket="bundles",
            table_name="deleted-table",
        )
        monkeypatch.setattr(cli, "_sandbox_target", lambda start: target)
        yield target


@pytest.mark.parametrize("output_file", ["missing/app.zip", "."])
def test_bundle_to_unwritable_path_names_it(runner: CliRunner, output_file: str) -> None:
    result = runner.invoke(cli.main, ["bundle", str(SAMPLE_APP), "-o", output_file])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert f"cannot write the bundle to {output_file}" in result.output


@pytest.mark.usefixtures("target_without_table")
@pytest.mark.parametrize("command", [["history"], ["lock", "show"], ["lock", "release"]])
def test_aws_error_is_a_message(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(cli.main, [*command, "--sandbox", "-e", "dev"])

    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "AWS call failed" in result.output
    assert "ResourceNotFoundException" in result.output


@pytest.mark.parametrize("command", [["history"], ["lock", "show"], ["lock", "release"]])
def test_environment_name_checked_before_any_call(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(cli.main, [*command, "--sandbox", "-e", "a" * 3000])

    assert result.exit_code == 2
    assert "Invalid value for '--environment'" in result.output
    assert "1 to 31 lowercase letters" in result.output


def test_bundle_of_s3_uri_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(cli.main, ["bundle", "s3://bucket/app.zip"])

    assert result.exit_code == 2
    assert "not an s3:// URI" in result.output
