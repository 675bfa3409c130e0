"""Support for tests that call task handlers in this process against an in-process sandbox."""

from __future__ import annotations

from typing import Any

import pytest


class Context:
    """The Lambda context fields that Powertools' logger reads."""

    function_name = "test"
    aws_request_id = "req-1"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"


def point_clients_at_sandbox(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Send the handlers' AWS clients to the sandbox, after the autouse credential fixture
    cleared the endpoint."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
