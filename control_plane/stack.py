"""The control plane's CDK stack: state machine, task Lambdas, CodeBuild runner, table, buckets."""

from __future__ import annotations

import hashlib
import json
import shutil
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

from .github_oidc import GitHubDeployRole
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
        self._settings = control_plane_settings

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
        )
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
                destination=logs.LogGroup(
                    self, "StateMachineLogs", retention=logs.RetentionDays.THREE_MONTHS
                ),
                level=sfn.LogLevel.ERROR,
                include_execution_data=False,
            ),
        )

        self._recovery()
        self._drift_checks()
        self._readiness_events()

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
            self.table.grant_read_write_data(created)
            self.topic.grant_publish(created)
            self.state_machine.grant_start_execution(created)
            created.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["elasticbeanstalk:DescribeEnvironments"], resources=["*"]
                )
            )
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
        self.table.grant_read_write_data(function)
        function.add_to_role_policy(
            iam.PolicyStatement(actions=list(READINESS_CHECK_ACTIONS), resources=["*"])
        )
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
        self.table.grant_read_data(self.start_drift_check_function)
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
        return iam.PolicyStatement(
            actions=["ssm:GetParameter"],
            resources=[
                self.format_arn(
                    service="ssm",
                    resource="parameter",
                    resource_name="control-plane/*/maintenance",
                )
            ],
        )

    def _private_bucket(self, construct_id: str) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
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
            timeout=Duration.minutes(60),
        )
        self.state_bucket.grant_read_write(project)
        # What `pulumi up` needs to manage the program's resources. The services are the ones
        # infra/ declares; EB itself drives CloudFormation, Auto Scaling and load balancers.
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "elasticbeanstalk:*",
                    "cloudformation:*",
                    "autoscaling:*",
                    "elasticloadbalancing:*",
                    "ec2:*",
                    "rds:*",
                    "s3:*",
                    "acm:*",
                    "cloudfront:*",
                    "route53:*",
                    "cloudwatch:*",
                    "logs:*",
                    "sns:*",
                    "iam:GetRole",
                    "iam:CreateRole",
                    "iam:DeleteRole",
                    "iam:TagRole",
                    "iam:PassRole",
                    "iam:AttachRolePolicy",
                    "iam:DetachRolePolicy",
                    "iam:ListAttachedRolePolicies",
                    "iam:ListRolePolicies",
                    "iam:ListInstanceProfilesForRole",
                    "iam:GetInstanceProfile",
                    "iam:CreateInstanceProfile",
                    "iam:DeleteInstanceProfile",
                    "iam:AddRoleToInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile",
                    "iam:TagInstanceProfile",
                    "iam:CreateServiceLinkedRole",
                ],
                resources=["*"],
            )
        )
        project.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[
                    self.format_arn(
                        service="ssm", resource="parameter", resource_name="control-plane/*"
                    ),
                    # Required secrets may live elsewhere and in the environments' own regions.
                    *self._declared_secret_arns("ssm"),
                ],
            )
        )
        declared_secrets = self._declared_secret_arns("secretsmanager")
        if declared_secrets:
            project.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"], resources=declared_secrets
                )
            )
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
        """Create a Lambda function running `lambdas.<module>.handler` from the staged code."""
        return lambda_.Function(
            self,
            construct_id,
            runtime=lambda_.Runtime.PYTHON_3_11,
            handler=f"lambdas.{module}.handler",
            code=self._lambda_code,
            layers=[self._powertools_layer],
            timeout=Duration.seconds(timeout_seconds),
            memory_size=256,
            environment=environment,
            tracing=lambda_.Tracing.ACTIVE,
            **options,
        )

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
            self.table.grant_read_write_data(function)
        self.topic.grant_publish(functions.record)
        # ReadDriftResult writes or deletes the fast path's record of the last clean run.
        self.table.grant_read_write_data(functions.read_drift_result)
        self.table.grant_read_data(functions.prepare_recovery)
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
        for function in (
            functions.inspect_infrastructure,
            functions.resolve_outputs,
            functions.classify_build_failure,
            functions.read_drift_result,
        ):
            self.state_bucket.grant_read(function)
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
                                resource_name=f"{name}-*",
                                arn_format=ArnFormat.COLON_RESOURCE_NAME,
                            )
                        ],
                    )
                )
        self.bundle_bucket.grant_read(functions.preflight)
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
            functions.wait_for_deployment,
            functions.verify_health,
        )
        for function in eb_readers:
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["elasticbeanstalk:DescribeEnvironments"], resources=["*"]
                )
            )
        # WaitForDeployment also reads the update's events and the health causes.
        functions.wait_for_deployment.add_to_role_policy(
            iam.PolicyStatement(actions=list(READINESS_CHECK_ACTIONS[1:]), resources=["*"])
        )
        self._grant_readiness_check(functions.await_readiness)
        functions.deploy_version.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "elasticbeanstalk:DescribeEnvironments",
                    "elasticbeanstalk:DescribeApplicationVersions",
                    "elasticbeanstalk:CreateApplicationVersion",
                    "elasticbeanstalk:UpdateEnvironment",
                ],
                resources=["*"],
            )
        )
        self.bundle_bucket.grant_read(functions.deploy_version)
        functions.rollback.add_to_role_policy(
            iam.PolicyStatement(
                actions=[
                    "elasticbeanstalk:DescribeEnvironments",
                    "elasticbeanstalk:UpdateEnvironment",
                    "elasticbeanstalk:AbortEnvironmentUpdate",
                ],
                resources=["*"],
            )
        )
