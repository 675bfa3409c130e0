"""Infra tier: who may touch the required secrets, and what ships with the Lambda code.

Preflight may describe the declared Secrets Manager secrets and nothing more; only the CodeBuild
runner may read their values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from control_plane.sandbox.template import synthesize
from control_plane.stack import stage_lambda_code
from lambdas.common.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGING_SECRET = (
    "arn:${AWS::Partition}:secretsmanager:us-east-1:${AWS::AccountId}:secret:"
    "control-plane/staging/db-??????"
)
DEV_PARAMETER = (
    "arn:${AWS::Partition}:ssm:us-east-1:${AWS::AccountId}:parameter/control-plane/dev/db-password"
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return json.loads(synthesize(REPO_ROOT / ".sandbox" / "cdk-cache").read_text())


def render(value: Any) -> str:
    """Render an ARN that CloudFormation joins from parts, with references as ${Name}."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    return json.dumps(value, sort_keys=True)


def grants(template: dict[str, Any], role_prefix: str) -> dict[str, set[str]]:
    """Map each action granted to the role whose logical id starts with `role_prefix` to its
    resources."""
    found: dict[str, set[str]] = {}
    for item in template["Resources"].values():
        if item["Type"] != "AWS::IAM::Policy":
            continue
        roles = [role["Ref"] for role in item["Properties"]["Roles"]]
        if not any(role.startswith(role_prefix) for role in roles):
            continue
        for statement in item["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            resources = statement["Resource"]
            for action in [actions] if isinstance(actions, str) else actions:
                listed = resources if isinstance(resources, list) else [resources]
                found.setdefault(action, set()).update(render(item) for item in listed)
    return found


def test_preflight_describes_declared_secrets_only(template: dict[str, Any]) -> None:
    preflight = grants(template, "PreflightFunction")

    assert preflight["secretsmanager:DescribeSecret"] == {STAGING_SECRET}
    assert "secretsmanager:GetSecretValue" not in preflight
    assert "ssm:GetParameter" not in preflight
    assert preflight["ssm:DescribeParameters"] == {"*"}


def test_runner_reads_declared_secrets_only(template: dict[str, Any]) -> None:
    runner = grants(template, "PulumiRunner")

    assert runner["secretsmanager:GetSecretValue"] == {STAGING_SECRET}
    assert DEV_PARAMETER in runner["ssm:GetParameter"]


def test_no_other_role_names_the_declared_secrets(template: dict[str, Any]) -> None:
    for item in template["Resources"].values():
        if item["Type"] != "AWS::IAM::Policy":
            continue
        roles = [role["Ref"] for role in item["Properties"]["Roles"]]
        resources = [
            render(resource)
            for statement in item["Properties"]["PolicyDocument"]["Statement"]
            for resource in (
                statement["Resource"]
                if isinstance(statement["Resource"], list)
                else [statement["Resource"]]
            )
        ]
        if STAGING_SECRET in resources:
            assert all(role.startswith(("PreflightFunction", "PulumiRunner")) for role in roles)


def test_lambda_code_carries_stack_config_keys_without_values(tmp_path: Path) -> None:
    staged = stage_lambda_code(load_settings(REPO_ROOT / "environments.yaml"), tmp_path / "code")

    keys = json.loads((staged / "stack_config_keys.json").read_text(encoding="utf-8"))

    assert set(keys) == {"dev", "staging", "prod"}
    assert keys["dev"]["db:username"] == "plain"
    # Values stay out: dev's instance type and database user are not in the file.
    assert "t3.micro" not in json.dumps(keys)
    assert '"webapp"' not in json.dumps(keys)
