"""WaitForEnvironment and WaitForDeployment against the sandbox's EB simulator.

Each test calls a handler the way one Retry attempt would, moves the virtual clock and calls it
again. The handlers read that clock through lambdas.common.clock, so the health rules, the
settling window and the deadline are checked on EB's own data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from control_plane.bundle import build_bundle
from control_plane.executions import upload_bundle
from control_plane.sandbox.sandbox import Sandbox, SandboxOptions
from lambdas import wait_for_deployment, wait_for_environment
from lambdas.common.errors import DeploymentFailed, EnvironmentNotReady, WaitTimedOut
from lambdas.common.waits import DEPLOYMENT_WAIT_SECONDS, ENVIRONMENT_WAIT_SECONDS
from tests.sandbox_handlers import Context, point_clients_at_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
APPLICATION = "webapp-waits"
LAUNCH, UPDATE = 60, 90
# Bucket and key of the sample app's bundle, set by the module's sandbox fixture.
BUNDLE: list[str] = []


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    options = SandboxOptions(
        work_dir=tmp_path_factory.mktemp("waits"), launch_seconds=LAUNCH, update_seconds=UPDATE
    )
    with Sandbox(options) as running:
        eb = running.client("elasticbeanstalk")
        eb.create_application(ApplicationName=APPLICATION)
        bundle = upload_bundle(
            running.client("s3"),
            running.resources.bundle_bucket,
            "dev",
            build_bundle(REPO_ROOT / "samples" / "webapp"),
        )
        BUNDLE[:] = bundle[len("s3://") :].split("/", 1)
        add_version(running, "v1")
        yield running


@pytest.fixture(autouse=True)
def sandbox_environment(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    point_clients_at_sandbox(sandbox, monkeypatch)


def iso(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).isoformat()


def event(
    name: str, *, environment: str = "dev", version: str = "v2", started: float, **extra: Any
) -> dict[str, Any]:
    """The payload of a wait task whose state was entered at `started` (virtual time)."""
    return {
        "request": {
            "environment": environment,
            "version": version,
            "bundle": "s3://bucket/app.zip",
            "requestId": "r-1",
        },
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:dev-r-1",
        "target": {
            "environment": environment,
            "region": "us-east-1",
            "project": "webapp",
            "stack": environment,
            "backendUrl": "s3://state",
            "ebApplication": APPLICATION,
            "healthPath": "/health",
        },
        "outputs": {"ebEnvironmentName": name, "ebApplicationName": APPLICATION},
        "waitStartedAt": iso(started),
        **extra,
    }


def add_version(sandbox: Sandbox, label: str) -> None:
    """Register `label`; each test deploys its own label, so one test's fault spares others."""
    bucket, key = BUNDLE
    sandbox.client("elasticbeanstalk").create_application_version(
        ApplicationName=APPLICATION,
        VersionLabel=label,
        SourceBundle={"S3Bucket": bucket, "S3Key": key},
    )


def launch(sandbox: Sandbox, name: str) -> None:
    """Create the environment on v1 and wait until it is Ready."""
    sandbox.client("elasticbeanstalk").create_environment(
        ApplicationName=APPLICATION, EnvironmentName=name, VersionLabel="v1"
    )
    sandbox.clock.advance(LAUNCH)


def update(sandbox: Sandbox, name: str, label: str) -> float:
    """Start the update to `label` and return the virtual time it started."""
    if label != "v1":
        add_version(sandbox, label)
    started = sandbox.clock.now()
    sandbox.client("elasticbeanstalk").update_environment(EnvironmentName=name, VersionLabel=label)
    return started


def wait(name: str, version: str, **options: Any) -> dict[str, Any]:
    return wait_for_deployment.handler(event(name, version=version, **options), Context())


def test_rolling_update_is_not_done_while_updating(sandbox: Sandbox) -> None:
    launch(sandbox, "waits-rolling")
    started = update(sandbox, "waits-rolling", "rolling-v2")
    sandbox.clock.advance(UPDATE - 1)

    # EB shows the new label from the start, but Ready only once every batch is done.
    with pytest.raises(EnvironmentNotReady, match="is Updating on version rolling-v2"):
        wait("waits-rolling", "rolling-v2", started=started)
    sandbox.clock.advance(1)
    summary = wait("waits-rolling", "rolling-v2", started=started)

    assert (summary["status"], summary["versionLabel"], summary["health"]) == (
        "Ready",
        "rolling-v2",
        "Green",
    )
    assert summary["healthAccepted"] == "health Green (Ok)"


def test_red_after_ready_fails_with_causes(sandbox: Sandbox) -> None:
    launch(sandbox, "waits-red")
    sandbox.eb.set_environment_health("red-v2", "Red", causes=["100.0 % of requests fail"])
    started = update(sandbox, "waits-red", "red-v2")
    sandbox.clock.advance(UPDATE)

    with pytest.raises(DeploymentFailed) as raised:
        wait("waits-red", "red-v2", started=started)

    message = str(raised.value)
    assert "is Ready on version red-v2 but its health is Red (Degraded)" in message
    assert "Elastic Beanstalk reports: 100.0 % of requests fail" in message


def test_grey_after_ready_keeps_waiting(sandbox: Sandbox) -> None:
    launch(sandbox, "waits-grey")
    sandbox.eb.set_environment_health("grey-v2", "Grey")
    started = update(sandbox, "waits-grey", "grey-v2")
    sandbox.clock.advance(UPDATE)

    with pytest.raises(EnvironmentNotReady, match=r"health is Grey \(NoData\)"):
        wait("waits-grey", "grey-v2", started=started)


def test_unaccepted_yellow_times_out(sandbox: Sandbox) -> None:
    launch(sandbox, "waits-yellow-dev")
    sandbox.eb.set_environment_health("yellow-v2", "Yellow")
    started = update(sandbox, "waits-yellow-dev", "yellow-v2")
    sandbox.clock.advance(DEPLOYMENT_WAIT_SECONDS - 1)
    with pytest.raises(EnvironmentNotReady, match="accepts only Green"):
        wait("waits-yellow-dev", "yellow-v2", started=started)
    sandbox.clock.advance(1)

    with pytest.raises(WaitTimedOut) as raised:
        wait("waits-yellow-dev", "yellow-v2", started=started)

    message = str(raised.value)
    assert "after 1200 s (budget 1200 s)" in message
    assert "is Ready on version yellow-v2, health is Yellow (Warning)" in message


def test_yellow_is_accepted_after_settling_where_allowed(sandbox: Sandbox) -> None:
    launch(sandbox, "waits-yellow-staging")
    sandbox.eb.set_environment_health("settle-v2", "Yellow")
    started = update(sandbox, "waits-yellow-staging", "settle-v2")
    sandbox.clock.advance(UPDATE + 119)
    with pytest.raises(EnvironmentNotReady, match="for 119 s of the 120 s settling window"):
        wait("waits-yellow-staging", "settle-v2", environment="staging", started=started)
    sandbox.clock.advance(1)

    summary = wait("waits-yellow-staging", "settle-v2", environment="staging", started=started)

    assert summary["health"] == "Yellow"
    assert summary["healthAccepted"] == (
        "health Yellow (Warning) accepted after 120 s (settling 120 s)"
    )


def test_settling_restarts_after_a_red_spell(sandbox: Sandbox) -> None:
    launch(sandbox, "waits-dip")
    sandbox.eb.set_health_sequence("dip-v2", [("Yellow", 0), ("Red", 30), ("Yellow", 60)])
    started = update(sandbox, "waits-dip", "dip-v2")
    sandbox.clock.advance(UPDATE + 150)
    with pytest.raises(EnvironmentNotReady, match="for 90 s of the 120 s"):
        wait("waits-dip", "dip-v2", environment="staging", started=started)
    sandbox.clock.advance(30)

    summary = wait("waits-dip", "dip-v2", environment="staging", started=started)

    assert summary["health"] == "Yellow"


def test_rollback_wait_checks_the_previous_version(sandbox: Sandbox) -> None:
    launch(sandbox, "waits-rollback")
    started = update(sandbox, "waits-rollback", "v1")
    sandbox.clock.advance(UPDATE)

    summary = wait("waits-rollback", "unused", started=started, expectedVersion="v1")

    assert summary["versionLabel"] == "v1"


def test_environment_wait_deadline_spans_both_parts(sandbox: Sandbox) -> None:
    started = sandbox.clock.now()
    payload = event("waits-late", started=started)
    with pytest.raises(EnvironmentNotReady, match="does not exist yet"):
        wait_for_environment.handler(payload, Context())
    sandbox.clock.advance(ENVIRONMENT_WAIT_SECONDS - 30)
    # Ready only 30 s after the deadline, because a launch takes 60 s.
    sandbox.client("elasticbeanstalk").create_environment(
        ApplicationName=APPLICATION, EnvironmentName="waits-late", VersionLabel="v1"
    )
    with pytest.raises(EnvironmentNotReady, match="is Launching"):
        wait_for_environment.handler(payload, Context())
    sandbox.clock.advance(30)

    with pytest.raises(WaitTimedOut) as raised:
        wait_for_environment.handler(payload, Context())

    message = str(raised.value)
    assert "waiting for environment waits-late to be Ready after 900 s (budget 900 s)" in message
    assert "is Launching on version v1, health Grey (Pending)" in message


def test_environment_wait_times_out_on_a_missing_environment(sandbox: Sandbox) -> None:
    started = sandbox.clock.now() - ENVIRONMENT_WAIT_SECONDS

    with pytest.raises(WaitTimedOut, match="environment waits-never does not exist yet"):
        wait_for_environment.handler(event("waits-never", started=started), Context())
