"""Infra tier: every stack of the CDK app passes cdk-nag and cfn-lint and grants least privilege.

The app is synthesized once, in process, as app.py builds it, with a `github` section so that
the GitHub deploy role and the OIDC provider are in it too. The account stays a token, as in
`make synth` without credentials.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match

from control_plane.nag import apply_aws_solutions_checks
from control_plane.permissions import read_domain_settings
from lambdas.common.settings import Settings, parse_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
GITHUB = {"repository": "octo-org/octo-repo", "branches": ["main"]}
# Programs of environments.yaml: (pulumi project-stack, region).
PROGRAMS = {"webapp-dev": "us-east-1", "webapp-staging": "us-east-1", "webapp-prod": "eu-west-1"}

# Actions that may be granted on "*": none of them takes resource-level permissions (Service
# Authorization Reference: no resource type in the action's row).
ANY_RESOURCE_ACTIONS = {
    # Active tracing of the Lambda functions and the state machine.
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    # The state machine's log delivery to CloudWatch Logs (vended logs).
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    # Preflight lists the metadata of the required SSM parameters, never their values.
    "ssm:DescribeParameters",
    # DeployVersion finds EB's storage bucket of another region to copy a bundle into. The EB
    # Developer Guide's custom user policies grant it on "*" among the calls without resources.
    "elasticbeanstalk:CreateStorageLocation",
    # The CodeBuild runner: discovery by EB and the Pulumi provider while they create or read
    # resources, and the template check of EB's CloudFormation stack.
    "ec2:Describe*",
    "autoscaling:Describe*",
    "elasticloadbalancing:Describe*",
    "cloudformation:ValidateTemplate",
    # The CodeBuild runner, for custom domains: a new certificate and a new distribution.
    "acm:RequestCertificate",
    "cloudfront:CreateDistribution",
}
# Whole services may be granted only on EB's own `awseb-` resources, as AWS's managed policy
# AdministratorAccess-AWSElasticBeanstalk does: EB's CloudFormation stack calls them.
SERVICE_WIDE_ACTIONS = {"autoscaling:*", "elasticloadbalancing:*"}
# DynamoDB client methods of the handlers and the actions that authorize them.
DYNAMODB_METHOD_ACTIONS = {
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
}


@dataclass
class SynthesizedApp:
    stacks: list[cdk.Stack]
    templates: dict[str, dict[str, Any]]
    paths: dict[str, Path]
    regions: dict[str, str]


def load_app_module() -> Any:
    spec = importlib.util.spec_from_file_location("cdk_app", REPO_ROOT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settings_with_github() -> Settings:
    document = yaml.safe_load((REPO_ROOT / "environments.yaml").read_text())
    document["github"] = GITHUB
    return parse_settings(document, "environments.yaml")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    outdir = tmp_path_factory.mktemp("hygiene") / "cdk.out"
    app = cdk.App(outdir=str(outdir))
    stacks = load_app_module().build_stacks(
        app, settings_with_github(), region=REGION, account=None
    )
    assembly = app.synth()
    templates, paths, regions = {}, {}, {}
    for stack in stacks:
        artifact = assembly.get_stack_by_name(stack.stack_name)
        templates[stack.stack_name] = artifact.template
        paths[stack.stack_name] = Path(artifact.template_full_path)
        regions[stack.stack_name] = artifact.environment.region
    return SynthesizedApp(stacks, templates, paths, regions)


@pytest.fixture(scope="module")
def control_plane(synthesized: SynthesizedApp) -> dict[str, Any]:
    return synthesized.templates["EbControlPlane"]


def render(value: Any) -> str:
    """Render an ARN that CloudFormation joins from parts, with references as ${Name}."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    return json.dumps(value, sort_keys=True)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every IAM policy document of the template: inline policies and managed policies."""
    found = []
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found.append((logical_id, properties["PolicyDocument"]))
        elif resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                found.append((logical_id, policy["PolicyDocument"]))
    return found


def statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (logical_id, statement)
        for logical_id, document in policy_documents(template)
        for statement in document["Statement"]
    ]


def runner_statement(template: dict[str, Any], sid: str) -> dict[str, Any]:
    found = [
        statement
        for logical_id, statement in statements(template)
        if logical_id.startswith("PulumiRunner") and statement.get("Sid") == sid
    ]
    assert len(found) == 1, f"expected one runner statement {sid}, found {len(found)}"
    return found[0]


def role_grants(template: dict[str, Any], role_prefix: str) -> dict[str, set[str]]:
    """Map each action granted to the role whose logical id starts with `role_prefix`."""
    grants: dict[str, set[str]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = [role["Ref"] for role in resource["Properties"]["Roles"]]
        if not any(role.startswith(role_prefix) for role in roles):
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            for action in as_list(statement["Action"]):
                grants.setdefault(action, set()).update(
                    render(item) for item in as_list(statement["Resource"])
                )
    return grants


def arn(service: str, region: str, resource: str, *, account: str = "${AWS::AccountId}") -> str:
    return f"arn:${{AWS::Partition}}:{service}:{region}:{account}:{resource}"


# --- cdk-nag -------------------------------------------------------------------------------


def test_nag_finds_nothing_unacknowledged(synthesized: SynthesizedApp) -> None:
    for stack in synthesized.stacks:
        annotations = Annotations.from_stack(stack)
        pattern = Match.string_like_regexp("AwsSolutions-.*")
        errors = annotations.find_error("*", pattern)
        warnings = annotations.find_warning("*", pattern)

        assert [f"{e.id}: {e.entry.data}" for e in errors] == [], stack.stack_name
        assert [f"{w.id}: {w.entry.data}" for w in warnings] == [], stack.stack_name


def test_nag_checks_run_on_the_app() -> None:
    """The checks app.py applies report a plain bucket, so a clean app was checked, not skipped."""
    app = cdk.App()
    stack = cdk.Stack(app, "Unchecked")
    s3.Bucket(stack, "PlainBucket")
    apply_aws_solutions_checks(app)

    errors = Annotations.from_stack(stack).find_error(
        "*", Match.string_like_regexp("AwsSolutions-S1:.*")
    )

    assert len(errors) == 1


def test_every_acknowledgement_is_specific(synthesized: SynthesizedApp) -> None:
    acknowledged = 0
    for template in synthesized.templates.values():
        for logical_id, resource in template["Resources"].items():
            rules = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
            for rule in rules:
                acknowledged += 1
                assert len(rule["reason"]) >= 60, (logical_id, rule)
                if rule["id"] == "AwsSolutions-IAM5":
                    assert rule.get("applies_to"), (logical_id, rule)
    assert acknowledged > 0


def test_no_stack_wide_acknowledgement(synthesized: SynthesizedApp) -> None:
    for template in synthesized.templates.values():
        assert "cdk_nag" not in template.get("Metadata", {})


# --- cfn-lint ------------------------------------------------------------------------------


def test_cfn_lint_passes_every_template(synthesized: SynthesizedApp) -> None:
    from cfnlint.api import ManualArgs, lint_file

    for name, path in synthesized.paths.items():
        # W3005: the CDK puts a Lambda function's and the state machine's role in DependsOn
        # besides the Fn::GetAtt that already orders them. CloudFormation accepts both; the
        # explicit dependency is the CDK's, not this stack's.
        config = ManualArgs(regions=[synthesized.regions[name]], ignore_checks=["W3005"])

        matches = lint_file(path, config)

        assert [str(match) for match in matches] == [], name


# --- least privilege -----------------------------------------------------------------------


def test_any_resource_only_for_unscopable_actions(synthesized: SynthesizedApp) -> None:
    for name, template in synthesized.templates.items():
        for logical_id, statement in statements(template):
            if statement["Effect"] != "Allow" or "*" not in as_list(statement["Resource"]):
                continue
            unscoped = set(as_list(statement["Action"])) - ANY_RESOURCE_ACTIONS
            assert unscoped == set(), (name, logical_id)


def test_service_wide_actions_only_on_eb_resources(synthesized: SynthesizedApp) -> None:
    for template in synthesized.templates.values():
        for logical_id, statement in statements(template):
            for action in as_list(statement["Action"]):
                if action != "*" and not action.endswith(":*"):
                    continue
                assert action in SERVICE_WIDE_ACTIONS, (logical_id, action)
                for resource in as_list(statement["Resource"]):
                    assert ":awseb-" in render(resource) or "/awseb-" in render(resource), (
                        logical_id,
                        resource,
                    )


def test_runner_manages_the_program_applications(control_plane: dict[str, Any]) -> None:
    statement = runner_statement(control_plane, "ManageBeanstalkApplications")
    resources = {render(item) for item in as_list(statement["Resource"])}

    for program, region in PROGRAMS.items():
        assert arn("elasticbeanstalk", region, f"application/{program}") in resources
        assert arn("elasticbeanstalk", region, f"environment/{program}/{program}") in resources
        assert arn("elasticbeanstalk", region, f"applicationversion/{program}/*") in resources
    assert not [action for action in statement["Action"] if action.endswith("*")]
    regions = {re.search(r":elasticbeanstalk:([\w-]+):", item).group(1) for item in resources}
    assert regions == set(PROGRAMS.values())


def test_runner_roles_by_program_prefix(control_plane: dict[str, Any]) -> None:
    manage = runner_statement(control_plane, "ManageProgramRoles")
    roles = {arn("iam", "", f"role/{program}-eb-*") for program in PROGRAMS}
    profiles = {arn("iam", "", f"instance-profile/{program}-eb-*") for program in PROGRAMS}

    assert {render(item) for item in manage["Resource"]} == roles | profiles
    assert "iam:PassRole" not in manage["Action"]


def test_runner_passes_program_roles_to_eb_and_ec2(control_plane: dict[str, Any]) -> None:
    passing = runner_statement(control_plane, "PassProgramRoles")
    roles = {arn("iam", "", f"role/{program}-eb-*") for program in PROGRAMS}

    assert passing["Action"] == "iam:PassRole"
    assert {render(item) for item in passing["Resource"]} == roles
    assert passing["Condition"] == {
        "StringEquals": {
            "iam:PassedToService": ["elasticbeanstalk.amazonaws.com", "ec2.amazonaws.com"]
        }
    }
    passed = [
        statement
        for _, statement in statements(control_plane)
        if "iam:PassRole" in as_list(statement["Action"])
    ]
    assert len(passed) == 1


def test_runner_attaches_only_the_program_policies(control_plane: dict[str, Any]) -> None:
    """The managed policies infra/webapp/iam.py attaches, read from its source."""
    source = ast.parse((REPO_ROOT / "infra" / "webapp" / "iam.py").read_text())
    program_policies: list[str] = []
    for node in source.body:
        if isinstance(node, ast.Assign) and node.targets[0].id.endswith("_POLICY_ARNS"):
            program_policies.extend(ast.literal_eval(node.value))
    attach = runner_statement(control_plane, "AttachProgramPolicies")

    assert sorted(attach["Action"]) == ["iam:AttachRolePolicy", "iam:DetachRolePolicy"]
    assert sorted(attach["Condition"]["ArnEquals"]["iam:PolicyArn"]) == sorted(program_policies)


def test_runner_buckets_database_and_stacks_by_name(control_plane: dict[str, Any]) -> None:
    buckets = runner_statement(control_plane, "ManageProgramBuckets")
    database = runner_statement(control_plane, "ManageProgramDatabase")
    stacks = runner_statement(control_plane, "BeanstalkStacks")
    regions = sorted(set(PROGRAMS.values()))

    assert {render(item) for item in buckets["Resource"]} == {
        f"arn:${{AWS::Partition}}:s3:::{program}-*" for program in PROGRAMS
    }
    for program, region in PROGRAMS.items():
        assert arn("rds", region, f"db:{program}-db*") in {render(r) for r in database["Resource"]}
    assert sorted(render(item) for item in stacks["Resource"]) == sorted(
        arn("cloudformation", region, "stack/awseb-*") for region in regions
    )


def test_runner_domain_records_in_configured_zone(control_plane: dict[str, Any]) -> None:
    """Only prod's settings file turns custom domains on, with a hosted zone id."""
    records = runner_statement(control_plane, "ManageDomainRecords")
    prod = yaml.safe_load((REPO_ROOT / "infra" / "Pulumi.prod.yaml").read_text())["config"]

    assert render(records["Resource"]) == (
        f"arn:${{AWS::Partition}}:route53:::hostedzone/{prod['webapp:hostedZoneId']}"
    )
    assert "route53:ListHostedZonesByName" not in role_grants(control_plane, "PulumiRunner")


def test_runner_reads_only_declared_parameters(control_plane: dict[str, Any]) -> None:
    parameters = role_grants(control_plane, "PulumiRunner")["ssm:GetParameter"]

    assert parameters == {
        arn("ssm", "us-east-1", "parameter/control-plane/dev/db-password"),
    }


def test_lambda_roles_have_no_managed_policy(control_plane: dict[str, Any]) -> None:
    functions = {
        logical_id: resource
        for logical_id, resource in control_plane["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    for logical_id, function in functions.items():
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        role = control_plane["Resources"][role_id]["Properties"]
        log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]

        assert "ManagedPolicyArns" not in role, logical_id
        assert control_plane["Resources"][log_group]["Properties"]["RetentionInDays"] == 90
        writes = role_grants(control_plane, role_id)["logs:PutLogEvents"]
        assert writes == {"${" + log_group + ".Arn}"}, logical_id
    assert len(functions) >= 20


def test_table_grants_only_the_operations_handlers_call(control_plane: dict[str, Any]) -> None:
    methods = "get_item|put_item|update_item|delete_item|query"
    calls = re.compile(rf"\.({methods})\(|get_paginator\(\"({methods})\"\)")
    called = set()
    for path in (REPO_ROOT / "lambdas").rglob("*.py"):
        for direct, paginated in calls.findall(path.read_text()):
            called.add(direct or paginated)
    used = {DYNAMODB_METHOD_ACTIONS[method] for method in called}
    granted = {
        action
        for _, statement in statements(control_plane)
        for action in as_list(statement["Action"])
        if action.startswith("dynamodb:")
    }

    assert granted == used


def test_eb_grants_name_the_managed_environments(synthesized: SynthesizedApp) -> None:
    managed = {
        arn("elasticbeanstalk", region, f"environment/{program}/{program}")
        for program, region in PROGRAMS.items()
    }
    for name, template in synthesized.templates.items():
        for logical_id, statement in statements(template):
            if logical_id.startswith("PulumiRunner"):
                continue
            actions = as_list(statement["Action"])
            if "elasticbeanstalk:DescribeEnvironments" not in actions:
                continue
            assert {render(item) for item in as_list(statement["Resource"])} == managed, (
                name,
                logical_id,
            )


def test_maintenance_switch_read_per_environment(control_plane: dict[str, Any]) -> None:
    parameters = role_grants(control_plane, "SweepEnvironmentsFunction")["ssm:GetParameter"]

    assert parameters == {
        arn("ssm", REGION, f"parameter/control-plane/{environment}/maintenance")
        for environment in ("dev", "prod", "staging")
    }


def test_deploy_version_may_prune_versions(control_plane: dict[str, Any]) -> None:
    grants = role_grants(control_plane, "DeployVersionFunction")

    assert grants["elasticbeanstalk:DeleteApplicationVersion"] == {
        arn("elasticbeanstalk", region, f"applicationversion/{program}/*")
        for program, region in PROGRAMS.items()
    }
    assert grants["elasticbeanstalk:CreateApplicationVersion"] >= {
        arn("elasticbeanstalk", region, f"application/{program}")
        for program, region in PROGRAMS.items()
    }


def test_deploy_version_copies_bundles_to_other_regions(control_plane: dict[str, Any]) -> None:
    grants = role_grants(control_plane, "DeployVersionFunction")
    # Only prod is outside the control plane's region; its application has one name.
    bucket = "arn:${AWS::Partition}:s3:::elasticbeanstalk-eu-west-1-${AWS::AccountId}"
    copies = {f"{bucket}/webapp-prod/control-plane/*"}

    assert grants["elasticbeanstalk:CreateStorageLocation"] == {"*"}
    assert grants["s3:PutObject"] == copies
    assert grants["s3:GetObject"] >= copies
    assert grants["s3:ListBucket"] >= {bucket}
    # Besides the copies, DeployVersion only reads the bundle bucket.
    bundle_bucket = re.compile(r"^\$\{BundleBucket[0-9A-F]{8}\.Arn\}(/\*)?$")
    for resource in (grants["s3:GetObject"] - copies) | (grants["s3:ListBucket"] - {bucket}):
        assert bundle_bucket.match(resource), resource
    for other in ("PreflightFunction", "RollbackFunction", "PrepareRecoveryFunction"):
        assert "elasticbeanstalk:CreateStorageLocation" not in role_grants(control_plane, other)
        assert "s3:PutObject" not in role_grants(control_plane, other)


def write_stack_file(infra: Path, stack: str, config: dict[str, Any]) -> None:
    infra.mkdir(exist_ok=True)
    (infra / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))


def test_domain_grants_absent_without_domains(tmp_path: Path) -> None:
    write_stack_file(tmp_path, "dev", {"aws:region": "us-east-1"})

    assert read_domain_settings(tmp_path, ["dev"]) is None


def test_domain_grants_for_zone_by_name(tmp_path: Path) -> None:
    write_stack_file(tmp_path, "dev", {"webapp:domains": ["a.example.org"]})
    write_stack_file(
        tmp_path, "prod", {"webapp:domains": ["example.org"], "webapp:hostedZoneId": "Z123"}
    )

    domains = read_domain_settings(tmp_path, ["dev", "prod"])

    assert domains is not None
    assert domains.zone_ids == ("Z123",)
    assert domains.any_zone_by_name is True


def test_domain_grants_for_stack_without_settings_file(tmp_path: Path) -> None:
    write_stack_file(tmp_path, "dev", {})

    domains = read_domain_settings(tmp_path, ["dev", "elsewhere"])

    assert domains is not None
    assert domains.any_zone_by_name is True
