"""The Elastic Beanstalk simulator driven by a real boto3 client over HTTP on 127.0.0.1.

The clock is virtual, so a five-minute launch takes one ``clock.advance`` call. Deployed apps
are real processes, so health checks are real HTTP requests.
"""

from __future__ import annotations

import http.client
import io
import json
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl
from wsgiref.simple_server import WSGIRequestHandler, make_server

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from control_plane.sandbox.clock import VirtualClock
from control_plane.sandbox.eb import ElasticBeanstalkSimulator

APP = "shop"
ENV = "shop-dev"
BUCKET = "bundles"
LAUNCH, UPDATE, TERMINATE = 300, 90, 60
PROPERTIES = "aws:elasticbeanstalk:application:environment"

# A WSGI app in the layout of EB's Python platform. /crash ends the process to simulate a
# crash after a healthy start.
APPLICATION_PY = """
import json, os

def application(environ, start_response):
    if environ["PATH_INFO"] == "/crash":
        os._exit(3)
    body = json.dumps({"version": os.environ.get("APP_VERSION")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
"""


def make_bundle(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Harness:
    """A simulator, its S3 objects, its clock and a boto3 client that reaches it over HTTP."""

    def __init__(self, work_dir: Path) -> None:
        self.clock = VirtualClock()
        self.objects: dict[tuple[str, str], bytes] = {}
        self.sim = ElasticBeanstalkSimulator(
            self.clock,
            lambda bucket, key: self.objects[(bucket, key)],
            work_dir,
            launch_seconds=LAUNCH,
            update_seconds=UPDATE,
            terminate_seconds=TERMINATE,
        )
        self.events: list[dict] = []
        self.sim.subscribe(self.events.append)
        self.server = make_server("127.0.0.1", 0, self._wsgi, handler_class=QuietHandler)
        # A short poll interval keeps server.shutdown() from adding half a second per test.
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.client = boto3.client(
            "elasticbeanstalk",
            endpoint_url=f"http://127.0.0.1:{self.server.server_port}",
            region_name="us-east-1",
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
            # No proxies from the environment, and no retries that would hide an error.
            config=Config(proxies={}, retries={"max_attempts": 1, "mode": "standard"}),
        )

    def _wsgi(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = environ["wsgi.input"].read(length).decode()
        status, xml = self.sim.handle(dict(parse_qsl(form, keep_blank_values=True)))
        reason = "OK" if status == 200 else "Error"
        start_response(f"{status} {reason}", [("Content-Type", "text/xml")])
        return [xml.encode()]

    def close(self) -> None:
        self.sim.shutdown()
        self.server.shutdown()
        self.server.server_close()

    # Shortcuts for the calls most tests make.

    def add_version(self, label: str, files: dict[str, str] | None = None, **options) -> dict:
        key = f"{APP}/{label}.zip"
        self.objects[(BUCKET, key)] = make_bundle(files or {"application.py": APPLICATION_PY})
        return self.client.create_application_version(
            ApplicationName=APP,
            VersionLabel=label,
            SourceBundle={"S3Bucket": BUCKET, "S3Key": key},
            **options,
        )["ApplicationVersion"]

    def launch(self, label: str | None = "v1", name: str = ENV) -> dict:
        """Create the environment with ``label`` and APP_VERSION set to it, not yet Ready."""
        options = {"VersionLabel": label} if label else {}
        return self.client.create_environment(
            ApplicationName=APP,
            EnvironmentName=name,
            OptionSettings=[{"Namespace": PROPERTIES, "OptionName": "APP_VERSION", "Value": label}]
            if label
            else [],
            **options,
        )

    def launch_ready(self, label: str = "v1") -> dict:
        self.add_version(label)
        self.launch(label)
        self.clock.advance(LAUNCH)
        return self.describe()

    def describe(self, name: str = ENV, **filters) -> dict:
        environments = self.client.describe_environments(EnvironmentNames=[name], **filters)
        return environments["Environments"][0]

    def deploy(self, label: str) -> dict:
        return self.client.update_environment(
            EnvironmentName=ENV,
            VersionLabel=label,
            OptionSettings=[{"Namespace": PROPERTIES, "OptionName": "APP_VERSION", "Value": label}],
        )

    def event_messages(self, **filters) -> list[str]:
        events = self.client.describe_events(EnvironmentName=ENV, **filters)["Events"]
        return [event["Message"] for event in events]


def http_get(cname: str, path: str) -> tuple[int, bytes]:
    host, port = cname.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path / "eb")
    harness.client.create_application(ApplicationName=APP)
    yield harness
    harness.close()


def error_of(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


# Lifecycle


def test_environment_launches_after_launch_seconds(harness):
    harness.add_version("v1")
    created = harness.launch("v1")

    assert created["Status"] == "Launching"
    assert created["Health"] == "Grey"
    assert created["EnvironmentId"].startswith("e-")
    assert len(created["EnvironmentId"]) == 12
    assert created["CNAME"] == created["EndpointURL"]
    assert created["CNAME"].startswith("127.0.0.1:")

    harness.clock.advance(LAUNCH - 1)
    assert harness.describe()["Status"] == "Launching"

    harness.clock.advance(1)
    ready = harness.describe()
    assert ready["Status"] == "Ready"
    assert ready["Health"] == "Green"
    assert ready["HealthStatus"] == "Ok"
    assert ready["CNAME"] == created["CNAME"]


def test_ready_environment_serves_app_version_over_http(harness):
    ready = harness.launch_ready("v1")

    status, body = http_get(ready["CNAME"], "/health")

    assert status == 200
    assert json.loads(body) == {"version": "v1"}


def test_update_deploys_new_version_on_same_port(harness):
    ready = harness.launch_ready("v1")
    harness.add_version("v2")

    updating = harness.deploy("v2")

    assert updating["Status"] == "Updating"
    assert updating["AbortableOperationInProgress"] is True
    assert updating["Health"] == "Grey"
    harness.clock.advance(UPDATE)
    updated = harness.describe()
    assert updated["Status"] == "Ready"
    assert updated["VersionLabel"] == "v2"
    assert updated["Health"] == "Green"
    assert updated["AbortableOperationInProgress"] is False
    assert updated["CNAME"] == ready["CNAME"]
    assert json.loads(http_get(updated["CNAME"], "/health")[1]) == {"version": "v2"}


@pytest.mark.parametrize("status", ["Launching", "Updating", "Terminating"])
def test_update_rejected_unless_ready(harness, status):
    harness.add_version("v1")
    harness.launch("v1")
    if status != "Launching":
        harness.clock.advance(LAUNCH)
    if status == "Updating":
        harness.deploy("v1")
    if status == "Terminating":
        harness.client.terminate_environment(EnvironmentName=ENV)
    assert harness.describe()["Status"] == status

    with pytest.raises(ClientError) as raised:
        harness.deploy("v1")

    assert error_of(raised) == (
        "InvalidParameterValue",
        f"Environment named {ENV} is in an invalid state for this operation. Must be Ready.",
    )
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_terminate_rejected_while_updating(harness):
    harness.launch_ready("v1")
    harness.deploy("v1")

    with pytest.raises(ClientError) as raised:
        harness.client.terminate_environment(EnvironmentName=ENV)

    assert error_of(raised) == (
        "InvalidParameterValue",
        f"Cannot terminate environment named {ENV}. It is currently pending deployment.",
    )


def test_terminated_environment_stays_listed_for_an_hour(harness):
    ready = harness.launch_ready("v1")

    terminating = harness.client.terminate_environment(EnvironmentName=ENV)
    assert terminating["Status"] == "Terminating"
    harness.clock.advance(TERMINATE)

    assert harness.describe()["Status"] == "Terminated"
    assert harness.describe()["Health"] == "Grey"
    hidden = harness.client.describe_environments(EnvironmentNames=[ENV], IncludeDeleted=False)
    assert hidden["Environments"] == []
    with pytest.raises(ConnectionError):
        http_get(ready["CNAME"], "/health")
    harness.clock.advance(3600 + 1)
    assert harness.client.describe_environments(EnvironmentNames=[ENV])["Environments"] == []


def test_name_reusable_after_termination_with_new_id(harness):
    first = harness.launch_ready("v1")
    harness.client.terminate_environment(EnvironmentName=ENV)
    harness.clock.advance(TERMINATE)

    second = harness.launch(None)

    assert second["EnvironmentId"] != first["EnvironmentId"]
    listed = harness.client.describe_environments(EnvironmentNames=[ENV])["Environments"]
    assert [environment["Status"] for environment in listed] == ["Terminated", "Launching"]
    assert harness.describe(IncludeDeleted=False)["EnvironmentId"] == second["EnvironmentId"]


def test_terminated_twin_listed_beside_live_environment(harness):
    live = harness.launch_ready("v1")

    harness.sim.list_terminated_twin()

    listed = harness.client.describe_environments(EnvironmentNames=[ENV])["Environments"]
    assert [environment["Status"] for environment in listed] == ["Terminated", "Ready"]
    assert listed[0]["EnvironmentId"] != live["EnvironmentId"]
    assert harness.describe(IncludeDeleted=False)["EnvironmentId"] == live["EnvironmentId"]
    harness.clock.advance(3600 + 1)
    after_an_hour = harness.client.describe_environments(EnvironmentNames=[ENV])["Environments"]
    assert [environment["Status"] for environment in after_an_hour] == ["Ready"]


def test_terminated_twin_waits_for_next_environment(harness):
    harness.sim.list_terminated_twin()
    assert harness.client.describe_environments()["Environments"] == []

    harness.add_version("v1")
    created = harness.launch("v1")

    listed = harness.client.describe_environments(EnvironmentNames=[ENV])["Environments"]
    assert [environment["Status"] for environment in listed] == ["Terminated", "Launching"]
    assert listed[1]["EnvironmentId"] == created["EnvironmentId"]
    harness.launch("v1", name="shop-other")
    assert len(harness.client.describe_environments()["Environments"]) == 3


def test_abort_update_restores_previous_version(harness):
    harness.launch_ready("v1")
    harness.add_version("v2")
    harness.deploy("v2")

    harness.client.abort_environment_update(EnvironmentName=ENV)

    aborting = harness.describe()
    assert aborting["Status"] == "Aborting"
    assert aborting["AbortableOperationInProgress"] is False
    harness.clock.advance(UPDATE)
    restored = harness.describe()
    assert restored["Status"] == "Ready"
    assert restored["VersionLabel"] == "v1"
    assert json.loads(http_get(restored["CNAME"], "/health")[1]) == {"version": "v1"}


def test_abort_rejected_unless_updating(harness):
    harness.launch_ready("v1")

    with pytest.raises(ClientError) as raised:
        harness.client.abort_environment_update(EnvironmentName=ENV)

    assert error_of(raised) == (
        "InvalidParameterValue",
        f"Environment named {ENV} is in an invalid state for this operation. "
        "Must be pending deployment.",
    )


def test_stick_keeps_environment_updating(harness):
    harness.launch_ready("v1")
    harness.sim.stick(ENV, "Updating", 1000)
    harness.deploy("v1")

    harness.clock.advance(999)
    assert harness.describe()["Status"] == "Updating"
    harness.clock.advance(1)
    assert harness.describe()["Status"] == "Ready"

    harness.deploy("v1")
    harness.clock.advance(UPDATE)
    assert harness.describe()["Status"] == "Ready"


def test_stick_applies_now_when_already_in_status(harness):
    harness.add_version("v1")
    harness.launch("v1")
    harness.clock.advance(100)

    harness.sim.stick(None, "Launching", 500)

    harness.clock.advance(LAUNCH)
    assert harness.describe()["Status"] == "Launching"
    harness.clock.advance(200)
    assert harness.describe()["Status"] == "Ready"


def test_stick_rejects_steady_status(harness):
    with pytest.raises(ValueError, match="Ready"):
        harness.sim.stick(ENV, "Ready", 10)


# Health


def test_environment_without_version_is_ready_and_serves_nothing(harness):
    created = harness.launch(None)
    harness.clock.advance(LAUNCH)

    ready = harness.describe()

    assert ready["Status"] == "Ready"
    assert ready["Health"] == "Green"
    assert "VersionLabel" not in ready
    with pytest.raises(ConnectionError):
        http_get(created["CNAME"], "/health")


def test_crashed_app_turns_environment_red(harness):
    ready = harness.launch_ready("v1")

    with pytest.raises(http.client.RemoteDisconnected):
        http_get(ready["CNAME"], "/crash")
    # The connection closes before the app's process has exited, so health turns Red a moment
    # later. On a loaded machine that moment is longer than one describe call.
    deadline = time.monotonic() + 10
    crashed = harness.describe()
    while crashed["Health"] != "Red" and time.monotonic() < deadline:
        time.sleep(0.05)
        crashed = harness.describe()

    assert crashed["Health"] == "Red"
    assert crashed["HealthStatus"] == "Severe"
    health = harness.client.describe_environment_health(EnvironmentName=ENV, AttributeNames=["All"])
    assert health["Color"] == "Red"
    assert health["Causes"] == ["Following services are not running: web."]
    assert health["InstancesHealth"]["Severe"] == 1
    assert harness.event_messages(Severity="WARN")[0] == (
        "Environment health has transitioned from Ok to Severe."
    )


def test_bundle_without_entry_point_launches_with_issues(harness):
    harness.add_version("broken", files={"README.md": "no app here"})
    harness.launch("broken")
    harness.clock.advance(LAUNCH)

    environment = harness.describe()

    assert environment["Status"] == "Ready"
    assert environment["Health"] == "Red"
    assert harness.event_messages()[0] == (
        f"Launched environment: {ENV}. However, there were issues during launch. "
        "See event log for details."
    )


def test_failed_update_reports_update_failed(harness):
    harness.launch_ready("v1")
    harness.add_version("v2", files={"Procfile": "web: exit 1\n"})
    harness.deploy("v2")
    harness.clock.advance(UPDATE)

    environment = harness.describe()

    assert environment["Health"] == "Red"
    assert harness.event_messages()[0] == "Failed to deploy configuration."
    assert harness.events[-1]["detail"]["Status"] == "Environment update failed"
    assert harness.events[-1]["detail"]["Severity"] == "ERROR"


def test_procfile_web_command_runs_with_port(harness):
    procfile = 'web: python -c "$SERVER"\n'
    server = (
        "import http.server, os; "
        "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), "
        "http.server.SimpleHTTPRequestHandler).serve_forever()"
    )
    harness.add_version("v1", files={"Procfile": procfile, "hello.txt": "hello"})
    harness.client.create_environment(
        ApplicationName=APP,
        EnvironmentName=ENV,
        VersionLabel="v1",
        OptionSettings=[{"Namespace": PROPERTIES, "OptionName": "SERVER", "Value": server}],
    )
    harness.clock.advance(LAUNCH)

    environment = harness.describe()

    assert environment["Health"] == "Green"
    assert http_get(environment["CNAME"], "/hello.txt") == (200, b"hello")


def test_environment_health_returns_only_requested_attributes(harness):
    harness.launch_ready("v1")

    health = harness.client.describe_environment_health(
        EnvironmentName=ENV, AttributeNames=["Color", "HealthStatus"]
    )

    health.pop("ResponseMetadata")
    assert health == {"EnvironmentName": ENV, "Color": "Green", "HealthStatus": "Ok"}


# Events


def test_events_record_lifecycle_newest_first(harness):
    harness.launch_ready("v1")
    harness.add_version("v2")
    harness.deploy("v2")
    harness.clock.advance(UPDATE)

    assert harness.event_messages() == [
        "Environment update completed successfully.",
        "Environment health has transitioned from Pending to Ok.",
        "New application version was deployed to running EC2 instances.",
        "Environment health has transitioned from Ok to Pending.",
        "Environment update is starting.",
        "createEnvironment completed successfully.",
        "Environment health has transitioned from Pending to Ok.",
        "createEnvironment is starting.",
    ]


def test_events_filter_by_start_time_and_version(harness):
    harness.launch_ready("v1")
    launched_at = harness.clock.now_datetime()
    harness.add_version("v2")
    harness.deploy("v2")

    assert harness.event_messages(StartTime=launched_at, VersionLabel="v2") == [
        "Environment health has transitioned from Ok to Pending.",
        "Environment update is starting.",
    ]


def test_subscribers_receive_eventbridge_status_changes(harness):
    harness.launch_ready("v1")

    status_changes = [
        event for event in harness.events if event["detail-type"] != "Health status change"
    ]

    assert [event["detail"]["Status"] for event in status_changes] == [
        "Environment creation started",
        "Environment creation successful",
    ]
    launched = status_changes[1]
    assert launched["source"] == "aws.elasticbeanstalk"
    assert launched["detail-type"] == "Elastic Beanstalk resource status change"
    assert launched["account"] == "123456789012"
    assert launched["region"] == "us-east-1"
    assert launched["time"] == "2026-01-01T00:05:00Z"
    assert launched["resources"] == [
        f"arn:aws:elasticbeanstalk:us-east-1:123456789012:environment/{APP}/{ENV}"
    ]
    assert launched["detail"] == {
        "Status": "Environment creation successful",
        "EventDate": int(harness.clock.now() * 1000),
        "ApplicationName": APP,
        "Message": "createEnvironment completed successfully.",
        "EnvironmentName": ENV,
        "Severity": "INFO",
    }


def test_refresh_sends_due_events_without_api_call(harness):
    harness.add_version("v1")
    harness.launch("v1")
    harness.clock.advance(LAUNCH)
    assert len(harness.events) == 1

    harness.sim.refresh()

    assert harness.events[-1]["detail"]["Status"] == "Environment creation successful"


# Applications and versions


@pytest.mark.parametrize(
    ("process", "bundle", "status"),
    [(False, None, "UNPROCESSED"), (True, None, "PROCESSED"), (True, b"not a zip", "FAILED")],
)
def test_version_status_follows_process_flag(harness, process, bundle, status):
    version = harness.add_version("v1", Process=process)
    if bundle is not None:
        harness.objects[(BUCKET, f"{APP}/v2.zip")] = bundle
        version = harness.client.create_application_version(
            ApplicationName=APP,
            VersionLabel="v2",
            SourceBundle={"S3Bucket": BUCKET, "S3Key": f"{APP}/v2.zip"},
            Process=process,
        )["ApplicationVersion"]

    assert version["Status"] == status


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda client: client.create_application_version(
                ApplicationName=APP, VersionLabel="v1"
            ),
            "Application Version v1 already exists.",
        ),
        (
            lambda client: client.create_application_version(
                ApplicationName="nope", VersionLabel="x"
            ),
            "No Application named 'nope' found.",
        ),
        (
            lambda client: client.create_environment(
                ApplicationName=APP, EnvironmentName="other-env", VersionLabel="v9"
            ),
            "No Application Version named 'v9' found.",
        ),
        (
            lambda client: client.create_environment(ApplicationName=APP, EnvironmentName=ENV),
            f"Environment {ENV} already exists.",
        ),
        (
            lambda client: client.create_application(ApplicationName=APP),
            f"Application {APP} already exists.",
        ),
        (
            lambda client: client.update_environment(EnvironmentName="nowhere"),
            "No Environment found for EnvironmentName = 'nowhere'.",
        ),
    ],
    ids=[
        "duplicate-version",
        "missing-application",
        "missing-version",
        "duplicate-environment",
        "duplicate-application",
        "missing-environment",
    ],
)
def test_invalid_requests_return_aws_messages(harness, call, message):
    harness.add_version("v1")
    harness.launch("v1")

    with pytest.raises(ClientError) as raised:
        call(harness.client)

    assert error_of(raised) == ("InvalidParameterValue", message)


def test_version_quota_raises_too_many_versions(harness):
    harness.sim.configure(max_application_versions=1)
    harness.add_version("v1")

    with pytest.raises(ClientError) as raised:
        harness.add_version("v2")

    assert error_of(raised) == (
        "TooManyApplicationVersionsException",
        "You cannot have more than 1 Application Versions. Either remove some Application "
        "Versions or request a limit increase.",
    )


def test_unsupported_action_names_itself(harness):
    with pytest.raises(ClientError) as raised:
        harness.client.rebuild_environment(EnvironmentName=ENV)

    code, message = error_of(raised)
    assert code == "InvalidAction"
    assert "RebuildEnvironment" in message
    assert "not implemented" in message


def test_tags_round_trip(harness):
    harness.add_version("v1")
    arn = harness.launch("v1")["EnvironmentArn"]

    harness.client.update_tags_for_resource(
        ResourceArn=arn, TagsToAdd=[{"Key": "team", "Value": "web"}, {"Key": "tmp", "Value": "1"}]
    )
    harness.client.update_tags_for_resource(ResourceArn=arn, TagsToRemove=["tmp"])

    tags = harness.client.list_tags_for_resource(ResourceArn=arn)["ResourceTags"]
    assert tags == [{"Key": "team", "Value": "web"}]


def test_configuration_settings_reflect_updates(harness):
    harness.launch_ready("v1")
    harness.client.update_environment(
        EnvironmentName=ENV,
        OptionSettings=[{"Namespace": PROPERTIES, "OptionName": "FEATURE", "Value": "on"}],
        OptionsToRemove=[{"Namespace": PROPERTIES, "OptionName": "APP_VERSION"}],
    )

    settings = harness.client.describe_configuration_settings(
        ApplicationName=APP, EnvironmentName=ENV
    )["ConfigurationSettings"][0]["OptionSettings"]

    assert settings == [{"Namespace": PROPERTIES, "OptionName": "FEATURE", "Value": "on"}]


# Determinism and cleanup


def test_same_calls_give_same_ids_and_events(tmp_path):
    def run(work_dir: Path) -> tuple[list[str], list[dict]]:
        harness = Harness(work_dir)
        try:
            harness.client.create_application(ApplicationName=APP)
            ids = [harness.launch(None, name=f"env-{index}")["EnvironmentId"] for index in range(3)]
            harness.clock.advance(LAUNCH)
            harness.sim.refresh()
            return ids, harness.events
        finally:
            harness.close()

    first_ids, first_events = run(tmp_path / "first")
    second_ids, second_events = run(tmp_path / "second")

    assert first_ids == second_ids
    assert len(set(first_ids)) == 3
    assert first_events == second_events


def test_shutdown_stops_app_processes(harness):
    ready = harness.launch_ready("v1")
    assert http_get(ready["CNAME"], "/health")[0] == 200

    harness.sim.shutdown()

    with pytest.raises(ConnectionError):
        http_get(ready["CNAME"], "/health")


def test_subscriber_may_call_simulator(harness):
    statuses_seen = []
    harness.sim.subscribe(
        lambda event: statuses_seen.append(harness.sim.environments()[0]["Status"])
    )
    harness.add_version("v1")
    harness.launch("v1")
    harness.clock.advance(LAUNCH)

    harness.sim.refresh()

    assert statuses_seen[0] == "Launching"
    assert statuses_seen[-1] == "Ready"


def test_application_updates_round_trip(harness):
    lifecycle = {
        "ServiceRole": "arn:aws:iam::123456789012:role/eb-service",
        "VersionLifecycleConfig": {
            "MaxCountRule": {"Enabled": True, "MaxCount": 50, "DeleteSourceFromS3": False}
        },
    }

    harness.client.update_application(ApplicationName=APP, Description="the shop")
    harness.client.update_application_resource_lifecycle(
        ApplicationName=APP, ResourceLifecycleConfig=lifecycle
    )

    application = harness.client.describe_applications(ApplicationNames=[APP])["Applications"][0]
    assert application["Description"] == "the shop"
    assert application["ResourceLifecycleConfig"] == lifecycle
