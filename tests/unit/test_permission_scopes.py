"""The names the CodeBuild role's EB grants cover, from the environments file."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import yaml

from control_plane.permissions import ArnBuilder, eb_environment_arns, program_scopes
from lambdas.common.settings import parse_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_eb_environment_override_keeps_program_name() -> None:
    document = yaml.safe_load((REPO_ROOT / "environments.yaml").read_text())
    document["environments"]["dev"]["eb_environment"] = "custom-dev-env"
    settings = parse_settings(document, "environments.yaml")
    stack = cdk.Stack(cdk.App(), "Scopes", env=cdk.Environment(account="123456789012"))

    arns = eb_environment_arns(ArnBuilder(stack), program_scopes(settings))

    resolved = [json.dumps(stack.resolve(arn)) for arn in arns]
    assert any("environment/webapp-dev/custom-dev-env" in arn for arn in resolved)
    assert any("environment/webapp-dev/webapp-dev" in arn for arn in resolved)
