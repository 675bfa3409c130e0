"""Shared fixtures. Every AWS call in the tests goes to moto or to the sandbox on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and no real endpoint, so nothing can reach AWS by accident."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    if not os.environ.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1"):
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    yield


@pytest.fixture
def environments_file(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the handlers at the sample environments file."""
    from lambdas.common.aws import client
    from lambdas.common.settings import current_settings

    path = REPO_ROOT / "environments.yaml"
    monkeypatch.setenv("ENVIRONMENTS_FILE", str(path))
    current_settings.cache_clear()
    client.cache_clear()
    yield path
    current_settings.cache_clear()
    client.cache_clear()
