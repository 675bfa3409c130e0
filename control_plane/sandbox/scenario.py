"""Scenario files: what happens in a sandbox run, which faults are injected, what must come out.

A step or fault that this version cannot simulate yet is rejected by name, never ignored, so a
scenario never passes for a fault that was not injected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lambdas.common.errors import FAILURE_NAMES, UNEXPECTED_FAILURE
from lambdas.common.settings import format_validation_error
from lambdas.common.strict_yaml import load_yaml

SUPPORTED_STEPS = ("deploy", "wait_all", "advance", "terminate_environment", "stack_config")
PLANNED_STEPS = ("maintenance", "eb_event")
SUPPORTED_FAULTS = (
    "outputs_unavailable",
    "environment_stuck",
    "codebuild_fails",
    "health_endpoint",
    "update_aborted",
    "eb_update_refused",
    "version_quota",
    "existing_version",
)
PLANNED_FAULTS = (
    "stack_locked",
    "environment_health",
    "throttle",
    "task_crash",
    "lost_events",
    "duplicate_events",
    "health_sequence",
    "stale_terminated_environment",
    "outputs_wiped",
    "stale_lock",
    "pending_operations",
    "task_timeout",
    "large_preview",
    "missing_secret",
)
# Outcomes a scenario may expect: the failure names plus the ends that are not errors.
OUTCOMES = ("Deployed", "Superseded", *FAILURE_NAMES, UNEXPECTED_FAILURE)


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
    request_id: str | None = None
    wait: bool = True
    # Raw execution input for invalid-request scenarios; replaces the generated request.
    raw_input: dict[str, Any] | None = None


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


# Faults that act on the EB application, which exists only after the first deployment.
FAULTS_NEEDING_APPLICATION = ("version_quota", "existing_version")


class Expectation(_Strict):
    step: int = Field(ge=1)
    status: Literal["SUCCEEDED", "FAILED"] | None = None
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
            if expectation.step > len(self.steps):
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
    if kind == "deploy":
        try:
            DeployStep.model_validate(arguments)
        except ValidationError as error:
            raise ScenarioError(f"{where}.deploy: {format_validation_error(error)}") from None
    elif kind == "advance":
        try:
            AdvanceStep.model_validate(arguments)
        except ValidationError as error:
            raise ScenarioError(f"{where}.advance: {format_validation_error(error)}") from None
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
                f"{where}.stack_config: {secret} are secrets; set them in SSM, not in stack config"
            )
    elif arguments:
        raise ScenarioError(f"{where}.{kind}: takes no arguments, got {sorted(arguments)}")
    return Step(kind=kind, arguments=arguments)


_FAULT_MODELS: dict[str, type[BaseModel]] = {
    "outputs_unavailable": OutputsUnavailable,
    "environment_stuck": EnvironmentStuck,
    "codebuild_fails": CodebuildFails,
    "health_endpoint": HealthEndpoint,
    "update_aborted": UpdateAborted,
    "eb_update_refused": EbUpdateRefused,
    "version_quota": VersionQuota,
    "existing_version": ExistingVersion,
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
    return FaultSpec(kind=kind, arguments=model, at_step=at_step)


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
        _check_consistency(scenario, steps, path.parent)
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None
    return LoadedScenario(source=str(path), scenario=scenario, steps=steps, faults=faults)


def _check_consistency(scenario: Scenario, steps: list[Step], base: Path) -> None:
    """Reject what would only fail after the sandbox started: a run never pays for a typo."""
    from ..bundle import BundleError, check_structure

    request_ids: dict[str, int] = {}
    for index, step in enumerate(steps, 1):
        if step.kind != "deploy":
            continue
        deploy = DeployStep.model_validate(step.arguments)
        request_id = deploy.request_id or f"r-{index}"
        if request_id in request_ids:
            raise ScenarioError(
                f"steps.{index - 1} (step {index}).deploy.request_id: {request_id!r} is already "
                f"used by step {request_ids[request_id]}; each deploy needs its own request id"
            )
        request_ids[request_id] = index
        if deploy.bundle and not deploy.bundle.startswith("s3://"):
            source = Path(deploy.bundle)
            try:
                check_structure(source if source.is_absolute() else base / source)
            except BundleError as error:
                raise ScenarioError(
                    f"steps.{index - 1} (step {index}).deploy.bundle: {error}"
                ) from None
    for number, expectation in enumerate(scenario.expect):
        kind = steps[expectation.step - 1].kind
        if kind != "deploy":
            raise ScenarioError(
                f"expect.{number}.step: step {expectation.step} is {kind!r}; expectations "
                "apply to deploy steps"
            )


def check_unique_names(loaded: list[LoadedScenario]) -> None:
    """Scenario names must be unique in a suite."""
    seen: dict[str, str] = {}
    for item in loaded:
        name = item.scenario.name
        if name in seen:
            raise ScenarioError(f"{item.source}: name: {name!r} is also used by {seen[name]}")
        seen[name] = item.source
