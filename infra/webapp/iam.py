"""IAM roles that Elastic Beanstalk needs: its service role and the instances' profile."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# AWS managed policies, by ARN. The service policies cover enhanced health reporting and
# managed platform updates; the web tier policy covers the instances' log and metric uploads.
SERVICE_POLICY_ARNS = (
    "arn:aws:iam::aws:policy/service-role/AWSElasticBeanstalkEnhancedHealth",
    "arn:aws:iam::aws:policy/AWSElasticBeanstalkManagedUpdatesCustomerRolePolicy",
)
INSTANCE_POLICY_ARNS = ("arn:aws:iam::aws:policy/AWSElasticBeanstalkWebTier",)


@dataclass
class BeanstalkRolesArgs:
    """Inputs of BeanstalkRoles."""

    app_versions_bucket_arn: pulumi.Input[str]
    tags: dict[str, str]


class BeanstalkRoles(pulumi.ComponentResource):
    """EB service role and the EC2 instance profile of the environment's instances."""

    service_role: aws.iam.Role
    instance_role: aws.iam.Role
    instance_profile: aws.iam.InstanceProfile

    def __init__(
        self,
        name: str,
        args: BeanstalkRolesArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("webapp:iam:BeanstalkRoles", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        self.service_role = aws.iam.Role(
            f"{name}-service",
            assume_role_policy=_assume_role_policy("elasticbeanstalk.amazonaws.com"),
            tags=args.tags,
            opts=child,
        )
        for index, policy_arn in enumerate(SERVICE_POLICY_ARNS):
            aws.iam.RolePolicyAttachment(
                f"{name}-service-{index}",
                role=self.service_role.name,
                policy_arn=policy_arn,
                opts=child,
            )

        self.instance_role = aws.iam.Role(
            f"{name}-instance",
            assume_role_policy=_assume_role_policy("ec2.amazonaws.com"),
            tags=args.tags,
            opts=child,
        )
        for index, policy_arn in enumerate(INSTANCE_POLICY_ARNS):
            aws.iam.RolePolicyAttachment(
                f"{name}-instance-{index}",
                role=self.instance_role.name,
                policy_arn=policy_arn,
                opts=child,
            )
        # Instances download the deployed bundle from the app versions bucket.
        aws.iam.RolePolicy(
            f"{name}-instance-bundles",
            role=self.instance_role.id,
            policy=pulumi.Output.from_input(args.app_versions_bucket_arn).apply(
                _read_bundles_policy
            ),
            opts=child,
        )
        self.instance_profile = aws.iam.InstanceProfile(
            f"{name}-instance",
            role=self.instance_role.name,
            tags=args.tags,
            opts=child,
        )

        self.register_outputs(
            {
                "serviceRoleArn": self.service_role.arn,
                "instanceProfileName": self.instance_profile.name,
            }
        )


def _assume_role_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def _read_bundles_policy(bucket_arn: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                    "Resource": f"{bucket_arn}/*",
                }
            ],
        }
    )
