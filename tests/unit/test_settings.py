"""The environments file: every problem is reported at once, by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.common.settings import SettingsError, load_settings, parse_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_sample_file_is_valid() -> None:
    settings = load_settings(REPO_ROOT / "environments.yaml")

    assert sorted(settings.environments) == ["dev", "prod", "staging"]
    assert settings.environment("dev").required_secrets["db:password"].source == "ssm"
    assert {env.region for env in settings.environments.values()} == {"us-east-1", "eu-west-1"}


def test_every_problem_is_listed_at_once() -> None:
    document = {
        "environments": {
            "Dev_1": {"region": "us-east-1"},
            "ok": {
                "region": "nowhere",
                "pulumi_project": "webapp",
                "pulumi_stack": "ok",
                "backend_url": "file:///tmp",
                "eb_application": "webapp-ok",
                "required_secrets": {"bad key": {"source": "ssm", "name": "/a"}},
            },
        }
    }

    with pytest.raises(SettingsError) as raised:
        parse_settings(document, "environments.yaml")

    message = str(raised.value)
    assert "environment names 'Dev_1'" in message
    assert "environments.Dev_1.pulumi_project: Field required" in message
    assert "environments.ok.region" in message
    assert "environments.ok.backend_url" in message
    assert "'bad key'" in message


def test_duplicate_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "environments.yaml"
    path.write_text("environments:\n  dev: {}\n  dev: {}\n")

    with pytest.raises(SettingsError, match="key 'dev' appears twice"):
        load_settings(path)


def test_unknown_environment_names_the_known_ones() -> None:
    settings = load_settings(REPO_ROOT / "environments.yaml")

    with pytest.raises(SettingsError, match=r"known: dev, prod, staging"):
        settings.environment("qa")
