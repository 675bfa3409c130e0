"""Required secrets in the environments file: each names its source, every problem by key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lambdas.common.settings import (
    SecretsManagerSecret,
    SettingsError,
    SsmSecret,
    StackConfigSecret,
    load_settings,
    parse_settings,
    read_stack_config_keys,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def document(secrets: Any) -> dict[str, Any]:
    return {
        "environments": {
            "qa": {
                "region": "us-east-1",
                "pulumi_project": "webapp",
                "pulumi_stack": "qa",
                "backend_url": "s3://{state_bucket}",
                "eb_application": "webapp-qa",
                "required_secrets": secrets,
            }
        }
    }


def required(secrets: Any) -> dict[str, Any]:
    return parse_settings(document(secrets), "environments.yaml").environment("qa").required_secrets


def problems(secrets: Any) -> str:
    with pytest.raises(SettingsError) as raised:
        parse_settings(document(secrets), "environments.yaml")
    return str(raised.value)


def test_short_forms_of_each_source() -> None:
    secrets = required(
        {
            "db:password": {"ssm": "/control-plane/qa/db-password"},
            "db:username": {"secretsmanager": "control-plane/qa/db", "key": "username"},
            "api:token": {"secretsmanager": "control-plane/qa/token"},
            "webapp:signingKey": {"stack_config": True},
        }
    )

    assert secrets["db:password"] == SsmSecret(source="ssm", name="/control-plane/qa/db-password")
    assert secrets["db:username"] == SecretsManagerSecret(
        source="secretsmanager", name="control-plane/qa/db", key="username"
    )
    assert secrets["api:token"].key is None
    assert secrets["webapp:signingKey"] == StackConfigSecret(source="stack_config")


def test_long_form_still_accepted() -> None:
    secrets = required({"db:password": {"source": "ssm", "name": "/control-plane/qa/db"}})

    assert secrets["db:password"].reference("us-east-1") == {
        "source": "ssm",
        "name": "/control-plane/qa/db",
        "region": "us-east-1",
    }


def test_secret_arn_keeps_its_own_region() -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:control-plane/qa/db-AbCdEf"

    secret = required({"db:password": {"secretsmanager": arn, "key": "password"}})["db:password"]

    assert secret.reference("us-east-1") == {
        "source": "secretsmanager",
        "name": arn,
        "region": "eu-west-1",
        "jsonKey": "password",
    }


def test_every_secret_problem_listed_by_key() -> None:
    message = problems(
        {
            "db:password": {"ssm": "no-leading-slash"},
            "db:username": {"secretsmanager": "has spaces"},
            "api:token": {"stack_config": "yes"},
            "api:key": {"source": "vault", "name": "x"},
            "api:other": {},
            "api:both": {"ssm": "/a", "secretsmanager": "b"},
            "api:extra": {"ssm": "/a", "key": "k"},
            "not a key": {"ssm": "/a"},
        }
    )

    assert "required_secrets.db:password.ssm.name: String should match pattern" in message
    assert "required_secrets.db:username.secretsmanager.name: String should match" in message
    assert "required_secrets.api:token: Value error, stack_config must be true" in message
    assert "required_secrets.api:key: Input tag 'vault'" in message
    assert "required_secrets.api:other: Value error, must name exactly one secret source" in (
        message
    )
    assert "found 'ssm', 'secretsmanager'" in message
    assert "required_secrets.api:extra.ssm.key: Extra inputs are not permitted" in message
    assert "'not a key' is not a Pulumi config key" in message


def test_sample_staging_reads_secrets_manager() -> None:
    settings = load_settings(REPO_ROOT / "environments.yaml")

    staging = settings.environment("staging").required_secrets
    assert {key: source.source for key, source in staging.items()} == {
        "db:password": "secretsmanager",
        "db:username": "secretsmanager",
    }
    assert settings.environment("dev").required_secrets["db:password"].source == "ssm"


def test_stack_config_keys_marked_secure_or_plain(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.qa.yaml").write_text(
        "config:\n  webapp:key:\n    secure: v1:abc\n  webapp:plain: value\n", encoding="utf-8"
    )
    (tmp_path / "Pulumi.empty.yaml").write_text("secretsprovider: passphrase\n", encoding="utf-8")

    keys = read_stack_config_keys(tmp_path)

    assert keys == {"qa": {"webapp:key": "secure", "webapp:plain": "plain"}, "empty": {}}


# Crashes the fuzz tests found: each reproduces one, and the error now names the file.


def test_invalid_json_file_is_a_settings_error(tmp_path: Path) -> None:
    path = tmp_path / "environments.json"
    path.write_text("{not json", encoding="utf-8")

    with pytest.raises(SettingsError, match=r"environments.json is not valid JSON"):
        load_settings(path)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_file_not_utf8_is_a_settings_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"environments{suffix}"
    path.write_bytes(b"\x80environments: {}")

    with pytest.raises(SettingsError, match=r"is not UTF-8 text"):
        load_settings(path)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deeply_nested_file_is_a_settings_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"environments{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")

    with pytest.raises(SettingsError, match=r"nested too deeply"):
        load_settings(path)
