"""boto3 clients of the engine, restricted to a loopback AWS endpoint.

The engine is a sandbox tool: it creates and terminates resources, so it must never reach
real AWS. Every client gets its endpoint from `AWS_ENDPOINT_URL`, which must name
127.0.0.1, ::1 or localhost, and carries a user agent marker that lets the sandbox tell the
engine's calls from the Lambdas' calls.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from .errors import UnsafeEndpointError

USER_AGENT_MARKER = "control-plane-sandbox-pulumi-engine"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEFAULT_REGION = "us-east-1"


def require_loopback_endpoint(environ: dict[str, str] | None = None) -> str:
    """Return `AWS_ENDPOINT_URL` after checking that it and every per-service override
    (`AWS_ENDPOINT_URL_<SERVICE>`) point to a loopback host.

    Raises UnsafeEndpointError otherwise.
    """
    environ = dict(os.environ) if environ is None else environ
    endpoint = environ.get("AWS_ENDPOINT_URL", "")
    if not endpoint:
        raise UnsafeEndpointError(
            "AWS_ENDPOINT_URL is not set. This pulumi command is the control plane's local "
            "sandbox engine and only talks to a local AWS stand-in; set AWS_ENDPOINT_URL to "
            "its address, e.g. http://127.0.0.1:5000, or put the real Pulumi CLI first on PATH."
        )

    for name, value in sorted(environ.items()):
        if name == "AWS_ENDPOINT_URL" or name.startswith("AWS_ENDPOINT_URL_"):
            _check_loopback(name, value)
    return endpoint


def _check_loopback(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise UnsafeEndpointError(
            f"{name}={url!r} is not a loopback address. The sandbox Pulumi engine only "
            "talks to a local AWS stand-in on 127.0.0.1, ::1 or localhost; point "
            f"{name} there, or put the real Pulumi CLI first on PATH."
        )


_session_lock = threading.Lock()
_shared_session: boto3.session.Session | None = None


def _session() -> boto3.session.Session:
    """Return the process-wide boto3 session.

    The session caches service models, which make creating a client slow, so one process
    that runs many engine commands (the tests) creates each model once.
    """
    global _shared_session
    if _shared_session is None:
        _shared_session = boto3.session.Session()
    return _shared_session


class ClientFactory:
    """Creates and caches boto3 clients bound to the loopback endpoint."""

    def __init__(self, endpoint_url: str, environ: dict[str, str] | None = None) -> None:
        self._endpoint_url = endpoint_url
        # Credentials come from the command's environment when it has them, so an
        # in-process run with its own environment does not depend on os.environ.
        environ = environ or {}
        self._credentials = {
            "aws_access_key_id": environ.get("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": environ.get("AWS_SECRET_ACCESS_KEY"),
            "aws_session_token": environ.get("AWS_SESSION_TOKEN"),
        }
        self._clients: dict[tuple[str, str], Any] = {}

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        with _session_lock:
            if key not in self._clients:
                self._clients[key] = self._create(service, region)
        return self._clients[key]

    def _create(self, service: str, region: str) -> Any:
        return _session().client(
            service,
            region_name=region,
            endpoint_url=self._endpoint_url,
            config=Config(
                user_agent_extra=USER_AGENT_MARKER,
                retries={"max_attempts": 3, "mode": "standard"},
                # Path-style S3 URLs, because a loopback endpoint has no DNS for
                # virtual-hosted bucket names.
                s3={"addressing_style": "path"},
            ),
            **self._credentials,
        )


def default_region(environ: dict[str, str] | None = None) -> str:
    """Region from AWS_REGION or AWS_DEFAULT_REGION, else us-east-1."""
    environ = dict(os.environ) if environ is None else environ
    return environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
