"""`control-plane`: deploy through the state machine, on AWS or in the local sandbox."""

from __future__ import annotations

import json
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import click
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from lambdas.common.errors import UNEXPECTED_FAILURE

from .bundle import BundleError, build_bundle
from .executions import ExecutionReport, start_deployment, upload_bundle, wait_for_execution
from .sandbox import daemon

STACK_NAME = "EbControlPlane"
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
    UNEXPECTED_FAILURE: 30,
}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class CliError(click.ClickException):
    """A user-facing error: printed without a traceback, exit status 1."""


@dataclass
class Target:
    """Where the control plane runs: its clients and resource names."""

    sfn: Any
    s3: Any
    dynamodb: Any
    elasticbeanstalk: Any
    state_machine_arn: str
    bundle_bucket: str
    table_name: str
    sandbox_endpoint: str | None = None

    def virtual_seconds(self) -> float | None:
        if not self.sandbox_endpoint:
            return None
        with _NO_PROXY.open(f"{self.sandbox_endpoint}/_sandbox/status", timeout=5) as response:
            return float(json.loads(response.read())["virtualSeconds"])


def _sandbox_target(start: bool) -> Target:
    state_dir = daemon.default_state_dir()
    state = daemon.read_state(state_dir)
    if state is None:
        if not start:
            raise CliError("no sandbox is running; start one with `control-plane sandbox start`")
        click.echo("starting the sandbox (first start synthesizes the CDK app) ...", err=True)
        state = daemon.start_daemon(state_dir)

    def client(service: str) -> Any:
        return boto3.client(
            service,
            region_name=state["region"],
            endpoint_url=state["endpoint"],
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
        )

    return Target(
        sfn=client("stepfunctions"),
        s3=client("s3"),
        dynamodb=client("dynamodb"),
        elasticbeanstalk=client("elasticbeanstalk"),
        state_machine_arn=state["stateMachineArn"],
        bundle_bucket=state["bundleBucket"],
        table_name=state["tableName"],
        sandbox_endpoint=state["endpoint"],
    )


def _aws_target(region: str | None) -> Target:
    session = boto3.session.Session(region_name=region)
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
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    return Target(
        sfn=session.client("stepfunctions", config=config),
        s3=session.client("s3", config=config),
        dynamodb=session.client("dynamodb", config=config),
        elasticbeanstalk=session.client("elasticbeanstalk", config=config),
        state_machine_arn=outputs["StateMachineArn"],
        bundle_bucket=outputs["BundleBucketName"],
        table_name=outputs["TableName"],
    )


def _build_local_bundle(bundle: str) -> bytes | None:
    """Zip an app folder (None for an s3:// URI); fails before anything is started."""
    if bundle.startswith("s3://"):
        return None
    try:
        return build_bundle(Path(bundle))
    except BundleError as error:
        raise CliError(f"bundle rejected: {error}") from None


def _ledger_record(target: Target, environment: str, request_id: str) -> dict[str, Any]:
    item = target.dynamodb.get_item(
        TableName=target.table_name,
        Key={"pk": {"S": f"ENV#{environment}"}, "sk": {"S": f"REQUEST#{request_id}"}},
    ).get("Item", {})
    return {key: next(iter(value.values())) for key, value in item.items()}


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
    from lambdas.common.settings import load_settings

    from .sandbox.template import REPO_ROOT

    settings = load_settings(REPO_ROOT / "environments.yaml").environment(environment)
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


def run_deployment(
    target: Target,
    *,
    environment: str,
    version: str,
    bundle: str,
    request_id: str,
    output: str,
    started_by: str = "cli",
) -> int:
    """Start one deployment, stream its states, print a summary; return the exit status."""
    started = time.monotonic()
    virtual_start = target.virtual_seconds()
    data = _build_local_bundle(bundle)
    uri = (
        bundle
        if data is None
        else upload_bundle(target.s3, target.bundle_bucket, environment, data)
    )
    request = {
        "environment": environment,
        "version": version,
        "bundle": uri,
        "requestId": request_id,
        "trigger": "manual",
        "startedBy": started_by,
    }
    arn = start_deployment(target.sfn, target.state_machine_arn, request)
    if output == "text":
        click.echo(f"deployment {request_id}: {environment} -> {version}")
        click.echo(f"execution {arn}")
    step = {"count": 0}

    def show(state: str) -> None:
        step["count"] += 1
        if output == "text":
            click.echo(f"  [{step['count']:>2}] {state}")

    report = wait_for_execution(target.sfn, arn, on_state=show)
    record = _ledger_record(target, environment, request_id)
    outcome = record.get("outcome") or (
        report.error if report.status != "SUCCEEDED" else "Deployed"
    )
    url = _app_url(target, environment, record) if outcome == "Deployed" else None
    serving = _check_app(url) if url else None
    virtual_end = target.virtual_seconds()
    summary = {
        "environment": environment,
        "version": version,
        "requestId": request_id,
        "outcome": outcome,
        "status": report.status,
        "plan": record.get("plan"),
        "url": url,
        "servingVersion": serving,
        "states": len(report.path),
        "transitions": report.transitions,
        "path": report.path,
        "virtualSeconds": (virtual_end - virtual_start) if virtual_start is not None else None,
        "wallSeconds": round(time.monotonic() - started, 2),
        "executionArn": arn,
    }
    if report.status != "SUCCEEDED":
        summary["error"] = report.error
        summary["cause"] = _failure_message(report)
    _print_summary(summary, output)
    code = EXIT_CODES.get(str(outcome), EXIT_CODES[UNEXPECTED_FAILURE])
    if code == 0 and serving != version:
        click.echo(f"error: the app at {url} reports version {serving}, not {version}", err=True)
        return EXIT_CODES["HealthCheckFailed"]
    return code


def _print_summary(summary: dict[str, Any], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo("")
    click.echo(f"outcome      {summary['outcome']} ({summary['status']})")
    click.echo(f"environment  {summary['environment']}")
    click.echo(f"version      {summary['version']} (serving: {summary['servingVersion']})")
    click.echo(f"plan         {summary['plan']}")
    click.echo(f"url          {summary['url']}")
    click.echo(f"states       {summary['states']} passed, {summary['transitions']} transitions")
    if summary["virtualSeconds"] is not None:
        click.echo(f"virtual time {summary['virtualSeconds']:.0f} s")
    click.echo(f"wall time    {summary['wallSeconds']:.1f} s")
    if "error" in summary:
        click.echo(f"error        {summary['error']}: {summary['cause']}")


@click.group()
def main() -> None:
    """Deploy Elastic Beanstalk apps through the control plane's state machine."""


@main.command()
@click.option("--environment", "-e", required=True, help="Environment name from environments.yaml.")
@click.option("--version", "-v", "version", required=True, help="Application version label.")
@click.option(
    "--bundle",
    "-b",
    default="samples/webapp",
    show_default=True,
    help="App folder to bundle, or an s3:// URI of a built bundle.",
)
@click.option("--request-id", default=None, help="Idempotency key; a new one by default.")
@click.option("--sandbox", is_flag=True, help="Use the local sandbox (started if none runs).")
@click.option("--region", default=None, help="AWS region of the control plane stack.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def deploy(
    environment: str,
    version: str,
    bundle: str,
    request_id: str | None,
    sandbox: bool,
    region: str | None,
    output: str,
) -> None:
    """Deploy VERSION of the app to ENVIRONMENT and wait for the outcome."""
    _build_local_bundle(bundle)
    target = _sandbox_target(start=True) if sandbox else _aws_target(region)
    request_id = request_id or f"cli-{uuid.uuid4().hex[:12]}"
    try:
        code = run_deployment(
            target,
            environment=environment,
            version=version,
            bundle=bundle,
            request_id=request_id,
            output=output,
        )
    except (BotoCoreError, ClientError) as error:
        raise CliError(f"AWS call failed: {error}") from None
    sys.exit(code)


@main.command()
@click.option("--keep-running", is_flag=True, help="Leave the sandbox running afterwards.")
def demo(keep_running: bool) -> None:
    """Deploy v1 (provisioning) then v2 (app update) of the sample app in the sandbox."""
    state_dir = daemon.default_state_dir()
    was_running = daemon.read_state(state_dir) is not None
    target = _sandbox_target(start=True)
    codes = []
    try:
        for version in ("v1", "v2"):
            click.echo("")
            codes.append(
                run_deployment(
                    target,
                    environment="dev",
                    version=version,
                    bundle="samples/webapp",
                    request_id=f"demo-{version}-{uuid.uuid4().hex[:8]}",
                    output="text",
                    started_by="demo",
                )
            )
    finally:
        if not keep_running and not was_running:
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


def _lock_view(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    acquired = int(item.get("acquiredAt", {}).get("N", 0))
    return {
        "holder": item["holder"]["S"],
        "executionArn": item.get("executionArn", {}).get("S"),
        "fencingToken": int(item.get("fencingToken", {}).get("N", 0)),
        "heldSeconds": max(0, int(time.time()) - acquired),
        "expiresAt": int(item.get("expiresAt", {}).get("N", 0)),
    }


@lock.command("show")
@click.option("--environment", "-e", required=True)
@_target_options
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def lock_show(environment: str, sandbox: bool, region: str | None, output: str) -> None:
    """Show who holds ENVIRONMENT's lock and for how long."""
    from lambdas.common.store import read_lock

    target = _target(sandbox, region)
    view = _lock_view(read_lock(environment, target.table_name, target.dynamodb))
    if output == "json":
        click.echo(json.dumps({"environment": environment, "lock": view}, indent=2))
    elif view is None:
        click.echo(f"{environment}: not locked")
    else:
        click.echo(
            f"{environment}: locked by request {view['holder']} for {view['heldSeconds']} s "
            f"(execution {view['executionArn']}, fencing token {view['fencingToken']})"
        )


@lock.command("release")
@click.option("--environment", "-e", required=True)
@_target_options
def lock_release(environment: str, sandbox: bool, region: str | None) -> None:
    """Release ENVIRONMENT's lock after its holder's execution has ended.

    Refuses while the holding execution still runs, because releasing then would let two
    deployments act on the environment at once.
    """
    from lambdas.common.store import force_release_lock, read_lock

    target = _target(sandbox, region)
    view = _lock_view(read_lock(environment, target.table_name, target.dynamodb))
    if view is None:
        click.echo(f"{environment}: not locked, nothing to release")
        return
    if view["executionArn"]:
        status = target.sfn.describe_execution(executionArn=view["executionArn"])["status"]
        if status == "RUNNING":
            raise CliError(
                f"{environment} is locked by execution {view['executionArn']}, which is still "
                "running; wait for it or stop it with `aws stepfunctions stop-execution`"
            )
    if not force_release_lock(environment, view["holder"], target.table_name, target.dynamodb):
        raise CliError(f"{environment}: the lock changed hands meanwhile; run `lock show` again")
    click.echo(f"{environment}: released the lock held by request {view['holder']}")


@main.command()
@click.option("--environment", "-e", required=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@_target_options
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
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
        click.echo(
            f"{finished}  {record.get('requestId')}  {record.get('version')}  "
            f"{record.get('outcome')}  plan={record.get('plan')}  trigger={record.get('trigger')}"
        )
        if record.get("cause"):
            click.echo(f"    {record['cause'][:200]}")


@main.group()
def sandbox() -> None:
    """Run the local sandbox: AWS stand-in on 127.0.0.1 with the real state machine."""


@sandbox.command("start")
def sandbox_start() -> None:
    """Start the background sandbox (no-op if one is running)."""
    try:
        state = daemon.start_daemon(daemon.default_state_dir())
    except daemon.DaemonError as error:
        raise CliError(str(error)) from None
    click.echo(f"sandbox running on {state['endpoint']} (pid {state['pid']})")


@sandbox.command("status")
def sandbox_status() -> None:
    """Show whether the sandbox runs, and where."""
    state = daemon.read_state(daemon.default_state_dir())
    if state is None:
        click.echo("sandbox not running")
        sys.exit(3)
    status = daemon.live_status(state)
    click.echo(json.dumps(status, indent=2))


@sandbox.command("stop")
def sandbox_stop() -> None:
    """Stop the background sandbox and the apps it runs."""
    stopped = daemon.stop_daemon(daemon.default_state_dir())
    click.echo("sandbox stopped" if stopped else "sandbox was not running")


@sandbox.command("run")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def sandbox_run(files: tuple[Path, ...]) -> None:
    """Run scenario FILES, each in a fresh sandbox; exit 0 only if every expectation holds."""
    from .sandbox.scenario import ScenarioError
    from .sandbox.scenario_runner import run_scenario_file

    failed = invalid = 0
    for path in files:
        try:
            result = run_scenario_file(path)
        except ScenarioError as error:
            click.echo(f"INVALID {error}", err=True)
            invalid += 1
            continue
        click.echo(f"{result.name} ({result.virtual_seconds:.0f} virtual s)")
        for check in result.checks:
            click.echo(f"  {check.line}")
        failed += 0 if result.passed else 1
    sys.exit(2 if invalid else 1 if failed else 0)


if __name__ == "__main__":
    main()
