"""The dashboard in headless Chromium while the sandbox deploys the sample app.

The test holds the sandbox's virtual clock while it checks the running execution, because the
execution then stops at its first wait and stays there. Debian's Chromium runs with its
background networking off and a host resolver that resolves no name, and every request the
pages make is checked to go to 127.0.0.1.

`make browser` installs Chromium. Without it the test fails under CI and is skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from control_plane.bundle import build_bundle
from control_plane.cli import SAMPLE_APP
from control_plane.executions import build_report, start_deployment, upload_bundle
from control_plane.sandbox import daemon
from control_plane.sandbox.eb.app_host import process_start_time
from control_plane.sandbox.sandbox import Sandbox, SandboxOptions
from control_plane.sandbox.template import REPO_ROOT
from lambdas.common.store import ledger_records

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGUMENTS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
    # No host name resolves, so the browser can reach 127.0.0.1 and nothing else by name.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
INJECTED_VERSION = "<script>window.injected = 1</script>"
WAIT_MS = 30_000


def require_browser() -> Any:
    """Return Playwright's sync API, or fail under CI and skip elsewhere without Chromium."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing; install Debian's chromium with `make browser`"
    try:
        from playwright import sync_api
    except ImportError:
        problem = "playwright is missing; install the test dependencies with `make setup`"
    if problem is None:
        return sync_api
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture(scope="module")
def sync_api() -> Any:
    return require_browser()


@pytest.fixture(scope="module")
def sandbox(sync_api: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Start the sandbox once Chromium is known to be there."""
    with Sandbox(SandboxOptions(work_dir=tmp_path_factory.mktemp("dashboard"))) as running:
        yield running


@pytest.fixture
def dashboard_url(sandbox: Sandbox, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `control-plane dashboard --sandbox --port 0` against the sandbox of this process.

    The command finds a sandbox through daemon.json, so this test writes one that names its
    own process, as the background sandbox would.
    """
    state_dir = tmp_path / "sandbox-state"
    state_dir.mkdir()
    state = {
        **sandbox.status(),
        "region": sandbox.options.region,
        "startTime": process_start_time(os.getpid()),
    }
    (state_dir / daemon.STATE_FILE).write_text(json.dumps(state))
    command = [sys.executable, "-m", "control_plane.cli", "dashboard", "--sandbox"]
    log = tmp_path / "dashboard.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*command, "--port", "0", "--interval", "0.5"],
            env={**os.environ, "CONTROL_PLANE_SANDBOX_DIR": str(state_dir)},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        first_line = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/", first_line)
        assert found, f"no URL in {first_line!r}; log: {log.read_text()[-2000:]}"
        yield found.group(0), process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def start_sample_deployment(sandbox: Sandbox, request_id: str, version: str) -> str:
    s3 = sandbox.client("s3")
    bundle = upload_bundle(s3, sandbox.resources.bundle_bucket, "dev", build_bundle(SAMPLE_APP))
    request = {
        "environment": "dev",
        "version": version,
        "bundle": bundle,
        "requestId": request_id,
        "trigger": "manual",
        "startedBy": "dashboard-test",
    }
    return start_deployment(
        sandbox.client("stepfunctions"), sandbox.resources.state_machine_arn, request
    )


def put_injected_record(sandbox: Sandbox) -> None:
    """Record a staging request whose version label is a script, as a hostile writer could."""
    sandbox.client("dynamodb").put_item(
        TableName=sandbox.resources.table_name,
        Item={
            "pk": {"S": "ENV#staging"},
            "sk": {"S": "REQUEST#injected"},
            "requestId": {"S": "injected"},
            "environment": {"S": "staging"},
            "version": {"S": INJECTED_VERSION},
            "outcome": {"S": "DeploymentFailed"},
            "finishedAt": {"N": "1"},
        },
    )


# What the execution page shows, read in one step so the parts agree with each other.
READ_EXECUTION_PAGE = """() => ({
    status: document.querySelector('[data-field="status"]').textContent,
    currentState: document.querySelector('[data-field="currentState"]').textContent,
    running: Array.from(document.querySelectorAll("g.state.running"), (g) => g.dataset.state),
    visited: Array.from(document.querySelectorAll("g.state.visited"), (g) => g.dataset.state),
})"""


def wait_until_page_matches(sandbox: Sandbox, arn: str, page: Any) -> tuple[list[str], dict]:
    """Return the execution's path and the page's view once the page shows its current state.

    The history is read before and after the page, so a match is not an execution that moved
    on while the page was read.
    """
    sfn = sandbox.client("stepfunctions")
    deadline = time.monotonic() + WAIT_MS / 1000
    view: dict[str, Any] = {}
    path: list[str] = []
    while time.monotonic() < deadline:
        before = build_report(sfn, arn)
        view = page.evaluate(READ_EXECUTION_PAGE)
        after = build_report(sfn, arn)
        assert after.status == "RUNNING", f"{arn} ended {after.status} with the clock held"
        path = after.path
        if path and before.path == path and view["currentState"] == path[-1]:
            return path, view
        time.sleep(0.25)
    raise AssertionError(f"the page shows {view}, but the execution is at {path[-1:]}")


def test_dashboard_follows_a_deployment(
    sync_api: Any, sandbox: Sandbox, dashboard_url: tuple[str, subprocess.Popen], tmp_path: Path
) -> None:
    expect = sync_api.expect
    url, process = dashboard_url
    put_injected_record(sandbox)
    outside: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)

    def only_loopback(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGUMENTS,
            viewport={"width": 1400, "height": 900},
        )
        browser.route("**/*", only_loopback)
        overview = browser.new_page()
        overview.goto(url)
        overview.evaluate("window.loadedOnce = true")
        dev = overview.locator('#environments tr[data-row="dev"]')

        sandbox.clock.add_actor()
        try:
            arn = start_sample_deployment(sandbox, "dashboard-1", "v1")
            name = arn.rsplit(":", 1)[-1]
            expect(dev.locator("td.runningExecution")).to_have_text(name, timeout=WAIT_MS)
            expect(dev.locator("td.lockHolder")).to_have_text("dashboard-1", timeout=WAIT_MS)
            link = dev.locator("td.runningExecution a").get_attribute("href")
            execution = browser.new_page()
            execution.goto(url.rstrip("/") + link)
            execution.evaluate("window.loadedOnce = true")
            path, view = wait_until_page_matches(sandbox, arn, execution)
            execution.screenshot(path=ARTIFACTS / "dashboard-execution.png", full_page=True)

            assert link == f"/executions/{name}"
            assert view["status"] == "RUNNING"
            assert view["running"] == [path[-1]]
            assert sorted(view["visited"]) == sorted(set(path))
        finally:
            sandbox.clock.remove_actor()

        expect(execution.locator('[data-field="status"]')).to_have_text(
            "SUCCEEDED", timeout=WAIT_MS
        )
        final = build_report(sandbox.client("stepfunctions"), arn)
        record = next(
            record
            for record in ledger_records(
                "dev", sandbox.resources.table_name, sandbox.client("dynamodb")
            )
            if record["requestId"] == "dashboard-1"
        )
        (live,) = sandbox.client("elasticbeanstalk").describe_environments(
            ApplicationName="webapp-dev", IncludeDeleted=False
        )["Environments"]
        deployment = overview.locator(f'#deployments tr[data-row="{name}"]')
        expect(deployment.locator("td.outcome")).to_have_text(record["outcome"], timeout=WAIT_MS)
        overview.screenshot(path=ARTIFACTS / "dashboard.png", full_page=True)

        assert final.status == "SUCCEEDED"
        assert record["outcome"] == "Deployed"
        assert live["VersionLabel"] == "v1"
        assert live["Health"] == "Green"
        expect(execution.locator("g.state.running")).to_have_count(0)
        expect(execution.locator('[data-field="currentState"]')).to_have_text("-")
        expect(execution.locator(f'g.state.visited[data-state="{final.path[-1]}"]')).to_have_count(
            1
        )
        expect(deployment.locator("td.version")).to_have_text("v1")
        expect(deployment.locator("td.requestId a")).to_have_attribute("href", link)
        expect(dev.locator("td.version")).to_have_text(live["VersionLabel"])
        expect(dev.locator("td.health")).to_have_text(live["Health"])
        expect(dev.locator("td.status")).to_have_text(live["Status"])
        expect(dev.locator("td.runningExecution")).to_have_text("-")
        expect(dev.locator("td.lockHolder")).to_have_text("-")
        injected = overview.locator("#deployments td.version", has_text=INJECTED_VERSION)
        expect(injected).to_have_count(1)
        assert overview.evaluate("window.injected") is None
        assert overview.evaluate("window.loadedOnce") is True
        assert execution.evaluate("window.loadedOnce") is True
        browser.close()

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=10)
    assert process.returncode == 130
    assert output.strip().endswith("dashboard stopped")
    assert outside == []
