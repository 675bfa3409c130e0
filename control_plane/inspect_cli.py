"""`control-plane status` and `control-plane show`: what an environment and an execution look like.

Both read only: the lease, the ledger, EB and the execution history. Against AWS they print
links to the Step Functions console; `--output json` gives the same data to scripts.
`show --graph FILE` also draws the execution's graph (see graph.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from .cli_options import (
    environment_option,
    environment_settings,
    load_cli_settings,
    output_option,
)
from .executions import ExecutionReport, build_report, execution_arn
from .graph import GRAPH_SUFFIXES, load_definition, render_graph, states_missing_from
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


def environment_status(
    target: Any, environment: str, settings: Any, records: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Gather the environment's lease, last ledger records, EB state and running executions.

    `records` saves reading the ledger again when the caller already has the environment's
    records, oldest first.
    """
    from lambdas.common.lease import read_lock
    from lambdas.common.store import ledger_records

    now = _now(target)
    if records is None:
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


def execution_view(
    target: Any, execution_arn: str, report: ExecutionReport | None = None
) -> dict[str, Any]:
    """Describe an execution: status, path, retries per state, failure and console link.

    `report` saves reading the history again when the caller already has it.
    """
    if report is None:
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


def _check_graph_file(
    context: click.Context, parameter: click.Parameter, value: Path | None
) -> Path | None:
    if value is not None and value.suffix.lower() not in GRAPH_SUFFIXES:
        raise click.BadParameter(
            f"{value}: cannot draw a graph as {value.suffix or 'a file without extension'}; "
            "name the file .svg (the image) or .html (a page with the image and a legend)"
        )
    return value


def _write_graph(
    target: Any, report: ExecutionReport, path: Path, error: type[click.ClickException]
) -> None:
    """Draw the execution's graph into `path`.

    Warnings and the confirmation go to stderr, so the output of `--output json` stays JSON.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        definition, note = load_definition(target.sfn, report.arn)
    except (BotoCoreError, ClientError) as problem:
        raise error(
            f"cannot read the state machine definition of {report.arn}: {problem}; the graph "
            "needs states:DescribeStateMachineForExecution or states:DescribeStateMachine"
        ) from None
    notes = [note] if note else []
    missing = states_missing_from(definition, report)
    try:
        content = render_graph(
            path.suffix, definition, report, console_link(target, report.arn), notes
        )
    except ValueError as problem:
        raise error(f"cannot draw the graph of {report.arn}: {problem}") from None
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as problem:
        raise error(
            f"cannot write the graph to {path}: {problem.strerror or problem}; "
            "pass a path in an existing, writable folder"
        ) from None
    if missing:
        notes.append(
            "the history names states that are not in the definition: " + ", ".join(missing)
        )
    for line in notes:
        click.echo(f"warning: {line}", err=True)
    click.echo(f"graph written to {path}", err=True)


def _check_execution_argument(
    context: click.Context, parameter: click.Parameter, value: str
) -> str:
    if not value.strip():
        raise click.BadParameter("empty; pass an execution ARN, an execution name or a request id")
    return value


def _resolve_execution(target: Any, value: str) -> str:
    """Return the ARN of the execution that `value` names: an ARN, an execution name or a
    request id, whose execution is named `<environment>-<request id>`."""
    if value.startswith("arn:"):
        return value
    arn = execution_arn(target.state_machine_arn, value)
    candidates = [arn] + [
        execution_arn(target.state_machine_arn, f"{environment}-{value}")
        for environment in sorted(load_cli_settings().environments)
    ]
    for candidate in candidates:
        try:
            target.sfn.describe_execution(executionArn=candidate)
        except Exception as problem:
            code = getattr(problem, "response", {}).get("Error", {}).get("Code")
            if code in {"ExecutionDoesNotExist", "InvalidArn"}:
                continue
            raise
        return candidate
    return arn


def add_inspect_commands(
    main: click.Group,
    target_for: Callable[[bool, str | None], Any],
    target_options: Callable[[Any], Any],
    error: type[click.ClickException],
) -> None:
    """Add `status` and `show` to the CLI group."""

    @main.command()
    @environment_option("Environment to describe.")
    @target_options
    @output_option
    def status(environment: str, sandbox: bool, region: str | None, output: str) -> None:
        """Show ENVIRONMENT's lease, EB status, last deployment and running executions."""
        settings = environment_settings(environment)
        view = environment_status(target_for(sandbox, region), environment, settings)
        if output == "json":
            click.echo(json.dumps(view, indent=2, default=str))
        else:
            _print_status(view)

    @main.command()
    @click.argument("execution", callback=_check_execution_argument)
    @target_options
    @output_option
    @click.option(
        "--graph",
        "graph_file",
        type=click.Path(dir_okay=False, path_type=Path),
        callback=_check_graph_file,
        help="Also draw the state machine with the execution's path to this file: .svg for "
        "the image, .html for a page with the image, the execution's facts and a legend.",
    )
    def show(
        execution: str, sandbox: bool, region: str | None, output: str, graph_file: Path | None
    ) -> None:
        """Show EXECUTION's path, retries and failure cause (an ARN or an execution name)."""
        target = target_for(sandbox, region)
        arn = _resolve_execution(target, execution)
        try:
            report = build_report(target.sfn, arn)
            view = execution_view(target, arn, report)
        except Exception as problem:
            code = getattr(problem, "response", {}).get("Error", {}).get("Code")
            if code in {"ExecutionDoesNotExist", "InvalidArn"}:
                raise error(
                    f"no execution {arn}, and no request {execution!r} in any environment; pass "
                    "an execution ARN or name (`control-plane status`) or a request id "
                    "(`control-plane history`)"
                ) from None
            raise
        if output == "json":
            click.echo(json.dumps(view, indent=2, default=str))
        else:
            _print_execution(view)
        if graph_file is not None:
            _write_graph(target, report, graph_file, error)
