"""One AWS endpoint on 127.0.0.1 for functional tests: the sandbox's Elastic Beanstalk simulator
for EB, moto for every other service.

The simulator runs on a virtual clock that the tests advance. EB runs an environment update
for a tag change of an environment and rejects UpdateEnvironment as not Ready until that update
ends, which is why the Terraform AWS provider gained a wait after tag changes. The simulator
stores a tag change without that update, so the harness adds it: after each tag change of a
Ready environment it calls UpdateEnvironment without changes.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import boto3
import requests
from botocore.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from control_plane.sandbox.clock import VirtualClock
from control_plane.sandbox.eb import ElasticBeanstalkSimulator

REGION = "us-east-1"
LAUNCH_SECONDS = 300
UPDATE_SECONDS = 90
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request")
_ENVIRONMENT_ARN = re.compile(r"^arn:aws:elasticbeanstalk:[^:]*:[^:]*:environment/[^/]+/(.+)$")


class AwsHarness:
    """Start with the constructor, stop with `close()`; `endpoint` is the URL for clients."""

    def __init__(self, work_dir: Path, *, tag_updates_start_update: bool = True) -> None:
        self.clock = VirtualClock()
        self.tag_updates_start_update = tag_updates_start_update
        self.eb_simulator = ElasticBeanstalkSimulator(
            self.clock,
            self._fetch_object,
            work_dir,
            region=REGION,
            launch_seconds=LAUNCH_SECONDS,
            update_seconds=UPDATE_SECONDS,
            terminate_seconds=60,
        )
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._moto = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            "127.0.0.1", 0, self._app, threaded=True, request_handler=MotoRequestHandler
        )
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        # moto keeps its backends per process: start from empty ones.
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=30)

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def close(self) -> None:
        self.eb_simulator.shutdown()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _fetch_object(self, bucket: str, key: str) -> bytes:
        return self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if scope is None or scope.group("service") != "elasticbeanstalk":
            return self._moto(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode() if length else ""
        params = dict(parse_qsl(body, keep_blank_values=True))
        status, xml = self.eb_simulator.handle(params)
        if status == 200 and params.get("Action") == "UpdateTagsForResource":
            self._start_update_for_tags(params.get("ResourceArn", ""))
        start_response(
            f"{status} {'OK' if status == 200 else 'Error'}", [("Content-Type", "text/xml")]
        )
        return [xml.encode()]

    def _start_update_for_tags(self, arn: str) -> None:
        match = _ENVIRONMENT_ARN.match(arn)
        if not self.tag_updates_start_update or match is None:
            return
        name = match.group(1)
        ready = [
            environment
            for environment in self.eb_simulator.environments()
            if environment["EnvironmentName"] == name and environment["Status"] == "Ready"
        ]
        if ready:
            self.eb_simulator.handle({"Action": "UpdateEnvironment", "EnvironmentName": name})
