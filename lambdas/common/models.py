"""Shapes of the data the state machine passes between tasks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Trigger = Literal["github", "manual", "recovery", "schedule"]
Plan = Literal["provision", "recover", "wait-transitional", "check-drift", "none"]

VERSION_LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+\-]{0,99}$"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,63}$"
S3_URI_PATTERN = r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]/.+\.zip$"


class DeploymentOptions(BaseModel):
    """Per-request options. Unknown keys are rejected so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class DeploymentRequest(BaseModel):
    """The execution input after validation."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    environment: str = Field(min_length=1)
    version: str = Field(pattern=VERSION_LABEL_PATTERN)
    bundle: str = Field(pattern=S3_URI_PATTERN, description="s3://bucket/key.zip")
    request_id: str = Field(alias="requestId", pattern=REQUEST_ID_PATTERN)
    trigger: Trigger = "manual"
    started_by: str = Field(default="unknown", alias="startedBy", max_length=200)
    options: DeploymentOptions = Field(default_factory=DeploymentOptions)


class SecretReference(BaseModel):
    """The store of a required secret: SSM Parameter Store, Secrets Manager (optionally one key
    of its JSON value) or the stack's own config. Never the value."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: Literal["ssm", "secretsmanager", "stack_config"]
    name: str | None = None
    region: str | None = None
    json_key: str | None = Field(default=None, alias="jsonKey")


class Target(BaseModel):
    """The environment's stack and EB application, as Preflight resolved them."""

    model_config = ConfigDict(populate_by_name=True)

    environment: str
    region: str
    project: str
    stack: str
    backend_url: str = Field(alias="backendUrl")
    eb_application: str = Field(alias="ebApplication")
    health_path: str = Field(alias="healthPath")
    # Pulumi config key -> where the CodeBuild runner reads its value. References only, never
    # values.
    secrets: dict[str, SecretReference] = Field(default_factory=dict)
    # Pulumi Cloud backends only: the organization and the Secrets Manager name of the token.
    pulumi_org: str | None = Field(default=None, alias="pulumiOrg")
    pulumi_token_secret: str | None = Field(default=None, alias="pulumiTokenSecret")

    def read_state(self) -> Any:
        """Read the stack's state from whichever backend the environment uses."""
        from .pulumi_state import read_stack_state

        return read_stack_state(
            self.backend_url,
            self.project,
            self.stack,
            self.region,
            organization=self.pulumi_org,
            token_secret=self.pulumi_token_secret,
        )


class StackOutputs(BaseModel):
    """The stack outputs the deployment needs."""

    model_config = ConfigDict(populate_by_name=True)

    eb_environment_name: str = Field(alias="ebEnvironmentName")
    eb_application_name: str = Field(alias="ebApplicationName")
    environment_url: str | None = Field(default=None, alias="environmentUrl")
    health_check_url: str | None = Field(default=None, alias="healthCheckUrl")
    source: Literal["state", "fallback"] = "state"


class TaskEvent(BaseModel):
    """The payload every task after ValidateRequest receives; fields fill in as phases run."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    request: DeploymentRequest
    execution_arn: str = Field(alias="executionArn")
    target: Target | None = None
    outputs: StackOutputs | None = None
    lock: dict | None = None
    inspection: dict | None = None
    build: dict | None = None
    deployment: dict | None = None
    failure: dict | None = None
    # The version a wait or health check expects; the request's version unless rolling back.
    expected_version: str | None = Field(default=None, alias="expectedVersion")

    @property
    def version_to_check(self) -> str:
        return self.expected_version or self.request.version

    def require_target(self) -> Target:
        if self.target is None:
            raise RuntimeError("the task ran before Preflight resolved the target")
        return self.target

    def require_outputs(self) -> StackOutputs:
        if self.outputs is None:
            raise RuntimeError("the task ran before the stack outputs were resolved")
        return self.outputs
