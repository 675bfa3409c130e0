"""Infra tier: the scheduled drift checks in the synthesized template and state machine.

Each environment's schedule runs every `drift_check.every_minutes` (360 in the sample
settings) and hands StartDriftCheck the environment and the event's time. A `trigger=schedule`
execution runs one Pulumi build and never reaches the states that deploy a version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from control_plane.sandbox.events import transform_input
from control_plane.sandbox.template import load_resources, synthesize
from lambdas.common import drift
from lambdas.common.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEDULED_EVENT = {
    "version": "0",
    "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-01-01T06:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/DriftCheckSchedule"],
    "detail": {},
}
# States that deploy or wait for a version; a drift check reaches none of them.
DEPLOYING_STATES = {
    "ResolveOutputs",
    "FallbackOutputs",
    "WaitForEnvironment",
    "DeployVersion",
    "WaitForDeployment",
    "VerifyHealth",
    "Rollback",
}


@pytest.fixture(scope="module")
def template_path() -> Path:
    return synthesize(REPO_ROOT / ".sandbox" / "cdk-cache")


@pytest.fixture(scope="module")
def template(template_path: Path) -> dict[str, Any]:
    return json.loads(template_path.read_text())


@pytest.fixture(scope="module")
def states(template_path: Path) -> dict[str, Any]:
    return load_resources(template_path, "us-east-1", "123456789012").definition["States"]


def drift_rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: item["Properties"]
        for logical_id, item in template["Resources"].items()
        if item["Type"] == "AWS::Events::Rule" and logical_id.startswith("DriftCheckSchedule")
    }


def reachable(states: dict[str, Any], start: str) -> set[str]:
    """Return the states reachable from `start` by Next, Choices and Default (not Catch)."""
    seen: set[str] = set()
    pending = [start]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        pending += [rule["Next"] for rule in state.get("Choices", [])]
        pending += [state[key] for key in ("Next", "Default") if key in state]
    return seen


def test_every_environment_is_checked_every_six_hours(template: dict[str, Any]) -> None:
    rules = drift_rules(template)
    environments = load_settings(REPO_ROOT / "environments.yaml").environments

    assert len(rules) == len(environments) == 3
    for properties in rules.values():
        assert properties["ScheduleExpression"] == "rate(6 hours)"
        assert properties["State"] == "ENABLED"
        target = properties["Targets"][0]
        assert target["Arn"]["Fn::GetAtt"][0].startswith("StartDriftCheckFunction")


def test_schedule_input_names_environment_and_event_time(template: dict[str, Any]) -> None:
    delivered = {}
    for properties in drift_rules(template).values():
        transformer = properties["Targets"][0]["InputTransformer"]
        payload = transform_input(transformer, SCHEDULED_EVENT)
        delivered[payload["environment"]] = payload

    assert sorted(delivered) == ["dev", "prod", "staging"]
    assert delivered["dev"] == {
        "environment": "dev",
        "scheduledAt": "2026-01-01T06:00:00Z",
        "eventId": "89d1a02d-5ec7-412e-82f5-13505f849b41",
    }


def test_starter_may_start_executions_and_read_the_ledger(template: dict[str, Any]) -> None:
    functions = [
        item["Properties"]
        for logical_id, item in template["Resources"].items()
        if item["Type"] == "AWS::Lambda::Function"
        and logical_id.startswith("StartDriftCheckFunction")
    ]
    policies = [
        item["Properties"]["PolicyDocument"]["Statement"]
        for logical_id, item in template["Resources"].items()
        if item["Type"] == "AWS::IAM::Policy" and logical_id.startswith("StartDriftCheckFunction")
    ]
    actions: set[str] = set()
    for statement in policies[0]:
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)

    assert len(functions) == 1
    assert functions[0]["Handler"] == "lambdas.start_drift_check.handler"
    assert functions[0]["Timeout"] == drift.START_DRIFT_CHECK_TIMEOUT_SECONDS
    assert {"TABLE_NAME", "STATE_MACHINE_ARN"} <= set(functions[0]["Environment"]["Variables"])
    assert {"states:StartExecution", "ssm:GetParameter", "dynamodb:GetItem"} <= actions
    assert "dynamodb:PutItem" not in actions


def test_plan_choice_sends_scheduled_checks_to_their_build(states: dict[str, Any]) -> None:
    choices = states["ChoosePlan"]["Choices"]
    check_only = next(rule for rule in choices if rule["Next"] == "CheckOnly")
    remediate = next(rule for rule in choices if rule["Next"] == "CheckAndRemediate")

    assert check_only["And"] == [
        {"Variable": "$.request.trigger", "StringEquals": "schedule"},
        {"Variable": "$.inspection.checkOnly", "BooleanEquals": True},
    ]
    assert remediate == {
        "Variable": "$.request.trigger",
        "StringEquals": "schedule",
        "Next": "CheckAndRemediate",
    }
    assert choices.index(check_only) < choices.index(remediate)
    assert states["ChoosePlan"]["Default"] == "CheckDrift"
    assert states["CheckOnly"]["Result"] == "check-only"
    assert states["CheckAndRemediate"]["Result"] == "check"
    assert states["CheckOnly"]["Next"] == states["CheckAndRemediate"]["Next"] == "RunDriftCheck"


def test_drift_check_never_deploys_a_version(states: dict[str, Any]) -> None:
    after_build = reachable(states, "RunDriftCheck")

    assert after_build == {
        "RunDriftCheck",
        "ReadDriftResult",
        "ReleaseLockAfterDriftCheck",
        "RecordDriftCheck",
        "DriftCheckOutcome",
        "NoDrift",
        "DriftDetected",
        "DriftRemediated",
    }
    assert not after_build & DEPLOYING_STATES


def test_drift_check_build_failures_are_classified(states: dict[str, Any]) -> None:
    build = states["RunDriftCheck"]
    variables = {item["Name"]: item for item in build["Parameters"]["EnvironmentVariablesOverride"]}

    assert build["Resource"] == "arn:aws:states:::codebuild:startBuild.sync"
    assert variables["PULUMI_ACTION"]["Value.$"] == "$.pulumiAction"
    assert build["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "ClassifyBuildFailure"}
    ]


def test_each_drift_outcome_ends_in_a_succeed_state(states: dict[str, Any]) -> None:
    outcome = states["DriftCheckOutcome"]
    routes = {rule["StringEquals"]: rule["Next"] for rule in outcome["Choices"]}

    assert routes == {"DriftDetected": "DriftDetected", "DriftRemediated": "DriftRemediated"}
    assert outcome["Default"] == "NoDrift"
    for name in drift.DRIFT_OUTCOMES:
        assert states[name]["Type"] == "Succeed", name


def test_environment_without_checks_gets_no_schedule(tmp_path: Path) -> None:
    import aws_cdk as cdk
    import yaml
    from aws_cdk.assertions import Template

    from control_plane.stack import ControlPlaneStack
    from lambdas.common.settings import parse_settings

    document = yaml.safe_load((REPO_ROOT / "environments.yaml").read_text())
    document["environments"]["dev"]["drift_check"] = {"every_minutes": 0}
    document["environments"]["prod"]["drift_check"] = {"every_minutes": 90}
    settings = parse_settings(document, "environments.yaml")
    app = cdk.App(outdir=str(tmp_path / "cdk.out"))
    stack = ControlPlaneStack(
        app,
        "EbControlPlane",
        control_plane_settings=settings,
        lambda_staging_dir=tmp_path / "staging" / "lambda-code",
        env=cdk.Environment(account="123456789012", region="us-east-1"),
    )

    rules = drift_rules(Template.from_stack(stack).to_json())

    schedules = {}
    for properties in rules.values():
        payload = transform_input(properties["Targets"][0]["InputTransformer"], SCHEDULED_EVENT)
        schedules[payload["environment"]] = properties["ScheduleExpression"]
    assert schedules == {"prod": "rate(90 minutes)", "staging": "rate(6 hours)"}
