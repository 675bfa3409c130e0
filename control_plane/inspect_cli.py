"""`control-plane status` and `control-plane show`: what an environment and an execution look like.

Both read only: the lease, the ledger, EB and the execution history. Against AWS they print
links to the Step Functions console; `--output json` gives the same data to scripts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from .executions import build_report, execution_arn
from .sandbox.clock import DEFAULT_START

CONSOLE_EXECUTION_URL = (
    "https://{region}.console.aws.amazon.com/states/home?region={region}"
    "#/v2/executions/details/{arn}"
)


def _when(epoch_seconds: float | None) -> str | None:
    if not epoch_seconds:
        return None
    return datetime.fromtimestamp(float(epoch_seconds), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _now(target: Any) -> float:
    """Return the current time on the target's clock: the sandbox's virtual one, or the system's."""
    elapsed = target.virtual_seconds()
    return DEFAULT_START + elapsed if elapsed is not None else time.time()


def console_link(target: Any, execution_arn: str) -> str | None:
    """Return the AWS console URL of an execution; the sandbox has none."""
    if target.sandbox_endpoint:
        return None
    region = execution_arn.split(":")[3]
    return CONSOLE_EXECUTION_URL.format(region=region, arn=execution_arn)


def lease_view(item: dict[str, Any] | None, now: float) -> dict[str, Any] | None:
    """Describe the lease item: holder, queued request, fencing token, age and expiry."""
    if item is None:
        return None

    def text(name: str) -> str | None:
        return item.get(name, {}).get("S")

    def number(name: str) -> int:
        return int(item.get(name, {}).get("N", 0))

    return {
        "holder": text("holder"),
        "executionArn": text("executionArn"),
        "fencingToken": number("fencingToken"),
        "heldSeconds": max(0, int(now) - number("acquiredAt")),
        "expiresAt": number("expiresAt"),
        "queued": text("waiting"),
        "queuedExecutionArn": text("waitingExecutionArn"),
    }


def environment_status(target: Any, environment: str, settings: Any) -> dict[str, Any]:
    """Gather the environment's lease, last ledger records, EB state and running executions."""
    from lambdas.common.lease import read_lock
    from lambdas.common.store import ledger_records

    now = _now(target)
    records = ledger_records(environment, target.table_name, target.dynamodb)
    deployed = [record for record in records if record.get("outcome") == "Deployed"]
    eb = target.client_for("elasticbeanstalk", settings.region)
    live = [
        {
            "name": described["EnvironmentName"],
            "status": described.get("Status"),
            "health": described.get("Health"),
            "healthStatus": described.get("HealthStatus"),
            "versionLabel": described.get("VersionLabel"),
            "cname": described.get("CNAME"),
        }
        for described in eb.describe_environments(
            ApplicationName=settings.eb_application, IncludeDeleted=False
        )["Environments"]
    ]
    running = []
    pages = target.sfn.get_paginator("list_executions").paginate(
        stateMachineArn=target.state_machine_arn, statusFilter="RUNNING"
    )
    prefix = f"{environment}-"
    for page in pages:
        running.extend(
            execution["executionArn"]
            for execution in page["executions"]
            if execution["name"].startswith(prefix)
        )
    return {
        "environment": environment,
        "lease": lease_view(read_lock(environment, target.table_name, target.dynamodb), now),
        "lastDeployed": _summary(deployed[-1]) if deployed else None,
        "lastRequest": _summary(records[-1]) if records else None,
        "ebEnvironments": live,
        "runningExecutions": running,
    }


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("requestId", "version", "outcome", "plan", "trigger", "finishedAt", "executionArn")
    summary = {key: record.get(key) for key in keys}
    if record.get("cause"):
        summary["cause"] = record["cause"]
    return summary


def execution_view(target: Any, execution_arn: str) -> dict[str, Any]:
    """Describe an execution: status, path, retries per state, failure and console link."""
    report = build_report(target.sfn, execution_arn)
    return {
        "executionArn": execution_arn,
        "status": report.status,
        "path": report.path,
        "transitions": report.transitions,
        "retries": report.retries,
        "error": report.error,
        "cause": report.cause,
        "consoleUrl": console_link(target, execution_arn),
    }


def _print_status(view: dict[str, Any]) -> None:
    environment = view["environment"]
    lease = view["lease"]
    if lease is None:
        click.echo(f"{environment}: not locked")
    else:
        click.echo(
            f"{environment}: locked by {lease['holder']} for {lease['heldSeconds']} s "
            f"(fencing token {lease['fencingToken']})"
        )
        if lease["queued"]:
            click.echo(f"  queued behind it: {lease['queued']}")
    for live in view["ebEnvironments"]:
        click.echo(
            f"  EB {live['name']}: {live['status']}, health {live['health']}, "
            f"version {live['versionLabel']}"
        )
    if not view["ebEnvironments"]:
        click.echo("  EB: no live environment")
    deployed = view["lastDeployed"]
    if deployed:
        click.echo(
            f"  last deployed: {deployed['version']} by request {deployed['requestId']} "
            f"at {_when(deployed['finishedAt'])}"
        )
    last = view["lastRequest"]
    if last and last is not deployed and last.get("outcome") != "Deployed":
        click.echo(f"  last request: {last['requestId']} ended {last['outcome']}")
        if last.get("cause"):
            click.echo(f"    {str(last['cause'])[:200]}")
    for arn in view["runningExecutions"]:
        click.echo(f"  running: {arn}")


def _print_execution(view: dict[str, Any]) -> None:
    click.echo(f"execution {view['executionArn']}: {view['status']}")
    for number, state in enumerate(view["path"], 1):
        retries = view["retries"].get(state)
        suffix = f"  (retried {retries}x)" if retries else ""
        click.echo(f"  [{number:>2}] {state}{suffix}")
    click.echo(f"transitions {view['transitions']}")
    if view["error"]:
        click.echo(f"error {view['error']}: {view['cause'] or ''}"[:2000])
    if view["consoleUrl"]:
        click.echo(f"console {view['consoleUrl']}")


def add_inspect_commands(
    main: click.Group,
    target_for: Callable[[bool, str | None], Any],
    target_options: Callable[[Any], Any],
    error: type[click.ClickException],
    settings_for: Callable[[str], Any],
) -> None:
    """Add `status` and `show` to the CLI group."""

    @main.command()
    @click.option("--environment", "-e", required=True, help="Environment to describe.")
    @target_options
    @click.option(
        "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
    )
    def status(environment: str, sandbox: bool, region: str | None, output: str) -> None:
        """Show ENVIRONMENT's lease, EB status, last deployment and running executions."""
        settings = settings_for(environment)
        view = environment_status(target_for(sandbox, region), environment, settings)
        if output == "json":
            click.echo(json.dumps(view, indent=2, default=str))
        else:
            _print_status(view)

    @main.command()
    @click.argument("execution")
    @target_options
    @click.option(
        "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
    )
    def show(execution: str, sandbox: bool, region: str | None, output: str) -> None:
        """Show EXECUTION's path, retries and failure cause (an ARN or an execution name)."""
        target = target_for(sandbox, region)
        arn = execution
        if not execution.startswith("arn:"):
            arn = execution_arn(target.state_machine_arn, execution)
        try:
            view = execution_view(target, arn)
        except Exception as problem:
            code = getattr(problem, "response", {}).get("Error", {}).get("Code")
            if code in {"ExecutionDoesNotExist", "InvalidArn"}:
                raise error(
                    f"no execution {arn}; pass an execution ARN or name from "
                    "`control-plane history` or `control-plane status`"
                ) from None
            raise
        if output == "json":
            click.echo(json.dumps(view, indent=2, default=str))
        else:
            _print_execution(view)
