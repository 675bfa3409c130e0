"""The environments file's `pulumi_passphrase_parameter`: the SSM parameter of the stacks'
passphrase, which the CodeBuild project reads at the start of every build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lambdas.common.settings import (
    DEFAULT_PULUMI_PASSPHRASE_PARAMETER,
    SettingsError,
    load_settings,
    parse_settings,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def document(**top_level: Any) -> dict[str, Any]:
    return {
        "environments": {
            "qa": {
                "region": "us-east-1",
                "pulumi_project": "webapp",
                "pulumi_stack": "qa",
                "backend_url": "s3://{state_bucket}",
                "eb_application": "webapp-qa",
            }
        },
        **top_level,
    }


def test_default_parameter_name() -> None:
    settings = parse_settings(document(), "environments.yaml")

    assert DEFAULT_PULUMI_PASSPHRASE_PARAMETER == "/control-plane/pulumi-config-passphrase"
    assert settings.pulumi_passphrase_parameter == DEFAULT_PULUMI_PASSPHRASE_PARAMETER


def test_sample_file_uses_the_default() -> None:
    settings = load_settings(REPO_ROOT / "environments.yaml")

    assert settings.pulumi_passphrase_parameter == DEFAULT_PULUMI_PASSPHRASE_PARAMETER


def test_configured_parameter_name() -> None:
    settings = parse_settings(
        document(pulumi_passphrase_parameter="/platform/pulumi/passphrase"), "environments.yaml"
    )

    assert settings.pulumi_passphrase_parameter == "/platform/pulumi/passphrase"


@pytest.mark.parametrize(
    "name",
    ["pulumi-passphrase", "/pulumi passphrase", "/", "", "/pulumi/pass*"],
)
def test_invalid_parameter_name_is_listed_by_key(name: str) -> None:
    with pytest.raises(SettingsError) as raised:
        parse_settings(document(pulumi_passphrase_parameter=name), "environments.yaml")

    message = str(raised.value)
    assert "pulumi_passphrase_parameter:" in message
    assert "/control-plane/pulumi-config-passphrase" in message


def test_other_problems_are_listed_with_it() -> None:
    bad = document(pulumi_passphrase_parameter="passphrase")
    bad["environments"]["qa"]["region"] = "nowhere"

    with pytest.raises(SettingsError) as raised:
        parse_settings(bad, "environments.yaml")

    message = str(raised.value)
    assert "pulumi_passphrase_parameter:" in message
    assert "environments.qa.region:" in message
