"""Infra tier: deployments from GitHub Actions through OIDC.

Covers the `github` settings, the trust policy and permissions of the deploy role in the
synthesized template, the composite action's helper commands (control_plane/github_action.py)
and a lint of action.yml and the example workflow.

GitHub's documented default `sub` formats (docs.github.com/en/actions/reference/security/oidc,
"Example subject claims"): a job with a GitHub environment gets
`repo:OWNER/REPO:environment:NAME`, otherwise a pull_request event (a fork's too) gets
`repo:OWNER/REPO:pull_request` and other events `repo:OWNER/REPO:ref:refs/heads/BRANCH`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner
from moto import mock_aws

from control_plane.executions import execution_name, upload_bundle
from control_plane.github_action import (
    JobContext,
    choose_request_id,
    job_subject,
)
from control_plane.github_action import main as action_main
from control_plane.github_oidc import BUNDLE_KEY_PREFIX, MAX_SESSION_SECONDS, ROLE_ARN_OUTPUT
from lambdas.common.settings import Settings, SettingsError, parse_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
ACTION_FILE = REPO_ROOT / "action.yml"
WORKFLOW_FILE = REPO_ROOT / ".github" / "workflows" / "deploy-example.yml"
ACCOUNT = "123456789012"
REGION = "us-east-1"
HOST = "token.actions.githubusercontent.com"
REPOSITORY = "octo-org/octo-repo"
BRANCH_SUBJECT = f"repo:{REPOSITORY}:ref:refs/heads/main"
ENVIRONMENT_SUBJECT = f"repo:{REPOSITORY}:environment:production"
PULL_REQUEST_SUBJECT = f"repo:{REPOSITORY}:pull_request"
GITHUB_BOTH = {"repository": REPOSITORY, "branches": ["main"], "environments": ["production"]}
GITHUB_BRANCH_ONLY = {"repository": REPOSITORY, "branches": ["main"]}
IMPORTED_PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}"
EB_ENVIRONMENT_ARN = (
    f"arn:aws:elasticbeanstalk:{REGION}:{ACCOUNT}:environment/webapp-dev/webapp-dev"
)
PINNED_ACTION = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+@[0-9a-f]{40}$")
PINNED_LINE = re.compile(r"uses: \S+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def settings_with(github: Any) -> Settings:
    document = yaml.safe_load((REPO_ROOT / "environments.yaml").read_text())
    document["github"] = github
    return parse_settings(document, "environments.yaml")


def settings_problems(github: Any) -> str:
    with pytest.raises(SettingsError) as raised:
        settings_with(github)
    return str(raised.value)


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("repository", ["octo-org/*", "*/octo-repo", "octo-*/octo-repo", "o/r?"])
def test_settings_reject_wildcard_repository(repository: str) -> None:
    problems = settings_problems({"repository": repository, "branches": ["main"]})

    assert f"github.repository: Value error, {repository!r} contains a wildcard" in problems
    assert "name one repository as OWNER/REPO exactly" in problems


@pytest.mark.parametrize(
    "repository",
    ["octo-org", "octo-org/octo-repo/extra", "-octo/octo-repo", "octo org/octo-repo", "o/..", ""],
)
def test_settings_reject_malformed_repository(repository: str) -> None:
    problems = settings_problems({"repository": repository, "branches": ["main"]})

    assert (
        f"github.repository: Value error, {repository!r} is not a GitHub repository of the form "
        "OWNER/REPO"
    ) in problems


def test_settings_reject_wildcard_branch_and_environment() -> None:
    problems = settings_problems(
        {"repository": REPOSITORY, "branches": ["main", "release/*"], "environments": ["prod*"]}
    )

    assert "github.branches.1: Value error, 'release/*' contains a wildcard" in problems
    assert "github.environments.0: Value error, 'prod*' contains a wildcard" in problems
    assert "github.branches.0" not in problems


@pytest.mark.parametrize("branch", ["refs/heads/main", "a..b", "feature:x", "-x", "x.lock", ""])
def test_settings_reject_invalid_branch(branch: str) -> None:
    problems = settings_problems({"repository": REPOSITORY, "branches": [branch]})

    assert "github.branches.0: Value error" in problems


def test_settings_require_a_subject() -> None:
    problems = settings_problems({"repository": REPOSITORY})

    assert "github.environments: Value error, set branches, environments or both" in problems


def test_settings_list_every_problem_at_once() -> None:
    problems = settings_problems(
        {
            "repository": "octo-org",
            "owner_id": 7,
            "oidc_provider_arn": "arn:aws:iam::1:oidc-provider/example.com",
            "subject": "repo:octo-org/*",
        }
    )

    assert "github.repository:" in problems
    assert "github.repository_id: Value error, set owner_id and repository_id together" in problems
    assert "github.environments: Value error, set branches, environments or both" in problems
    assert "github.oidc_provider_arn: Value error" in problems
    assert "github.subject: Extra inputs are not permitted" in problems


def test_settings_subjects_in_github_formats() -> None:
    github = settings_with(
        {"repository": REPOSITORY, "branches": ["main"], "environments": ["Prod:V1", "production"]}
    ).github

    assert github is not None
    assert github.subjects() == [
        BRANCH_SUBJECT,
        f"repo:{REPOSITORY}:environment:Prod%3AV1",
        ENVIRONMENT_SUBJECT,
    ]


def test_settings_immutable_subject_format() -> None:
    github = settings_with({**GITHUB_BOTH, "owner_id": 123456, "repository_id": 456789}).github

    assert github is not None
    assert github.subjects() == [
        "repo:octo-org@123456/octo-repo@456789:ref:refs/heads/main",
        "repo:octo-org@123456/octo-repo@456789:environment:production",
    ]


def test_sample_environments_file_has_no_github_section() -> None:
    # The commented-out example must not make the stack trust someone else's repository.
    from lambdas.common.settings import load_settings

    assert load_settings(REPO_ROOT / "environments.yaml").github is None


# --- synthesized template -------------------------------------------------------------------


def build_template(settings: Settings, staging: Path) -> dict[str, Any]:
    """Synthesize the control plane stack as app.py builds it, with these settings."""
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from control_plane.stack import ControlPlaneStack

    app = cdk.App(outdir=str(staging / "cdk.out"))
    stack = ControlPlaneStack(
        app,
        "EbControlPlane",
        control_plane_settings=settings,
        lambda_staging_dir=staging / "staging" / "lambda-code",
        env=cdk.Environment(account=ACCOUNT, region=REGION),
    )
    return Template.from_stack(stack).to_json()


def build_role_template(github: Settings) -> dict[str, Any]:
    """Synthesize only the deploy role, beside stand-ins for the bucket, machine and table."""
    import aws_cdk as cdk
    from aws_cdk import aws_dynamodb as dynamodb
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_stepfunctions as sfn
    from aws_cdk.assertions import Template

    from control_plane.github_oidc import GitHubDeployRole

    app = cdk.App()
    stack = cdk.Stack(app, "EbControlPlane", env=cdk.Environment(account=ACCOUNT, region=REGION))
    machine = sfn.StateMachine(
        stack,
        "Machine",
        state_machine_name="EbControlPlane-deployments",
        definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "Start")),
    )
    assert github.github is not None
    GitHubDeployRole(
        stack,
        "GitHubDeploy",
        github=github.github,
        environment_names=sorted(github.environments),
        bundle_bucket=s3.Bucket(stack, "BundleBucket"),
        state_machine=machine,
        state_machine_name="EbControlPlane-deployments",
        table=dynamodb.TableV2(
            stack,
            "Table",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        ),
        eb_environment_arns=[EB_ENVIRONMENT_ARN],
    )
    return Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_template(settings_with(GITHUB_BOTH), tmp_path_factory.mktemp("github-stack"))


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {key: item for key, item in template["Resources"].items() if item["Type"] == kind}


def logical_id(template: dict[str, Any], kind: str, prefix: str) -> str:
    found = [key for key in resources(template, kind) if key.startswith(prefix)]
    assert len(found) == 1, f"expected one {kind} named {prefix}*, found {found}"
    return found[0]


def deploy_role(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    roles = {
        key: role
        for key, role in resources(template, "AWS::IAM::Role").items()
        if "sts:AssumeRoleWithWebIdentity"
        in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])
    }
    assert len(roles) == 1, f"expected one web identity role, found {sorted(roles)}"
    return next(iter(roles.items()))


def trust_statement(template: dict[str, Any]) -> dict[str, Any]:
    statements = deploy_role(template)[1]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert len(statements) == 1
    return statements[0]


def role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role_id, role = deploy_role(template)
    attached = [
        policy["Properties"]
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
    ]
    assert "ManagedPolicyArns" not in role["Properties"]
    assert "Policies" not in role["Properties"]
    assert len(attached) == 1
    return attached[0]["PolicyDocument"]["Statement"]


def iam_string_like(pattern: str, value: str) -> bool:
    """Match as IAM's StringLike does: '*' is any run of characters, '?' one character."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.fullmatch("".join(parts), value) is not None


def trust_allows(statement: dict[str, Any], claims: dict[str, str]) -> bool:
    """Evaluate the statement's conditions against token claims, as STS would."""
    for operator, conditions in statement["Condition"].items():
        for key, expected in conditions.items():
            values = expected if isinstance(expected, list) else [expected]
            actual = claims.get(key.removeprefix(f"{HOST}:"))
            if actual is None:
                return False
            if operator == "StringEquals":
                matched = actual in values
            elif operator == "StringLike":
                matched = any(iam_string_like(value, actual) for value in values)
            else:
                raise AssertionError(f"unexpected condition operator {operator}")
            if not matched:
                return False
    return True


def test_provider_created_for_github_issuer(template: dict[str, Any]) -> None:
    providers = resources(template, "AWS::IAM::OIDCProvider")

    assert len(providers) == 1
    properties = next(iter(providers.values()))["Properties"]
    assert properties["Url"] == f"https://{HOST}"
    assert properties["ClientIdList"] == ["sts.amazonaws.com"]


def test_trust_policy_conditions_are_exact(template: dict[str, Any]) -> None:
    statement = trust_statement(template)
    provider = logical_id(template, "AWS::IAM::OIDCProvider", "GitHubDeployProvider")

    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": {"Ref": provider}}
    assert statement["Condition"] == {
        "StringEquals": {
            f"{HOST}:aud": "sts.amazonaws.com",
            f"{HOST}:sub": [BRANCH_SUBJECT, ENVIRONMENT_SUBJECT],
        }
    }


def test_trust_policy_has_no_wildcards(template: dict[str, Any]) -> None:
    conditions = json.dumps(trust_statement(template)["Condition"])

    assert "*" not in conditions
    assert "?" not in conditions


@pytest.mark.parametrize(
    ("subject", "allowed"),
    [
        (BRANCH_SUBJECT, True),
        (ENVIRONMENT_SUBJECT, True),
        (PULL_REQUEST_SUBJECT, False),
        (f"repo:{REPOSITORY}:ref:refs/heads/feature", False),
        (f"repo:{REPOSITORY}:ref:refs/tags/v1", False),
        (f"repo:{REPOSITORY}:environment:staging", False),
        ("repo:fork-owner/octo-repo:ref:refs/heads/main", False),
        ("repo:octo-org/octo-repo-fork:environment:production", False),
    ],
)
def test_trust_policy_subjects(template: dict[str, Any], subject: str, allowed: bool) -> None:
    statement = trust_statement(template)

    assert trust_allows(statement, {"aud": "sts.amazonaws.com", "sub": subject}) is allowed


def test_trust_policy_requires_sts_audience(template: dict[str, Any]) -> None:
    statement = trust_statement(template)

    assert not trust_allows(
        statement, {"aud": "https://github.com/octo-org", "sub": BRANCH_SUBJECT}
    )
    assert not trust_allows(statement, {"sub": BRANCH_SUBJECT})


def test_role_permissions_are_exact(template: dict[str, Any]) -> None:
    bucket = logical_id(template, "AWS::S3::Bucket", "BundleBucket")
    machine = logical_id(template, "AWS::StepFunctions::StateMachine", "DeploymentStateMachine")
    table = logical_id(template, "AWS::DynamoDB::GlobalTable", "DeploymentTable")

    def partition_arn(suffix: str) -> dict[str, Any]:
        return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, suffix]]}

    assert role_statements(template) == [
        {
            "Sid": "UploadBundles",
            "Action": "s3:PutObject",
            "Effect": "Allow",
            "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/bundles/*"]]},
        },
        {
            "Sid": "StartDeployments",
            "Action": "states:StartExecution",
            "Effect": "Allow",
            "Resource": {"Ref": machine},
        },
        {
            "Sid": "FollowDeployments",
            "Action": [
                "states:DescribeExecution",
                "states:GetExecutionHistory",
                "states:DescribeStateMachineForExecution",
            ],
            "Effect": "Allow",
            "Resource": partition_arn(
                f":states:{REGION}:{ACCOUNT}:execution:EbControlPlane-deployments:*"
            ),
        },
        {
            "Sid": "FindControlPlane",
            "Action": "cloudformation:DescribeStacks",
            "Effect": "Allow",
            "Resource": partition_arn(f":cloudformation:{REGION}:{ACCOUNT}:stack/EbControlPlane/*"),
        },
        {
            "Sid": "ReadOutcome",
            "Action": "dynamodb:GetItem",
            "Condition": {
                "ForAllValues:StringEquals": {
                    "dynamodb:LeadingKeys": ["ENV#dev", "ENV#prod", "ENV#staging"]
                }
            },
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [table, "Arn"]},
        },
        {
            "Sid": "FindAppUrl",
            "Action": "elasticbeanstalk:DescribeEnvironments",
            "Effect": "Allow",
            "Resource": [
                partition_arn(f":elasticbeanstalk:{region}:{ACCOUNT}:environment/{name}/{name}")
                for region, name in (
                    ("eu-west-1", "webapp-prod"),
                    (REGION, "webapp-dev"),
                    (REGION, "webapp-staging"),
                )
            ],
        },
    ]


def test_role_session_and_output(template: dict[str, Any]) -> None:
    role_id, role = deploy_role(template)

    assert role["Properties"]["MaxSessionDuration"] == MAX_SESSION_SECONDS == 10800
    assert template["Outputs"][ROLE_ARN_OUTPUT]["Value"] == {"Fn::GetAtt": [role_id, "Arn"]}


def test_state_machine_outputs_still_present(template: dict[str, Any]) -> None:
    assert {"StateMachineArn", "BundleBucketName", "TableName"} <= set(template["Outputs"])


def test_sandbox_loads_template_with_role(template: dict[str, Any], tmp_path: Path) -> None:
    from control_plane.sandbox.template import load_resources

    path = tmp_path / "EbControlPlane.template.json"
    path.write_text(json.dumps(template))

    loaded = load_resources(path, REGION, ACCOUNT)

    assert loaded.state_machine_name == "EbControlPlane-deployments"


def test_bundle_upload_key_under_policy_prefix() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="bundles-test")
        uri = upload_bundle(s3, "bundles-test", "dev", b"PK\x05\x06" + b"\0" * 18)
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket="bundles-test")["Contents"]]

    assert uri == f"s3://bundles-test/{keys[0]}"
    assert keys[0].startswith(BUNDLE_KEY_PREFIX)


def test_imported_provider_is_not_created() -> None:
    template = build_role_template(
        settings_with({**GITHUB_BOTH, "oidc_provider_arn": IMPORTED_PROVIDER})
    )

    assert resources(template, "AWS::IAM::OIDCProvider") == {}
    assert trust_statement(template)["Principal"] == {"Federated": IMPORTED_PROVIDER}


def test_default_stack_has_no_github_role() -> None:
    from control_plane.sandbox.template import synthesize

    template = json.loads(synthesize(REPO_ROOT / ".sandbox" / "cdk-cache").read_text())

    assert resources(template, "AWS::IAM::OIDCProvider") == {}
    assert ROLE_ARN_OUTPUT not in template["Outputs"]
    assert "sts:AssumeRoleWithWebIdentity" not in json.dumps(template)


# --- a job with a GitHub environment against a role that trusts the branch ------------------


def test_branch_only_role_denies_environment_job() -> None:
    template = build_role_template(settings_with(GITHUB_BRANCH_ONLY))
    statement = trust_statement(template)

    assert trust_allows(statement, {"aud": "sts.amazonaws.com", "sub": BRANCH_SUBJECT})
    assert not trust_allows(statement, {"aud": "sts.amazonaws.com", "sub": ENVIRONMENT_SUBJECT})


def test_role_for_environment_accepts_environment_job() -> None:
    template = build_role_template(
        settings_with({"repository": REPOSITORY, "environments": ["production"]})
    )
    statement = trust_statement(template)

    assert trust_allows(statement, {"aud": "sts.amazonaws.com", "sub": ENVIRONMENT_SUBJECT})
    assert not trust_allows(statement, {"aud": "sts.amazonaws.com", "sub": BRANCH_SUBJECT})


# --- check-subject --------------------------------------------------------------------------


def fake_token(claims: dict[str, Any]) -> str:
    def part(document: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


class TokenServer:
    """GitHub's token endpoint on 127.0.0.1: returns a token whose `sub` is `subject`."""

    def __init__(self, subject: str) -> None:
        self.requests: list[tuple[str, str | None]] = []
        token = fake_token({"sub": subject, "aud": "sts.amazonaws.com"})
        requests = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append((self.path, self.headers.get("Authorization")))
                body = json.dumps({"count": 1, "value": token}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token?api-version=2.0"

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def job_environment(event: str = "push", ref: str = "refs/heads/main") -> dict[str, str]:
    return {
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_REF": ref,
        "GITHUB_EVENT_NAME": event,
        "GITHUB_REPOSITORY_OWNER_ID": "123456",
        "GITHUB_REPOSITORY_ID": "456789",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "",
    }


def write_environments(tmp_path: Path, github: dict[str, Any]) -> Path:
    document = yaml.safe_load((REPO_ROOT / "environments.yaml").read_text())
    document["github"] = github
    path = tmp_path / "environments.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def check_subject(environment: dict[str, str], environments_file: Path, *arguments: str) -> Any:
    return CliRunner().invoke(
        action_main,
        ["check-subject", "--environments-file", str(environments_file), *arguments],
        env=environment,
    )


@pytest.mark.parametrize(
    ("job", "immutable", "subject"),
    [
        (JobContext(REPOSITORY, "refs/heads/main", "push", ""), False, BRANCH_SUBJECT),
        (
            JobContext(REPOSITORY, "refs/tags/v1", "push", ""),
            False,
            f"repo:{REPOSITORY}:ref:refs/tags/v1",
        ),
        (
            JobContext(REPOSITORY, "refs/pull/7/merge", "pull_request", ""),
            False,
            PULL_REQUEST_SUBJECT,
        ),
        (
            JobContext(REPOSITORY, "refs/heads/main", "push", "production"),
            False,
            ENVIRONMENT_SUBJECT,
        ),
        (
            JobContext(REPOSITORY, "refs/pull/7/merge", "pull_request", "production"),
            False,
            ENVIRONMENT_SUBJECT,
        ),
        (
            JobContext(REPOSITORY, "refs/heads/main", "push", "Prod:V1"),
            False,
            f"repo:{REPOSITORY}:environment:Prod%3AV1",
        ),
        (
            JobContext(REPOSITORY, "refs/heads/main", "push", "", "123456", "456789"),
            True,
            "repo:octo-org@123456/octo-repo@456789:ref:refs/heads/main",
        ),
    ],
)
def test_job_subject_formats(job: JobContext, immutable: bool, subject: str) -> None:
    assert job_subject(job, immutable=immutable) == subject


def test_check_subject_accepts_trusted_branch(tmp_path: Path) -> None:
    environments_file = write_environments(tmp_path, GITHUB_BRANCH_ONLY)
    with TokenServer(BRANCH_SUBJECT) as server:
        environment = {
            **job_environment(),
            "ACTIONS_ID_TOKEN_REQUEST_URL": server.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
        }
        result = check_subject(environment, environments_file)

    assert result.exit_code == 0, result.output
    assert (
        f"OIDC subject of this job: {BRANCH_SUBJECT} (from the job's OIDC token)" in result.output
    )
    assert f"  {BRANCH_SUBJECT}" in result.output
    path, authorization = server.requests[0]
    assert path == "/token?api-version=2.0&audience=sts.amazonaws.com"
    assert authorization == "bearer request-token"
    assert "request-token" not in result.output


def test_check_subject_explains_environment_job(tmp_path: Path) -> None:
    # The job declares a GitHub environment, so its token names it, and the role trusts the branch.
    environments_file = write_environments(tmp_path, GITHUB_BRANCH_ONLY)
    with TokenServer(ENVIRONMENT_SUBJECT) as server:
        environment = {
            **job_environment(),
            "ACTIONS_ID_TOKEN_REQUEST_URL": server.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
        }
        result = check_subject(environment, environments_file, "--github-environment", "production")

    assert result.exit_code == 1
    assert f"this job's subject is {ENVIRONMENT_SUBJECT}" in result.output
    assert f"the role trusts only: {BRANCH_SUBJECT}" in result.output
    assert "declares the GitHub environment 'production'" in result.output
    assert "Add it to github.environments" in result.output
    assert "::error title=OIDC subject not trusted by the deploy role::" in result.output


def test_check_subject_prefers_token_over_inputs(tmp_path: Path) -> None:
    # The workflow forgot github-environment: the token still names the environment.
    environments_file = write_environments(tmp_path, GITHUB_BOTH)
    with TokenServer(ENVIRONMENT_SUBJECT) as server:
        environment = {
            **job_environment(),
            "ACTIONS_ID_TOKEN_REQUEST_URL": server.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
        }
        result = check_subject(environment, environments_file)

    assert result.exit_code == 0, result.output
    assert f"github-environment give {BRANCH_SUBJECT}" in result.output
    assert f"OIDC subject of this job: {ENVIRONMENT_SUBJECT}" in result.output


def test_check_subject_falls_back_to_computed(tmp_path: Path) -> None:
    environments_file = write_environments(
        tmp_path, {"repository": REPOSITORY, "environments": ["production"]}
    )
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    environment = {
        **job_environment(),
        "ACTIONS_ID_TOKEN_REQUEST_URL": f"http://127.0.0.1:{closed_port}/token?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
    }

    result = check_subject(environment, environments_file)

    assert result.exit_code == 1
    assert "warning: could not read the job's OIDC token" in result.output
    assert f"OIDC subject of this job: {BRANCH_SUBJECT} (computed from" in result.output
    assert "The role trusts only jobs that declare a GitHub environment" in result.output
    assert "pass the same name as the github-environment input" in result.output


def test_check_subject_rejects_pull_request(tmp_path: Path) -> None:
    environments_file = write_environments(tmp_path, GITHUB_BOTH)
    with TokenServer(PULL_REQUEST_SUBJECT) as server:
        environment = {
            **job_environment("pull_request", "refs/pull/7/merge"),
            "ACTIONS_ID_TOKEN_REQUEST_URL": server.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
        }
        result = check_subject(environment, environments_file)

    assert result.exit_code == 1
    assert f"this job's subject is {PULL_REQUEST_SUBJECT}" in result.output
    assert "including pull requests from forks" in result.output


def test_check_subject_rejects_pull_request_target(tmp_path: Path) -> None:
    environments_file = write_environments(tmp_path, GITHUB_BOTH)
    result = check_subject(job_environment("pull_request_target"), environments_file)

    assert result.exit_code == 1
    assert "pull_request_target" in result.output


def test_check_subject_without_id_token_permission(tmp_path: Path) -> None:
    environments_file = write_environments(tmp_path, GITHUB_BOTH)
    result = check_subject(job_environment(), environments_file)

    assert result.exit_code == 1
    assert "permissions: id-token: write" in result.output
    assert f"Its subject would be {BRANCH_SUBJECT}" in result.output


def test_check_subject_reads_accepted_input(tmp_path: Path) -> None:
    with TokenServer(ENVIRONMENT_SUBJECT) as server:
        environment = {
            **job_environment(),
            "ACTIONS_ID_TOKEN_REQUEST_URL": server.url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
        }
        result = check_subject(
            environment,
            tmp_path / "missing.yaml",
            "--accepted-subjects",
            f"{BRANCH_SUBJECT}\n{ENVIRONMENT_SUBJECT}\n",
        )

    assert result.exit_code == 0, result.output
    assert "(the accepted-subjects input)" in result.output


def test_check_subject_without_github_section() -> None:
    result = check_subject(job_environment(), REPO_ROOT / "environments.yaml")

    assert result.exit_code == 1
    assert "has no github section" in result.output


# --- request-id ------------------------------------------------------------------------------


@pytest.fixture
def state_machine() -> Iterator[tuple[Any, str]]:
    # Executions stay RUNNING even when a sandbox in this worker turned execution on.
    with mock_aws(config={"stepfunctions": {"execute_state_machine": False}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        arn = sfn.create_state_machine(
            name="EbControlPlane-deployments",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/machine",
        )["stateMachineArn"]
        yield sfn, arn


def start(sfn: Any, machine: str, request_id: str) -> str:
    return sfn.start_execution(
        stateMachineArn=machine, name=execution_name("dev", request_id), input="{}"
    )["executionArn"]


def test_request_id_first_attempt(state_machine: tuple[Any, str]) -> None:
    sfn, machine = state_machine

    assert choose_request_id(sfn, machine, "dev", "42", 1)[0] == "gh-42-1"
    assert choose_request_id(sfn, machine, "dev", "42", 2)[0] == "gh-42-2"


def test_request_id_rerun_attaches_to_running(state_machine: tuple[Any, str]) -> None:
    sfn, machine = state_machine
    arn = start(sfn, machine, "gh-42-1")

    request_id, reason = choose_request_id(sfn, machine, "dev", "42", 3)

    assert request_id == "gh-42-1"
    assert arn in reason
    assert "RUNNING" in reason


def test_request_id_rerun_reports_succeeded(state_machine: tuple[Any, str]) -> None:
    from moto.stepfunctions.models import stepfunctions_backends

    sfn, machine = state_machine
    arn = start(sfn, machine, "gh-42-1")
    # moto never runs an execution to its end, so its model is set to the succeeded status.
    executions = stepfunctions_backends[ACCOUNT][REGION].describe_state_machine(machine).executions
    next(item for item in executions if item.execution_arn == arn).status = "SUCCEEDED"

    assert choose_request_id(sfn, machine, "dev", "42", 2)[0] == "gh-42-1"


def test_request_id_rerun_after_failure_deploys_again(state_machine: tuple[Any, str]) -> None:
    sfn, machine = state_machine
    sfn.stop_execution(executionArn=start(sfn, machine, "gh-42-1"))

    request_id, reason = choose_request_id(sfn, machine, "dev", "42", 2)

    assert request_id == "gh-42-2"
    assert "ended ABORTED" in reason


def test_request_id_ignores_other_environment(state_machine: tuple[Any, str]) -> None:
    sfn, machine = state_machine
    sfn.start_execution(stateMachineArn=machine, name=execution_name("prod", "gh-42-1"), input="{}")

    assert choose_request_id(sfn, machine, "dev", "42", 2)[0] == "gh-42-2"


def test_request_id_command_writes_output(state_machine: tuple[Any, str], tmp_path: Path) -> None:
    sfn, machine = state_machine
    start(sfn, machine, "gh-42-1")
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="EbControlPlane",
        TemplateBody=json.dumps(
            {
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"StateMachineArn": {"Value": machine}},
            }
        ),
    )
    output_file = tmp_path / "github-output"

    result = CliRunner().invoke(
        action_main,
        ["request-id", "-e", "dev", "--run-id", "42", "--run-attempt", "2", "--region", REGION],
        env={"GITHUB_OUTPUT": str(output_file)},
    )

    assert result.exit_code == 0, result.output
    assert output_file.read_text() == "request-id=gh-42-1\n"


# --- annotate and the deploy step -----------------------------------------------------------


def test_annotate_names_error_and_cause(tmp_path: Path) -> None:
    log = tmp_path / "deploy.log"
    log.write_text(
        "  [ 9] WaitForDeployment\n"
        "outcome      RolledBack (FAILED)\n"
        "error        RolledBack: health 100% Red, rolled back to v1\n"
    )

    result = CliRunner().invoke(action_main, ["annotate", "--log", str(log), "--exit-code", "10"])

    assert result.output == (
        "::error title=Deployment failed%3A RolledBack::"
        "health 100%25 Red, rolled back to v1 (exit status 10)\n"
    )


def test_annotate_reports_usage_error(tmp_path: Path) -> None:
    log = tmp_path / "deploy.log"
    log.write_text("Error: bundle rejected: no application.py\n")

    result = CliRunner().invoke(action_main, ["annotate", "--log", str(log), "--exit-code", "13"])

    assert result.output == (
        "::error title=control-plane deploy failed::"
        "bundle rejected: no application.py (exit status 13)\n"
    )


def load_action() -> dict[str, Any]:
    return yaml.safe_load(ACTION_FILE.read_text())


def step_named(steps: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(step for step in steps if step.get("name") == name)


def run_deploy_step(tmp_path: Path, cli_exit: int) -> subprocess.CompletedProcess[str]:
    """Run the action's Deploy script with a stand-in `control-plane` that fails as asked."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_cli = bin_dir / "control-plane"
    fake_cli.write_text(
        "#!/bin/bash\n"
        'echo "deploy args: $*"\n'
        'echo "  [ 1] ValidateRequest"\n'
        f'if [ {cli_exit} -ne 0 ]; then echo "error        DeploymentFailed: Red health"; fi\n'
        f"exit {cli_exit}\n"
    )
    fake_cli.chmod(0o755)
    (bin_dir / "python").symlink_to(REPO_ROOT / ".venv" / "bin" / "python")
    script = step_named(load_action()["runs"]["steps"], "Deploy")["run"]
    environment = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "RUNNER_TEMP": str(tmp_path),
        "DEPLOY_ENVIRONMENT": "dev",
        "DEPLOY_VERSION": "v7",
        "DEPLOY_BUNDLE_PATH": "samples/webapp",
        "DEPLOY_REGION": REGION,
        "DEPLOY_REQUEST_ID": "gh-42-1",
    }
    return subprocess.run(
        ["bash", "-c", script],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_deploy_step_fails_with_cli_status(tmp_path: Path) -> None:
    result = run_deploy_step(tmp_path, 21)

    assert result.returncode == 21
    assert "  [ 1] ValidateRequest" in result.stdout
    assert "::error title=Deployment failed%3A DeploymentFailed::Red health" in result.stdout


def test_deploy_step_passes_request_id(tmp_path: Path) -> None:
    result = run_deploy_step(tmp_path, 0)

    assert result.returncode == 0, result.stderr
    assert (
        "deploy args: deploy --environment dev --version v7 --bundle samples/webapp "
        "--request-id gh-42-1 --region us-east-1"
    ) in result.stdout
    assert "::error" not in result.stdout


# --- lint of action.yml and the example workflow --------------------------------------------


def test_action_inputs() -> None:
    inputs = load_action()["inputs"]

    for name in ("environment", "version", "bundle-path", "role-arn", "region"):
        assert inputs[name]["required"] is True, name
    assert inputs["session-seconds"]["default"] == str(MAX_SESSION_SECONDS)


@pytest.mark.parametrize("path", [ACTION_FILE, WORKFLOW_FILE], ids=["action", "workflow"])
def test_third_party_actions_pinned_by_sha(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    steps = (
        document["runs"]["steps"]
        if "runs" in document
        else [step for job in document["jobs"].values() for step in job["steps"]]
    )
    uses = [step["uses"] for step in steps if "uses" in step and step["uses"] != "./"]
    lines = [line.strip() for line in path.read_text().splitlines() if "uses:" in line]

    assert uses
    for reference in uses:
        assert PINNED_ACTION.match(reference), reference
    for line in lines:
        assert line.endswith("uses: ./") or PINNED_LINE.search(line), line


def test_action_shell_steps_set_pipefail() -> None:
    steps = load_action()["runs"]["steps"]
    scripts = [step for step in steps if "run" in step]

    assert len(scripts) == 5
    for step in scripts:
        assert step["shell"] == "bash", step["name"]
        assert step["run"].splitlines()[0] == "set -euo pipefail", step["name"]
        # Inputs reach scripts through env, never as ${{ }} expanded into the script text.
        assert "${{" not in step["run"], step["name"]
        syntax = subprocess.run(["bash", "-n", "-c", step["run"]], capture_output=True, text=True)
        assert syntax.returncode == 0, f"{step['name']}: {syntax.stderr}"


def test_action_checks_subject_before_credentials() -> None:
    names = [step.get("name") for step in load_action()["runs"]["steps"]]
    credentials = names.index("Assume the deploy role")

    assert names.index("Check the job's OIDC subject") < credentials
    assert names.index("Build the bundle") < credentials
    assert credentials < names.index("Choose the request id") < names.index("Deploy")


def test_action_assumes_role_for_run_attempt() -> None:
    steps = load_action()["runs"]["steps"]
    credentials = step_named(steps, "Assume the deploy role")
    deploy = step_named(steps, "Deploy")

    assert credentials["uses"].startswith("aws-actions/configure-aws-credentials@")
    assert credentials["with"]["role-to-assume"] == "${{ inputs.role-arn }}"
    assert credentials["with"]["role-duration-seconds"] == "${{ inputs.session-seconds }}"
    assert step_named(steps, "Choose the request id")["id"] == "request"
    assert deploy["env"]["DEPLOY_REQUEST_ID"] == "${{ steps.request.outputs.request-id }}"


def test_example_workflow_permissions() -> None:
    workflow = yaml.safe_load(WORKFLOW_FILE.read_text())
    job = workflow["jobs"]["deploy"]
    action_step = next(step for step in job["steps"] if step.get("uses") == "./")

    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    # PyYAML reads the key `on` as True.
    assert set(workflow[True]) == {"workflow_dispatch"}
    assert action_step["with"]["github-environment"] == job["environment"]
