"""CLI arguments: any arguments end with a documented exit status and no stack trace.

The commands act on a control plane in moto, in-process, whichever of `--sandbox` or `--region`
the arguments name, so nothing reaches a network. Executions never run there: deploy's wait
is replaced by one that applies ValidateRequest's checks to the input, as the state machine's
first state would.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from control_plane import cli
from control_plane.executions import ExecutionReport
from lambdas.common.errors import InvalidRequest
from lambdas.validate_request import validate
from tests.ledger_table import create_ledger_table

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_APP = REPO_ROOT / "samples" / "webapp"
# The README's exit statuses: 0, 1 (usage or AWS error), 2 (invalid arguments), 3 (no sandbox),
# 13 (bundle rejected), 130 (Ctrl-C) and each outcome's code.
DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 13, 130, *cli.EXIT_CODES.values()}


@pytest.fixture(scope="module")
def moto_target() -> Iterator[cli.Target]:
    """A control plane in moto, returned for --sandbox and for any --region alike."""
    patch = pytest.MonkeyPatch()
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    patch.setenv("ENVIRONMENTS_FILE", str(REPO_ROOT / "environments.yaml"))
    patch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        region = "us-east-1"
        sfn = boto3.client("stepfunctions", region_name=region)
        dynamodb = boto3.client("dynamodb", region_name=region)
        s3 = boto3.client("s3", region_name=region)
        s3.create_bucket(Bucket="bundles")
        state_machine = sfn.create_state_machine(
            name="Deploy",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn="arn:aws:iam::123456789012:role/deploy",
        )["stateMachineArn"]
        create_ledger_table(dynamodb, "ledger")
        target = cli.Target(
            sfn=sfn,
            s3=s3,
            dynamodb=dynamodb,
            elasticbeanstalk=boto3.client("elasticbeanstalk", region_name=region),
            state_machine_arn=state_machine,
            bundle_bucket="bundles",
            table_name="ledger",
            make_client=lambda service, other: boto3.client(service, region_name=other or region),
        )
        patch.setattr(cli, "_sandbox_target", lambda start: target)
        patch.setattr(cli, "_aws_target", lambda region: target)
        patch.setattr(cli, "wait_for_execution", validating_wait(sfn))
        yield target
    patch.undo()


def validating_wait(sfn: Any) -> Any:
    """Return a stand-in for wait_for_execution that ends the execution as ValidateRequest would."""

    def wait(client: Any, arn: str, **options: Any) -> ExecutionReport:
        raw = json.loads(sfn.describe_execution(executionArn=arn)["input"])
        try:
            validate(raw)
        except InvalidRequest as error:
            return ExecutionReport(
                arn, "FAILED", ["ValidateRequest"], 1, {}, "InvalidRequest", str(error)
            )
        return ExecutionReport(arn, "SUCCEEDED", ["ValidateRequest"], 1)

    return wait


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CONTROL_PLANE_SANDBOX_DIR", str(tmp_path / "sandbox-state"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def check(result: Result) -> None:
    """Assert the run ended with a documented status, a message and no stack trace."""
    assert result.exit_code in DOCUMENTED_EXIT_CODES, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    if result.exit_code not in (0,):
        assert result.output.strip()


# A command line cannot carry NUL bytes or lone surrogates, so the fuzzer does not either.
argument = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
# Long values too: DynamoDB keys and execution names have size limits.
long_values = st.builds(
    lambda char, count: char * count, st.sampled_from("a-€"), st.integers(1, 3000)
)
environments = st.sampled_from(["dev", "staging", "prod", "qa"]) | argument | long_values
# Relative names only, in an empty folder: the fuzzer never bundles a real folder by accident.
local_names = argument.filter(lambda name: "/" not in name and not name.startswith("."))
bundles = (
    st.sampled_from(["s3://bundles/bundles/dev/abc.zip"])
    | st.builds("s3://{}".format, argument)
    | local_names
)
outputs = st.sampled_from(["text", "json"]) | argument
target_flags = st.sampled_from([["--sandbox"], ["--region", "us-east-1"], []])


@pytest.mark.usefixtures("moto_target")
@settings(max_examples=60)
@given(
    environment=environments,
    version=st.sampled_from(["v1"]) | argument,
    bundle=bundles,
    request_id=st.none() | st.sampled_from(["r-1"]) | argument,
    output=outputs,
    flags=target_flags,
)
def test_deploy_arguments(
    runner: CliRunner,
    environment: str,
    version: str,
    bundle: str,
    request_id: str | None,
    output: str,
    flags: list[str],
) -> None:
    arguments = ["deploy", *flags, "-e", environment, "-v", version, "-b", bundle]
    arguments += ["--output", output]
    if request_id is not None:
        arguments += ["--request-id", request_id]

    check(runner.invoke(cli.main, arguments))


@pytest.mark.usefixtures("moto_target")
@settings(max_examples=60)
@given(
    command=st.sampled_from([["status"], ["history"], ["lock", "show"], ["lock", "release"]]),
    environment=environments,
    output=outputs,
    limit=st.none() | argument | st.integers().map(str),
    flags=target_flags,
)
def test_environment_commands_arguments(
    runner: CliRunner,
    command: list[str],
    environment: str,
    output: str,
    limit: str | None,
    flags: list[str],
) -> None:
    arguments = [*command, *flags, "-e", environment]
    if command != ["lock", "release"]:
        arguments += ["--output", output]
    if command == ["history"] and limit is not None:
        arguments += ["--limit", limit]

    check(runner.invoke(cli.main, arguments))


@pytest.mark.usefixtures("moto_target")
@settings(max_examples=40)
@given(
    execution=argument
    | long_values
    | st.builds("arn:aws:states:us-east-1:123456789012:execution:Deploy:{}".format, argument)
    | st.builds("arn:{}".format, argument),
    output=outputs,
    flags=target_flags,
)
def test_show_arguments(runner: CliRunner, execution: str, output: str, flags: list[str]) -> None:
    check(runner.invoke(cli.main, ["show", *flags, execution, "--output", output]))


@settings(max_examples=40)
@given(
    source=st.sampled_from([str(SAMPLE_APP), str(SAMPLE_APP), "s3://bundles/app.zip"])
    | local_names,
    output_file=st.none()
    | st.sampled_from([".", "missing/app.zip", "app.zip/"])
    | local_names
    | st.builds("{}/{}".format, local_names, local_names),
)
def test_bundle_arguments(runner: CliRunner, source: str, output_file: str | None) -> None:
    arguments = ["bundle", source]
    if output_file is not None:
        arguments += ["-o", output_file]

    check(runner.invoke(cli.main, arguments))


TOKENS = [
    "deploy",
    "status",
    "history",
    "lock",
    "show",
    "bundle",
    "release",
    "-e",
    "-v",
    "-b",
    "--request-id",
    "--output",
    "--limit",
    "--sandbox",
    "--region",
    "--help",
    "json",
    "dev",
]


@pytest.mark.usefixtures("moto_target")
@settings(max_examples=80)
@given(argv=st.lists(st.sampled_from(TOKENS) | local_names, max_size=8))
def test_any_argument_list(runner: CliRunner, argv: list[str]) -> None:
    check(runner.invoke(cli.main, argv))


def test_fuzz_never_leaves_the_temporary_folder(runner: CliRunner) -> None:
    """The fixture's folder is the working directory, so `bundle -o NAME` writes only there."""
    assert Path(os.getcwd()).is_relative_to(Path(os.environ["CONTROL_PLANE_SANDBOX_DIR"]).parent)
