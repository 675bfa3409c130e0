"""Infra tier: the CodeBuild runner gets the stacks' passphrase from SSM Parameter Store.

The stacks use Pulumi's passphrase secrets provider, so every Pulumi run needs
PULUMI_CONFIG_PASSPHRASE. The CodeBuild project declares it as a PARAMETER_STORE variable, which
CodeBuild resolves at the start of each build, and its role may read that one parameter.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml

from control_plane.sandbox.template import load_resources, synthesize
from lambdas.common.settings import DEFAULT_PULUMI_PASSPHRASE_PARAMETER, parse_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CUSTOM_PARAMETER = "/platform/pulumi/passphrase"


def load_app_module() -> Any:
    spec = importlib.util.spec_from_file_location("cdk_app", REPO_ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def template_path() -> Path:
    return synthesize(REPO_ROOT / ".sandbox" / "cdk-cache")


@pytest.fixture(scope="module")
def template(template_path: Path) -> dict[str, Any]:
    return json.loads(template_path.read_text())


@pytest.fixture(scope="module")
def custom_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The control plane stack of an environments file that names another parameter."""
    document = yaml.safe_load((REPO_ROOT / "environments.yaml").read_text())
    document["pulumi_passphrase_parameter"] = CUSTOM_PARAMETER
    settings = parse_settings(document, "environments.yaml")
    app = cdk.App(outdir=str(tmp_path_factory.mktemp("passphrase") / "cdk.out"))
    load_app_module().build_stacks(app, settings, region="us-east-1", account=None)
    return app.synth().get_stack_by_name("EbControlPlane").template


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


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def parameter_arn(name: str) -> str:
    return f"arn:${{AWS::Partition}}:ssm:us-east-1:${{AWS::AccountId}}:parameter{name}"


def project_variables(template: dict[str, Any]) -> list[dict[str, Any]]:
    projects = [
        resource
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CodeBuild::Project"
    ]
    assert len(projects) == 1
    return projects[0]["Properties"]["Environment"].get("EnvironmentVariables", [])


def grants_by_role(template: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    """Map each role's logical id to the actions its inline policies grant, with resources."""
    found: dict[str, dict[str, set[str]]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            continue
        properties = resource["Properties"]
        for role in properties.get("Roles", []):
            grants = found.setdefault(role["Ref"], {})
            for statement in properties["PolicyDocument"]["Statement"]:
                for action in as_list(statement["Action"]):
                    grants.setdefault(action, set()).update(
                        render(item) for item in as_list(statement["Resource"])
                    )
    return found


def runner_grants(template: dict[str, Any]) -> dict[str, set[str]]:
    runner = [role for role in grants_by_role(template) if role.startswith("PulumiRunner")]
    assert len(runner) == 1
    return grants_by_role(template)[runner[0]]


def test_project_reads_passphrase_from_parameter_store(template: dict[str, Any]) -> None:
    variables = project_variables(template)

    assert variables == [
        {
            "Name": "PULUMI_CONFIG_PASSPHRASE",
            "Type": "PARAMETER_STORE",
            "Value": DEFAULT_PULUMI_PASSPHRASE_PARAMETER,
        }
    ]


def test_runner_may_get_only_the_passphrase_parameter(template: dict[str, Any]) -> None:
    grants = runner_grants(template)

    assert grants["ssm:GetParameters"] == {parameter_arn(DEFAULT_PULUMI_PASSPHRASE_PARAMETER)}
    # The AWS managed key aws/ssm lets every principal of the account decrypt, so no KMS grant.
    assert "kms:Decrypt" not in grants


def test_no_other_role_may_get_the_passphrase(template: dict[str, Any]) -> None:
    arn = parameter_arn(DEFAULT_PULUMI_PASSPHRASE_PARAMETER)

    for role, grants in grants_by_role(template).items():
        if role.startswith("PulumiRunner"):
            continue
        assert "ssm:GetParameters" not in grants, role
        assert not any(arn in resources for resources in grants.values()), role


def test_builds_do_not_override_the_passphrase(template_path: Path) -> None:
    states = load_resources(template_path, "us-east-1", "123456789012").definition["States"]
    builds = {
        name: state
        for name, state in states.items()
        if state.get("Resource", "").startswith("arn:aws:states:::codebuild:")
    }

    assert builds
    for name, state in builds.items():
        overrides = {item["Name"] for item in state["Parameters"]["EnvironmentVariablesOverride"]}
        assert "PULUMI_CONFIG_PASSPHRASE" not in overrides, name


def test_configured_parameter_reaches_project_and_grant(custom_template: dict[str, Any]) -> None:
    variables = project_variables(custom_template)
    grants = runner_grants(custom_template)

    assert variables == [
        {"Name": "PULUMI_CONFIG_PASSPHRASE", "Type": "PARAMETER_STORE", "Value": CUSTOM_PARAMETER}
    ]
    assert grants["ssm:GetParameters"] == {parameter_arn(CUSTOM_PARAMETER)}
