"""Scenario files: what happens in a sandbox run, which faults are injected, what must come out.

A step or fault that this version cannot simulate yet is rejected by name, never ignored, so a
scenario never passes for a fault that was not injected.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from control_plane.sandbox.eb.health import check_sequence, health_phase
from lambdas.common.drift import DRIFT_OUTCOMES
from lambdas.common.errors import FAILURE_NAMES, UNEXPECTED_FAILURE
from lambdas.common.models import REQUEST_ID_PATTERN
from lambdas.common.recovery import BREAKER_OUTCOME
from lambdas.common.settings import format_validation_error
from lambdas.common.strict_yaml import load_yaml

SUPPORTED_STEPS = (
    "deploy",
    "wait_all",
    "advance",
    "stop_execution",
    "terminate_environment",
    "stack_config",
    "maintenance",
    "eb_event",
)
PLANNED_STEPS: tuple[str, ...] = ()
# Steps that may start a recovery, and `advance` a scheduled drift check too. An expectation on
# one checks the execution the step started.
RECOVERY_STEPS = ("terminate_environment", "eb_event", "advance")
SUPPORTED_FAULTS = (
    "outputs_unavailable",
    "environment_stuck",
    "codebuild_fails",
    "health_endpoint",
    "update_aborted",
    "eb_update_refused",
    "version_quota",
    "existing_version",
    "stack_locked",
    "stale_lock",
    "pending_operations",
    "outputs_wiped",
    "large_preview",
    "stale_terminated_environment",
    "missing_secret",
    "missing_pulumi_passphrase",
    "lost_events",
    "duplicate_events",
    "throttle",
    "task_crash",
    "task_timeout",
    "environment_health",
    "health_sequence",
)
PLANNED_FAULTS: tuple[str, ...] = ()
# Outcomes a scenario may expect: the failure names plus the ends that are not errors.
OUTCOMES = (
    "Deployed",
    "Superseded",
    *DRIFT_OUTCOMES,
    *FAILURE_NAMES,
    UNEXPECTED_FAILURE,
    BREAKER_OUTCOME,
)
# `Status` values of EB "resource status change" events (EB developer guide, EventBridge page).
EB_EVENT_STATUSES = (
    "Environment creation started",
    "Environment creation successful",
    "Environment creation failed",
    "Environment update started",
    "Environment update successful",
    "Environment update failed",
    "Environment termination started",
    "Environment termination successful",
    "Environment termination failed",
)


class ScenarioError(ValueError):
    """The scenario file is invalid; the message names the key and the problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClockSettings(_Strict):
    launch_seconds: float = Field(default=300, ge=0)
    update_seconds: float = Field(default=90, ge=0)
    terminate_seconds: float = Field(default=60, ge=0)


class DeployStep(_Strict):
    version: str = Field(min_length=1)
    bundle: str | None = None
    # It names the execution, so it follows the request id format; test other request ids
    # through raw_input.
    request_id: str | None = Field(default=None, pattern=REQUEST_ID_PATTERN)
    wait: bool = True
    # Deploy another environment than the scenario's (environments in parallel).
    environment: str | None = None
    # Raw execution input for invalid-request scenarios; replaces the generated request.
    raw_input: dict[str, Any] | None = None


class StopExecutionStep(_Strict):
    """Stop the execution a deploy step started, as a crashed or cancelled run would end."""

    step: int = Field(ge=1)


class EbEventStep(_Strict):
    """Publish an EB status-change event, by default for the scenario's environment."""

    status: Literal[EB_EVENT_STATUSES]  # type: ignore[valid-type]
    # Another EB environment and application, e.g. one the control plane does not manage.
    environment_name: str | None = Field(default=None, min_length=4, max_length=40)
    application_name: str | None = Field(default=None, min_length=1, max_length=100)


class MaintenanceStep(_Strict):
    """Set (on: true) or clear the environment's maintenance switch in SSM."""

    on: bool


class AdvanceStep(_Strict):
    seconds: float = Field(gt=0, le=7 * 24 * 3600)


class OutputsUnavailable(_Strict):
    reads: int = Field(ge=-1)


class EnvironmentStuck(_Strict):
    status: Literal["Launching", "Updating", "Terminating"]
    seconds: float = Field(gt=0)


class CodebuildFails(_Strict):
    builds: int = Field(ge=1)


class HealthEndpoint(_Strict):
    status: int = Field(ge=100, le=599)
    after_version: str = Field(min_length=1)


class UpdateAborted(_Strict):
    after_version: str = Field(min_length=1)


class EbUpdateRefused(_Strict):
    times: int = Field(ge=1)


class VersionQuota(_Strict):
    existing: int = Field(ge=1, le=1000)


class ExistingVersion(_Strict):
    label: str = Field(min_length=1)
    same_bundle: bool


HealthColor = Literal["Green", "Yellow", "Red", "Grey"]


class EnvironmentHealth(_Strict):
    """EB reports `color` while `after_version` is Ready; `status` and `causes` are optional."""

    color: HealthColor
    after_version: str = Field(min_length=1)
    # The enhanced health status; by default the first of the color (Ok, Warning, Degraded,
    # NoData).
    status: str | None = None
    # What DescribeEnvironmentHealth returns as Causes; by default one that fits the status.
    causes: list[str] | None = None

    @model_validator(mode="after")
    def _check_status(self) -> EnvironmentHealth:
        health_phase(self.color, 0, self.status, self.causes)
        return self


class HealthSequence(_Strict):
    """Once `after_version` is Ready, EB reports each color from that many seconds on."""

    after_version: str = Field(min_length=1)
    colors: list[tuple[HealthColor, Annotated[float, Field(ge=0)]]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_order(self) -> HealthSequence:
        check_sequence([health_phase(color, seconds) for color, seconds in self.colors])
        return self


class StackLocked(_Strict):
    """Another live Pulumi run holds the stack's lock until `runs` lock checks found it."""

    runs: int = Field(ge=1, le=100)


class StaleLock(_Strict):
    """A lock file left by a Pulumi run that ended `age_seconds` ago without removing it.

    `cancel_stale_locks` sets PULUMI_CANCEL_STALE_LOCKS=true on the CodeBuild project, as an
    operator may, so the runner cancels locks older than PULUMI_STALE_LOCK_SECONDS.
    """

    age_seconds: float = Field(gt=0, le=30 * 24 * 3600)
    cancel_stale_locks: bool = False


class NoArguments(_Strict):
    pass


class LargePreview(_Strict):
    kilobytes: int = Field(ge=1, le=16 * 1024)


class MissingSecret(_Strict):
    key: str = Field(min_length=1)


class Throttle(_Strict):
    """The next `times` calls of the operation get the service's throttling error.

    Names are botocore's: the service as boto3.client() takes it, the operation as the API
    names it (elasticbeanstalk, DescribeEnvironments).
    """

    service: str = Field(min_length=1)
    operation: str = Field(min_length=1)
    times: int = Field(ge=1, le=100)


class TaskFaultSpec(_Strict):
    """The Lambda function behind task state `state` fails its next `times` invocations."""

    state: str = Field(min_length=1)
    times: int = Field(ge=1, le=100)


# Faults that act on the EB application, which exists only after the first deployment.
FAULTS_NEEDING_APPLICATION = ("version_quota", "existing_version")
# Faults that edit the stack's checkpoint, which the first deployment writes.
FAULTS_NEEDING_STACK = ("pending_operations", "outputs_wiped")


class Expectation(_Strict):
    # A step's expectation names the step; one without a step counts `outcomes` over all of
    # the scenario's deploy steps (for races whose individual winners vary).
    step: int | None = Field(default=None, ge=1)
    # ABORTED: stopped by a stop_execution step. REJECTED: the start itself was refused (the
    # request id already ran for another version).
    status: Literal["SUCCEEDED", "FAILED", "ABORTED", "REJECTED"] | None = None
    outcome: Literal[OUTCOMES] | None = None  # type: ignore[valid-type]
    plan: Literal["provision", "recover", "check-drift", "none"] | None = None
    path_includes: list[str] = Field(default_factory=list)
    path_excludes: list[str] = Field(default_factory=list)
    path: list[str] | None = None
    serving_version: str | None = None
    max_transitions: int | None = Field(default=None, ge=1)
    cause_includes: list[str] = Field(default_factory=list)
    codebuild_builds: int | None = Field(default=None, ge=0)
    recoveries: int | None = Field(default=None, ge=0)
    # Scheduled drift checks (trigger=schedule executions) started during the step.
    drift_checks: int | None = Field(default=None, ge=0)
    # Retry attempts per state, as the execution history shows them; a state left out is not
    # checked.
    retries: dict[str, int] | None = None
    # Live (not Terminated) environments of the EB application after the step.
    live_environments: int | None = Field(default=None, ge=0)
    # Least size of the build logs of the Pulumi runs this step started, in KiB.
    min_build_log_kib: int | None = Field(default=None, ge=1)
    outcomes: dict[Literal[OUTCOMES], int] | None = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _check_scope(self) -> Expectation:
        if self.step is None and self.outcomes is None:
            raise ValueError("name the step it checks, or give `outcomes` counted over all steps")
        if self.step is None and (self.model_fields_set - {"outcomes"}):
            raise ValueError(
                "without a step only `outcomes` can be checked; "
                f"{sorted(self.model_fields_set - {'outcomes'})} need a step"
            )
        return self


class Step(BaseModel):
    """One step: exactly one of the known keys."""

    kind: str
    arguments: dict[str, Any]


class FaultSpec(BaseModel):
    kind: str
    arguments: Any
    at_step: int = 1


class Scenario(_Strict):
    name: str = Field(min_length=1)
    environment: str = Field(min_length=1)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    steps: list[dict[str, Any]] = Field(min_length=1)
    faults: list[dict[str, Any]] = Field(default_factory=list)
    expect: list[Expectation] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_step_numbers(self) -> Scenario:
        for expectation in self.expect:
            if expectation.step is not None and expectation.step > len(self.steps):
                raise ValueError(
                    f"expect refers to step {expectation.step} but there are {len(self.steps)}"
                )
        return self


def _single_key(item: Any, where: str) -> tuple[str, Any]:
    if not isinstance(item, dict):
        raise ScenarioError(f"{where}: expected a mapping such as `deploy: {{version: v1}}`")
    keys = [key for key in item if key != "at_step"]
    if len(keys) != 1:
        raise ScenarioError(f"{where}: expected one key naming the step or fault, got {keys}")
    return keys[0], item[keys[0]]


def parse_step(item: Any, index: int) -> Step:
    where = f"steps.{index - 1} (step {index})"
    kind, arguments = _single_key(item, where)
    if "at_step" in item:
        raise ScenarioError(f"{where}: at_step belongs to a fault, not to a step")
    if kind in PLANNED_STEPS:
        raise ScenarioError(
            f"{where}: step {kind!r} is not supported by this version of the sandbox yet "
            f"(supported: {', '.join(SUPPORTED_STEPS)})"
        )
    if kind not in SUPPORTED_STEPS:
        raise ScenarioError(f"{where}: unknown step {kind!r} (known: {', '.join(SUPPORTED_STEPS)})")
    arguments = {} if arguments is None else arguments
    if not isinstance(arguments, dict):
        raise ScenarioError(
            f"{where}.{kind}: expected a mapping of arguments, got {type(arguments).__name__}"
        )
    if kind == "maintenance":
        # YAML 1.1, which PyYAML implements, reads the bare key `on` as the boolean true.
        arguments = {("on" if key is True else key): value for key, value in arguments.items()}
    if kind == "deploy":
        try:
            DeployStep.model_validate(arguments)
        except ValidationError as error:
            raise ScenarioError(f"{where}.deploy: {format_validation_error(error)}") from None
    elif kind in _STEP_MODELS:
        try:
            _STEP_MODELS[kind].model_validate(arguments)
        except ValidationError as error:
            raise ScenarioError(f"{where}.{kind}: {format_validation_error(error)}") from None
    elif kind == "stack_config":
        if not arguments:
            raise ScenarioError(f"{where}.stack_config: name at least one config key to set")
        bad = [key for key in arguments if not isinstance(key, str) or key.count(":") != 1]
        if bad:
            raise ScenarioError(
                f"{where}.stack_config: keys {bad} must be Pulumi config keys such as "
                "webapp:staticSite"
            )
        secret = [key for key in arguments if key.startswith("db:")]
        if secret:
            raise ScenarioError(
                f"{where}.stack_config: {secret} are secrets; declare them under the "
                "environment's required_secrets in environments.yaml, not in stack config"
            )
    elif arguments:
        raise ScenarioError(f"{where}.{kind}: takes no arguments, got {sorted(arguments)}")
    return Step(kind=kind, arguments=arguments)


_STEP_MODELS: dict[str, type[BaseModel]] = {
    "advance": AdvanceStep,
    "stop_execution": StopExecutionStep,
    "eb_event": EbEventStep,
    "maintenance": MaintenanceStep,
}

_FAULT_MODELS: dict[str, type[BaseModel]] = {
    "outputs_unavailable": OutputsUnavailable,
    "environment_stuck": EnvironmentStuck,
    "codebuild_fails": CodebuildFails,
    "health_endpoint": HealthEndpoint,
    "update_aborted": UpdateAborted,
    "eb_update_refused": EbUpdateRefused,
    "version_quota": VersionQuota,
    "existing_version": ExistingVersion,
    "stack_locked": StackLocked,
    "stale_lock": StaleLock,
    "pending_operations": NoArguments,
    "outputs_wiped": NoArguments,
    "large_preview": LargePreview,
    "stale_terminated_environment": NoArguments,
    "missing_secret": MissingSecret,
    "missing_pulumi_passphrase": NoArguments,
    "lost_events": NoArguments,
    "duplicate_events": NoArguments,
    "throttle": Throttle,
    "task_crash": TaskFaultSpec,
    "task_timeout": TaskFaultSpec,
    "environment_health": EnvironmentHealth,
    "health_sequence": HealthSequence,
}


def parse_fault(item: Any, index: int, step_count: int) -> FaultSpec:
    where = f"faults.{index - 1}"
    kind, arguments = _single_key(item, where)
    if kind in PLANNED_FAULTS:
        raise ScenarioError(
            f"{where}: fault {kind!r} is not supported by this version of the sandbox yet "
            f"(supported: {', '.join(SUPPORTED_FAULTS)})"
        )
    if kind not in _FAULT_MODELS:
        raise ScenarioError(
            f"{where}: unknown fault {kind!r} (known: {', '.join(SUPPORTED_FAULTS)})"
        )
    try:
        model = _FAULT_MODELS[kind].model_validate(arguments or {})
    except ValidationError as error:
        raise ScenarioError(f"{where}.{kind}: {format_validation_error(error)}") from None
    at_step = item.get("at_step", 1)
    if isinstance(at_step, bool) or not isinstance(at_step, int) or not 1 <= at_step <= step_count:
        raise ScenarioError(f"{where}.at_step: must be a step number from 1 to {step_count}")
    if kind in FAULTS_NEEDING_APPLICATION and at_step == 1:
        raise ScenarioError(
            f"{where}.at_step: {kind} acts on the EB application, which the first deployment "
            "creates; arm it at step 2 or later"
        )
    if kind in FAULTS_NEEDING_STACK and at_step == 1:
        raise ScenarioError(
            f"{where}.at_step: {kind} edits the stack's Pulumi checkpoint, which the first "
            "deployment writes; arm it at step 2 or later"
        )
    if isinstance(model, TaskFaultSpec):
        _check_lambda_task_state(model.state, f"{where}.{kind}.state")
    if isinstance(model, Throttle):
        from .throttling import ThrottleSpecError, check_throttle

        try:
            check_throttle(model.service, model.operation)
        except ThrottleSpecError as error:
            raise ScenarioError(f"{where}.throttle: {error}") from None
    return FaultSpec(kind=kind, arguments=model, at_step=at_step)


@cache
def lambda_task_states() -> tuple[str, ...]:
    """Return the task states of the synthesized definition that invoke a Lambda function."""
    from .template import REPO_ROOT, load_resources, synthesize

    template = synthesize(REPO_ROOT / ".sandbox" / "cdk-cache")
    states = load_resources(template, "us-east-1", "123456789012").definition["States"]
    return tuple(
        sorted(
            name
            for name, state in states.items()
            if state["Type"] == "Task" and state["Resource"].startswith("arn:aws:lambda:")
        )
    )


def _check_lambda_task_state(state: str, where: str) -> None:
    names = lambda_task_states()
    if state not in names:
        raise ScenarioError(
            f"{where}: {state!r} is not a Lambda task state of the state machine "
            f"(Lambda task states: {', '.join(names)})"
        )


class LoadedScenario(BaseModel):
    source: str
    scenario: Scenario
    steps: list[Step]
    faults: list[FaultSpec]


def load_scenario(path: Path, known_environments: set[str]) -> LoadedScenario:
    """Parse and validate a scenario file; raise ScenarioError naming the key and the problem."""
    try:
        document = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read the file: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except (yaml.YAMLError, ValueError) as error:
        raise ScenarioError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ScenarioError(f"{path}: expected a mapping with name, environment, steps, expect")
    try:
        scenario = Scenario.model_validate(document)
    except ValidationError as error:
        raise ScenarioError(f"{path}: {format_validation_error(error)}") from None
    if scenario.environment not in known_environments:
        raise ScenarioError(
            f"{path}: environment: {scenario.environment!r} is not defined in the sample "
            f"settings (known: {', '.join(sorted(known_environments))})"
        )
    try:
        steps = [parse_step(item, index) for index, item in enumerate(scenario.steps, 1)]
        faults = [
            parse_fault(item, index, len(steps)) for index, item in enumerate(scenario.faults, 1)
        ]
        _check_consistency(scenario, steps, path.parent, known_environments)
        _check_missing_secrets(scenario.environment, faults)
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None
    return LoadedScenario(source=str(path), scenario=scenario, steps=steps, faults=faults)


def _check_consistency(
    scenario: Scenario, steps: list[Step], base: Path, known_environments: set[str]
) -> None:
    """Reject what would only fail after the sandbox started: a run never pays for a typo.

    A request id may repeat: the later step repeats the StartExecution of the earlier one, as a
    retried CI job would.
    """
    from ..bundle import BundleError, check_structure

    for index, step in enumerate(steps, 1):
        where = f"steps.{index - 1} (step {index})"
        if step.kind == "stop_execution":
            target = StopExecutionStep.model_validate(step.arguments).step
            if target >= index or steps[target - 1].kind != "deploy":
                raise ScenarioError(
                    f"{where}.stop_execution.step: step {target} must be an earlier deploy step"
                )
            continue
        if step.kind != "deploy":
            continue
        deploy = DeployStep.model_validate(step.arguments)
        if deploy.environment is not None and deploy.environment not in known_environments:
            raise ScenarioError(
                f"{where}.deploy.environment: {deploy.environment!r} is not defined in the "
                f"sample settings (known: {', '.join(sorted(known_environments))})"
            )
        if deploy.bundle and not deploy.bundle.startswith("s3://"):
            source = Path(deploy.bundle)
            try:
                check_structure(source if source.is_absolute() else base / source)
            except BundleError as error:
                raise ScenarioError(f"{where}.deploy.bundle: {error}") from None
    for number, expectation in enumerate(scenario.expect):
        if expectation.step is None:
            continue
        kind = steps[expectation.step - 1].kind
        if kind != "deploy" and kind not in RECOVERY_STEPS:
            raise ScenarioError(
                f"expect.{number}.step: step {expectation.step} is {kind!r}; expectations "
                f"apply to deploy steps and to the recovery that a {', '.join(RECOVERY_STEPS)} "
                "step starts"
            )


def _check_missing_secrets(environment: str, faults: list[FaultSpec]) -> None:
    """Reject a missing_secret whose key the environment does not require."""
    from lambdas.common.settings import load_settings

    from .template import REPO_ROOT

    keys = [
        (index, fault.arguments.key)
        for index, fault in enumerate(faults)
        if fault.kind == "missing_secret"
    ]
    if not keys:
        return
    required = load_settings(REPO_ROOT / "environments.yaml").environment(environment)
    for index, key in keys:
        if key not in required.required_secrets:
            known = ", ".join(sorted(required.required_secrets)) or "none"
            raise ScenarioError(
                f"faults.{index}.missing_secret.key: environment {environment} does not require "
                f"secret {key!r} (required: {known})"
            )
        if required.required_secrets[key].source == "stack_config":
            raise ScenarioError(
                f"faults.{index}.missing_secret.key: secret {key!r} of environment "
                f"{environment} is set in the stack's config file, which the sandbox does not "
                "change; choose an SSM or Secrets Manager secret"
            )


def check_unique_names(loaded: list[LoadedScenario]) -> None:
    """Scenario names must be unique in a suite."""
    seen: dict[str, str] = {}
    for item in loaded:
        name = item.scenario.name
        if name in seen:
            raise ScenarioError(f"{item.source}: name: {name!r} is also used by {seen[name]}")
        seen[name] = item.source
