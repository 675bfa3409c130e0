"""Environments whose Pulumi backend is Pulumi Cloud (`backend_url: https://...`)."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.common.settings import SettingsError, parse_settings


def environment(**overrides: Any) -> dict[str, Any]:
    settings = {
        "region": "us-east-1",
        "pulumi_project": "webapp",
        "pulumi_stack": "dev",
        "backend_url": "s3://{state_bucket}",
        "eb_application": "webapp-dev",
    }
    settings.update(overrides)
    return {key: value for key, value in settings.items() if value is not None}


def parse(**overrides: Any) -> Any:
    return parse_settings({"environments": {"dev": environment(**overrides)}}, "test.yaml")


def test_s3_backend_unchanged() -> None:
    dev = parse().environment("dev")

    assert dev.backend_url == "s3://{state_bucket}"
    assert dev.pulumi_org is None
    assert dev.pulumi_token_secret is None
    assert dev.resolved_backend_url("state") == "s3://state"


def test_cloud_backend_with_org_and_token() -> None:
    dev = parse(
        backend_url="https://api.pulumi.com",
        pulumi_org="acme",
        pulumi_token_secret="control-plane/pulumi-access-token",
    ).environment("dev")

    assert dev.backend_url == "https://api.pulumi.com"
    assert dev.pulumi_org == "acme"
    assert dev.pulumi_token_secret == "control-plane/pulumi-access-token"
    assert dev.resolved_backend_url("state") == "https://api.pulumi.com"


@pytest.mark.parametrize("missing", ["pulumi_org", "pulumi_token_secret"])
def test_cloud_backend_needs_org_and_token(missing: str) -> None:
    fields = {
        "backend_url": "https://api.pulumi.com",
        "pulumi_org": "acme",
        "pulumi_token_secret": "control-plane/pulumi-access-token",
        missing: None,
    }

    with pytest.raises(SettingsError) as raised:
        parse(**fields)

    assert missing in str(raised.value)


def test_org_and_token_rejected_with_s3_backend() -> None:
    with pytest.raises(SettingsError) as raised:
        parse(pulumi_org="acme", pulumi_token_secret="control-plane/pulumi-access-token")

    assert "only with an https:// backend_url" in str(raised.value)


@pytest.mark.parametrize(
    "url", ["file:///tmp", "http://api.pulumi.com", "azblob://state", "https://"]
)
def test_other_backends_rejected(url: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse(backend_url=url, pulumi_org="acme", pulumi_token_secret="token")

    assert "backend_url" in str(raised.value)


def test_loopback_http_backend_allowed_for_sandbox() -> None:
    dev = parse(
        backend_url="http://127.0.0.1:8080", pulumi_org="acme", pulumi_token_secret="token"
    ).environment("dev")

    assert dev.backend_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize("name", ["bad name", "x" * 600, ""])
def test_token_secret_name_checked(name: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse(backend_url="https://api.pulumi.com", pulumi_org="acme", pulumi_token_secret=name)

    assert "pulumi_token_secret" in str(raised.value)
