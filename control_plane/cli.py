"""`control-plane`: deploy through the state machine, on AWS or in the local sandbox."""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import click
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from lambdas.common.errors import UNEXPECTED_FAILURE, ended_execution_error
from lambdas.common.models import REQUEST_ID_PATTERN, VERSION_LABEL_PATTERN
from lambdas.common.secret_screen import secret_kind
from lambdas.common.store import from_item

from .bundle import BundleError, build_bundle, checksum
from .cli_options import (
    ENVIRONMENTS_FILE_VARIABLE,
    check_sandbox_environment,
    environment_option,
    environment_settings,
    output_option,
    print_json,
    remember_environments_file,
)
from .dashboard import add_dashboard_command
from .executions import (
    ExecutionReport,
    RequestConflict,
    start_or_attach,
    upload_bundle,
    wait_for_execution,
)
from .inspect_cli import add_inspect_commands, lease_view
from .recovery_cli import add_recovery_commands
from .sandbox import daemon
from .sandbox.clock import DEFAULT_START
from .sandbox.template import REPO_ROOT

STACK_NAME = "EbControlPlane"
SAMPLE_APP = REPO_ROOT / "samples" / "webapp"
# Exit status per outcome, so scripts and CI can tell failures apart. Usage errors exit 2.
EXIT_CODES = {
    "Deployed": 0,
    "Superseded": 0,
    "RolledBack": 10,
    "InvalidRequest": 11,
    "ConfigurationMissing": 12,
    "BundleInvalid": 13,
    "StackNotSelected": 14,
    "StackLocked": 15,
    "PreviewFailed": 16,
    "UpFailed": 17,
    "OutputsNotAvailable": 18,
    "EnvironmentNotReady": 19,
    "VersionConflict": 20,
    "DeploymentFailed": 21,
    "HealthCheckFailed": 22,
    "RollbackFailed": 23,
    "EnvironmentLocked": 24,
    "EnvironmentBusy": 25,
    "LeaseLost": 26,
    "WaitTimedOut": 27,
    "RecoveryCancelled": 28,
    # The execution ended without recording an outcome: stopped by hand, or past its timeout.
    "ExecutionAborted": 31,
    "ExecutionTimedOut": 32,
    # Scheduled drift checks end SUCCEEDED whatever they found.
    "NoDrift": 0,
    "DriftDetected": 0,
    "DriftRemediated": 0,
    UNEXPECTED_FAILURE: 30,
}
# 128 + SIGINT, as shells report a command ended by Ctrl-C.
INTERRUPTED_EXIT_CODE = 130
SANDBOX_NOT_RUNNING_EXIT_CODE = 3
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class CliError(click.ClickException):
    """A user-facing error: printed without a traceback, exit status 1."""


class BundleRejected(CliError):
    """A local bundle that is invalid. Exits with BundleInvalid's code, as Preflight would."""

    exit_code = EXIT_CODES["BundleInvalid"]


class SandboxNotAnswering(CliError):
    """A sandbox whose process runs but whose endpoint does not respond."""

    exit_code = SANDBOX_NOT_RUNNING_EXIT_CODE


class DeploymentInterrupted(Exception):
    """Ctrl-C while deploying. `arn` is the execution's ARN once StartExecution has returned."""

    def __init__(self, arn: str | None) -> None:
        super().__init__(arn)
        self.arn = arn


@dataclass
class Target:
    """The control plane a command acts on: its AWS clients and resource names."""

    sfn: Any
    s3: Any
    dynamodb: Any
    elasticbeanstalk: Any
    state_machine_arn: str
    bundle_bucket: str
    table_name: str
    sandbox_endpoint: str | None = None
    # Makes a client of another service or region: (service, region or None) -> client.
    make_client: Callable[[str, str | None], Any] | None = None

    def client_for(self, service: str, region: str | None = None) -> Any:
        """Return a client for `service` in `region` (the control plane's region by default)."""
        if self.make_client is None:
            raise RuntimeError("this target cannot make clients for other services")
        return self.make_client(service, region)

    def virtual_seconds(self) -> float | None:
        """Return the sandbox's virtual time, or None on AWS or if the sandbox does not respond."""
        if not self.sandbox_endpoint:
            return None
        try:
            status = daemon.live_status({"endpoint": self.sandbox_endpoint})
            return float(status["virtualSeconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return None


def _start_sandbox(state_dir: Path) -> dict[str, Any]:
    """Start the background sandbox or wait for a concurrent start.

    Raises CliError with the last lines of the sandbox log when the start fails.
    """

    def announce_wait() -> None:
        click.echo("another command is starting or stopping the sandbox; waiting ...", err=True)

    try:
        return daemon.start_daemon(state_dir, on_wait=announce_wait)
    except daemon.DaemonError as error:
        lines = [str(error)]
        if error.log_tail:
            lines.append(f"Last lines of {daemon.log_path(state_dir)}:")
            lines.extend(f"  {line}" for line in error.log_tail)
        lines.append("Fix the problem shown above, then run the command again.")
        raise CliError("\n".join(lines)) from None


# The sandbox is local: a connection that takes seconds means it hangs, so fail fast rather
# than wait out botocore's default of a minute per attempt.
_SANDBOX_CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 2}
)


def _sandbox_client(
    state: dict[str, Any], service: str, config: Config | None = None, region: str | None = None
) -> Any:
    return boto3.client(
        service,
        region_name=region or state["region"],
        endpoint_url=state["endpoint"],
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
        config=_SANDBOX_CLIENT_CONFIG.merge(config) if config else _SANDBOX_CLIENT_CONFIG,
    )


def _not_answering(state: dict[str, Any], error: Exception) -> SandboxNotAnswering:
    return SandboxNotAnswering(
        f"sandbox (pid {state['pid']}) is not responding on {state['endpoint']} ({error}); "
        "stop it with `control-plane sandbox stop`, then start it again"
    )


def _sandbox_target(start: bool) -> Target:
    state_dir = daemon.default_state_dir()
    state = daemon.read_state(state_dir)
    if state is None:
        if not start:
            raise CliError("no sandbox is running; start one with `control-plane sandbox start`")
        click.echo("starting the sandbox (first start synthesizes the CDK app) ...", err=True)
        state = _start_sandbox(state_dir)
    else:
        try:
            daemon.live_status(state)
        except (OSError, ValueError) as error:
            raise _not_answering(state, error) from None
    return Target(
        sfn=_sandbox_client(state, "stepfunctions"),
        s3=_sandbox_client(state, "s3"),
        dynamodb=_sandbox_client(state, "dynamodb"),
        elasticbeanstalk=_sandbox_client(state, "elasticbeanstalk"),
        make_client=lambda service, region: _sandbox_client(state, service, region=region),
        state_machine_arn=state["stateMachineArn"],
        bundle_bucket=state["bundleBucket"],
        table_name=state["tableName"],
        sandbox_endpoint=state["endpoint"],
    )


def _aws_target(region: str | None) -> Target:
    # botocore reads AWS_DEFAULT_REGION only; AWS_REGION is what the other SDKs and CI set.
    session = boto3.session.Session(region_name=region or os.environ.get("AWS_REGION") or None)
    if session.region_name is None:
        raise CliError("no AWS region set; pass --region or set AWS_REGION")
    config = Config(retries={"mode": "standard"})
    try:
        stack = session.client("cloudformation", config=config).describe_stacks(
            StackName=STACK_NAME
        )["Stacks"][0]
    except NoCredentialsError:
        raise CliError(
            "no AWS credentials found; run `aws sso login` or set AWS_PROFILE, "
            "or use --sandbox for the local sandbox"
        ) from None
    except ClientError as error:
        raise CliError(
            f"stack {STACK_NAME} not found in {session.region_name} "
            f"({error.response['Error']['Message']}); deploy it with `cdk deploy` or pass "
            "the region it lives in with --region"
        ) from None
    except BotoCoreError as error:
        # An unknown region ends here too, because its endpoint does not resolve or returns an
        # unparsable response.
        raise CliError(
            f"reading stack {STACK_NAME} from CloudFormation in region "
            f"{session.region_name!r} failed ({error}); check that the region exists "
            "(--region or AWS_REGION, for example us-east-1) and that the network reaches AWS"
        ) from None
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    return Target(
        sfn=session.client("stepfunctions", config=config),
        s3=session.client("s3", config=config),
        dynamodb=session.client("dynamodb", config=config),
        elasticbeanstalk=session.client("elasticbeanstalk", config=config),
        state_machine_arn=outputs["StateMachineArn"],
        bundle_bucket=outputs["BundleBucketName"],
        table_name=outputs["TableName"],
        make_client=lambda service, other_region: session.client(
            service, region_name=other_region or session.region_name, config=config
        ),
    )


def _bundle_folder(folder: Path) -> bytes:
    """Zip an app folder; raise BundleRejected before anything is started."""
    try:
        return build_bundle(folder)
    except BundleError as error:
        raise BundleRejected(f"bundle rejected: {error}") from None


def _build_local_bundle(bundle: str) -> bytes | None:
    """Zip an app folder, or return None for the s3:// URI of a built bundle."""
    if bundle.startswith("s3://"):
        return None
    return _bundle_folder(Path(bundle))


def _ledger_record(target: Target, environment: str, request_id: str) -> dict[str, Any]:
    item = target.dynamodb.get_item(
        TableName=target.table_name,
        Key={"pk": {"S": f"ENV#{environment}"}, "sk": {"S": f"REQUEST#{request_id}"}},
    ).get("Item", {})
    return from_item(item)


def _failure_message(report: ExecutionReport) -> str:
    cause = report.cause or ""
    try:
        document = json.loads(cause)
        if isinstance(document, dict) and "errorMessage" in document:
            return str(document["errorMessage"])
    except ValueError:
        pass
    return cause


def _app_url(target: Target, environment: str, record: dict[str, Any]) -> str | None:
    try:
        settings = environment_settings(environment)
    except click.UsageError:
        # The deployment has ended; a settings file changed since then costs only the URL.
        return None
    found = target.elasticbeanstalk.describe_environments(
        ApplicationName=settings.eb_application, IncludeDeleted=False
    )["Environments"]
    live = [env for env in found if env.get("Status") != "Terminated" and env.get("CNAME")]
    return f"http://{live[0]['CNAME']}" if live else None


def _check_app(url: str, health_path: str = "/health") -> str | None:
    try:
        with _NO_PROXY.open(f"{url}{health_path}", timeout=5) as response:
            return json.loads(response.read()).get("version")
    except (OSError, ValueError):
        return None


def _start_or_find_execution(
    target: Target, request: dict[str, Any], output: str
) -> tuple[str, bool]:
    """Start the request's execution and return its ARN and whether the request ran before."""
    try:
        arn, previous = start_or_attach(target.sfn, target.state_machine_arn, request)
    except RequestConflict as error:
        raise click.BadParameter(str(error), param_hint="'--request-id'") from None
    if previous is None:
        return arn, False
    request_id = request["requestId"]
    status = target.sfn.describe_execution(executionArn=arn)["status"]
    if output == "text":
        verb = "attaching to it" if status == "RUNNING" else "reporting its recorded outcome"
        click.echo(f"request {request_id} already started execution {arn} ({status}); {verb}")
    return arn, True


def run_deployment(
    target: Target,
    *,
    environment: str,
    version: str,
    bundle: str,
    request_id: str,
    output: str,
    bundle_data: bytes | None = None,
    started_by: str = "cli",
) -> int:
    """Start one deployment, stream its states, print a summary; return the exit status.

    `bundle_data` is the zip built from the folder `bundle` and is uploaded first; without it
    `bundle` must be the s3:// URI of a built bundle. Raises DeploymentInterrupted on Ctrl-C.
    """
    started = time.monotonic()
    virtual_start = target.virtual_seconds()
    try:
        uri = (
            bundle
            if bundle_data is None
            else upload_bundle(target.s3, target.bundle_bucket, environment, bundle_data)
        )
        request = {
            "environment": environment,
            "version": version,
            "bundle": uri,
            "requestId": request_id,
            "trigger": "manual",
            "startedBy": started_by,
        }
        if output == "text":
            click.echo(f"deployment {request_id}: {environment} -> {version}")
        arn, replayed = _start_or_find_execution(target, request, output)
    except KeyboardInterrupt:
        raise DeploymentInterrupted(None) from None
    try:
        summary = _follow_execution(target, arn, request, output)
        virtual_end = target.virtual_seconds()
    except KeyboardInterrupt:
        raise DeploymentInterrupted(arn) from None
    if virtual_start is not None and virtual_end is not None:
        summary["virtualSeconds"] = virtual_end - virtual_start
    summary["wallSeconds"] = round(time.monotonic() - started, 2)
    _print_summary(summary, output)
    code = EXIT_CODES.get(str(summary["outcome"]), EXIT_CODES[UNEXPECTED_FAILURE])
    # A replayed request reports its recorded outcome, because the app may serve a newer version
    # by now.
    if summary["outcome"] == "Deployed" and not replayed and summary["servingVersion"] != version:
        click.echo(
            f"error: the app at {summary['url']} reports version {summary['servingVersion']}, "
            f"not {version}",
            err=True,
        )
        return EXIT_CODES["HealthCheckFailed"]
    return code


def _follow_execution(
    target: Target, arn: str, request: dict[str, Any], output: str
) -> dict[str, Any]:
    """Stream the execution's states until it ends, then return the summary of its outcome."""
    if output == "text":
        click.echo(f"execution {arn}")
    step = {"count": 0}

    def show(state: str) -> None:
        step["count"] += 1
        if output == "text":
            click.echo(f"  [{step['count']:>2}] {state}")

    # Against AWS, poll every 2 s: the history API is rate limited per account. The execution
    # bounds the wait itself (every wait in it has a deadline), so the CLI sets none.
    report = wait_for_execution(
        target.sfn,
        arn,
        on_state=show,
        poll_seconds=0.1 if target.sandbox_endpoint else 2.0,
        timeout_seconds=None,
    )
    environment = request["environment"]
    record = _ledger_record(target, environment, request["requestId"])
    outcome = record.get("outcome") or _unrecorded_outcome(report)
    # After a rollback the previous version serves, so its URL and version are shown too.
    url = _app_url(target, environment, record) if outcome in ("Deployed", "RolledBack") else None
    summary = {
        "environment": environment,
        "version": request["version"],
        "requestId": request["requestId"],
        "outcome": outcome,
        "status": report.status,
        "plan": record.get("plan"),
        "url": url,
        "servingVersion": _check_app(url) if url else None,
        "states": len(report.path),
        "transitions": report.transitions,
        "path": report.path,
        "virtualSeconds": None,
        "wallSeconds": None,
        "executionArn": arn,
    }
    if report.status != "SUCCEEDED":
        summary["error"] = report.error or outcome
        summary["cause"] = _failure_message(report) or _UNRECORDED_CAUSES.get(report.status, "")
    return summary


_UNRECORDED_CAUSES = {
    "ABORTED": "the execution was stopped before it recorded an outcome; if it held the lock, "
    "the next deployment to this environment takes its lease over and records it",
    "TIMED_OUT": "the execution ran past the state machine's timeout before it recorded an "
    "outcome; if it held the lock, the next deployment to this environment takes its lease "
    "over and records it",
}


def _unrecorded_outcome(report: ExecutionReport) -> str:
    """Name the outcome of an execution that has no ledger record."""
    if report.status == "SUCCEEDED":
        return "Deployed"
    if report.error:
        return report.error
    # The name the lease records for such a holder, so CLI and ledger agree.
    return ended_execution_error(report.status)


def _deployment_failure(target: Target, error: Exception) -> CliError:
    """Build the error for an AWS call that failed while deploying, with the next step to take."""
    connection_lost = isinstance(error, BotoConnectionError | HTTPClientError)
    if not target.sandbox_endpoint or not connection_lost:
        return CliError(f"AWS call failed: {error}")
    state = daemon.read_state(daemon.default_state_dir())
    if state is None or state.get("endpoint") != target.sandbox_endpoint:
        return CliError(
            "the sandbox stopped during the deployment, and a new sandbox starts empty; "
            "start one with `control-plane sandbox start` and deploy again"
        )
    return CliError(
        f"the sandbox (pid {state['pid']}) stopped responding on {target.sandbox_endpoint} "
        f"during the deployment ({error}); stop it with `control-plane sandbox stop`, then "
        "deploy again"
    )


def _report_interrupt(
    interrupted: DeploymentInterrupted, environment: str, request_id: str | None, sandbox: bool
) -> None:
    """Print what Ctrl-C left running and how to follow it."""
    where = " --sandbox" if sandbox else ""
    if interrupted.arn is None:
        rerun = (
            f"Rerun the command with --request-id {request_id} (the same request id never "
            "starts a second execution) or check"
            if request_id
            else "Check"
        )
        click.echo(
            "Interrupted before the execution was confirmed started. "
            f"{rerun} `control-plane history -e {environment}{where}`.",
            err=True,
        )
        return
    click.echo(
        f"Interrupted. The deployment continues in execution {interrupted.arn}.\n"
        f"Follow it with `control-plane history -e {environment}{where}` (its ledger record "
        f"appears when it ends) or `control-plane lock show -e {environment}{where}`.",
        err=True,
    )


def _text(value: Any) -> str:
    """Show a missing value as a dash in text output."""
    return "-" if value is None else str(value)


def _print_summary(summary: dict[str, Any], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo("")
    click.echo(f"outcome      {summary['outcome']} ({summary['status']})")
    click.echo(f"environment  {summary['environment']}")
    click.echo(f"version      {summary['version']} (serving: {_text(summary['servingVersion'])})")
    click.echo(f"plan         {_text(summary['plan'])}")
    click.echo(f"url          {_text(summary['url'])}")
    click.echo(f"states       {summary['states']} passed, {summary['transitions']} transitions")
    if summary["virtualSeconds"] is not None:
        click.echo(f"virtual time {summary['virtualSeconds']:.0f} s")
    click.echo(f"wall time    {summary['wallSeconds']:.1f} s")
    if "error" in summary:
        click.echo(f"error        {summary['error']}: {summary['cause']}")


class _CommandGroup(click.Group):
    """Report an AWS error that a command does not handle as a message, not a traceback.

    Ctrl-C that a command does not handle ends it with status 130, as shells report it.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BotoCoreError, ClientError) as error:
            raise CliError(f"AWS call failed: {error}") from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(INTERRUPTED_EXIT_CODE)


@click.group(cls=_CommandGroup)
@click.option(
    "--environments-file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=ENVIRONMENTS_FILE_VARIABLE,
    default=None,
    is_eager=True,
    expose_value=False,
    callback=lambda context, parameter, value: remember_environments_file(context, value),
    help=f"Environments file (default: ${ENVIRONMENTS_FILE_VARIABLE}, else environments.yaml "
    "of this repository).",
)
def main() -> None:
    """Deploy Elastic Beanstalk apps through the control plane's state machine."""


def _validate_request_id(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> str | None:
    if value is None:
        return value
    kind = secret_kind(value)
    if kind:
        # The request id names the execution, so it would reach the ledger, logs and console.
        raise click.BadParameter(
            f"the value looks like {kind}; a request id becomes part of the execution's name, "
            "so pass an identifier such as a CI run id or commit SHA, never a credential"
        )
    if not re.match(REQUEST_ID_PATTERN, value):
        raise click.BadParameter(
            f"{value!r} does not match {REQUEST_ID_PATTERN}: 1 to 64 letters, digits, '-' or "
            "'_', starting with a letter or digit"
        )
    return value


def _validate_version(context: click.Context, parameter: click.Parameter, value: str) -> str:
    if not re.match(VERSION_LABEL_PATTERN, value):
        raise click.BadParameter(
            f"{value[:120]!r} is not a version label: 1 to 100 letters, digits, '.', '_', '+' "
            "or '-', starting with a letter or digit, for example v1.4.2 or 2026-12-04.1"
        )
    return value


@main.command()
@environment_option("Environment name from the environments file.")
@click.option(
    "--version",
    "-v",
    "version",
    required=True,
    callback=_validate_version,
    help="Application version label.",
)
@click.option(
    "--bundle",
    "-b",
    default=str(SAMPLE_APP),
    show_default=True,
    help="App folder to bundle, or an s3:// URI of a built bundle. Defaults to the sample app.",
)
@click.option(
    "--request-id",
    default=None,
    callback=_validate_request_id,
    help="Idempotency key (default: a new one). Rerunning a request id reports its outcome.",
)
@click.option("--sandbox", is_flag=True, help="Use the local sandbox (started if none runs).")
@click.option("--region", default=None, help="AWS region of the control plane stack.")
@output_option
def deploy(
    environment: str,
    version: str,
    bundle: str,
    request_id: str | None,
    sandbox: bool,
    region: str | None,
    output: str,
) -> None:
    """Deploy VERSION of the app to ENVIRONMENT and wait for the outcome.

    Ctrl-C stops waiting but not the deployment, and the command then exits with status 130.
    """
    if sandbox:
        check_sandbox_environment(environment)
    bundle_data = _build_local_bundle(bundle)
    target = _sandbox_target(start=True) if sandbox else _aws_target(region)
    request_id = request_id or f"cli-{uuid.uuid4().hex[:12]}"
    try:
        code = run_deployment(
            target,
            environment=environment,
            version=version,
            bundle=bundle,
            bundle_data=bundle_data,
            request_id=request_id,
            output=output,
        )
    except DeploymentInterrupted as interrupted:
        _report_interrupt(interrupted, environment, request_id, sandbox)
        code = INTERRUPTED_EXIT_CODE
    except (BotoCoreError, ClientError) as error:
        raise _deployment_failure(target, error) from None
    sys.exit(code)


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--output-file",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the zip (default: <folder name>.zip in the current folder).",
)
@output_option
def bundle(source: Path, output_file: Path | None, output: str) -> None:
    """Build a reproducible EB source bundle from the app folder SOURCE.

    Checks the layout EB's Python platform expects, honours .ebignore, leaves out VCS and
    virtualenv folders, and prints the zip's size and SHA-256 checksum.
    """
    # click's Path type turns s3://bucket into s3:/bucket, so the scheme is matched without "//".
    if str(source).startswith("s3:"):
        raise click.UsageError("SOURCE must be a local app folder, not an s3:// URI")
    target = output_file or Path.cwd() / f"{source.resolve().name}.zip"
    # Checked before zipping, so a bad destination fails at once.
    if target.resolve().is_relative_to(source.resolve()):
        raise click.BadParameter(
            f"{target} is inside the app folder {source}, so the next bundle would contain it "
            "(or it would overwrite an app file); write it elsewhere, for example "
            f"-o ../{source.resolve().name}.zip",
            param_hint="'--output-file'",
        )
    data = _bundle_folder(source)
    try:
        target.write_bytes(data)
    except OSError as error:
        raise CliError(
            f"cannot write the bundle to {target} ({error.strerror}); pass -o with a file "
            "path in an existing folder"
        ) from None
    if output == "json":
        print_json({"path": str(target), "bytes": len(data), "sha256": checksum(data)})
    else:
        click.echo(f"{target}  {len(data)} bytes  sha256 {checksum(data)}")


@main.command()
@click.option("--keep-running", is_flag=True, help="Leave the sandbox running afterwards.")
def demo(keep_running: bool) -> None:
    """Deploy v1 (provisioning) then v2 (app update) of the sample app in the sandbox."""
    bundle_data = _build_local_bundle(str(SAMPLE_APP))
    state_dir = daemon.default_state_dir()
    was_running = daemon.read_state(state_dir) is not None
    target = _sandbox_target(start=True)
    stops_sandbox = not keep_running and not was_running
    codes = []
    try:
        for version in ("v1", "v2"):
            click.echo("")
            codes.append(
                run_deployment(
                    target,
                    environment="dev",
                    version=version,
                    bundle=str(SAMPLE_APP),
                    bundle_data=bundle_data,
                    request_id=f"demo-{version}-{uuid.uuid4().hex[:8]}",
                    output="text",
                    started_by="demo",
                )
            )
    except DeploymentInterrupted as interrupted:
        if stops_sandbox:
            click.echo("Interrupted; stopping the sandbox ends the deployment.", err=True)
        else:
            _report_interrupt(interrupted, "dev", None, sandbox=True)
        codes.append(INTERRUPTED_EXIT_CODE)
    except (BotoCoreError, ClientError) as error:
        raise _deployment_failure(target, error) from None
    finally:
        if stops_sandbox:
            daemon.stop_daemon(state_dir)
            click.echo("\nsandbox stopped (use --keep-running to keep it up)")
    sys.exit(next((code for code in codes if code != 0), 0))


def _target(sandbox: bool, region: str | None) -> Target:
    return _sandbox_target(start=False) if sandbox else _aws_target(region)


def _target_options(function: Any) -> Any:
    function = click.option("--region", default=None, help="AWS region of the stack.")(function)
    function = click.option("--sandbox", is_flag=True, help="Use the running local sandbox.")(
        function
    )
    return function


@main.group()
def lock() -> None:
    """Inspect or release an environment's deployment lock."""


def _now(target: Target) -> float:
    """Return the time of the target: the sandbox's virtual clock, or the wall clock on AWS."""
    seconds = target.virtual_seconds() if target.sandbox_endpoint else None
    return DEFAULT_START + seconds if seconds is not None else time.time()


def _execution_input(described: dict[str, Any]) -> dict[str, Any] | None:
    """Return the input of a described execution as a dict, or None."""
    try:
        document = json.loads(described.get("input") or "null")
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _lock_view(target: Target, item: dict[str, Any] | None) -> dict[str, Any] | None:
    return lease_view(item, _now(target))


@lock.command("show")
@environment_option("Environment name from the environments file.")
@_target_options
@output_option
def lock_show(environment: str, sandbox: bool, region: str | None, output: str) -> None:
    """Show who holds ENVIRONMENT's lock and for how long."""
    from lambdas.common.lease import read_lock

    target = _target(sandbox, region)
    view = _lock_view(target, read_lock(environment, target.table_name, target.dynamodb))
    if output == "json":
        click.echo(json.dumps({"environment": environment, "lock": view}, indent=2))
    elif view is None:
        click.echo(f"{environment}: not locked")
    else:
        click.echo(
            f"{environment}: locked by request {view['holder']} for {view['heldSeconds']} s "
            f"(execution {view['executionArn']}, fencing token {view['fencingToken']})"
        )
        if view["queued"]:
            click.echo(f"{environment}: request {view['queued']} is queued behind it")


@lock.command("release")
@environment_option("Environment name from the environments file.")
@_target_options
@output_option
def lock_release(environment: str, sandbox: bool, region: str | None, output: str) -> None:
    """Release ENVIRONMENT's lock after its holder's execution has ended.

    Refuses while the holding execution still runs, because releasing then would let two
    deployments act on the environment at once.
    """
    import logging

    from lambdas.common.lease import force_release_lock, read_lock, record_abandoned_request
    from lambdas.common.observability import logger

    # The lease module logs for operators; its lines go to stderr, out of the command's output.
    for handler in logging.getLogger(logger.name).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)
    target = _target(sandbox, region)
    item = read_lock(environment, target.table_name, target.dynamodb)
    view = _lock_view(target, item)
    if item is None or view is None:
        if output == "json":
            print_json({"environment": environment, "released": None, "recorded": False})
        else:
            click.echo(f"{environment}: not locked, nothing to release")
        return
    recorded = False
    if view["executionArn"]:
        described = target.sfn.describe_execution(executionArn=view["executionArn"])
        status = described["status"]
        if status in ("RUNNING", "PENDING_REDRIVE"):
            raise CliError(
                f"{environment} is locked by execution {view['executionArn']}, which is still "
                "running; wait for it or stop it with `aws stepfunctions stop-execution`"
            )
        # Recorded before the release: the execution has ended whether or not the release
        # wins, and its request must not stay without a ledger record.
        recorded = record_abandoned_request(
            environment,
            item,
            status,
            _now(target),
            f"released by `control-plane lock release` ({getpass.getuser()})",
            target.table_name,
            target.dynamodb,
            _execution_input(described),
        )
    if not force_release_lock(environment, view["holder"], target.table_name, target.dynamodb):
        raise CliError(f"{environment}: the lock changed hands meanwhile; run `lock show` again")
    if output == "json":
        print_json({"environment": environment, "released": view["holder"], "recorded": recorded})
        return
    click.echo(f"{environment}: released the lock held by request {view['holder']}")
    if recorded:
        click.echo(f"{environment}: recorded the outcome of request {view['holder']} in the ledger")


@main.command()
@environment_option("Environment name from the environments file.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@_target_options
@output_option
def history(environment: str, limit: int, sandbox: bool, region: str | None, output: str) -> None:
    """List ENVIRONMENT's recent deployments from the ledger, newest last."""
    from lambdas.common.store import ledger_records

    target = _target(sandbox, region)
    records = ledger_records(environment, target.table_name, target.dynamodb)[-limit:]
    for record in records:
        record.pop("pk", None)
        record.pop("sk", None)
    if output == "json":
        click.echo(json.dumps(records, indent=2, default=str))
        return
    if not records:
        click.echo(f"{environment}: no deployments recorded")
    for record in records:
        finished = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.get("finishedAt", 0)))
        duration = record.get("durationSeconds")
        took = f"  took={duration:.0f}s" if isinstance(duration, int | float) else ""
        click.echo(
            f"{finished}  {record.get('requestId')}  {_text(record.get('version'))}  "
            f"{record.get('outcome')}  plan={_text(record.get('plan'))}  "
            f"trigger={_text(record.get('trigger'))}"
            f"{took}"
        )
        phases = record.get("phases") or {}
        slowest = sorted(phases.items(), key=lambda item: -item[1])[:3]
        if slowest:
            click.echo("    slowest: " + ", ".join(f"{name} {sec:.0f}s" for name, sec in slowest))
        if record.get("cause"):
            click.echo(f"    {record['cause'][:200]}")


@main.group()
def sandbox() -> None:
    """Run the local sandbox: AWS stand-in on 127.0.0.1 with the real state machine."""


@sandbox.command("start")
def sandbox_start() -> None:
    """Start the background sandbox (no-op if one is running).

    Exits 3 when a sandbox process runs but does not respond.
    """
    state = _start_sandbox(daemon.default_state_dir())
    try:
        daemon.live_status(state)
    except (OSError, ValueError) as error:
        raise _not_answering(state, error) from None
    click.echo(f"sandbox running on {state['endpoint']} (pid {state['pid']})")


def _sandbox_environments(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Describe the sandbox's EB environments: name, status, health, version label and URL."""
    config = Config(connect_timeout=5, read_timeout=5, retries={"max_attempts": 1})
    found = _sandbox_client(state, "elasticbeanstalk", config).describe_environments()
    return [
        {
            "name": environment.get("EnvironmentName"),
            "status": environment.get("Status"),
            "health": environment.get("Health"),
            "versionLabel": environment.get("VersionLabel"),
            "url": (
                f"http://{environment['CNAME']}"
                if environment.get("CNAME") and environment.get("Status") != "Terminated"
                else None
            ),
        }
        for environment in found["Environments"]
    ]


@sandbox.command("status")
@output_option
def sandbox_status(output: str) -> None:
    """Show whether the sandbox runs, where, and its Elastic Beanstalk environments.

    Exits 3 when no sandbox runs or it does not respond.
    """
    state = daemon.read_state(daemon.default_state_dir())
    if state is None:
        if output == "json":
            click.echo(json.dumps({"running": False}))
        else:
            click.echo("sandbox not running")
        sys.exit(SANDBOX_NOT_RUNNING_EXIT_CODE)
    try:
        status = daemon.live_status(state)
        environments = _sandbox_environments(state)
    except (OSError, ValueError, BotoCoreError, ClientError) as error:
        raise _not_answering(state, error) from None
    if output == "json":
        click.echo(json.dumps({"running": True, **status, "environments": environments}, indent=2))
        return
    click.echo(f"sandbox running on {status['endpoint']} (pid {status['pid']})")
    click.echo(f"virtual time   {status['virtualSeconds']:.0f} s")
    click.echo(f"state machine  {status['stateMachineArn']}")
    click.echo(f"bundle bucket  {status['bundleBucket']}")
    click.echo(f"ledger table   {status['tableName']}")
    if not environments:
        click.echo("environments   none yet")
        return
    click.echo("environments")
    for environment in environments:
        click.echo(
            f"  {environment['name']}  {environment['status']}  health={environment['health']}"
            f"  version={environment['versionLabel']}  {environment['url'] or '-'}"
        )


@sandbox.command("stop")
def sandbox_stop() -> None:
    """Stop the background sandbox and the apps it runs.

    A sandbox that does not exit within 20 s of SIGTERM gets SIGKILL, and its app processes
    are then killed by process group.
    """

    def announce_wait() -> None:
        click.echo("another command is starting the sandbox; waiting for it ...", err=True)

    result = daemon.stop_daemon(daemon.default_state_dir(), on_wait=announce_wait)
    if not result.was_running:
        click.echo("sandbox was not running")
    elif result.killed:
        click.echo(
            f"sandbox (pid {result.pid}) did not stop within {daemon.STOP_TIMEOUT_SECONDS} s "
            "of SIGTERM; killed it with SIGKILL"
        )
    else:
        click.echo("sandbox stopped")
    if result.stopped_app_groups:
        groups = ", ".join(str(group) for group in result.stopped_app_groups)
        click.echo(f"killed app process groups that outlived their sandbox: {groups}")


@sandbox.command("run")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def sandbox_run(files: tuple[Path, ...]) -> None:
    """Run scenario FILES, each in a fresh sandbox; exit 0 only if every expectation holds."""
    from .sandbox.scenario import ScenarioError
    from .sandbox.scenario_runner import load_scenario_files, run_loaded_scenario

    # Every file is validated before any runs, so a typo in the last one costs no run time.
    invalid = []
    for path in files:
        try:
            load_scenario_files([path])
        except ScenarioError as error:
            invalid.append(str(error))
    loaded = []
    if not invalid:
        try:
            loaded = load_scenario_files(list(files))
        except ScenarioError as error:
            invalid.append(str(error))
    if invalid:
        for message in invalid:
            click.echo(f"INVALID {message}", err=True)
        sys.exit(2)

    failed = 0
    for scenario in loaded:
        result = run_loaded_scenario(scenario)
        click.echo(f"{result.name} ({result.virtual_seconds:.0f} virtual s)")
        for check in result.checks:
            click.echo(f"  {check.line}")
        failed += 0 if result.passed else 1
    sys.exit(1 if failed else 0)


add_recovery_commands(main, _target, _target_options, CliError)


add_inspect_commands(main, _target, _target_options, CliError)
add_dashboard_command(main, _target, _target_options, CliError)


if __name__ == "__main__":
    main()
