"""Infra tier: the recovery wiring in the synthesized template.

The numbers asserted here are the contract: the sweep runs every 15 minutes, and the
idempotency window of an in-progress event equals StartRecovery's Lambda timeout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from control_plane.sandbox.template import load_resources, synthesize
from lambdas.common import recovery

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template_path() -> Path:
    return synthesize(REPO_ROOT / ".sandbox" / "cdk-cache")


@pytest.fixture(scope="module")
def template(template_path: Path) -> dict[str, Any]:
    return json.loads(template_path.read_text())


def resource(template: dict[str, Any], kind: str, prefix: str) -> dict[str, Any]:
    found = [
        item
        for logical_id, item in template["Resources"].items()
        if item["Type"] == kind and logical_id.startswith(prefix)
    ]
    assert len(found) == 1, f"expected one {kind} named {prefix}*, found {len(found)}"
    return found[0]


def test_termination_rule_matches_managed_environments(template: dict[str, Any]) -> None:
    rule = resource(template, "AWS::Events::Rule", "EnvironmentTerminatedRule")["Properties"]

    assert rule["EventPattern"] == {
        "source": ["aws.elasticbeanstalk"],
        "detail-type": ["Elastic Beanstalk resource status change"],
        "detail": {
            "Status": ["Environment termination successful"],
            "EnvironmentName": ["webapp-dev", "webapp-prod", "webapp-staging"],
        },
    }
    target = rule["Targets"][0]["Arn"]["Fn::GetAtt"][0]
    assert target.startswith("StartRecoveryFunction")


def test_sweep_runs_every_fifteen_minutes(template: dict[str, Any]) -> None:
    rule = resource(template, "AWS::Events::Rule", "RecoverySweepSchedule")["Properties"]

    assert rule["ScheduleExpression"] == "rate(15 minutes)"
    assert rule["Targets"][0]["Arn"]["Fn::GetAtt"][0].startswith("SweepEnvironmentsFunction")


def test_start_recovery_timeout_is_the_idempotency_window(template: dict[str, Any]) -> None:
    function = resource(template, "AWS::Lambda::Function", "StartRecoveryFunction")
    properties = function["Properties"]

    assert properties["Timeout"] == recovery.START_RECOVERY_TIMEOUT_SECONDS == 30
    assert properties["Handler"] == "lambdas.start_recovery.handler"
    assert set(properties["Environment"]["Variables"]) >= {
        "TABLE_NAME",
        "TOPIC_ARN",
        "STATE_MACHINE_ARN",
    }


def test_failed_event_deliveries_are_retried(template: dict[str, Any]) -> None:
    configs = [
        item["Properties"]
        for item in template["Resources"].values()
        if item["Type"] == "AWS::Lambda::EventInvokeConfig"
        and item["Properties"]["FunctionName"]["Ref"].startswith(
            ("StartRecoveryFunction", "SweepEnvironmentsFunction")
        )
    ]

    assert len(configs) == 2
    assert all(config["MaximumRetryAttempts"] == 2 for config in configs)


def test_idempotency_records_expire_through_table_ttl(template: dict[str, Any]) -> None:
    table = resource(template, "AWS::DynamoDB::GlobalTable", "DeploymentTable")["Properties"]

    assert table["TimeToLiveSpecification"] == {
        "AttributeName": recovery.TTL_ATTRIBUTE,
        "Enabled": True,
    }


def test_recovery_functions_may_start_executions(template: dict[str, Any]) -> None:
    policies = [
        item["Properties"]
        for logical_id, item in template["Resources"].items()
        if item["Type"] == "AWS::IAM::Policy"
        and logical_id.startswith(("StartRecoveryFunction", "SweepEnvironmentsFunction"))
    ]

    assert len(policies) == 2
    for policy in policies:
        actions: set[str] = set()
        for statement in policy["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
        assert "states:StartExecution" in actions
        assert "elasticbeanstalk:DescribeEnvironments" in actions
        assert "ssm:GetParameter" in actions
        assert "sns:Publish" in actions


def test_recovery_prepares_after_the_lock(template_path: Path) -> None:
    states = load_resources(template_path, "us-east-1", "123456789012").definition["States"]

    choice = states["IsRecovery"]
    assert choice["Choices"] == [
        {"Variable": "$.request.trigger", "StringEquals": "recovery", "Next": "PrepareRecovery"}
    ]
    assert choice["Default"] == "Preflight"
    assert states["PrepareRecovery"]["ResultPath"] == "$.request"
    assert states["PrepareRecovery"]["Next"] == "Preflight"
