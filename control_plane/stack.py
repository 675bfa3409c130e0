"""The control plane's CDK stack: state machine, task Lambdas, CodeBuild runner, table, buckets."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as events_targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.common import drift, readiness, recovery
from lambdas.common.settings import (
    SecretsManagerSecret,
    Settings,
    SsmSecret,
    read_stack_config_keys,
)

from . import permissions
from .github_oidc import GitHubDeployRole
from .monitoring import DeploymentMonitoring
from .nag import acknowledge, finding
from .workflow import DeploymentWorkflow, TaskFunctions

REPO_ROOT = Path(__file__).resolve().parent.parent
# Task module name -> Lambda handler module under lambdas/.
TASK_MODULES = {field: field for field in TaskFunctions.__dataclass_fields__}
# Each task makes a few AWS calls and at most a few HTTP checks, and the SDK's retries of a
# throttled call wait at most 15 s (lambdas/common/aws.py). A task still running after this is
# stuck: Lambda stops it with Sandbox.Timedout, and Step Functions retries it once.
TASK_TIMEOUT_SECONDS = 60
# EB actions of the readiness checks of WaitForEnvironment and WaitForDeployment, which the
# awaits and ReleaseWaiters run too.
READINESS_CHECK_ACTIONS = (
    "elasticbeanstalk:DescribeEnvironments",
    "elasticbeanstalk:DescribeEvents",
    "elasticbeanstalk:DescribeEnvironmentHealth",
)
# DynamoDB actions the handlers call (lambdas/common: lease, store, recovery, readiness, and
# Powertools idempotency): no scans, batches, transactions or streams.
TABLE_READ_ACTIONS = ("dynamodb:GetItem", "dynamodb:Query")
TABLE_WRITE_ACTIONS = (
    *TABLE_READ_ACTIONS,
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
)
# Lambda, Step Functions and CodeBuild logs, and the S3 server access logs of the buckets.
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
ACCESS_LOG_EXPIRATION = Duration.days(365)
# Lambda's runtime for the handlers. NOTE: cdk-nag's rule L1 requires the newest Python
# runtime. It stays 3.11, the version of the Powertools layer build below and the only
# interpreter the tests and the sandbox run the handlers on.
LAMBDA_RUNTIME = lambda_.Runtime.PYTHON_3_11
# AWS's public Powertools layer, which also carries pydantic v2: the Python 3.11 x86_64 build.
POWERTOOLS_LAYER = (
    "arn:aws:lambda:{region}:017000801446:layer:AWSLambdaPowertoolsPythonV3-python311-x86_64:7"
)
# Staged beside environments.json; Preflight reads it through STACK_CONFIG_KEYS_FILE.
STACK_CONFIG_KEYS_FILE = "stack_config_keys.json"


def stage_lambda_code(settings: Settings, staging_dir: Path) -> Path:
    """Copy the handlers and the validated environments file (as JSON) into one asset folder."""
    if staging_dir.exists():
        shutil.rmtree(staging_dir)
    shutil.copytree(
        REPO_ROOT / "lambdas",
        staging_dir / "lambdas",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    (staging_dir / "environments.json").write_text(
        json.dumps(settings.model_dump(mode="json"), indent=2, sort_keys=True), encoding="utf-8"
    )
    # Preflight checks `stack_config` secrets against the stack settings files' keys. The
    # Lambda runtime has no YAML parser, so the keys ship as JSON, without any value.
    (staging_dir / STACK_CONFIG_KEYS_FILE).write_text(
        json.dumps(read_stack_config_keys(REPO_ROOT / "infra"), indent=2, sort_keys=True),
        encoding="utf-8",
    )
    return staging_dir


def fingerprint_directory(directory: Path) -> str:
    """Hash every file's path and content: the fingerprint of the Pulumi program and config."""
    digest = hashlib.sha256()
    for path in sorted(item for item in directory.rglob("*") if item.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def stage_infra_source(staging_dir: Path) -> Path:
    """Copy infra/ (program, runner, buildspec) into the CodeBuild source asset folder."""
    if staging_dir.exists():
        shutil.rmtree(staging_dir)
    shutil.copytree(
        REPO_ROOT / "infra",
        staging_dir / "infra",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "venv", ".venv"),
    )
    return staging_dir


class ControlPlaneStack(Stack):
    """Everything the control plane needs in one account and region."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        control_plane_settings: Settings,
        lambda_staging_dir: Path,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Server access logs are delivered under a bucket policy for the logging service, not
        # the legacy log-delivery ACL. Context is set before the stack has any construct.
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        self._settings = control_plane_settings
        self._program_scopes = permissions.program_scopes(control_plane_settings)
        self._arns = permissions.ArnBuilder(self)

        self.table = dynamodb.TableV2(
            self,
            "DeploymentTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
            # Only items with this attribute expire: recovery's idempotency records and counters.
            time_to_live_attribute=recovery.TTL_ATTRIBUTE,
            # The AWS managed key aws/dynamodb, so each use of the key shows in CloudTrail.
            encryption=dynamodb.TableEncryptionV2.aws_managed_key(),
        )
        self.access_logs_bucket = self._access_logs_bucket()
        self.bundle_bucket = self._private_bucket("BundleBucket")
        self.state_bucket = self._private_bucket("PulumiStateBucket")
        self.topic = sns.Topic(self, "DeploymentEvents", enforce_ssl=True)

        # A fixed name lets the task roles refer to this state machine's executions without a
        # dependency cycle (the state machine refers to the tasks).
        self.state_machine_name = f"{self.stack_name}-deployments"
        self.pulumi_project = self._pulumi_project(lambda_staging_dir.parent / "infra-source")
        functions = self._task_functions(control_plane_settings, lambda_staging_dir)
        workflow = DeploymentWorkflow(
            self,
            "Workflow",
            workflow_functions=functions,
            workflow_pulumi_project=self.pulumi_project,
            workflow_state_bucket_name=self.state_bucket.bucket_name,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "DeploymentStateMachine",
            state_machine_name=self.state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(workflow.definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=logs.LogGroup(self, "StateMachineLogs", retention=LOG_RETENTION),
                level=sfn.LogLevel.ERROR,
                include_execution_data=False,
            ),
        )
        self._acknowledge_state_machine_findings()

        self._recovery()
        self._drift_checks()
        self._readiness_events()
        # The dashboard, the alarms on the topic and the check for overdue executions.
        self.monitoring = DeploymentMonitoring(
            self,
            "Monitoring",
            state_machine=self.state_machine,
            topic=self.topic,
            control_plane_settings=control_plane_settings,
            python_function=self._python_function,
        )

        # The CLI finds the control plane through these outputs.
        CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        CfnOutput(self, "BundleBucketName", value=self.bundle_bucket.bucket_name)
        CfnOutput(self, "TableName", value=self.table.table_name)

        # Deployments from GitHub Actions through OIDC, when environments.yaml has a github section.
        if control_plane_settings.github is not None:
            self.github_deploy = GitHubDeployRole(
                self,
                "GitHubDeploy",
                github=control_plane_settings.github,
                environment_names=sorted(control_plane_settings.environments),
                bundle_bucket=self.bundle_bucket,
                state_machine=self.state_machine,
                state_machine_name=self.state_machine_name,
                table=self.table,
                eb_environment_arns=permissions.eb_environment_arns(
                    self._arns, self._program_scopes
                ),
            )

    def _recovery(self) -> None:
        """Wire automatic recovery: the EB termination rule, the sweep schedule, their Lambdas."""
        environment = {
            "TABLE_NAME": self.table.table_name,
            "TOPIC_ARN": self.topic.topic_arn,
            "STATE_MACHINE_ARN": self.state_machine.state_machine_arn,
            "ENVIRONMENTS_FILE": "environments.json",
            "POWERTOOLS_SERVICE_NAME": "control-plane",
        }

        def function(construct_id: str, module: str, timeout_seconds: int) -> lambda_.Function:
            created = self._python_function(
                construct_id,
                module,
                timeout_seconds=timeout_seconds,
                environment=environment,
                # A failed invocation (a duplicate event still in progress, a throttled call)
                # is retried by Lambda's asynchronous invocation, at least a minute later.
                retry_attempts=2,
                max_event_age=Duration.hours(6),
            )
            self._grant_table(created, write=True)
            self.topic.grant_publish(created)
            self.state_machine.grant_start_execution(created)
            self._grant_beanstalk(created, ["elasticbeanstalk:DescribeEnvironments"])
            created.add_to_role_policy(self._maintenance_switch_read())
            return created

        self.start_recovery_function = function(
            "StartRecoveryFunction", "start_recovery", recovery.START_RECOVERY_TIMEOUT_SECONDS
        )
        self.sweep_function = function(
            "SweepEnvironmentsFunction", "sweep_environments", recovery.SWEEP_TIMEOUT_SECONDS
        )
        managed_names = sorted(
            {settings.eb_environment_name for settings in self._settings.environments.values()}
        )
        self.termination_rule = events.Rule(
            self,
            "EnvironmentTerminatedRule",
            description="Starts the recovery of a managed EB environment that was terminated",
            event_pattern=events.EventPattern(
                source=[recovery.EB_SOURCE],
                detail_type=[recovery.RESOURCE_STATUS_CHANGE],
                detail={
                    "Status": [recovery.TERMINATION_SUCCESSFUL],
                    "EnvironmentName": managed_names,
                },
            ),
            targets=[events_targets.LambdaFunction(self.start_recovery_function)],
        )
        self.sweep_schedule = events.Rule(
            self,
            "RecoverySweepSchedule",
            description="Recovers a managed EB environment left terminated by a lost event",
            schedule=events.Schedule.rate(Duration.minutes(recovery.SWEEP_RATE_MINUTES)),
            targets=[events_targets.LambdaFunction(self.sweep_function)],
        )

    def _readiness_events(self) -> None:
        """Wire the release of waits on EB events: the rule and its ReleaseWaiters Lambda.

        The rule matches every status-change and health event of a managed EB environment.
        The Lambda runs the readiness check of that environment's waiters and completes the
        task tokens it decides (lambdas/common/readiness.py).
        """
        self.release_waiters_function = self._python_function(
            "ReleaseWaitersFunction",
            "release_waiters",
            timeout_seconds=TASK_TIMEOUT_SECONDS,
            environment={
                "TABLE_NAME": self.table.table_name,
                "ENVIRONMENTS_FILE": "environments.json",
                "POWERTOOLS_SERVICE_NAME": "control-plane",
            },
            # Lambda's asynchronous invocation retries a check that failed. A wait left
            # undecided meanwhile falls back to polling.
            retry_attempts=2,
            max_event_age=Duration.hours(1),
        )
        self._grant_readiness_check(self.release_waiters_function)
        managed_names = sorted(
            {settings.eb_environment_name for settings in self._settings.environments.values()}
        )
        self.readiness_rule = events.Rule(
            self,
            "EnvironmentReadinessRule",
            description="Releases the deployments that wait for a managed EB environment",
            event_pattern=events.EventPattern(
                source=[recovery.EB_SOURCE],
                detail_type=[recovery.RESOURCE_STATUS_CHANGE, readiness.HEALTH_STATUS_CHANGE],
                detail={"EnvironmentName": managed_names},
            ),
            targets=[events_targets.LambdaFunction(self.release_waiters_function)],
        )

    def _grant_readiness_check(self, function: lambda_.IFunction) -> None:
        """Let `function` store waiters, run the readiness checks and complete task tokens."""
        self._grant_table(function, write=True)
        self._grant_beanstalk(function, READINESS_CHECK_ACTIONS)
        # What StateMachine.grant_task_response grants. By the state machine's fixed name,
        # because the task functions exist before the state machine does.
        state_machine = self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "states:SendTaskSuccess",
                    "states:SendTaskFailure",
                    "states:SendTaskHeartbeat",
                ],
                resources=[state_machine],
            )
        )

    def _drift_checks(self) -> None:
        """Wire scheduled drift checks: one rate schedule per environment, one starter Lambda.

        An environment with `drift_check.every_minutes: 0` gets no schedule. Each rule passes
        the environment and the event's time to StartDriftCheck, which names the check after
        the schedule slot of that time.
        """
        self.start_drift_check_function = self._python_function(
            "StartDriftCheckFunction",
            "start_drift_check",
            timeout_seconds=drift.START_DRIFT_CHECK_TIMEOUT_SECONDS,
            environment={
                "TABLE_NAME": self.table.table_name,
                "STATE_MACHINE_ARN": self.state_machine.state_machine_arn,
                "ENVIRONMENTS_FILE": "environments.json",
                "POWERTOOLS_SERVICE_NAME": "control-plane",
            },
        )
        # The ledger (last Deployed version, destroy intent) and the lock are read, not written.
        self._grant_table(self.start_drift_check_function, write=False)
        self.state_machine.grant_start_execution(self.start_drift_check_function)
        self.start_drift_check_function.add_to_role_policy(self._maintenance_switch_read())

        self.drift_check_schedules: dict[str, events.Rule] = {}
        for name, settings in sorted(self._settings.environments.items()):
            minutes = settings.drift_check.every_minutes
            if minutes == 0:
                continue
            target_input = events.RuleTargetInput.from_object(
                {
                    "environment": name,
                    "scheduledAt": events.EventField.time,
                    "eventId": events.EventField.event_id,
                }
            )
            self.drift_check_schedules[name] = events.Rule(
                self,
                f"DriftCheckSchedule-{name}",
                description=f"Starts the scheduled drift check of environment {name}",
                schedule=events.Schedule.rate(Duration.minutes(minutes)),
                targets=[
                    events_targets.LambdaFunction(
                        self.start_drift_check_function, event=target_input
                    )
                ],
            )

    def _maintenance_switch_read(self) -> iam.PolicyStatement:
        """Read each environment's maintenance switch, an SSM parameter in this region."""
        return iam.PolicyStatement(
            actions=["ssm:GetParameter"],
            resources=[
                self.format_arn(
                    service="ssm",
                    resource="parameter",
                    resource_name=recovery.maintenance_parameter(name).lstrip("/"),
                )
                for name in sorted(self._settings.environments)
            ],
        )

    def _grant_table(self, function: lambda_.IFunction, *, write: bool) -> None:
        self.table.grant(function, *(TABLE_WRITE_ACTIONS if write else TABLE_READ_ACTIONS))

    def _grant_object_read(self, function: lambda_.IFunction, bucket: s3.IBucket) -> None:
        """Let `function` read the bucket's objects; ListBucket makes a missing key NoSuchKey."""
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[bucket.arn_for_objects("*")])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn])
        )

    def _grant_beanstalk(self, function: lambda_.IFunction, actions: Sequence[str]) -> None:
        """Grant EB actions on the managed environments and their applications only.

        EB filters what DescribeEnvironments and DescribeEvents return to the resources the
        caller may describe, so these ARNs must name the applications and environments that
        the Pulumi program creates (infra/__main__.py), or the environments look missing.
        """
        arns = self._arns
        scopes = self._program_scopes
        by_action = {
            "elasticbeanstalk:DescribeEvents": [
                *permissions.eb_application_arns(arns, scopes),
                *permissions.eb_environment_arns(arns, scopes),
            ],
            "elasticbeanstalk:DescribeApplicationVersions": permissions.eb_version_arns(
                arns, scopes
            ),
            "elasticbeanstalk:DeleteApplicationVersion": permissions.eb_version_arns(arns, scopes),
            "elasticbeanstalk:CreateApplicationVersion": [
                *permissions.eb_application_arns(arns, scopes),
                *permissions.eb_version_arns(arns, scopes),
            ],
        }
        environments = permissions.eb_environment_arns(arns, scopes)
        grouped: dict[tuple[str, ...], list[str]] = {}
        for action in actions:
            resources = tuple(by_action.get(action, environments))
            grouped.setdefault(resources, []).append(action)
        for resources, grouped_actions in grouped.items():
            function.add_to_role_policy(
                iam.PolicyStatement(actions=grouped_actions, resources=list(resources))
            )

    def _access_logs_bucket(self) -> s3.Bucket:
        """Create the bucket that receives the S3 server access logs of the other buckets."""
        bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            # Server access logging delivers only to SSE-S3 encrypted buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=ACCESS_LOG_EXPIRATION)],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            bucket,
            "S1",
            "This bucket receives the server access logs of the stack's other buckets; "
            "logging its own accesses into itself would log every delivery again.",
        )
        return bucket

    def _private_bucket(self, construct_id: str) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix=f"{construct_id}/",
        )

    def _pulumi_project(self, staging_dir: Path) -> codebuild.Project:
        """Create the CodeBuild project that runs infra/runner.py with the Pulumi CLI."""
        source_dir = stage_infra_source(staging_dir)
        self.program_fingerprint = fingerprint_directory(source_dir)
        self._infra_source = s3_assets.Asset(self, "InfraSource", path=str(source_dir))
        project = codebuild.Project(
            self,
            "PulumiRunner",
            description="Runs the Pulumi program in infra/ for the deployment state machine",
            build_spec=codebuild.BuildSpec.from_source_filename("infra/buildspec.yml"),
            # The Pulumi program ships with the control plane as an asset, so a deployment
            # always runs the program version that `cdk deploy` installed.
            source=codebuild.Source.s3(
                bucket=self._infra_source.bucket, path=self._infra_source.s3_object_key
            ),
            environment=codebuild.BuildEnvironment(
                build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                compute_type=codebuild.ComputeType.SMALL,
            ),
            # The stacks use the passphrase secrets provider. CodeBuild reads this SecureString
            # parameter of the project's region when a build starts and fails the build when
            # it is missing. The CDK grants the project's role ssm:GetParameters on exactly
            # this parameter; the AWS managed key aws/ssm needs no kms:Decrypt grant.
            environment_variables={
                "PULUMI_CONFIG_PASSPHRASE": codebuild.BuildEnvironmentVariable(
                    type=codebuild.BuildEnvironmentVariableType.PARAMETER_STORE,
                    value=self._settings.pulumi_passphrase_parameter,
                )
            },
            timeout=Duration.minutes(60),
        )
        # What `pulumi up`, `preview`, `refresh` and `destroy` need for the resources the
        # program creates, by their names (control_plane/permissions.py).
        for statement in permissions.state_bucket_statements(self.state_bucket):
            project.add_to_role_policy(statement)
        domains = permissions.read_domain_settings(
            REPO_ROOT / "infra",
            (scope.pulumi_stack for scope in self._program_scopes),
        )
        policies = permissions.pulumi_runner_policies(self, self._program_scopes, domains)
        self.pulumi_runner_policies = {
            name: iam.ManagedPolicy(
                self,
                f"PulumiRunner{name}Policy",
                description=f"PulumiRunner: {name.lower()} resources of the program in infra/",
                statements=statements,
                roles=[project.role],
            )
            for name, statements in policies.items()
        }
        # Required secrets may live in the environments' own regions.
        declared_parameters = self._declared_secret_arns("ssm")
        if declared_parameters:
            project.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ReadStackSecretParameters",
                    actions=["ssm:GetParameter"],
                    resources=declared_parameters,
                )
            )
        declared_secrets = self._declared_secret_arns("secretsmanager")
        if declared_secrets:
            project.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ReadStackSecrets",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=declared_secrets,
                )
            )
        self._acknowledge_runner_findings(project)
        return project

    def _declared_secret_arns(self, service: str) -> list[str]:
        """Return the ARNs of the required secrets of every environment stored in `service`.

        Each ARN is in the environment's region. A Secrets Manager secret given by name matches
        `<name>-??????`, the six random characters that Secrets Manager appends in its ARN.
        """
        arns: set[str] = set()
        for environment in self._settings.environments.values():
            for source in environment.required_secrets.values():
                if service == "ssm" and isinstance(source, SsmSecret):
                    arns.add(
                        self.format_arn(
                            service="ssm",
                            region=environment.region,
                            resource="parameter",
                            resource_name=source.name.lstrip("/"),
                        )
                    )
                elif service == "secretsmanager" and isinstance(source, SecretsManagerSecret):
                    if source.name.startswith("arn:"):
                        arns.add(source.name)
                        continue
                    arns.add(
                        self.format_arn(
                            service="secretsmanager",
                            region=environment.region,
                            resource="secret",
                            resource_name=f"{source.name}-??????",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    )
        return sorted(arns)

    def _python_function(
        self,
        construct_id: str,
        module: str,
        *,
        timeout_seconds: int,
        environment: dict[str, str],
        **options: Any,
    ) -> lambda_.Function:
        """Create a Lambda function running `lambdas.<module>.handler` from the staged code.

        Each function has its own role and log group. The role may write to that log group
        and nothing else until the caller grants what the handler calls; AWS's managed policy
        AWSLambdaBasicExecutionRole would allow writing to every log group of the account.
        """
        log_group = logs.LogGroup(self, f"{construct_id}Logs", retention=LOG_RETENTION)
        role = iam.Role(
            self,
            f"{construct_id}ServiceRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        # The log group's ARN ends in `:*`, which covers its log streams.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        function = lambda_.Function(
            self,
            construct_id,
            runtime=LAMBDA_RUNTIME,
            handler=f"lambdas.{module}.handler",
            code=self._lambda_code,
            layers=[self._powertools_layer],
            timeout=Duration.seconds(timeout_seconds),
            memory_size=256,
            environment=environment,
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=log_group,
            **options,
        )
        acknowledge(
            function,
            "L1",
            f"The handlers run on {LAMBDA_RUNTIME.name}, the Python version of the pinned "
            "Powertools layer build and of the tests and the sandbox; the runtime, the layer "
            "and the test interpreter move to a newer Python together.",
        )
        acknowledge(
            role,
            "IAM5",
            "X-Ray's PutTraceSegments and PutTelemetryRecords, which active tracing needs, "
            "take no resource-level permissions.",
            applies_to=["Resource::*"],
            children=True,
        )
        return function

    def _task_functions(self, settings: Settings, staging_dir: Path) -> TaskFunctions:
        # Staged once and shared by every function of the stack.
        self._lambda_code = lambda_.Code.from_asset(str(stage_lambda_code(settings, staging_dir)))
        self._powertools_layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "Powertools", POWERTOOLS_LAYER.format(region=self.region)
        )
        environment = {
            "TABLE_NAME": self.table.table_name,
            "STATE_BUCKET": self.state_bucket.bucket_name,
            "BUNDLE_BUCKET": self.bundle_bucket.bucket_name,
            "TOPIC_ARN": self.topic.topic_arn,
            "ENVIRONMENTS_FILE": "environments.json",
            "STACK_CONFIG_KEYS_FILE": STACK_CONFIG_KEYS_FILE,
            # The program CodeBuild runs; InspectInfrastructure compares it with the last run.
            "PROGRAM_FINGERPRINT": self.program_fingerprint,
            "POWERTOOLS_SERVICE_NAME": "control-plane",
        }
        functions = {}
        for field, module in TASK_MODULES.items():
            construct_id = "".join(part.title() for part in field.split("_")) + "Function"
            functions[field] = self._python_function(
                construct_id,
                module,
                timeout_seconds=TASK_TIMEOUT_SECONDS,
                environment=environment,
            )
        task_functions = TaskFunctions(**functions)
        self._grant(task_functions)
        return task_functions

    def _grant(self, functions: TaskFunctions) -> None:
        # The lease's holders: every task that takes, checks (and renews) or frees it.
        for function in (
            functions.acquire_lock,
            functions.release_lock,
            functions.record,
            functions.resolve_outputs,
            functions.inspect_infrastructure,
            functions.deploy_version,
            functions.rollback,
        ):
            self._grant_table(function, write=True)
        self.topic.grant_publish(functions.record)
        # ReadDriftResult writes or deletes the fast path's record of the last clean run.
        self._grant_table(functions.read_drift_result, write=True)
        self._grant_table(functions.prepare_recovery, write=False)
        functions.prepare_recovery.add_to_role_policy(self._maintenance_switch_read())
        executions = self.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # AcquireLock takes over a lease whose holder's execution has ended; Record reads the
        # execution's own history for its phase timings.
        functions.acquire_lock.add_to_role_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions])
        )
        functions.record.add_to_role_policy(
            iam.PolicyStatement(actions=["states:GetExecutionHistory"], resources=[executions])
        )
        for function in (functions.acquire_lock, functions.record):
            self._acknowledge_executions(function)
        for function in (
            functions.inspect_infrastructure,
            functions.resolve_outputs,
            functions.classify_build_failure,
            functions.read_drift_result,
        ):
            self._grant_object_read(function, self.state_bucket)
        token_secrets = sorted(
            {
                environment.pulumi_token_secret
                for environment in self._settings.environments.values()
                if environment.pulumi_token_secret
            }
        )
        for function in (functions.inspect_infrastructure, functions.resolve_outputs):
            for name in token_secrets:
                # Secrets Manager appends six random characters to a secret's name in its ARN.
                function.add_to_role_policy(
                    iam.PolicyStatement(
                        actions=["secretsmanager:GetSecretValue"],
                        resources=[
                            self.format_arn(
                                service="secretsmanager",
                                resource="secret",
                                resource_name=f"{name}-??????",
                                arn_format=ArnFormat.COLON_RESOURCE_NAME,
                            )
                        ],
                    )
                )
        self._grant_object_read(functions.preflight, self.bundle_bucket)
        # DescribeParameters takes no resource-level permissions; it returns no values.
        functions.preflight.add_to_role_policy(
            iam.PolicyStatement(actions=["ssm:DescribeParameters"], resources=["*"])
        )
        declared_secrets = self._declared_secret_arns("secretsmanager")
        if declared_secrets:
            functions.preflight.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:DescribeSecret"], resources=declared_secrets
                )
            )
        eb_readers = (
            functions.inspect_infrastructure,
            functions.wait_for_transition,
            functions.fallback_outputs,
            functions.wait_for_environment,
            functions.verify_health,
        )
        for function in eb_readers:
            self._grant_beanstalk(function, ["elasticbeanstalk:DescribeEnvironments"])
        # WaitForDeployment also reads the update's events and the health causes.
        self._grant_beanstalk(functions.wait_for_deployment, READINESS_CHECK_ACTIONS)
        self._grant_readiness_check(functions.await_readiness)
        # DeployVersion deletes the oldest unused versions when EB's version quota is reached.
        self._grant_beanstalk(
            functions.deploy_version,
            [
                "elasticbeanstalk:DescribeEnvironments",
                "elasticbeanstalk:DescribeApplicationVersions",
                "elasticbeanstalk:CreateApplicationVersion",
                "elasticbeanstalk:DeleteApplicationVersion",
                "elasticbeanstalk:UpdateEnvironment",
            ],
        )
        acknowledge(
            functions.deploy_version.role,
            "IAM5",
            "Version labels come with each deployment request, so the grant covers the "
            "versions of the managed applications.",
            applies_to=[
                finding(
                    r"Resource::arn:<AWS::Partition>:elasticbeanstalk:[\w-]+:"
                    r"(\d{12}|<AWS::AccountId>):applicationversion/[\w.-]+/\*"
                )
            ],
            children=True,
        )
        # CreateApplicationVersion reads the bundle with the caller's credentials.
        self._grant_object_read(functions.deploy_version, self.bundle_bucket)
        self._grant_bundle_copies(functions.deploy_version)
        self._grant_beanstalk(
            functions.rollback,
            [
                "elasticbeanstalk:DescribeEnvironments",
                "elasticbeanstalk:UpdateEnvironment",
                "elasticbeanstalk:AbortEnvironmentUpdate",
            ],
        )
        for function in (
            functions.inspect_infrastructure,
            functions.resolve_outputs,
            functions.classify_build_failure,
            functions.read_drift_result,
            functions.preflight,
            functions.deploy_version,
        ):
            self._acknowledge_bucket_objects(function)

    def _grant_bundle_copies(self, function: lambda_.Function) -> None:
        """Let DeployVersion copy bundles to EB's storage buckets of the other regions."""
        statements = permissions.bundle_copy_statements(
            self._arns, self._program_scopes, self.region
        )
        for statement in statements:
            function.add_to_role_policy(statement)
        if not statements:
            return
        acknowledge(
            function.role,
            "IAM5",
            "Bundle copies are objects under <application>/control-plane/ in EB's storage "
            "bucket of each other region, named after the bundle's key, and "
            "CreateStorageLocation names no resource.",
            applies_to=[
                finding(
                    r"Resource::arn:<AWS::Partition>:s3:::elasticbeanstalk-[\w-]+-"
                    r"(\d{12}|<AWS::AccountId>)/[\w.-]+/control-plane/\*"
                ),
                "Resource::*",
            ],
            children=True,
        )

    # cdk-nag findings that remain by design, each acknowledged on its own construct.

    def _acknowledge_bucket_objects(self, function: lambda_.Function) -> None:
        acknowledge(
            function.role,
            "IAM5",
            "Object keys name environments and requests, so reads cover the objects of the "
            "stack's own bucket.",
            applies_to=[
                finding(r"Resource::<(PulumiStateBucket|BundleBucket)[0-9A-F]{8}\.Arn>/\*")
            ],
            children=True,
        )

    def _acknowledge_executions(self, function: lambda_.Function) -> None:
        acknowledge(
            function.role,
            "IAM5",
            "Execution ARNs end in the execution name, so the grant covers this state "
            "machine's executions by its fixed name.",
            applies_to=[
                finding(r"Resource::arn:<AWS::Partition>:states:.*:execution:.*-deployments:\*")
            ],
            children=True,
        )

    def _acknowledge_state_machine_findings(self) -> None:
        machine = self.state_machine
        acknowledge(
            machine,
            "SF1",
            "Errors only, without execution data, so no request input or task result reaches "
            "the logs; the ledger, the execution history and X-Ray record each run.",
        )
        acknowledge(
            machine.role,
            "IAM5",
            "The CDK's LambdaInvoke grants each task function with its versions and aliases "
            "(`<arn>:*`); X-Ray tracing and log delivery to CloudWatch Logs take no "
            "resource-level permissions.",
            applies_to=[finding(r"Resource::<\w+Function[0-9A-F]{8}\.Arn>:\*"), "Resource::*"],
            children=True,
        )

    def _acknowledge_runner_findings(self, project: codebuild.Project) -> None:
        acknowledge(
            project,
            "CB4",
            "The project has no build artifacts to encrypt: the runner writes its result "
            "document to the state bucket itself, which SSE-S3 encrypts.",
        )
        acknowledge(
            project.role,
            "IAM5",
            "CodeBuild writes each build's log stream and report under the project's name, "
            "and Pulumi's checkpoints, locks and the runner's results are objects of the "
            "stack's own state bucket. The CDK grants the read of the build's source, the "
            "infra/ asset object, with the s3:GetObject*, GetBucket* and List* groups.",
            applies_to=[
                finding(r"Action::s3:(GetObject|GetBucket|List)\*"),
                finding(
                    r"Resource::arn:<AWS::Partition>:logs:.*:"
                    r"log-group:/aws/codebuild/<PulumiRunner[0-9A-F]{8}>:\*"
                ),
                finding(
                    r"Resource::arn:<AWS::Partition>:codebuild:.*:"
                    r"report-group/<PulumiRunner[0-9A-F]{8}>-\*"
                ),
                finding(r"Resource::<PulumiStateBucket[0-9A-F]{8}\.Arn>/\*"),
            ],
            children=True,
        )
        for name, policy in self.pulumi_runner_policies.items():
            for reason, patterns in permissions.RUNNER_POLICY_WILDCARDS[name]:
                acknowledge(
                    policy,
                    "IAM5",
                    reason,
                    applies_to=[finding(pattern) for pattern in patterns],
                    children=True,
                )
