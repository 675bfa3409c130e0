"""`control-plane dashboard`: its HTTP handlers against moto, never AWS and never a browser.

The browser test (tests/functional/test_dashboard_browser.py) follows a real deployment.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.client import HTTPMessage
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from click.testing import CliRunner
from moto import mock_aws

from control_plane import cli, dashboard
from control_plane.cli import Target, main
from control_plane.dashboard import DashboardData, DashboardServer
from control_plane.dashboard_pages import CONTENT_SECURITY_POLICY, PAGE_SCRIPT
from control_plane.sandbox import daemon
from control_plane.sandbox.template import REPO_ROOT
from lambdas.common.settings import load_settings
from tests.ledger_table import create_ledger_table

# moto does not run executions: each stays RUNNING and its history is moto's fixed one, whose
# only state is "A State". This definition has that state, so the graph can highlight it.
DEFINITION = json.dumps(
    {"StartAt": "A State", "States": {"A State": {"Type": "Pass", "End": True}}}
)
SCRIPT_VERSION = "<script>alert(1)</script>"
MARKUP_CAUSE = '"><img src=x onerror=alert(2)>'
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Response:
    status: int
    headers: HTTPMessage
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


@pytest.fixture
def moto_target() -> Iterator[Target]:
    """A control plane in moto: state machine, ledger table and dev's EB environment."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        region = "us-east-1"
        sfn = boto3.client("stepfunctions", region_name=region)
        dynamodb = boto3.client("dynamodb", region_name=region)
        state_machine = sfn.create_state_machine(
            name="Deploy", definition=DEFINITION, roleArn="arn:aws:iam::123456789012:role/deploy"
        )["stateMachineArn"]
        create_ledger_table(dynamodb, "ledger")
        eb = boto3.client("elasticbeanstalk", region_name=region)
        eb.create_application(ApplicationName="webapp-dev")
        eb.create_environment(ApplicationName="webapp-dev", EnvironmentName="webapp-dev")
        yield Target(
            sfn=sfn,
            s3=boto3.client("s3", region_name=region),
            dynamodb=dynamodb,
            elasticbeanstalk=eb,
            state_machine_arn=state_machine,
            bundle_bucket="bundles",
            table_name="ledger",
            make_client=lambda service, other: boto3.client(service, region_name=other or region),
        )


@contextlib.contextmanager
def serving(target: Target) -> Iterator[DashboardServer]:
    """Serve the dashboard of `target` on a free port, reading it afresh for every request."""
    settings = load_settings(REPO_ROOT / "environments.yaml")
    server = DashboardServer(0, DashboardData(target, settings, interval_seconds=0.0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def server(moto_target: Target) -> Iterator[DashboardServer]:
    with serving(moto_target) as running:
        yield running


def get(
    server: DashboardServer, path: str, host: str | None = None, method: str = "GET"
) -> Response:
    request = urllib.request.Request(server.url.rstrip("/") + path, method=method)
    if host is not None:
        request.add_header("Host", host)
    try:
        with _NO_PROXY.open(request, timeout=10) as response:
            return Response(response.status, response.headers, response.read().decode())
    except urllib.error.HTTPError as error:
        return Response(error.code, error.headers, error.read().decode())


def put_record(target: Target, environment: str, request_id: str, **fields: Any) -> None:
    item = {
        "pk": {"S": f"ENV#{environment}"},
        "sk": {"S": f"REQUEST#{request_id}"},
        "requestId": {"S": request_id},
        "environment": {"S": environment},
    }
    for key, value in fields.items():
        item[key] = {"N": str(value)} if isinstance(value, int | float) else {"S": str(value)}
    target.dynamodb.put_item(TableName=target.table_name, Item=item)


def start_execution(target: Target, name: str) -> str:
    return target.sfn.start_execution(
        stateMachineArn=target.state_machine_arn, name=name, input="{}"
    )["executionArn"]


def lock(target: Target, environment: str, holder: str, execution_arn: str) -> None:
    target.dynamodb.put_item(
        TableName=target.table_name,
        Item={
            "pk": {"S": f"ENV#{environment}"},
            "sk": {"S": "LOCK"},
            "holder": {"S": holder},
            "executionArn": {"S": execution_arn},
            "fencingToken": {"N": "3"},
            "acquiredAt": {"N": "0"},
        },
    )


def test_overview_json_lists_environments_and_deployments(
    server: DashboardServer, moto_target: Target
) -> None:
    old = start_execution(moto_target, "dev-r-1")
    put_record(
        moto_target,
        "dev",
        "r-1",
        version="v1",
        outcome="Deployed",
        executionArn=old,
        startedAt=1767225600,
        finishedAt=1767225642,
        durationSeconds=42.4,
    )
    put_record(
        moto_target,
        "prod",
        "r-9",
        version="v0",
        outcome="RolledBack",
        errorName="HealthCheckFailed",
        finishedAt=1767225000,
    )
    running = start_execution(moto_target, "dev-r-2")
    lock(moto_target, "dev", "r-2", running)

    response = get(server, "/api/overview")

    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    overview = response.json()
    assert [row["name"] for row in overview["environments"]] == ["dev", "staging", "prod"]
    assert overview["problems"] == []
    dev = overview["environments"][0]
    assert dev["region"] == "us-east-1"
    assert dev["status"] == "Ready"
    assert dev["health"] == "Grey"
    assert dev["ebEnvironment"] == "webapp-dev"
    assert dev["lockHolder"] == "r-2"
    assert dev["runningExecution"] == "dev-r-2"
    assert dev["runningExecutionUrl"] == "/executions/dev-r-2"
    assert sorted(dev["runningExecutions"]) == ["dev-r-1", "dev-r-2"]
    assert dev["lastDeployedVersion"] == "v1"
    assert overview["environments"][2]["region"] == "eu-west-1"
    newest, oldest = overview["deployments"]
    assert newest["requestId"] == "r-1"
    assert newest["environment"] == "dev"
    assert newest["outcome"] == "Deployed"
    assert newest["started"] == "2026-01-01 00:00:00 UTC"
    assert newest["duration"] == "42 s"
    assert newest["execution"] == "dev-r-1"
    assert newest["executionUrl"] == "/executions/dev-r-1"
    assert oldest["requestId"] == "r-9"
    assert oldest["error"] == "HealthCheckFailed"
    assert oldest["executionUrl"] is None


def test_execution_json_highlights_the_current_state(
    server: DashboardServer, moto_target: Target
) -> None:
    arn = start_execution(moto_target, "dev-r-2")

    response = get(server, "/api/executions/dev-r-2")

    assert response.status == 200
    execution = response.json()
    assert execution["name"] == "dev-r-2"
    assert execution["executionArn"] == arn
    assert execution["status"] == "RUNNING"
    assert execution["running"] is True
    assert execution["currentState"] == "A State"
    assert execution["path"] == ["A State"]
    assert execution["statesMissingFromDefinition"] == []
    running = re.findall(
        r'<g class="([^"]*\brunning\b[^"]*)"[^>]*data-state="([^"]*)"', execution["graphSvg"]
    )
    assert running == [("state pass running visited", "A State")]


def test_ended_execution_page_shows_cause(server: DashboardServer, moto_target: Target) -> None:
    arn = start_execution(moto_target, "dev-r-3")
    # Like StopExecution without an error and cause: moto keeps neither.
    moto_target.sfn.stop_execution(executionArn=arn)

    page = get(server, "/executions/dev-r-3")

    assert page.status == 200
    assert 'data-live="false"' in page.body
    assert '<span data-field="status" data-value="ABORTED">ABORTED</span>' in page.body
    assert '<span data-field="error" data-value="ABORTED">ABORTED</span>' in page.body
    assert '<pre data-field="cause" data-value="the execution was stopped">' in page.body
    assert '<g class="state pass failed visited"' in page.body
    assert '<text class="failure-error"' in page.body
    assert "the execution was stopped</tspan>" in page.body


@pytest.mark.parametrize(
    "path",
    [
        "/api/executions/dev-unknown",
        "/executions/dev-unknown",
        "/api/executions/..%2F..%2Fetc%2Fpasswd",
        "/executions/%3Cscript%3E",
        "/no-such-page",
    ],
)
def test_unknown_execution_or_page_is_404(server: DashboardServer, path: str) -> None:
    response = get(server, path)

    assert response.status == 404
    if path.startswith("/api/"):
        assert response.json()["error"].startswith("no execution")
    else:
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "<script>alert" not in response.body


def test_values_are_escaped_in_html(server: DashboardServer, moto_target: Target) -> None:
    put_record(
        moto_target,
        "staging",
        "r-5",
        version=SCRIPT_VERSION,
        outcome="DeploymentFailed",
        errorName=MARKUP_CAUSE,
        cause=MARKUP_CAUSE,
        finishedAt=1767225000,
    )

    page = get(server, "/").body
    overview = get(server, "/api/overview").json()

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert SCRIPT_VERSION not in page
    assert "<img" not in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    assert page.count("<script") == 1
    assert page.count(PAGE_SCRIPT) == 1
    assert overview["deployments"][0]["version"] == SCRIPT_VERSION


def test_pages_forbid_scripts_other_than_their_own(server: DashboardServer) -> None:
    response = get(server, "/")

    policy = response.headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src 'sha256-" in policy
    assert "unsafe-inline" not in policy
    assert "connect-src 'self'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "10.0.0.1:{port}"])
def test_foreign_host_header_is_403(server: DashboardServer, host: str) -> None:
    port = server.server_address[1]

    response = get(server, "/api/overview", host=host.format(port=port))

    assert response.status == 403
    assert server.url in response.json()["error"]


class RecordingLogger:
    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []

    def error(self, message: str, extra: dict[str, Any], exc_info: bool) -> None:
        self.errors.append((message, extra))


def test_rejected_host_is_logged(server: DashboardServer) -> None:
    logger = RecordingLogger()
    server.logger = logger

    get(server, "/api/overview", host="evil.example")

    ((message, extra),) = logger.errors
    assert message == "dashboard request failed"
    assert extra["path"] == "/api/overview"
    assert extra["error"] == "request with Host header 'evil.example' rejected"


def test_repeated_failure_is_logged_every_30th(server: DashboardServer) -> None:
    logger = RecordingLogger()
    server.logger = logger

    for _ in range(31):
        server.log_failure("/api/overview", "EndpointConnectionError: no sandbox")
    server.log_failure("/api/overview", "ClientError: throttled")

    occurrences = [(extra["error"], extra["occurrences"]) for _, extra in logger.errors]
    assert occurrences == [
        ("EndpointConnectionError: no sandbox", 1),
        ("EndpointConnectionError: no sandbox", 31),
        ("ClientError: throttled", 1),
    ]


def test_localhost_host_header_is_served(server: DashboardServer) -> None:
    port = server.server_address[1]

    response = get(server, "/api/overview", host=f"localhost:{port}")

    assert response.status == 200


class UnreachableStepFunctions:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> None:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9/")

        return fail


def test_unreachable_control_plane_is_502(moto_target: Target) -> None:
    stopped = replace(moto_target, sfn=UnreachableStepFunctions())
    with serving(stopped) as server:
        overview = get(server, "/api/overview")
        execution = get(server, "/api/executions/dev-r-1")

        assert overview.status == 200
        assert len(overview.json()["problems"]) == 3
        assert overview.json()["problems"][0].startswith("dev: reading its state failed")
        assert execution.status == 502
        assert "Could not connect to the endpoint URL" in execution.json()["error"]


def test_overview_is_read_once_per_interval(moto_target: Target) -> None:
    now = [100.0]
    settings = load_settings(REPO_ROOT / "environments.yaml")
    data = DashboardData(moto_target, settings, interval_seconds=2.0, clock=lambda: now[0])

    first = data.overview()
    now[0] += 1.9
    second = data.overview()
    now[0] += 0.2
    third = data.overview()

    assert second is first
    assert third is not first


@pytest.fixture
def runner(moto_target: Target, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(cli, "_sandbox_target", lambda start: moto_target)
    return CliRunner()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "localhost"])
def test_non_loopback_host_is_rejected(host: str) -> None:
    # The option is checked before the command reads the environments file or the sandbox.
    result = CliRunner().invoke(main, ["dashboard", "--sandbox", "--host", host])

    assert result.exit_code == 2
    assert f"'{host}' is not accepted" in result.output
    assert "listens on 127.0.0.1 only" in result.output


def test_busy_port_names_the_fix(runner: CliRunner) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]

        result = runner.invoke(main, ["dashboard", "--sandbox", "--port", str(port)])

    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "--port 0 to pick a free one" in result.output


def test_ctrl_c_stops_with_130(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt(self: DashboardServer) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(dashboard.DashboardServer, "serve_forever", interrupt)

    result = runner.invoke(main, ["dashboard", "--sandbox", "--port", "0"])

    assert result.exit_code == 130
    url = re.search(r"dashboard on http://127\.0\.0\.1:(\d+)/", result.output)
    assert url is not None
    assert int(url.group(1)) > 0
    assert result.output.rstrip().endswith("dashboard stopped")


@pytest.mark.parametrize(("path", "status"), [("/", 200), ("/api/overview", 200), ("/x", 404)])
def test_head_sends_headers_without_body(server: DashboardServer, path: str, status: int) -> None:
    full = get(server, path)

    head = get(server, path, method="HEAD")

    assert head.status == status
    assert head.body == ""
    assert head.headers["Content-Type"] == full.headers["Content-Type"]
    assert head.headers["Content-Length"] == full.headers["Content-Length"]


def test_silent_sandbox_is_502_within_seconds(
    moto_target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    monkeypatch.setattr(daemon, "STATUS_TIMEOUT_SECONDS", 0.5)
    silent = replace(moto_target, sandbox_endpoint=f"http://127.0.0.1:{listener.getsockname()[1]}")
    try:
        with serving(silent) as server:
            started = time.monotonic()
            overview = get(server, "/api/overview")
            elapsed = time.monotonic() - started
    finally:
        listener.close()

    assert overview.status == 502
    assert "does not respond" in overview.json()["error"]
    assert elapsed < 5
