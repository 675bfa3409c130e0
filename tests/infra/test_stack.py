"""Infra tier: the synthesized CloudFormation template and the state machine definition in it.

The retry numbers asserted here are the contract: outputs are re-read 5 times 10 s apart and
readiness is checked 30 times 20 s apart.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from control_plane.sandbox.template import load_resources, synthesize
from lambdas.common.errors import FAILURE_NAMES, UNEXPECTED_FAILURE

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthesize(REPO_ROOT / ".sandbox" / "cdk-cache")


@pytest.fixture(scope="module")
def template(template_path: Path) -> dict[str, Any]:
    return json.loads(template_path.read_text())


@pytest.fixture(scope="module")
def states(template_path: Path) -> dict[str, Any]:
    return load_resources(template_path, "us-east-1", "123456789012").definition["States"]


def resources_of(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


def retry_for(state: dict[str, Any], error: str) -> dict[str, Any]:
    return next(rule for rule in state.get("Retry", []) if error in rule["ErrorEquals"])


def test_one_state_machine_with_tracing_and_quiet_logs(template: dict[str, Any]) -> None:
    machines = resources_of(template, "AWS::StepFunctions::StateMachine")

    assert len(machines) == 1
    properties = machines[0]["Properties"]
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ERROR"
    assert properties["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_outputs_are_retried_five_times_ten_seconds_apart(states: dict[str, Any]) -> None:
    rule = retry_for(states["ResolveOutputs"], "OutputsNotAvailable")
    fallback = next(
        catch
        for catch in states["ResolveOutputs"]["Catch"]
        if catch["ErrorEquals"] == ["OutputsNotAvailable"]
    )

    assert (rule["MaxAttempts"], rule["IntervalSeconds"], rule["BackoffRate"]) == (5, 10, 1)
    assert fallback["Next"] == "FallbackOutputs"


@pytest.mark.parametrize("state", ["WaitForEnvironment", "WaitForDeployment"])
def test_readiness_is_checked_thirty_times_twenty_seconds_apart(
    states: dict[str, Any], state: str
) -> None:
    rule = retry_for(states[state], "EnvironmentNotReady")

    assert rule["MaxAttempts"] + 1 == 30
    assert rule["IntervalSeconds"] == 20


def test_pulumi_runs_in_codebuild_synchronously(states: dict[str, Any]) -> None:
    run = states["RunPulumi"]
    variables = {item["Name"] for item in run["Parameters"]["EnvironmentVariablesOverride"]}

    assert run["Resource"] == "arn:aws:states:::codebuild:startBuild.sync"
    assert {"PULUMI_ACTION", "PULUMI_STACK", "PULUMI_BACKEND_URL", "RESULT_URI"} <= variables
    assert run["Catch"][0]["Next"] == "ClassifyBuildFailure"


def test_plan_choice_routes_each_plan(states: dict[str, Any]) -> None:
    choices = {rule["StringEquals"]: rule["Next"] for rule in states["ChoosePlan"]["Choices"]}

    assert choices == {
        "provision": "Provision",
        "recover": "Recover",
        "wait-transitional": "WaitForTransition",
        "none": "SkipPulumi",
    }
    assert states["ChoosePlan"]["Default"] == "CheckDrift"


def test_every_failure_ends_in_a_fail_state_of_its_name(states: dict[str, Any]) -> None:
    for name in (*FAILURE_NAMES, UNEXPECTED_FAILURE):
        assert states[name]["Type"] == "Fail"
        assert states[name]["Error"] == name


def test_every_task_after_validation_catches_into_the_failure_path(
    states: dict[str, Any],
) -> None:
    closing = {"ReleaseLock", "Record", "ReleaseLockAfterFailure", "RecordFailure"}
    for name, state in states.items():
        if state["Type"] != "Task" or name in closing:
            continue
        targets = {catch["Next"] for catch in state.get("Catch", [])}
        failure_paths = {
            "ReleaseLockAfterFailure",
            "RecordFailure",
            "ClassifyBuildFailure",
            "CanRollBack",
            "MarkRollbackFailed",
        }
        assert targets & failure_paths, name


def test_failures_after_the_update_started_roll_back(states: dict[str, Any]) -> None:
    for name in ("WaitForDeployment", "VerifyHealth"):
        assert [catch["Next"] for catch in states[name]["Catch"]] == ["CanRollBack"], name
    for name in ("Rollback", "WaitForRollback", "VerifyRollback"):
        assert states[name]["Catch"][0]["Next"] == "MarkRollbackFailed", name
    assert states["CanRollBack"]["Default"] == "NothingToRollBack"
    assert states["MarkRolledBack"]["Parameters"]["Error"] == "RolledBack"


def test_task_handlers_import(template_path: Path) -> None:
    functions = load_resources(template_path, "us-east-1", "123456789012").functions

    for spec in functions.values():
        module, _, attribute = spec.handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)), spec.handler


def test_buckets_are_private_and_encrypted(template: dict[str, Any]) -> None:
    for bucket in resources_of(template, "AWS::S3::Bucket"):
        properties = bucket["Properties"]
        assert properties["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
        assert properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]


def test_definition_avoids_what_moto_evaluates_differently(template_path: Path) -> None:
    """moto returns `$.a[0].b` wrapped in a list and cannot evaluate JSONata; AWS does both.

    The definition uses neither, so the sandbox and AWS take the same path.
    """
    text = json.dumps(load_resources(template_path, "us-east-1", "123456789012").definition)

    assert not re.search(r"\$[\w.]*\[\d+\]\.", text)
    assert "JSONata" not in text
    assert "{%" not in text
