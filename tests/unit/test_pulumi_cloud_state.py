"""Reading stack outputs from the Pulumi Cloud REST API.

A small HTTP server on 127.0.0.1 plays the API's export endpoint, and moto's Secrets Manager
(mock_aws) stores the access token.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.common import aws
from lambdas.common.pulumi_state import (
    PulumiCloudError,
    cloud_export_url,
    read_stack_state,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"
TOKEN = "pul-4f0c9d8e7b6a5f4e3d2c1b0a99887766"
SECRET_NAME = "control-plane/pulumi-access-token"


class FakePulumiCloud:
    """Answers GET /api/stacks/<org>/<project>/<stack>/export for the stacks it holds."""

    def __init__(self) -> None:
        self.stacks: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.status: int | None = None
        cloud = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                cloud.requests.append({"path": self.path, "headers": dict(self.headers)})
                if cloud.status is not None:
                    self._send(cloud.status, {"code": cloud.status, "message": "forced"})
                elif self.headers.get("Authorization") != f"token {TOKEN}":
                    self._send(401, {"code": 401, "message": "Unauthorized: No credentials"})
                elif self.path in cloud.stacks:
                    self._send(200, cloud.stacks[self.path])
                else:
                    self._send(404, {"code": 404, "message": "Not Found: stack not found"})

            def _send(self, status: int, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cloud() -> Iterator[FakePulumiCloud]:
    server = FakePulumiCloud()
    deployed = json.loads((FIXTURES / "checkpoint-deployed.json").read_text())
    # The export endpoint answers {"version": 3, "deployment": <latest>}.
    server.stacks["/api/stacks/acme/webapp/dev/export"] = {
        "version": 3,
        "deployment": deployed["checkpoint"]["latest"],
    }
    yield server
    server.close()


@pytest.fixture
def token_secret() -> Iterator[str]:
    with mock_aws():
        aws.client.cache_clear()
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=SECRET_NAME, SecretString=TOKEN
        )
        yield SECRET_NAME
        aws.client.cache_clear()


def read(cloud: FakePulumiCloud, stack: str = "dev", **overrides: Any) -> Any:
    arguments = {"organization": "acme", "token_secret": SECRET_NAME, **overrides}
    return read_stack_state(cloud.url, "webapp", stack, "us-east-1", **arguments)


def test_outputs_read_from_export(cloud: FakePulumiCloud, token_secret: str) -> None:
    """Outputs of a stack kept in Pulumi Cloud come from the REST API's export endpoint."""
    state = read(cloud)

    assert state.exists
    assert state.outputs["ebEnvironmentName"] == "webapp-dev"
    assert state.outputs["ebApplicationName"] == "webapp-dev"
    assert state.resource_count == 2
    assert state.pending_operations == 0


def test_request_path_and_headers(cloud: FakePulumiCloud, token_secret: str) -> None:
    read(cloud)

    request = cloud.requests[0]
    assert request["path"] == "/api/stacks/acme/webapp/dev/export"
    assert request["headers"]["Authorization"] == f"token {TOKEN}"
    assert request["headers"]["Accept"] == "application/vnd.pulumi+8"


def test_secret_outputs_stay_masked(cloud: FakePulumiCloud, token_secret: str) -> None:
    state = read(cloud)

    assert state.outputs["databasePassword"] == "[secret]"
    assert "ciphertext" not in json.dumps(state.outputs)


def test_missing_stack_does_not_exist(cloud: FakePulumiCloud, token_secret: str) -> None:
    state = read(cloud, stack="prod")

    assert state.exists is False
    assert state.outputs == {}


def test_token_never_logged_or_returned(
    cloud: FakePulumiCloud, token_secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    # botocore's own DEBUG log prints every response body, so it stays at INFO here.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="lambdas")
    caplog.set_level(logging.DEBUG, logger="urllib3")

    state = read(cloud)

    assert TOKEN not in caplog.text
    assert TOKEN not in repr(state)
    assert TOKEN not in json.dumps(state.outputs)


@pytest.mark.parametrize("status", [401, 403, 500])
def test_api_error_names_stack_not_token(
    cloud: FakePulumiCloud, token_secret: str, status: int
) -> None:
    cloud.status = status

    with pytest.raises(PulumiCloudError) as raised:
        read(cloud)

    message = str(raised.value)
    assert str(status) in message
    assert "acme/webapp/dev" in message
    assert TOKEN not in message
    assert SECRET_NAME in message or status == 500


def test_wrong_token_rejected(cloud: FakePulumiCloud) -> None:
    with mock_aws():
        aws.client.cache_clear()
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name=SECRET_NAME, SecretString="pul-wrong"
        )
        with pytest.raises(PulumiCloudError, match="401"):
            read(cloud)
    aws.client.cache_clear()


def test_missing_token_secret_is_an_error(cloud: FakePulumiCloud) -> None:
    with mock_aws():
        aws.client.cache_clear()
        with pytest.raises(PulumiCloudError, match=SECRET_NAME):
            read(cloud)
    aws.client.cache_clear()
    assert cloud.requests == []


@pytest.mark.parametrize(
    "overrides",
    [{"organization": None}, {"token_secret": None}, {"organization": ""}],
)
def test_cloud_backend_needs_organization_and_token(
    cloud: FakePulumiCloud, overrides: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=r"pulumi_org and pulumi_token_secret"):
        read(cloud, **overrides)
    assert cloud.requests == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.pulumi.com", "https://api.pulumi.com/api/stacks/acme/webapp/dev/export"),
        (
            "https://pulumi.example.com/",
            "https://pulumi.example.com/api/stacks/acme/webapp/dev/export",
        ),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/api/stacks/acme/webapp/dev/export"),
    ],
)
def test_export_url(url: str, expected: str) -> None:
    assert cloud_export_url(url, "acme", "webapp", "dev") == expected


@pytest.mark.parametrize(
    "url", ["http://api.pulumi.com", "http://10.0.0.5", "ftp://api.pulumi.com", "https://"]
)
def test_plain_http_only_on_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="https://"):
        cloud_export_url(url, "acme", "webapp", "dev")
