"""Infra tier: the Pulumi program of the web app, run for each stack under Pulumi's mocks.

Each run uses the stack's real Pulumi.<stack>.yaml config (plus a `db:password` secret where
the database is on) and records every resource the program registers, with its options.
"""

from __future__ import annotations

import importlib
import inspect
import json
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import mocks, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
STACKS = ("dev", "staging", "prod")
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
EXPECTED_REGION = {"dev": "us-east-1", "staging": "us-east-1", "prod": "eu-west-1"}
DB_PASSWORD = "correct-horse-battery"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    ignore_changes: list[str]
    depends_on: list[str]


@dataclass
class ProgramRun:
    resources: list[Registered] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)

    def of_type(self, type_token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Registered:
        found = self.of_type(type_token)
        assert len(found) == 1, f"expected one {type_token}, found {len(found)}"
        return found[0]


class _Mocks(pulumi.runtime.Mocks):
    """Outputs like the AWS provider's: autonamed names, ARNs, the EB CNAME, RDS address."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        resource_id = f"{args.name}-id"
        if args.typ == "aws:s3/bucketV2:BucketV2":
            resource_id = outputs.setdefault("bucket", f"{args.name}-abc1234")
            outputs["arn"] = f"arn:aws:s3:::{resource_id}"
        elif args.typ in ("aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile"):
            outputs.setdefault("name", f"{args.name}-abc1234")
            outputs["arn"] = f"arn:aws:iam::123456789012:role/{outputs['name']}"
        elif args.typ == "aws:ec2/securityGroup:SecurityGroup":
            resource_id = f"sg-{args.name}"
        elif args.typ == "aws:rds/instance:Instance":
            outputs["address"] = f"{args.name}.example.rds.amazonaws.com"
        elif args.typ == "aws:elasticbeanstalk/environment:Environment":
            resource_id = "e-abcdef1234"
            outputs["cname"] = f"{outputs['name']}.elasticbeanstalk.com"
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        raise AssertionError(f"the program should make no provider calls, made {args.token}")


class _RecordingMonitor(mocks.MockMonitor):
    """Mock monitor that also records each registration's options."""

    def __init__(self, run: ProgramRun) -> None:
        super().__init__(_Mocks())
        self.run = run

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.custom:
            from pulumi.runtime import rpc

            self.run.resources.append(
                Registered(
                    type=request.type,
                    name=request.name,
                    inputs=rpc.deserialize_properties(request.object),
                    ignore_changes=list(request.ignoreChanges),
                    depends_on=list(request.dependencies),
                )
            )
        return response


def stack_config(stack: str, *, with_password: bool = True) -> tuple[dict[str, str], list[str]]:
    """The stack file's config as strings, plus `db:password` when the database is on."""
    data = yaml.safe_load((INFRA_DIR / f"Pulumi.{stack}.yaml").read_text())
    config = {}
    for key, value in data["config"].items():
        if isinstance(value, bool):
            config[key] = "true" if value else "false"
        else:
            config[key] = str(value)
    secret_keys: list[str] = []
    if with_password and config.get("webapp:database") == "true":
        config["db:password"] = DB_PASSWORD
        secret_keys.append("db:password")
    return config, secret_keys


def run_program(stack: str, config: dict[str, str], secret_keys: list[str]) -> ProgramRun:
    run = ProgramRun()
    settings.ROOT.set(None)
    settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_mocks(
        _Mocks(), project="webapp", stack=stack, preview=False, monitor=_RecordingMonitor(run)
    )
    set_all_config(config, secret_keys)
    sys.path.insert(0, str(INFRA_DIR))
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(INFRA_DIR / "__main__.py"))))
        root = settings.get_root_resource()
        run.exports = _sync_await(_resolve(root.outputs))
    finally:
        sys.path.remove(str(INFRA_DIR))
    return run


async def _resolve(exports: dict[str, Any]) -> dict[str, Any]:
    return {name: await pulumi.Output.from_input(value).future() for name, value in exports.items()}


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def program(stack: str) -> ProgramRun:
    config, secret_keys = stack_config(stack)
    return run_program(stack, config, secret_keys)


def _is_taggable(type_token: str) -> bool:
    """Whether the pulumi-aws resource class for this type accepts `tags`."""
    _, module_path, class_name = type_token.split(":")
    module = importlib.import_module(f"pulumi_aws.{module_path.split('/')[0]}")
    resource_class = getattr(module, class_name)
    return "tags" in inspect.signature(resource_class._internal_init).parameters


def _settings(environment: Registered) -> dict[tuple[str, str], str]:
    return {(s["namespace"], s["name"]): s["value"] for s in environment.inputs["settings"]}


# Stack files ------------------------------------------------------------------------------


def test_stack_file_region(stack: str) -> None:
    config, _ = stack_config(stack)

    assert config["aws:region"] == EXPECTED_REGION[stack]


def test_stack_file_uses_passphrase_provider(stack: str) -> None:
    data = yaml.safe_load((INFRA_DIR / f"Pulumi.{stack}.yaml").read_text())

    assert data["secretsprovider"] == "passphrase"
    assert all(not isinstance(value, dict) for value in data["config"].values()), (
        "no secret may be committed in a stack file"
    )


def test_dev_stack_turns_database_on() -> None:
    config, secret_keys = stack_config("dev")

    assert config["webapp:database"] == "true"
    assert secret_keys == ["db:password"]


# Exports ----------------------------------------------------------------------------------


def test_exports_have_contract_names(program: ProgramRun, stack: str) -> None:
    assert set(program.exports) == {
        "ebEnvironmentName",
        "ebApplicationName",
        "environmentUrl",
        "healthCheckUrl",
        "appVersionsBucketName",
    }
    assert program.exports["ebEnvironmentName"] == f"webapp-{stack}"
    assert program.exports["ebApplicationName"] == f"webapp-{stack}"


def test_exports_urls_use_environment_cname(program: ProgramRun, stack: str) -> None:
    url = f"http://webapp-{stack}.elasticbeanstalk.com"

    assert program.exports["environmentUrl"] == url
    assert program.exports["healthCheckUrl"] == f"{url}/health"


def test_exports_bucket_name(program: ProgramRun) -> None:
    bucket = program.one("aws:s3/bucketV2:BucketV2")

    assert program.exports["appVersionsBucketName"] == f"{bucket.name}-abc1234"


# Tags -------------------------------------------------------------------------------------


def test_tags_on_every_taggable_resource(program: ProgramRun, stack: str) -> None:
    expected = {"project": "webapp", "environment": stack, "managed-by": "pulumi"}
    taggable = [r for r in program.resources if _is_taggable(r.type)]

    assert len(taggable) >= 7
    for resource in taggable:
        assert resource.inputs.get("tags") == expected, f"{resource.type} {resource.name}"


# Elastic Beanstalk ------------------------------------------------------------------------


def test_environment_named_exactly(program: ProgramRun, stack: str) -> None:
    environment = program.one("aws:elasticbeanstalk/environment:Environment")
    application = program.one("aws:elasticbeanstalk/application:Application")

    assert environment.inputs["name"] == f"webapp-{stack}"
    assert environment.inputs["application"] == f"webapp-{stack}"
    assert application.inputs["name"] == f"webapp-{stack}"


def test_environment_options(program: ProgramRun) -> None:
    environment = program.one("aws:elasticbeanstalk/environment:Environment")
    options = _settings(environment)

    assert environment.inputs["solutionStackName"].endswith("running Python 3.12")
    assert environment.inputs["tier"] == "WebServer"
    assert options[("aws:elasticbeanstalk:environment", "EnvironmentType")] == "LoadBalanced"
    assert options[("aws:elasticbeanstalk:environment", "LoadBalancerType")] == "application"
    assert options[("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath")] == (
        "/health"
    )
    assert options[("aws:elasticbeanstalk:healthreporting:system", "SystemType")] == "enhanced"
    assert options[("aws:elasticbeanstalk:command", "DeploymentPolicy")] == "Rolling"
    assert options[("aws:elasticbeanstalk:managedactions", "ManagedActionsEnabled")] == "true"
    assert options[("aws:elasticbeanstalk:managedactions:platformupdate", "UpdateLevel")] == (
        "minor"
    )


def test_environment_uses_roles_and_instance_group(program: ProgramRun, stack: str) -> None:
    options = _settings(program.one("aws:elasticbeanstalk/environment:Environment"))
    service_role = f"webapp-{stack}-eb-service-abc1234"

    assert options[("aws:elasticbeanstalk:environment", "ServiceRole")] == (
        f"arn:aws:iam::123456789012:role/{service_role}"
    )
    assert options[("aws:autoscaling:launchconfiguration", "IamInstanceProfile")] == (
        f"webapp-{stack}-eb-instance-abc1234"
    )
    assert options[("aws:autoscaling:launchconfiguration", "SecurityGroups")] == (
        f"sg-webapp-{stack}-instances"
    )


def test_environment_instance_counts(program: ProgramRun, stack: str) -> None:
    config, _ = stack_config(stack)
    options = _settings(program.one("aws:elasticbeanstalk/environment:Environment"))

    assert options[("aws:autoscaling:asg", "MinSize")] == config["webapp:minInstances"]
    assert options[("aws:autoscaling:asg", "MaxSize")] == config["webapp:maxInstances"]
    assert options[("aws:ec2:instances", "InstanceTypes")] == config["webapp:instanceType"]


def test_environment_returns_before_ready(program: ProgramRun) -> None:
    environment = program.one("aws:elasticbeanstalk/environment:Environment")

    assert environment.inputs["waitForReadyTimeout"] == "0"


def test_environment_ignores_version(program: ProgramRun) -> None:
    environment = program.one("aws:elasticbeanstalk/environment:Environment")

    assert environment.ignore_changes == ["version"]
    assert "version" not in environment.inputs


# App versions bucket ----------------------------------------------------------------------


def test_bucket_encrypted(program: ProgramRun) -> None:
    encryption = program.one(
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
    )
    rule = encryption.inputs["rules"][0]

    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    assert rule["bucketKeyEnabled"] is True


def test_bucket_versioned(program: ProgramRun) -> None:
    versioning = program.one("aws:s3/bucketVersioningV2:BucketVersioningV2")

    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"


def test_bucket_blocks_public_access(program: ProgramRun) -> None:
    block = program.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    ownership = program.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")

    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block.inputs[flag] is True, flag
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_bucket_policy_denies_plain_http(program: ProgramRun) -> None:
    bucket = program.one("aws:s3/bucketV2:BucketV2")
    policy = json.loads(program.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    statement = policy["Statement"][0]
    arn = f"arn:aws:s3:::{bucket.name}-abc1234"

    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [arn, f"{arn}/*"]


# Database ---------------------------------------------------------------------------------


def test_database_only_where_turned_on(program: ProgramRun, stack: str) -> None:
    config, _ = stack_config(stack)
    instances = program.of_type("aws:rds/instance:Instance")

    assert len(instances) == (1 if config.get("webapp:database") == "true" else 0)


def test_database_encrypted_with_secret_password() -> None:
    config, secret_keys = stack_config("dev")
    program = run_program("dev", config, secret_keys)
    database = program.one("aws:rds/instance:Instance")
    password = database.inputs["password"]

    assert database.inputs["engine"] == "postgres"
    assert database.inputs["storageEncrypted"] is True
    assert database.inputs["publiclyAccessible"] is False
    assert isinstance(password, dict) and SECRET_SIG_KEY in password, "password must be secret"
    assert password["value"] == DB_PASSWORD


def test_database_port_open_only_to_instances() -> None:
    config, secret_keys = stack_config("dev")
    program = run_program("dev", config, secret_keys)
    groups = {g.name: g for g in program.of_type("aws:ec2/securityGroup:SecurityGroup")}
    database_group = groups["webapp-dev-db-sg"]
    instance_group = groups["webapp-dev-instances"]

    assert len(database_group.inputs["ingress"]) == 1
    rule = database_group.inputs["ingress"][0]
    assert rule["protocol"] == "tcp"
    assert rule["fromPort"] == 5432
    assert rule["toPort"] == 5432
    assert rule["securityGroups"] == ["sg-webapp-dev-instances"]
    assert "cidrBlocks" not in rule
    assert database_group.inputs.get("egress", []) == []
    assert instance_group.inputs.get("ingress", []) == []


def test_database_uses_its_group() -> None:
    config, secret_keys = stack_config("dev")
    program = run_program("dev", config, secret_keys)
    database = program.one("aws:rds/instance:Instance")

    assert database.inputs["vpcSecurityGroupIds"] == ["sg-webapp-dev-db-sg"]


def test_environment_gets_database_address() -> None:
    config, secret_keys = stack_config("dev")
    program = run_program("dev", config, secret_keys)
    options = _settings(program.one("aws:elasticbeanstalk/environment:Environment"))
    namespace = "aws:elasticbeanstalk:application:environment"

    assert options[(namespace, "DB_HOST")] == "webapp-dev-db.example.rds.amazonaws.com"
    assert options[(namespace, "DB_PORT")] == "5432"
    assert (namespace, "DB_PASSWORD") not in options


# Config errors ----------------------------------------------------------------------------


def test_missing_db_password_names_key_and_command() -> None:
    config, _ = stack_config("dev", with_password=False)

    with pytest.raises(pulumi.RunError) as raised:
        run_program("dev", config, [])

    message = str(raised.value)
    assert "db:password" in message
    assert "pulumi config set --secret db:password <value> --stack dev" in message


def test_missing_db_password_creates_nothing() -> None:
    config, _ = stack_config("dev", with_password=False)
    run = ProgramRun()
    settings.ROOT.set(None)
    settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_mocks(
        _Mocks(), project="webapp", stack="dev", preview=False, monitor=_RecordingMonitor(run)
    )
    set_all_config(config, [])
    sys.path.insert(0, str(INFRA_DIR))
    try:
        with pytest.raises(pulumi.RunError):
            _sync_await(run_pulumi_func(lambda: runpy.run_path(str(INFRA_DIR / "__main__.py"))))
    finally:
        sys.path.remove(str(INFRA_DIR))

    assert run.resources == []


@pytest.mark.parametrize("stack_name", ["staging", "prod"])
def test_database_off_needs_no_password(stack_name: str) -> None:
    config, secret_keys = stack_config(stack_name, with_password=False)

    program = run_program(stack_name, config, secret_keys)

    assert program.of_type("aws:rds/instance:Instance") == []


def test_min_above_max_instances_rejected() -> None:
    config, secret_keys = stack_config("staging")
    config["webapp:minInstances"] = "5"
    config["webapp:maxInstances"] = "2"

    with pytest.raises(pulumi.RunError, match="webapp:minInstances"):
        run_program("staging", config, secret_keys)


def test_health_check_path_from_config() -> None:
    config, secret_keys = stack_config("staging")
    config["webapp:healthCheckPath"] = "/status"

    program = run_program("staging", config, secret_keys)
    options = _settings(program.one("aws:elasticbeanstalk/environment:Environment"))

    assert options[("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath")] == (
        "/status"
    )
    assert program.exports["healthCheckUrl"].endswith("/status")
