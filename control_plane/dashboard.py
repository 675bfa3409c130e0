"""`control-plane dashboard`: a local web page of environments, deployments and executions.

The server is the standard library's ThreadingHTTPServer, bound to 127.0.0.1 only, because the
pages show the control plane's data without authentication. It serves:

- `/`: one row per environment (EB status, health, version, lock holder, running execution)
  and the recent deployments from the ledger;
- `/executions/<name>`: one execution, with its graph from graph.py and its failure cause;
- `/api/overview` and `/api/executions/<name>`: the same data as JSON.

An inline script on each page polls its JSON endpoint, so the pages follow a running
execution without a reload. The data comes from the functions behind `control-plane status`
and `show` (inspect_cli.py). A successful read is cached for one refresh interval, so any
number of open pages costs one read of the overview, and of each execution, per interval.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import click

from .dashboard_pages import (
    CONTENT_SECURITY_POLICY,
    execution_page,
    execution_path,
    message_page,
    overview_page,
    utc_text,
)
from .executions import build_report, execution_arn
from .graph import load_definition, render_svg, states_missing_from, trace_execution
from .inspect_cli import environment_status, execution_view
from .sandbox import daemon

LOOPBACK_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
DEFAULT_INTERVAL_SECONDS = 2.0
DEFAULT_DEPLOYMENT_LIMIT = 20
# The dashboard's own exit status after Ctrl-C: 128 + SIGINT, as the other commands use.
INTERRUPTED_EXIT_CODE = 130
# Execution names of this control plane are `<environment>-<requestId>`, and both parts use
# only these characters (see ENVIRONMENT_NAME_PATTERN and REQUEST_ID_PATTERN).
EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")
CAUSE_PREVIEW_CHARACTERS = 300
DEFINITION_CACHE_SIZE = 200
# A failure that repeats on one path is logged the first time, then every 30th time.
REPEATED_FAILURE_LOG_EVERY = 30
FAILURE_COUNTS_KEPT = 1000


class NotFound(LookupError):
    """The requested page or execution does not exist."""


# --- Data -----------------------------------------------------------------------------------


def _duration_text(seconds: Any) -> str | None:
    return f"{seconds:.0f} s" if isinstance(seconds, int | float) else None


def _execution_name(arn: str | None) -> str | None:
    return arn.rsplit(":", 1)[-1] if arn else None


def _live_environment(live: list[dict[str, Any]], expected_name: str) -> dict[str, Any]:
    """Pick the EB environment the settings name, else the first live one, else none."""
    for described in live:
        if described.get("name") == expected_name:
            return described
    return live[0] if live else {}


def deployment_row(record: dict[str, Any]) -> dict[str, Any]:
    """Describe one ledger record as a row of the recent deployments."""
    execution = _execution_name(record.get("executionArn"))
    cause = record.get("cause")
    if isinstance(cause, str) and len(cause) > CAUSE_PREVIEW_CHARACTERS:
        cause = cause[: CAUSE_PREVIEW_CHARACTERS - 1] + "…"
    return {
        "requestId": record.get("requestId"),
        "environment": record.get("environment"),
        "version": record.get("version"),
        "outcome": record.get("outcome"),
        "error": record.get("errorName"),
        "cause": cause,
        "trigger": record.get("trigger"),
        "startedAt": record.get("startedAt"),
        "started": utc_text(record.get("startedAt")),
        "finishedAt": record.get("finishedAt"),
        "durationSeconds": record.get("durationSeconds"),
        "duration": _duration_text(record.get("durationSeconds")),
        "execution": execution,
        "executionUrl": execution_path(execution) if execution else None,
    }


class DashboardData:
    """Reader of the dashboard's data from the target, cached for one refresh interval.

    One lock serializes the reads, because the server's threads share the boto3 clients and
    making a client is not thread-safe. It also keeps one set of AWS calls per interval
    however many pages poll.
    """

    def __init__(
        self,
        target: Any,
        settings: Any,
        *,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        deployment_limit: int = DEFAULT_DEPLOYMENT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if target.make_client is not None:
            # environment_status makes an EB client per environment on every read.
            target = replace(target, make_client=functools.cache(target.make_client))
        self.target = target
        self.settings = settings
        self.interval_seconds = interval_seconds
        self.deployment_limit = deployment_limit
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._definitions: dict[str, tuple[dict[str, Any], str | None]] = {}

    def describe_target(self) -> str:
        """Name what the dashboard shows: the sandbox's endpoint or the AWS state machine."""
        if self.target.sandbox_endpoint:
            return f"sandbox on {self.target.sandbox_endpoint}"
        return f"state machine {self.target.state_machine_arn}"

    def restart_hint(self) -> str:
        """Return advice to append to a failed read of the sandbox, or "" on AWS."""
        if not self.target.sandbox_endpoint:
            return ""
        # The target keeps the endpoint the sandbox had when the dashboard started.
        return "; after a sandbox restart, restart the dashboard too"

    def overview(self) -> dict[str, Any]:
        """Return the environments, the recent deployments and the problems reading them."""
        return self._cached("overview", self._read_overview)

    def execution(self, name: str) -> dict[str, Any]:
        """Return the execution called `name` with its graph. Raise NotFound when it is unknown."""
        if not EXECUTION_NAME.fullmatch(name):
            raise NotFound(
                f"no execution {name[:100]!r}: an execution name has 1 to 80 letters, digits, "
                "'-' or '_'"
            )
        return self._cached(f"execution:{name}", lambda: self._read_execution(name))

    def _cached(self, key: str, read: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            now = self._clock()
            cached = self._cache.get(key)
            if cached is not None and now - cached[0] < self.interval_seconds:
                return cached[1]
            self._check_sandbox()
            value = read()
            self._cache = {
                other: entry
                for other, entry in self._cache.items()
                if now - entry[0] < self.interval_seconds
            }
            self._cache[key] = (now, value)
            return value

    def _check_sandbox(self) -> None:
        """Raise SandboxNotResponding when the sandbox's status request fails or times out.

        A paused sandbox accepts connections but sends no response, so each read would wait
        for the SDK's timeouts and retries. This probe fails within the status timeout instead.
        """
        if not self.target.sandbox_endpoint:
            return
        try:
            daemon.live_status({"endpoint": self.target.sandbox_endpoint})
        except (OSError, ValueError) as error:
            raise SandboxNotResponding(
                f"the sandbox on {self.target.sandbox_endpoint} does not respond ({error})"
            ) from None

    def _read_overview(self) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        from lambdas.common.store import ledger_records

        environments, records, problems = [], [], []
        for name, settings in self.settings.environments.items():
            try:
                history = ledger_records(name, self.target.table_name, self.target.dynamodb)
                view = environment_status(self.target, name, settings, records=history)
            except (BotoCoreError, ClientError) as problem:
                problems.append(f"{name}: reading its state failed: {problem}{self.restart_hint()}")
                environments.append({"name": name, "region": settings.region})
                continue
            records.extend({"environment": name, **record} for record in history)
            environments.append(self._environment_row(name, settings, view))
        records.sort(key=lambda record: record.get("finishedAt") or 0, reverse=True)
        return {
            "generatedAt": utc_text(time.time()),
            "target": self.describe_target(),
            "intervalSeconds": self.interval_seconds,
            "environments": environments,
            "deployments": [deployment_row(record) for record in records][: self.deployment_limit],
            "problems": problems,
        }

    @staticmethod
    def _environment_row(name: str, settings: Any, view: dict[str, Any]) -> dict[str, Any]:
        live = _live_environment(view["ebEnvironments"], settings.eb_environment_name)
        lease = view["lease"] or {}
        running = [_execution_name(arn) for arn in view["runningExecutions"]]
        holder = _execution_name(lease.get("executionArn"))
        # The lock holder's execution acts on the environment, and the others wait for the lock.
        current = holder
        if current not in running:
            current = running[0] if running else None
        return {
            "name": name,
            "region": settings.region,
            "version": live.get("versionLabel"),
            "status": live.get("status"),
            "health": live.get("health"),
            "ebEnvironment": live.get("name"),
            "lockHolder": lease.get("holder"),
            "queued": lease.get("queued"),
            "runningExecution": current,
            "runningExecutionUrl": execution_path(current) if current else None,
            "runningExecutions": running,
            "lastDeployedVersion": (view["lastDeployed"] or {}).get("version"),
        }

    def _read_execution(self, name: str) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        arn = execution_arn(self.target.state_machine_arn, name)
        try:
            report = build_report(self.target.sfn, arn)
            definition, note = self._definition(arn)
        except ClientError as problem:
            if problem.response.get("Error", {}).get("Code") in {
                "ExecutionDoesNotExist",
                "InvalidArn",
            }:
                raise NotFound(f"no execution {name} in {self.describe_target()}") from None
            raise
        notes = [note] if note else []
        view = execution_view(self.target, arn, report)
        # The graph's account of a failure: DescribeExecution's error and cause, else the
        # history's, else a description of the status (a stop without a cause has none).
        trace = trace_execution(report, definition.get("States") or {})
        running = report.status == "RUNNING"
        return {
            **view,
            "error": trace.error,
            "cause": trace.cause,
            "name": name,
            "generatedAt": utc_text(time.time()),
            "running": running,
            "currentState": report.final_state if running else None,
            "notes": notes,
            "statesMissingFromDefinition": states_missing_from(definition, report),
            "graphSvg": render_svg(definition, report, notes),
        }

    def _definition(self, arn: str) -> tuple[dict[str, Any], str | None]:
        """Return the execution's definition, read once because it never changes."""
        if arn not in self._definitions:
            if len(self._definitions) >= DEFINITION_CACHE_SIZE:
                self._definitions.clear()
            self._definitions[arn] = load_definition(self.target.sfn, arn)
        return self._definitions[arn]


# --- Server ---------------------------------------------------------------------------------


class DashboardHandler(BaseHTTPRequestHandler):
    """Handler of GET and HEAD requests for the pages and their JSON. Other methods get 501."""

    server: DashboardServer
    server_version = "control-plane-dashboard"
    # HEAD sends the headers GET would send, without the body.
    head_only = False

    def do_HEAD(self) -> None:
        self.head_only = True
        self.do_GET()

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if not self._host_allowed():
            host = str(self.headers.get("Host"))[:100]
            self.server.log_failure(path, f"request with Host header {host!r} rejected")
            self._send_json(
                HTTPStatus.FORBIDDEN,
                {"error": f"unexpected Host header; open {self.server.url} instead"},
            )
            return
        is_api = path.startswith("/api/")
        try:
            self._route(path)
        except NotFound as problem:
            self._send_error(HTTPStatus.NOT_FOUND, "Not found", str(problem), is_api)
        except (BrokenPipeError, ConnectionResetError):
            return  # the browser closed the page or went on before the response was sent
        except Exception as problem:
            # A stopped sandbox, an expired AWS session or a throttled call ends here. The page
            # shows the error and keeps polling.
            self.server.log_failure(
                path, f"{type(problem).__name__}: {problem}", not _is_read_error(problem)
            )
            if _is_read_error(problem):
                status = HTTPStatus.BAD_GATEWAY
                message = (
                    f"reading the control plane failed: {problem}{self.server.data.restart_hint()}"
                )
            else:
                status = HTTPStatus.INTERNAL_SERVER_ERROR
                message = f"the dashboard failed ({type(problem).__name__}); see its log"
            self._send_error(status, "Error", message, is_api)

    def _route(self, path: str) -> None:
        data = self.server.data
        interval = data.interval_seconds
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, "image/x-icon", b"")
        elif path == "/":
            self._send_html(HTTPStatus.OK, overview_page(data.overview(), interval))
        elif path == "/api/overview":
            self._send_json(HTTPStatus.OK, data.overview())
        elif path.startswith("/executions/"):
            execution = data.execution(unquote(path.removeprefix("/executions/")))
            self._send_html(HTTPStatus.OK, execution_page(execution, interval))
        elif path.startswith("/api/executions/"):
            self._send_json(
                HTTPStatus.OK, data.execution(unquote(path.removeprefix("/api/executions/")))
            )
        else:
            raise NotFound(
                f"no page {path}; the dashboard serves /, /executions/<name>, /api/overview and "
                "/api/executions/<name>"
            )

    def _host_allowed(self) -> bool:
        """Accept only the loopback names, so a DNS-rebound web page cannot read this server."""
        port = self.server.server_address[1]
        return self.headers.get("Host") in {f"{LOOPBACK_HOST}:{port}", f"localhost:{port}"}

    def _send_error(self, status: HTTPStatus, title: str, message: str, is_api: bool) -> None:
        if is_api:
            self._send_json(status, {"error": message})
        else:
            self._send_html(status, message_page(title, message))

    def _send_html(self, status: HTTPStatus, page: str) -> None:
        self._send(status, "text/html; charset=utf-8", page.encode("utf-8"))

    def _send_json(self, status: HTTPStatus, document: dict[str, Any]) -> None:
        body = json.dumps(document, default=str).encode("utf-8")
        self._send(status, "application/json", body)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if status != HTTPStatus.NO_CONTENT:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        if not self.head_only:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the per-request access log; pages poll every few seconds."""


class SandboxNotResponding(Exception):
    """The sandbox's process runs but does not respond."""


def _is_read_error(problem: Exception) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(problem, BotoCoreError | ClientError | SandboxNotResponding)


class DashboardServer(ThreadingHTTPServer):
    """The dashboard's HTTP server on 127.0.0.1:`port`; port 0 picks a free port."""

    daemon_threads = True

    def __init__(self, port: int, data: DashboardData, logger: Any = None) -> None:
        super().__init__((LOOPBACK_HOST, port), DashboardHandler)
        self.data = data
        self.logger = logger
        self._failures: dict[tuple[str, str], int] = {}
        self._failures_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self.server_address[1]}/"

    def log_failure(self, path: str, error: str, with_traceback: bool = False) -> None:
        """Log a failed request, and a repeat of the same failure only every 30th time.

        `with_traceback` adds the exception being handled, for errors in the dashboard itself.
        """
        key = (path, error)
        with self._failures_lock:
            if len(self._failures) >= FAILURE_COUNTS_KEPT:
                self._failures.clear()
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
        if self.logger is None or (count - 1) % REPEATED_FAILURE_LOG_EVERY:
            return
        self.logger.error(
            "dashboard request failed",
            extra={"path": path[:200], "error": error[:500], "occurrences": count},
            exc_info=with_traceback,
        )


# --- Command --------------------------------------------------------------------------------


def _check_host(context: click.Context, parameter: click.Parameter, value: str) -> str:
    if value != LOOPBACK_HOST:
        raise click.BadParameter(
            f"{value!r} is not accepted: the dashboard listens on {LOOPBACK_HOST} only, because "
            "its pages have no authentication. To open it from another machine, forward the "
            f"port over SSH (ssh -L {DEFAULT_PORT}:{LOOPBACK_HOST}:{DEFAULT_PORT} HOST)"
        )
    return value


def add_dashboard_command(
    main: click.Group,
    target_for: Callable[[bool, str | None], Any],
    target_options: Callable[[Any], Any],
    error: type[click.ClickException],
) -> None:
    """Add `dashboard` to the CLI group."""

    @main.command()
    @click.option(
        "--host",
        default=LOOPBACK_HOST,
        show_default=True,
        callback=_check_host,
        help=f"Address to listen on. Only {LOOPBACK_HOST} is accepted.",
    )
    @click.option(
        "--port",
        default=DEFAULT_PORT,
        show_default=True,
        type=click.IntRange(0, 65535),
        help="TCP port to listen on; 0 picks a free port.",
    )
    @click.option(
        "--interval",
        default=DEFAULT_INTERVAL_SECONDS,
        show_default=True,
        type=click.FloatRange(0.2, 300),
        help="Seconds between refreshes of an open page. The control plane is read at most "
        "once per interval.",
    )
    @click.option(
        "--limit",
        default=DEFAULT_DEPLOYMENT_LIMIT,
        show_default=True,
        type=click.IntRange(1, 1000),
        help="Number of recent deployments listed.",
    )
    @target_options
    def dashboard(
        host: str, port: int, interval: float, limit: int, sandbox: bool, region: str | None
    ) -> None:
        """Serve a web page of environments, deployments and executions on 127.0.0.1.

        The page refreshes itself while an execution runs. Ctrl-C stops the server, and the
        command then exits with status 130.
        """
        from aws_lambda_powertools import Logger

        from .cli_options import load_cli_settings

        settings = load_cli_settings()
        data = DashboardData(
            target_for(sandbox, region),
            settings,
            interval_seconds=interval,
            deployment_limit=limit,
        )
        logger = Logger(service="control-plane-dashboard", stream=sys.stderr)
        try:
            server = DashboardServer(port, data, logger)
        except OSError as problem:
            raise error(
                f"cannot listen on {host}:{port} ({problem.strerror or problem}); pass another "
                "--port, or --port 0 to pick a free one"
            ) from None
        click.echo(f"dashboard on {server.url} showing {data.describe_target()} (Ctrl-C stops it)")
        logger.info("dashboard started", extra={"url": server.url})
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        logger.info("dashboard stopped", extra={"url": server.url})
        click.echo("dashboard stopped")
        sys.exit(INTERRUPTED_EXIT_CODE)
