"""`control-plane destroy` and `control-plane recovery ...`: operator commands of recovery.

Automatic recovery itself runs in AWS (see lambdas/common/recovery.py). These commands record
that an environment is destroyed on purpose, and show or reset an environment's circuit breaker.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import click

from lambdas.common.recovery import (
    close_breaker,
    destroy_intent_in_force,
    last_deployed_record,
    maintenance_parameter,
    read_breaker,
    record_destroy_intent,
)

from .cli_options import environment_option, environment_settings, output_option, print_json
from .sandbox.clock import DEFAULT_START


def _when(epoch_seconds: float | None) -> str:
    if epoch_seconds is None:
        return "-"
    return datetime.fromtimestamp(float(epoch_seconds), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _print_recovery_status(
    environment: str, breaker: dict[str, Any] | None, destroyed: dict[str, Any] | None
) -> None:
    if breaker:
        click.echo(f"{environment}: circuit breaker OPEN since {_when(breaker['openedAt'])}")
        click.echo(f"  {breaker.get('reason')}")
    else:
        click.echo(f"{environment}: circuit breaker closed")
    if destroyed:
        click.echo(
            f"{environment}: destroyed on purpose by {destroyed.get('destroyedBy')} at "
            f"{_when(destroyed.get('destroyedAt'))}; recovery skips it until a deployment "
            "succeeds"
        )
    click.echo(f"maintenance switch: SSM parameter {maintenance_parameter(environment)}")


def add_recovery_commands(
    main: click.Group,
    target_for: Callable[[bool, str | None], Any],
    target_options: Callable[[Any], Any],
    error: type[click.ClickException],
) -> None:
    """Add the commands to the CLI group; the CLI passes how it reaches AWS or the sandbox."""

    @main.command()
    @environment_option("Environment to destroy.")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @target_options
    @output_option
    def destroy(
        environment: str, yes: bool, sandbox: bool, region: str | None, output: str
    ) -> None:
        """Destroy ENVIRONMENT's EB environment on purpose, so recovery leaves it alone.

        Records the intent first (automatic recovery skips the environment until a later
        deployment succeeds), then terminates the EB environment. The Pulumi stack's other
        resources stay; remove them with `pulumi destroy`.
        """
        from lambdas.common.lease import read_lock

        settings = environment_settings(environment)
        target = target_for(sandbox, region)
        lock = read_lock(environment, target.table_name, target.dynamodb)
        if lock:
            holder = lock.get("holder", {}).get("S")
            arn = lock.get("executionArn", {}).get("S")
            status = target.sfn.describe_execution(executionArn=arn)["status"] if arn else None
            if status in (None, "RUNNING", "PENDING_REDRIVE"):
                raise error(
                    f"{environment} is locked by request {holder}; wait for that deployment to "
                    f"end (`control-plane lock show --environment {environment}`), then destroy"
                )
            raise error(
                f"{environment} is locked by request {holder}, whose execution ended {status} "
                f"without releasing it; run `control-plane lock release --environment "
                f"{environment}`, then destroy"
            )
        name = settings.eb_environment_name
        if not yes:
            click.confirm(
                f"Terminate EB environment {name} of {environment} and stop its automatic "
                "recovery?",
                abort=True,
                err=True,
            )
        # The sandbox's tasks run on its virtual clock; the intent must be comparable with it.
        seconds = target.virtual_seconds()
        destroyed_at = DEFAULT_START + seconds if seconds is not None else time.time()
        record_destroy_intent(
            environment, getpass.getuser(), destroyed_at, target.table_name, target.dynamodb
        )
        eb = (
            target.elasticbeanstalk
            if target.sandbox_endpoint
            else boto3.client("elasticbeanstalk", region_name=settings.region)
        )
        live = [
            item
            for item in eb.describe_environments(
                ApplicationName=settings.eb_application,
                EnvironmentNames=[name],
                IncludeDeleted=False,
            )["Environments"]
            if item.get("Status") not in ("Terminated", "Terminating")
        ]
        for item in live:
            eb.terminate_environment(EnvironmentName=item["EnvironmentName"])
        terminated = [item["EnvironmentName"] for item in live]
        if output == "json":
            print_json(
                {
                    "environment": environment,
                    "destroyedAt": int(destroyed_at),
                    "terminating": terminated,
                    "pulumiStack": settings.pulumi_stack,
                }
            )
            return
        click.echo(f"{environment}: recorded as destroyed on purpose; recovery will skip it")
        if not live:
            click.echo(f"{environment}: no live EB environment named {name}")
        for terminating in terminated:
            click.echo(f"{environment}: terminating EB environment {terminating}")
        click.echo(
            f"The stack's other resources remain; remove them with `pulumi destroy --stack "
            f"{settings.pulumi_stack}` in infra/. Deploying {environment} again resumes "
            "automatic recovery."
        )

    @main.group()
    def recovery() -> None:
        """Automatic recovery of terminated environments: circuit breaker and status."""

    @recovery.command("status")
    @environment_option("Environment name from the environments file.")
    @target_options
    @output_option
    def recovery_status(environment: str, sandbox: bool, region: str | None, output: str) -> None:
        """Show ENVIRONMENT's circuit breaker and whether it was destroyed on purpose."""
        target = target_for(sandbox, region)
        breaker = read_breaker(environment, target.table_name, target.dynamodb)
        # A deployment that succeeded after the destroy ended the intent.
        destroyed = destroy_intent_in_force(
            environment,
            last_deployed_record(environment, target.table_name, target.dynamodb),
            target.table_name,
            target.dynamodb,
        )
        if output == "json":
            print_json(
                {
                    "environment": environment,
                    "breaker": breaker,
                    "destroyIntent": destroyed,
                    "maintenanceParameter": maintenance_parameter(environment),
                }
            )
            return
        _print_recovery_status(environment, breaker, destroyed)

    @recovery.command("reset")
    @environment_option("Environment name from the environments file.")
    @target_options
    @output_option
    def recovery_reset(environment: str, sandbox: bool, region: str | None, output: str) -> None:
        """Close ENVIRONMENT's circuit breaker, so automatic recovery resumes.

        The counted recoveries are forgotten too. The next termination event or sweep (every
        15 minutes) recovers an environment that is still terminated.
        """
        target = target_for(sandbox, region)
        closed = close_breaker(environment, target.table_name, target.dynamodb)
        if output == "json":
            print_json({"environment": environment, "closed": closed})
        elif closed:
            click.echo(f"{environment}: circuit breaker closed; automatic recovery resumes")
        else:
            click.echo(f"{environment}: the circuit breaker was not open; nothing to reset")
