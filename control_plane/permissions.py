"""Least-privilege IAM statements derived from environments.yaml and the Pulumi stack settings.

The Pulumi program in infra/ names every resource after `<pulumi_project>-<pulumi_stack>`
(infra/__main__.py): the EB application and environment carry that name, and the buckets, IAM
roles, instance profile, database and key pair start with it. The CodeBuild role may manage
those and what EB itself creates on the caller's credentials when it launches an environment:
its CloudFormation stack, Auto Scaling group, load balancer and alarms, all named `awseb-...`.
The statements that EB needs follow AWS's managed policy AdministratorAccess-AWSElasticBeanstalk
(version 10), restricted to the environments' regions, this account and the services the
program uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from lambdas.common.settings import EnvironmentSettings, Settings
from lambdas.common.strict_yaml import load_yaml

# The AWS managed policies that infra/webapp/iam.py attaches to the roles it creates. The
# CodeBuild role may attach these and no other, and tests/infra/test_template_hygiene.py
# checks that the two lists agree.
PROGRAM_MANAGED_POLICY_ARNS = (
    "arn:aws:iam::aws:policy/service-role/AWSElasticBeanstalkEnhancedHealth",
    "arn:aws:iam::aws:policy/AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy",
    "arn:aws:iam::aws:policy/AWSElasticBeanstalkWebTier",
)
# EB's service role is passed to EB, and the instance profile's role to EC2 when the
# environment's Auto Scaling group launches instances.
PASSED_TO_SERVICES = ("elasticbeanstalk.amazonaws.com", "ec2.amazonaws.com")
# Service-linked roles that EB, Auto Scaling, the load balancer and RDS need in the account.
# Each is created once, by the first environment or database, with the caller's credentials.
SERVICE_LINKED_ROLE_SERVICES = (
    "autoscaling.amazonaws.com",
    "elasticbeanstalk.amazonaws.com",
    "elasticloadbalancing.amazonaws.com",
    "managedupdates.elasticbeanstalk.amazonaws.com",
    "rds.amazonaws.com",
)
# Prefix of every resource EB names for an environment: stack awseb-e-<id>-stack, group
# awseb-e-<id>-stack-AWSEBAutoScalingGroup-..., load balancer awseb-AWSEB-..., alarms awseb-....
EB_RESOURCE_PREFIX = "awseb-"
# CloudFront accepts only ACM certificates from this region.
CERTIFICATE_REGION = "us-east-1"

# EB actions of the Pulumi AWS provider's Application and Environment resources (create,
# read, update, delete, tags) and of the runner's wait for a Ready environment.
BEANSTALK_PROGRAM_ACTIONS = (
    "elasticbeanstalk:CreateApplication",
    "elasticbeanstalk:DescribeApplications",
    "elasticbeanstalk:UpdateApplication",
    "elasticbeanstalk:UpdateApplicationResourceLifecycle",
    "elasticbeanstalk:DeleteApplication",
    "elasticbeanstalk:DescribeApplicationVersions",
    "elasticbeanstalk:CreateEnvironment",
    "elasticbeanstalk:DescribeEnvironments",
    "elasticbeanstalk:DescribeEnvironmentResources",
    "elasticbeanstalk:DescribeConfigurationSettings",
    "elasticbeanstalk:DescribeConfigurationOptions",
    "elasticbeanstalk:ValidateConfigurationSettings",
    "elasticbeanstalk:DescribeEvents",
    "elasticbeanstalk:UpdateEnvironment",
    "elasticbeanstalk:TerminateEnvironment",
    "elasticbeanstalk:ListAvailableSolutionStacks",
    "elasticbeanstalk:ListPlatformVersions",
    "elasticbeanstalk:DescribePlatformVersion",
    "elasticbeanstalk:ListTagsForResource",
    "elasticbeanstalk:UpdateTagsForResource",
    "elasticbeanstalk:AddTags",
    "elasticbeanstalk:RemoveTags",
)
# Read-only discovery that EB and the Pulumi provider run while they create or read resources.
# None of these actions takes resource-level permissions (Service Authorization Reference), so
# they are granted on "*".
DISCOVERY_ACTIONS = (
    "ec2:Describe*",
    "autoscaling:Describe*",
    "elasticloadbalancing:Describe*",
    "cloudformation:ValidateTemplate",
)


# Why each wildcard of the runner's managed policies stays: (reason, regular expressions of the
# cdk-nag IAM5 findings it covers), per policy of `pulumi_runner_policies`.
_ARN = r"Resource::arn:<AWS::Partition>"
_ACCOUNT = r"(\d{12}|<AWS::AccountId>)"
RUNNER_POLICY_WILDCARDS: dict[str, list[tuple[str, list[str]]]] = {
    "Program": [
        (
            "Pulumi autonames the program's buckets, roles, instance profile and database "
            "`<project>-<stack>-<logical name>-<random>`, so their ARNs end in a wildcard "
            "after the program's name.",
            [
                _ARN + r":s3:::[\w.-]+-\*",
                _ARN + r":iam::" + _ACCOUNT + r":(role|instance-profile)/[\w.-]+-eb-\*",
                _ARN + r":rds:[\w-]+:" + _ACCOUNT + r":(db|snapshot):[\w.-]+-db\*",
            ],
        ),
        (
            "EB names application versions and configuration templates within the "
            "application, and the region's platforms and solution stacks belong to AWS.",
            [
                _ARN
                + r":elasticbeanstalk:[\w-]+:"
                + _ACCOUNT
                + r":(applicationversion|configurationtemplate)/[\w.-]+/\*",
                _ARN + r":elasticbeanstalk:[\w-]+::(solutionstack|platform)/\*",
            ],
        ),
        (
            "The database uses the region's default parameter and option groups, whose "
            "names carry the engine version.",
            [_ARN + r":rds:[\w-]+:" + _ACCOUNT + r":(pg:default\.\*|og:default:\*)"],
        ),
        (
            "Service-linked roles have AWS-defined names under aws-service-role/<service>/; "
            "the statement's condition names the services.",
            [_ARN + r":iam::" + _ACCOUNT + r":role/aws-service-role/[\w.]+/\*"],
        ),
        (
            "EC2 gives security groups, launch templates, instances and volumes random ids, "
            "so the grant covers EC2 resources of the environments' regions in this account "
            "and AWS's public images and snapshots there.",
            [_ARN + r":ec2:[\w-]+:(" + _ACCOUNT + r")?:(\*|image|snapshot)/\*"],
        ),
        (
            "The Pulumi provider reads and writes every setting of the program's buckets "
            "(ACL, CORS, logging, ownership, policy, public access block, tags, versioning, "
            "website); the statement names only the program's buckets.",
            [r"Action::s3:(GetBucket|PutBucket)\*"],
        ),
    ],
    "Beanstalk": [
        (
            "EB names the resources of an environment's CloudFormation stack `awseb-...` "
            "with generated suffixes; AWS's managed policy AdministratorAccess-"
            "AWSElasticBeanstalk grants on these names, and so does this policy.",
            [
                _ARN + r":cloudformation:[\w-]+:" + _ACCOUNT + r":stack/awseb-\*",
                _ARN
                + r":autoscaling:[\w-]+:"
                + _ACCOUNT
                + r":(autoScalingGroup|launchConfiguration):\*:\w+/awseb-e-\*",
                _ARN
                + r":elasticloadbalancing:[\w-]+:"
                + _ACCOUNT
                + r":(loadbalancer|targetgroup|listener|listener-rule)/[\w/*-]+",
                _ARN + r":cloudwatch:[\w-]+:" + _ACCOUNT + r":alarm:awseb-\*",
            ],
        ),
        (
            "EB's CloudFormation stack manages its Auto Scaling group, scaling policies, load "
            "balancer, listeners and target groups with many calls of both services, granted "
            "whole on EB's names only, as AWS's managed policy for EB does.",
            [r"Action::(autoscaling|elasticloadbalancing):\*"],
        ),
        (
            "EB stores environment settings in its own bucket elasticbeanstalk-<region>-"
            "<account> under generated keys, and reads the bucket's settings.",
            [
                _ARN + r":s3:::elasticbeanstalk-[\w-]+-" + _ACCOUNT + r"/\*",
                r"Action::s3:GetBucket\*",
            ],
        ),
        (
            "EC2, Auto Scaling and Elastic Load Balancing Describe actions and CloudFormation "
            "ValidateTemplate take no resource-level permissions.",
            [r"Action::(ec2|autoscaling|elasticloadbalancing):Describe\*", r"Resource::\*"],
        ),
    ],
    "Domain": [
        (
            "ACM and CloudFront give certificates and distributions random ids, and Route 53 "
            "names changes by id; RequestCertificate and CreateDistribution take no "
            "resource-level permissions.",
            [
                _ARN + r":acm:us-east-1:" + _ACCOUNT + r":certificate/\*",
                _ARN + r":cloudfront::" + _ACCOUNT + r":distribution/\*",
                _ARN + r":route53:::(change|hostedzone)/\*",
                r"Resource::\*",
            ],
        ),
    ],
}


@dataclass(frozen=True)
class ProgramScope:
    """Names of the resources that one environment's Pulumi stack creates."""

    region: str
    # `<pulumi_project>-<pulumi_stack>`: the name or name prefix of every program resource.
    program_name: str
    # The program's application, and environments.yaml's `eb_application` where that differs.
    eb_applications: tuple[str, ...]
    # The program's environment, and environments.yaml's `eb_environment` where that differs.
    eb_environments: tuple[str, ...]
    pulumi_stack: str


def program_scope(environment: EnvironmentSettings) -> ProgramScope:
    program_name = f"{environment.pulumi_project}-{environment.pulumi_stack}"
    return ProgramScope(
        region=environment.region,
        program_name=program_name,
        eb_applications=tuple(sorted({program_name, environment.eb_application})),
        eb_environments=tuple(sorted({program_name, environment.eb_environment_name})),
        pulumi_stack=environment.pulumi_stack,
    )


def program_scopes(settings: Settings) -> list[ProgramScope]:
    return [program_scope(settings.environments[name]) for name in sorted(settings.environments)]


@dataclass(frozen=True)
class DomainSettings:
    """Hosted zones of the stacks whose settings file turns on custom domains."""

    zone_ids: tuple[str, ...]
    # A stack names its zone by `webapp:hostedZoneName`, so the zone id is known only to AWS.
    any_zone_by_name: bool


def read_domain_settings(infra_dir: Path, stacks: Iterable[str]) -> DomainSettings | None:
    """Return the hosted zones that the stacks' `Pulumi.<stack>.yaml` files name, or None.

    None means no stack sets `webapp:domains`, so the program creates no certificate,
    distribution or DNS record. A stack without a settings file in `infra_dir` counts as one
    whose zone is named, because its config lives elsewhere.
    """
    zone_ids: set[str] = set()
    any_zone_by_name = False
    for stack in sorted(set(stacks)):
        path = infra_dir / f"Pulumi.{stack}.yaml"
        if not path.exists():
            any_zone_by_name = True
            continue
        document = load_yaml(path.read_text(encoding="utf-8")) or {}
        config = document.get("config") or {}
        if not config.get("webapp:domains"):
            continue
        zone_id = config.get("webapp:hostedZoneId")
        if isinstance(zone_id, str):
            zone_ids.add(zone_id)
        else:
            any_zone_by_name = True
    if not zone_ids and not any_zone_by_name:
        return None
    return DomainSettings(zone_ids=tuple(sorted(zone_ids)), any_zone_by_name=any_zone_by_name)


class ArnBuilder:
    """ARNs in the stack's account and partition, in any region."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack

    def arn(
        self,
        service: str,
        resource: str,
        resource_name: str | None = None,
        *,
        region: str | None = None,
        account: str | None = None,
        colon: bool = False,
    ) -> str:
        return self._stack.format_arn(
            service=service,
            region=region,
            account=account,
            resource=resource,
            resource_name=resource_name,
            arn_format=(
                ArnFormat.COLON_RESOURCE_NAME
                if colon
                else ArnFormat.SLASH_RESOURCE_NAME
                if resource_name is not None
                else ArnFormat.NO_RESOURCE_NAME
            ),
        )

    @property
    def account(self) -> str:
        return self._stack.account

    def bucket(self, name: str) -> str:
        return self.arn("s3", name, region="", account="")

    def eb(self, region: str, resource: str, name: str, *, aws_owned: bool = False) -> str:
        return self.arn(
            "elasticbeanstalk", resource, name, region=region, account="" if aws_owned else None
        )

    def global_resource(self, service: str, resource: str, name: str) -> str:
        """ARN of a resource of a global service: IAM, CloudFront, Route 53."""
        account = "" if service == "route53" else None
        return self.arn(service, resource, name, region="", account=account)


def eb_environment_arns(arns: ArnBuilder, scopes: Sequence[ProgramScope]) -> list[str]:
    """ARNs of the managed EB environments, under each name their application may have."""
    return sorted(
        {
            arns.eb(scope.region, "environment", f"{application}/{environment}")
            for scope in scopes
            for application in scope.eb_applications
            for environment in scope.eb_environments
        }
    )


def eb_application_arns(arns: ArnBuilder, scopes: Sequence[ProgramScope]) -> list[str]:
    return sorted(
        {
            arns.eb(scope.region, "application", application)
            for scope in scopes
            for application in scope.eb_applications
        }
    )


def eb_version_arns(arns: ArnBuilder, scopes: Sequence[ProgramScope]) -> list[str]:
    return sorted(
        {
            arns.eb(scope.region, "applicationversion", f"{application}/*")
            for scope in scopes
            for application in scope.eb_applications
        }
    )


def regions_of(scopes: Sequence[ProgramScope]) -> list[str]:
    return sorted({scope.region for scope in scopes})


def bundle_copy_statements(
    arns: ArnBuilder, scopes: Sequence[ProgramScope], control_plane_region: str
) -> list[iam.PolicyStatement]:
    """Build what DeployVersion needs to copy bundles to environments of other regions.

    EB takes a source bundle only from a bucket of its own region. So for each environment
    outside the control plane's region, DeployVersion gets EB's storage bucket there from
    CreateStorageLocation, checks for an earlier copy and copies the bundle under
    `<application>/control-plane/` (lambdas/common/regional_bundle.py). ListBucket makes
    HeadObject of a missing copy return 404 instead of 403. No statement is needed when every
    environment is in the control plane's region.
    """
    others = [scope for scope in scopes if scope.region != control_plane_region]
    if not others:
        return []
    buckets = {
        scope.region: arns.bucket(f"elasticbeanstalk-{scope.region}-{arns.account}")
        for scope in others
    }
    prefixes = sorted(
        {
            f"{buckets[scope.region]}/{application}/control-plane/*"
            for scope in others
            for application in scope.eb_applications
        }
    )
    return [
        # CreateStorageLocation names no resource: the EB Developer Guide's custom user policy
        # ("Managing Elastic Beanstalk user policies") grants it on "*" among the
        # "AllNonResourceCalls".
        iam.PolicyStatement(actions=["elasticbeanstalk:CreateStorageLocation"], resources=["*"]),
        iam.PolicyStatement(actions=["s3:GetObject", "s3:PutObject"], resources=prefixes),
        iam.PolicyStatement(actions=["s3:ListBucket"], resources=sorted(buckets.values())),
    ]


def pulumi_runner_policies(
    stack: Stack, scopes: Sequence[ProgramScope], domains: DomainSettings | None
) -> dict[str, list[iam.PolicyStatement]]:
    """Build what `pulumi up`, `preview`, `refresh` and `destroy` of the program need.

    The statements come in groups, each small enough for one customer managed policy
    (6,144 characters): the program's own resources, what EB creates for an environment,
    and the optional custom domains.
    """
    arns = ArnBuilder(stack)
    regions = regions_of(scopes)
    policies = {
        "Program": [
            _beanstalk_statement(arns, scopes),
            _program_bucket_statement(arns, scopes),
            *_program_role_statements(arns, scopes),
            _program_ec2_statement(arns, regions),
            _program_database_statement(arns, scopes),
        ],
        "Beanstalk": [
            *_beanstalk_storage_statements(arns, regions),
            *_beanstalk_driven_statements(arns, regions),
            iam.PolicyStatement(sid="Discovery", actions=list(DISCOVERY_ACTIONS), resources=["*"]),
        ],
    }
    if domains is not None:
        policies["Domain"] = _domain_statements(arns, domains)
    return policies


def state_bucket_statements(state_bucket: s3.IBucket) -> list[iam.PolicyStatement]:
    # Pulumi's S3 backend reads, writes and deletes checkpoints, history and lock files; the
    # runner writes its result document under results/. Without ListBucket a missing key
    # reads as AccessDenied instead of NoSuchKey.
    return [
        iam.PolicyStatement(
            sid="PulumiStateObjects",
            actions=[
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
            ],
            resources=[state_bucket.arn_for_objects("*")],
        ),
        iam.PolicyStatement(
            sid="PulumiStateBucket",
            actions=["s3:ListBucket", "s3:GetBucketLocation"],
            resources=[state_bucket.bucket_arn],
        ),
    ]


def _beanstalk_statement(arns: ArnBuilder, scopes: Sequence[ProgramScope]) -> iam.PolicyStatement:
    resources = {
        *eb_application_arns(arns, scopes),
        *eb_environment_arns(arns, scopes),
        *eb_version_arns(arns, scopes),
    }
    for scope in scopes:
        for application in scope.eb_applications:
            resources.add(arns.eb(scope.region, "configurationtemplate", f"{application}/*"))
        # The platform of the environment, which CreateEnvironment and UpdateEnvironment read.
        resources.add(arns.eb(scope.region, "solutionstack", "*", aws_owned=True))
        resources.add(arns.eb(scope.region, "platform", "*", aws_owned=True))
    return iam.PolicyStatement(
        sid="ManageBeanstalkApplications",
        actions=list(BEANSTALK_PROGRAM_ACTIONS),
        resources=sorted(resources),
    )


def _program_bucket_statement(
    arns: ArnBuilder, scopes: Sequence[ProgramScope]
) -> iam.PolicyStatement:
    # Pulumi autonames each bucket `<logical name>-<7 random characters>`, and every logical
    # name starts with the program name (app-versions, static-site, dashboard).
    return iam.PolicyStatement(
        sid="ManageProgramBuckets",
        actions=[
            "s3:CreateBucket",
            "s3:DeleteBucket",
            "s3:ListBucket",
            "s3:GetBucket*",
            "s3:PutBucket*",
            "s3:DeleteBucketPolicy",
            "s3:GetAccelerateConfiguration",
            "s3:GetEncryptionConfiguration",
            "s3:PutEncryptionConfiguration",
            "s3:GetLifecycleConfiguration",
            "s3:GetReplicationConfiguration",
        ],
        resources=sorted({arns.bucket(f"{scope.program_name}-*") for scope in scopes}),
    )


def _beanstalk_storage_statements(
    arns: ArnBuilder, regions: Sequence[str]
) -> list[iam.PolicyStatement]:
    # EB keeps environment settings and logs in its own bucket per region and account.
    buckets = [arns.bucket(f"elasticbeanstalk-{region}-{arns.account}") for region in regions]
    return [
        iam.PolicyStatement(
            sid="BeanstalkStorageBucket",
            actions=[
                "s3:CreateBucket",
                "s3:ListBucket",
                "s3:GetBucket*",
                "s3:PutBucketPolicy",
                "s3:PutBucketPublicAccessBlock",
                "s3:PutBucketOwnershipControls",
            ],
            resources=buckets,
        ),
        iam.PolicyStatement(
            sid="BeanstalkStorageObjects",
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            resources=[f"{bucket}/*" for bucket in buckets],
        ),
    ]


def _program_role_statements(
    arns: ArnBuilder, scopes: Sequence[ProgramScope]
) -> list[iam.PolicyStatement]:
    # infra/webapp/iam.py creates `<program>-eb-service-*` and `<program>-eb-instance-*` roles
    # and the `<program>-eb-instance-*` instance profile.
    roles = sorted({arns.global_resource("iam", "role", f"{s.program_name}-eb-*") for s in scopes})
    profiles = sorted(
        {arns.global_resource("iam", "instance-profile", f"{s.program_name}-eb-*") for s in scopes}
    )
    service_linked_roles = [
        arns.global_resource("iam", "role", f"aws-service-role/{service}/*")
        for service in SERVICE_LINKED_ROLE_SERVICES
    ]
    return [
        iam.PolicyStatement(
            sid="ManageProgramRoles",
            actions=[
                "iam:GetRole",
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:UpdateAssumeRolePolicy",
                "iam:ListRolePolicies",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:GetInstanceProfile",
                "iam:CreateInstanceProfile",
                "iam:DeleteInstanceProfile",
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:TagInstanceProfile",
                "iam:UntagInstanceProfile",
            ],
            resources=[*roles, *profiles],
        ),
        iam.PolicyStatement(
            sid="AttachProgramPolicies",
            actions=["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            resources=roles,
            conditions={"ArnEquals": {"iam:PolicyArn": list(PROGRAM_MANAGED_POLICY_ARNS)}},
        ),
        iam.PolicyStatement(
            sid="PassProgramRoles",
            actions=["iam:PassRole"],
            resources=roles,
            conditions={"StringEquals": {"iam:PassedToService": list(PASSED_TO_SERVICES)}},
        ),
        iam.PolicyStatement(
            sid="CreateServiceLinkedRoles",
            actions=["iam:CreateServiceLinkedRole"],
            resources=service_linked_roles,
            conditions={"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLE_SERVICES)}},
        ),
    ]


def _beanstalk_driven_statements(
    arns: ArnBuilder, regions: Sequence[str]
) -> list[iam.PolicyStatement]:
    """Grant what EB's CloudFormation stack does with the caller's credentials, on EB's names."""
    prefix = EB_RESOURCE_PREFIX
    stacks, groups, configurations, balancers, alarms = [], [], [], [], []
    for region in regions:
        stacks.append(arns.arn("cloudformation", "stack", f"{prefix}*", region=region))
        groups.append(
            arns.arn(
                "autoscaling",
                "autoScalingGroup",
                f"*:autoScalingGroupName/{prefix}e-*",
                region=region,
                colon=True,
            )
        )
        configurations.append(
            arns.arn(
                "autoscaling",
                "launchConfiguration",
                f"*:launchConfigurationName/{prefix}e-*",
                region=region,
                colon=True,
            )
        )
        for resource, name in (
            ("loadbalancer", f"app/{prefix}*/*"),
            ("targetgroup", f"{prefix}*/*"),
            ("listener", f"app/{prefix}*/*/*"),
            ("listener-rule", f"app/{prefix}*/*/*/*"),
        ):
            balancers.append(arns.arn("elasticloadbalancing", resource, name, region=region))
        alarms.append(arns.arn("cloudwatch", "alarm", f"{prefix}*", region=region, colon=True))
    return [
        iam.PolicyStatement(
            sid="BeanstalkStacks",
            actions=[
                "cloudformation:CreateStack",
                "cloudformation:UpdateStack",
                "cloudformation:DeleteStack",
                "cloudformation:CancelUpdateStack",
                "cloudformation:ContinueUpdateRollback",
                "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackEvents",
                "cloudformation:DescribeStackResource",
                "cloudformation:DescribeStackResources",
                "cloudformation:GetTemplate",
                "cloudformation:ListStackResources",
                "cloudformation:SignalResource",
                "cloudformation:TagResource",
                "cloudformation:UntagResource",
            ],
            resources=stacks,
        ),
        # EB's stack manages its group and scaling policies with many Auto Scaling and
        # Elastic Load Balancing calls; AWS's managed policy grants both services whole on
        # EB's names, and so does this one.
        iam.PolicyStatement(
            sid="BeanstalkAutoScaling",
            actions=["autoscaling:*"],
            resources=[*groups, *configurations],
        ),
        iam.PolicyStatement(
            sid="BeanstalkLoadBalancers",
            actions=["elasticloadbalancing:*"],
            resources=balancers,
        ),
        iam.PolicyStatement(
            sid="BeanstalkAlarms",
            actions=[
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarms",
            ],
            resources=alarms,
        ),
    ]


def _program_ec2_statement(arns: ArnBuilder, regions: Sequence[str]) -> iam.PolicyStatement:
    """Grant security groups, launch templates, instances and key pairs in the environments'
    regions.

    Their ids are random, so the grant is per region and account, not per resource.
    """
    resources = []
    for region in regions:
        resources.append(arns.arn("ec2", "*", "*", region=region))
        # Public AMIs and their snapshots belong to no account.
        resources.append(arns.arn("ec2", "image", "*", region=region, account=""))
        resources.append(arns.arn("ec2", "snapshot", "*", region=region, account=""))
    return iam.PolicyStatement(
        sid="ManageProgramEc2",
        actions=[
            "ec2:CreateSecurityGroup",
            "ec2:DeleteSecurityGroup",
            "ec2:AuthorizeSecurityGroupIngress",
            "ec2:AuthorizeSecurityGroupEgress",
            "ec2:RevokeSecurityGroupIngress",
            "ec2:RevokeSecurityGroupEgress",
            "ec2:CreateLaunchTemplate",
            "ec2:CreateLaunchTemplateVersion",
            "ec2:ModifyLaunchTemplate",
            "ec2:DeleteLaunchTemplate",
            "ec2:DeleteLaunchTemplateVersions",
            "ec2:RunInstances",
            "ec2:CreateTags",
            "ec2:DeleteTags",
            "ec2:ImportKeyPair",
            "ec2:DeleteKeyPair",
        ],
        resources=resources,
    )


def _program_database_statement(
    arns: ArnBuilder, scopes: Sequence[ProgramScope]
) -> iam.PolicyStatement:
    """Grant the optional PostgreSQL instance `<program>-db...` (infra/webapp/database.py)."""
    resources: set[str] = set()
    for scope in scopes:
        name = f"{scope.program_name}-db*"
        resources.add(arns.arn("rds", "db", name, region=scope.region, colon=True))
        # The final snapshot `<program>-db-final`, when skip_final_snapshot is off.
        resources.add(arns.arn("rds", "snapshot", name, region=scope.region, colon=True))
        # The instance uses the region's default parameter group, option group and subnet
        # group, which CreateDBInstance and ModifyDBInstance authorize too.
        resources.add(arns.arn("rds", "pg", "default.*", region=scope.region, colon=True))
        resources.add(arns.arn("rds", "og", "default:*", region=scope.region, colon=True))
        resources.add(arns.arn("rds", "subgrp", "default", region=scope.region, colon=True))
    return iam.PolicyStatement(
        sid="ManageProgramDatabase",
        actions=[
            "rds:CreateDBInstance",
            "rds:ModifyDBInstance",
            "rds:DeleteDBInstance",
            "rds:DescribeDBInstances",
            "rds:CreateDBSnapshot",
            "rds:AddTagsToResource",
            "rds:RemoveTagsFromResource",
            "rds:ListTagsForResource",
        ],
        resources=sorted(resources),
    )


def _domain_statements(arns: ArnBuilder, domains: DomainSettings) -> list[iam.PolicyStatement]:
    """Grant the certificate, distribution and DNS records of custom domains.

    See infra/webapp/domain.py.
    """
    if domains.any_zone_by_name:
        zones = [arns.global_resource("route53", "hostedzone", "*")]
    else:
        zones = [arns.global_resource("route53", "hostedzone", zone) for zone in domains.zone_ids]
    statements = [
        iam.PolicyStatement(
            sid="ManageDomainCertificates",
            actions=[
                "acm:DescribeCertificate",
                "acm:DeleteCertificate",
                "acm:AddTagsToCertificate",
                "acm:RemoveTagsFromCertificate",
                "acm:ListTagsForCertificate",
            ],
            resources=[arns.arn("acm", "certificate", "*", region=CERTIFICATE_REGION)],
        ),
        iam.PolicyStatement(
            sid="ManageDomainDistributions",
            actions=[
                "cloudfront:GetDistribution",
                "cloudfront:GetDistributionConfig",
                "cloudfront:UpdateDistribution",
                "cloudfront:DeleteDistribution",
                "cloudfront:TagResource",
                "cloudfront:UntagResource",
                "cloudfront:ListTagsForResource",
            ],
            resources=[arns.global_resource("cloudfront", "distribution", "*")],
        ),
        iam.PolicyStatement(
            sid="ManageDomainRecords",
            actions=[
                "route53:GetHostedZone",
                "route53:ListResourceRecordSets",
                "route53:ChangeResourceRecordSets",
            ],
            resources=zones,
        ),
        iam.PolicyStatement(
            sid="WatchDomainRecordChanges",
            actions=["route53:GetChange"],
            resources=[arns.global_resource("route53", "change", "*")],
        ),
        # RequestCertificate and CreateDistribution take no resource-level permissions.
        iam.PolicyStatement(
            sid="CreateDomainResources",
            actions=["acm:RequestCertificate", "cloudfront:CreateDistribution"],
            resources=["*"],
        ),
    ]
    if domains.any_zone_by_name:
        statements.append(
            iam.PolicyStatement(
                sid="FindHostedZones",
                actions=["route53:ListHostedZonesByName"],
                resources=["*"],
            )
        )
    return statements
