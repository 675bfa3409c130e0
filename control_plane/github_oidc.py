"""The role that GitHub Actions jobs assume through OIDC to deploy, and GitHub's OIDC provider."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from lambdas.common.github_settings import GITHUB_OIDC_HOST, STS_AUDIENCE, GitHubSettings

from .nag import acknowledge, finding

# control_plane/executions.py:upload_bundle writes every bundle under this prefix.
BUNDLE_KEY_PREFIX = "bundles/"
# The maximum lifetime of a job's AWS credentials, which action.yml requests. `control-plane
# deploy` follows the execution to its end. That can take a queue for the lock (30 min), a
# Pulumi build (at most 60 min), the two EB waits (15 and 20 min) and a rollback (20 min).
MAX_SESSION_SECONDS = 3 * 60 * 60
ROLE_ARN_OUTPUT = "GitHubDeployRoleArn"


class GitHubDeployRole(Construct):
    """GitHub's OIDC provider (created, or imported by ARN) and the role its tokens may assume.

    The trust policy accepts only tokens whose `aud` is sts.amazonaws.com and whose `sub` is one
    of `github.subjects()`, compared with StringEquals, so no other repository, branch,
    environment or pull request event matches. The role may do what `control-plane deploy`
    does against AWS, and draw the graph of an execution with `control-plane show --graph`,
    and nothing else.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        github: GitHubSettings,
        environment_names: Sequence[str],
        bundle_bucket: s3.IBucket,
        state_machine: sfn.IStateMachine,
        state_machine_name: str,
        table: dynamodb.ITableV2,
        eb_environment_arns: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        if github.oidc_provider_arn is not None:
            provider_arn = github.oidc_provider_arn
        else:
            # No thumbprints: IAM then fetches the issuer's certificate chain itself.
            provider = iam.OidcProviderNative(
                self, "Provider", url=f"https://{GITHUB_OIDC_HOST}", client_ids=[STS_AUDIENCE]
            )
            provider_arn = provider.oidc_provider_arn
        self.provider_arn = provider_arn

        self.role = iam.Role(
            self,
            "Role",
            description=(
                f"Deploys through the control plane from GitHub Actions of {github.repository}"
            ),
            assumed_by=iam.WebIdentityPrincipal(
                provider_arn,
                conditions={
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                        f"{GITHUB_OIDC_HOST}:sub": github.subjects(),
                    }
                },
            ),
            max_session_duration=Duration.seconds(MAX_SESSION_SECONDS),
        )
        for statement in self._statements(
            stack,
            environment_names,
            bundle_bucket,
            state_machine,
            state_machine_name,
            table,
            eb_environment_arns,
        ):
            self.role.add_to_policy(statement)
        acknowledge(
            self.role,
            "IAM5",
            "Execution ARNs end in the execution name, which each request chooses, bundle "
            "keys end in a generated name under bundles/, and the stack's ARN ends in the id "
            "CloudFormation gave it.",
            applies_to=[
                finding(r"Resource::arn:<AWS::Partition>:states:.*:execution:.*-deployments:\*"),
                finding(
                    rf"Resource::arn:<AWS::Partition>:cloudformation:.*:stack/{stack.stack_name}/\*"
                ),
                finding(rf"Resource::<BundleBucket[0-9A-F]{{8}}\.Arn>/{BUNDLE_KEY_PREFIX}\*"),
            ],
            children=True,
        )

        output = CfnOutput(
            self,
            "RoleArn",
            value=self.role.role_arn,
            description="role-arn input of action.yml",
        )
        output.override_logical_id(ROLE_ARN_OUTPUT)

    @staticmethod
    def _statements(
        stack: Stack,
        environment_names: Sequence[str],
        bundle_bucket: s3.IBucket,
        state_machine: sfn.IStateMachine,
        state_machine_name: str,
        table: dynamodb.ITableV2,
        eb_environment_arns: Sequence[str],
    ) -> list[iam.PolicyStatement]:
        """Build what `control-plane deploy` calls on AWS (control_plane/cli.py)."""
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        control_plane_stack = stack.format_arn(
            service="cloudformation", resource="stack", resource_name=f"{stack.stack_name}/*"
        )
        return [
            # upload_bundle: one PutObject per bundle, no multipart upload.
            iam.PolicyStatement(
                sid="UploadBundles",
                actions=["s3:PutObject"],
                resources=[bundle_bucket.arn_for_objects(f"{BUNDLE_KEY_PREFIX}*")],
            ),
            iam.PolicyStatement(
                sid="StartDeployments",
                actions=["states:StartExecution"],
                resources=[state_machine.state_machine_arn],
            ),
            # Following an execution, attaching to the one a request id already started, and
            # reading the definition it ran for `control-plane show EXECUTION --graph`.
            iam.PolicyStatement(
                sid="FollowDeployments",
                actions=[
                    "states:DescribeExecution",
                    "states:GetExecutionHistory",
                    "states:DescribeStateMachineForExecution",
                ],
                resources=[executions],
            ),
            # The CLI finds the state machine, bucket and table in this stack's outputs.
            iam.PolicyStatement(
                sid="FindControlPlane",
                actions=["cloudformation:DescribeStacks"],
                resources=[control_plane_stack],
            ),
            # The CLI reads the outcome from the request's ledger record (pk ENV#<environment>,
            # sk REQUEST#<requestId>). Only the configured environments' partitions are
            # readable, so the idempotency records (pk IDEMPOTENCY#...) are not.
            iam.PolicyStatement(
                sid="ReadOutcome",
                actions=["dynamodb:GetItem"],
                resources=[table.table_arn],
                conditions={
                    "ForAllValues:StringEquals": {
                        "dynamodb:LeadingKeys": [f"ENV#{name}" for name in environment_names]
                    }
                },
            ),
            # After a Deployed outcome the CLI looks up the environment's URL to check the
            # version it serves. EB returns only the environments these ARNs name.
            iam.PolicyStatement(
                sid="FindAppUrl",
                actions=["elasticbeanstalk:DescribeEnvironments"],
                resources=list(eb_environment_arns),
            ),
        ]
