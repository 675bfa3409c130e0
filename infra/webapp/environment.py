"""Elastic Beanstalk application and its load-balanced web server environment."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Application versions EB keeps for the application. EB deletes older ones, so repeated
# deployments do not run into the account's per-region application version quota.
MAX_APP_VERSIONS = 200


@dataclass
class BeanstalkEnvironmentArgs:
    """Inputs of BeanstalkEnvironment."""

    name: str
    solution_stack: str
    instance_type: str
    min_instances: int
    max_instances: int
    health_check_path: str
    service_role_arn: pulumi.Input[str]
    instance_profile_name: pulumi.Input[str]
    instance_security_group_id: pulumi.Input[str]
    app_environment: dict[str, pulumi.Input[str]]
    tags: dict[str, str]
    # Name of the EC2 key pair for SSH to the instances, or None to launch them without one.
    ec2_key_name: pulumi.Input[str] | None = None


class BeanstalkEnvironment(pulumi.ComponentResource):
    """EB application plus one environment, both named `args.name`.

    The environment is an ALB load-balanced Python environment with enhanced health,
    rolling deployments and managed platform updates. Its deployed version belongs to the
    control plane, not to Pulumi.
    """

    application: aws.elasticbeanstalk.Application
    environment: aws.elasticbeanstalk.Environment
    cname: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: BeanstalkEnvironmentArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("webapp:beanstalk:BeanstalkEnvironment", name, None, opts)

        self.application = aws.elasticbeanstalk.Application(
            name,
            name=args.name,
            description=f"Web app, stack {args.name}",
            appversion_lifecycle={
                "service_role": args.service_role_arn,
                "max_count": MAX_APP_VERSIONS,
                "delete_source_from_s3": False,
            },
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.environment = aws.elasticbeanstalk.Environment(
            name,
            # An explicit name (no autonaming suffix): the control plane, EB events and
            # EventBridge rules find the environment by this name.
            name=args.name,
            application=self.application.name,
            solution_stack_name=args.solution_stack,
            tier="WebServer",
            settings=_option_settings(args),
            tags=args.tags,
            # "0" returns from `pulumi up` as soon as EB accepts the request. The control
            # plane's state machine waits for Status Ready itself, with its own retries
            # and timeouts, so the CodeBuild build does not sit through the launch.
            wait_for_ready_timeout="0",
            opts=pulumi.ResourceOptions(
                parent=self,
                # The control plane deploys application versions with UpdateEnvironment,
                # outside Pulumi. Ignoring `version` keeps a refresh followed by `up` from
                # rolling the environment back to the version recorded in state.
                ignore_changes=["version"],
            ),
        )

        self.cname = self.environment.cname
        self.register_outputs(
            {
                "applicationName": self.application.name,
                "environmentName": self.environment.name,
                "cname": self.cname,
            }
        )


def _option_settings(args: BeanstalkEnvironmentArgs) -> list[dict[str, pulumi.Input[str]]]:
    options: list[tuple[str, str, pulumi.Input[str]]] = [
        ("aws:elasticbeanstalk:environment", "EnvironmentType", "LoadBalanced"),
        ("aws:elasticbeanstalk:environment", "LoadBalancerType", "application"),
        ("aws:elasticbeanstalk:environment", "ServiceRole", args.service_role_arn),
        (
            "aws:elasticbeanstalk:environment:process:default",
            "HealthCheckPath",
            args.health_check_path,
        ),
        ("aws:elasticbeanstalk:environment:process:default", "MatcherHTTPCode", "200"),
        ("aws:elasticbeanstalk:healthreporting:system", "SystemType", "enhanced"),
        ("aws:elasticbeanstalk:command", "DeploymentPolicy", "Rolling"),
        ("aws:elasticbeanstalk:command", "BatchSizeType", "Percentage"),
        ("aws:elasticbeanstalk:command", "BatchSize", "50"),
        ("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateEnabled", "true"),
        ("aws:autoscaling:updatepolicy:rollingupdate", "RollingUpdateType", "Health"),
        ("aws:autoscaling:launchconfiguration", "IamInstanceProfile", args.instance_profile_name),
        ("aws:autoscaling:launchconfiguration", "SecurityGroups", args.instance_security_group_id),
        ("aws:ec2:instances", "InstanceTypes", args.instance_type),
        ("aws:autoscaling:asg", "MinSize", str(args.min_instances)),
        ("aws:autoscaling:asg", "MaxSize", str(args.max_instances)),
        # Managed platform updates need enhanced health and the service role above.
        ("aws:elasticbeanstalk:managedactions", "ManagedActionsEnabled", "true"),
        ("aws:elasticbeanstalk:managedactions", "PreferredStartTime", "Sun:03:00"),
        ("aws:elasticbeanstalk:managedactions:platformupdate", "UpdateLevel", "minor"),
    ]
    if args.ec2_key_name is not None:
        # NOTE: EB then opens port 22 in the security group it manages, by default to
        # 0.0.0.0/0 as EB users report (not checked against AWS). The option
        # SSHSourceRestriction narrows that source, and this program does not set it.
        options.append(("aws:autoscaling:launchconfiguration", "EC2KeyName", args.ec2_key_name))
    for key, value in sorted(args.app_environment.items()):
        options.append(("aws:elasticbeanstalk:application:environment", key, value))

    return [
        {"namespace": namespace, "name": option, "value": value}
        for namespace, option, value in options
    ]
