"""The task handlers' boto3 clients back off on throttling within a bounded number of attempts."""

from __future__ import annotations

import pytest

from lambdas.common import aws


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws.client.cache_clear()


def test_client_retries_in_standard_mode_five_attempts() -> None:
    config = aws.client("elasticbeanstalk", "us-east-1").meta.config

    assert config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert config.connect_timeout == 5
    assert config.read_timeout == 20


def test_client_marks_the_control_planes_calls() -> None:
    config = aws.client("dynamodb", "us-east-1").meta.config

    assert config.user_agent_extra == "control-plane"
