"""Pulumi program of the web app: one stack per environment (dev, staging, prod)."""

import pulumi
from webapp.database import Database, DatabaseArgs
from webapp.environment import BeanstalkEnvironment, BeanstalkEnvironmentArgs
from webapp.iam import BeanstalkRoles, BeanstalkRolesArgs
from webapp.network import InstanceSecurityGroup, InstanceSecurityGroupArgs
from webapp.settings import load_settings
from webapp.storage import AppVersionsBucket, AppVersionsBucketArgs

# Checked first, so a missing secret stops the program before any resource is declared.
settings = load_settings()
name = f"{settings.project}-{settings.stack}"
tags = settings.tags

bucket = AppVersionsBucket(f"{name}-app-versions", AppVersionsBucketArgs(tags=tags))
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
