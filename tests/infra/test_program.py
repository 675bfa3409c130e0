"""Infra tier: the Pulumi program of the web app, run for each stack under Pulumi's mocks.

Each run uses the stack's real Pulumi.<stack>.yaml config (plus a `db:password` secret where
the database is on) and records every resource the program registers, with its options.
The optional parts (custom domains, SSH key pair, extra buckets) also run as config
variants on top of each stack's file.
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
DOMAIN_KEYS = ("webapp:domains", "webapp:hostedZoneId", "webapp:hostedZoneName")
TEST_ZONE_ID = "ZTESTZONE0123456789"
LOOKED_UP_ZONE_ID = "ZLOOKEDUP0123456789"
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"
CLOUDFRONT_DOMAIN_NAME = "d111111abcdef8.cloudfront.net"
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyBodyForTheTestsOnly00 ops@example"
PROVIDER_TYPE = "pulumi:providers:aws"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    ignore_changes: list[str]
    depends_on: list[str]
    provider: str


@dataclass
class ProgramRun:
    resources: list[Registered] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # (type, name) of every component resource, such as the buckets' components.
    components: list[tuple[str, str]] = field(default_factory=list)

    def of_type(self, type_token: str) -> list[Registered]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str) -> Registered:
        found = self.of_type(type_token)
        assert len(found) == 1, f"expected one {type_token}, found {len(found)}"
        return found[0]


class _Mocks(pulumi.runtime.Mocks):
    """Outputs like the AWS provider's: autonamed names, ARNs, the EB CNAME, RDS address.

    ACM validation records, CloudFront's domain name and the key pair's name follow the
    shapes AWS returns. Route 53's getZone is the only provider function the mocks implement.
    """

    def __init__(self, run: ProgramRun | None = None) -> None:
        self.run = run

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
        elif args.typ == "aws:acm/certificate:Certificate":
            outputs["arn"] = f"arn:aws:acm:us-east-1:123456789012:certificate/{args.name}"
            domains = [outputs["domainName"], *outputs.get("subjectAlternativeNames", [])]
            outputs["domainValidationOptions"] = [_validation_option(d) for d in domains]
        elif args.typ == "aws:acm/certificateValidation:CertificateValidation":
            resource_id = outputs["certificateArn"]
        elif args.typ == "aws:route53/record:Record":
            outputs["fqdn"] = outputs["name"].removesuffix(".")
        elif args.typ == "aws:cloudfront/distribution:Distribution":
            resource_id = "E2EXAMPLE1234"
            outputs["domainName"] = CLOUDFRONT_DOMAIN_NAME
            outputs["hostedZoneId"] = CLOUDFRONT_ZONE_ID
            outputs["arn"] = f"arn:aws:cloudfront::123456789012:distribution/{resource_id}"
        elif args.typ == "aws:ec2/keyPair:KeyPair":
            outputs["keyName"] = f"{outputs['keyNamePrefix']}abc1234"
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        if self.run is not None:
            self.run.invokes.append((args.token, dict(args.args)))
        if args.token == "aws:route53/getZone:getZone":
            return {
                "id": LOOKED_UP_ZONE_ID,
                "zoneId": LOOKED_UP_ZONE_ID,
                "name": args.args["name"],
                "privateZone": False,
            }
        raise AssertionError(
            f"unexpected provider function call {args.token}; the program should call only "
            "aws:route53/getZone:getZone"
        )


def _validation_option(domain: str) -> dict[str, str]:
    """Return ACM's DNS validation record for a domain. As in AWS, `*.x` and `x` share one."""
    base = domain.removeprefix("*.")
    return {
        "domainName": domain,
        "resourceRecordName": f"_0123abcd.{base}.",
        "resourceRecordType": "CNAME",
        "resourceRecordValue": f"_4567cdef.{base}.acm-validations.aws.",
    }


class _RecordingMonitor(mocks.MockMonitor):
    """Mock monitor that also records each registration's options."""

    def __init__(self, run: ProgramRun) -> None:
        super().__init__(_Mocks(run))
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
                    provider=request.provider,
                )
            )
        else:
            self.run.components.append((request.type, request.name))
        return response


def stack_config(stack: str, *, with_password: bool = True) -> tuple[dict[str, str], list[str]]:
    """The stack file's config as strings, plus `db:password` when the database is on.

    Lists and maps become JSON, as the Pulumi CLI passes structured config to programs.
    """
    data = yaml.safe_load((INFRA_DIR / f"Pulumi.{stack}.yaml").read_text())
    config = {}
    for key, value in data["config"].items():
        if isinstance(value, bool):
            config[key] = "true" if value else "false"
        elif isinstance(value, list | dict):
            config[key] = json.dumps(value)
        else:
            config[key] = str(value)
    secret_keys: list[str] = []
    if with_password and config.get("webapp:database") == "true":
        config["db:password"] = DB_PASSWORD
        secret_keys.append("db:password")
    return config, secret_keys


def run_program(stack: str, config: dict[str, str], secret_keys: list[str]) -> ProgramRun:
    run = ProgramRun()
    _start_mocks(run, stack, config, secret_keys)
    sys.path.insert(0, str(INFRA_DIR))
    try:
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(INFRA_DIR / "__main__.py"))))
        root = settings.get_root_resource()
        run.exports = _sync_await(_resolve(root.outputs))
    finally:
        sys.path.remove(str(INFRA_DIR))
    return run


def _start_mocks(
    run: ProgramRun, stack: str, config: dict[str, str], secret_keys: list[str]
) -> None:
    settings.ROOT.set(None)
    settings.SETTINGS.outputs.clear()
    monitor = _RecordingMonitor(run)
    pulumi.runtime.set_mocks(
        monitor.mocks, project="webapp", stack=stack, preview=False, monitor=monitor
    )
    set_all_config(config, secret_keys)


def run_program_expecting_error(
    stack: str, config: dict[str, str], secret_keys: list[str]
) -> tuple[str, ProgramRun]:
    """Run the program, expect a pulumi.RunError, and return its message and the run."""
    run = ProgramRun()
    _start_mocks(run, stack, config, secret_keys)
    sys.path.insert(0, str(INFRA_DIR))
    try:
        with pytest.raises(pulumi.RunError) as raised:
            _sync_await(run_pulumi_func(lambda: runpy.run_path(str(INFRA_DIR / "__main__.py"))))
    finally:
        sys.path.remove(str(INFRA_DIR))
    return str(raised.value), run


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
    """Whether the pulumi-aws resource class for this type accepts `tags`.

    Provider resources (`pulumi:providers:aws`) have `default_tags` instead and no AWS
    resource of their own, so they do not count.
    """
    if type_token.startswith("pulumi:providers:"):
        return False
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
    config, _ = stack_config(stack)
    expected = {
        "ebEnvironmentName",
        "ebApplicationName",
        "environmentUrl",
        "healthCheckUrl",
        "appVersionsBucketName",
    }
    if "webapp:domains" in config:
        expected |= {"domainUrls", "cloudfrontDomainName"}

    assert set(program.exports) == expected
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

    _, run = run_program_expecting_error("dev", config, [])

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


# Optional parts: config variants ----------------------------------------------------------

# Each variant's keys replace the stack file's. A variant that sets any domain key first
# drops the file's domain keys, so prod's example domains do not mix in.
VARIANTS: dict[str, dict[str, str]] = {
    "stack-file": {},
    "domains": {
        "webapp:domains": json.dumps(["app.example.org", "www.app.example.org"]),
        "webapp:hostedZoneId": TEST_ZONE_ID,
    },
    "one-domain": {
        "webapp:domains": json.dumps(["example.org"]),
        "webapp:hostedZoneId": TEST_ZONE_ID,
    },
    "wildcard": {
        "webapp:domains": json.dumps(["example.org", "*.example.org"]),
        "webapp:hostedZoneId": TEST_ZONE_ID,
    },
    "zone-by-name": {
        "webapp:domains": json.dumps(["app.example.org"]),
        "webapp:hostedZoneName": "example.org",
    },
    "no-domains": {},
    "ssh": {"webapp:sshPublicKey": SSH_PUBLIC_KEY},
    "buckets": {"webapp:staticSite": "true", "webapp:dashboardBucket": "true"},
    "all": {
        "webapp:domains": json.dumps(["app.example.org", "www.app.example.org"]),
        "webapp:hostedZoneId": TEST_ZONE_ID,
        "webapp:sshPublicKey": SSH_PUBLIC_KEY,
        "webapp:staticSite": "true",
        "webapp:dashboardBucket": "true",
    },
}


def variant_config(stack: str, variant: str) -> tuple[dict[str, str], list[str]]:
    config, secret_keys = stack_config(stack)
    overrides = VARIANTS[variant]
    if variant == "no-domains" or any(key in overrides for key in DOMAIN_KEYS):
        for key in DOMAIN_KEYS:
            config.pop(key, None)
    config.update(overrides)
    return config, secret_keys


def configured_domains(config: dict[str, str]) -> list[str]:
    return json.loads(config["webapp:domains"]) if "webapp:domains" in config else []


@dataclass
class VariantRun:
    stack: str
    variant: str
    config: dict[str, str]
    program: ProgramRun

    @property
    def domains(self) -> list[str]:
        return configured_domains(self.config)

    @property
    def zone_id(self) -> str:
        if "webapp:hostedZoneName" in self.config:
            return LOOKED_UP_ZONE_ID
        return self.config["webapp:hostedZoneId"]


@pytest.fixture(scope="module", params=list(VARIANTS))
def variant(request: pytest.FixtureRequest, stack: str) -> VariantRun:
    config, secret_keys = variant_config(stack, request.param)
    return VariantRun(stack, request.param, config, run_program(stack, config, secret_keys))


DOMAIN_CASES = [
    (stack_name, variant_name)
    for stack_name in STACKS
    for variant_name in VARIANTS
    if "webapp:domains" in variant_config(stack_name, variant_name)[0]
]


@pytest.fixture(scope="module", params=DOMAIN_CASES, ids=["-".join(case) for case in DOMAIN_CASES])
def with_domains(request: pytest.FixtureRequest) -> VariantRun:
    """A stack and variant with custom domains turned on."""
    stack_name, variant_name = request.param
    config, secret_keys = variant_config(stack_name, variant_name)
    program = run_program(stack_name, config, secret_keys)
    return VariantRun(stack_name, variant_name, config, program)


def _records_by_type(program: ProgramRun, record_type: str) -> list[Registered]:
    return [
        r for r in program.of_type("aws:route53/record:Record") if r.inputs["type"] == record_type
    ]


def _provider_name(reference: str) -> str:
    """Return the resource name in a provider reference `<urn>::<id>`."""
    urn, _, _ = reference.rpartition("::")
    return urn.rsplit("::", 1)[-1]


# Custom domains ---------------------------------------------------------------------------


def test_domain_parts_only_when_configured(variant: VariantRun) -> None:
    enabled = bool(variant.domains)
    expected_count = 1 if enabled else 0

    for type_token in (
        "aws:acm/certificate:Certificate",
        "aws:acm/certificateValidation:CertificateValidation",
        "aws:cloudfront/distribution:Distribution",
    ):
        assert len(variant.program.of_type(type_token)) == expected_count, type_token
    assert ("domainUrls" in variant.program.exports) is enabled
    assert ("cloudfrontDomainName" in variant.program.exports) is enabled
    if not enabled:
        assert variant.program.of_type("aws:route53/record:Record") == []
        assert variant.program.of_type(PROVIDER_TYPE) == []


def test_prod_file_turns_domains_on_as_example() -> None:
    config, _ = stack_config("prod")

    assert configured_domains(config) == ["example.com", "www.example.com"]
    assert config["webapp:hostedZoneId"].endswith("EXAMPLE")


@pytest.mark.parametrize("stack_name", ["dev", "staging"])
def test_sandbox_stack_files_have_no_domains(stack_name: str) -> None:
    config, _ = stack_config(stack_name)

    for key in DOMAIN_KEYS:
        assert key not in config, key


def test_certificate_covers_every_domain(with_domains: VariantRun) -> None:
    certificate = with_domains.program.one("aws:acm/certificate:Certificate")

    assert certificate.inputs["domainName"] == with_domains.domains[0]
    assert certificate.inputs.get("subjectAlternativeNames", []) == with_domains.domains[1:]
    assert certificate.inputs["validationMethod"] == "DNS"


def test_certificate_provider_in_us_east_1(with_domains: VariantRun) -> None:
    program = with_domains.program
    certificate = program.one("aws:acm/certificate:Certificate")
    validation = program.one("aws:acm/certificateValidation:CertificateValidation")
    providers = program.of_type(PROVIDER_TYPE)

    if EXPECTED_REGION[with_domains.stack] == "us-east-1":
        assert providers == []
        assert certificate.provider == ""
        assert validation.provider == ""
    else:
        assert len(providers) == 1
        provider = providers[0]
        assert provider.inputs["region"] == "us-east-1"
        assert _provider_name(certificate.provider) == provider.name
        assert _provider_name(validation.provider) == provider.name


def test_validation_record_per_domain(with_domains: VariantRun) -> None:
    cname_records = _records_by_type(with_domains.program, "CNAME")
    records = {r.inputs["name"]: r for r in cname_records}
    # ACM gives `*.x` the record of `x`, so one record covers both. Two would conflict.
    base_names = sorted({d.removeprefix("*.") for d in with_domains.domains})

    assert len(cname_records) == len(base_names)
    assert sorted(records) == sorted(f"_0123abcd.{base}." for base in base_names)
    for base in base_names:
        record = records[f"_0123abcd.{base}."]
        assert record.inputs["records"] == [f"_4567cdef.{base}.acm-validations.aws."], base
        assert record.inputs["zoneId"] == with_domains.zone_id, base
        assert record.inputs["allowOverwrite"] is True, base


def test_certificate_validation_waits_for_records(with_domains: VariantRun) -> None:
    program = with_domains.program
    validation = program.one("aws:acm/certificateValidation:CertificateValidation")
    certificate = program.one("aws:acm/certificate:Certificate")
    fqdns = sorted(r.inputs["name"].removesuffix(".") for r in _records_by_type(program, "CNAME"))

    assert sorted(validation.inputs["validationRecordFqdns"]) == fqdns
    assert validation.inputs["certificateArn"] == (
        f"arn:aws:acm:us-east-1:123456789012:certificate/{certificate.name}"
    )


def test_distribution_aliases_and_certificate(with_domains: VariantRun) -> None:
    distribution = with_domains.program.one("aws:cloudfront/distribution:Distribution")
    certificate = with_domains.program.one("aws:acm/certificate:Certificate")
    viewer_certificate = distribution.inputs["viewerCertificate"]

    assert distribution.inputs["aliases"] == with_domains.domains
    assert distribution.inputs["enabled"] is True
    assert distribution.inputs["isIpv6Enabled"] is True
    assert viewer_certificate["acmCertificateArn"] == (
        f"arn:aws:acm:us-east-1:123456789012:certificate/{certificate.name}"
    )
    assert viewer_certificate["sslSupportMethod"] == "sni-only"
    assert viewer_certificate["minimumProtocolVersion"] == "TLSv1.2_2021"
    assert "cloudfrontDefaultCertificate" not in viewer_certificate


def test_distribution_origin_is_environment(with_domains: VariantRun) -> None:
    distribution = with_domains.program.one("aws:cloudfront/distribution:Distribution")
    origins = distribution.inputs["origins"]

    assert len(origins) == 1
    origin = origins[0]
    assert origin["domainName"] == f"webapp-{with_domains.stack}.elasticbeanstalk.com"
    assert origin["customOriginConfig"]["originProtocolPolicy"] == "http-only"
    assert origin["customOriginConfig"]["httpPort"] == 80
    assert distribution.inputs["defaultCacheBehavior"]["targetOriginId"] == origin["originId"]


def test_distribution_does_not_cache(with_domains: VariantRun) -> None:
    distribution = with_domains.program.one("aws:cloudfront/distribution:Distribution")
    behavior = distribution.inputs["defaultCacheBehavior"]

    assert behavior["viewerProtocolPolicy"] == "redirect-to-https"
    # AWS managed policies: CachingDisabled and AllViewer.
    assert behavior["cachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert behavior["originRequestPolicyId"] == "216adef6-5c7f-47e4-b989-5492eafa07d3"
    assert "forwardedValues" not in behavior
    assert set(behavior["allowedMethods"]) == {
        "GET",
        "HEAD",
        "OPTIONS",
        "PUT",
        "POST",
        "PATCH",
        "DELETE",
    }


@pytest.mark.parametrize("record_type", ["A", "AAAA"])
def test_alias_record_per_domain(with_domains: VariantRun, record_type: str) -> None:
    records = {r.inputs["name"]: r for r in _records_by_type(with_domains.program, record_type)}

    assert sorted(records) == sorted(with_domains.domains)
    for domain, record in records.items():
        assert record.inputs["zoneId"] == with_domains.zone_id, domain
        assert record.inputs["aliases"] == [
            {
                "name": CLOUDFRONT_DOMAIN_NAME,
                "zoneId": CLOUDFRONT_ZONE_ID,
                "evaluateTargetHealth": False,
            }
        ], domain
        assert "records" not in record.inputs, domain


def test_domain_exports(with_domains: VariantRun) -> None:
    exports = with_domains.program.exports
    urls = [f"https://{d}" for d in with_domains.domains if not d.startswith("*.")]

    assert exports["domainUrls"] == urls
    assert exports["cloudfrontDomainName"] == CLOUDFRONT_DOMAIN_NAME


def test_hosted_zone_looked_up_only_by_name(variant: VariantRun) -> None:
    lookups = [args for token, args in variant.program.invokes if "getZone" in token]

    if "webapp:hostedZoneName" in variant.config:
        assert lookups == [{"name": "example.org", "privateZone": False}]
    else:
        assert lookups == []


# SSH key pair -----------------------------------------------------------------------------


def test_key_pair_wired_into_environment(variant: VariantRun) -> None:
    key_pairs = variant.program.of_type("aws:ec2/keyPair:KeyPair")
    options = _settings(variant.program.one("aws:elasticbeanstalk/environment:Environment"))
    option = ("aws:autoscaling:launchconfiguration", "EC2KeyName")

    if "webapp:sshPublicKey" not in variant.config:
        assert key_pairs == []
        assert option not in options
        return
    assert len(key_pairs) == 1
    key_pair = key_pairs[0]
    assert key_pair.inputs["publicKey"] == SSH_PUBLIC_KEY
    assert key_pair.inputs["keyNamePrefix"] == f"webapp-{variant.stack}-ssh-"
    assert options[option] == f"webapp-{variant.stack}-ssh-abc1234"


# Optional buckets -------------------------------------------------------------------------

OPTIONAL_BUCKETS = {
    "webapp:staticSite": ("static-site", "staticSiteBucketName"),
    "webapp:dashboardBucket": ("dashboard", "dashboardBucketName"),
}


@pytest.mark.parametrize("config_key", list(OPTIONAL_BUCKETS))
def test_optional_bucket_export(variant: VariantRun, config_key: str) -> None:
    suffix, export = OPTIONAL_BUCKETS[config_key]
    bucket_name = f"webapp-{variant.stack}-{suffix}"
    buckets = [
        b for b in variant.program.of_type("aws:s3/bucketV2:BucketV2") if b.name == bucket_name
    ]

    if variant.config.get(config_key) != "true":
        assert buckets == []
        assert export not in variant.program.exports
        return
    assert len(buckets) == 1
    assert variant.program.exports[export] == f"{bucket_name}-abc1234"


def test_every_bucket_private_and_encrypted(variant: VariantRun) -> None:
    program = variant.program
    buckets = program.of_type("aws:s3/bucketV2:BucketV2")
    expected = 1 + sum(variant.config.get(key) == "true" for key in OPTIONAL_BUCKETS)

    assert len(buckets) == expected
    for bucket in buckets:
        _assert_private_bucket(program, f"{bucket.name}-abc1234")


def _assert_private_bucket(program: ProgramRun, bucket_id: str) -> None:
    def for_bucket(type_token: str) -> Registered:
        found = [r for r in program.of_type(type_token) if r.inputs["bucket"] == bucket_id]
        assert len(found) == 1, f"{type_token} of {bucket_id}: {len(found)}"
        return found[0]

    encryption = for_bucket(
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
    )
    rule = encryption.inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256", bucket_id

    versioning = for_bucket("aws:s3/bucketVersioningV2:BucketVersioningV2")
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled", bucket_id

    block = for_bucket("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block.inputs[flag] is True, f"{bucket_id} {flag}"

    ownership = for_bucket("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced", bucket_id

    policy_resource = for_bucket("aws:s3/bucketPolicy:BucketPolicy")
    statement = json.loads(policy_resource.inputs["policy"])["Statement"][0]
    arn = f"arn:aws:s3:::{bucket_id}"
    assert statement["Effect"] == "Deny", bucket_id
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, bucket_id
    assert statement["Resource"] == [arn, f"{arn}/*"], bucket_id


def test_bucket_component_types(variant: VariantRun) -> None:
    stack = variant.stack
    components = variant.program.components

    # The type token is part of the children's URNs, so a new one would replace the bucket.
    assert ("webapp:storage:AppVersionsBucket", f"webapp-{stack}-app-versions") in components
    for config_key, (suffix, _) in OPTIONAL_BUCKETS.items():
        present = ("webapp:storage:PrivateBucket", f"webapp-{stack}-{suffix}") in components
        assert present is (variant.config.get(config_key) == "true"), config_key


# Tags on the optional parts ---------------------------------------------------------------


def test_variant_tags_on_taggable_resources(variant: VariantRun) -> None:
    expected = {"project": "webapp", "environment": variant.stack, "managed-by": "pulumi"}
    taggable = [r for r in variant.program.resources if _is_taggable(r.type)]

    for resource in taggable:
        assert resource.inputs.get("tags") == expected, f"{resource.type} {resource.name}"


def test_new_taggable_types_tagged_when_all_on(stack: str) -> None:
    config, secret_keys = variant_config(stack, "all")
    program = run_program(stack, config, secret_keys)
    tagged_types = {r.type for r in program.resources if r.inputs.get("tags")}

    for type_token in (
        "aws:acm/certificate:Certificate",
        "aws:cloudfront/distribution:Distribution",
        "aws:ec2/keyPair:KeyPair",
        "aws:s3/bucketV2:BucketV2",
    ):
        assert _is_taggable(type_token), type_token
        assert type_token in tagged_types, type_token
    assert len(program.of_type("aws:s3/bucketV2:BucketV2")) == 3


# Config errors of the optional parts ------------------------------------------------------


def _config_with(stack: str, **overrides: str | None) -> tuple[dict[str, str], list[str]]:
    """The stack file's config without its domain keys, then `overrides` (None removes)."""
    config, secret_keys = stack_config(stack)
    for key in DOMAIN_KEYS:
        config.pop(key, None)
    for key, value in overrides.items():
        full_key = f"webapp:{key}"
        if value is None:
            config.pop(full_key, None)
        else:
            config[full_key] = value
    return config, secret_keys


@pytest.mark.parametrize("stack_name", STACKS)
def test_domains_without_zone_rejected(stack_name: str) -> None:
    config, secret_keys = _config_with(stack_name, domains=json.dumps(["app.example.org"]))

    message, run = run_program_expecting_error(stack_name, config, secret_keys)

    assert "webapp:domains" in message
    assert "webapp:hostedZoneId" in message
    assert "webapp:hostedZoneName" in message
    assert f"pulumi config set webapp:hostedZoneId <zone-id> --stack {stack_name}" in message
    assert f"pulumi config set webapp:hostedZoneName <zone-name> --stack {stack_name}" in message
    assert run.resources == []


@pytest.mark.parametrize("zone_key", ["hostedZoneId", "hostedZoneName"])
def test_zone_without_domains_rejected(zone_key: str) -> None:
    value = TEST_ZONE_ID if zone_key == "hostedZoneId" else "example.org"
    config, secret_keys = _config_with("staging", **{zone_key: value})

    message, run = run_program_expecting_error("staging", config, secret_keys)

    assert f"webapp:{zone_key}" in message
    assert "webapp:domains" in message
    assert "pulumi config set --path 'webapp:domains[0]' <domain> --stack staging" in message
    assert f"pulumi config rm webapp:{zone_key} --stack staging" in message
    assert run.resources == []


def test_both_zone_keys_rejected() -> None:
    config, secret_keys = _config_with(
        "staging",
        domains=json.dumps(["app.example.org"]),
        hostedZoneId=TEST_ZONE_ID,
        hostedZoneName="example.org",
    )

    message, run = run_program_expecting_error("staging", config, secret_keys)

    assert "webapp:hostedZoneId and webapp:hostedZoneName" in message
    assert "pulumi config rm webapp:hostedZoneName --stack staging" in message
    assert run.resources == []


@pytest.mark.parametrize(
    ("domains", "expected"),
    [
        ("app.example.org", "must be a list of domain names"),
        (json.dumps({"name": "app.example.org"}), "must be a list of domain names"),
        (json.dumps([]), "at least one domain name"),
        (json.dumps(["https://app.example.org"]), "invalid domain names"),
        (json.dumps(["app.example.org."]), "invalid domain names"),
        (json.dumps(["localhost"]), "invalid domain names"),
        (json.dumps(["-bad.example.org"]), "invalid domain names"),
        (json.dumps(["a.*.example.org"]), "invalid domain names"),
        (json.dumps(["app.example.org", "APP.example.org"]), "more than once"),
    ],
)
def test_bad_domains_rejected(domains: str, expected: str) -> None:
    config, secret_keys = _config_with("staging", domains=domains, hostedZoneId=TEST_ZONE_ID)

    message, run = run_program_expecting_error("staging", config, secret_keys)

    assert "webapp:domains" in message
    assert expected in message
    assert "pulumi config" in message
    assert "--stack staging" in message
    assert run.resources == []


def test_domain_outside_named_zone_rejected() -> None:
    config, secret_keys = _config_with(
        "staging",
        domains=json.dumps(["app.example.org", "app.example.net"]),
        hostedZoneName="example.org",
    )

    message, run = run_program_expecting_error("staging", config, secret_keys)

    assert "['app.example.net'] are not in the hosted zone 'example.org'" in message
    assert "webapp:hostedZoneName" in message
    assert "pulumi config set webapp:hostedZoneName <zone-name> --stack staging" in message
    assert run.resources == []


@pytest.mark.parametrize("zone_id", ["/hostedzone/ZTESTZONE0123456789", "ztest", "Z 123"])
def test_bad_zone_id_rejected(zone_id: str) -> None:
    config, secret_keys = _config_with(
        "staging", domains=json.dumps(["app.example.org"]), hostedZoneId=zone_id
    )

    message, run = run_program_expecting_error("staging", config, secret_keys)

    assert "webapp:hostedZoneId" in message
    assert "pulumi config set webapp:hostedZoneId <zone-id> --stack staging" in message
    assert run.resources == []


def test_zone_name_accepts_trailing_dot_and_case() -> None:
    config, secret_keys = _config_with(
        "staging", domains=json.dumps(["App.Example.org"]), hostedZoneName="Example.ORG."
    )

    program = run_program("staging", config, secret_keys)

    assert program.exports["domainUrls"] == ["https://app.example.org"]
    assert program.invokes == [
        ("aws:route53/getZone:getZone", {"name": "example.org", "privateZone": False})
    ]


@pytest.mark.parametrize(
    "public_key",
    [
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY= ops@example",
        "ssh-ed25519",
        "AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyBody",
    ],
)
def test_bad_ssh_public_key_rejected(public_key: str) -> None:
    config, secret_keys = _config_with("staging", sshPublicKey=public_key)

    message, run = run_program_expecting_error("staging", config, secret_keys)

    assert "webapp:sshPublicKey" in message
    assert "ssh-rsa or ssh-ed25519" in message
    assert "pulumi config set webapp:sshPublicKey" in message
    assert "--stack staging" in message
    assert run.resources == []


def test_private_key_rejected_and_not_echoed() -> None:
    private_key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    config, secret_keys = _config_with("staging", sshPublicKey=private_key)

    message, run = run_program_expecting_error("staging", config, secret_keys)

    assert "private key" in message
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in message
    assert run.resources == []


def test_bad_bucket_flag_rejected() -> None:
    config, secret_keys = _config_with("staging", staticSite="maybe")

    message, run = run_program_expecting_error("staging", config, secret_keys)

    assert "webapp:staticSite" in message
    assert run.resources == []
