"""Pulumi program of the web app: one stack per environment (dev, staging, prod)."""

import pulumi
import pulumi_aws as aws
from webapp.database import Database, DatabaseArgs
from webapp.domain import CustomDomain, CustomDomainArgs
from webapp.environment import BeanstalkEnvironment, BeanstalkEnvironmentArgs
from webapp.iam import BeanstalkRoles, BeanstalkRolesArgs
from webapp.network import InstanceSecurityGroup, InstanceSecurityGroupArgs
from webapp.settings import load_settings
from webapp.ssh import SshKeyPair, SshKeyPairArgs
from webapp.storage import AppVersionsBucket, PrivateBucket, PrivateBucketArgs

# Checked first, so a missing secret or a bad value stops the program before any resource
# is declared.
settings = load_settings()
name = f"{settings.project}-{settings.stack}"
tags = settings.tags

bucket = AppVersionsBucket(f"{name}-app-versions", PrivateBucketArgs(tags=tags))
roles = BeanstalkRoles(
    f"{name}-eb",
    BeanstalkRolesArgs(app_versions_bucket_arn=bucket.arn, tags=tags),
)
instance_security_group = InstanceSecurityGroup(
    f"{name}-instances",
    InstanceSecurityGroupArgs(description=f"EB instances of {name}", tags=tags),
)

app_environment: dict[str, pulumi.Input[str]] = {"APP_STACK": settings.stack}
if settings.database is not None:
    database = Database(
        f"{name}-db",
        DatabaseArgs(
            settings=settings.database,
            instance_security_group_id=instance_security_group.security_group_id,
            tags=tags,
        ),
    )
    # The password stays out of EB environment properties, which EB shows in plain text
    # to anyone allowed DescribeConfigurationSettings.
    app_environment.update(
        {
            "DB_HOST": database.address,
            "DB_PORT": database.port.apply(str),
            "DB_NAME": settings.database.name,
            "DB_USER": settings.database.username,
        }
    )

ec2_key_name: pulumi.Output[str] | None = None
if settings.ssh_public_key is not None:
    key_pair = SshKeyPair(
        f"{name}-ssh", SshKeyPairArgs(public_key=settings.ssh_public_key, tags=tags)
    )
    ec2_key_name = key_pair.key_name

beanstalk = BeanstalkEnvironment(
    name,
    BeanstalkEnvironmentArgs(
        name=name,
        solution_stack=settings.solution_stack,
        instance_type=settings.instance_type,
        min_instances=settings.min_instances,
        max_instances=settings.max_instances,
        health_check_path=settings.health_check_path,
        service_role_arn=roles.service_role.arn,
        instance_profile_name=roles.instance_profile.name,
        instance_security_group_id=instance_security_group.security_group_id,
        app_environment=app_environment,
        tags=tags,
        ec2_key_name=ec2_key_name,
    ),
)

environment_url = beanstalk.cname.apply(lambda cname: f"http://{cname}")
pulumi.export("ebEnvironmentName", beanstalk.environment.name)
pulumi.export("ebApplicationName", beanstalk.application.name)
pulumi.export("environmentUrl", environment_url)
pulumi.export(
    "healthCheckUrl", environment_url.apply(lambda url: f"{url}{settings.health_check_path}")
)
pulumi.export("appVersionsBucketName", bucket.bucket_name)

if settings.domain is not None:
    custom_domain = CustomDomain(
        f"{name}-domain",
        CustomDomainArgs(
            settings=settings.domain,
            origin_domain_name=beanstalk.cname,
            stack_region=aws.config.region,
            tags=tags,
        ),
    )
    pulumi.export("domainUrls", custom_domain.domain_urls)
    pulumi.export("cloudfrontDomainName", custom_domain.distribution.domain_name)

if settings.static_site_bucket:
    static_site = PrivateBucket(f"{name}-static-site", PrivateBucketArgs(tags=tags))
    pulumi.export("staticSiteBucketName", static_site.bucket_name)

if settings.dashboard_bucket:
    dashboard = PrivateBucket(f"{name}-dashboard", PrivateBucketArgs(tags=tags))
    pulumi.export("dashboardBucketName", dashboard.bucket_name)
