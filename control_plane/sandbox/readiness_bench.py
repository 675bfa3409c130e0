"""Measure how fast a deployment notices that its environment is Ready, in the sandbox.

`measure_deployment` runs one first deployment (provision, then update) of the sample app in a
fresh sandbox. From the EB event log and the execution history it reads the virtual seconds from
each EB operation completing to the next state starting, and the execution's state transitions.
With `redeploy`, it then deploys the same version again and counts the CodeBuild builds that
this second deployment starts. `bench/readiness.py` and `bench/run.py` print the comparison,
and tests/functional asserts it.

Modes:

- `events`: the default, event-driven readiness;
- `lost-events`: every EB event is dropped, so each await falls back to polling after its
  heartbeat;
- `polling`: the environment sets `readiness: polling`, so the waits poll from the start, as
  before event-driven readiness;
- `baseline`: the shell scripts this control plane replaces. The waits poll from the start,
  every 20 s for up to 30 checks (CDK context `readinessPolling: fixed`), and every deployment
  previews the stack (`infra_check: always`). Stack outputs are retried 5 times 10 s apart, as
  in every mode.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ..bundle import build_bundle
from ..executions import ExecutionReport, execution_name, start_or_attach, upload_bundle
from ..executions import wait_for_execution as wait_for_report
from .eb.events import CREATION_SUCCESSFUL, UPDATE_SUCCESSFUL
from .template import REPO_ROOT

Mode = Literal["events", "lost-events", "polling", "baseline"]
MODES: tuple[Mode, ...] = ("events", "lost-events", "polling", "baseline")
ENVIRONMENT = "dev"
SAMPLE_APP = REPO_ROOT / "samples" / "webapp"
# The state each wait hands over to, and the EB message that marks its operation complete.
_WAITS = {
    "environment": ("DeployVersion", CREATION_SUCCESSFUL.message),
    "deployment": ("VerifyHealth", UPDATE_SUCCESSFUL.message),
}


@dataclass(frozen=True)
class Configuration:
    """Settings with which a mode sets up the control plane in its sandbox."""

    # Settings of the `dev` environment that differ from environments.yaml.
    environment: dict[str, Any] = field(default_factory=dict)
    # CDK context values of the synthesized state machine.
    cdk_context: dict[str, str] = field(default_factory=dict)
    lose_events: bool = False


CONFIGURATIONS: dict[Mode, Configuration] = {
    "events": Configuration(),
    "lost-events": Configuration(lose_events=True),
    "polling": Configuration(environment={"readiness": "polling"}),
    "baseline": Configuration(
        environment={"readiness": "polling", "infra_check": "always"},
        cdk_context={"readinessPolling": "fixed"},
    ),
}


@dataclass(frozen=True)
class Redeploy:
    """A second deployment of the same version and bundle, with the infrastructure unchanged."""

    status: str
    transitions: int
    path: list[str]
    builds_started: int


@dataclass(frozen=True)
class ReadinessRun:
    """One measured deployment."""

    mode: Mode
    launch_seconds: float
    status: str
    transitions: int
    path: list[str]
    # Virtual seconds from EB completing the launch (environment) or the update (deployment)
    # to the state after the wait starting.
    latency_seconds: dict[str, float]
    # Each state the execution entered, with the virtual seconds since the execution started.
    timeline: list[tuple[str, float]]
    # CodeBuild builds the first deployment started.
    builds_started: int = 0
    redeploy: Redeploy | None = None


def measure_deployment(
    mode: Mode,
    launch_seconds: float,
    *,
    update_seconds: float = 90,
    request_id: str = "bench-1",
    work_root: Path | None = None,
    redeploy: bool = False,
) -> ReadinessRun:
    """Deploy the sample app once to a new `dev` environment and measure its waits.

    With `redeploy`, deploy the same version again under request id `<request_id>-again`, as
    a no-change deployment would, once the first deployment has ended.
    """
    from .sandbox import Sandbox, SandboxOptions

    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    configuration = CONFIGURATIONS[mode]
    work_dir = Path(tempfile.mkdtemp(prefix="readiness-", dir=work_root))
    overrides = {ENVIRONMENT: configuration.environment} if configuration.environment else {}
    options = SandboxOptions(
        work_dir=work_dir,
        launch_seconds=launch_seconds,
        update_seconds=update_seconds,
        environment_overrides=overrides,
        cdk_context=configuration.cdk_context,
    )
    second = None
    try:
        with Sandbox(options) as sandbox:
            if configuration.lose_events:
                sandbox.events.lose_events()
            report = _deploy(sandbox, request_id)
            completions = _completion_times(sandbox)
            builds_started = len(sandbox.codebuild.builds)
            if redeploy:
                again = _deploy(sandbox, f"{request_id}-again")
                second = Redeploy(
                    status=again.status,
                    transitions=again.transitions,
                    path=again.path,
                    builds_started=len(sandbox.codebuild.builds) - builds_started,
                )
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return ReadinessRun(
        mode=mode,
        launch_seconds=launch_seconds,
        status=report.status,
        transitions=report.transitions,
        path=report.path,
        latency_seconds=_latencies(report, completions),
        timeline=_timeline(report),
        builds_started=builds_started,
        redeploy=second,
    )


def _deploy(sandbox: Any, request_id: str) -> ExecutionReport:
    bundle = upload_bundle(
        sandbox.client("s3"),
        sandbox.resources.bundle_bucket,
        ENVIRONMENT,
        build_bundle(SAMPLE_APP),
    )
    request = {
        "environment": ENVIRONMENT,
        "version": "v1",
        "bundle": bundle,
        "requestId": request_id,
        "trigger": "manual",
        "startedBy": "readiness-bench",
    }
    sfn = sandbox.client("stepfunctions")
    arn, _ = start_or_attach(
        sfn,
        sandbox.resources.state_machine_arn,
        request,
        name=execution_name(ENVIRONMENT, request_id),
    )
    return wait_for_report(sfn, arn, timeout_seconds=600)


def _completion_times(sandbox: Any) -> dict[str, list[datetime]]:
    """Return when EB completed each launch and each update, from its event log."""
    from lambdas.common.settings import load_settings

    settings = load_settings(REPO_ROOT / "environments.yaml").environment(ENVIRONMENT)
    events = sandbox.client("elasticbeanstalk").describe_events(
        ApplicationName=settings.eb_application
    )["Events"]
    return {
        wait: sorted(event["EventDate"] for event in events if event["Message"] == message)
        for wait, (_, message) in _WAITS.items()
    }


def _latencies(report: ExecutionReport, completions: dict[str, list[datetime]]) -> dict[str, float]:
    """Return, per wait, the seconds from EB's completion to the next state's first entry."""
    entered: dict[str, datetime] = {}
    for event in report.events:
        if event["type"].endswith("StateEntered"):
            entered.setdefault(event["stateEnteredEventDetails"]["name"], event["timestamp"])
    latencies = {}
    for wait, (next_state, _) in _WAITS.items():
        if next_state in entered and completions[wait]:
            delta = entered[next_state] - completions[wait][0]
            latencies[wait] = round(delta.total_seconds(), 3)
    return latencies


def _timeline(report: ExecutionReport) -> list[tuple[str, float]]:
    started = report.events[0]["timestamp"]
    return [
        (event["stateEnteredEventDetails"]["name"], (event["timestamp"] - started).total_seconds())
        for event in report.events
        if event["type"].endswith("StateEntered")
    ]


def format_runs(runs: list[ReadinessRun]) -> str:
    """Lay the runs out as a table, one line per run."""
    header = (
        f"{'mode':<12} {'launch s':>8} {'status':<10} {'transitions':>11} "
        f"{'env latency s':>13} {'deploy latency s':>16}"
    )
    lines = [header, "-" * len(header)]
    for run in runs:
        environment = run.latency_seconds.get("environment")
        deployment = run.latency_seconds.get("deployment")
        lines.append(
            f"{run.mode:<12} {run.launch_seconds:>8.0f} {run.status:<10} {run.transitions:>11} "
            f"{_seconds(environment):>13} {_seconds(deployment):>16}"
        )
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
