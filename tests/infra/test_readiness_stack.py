"""Infra tier: event-driven readiness in the synthesized template.

The numbers asserted here are the contract: an await falls back to polling after 600 s
without an event, and gives up at its wait's budget, 900 s for the environment and 1200 s for
the deployment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from control_plane.sandbox.template import load_resources, synthesize

REPO_ROOT = Path(__file__).resolve().parents[2]
AWAITS = {
    # await: (polling task, what it waits for, budget s, where its failures go)
    "AwaitEnvironment": ("WaitForEnvironment", "environment", 900, "ReleaseLockAfterFailure"),
    "AwaitDeployment": ("WaitForDeployment", "deployment", 1200, "CanRollBack"),
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


def catch_to(state: dict[str, Any], errors: list[str]) -> str:
    return next(c["Next"] for c in state["Catch"] if c["ErrorEquals"] == errors)


def policy_actions(template: dict[str, Any], function_prefix: str) -> dict[str, Any]:
    """Return each action the function's role policies allow, with its resources."""
    allowed: dict[str, Any] = {}
    for logical_id, item in template["Resources"].items():
        if item["Type"] != "AWS::IAM::Policy" or not logical_id.startswith(function_prefix):
            continue
        for statement in item["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            for action in [listed] if isinstance(listed, str) else listed:
                allowed[action] = statement["Resource"]
    return allowed


@pytest.mark.parametrize("name", sorted(AWAITS))
def test_await_waits_for_a_task_token(states: dict[str, Any], name: str) -> None:
    state = states[name]
    _, wait_for, budget, _ = AWAITS[name]

    assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert state["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    assert state["Parameters"]["Payload"]["waitFor"] == wait_for
    assert state["HeartbeatSeconds"] == 600
    assert state["TimeoutSeconds"] == budget
    assert state["ResultPath"] == "$.environment"


@pytest.mark.parametrize("name", sorted(AWAITS))
def test_await_goes_where_its_polling_task_goes(states: dict[str, Any], name: str) -> None:
    state = states[name]
    poll, _, _, failures = AWAITS[name]

    assert state["Next"] == states[poll]["Next"]
    # Timeouts, a missed heartbeat (which moto reports as States.Timeout) and the release's
    # hand-over continue by polling.
    fallback = ["States.Timeout", "States.HeartbeatTimeout", "EnvironmentNotReady"]
    assert catch_to(state, fallback) == poll
    assert catch_to(state, ["States.ALL"]) == catch_to(states[poll], ["States.ALL"]) == failures
    assert states[f"Mark{name}Unfinished"]["Next"] == failures


@pytest.mark.parametrize("name", sorted(AWAITS))
def test_await_never_retries_its_own_timeout(states: dict[str, Any], name: str) -> None:
    retried = {error for rule in states[name]["Retry"] for error in rule["ErrorEquals"]}

    assert "States.Timeout" not in retried
    assert "States.HeartbeatTimeout" not in retried
    assert {"Lambda.TooManyRequestsException", "Runtime.ExitError", "Sandbox.Timedout"} <= retried


def test_readiness_rule_sends_managed_environments_events(template: dict[str, Any]) -> None:
    rules = [
        item["Properties"]
        for logical_id, item in template["Resources"].items()
        if item["Type"] == "AWS::Events::Rule" and logical_id.startswith("EnvironmentReadinessRule")
    ]

    assert len(rules) == 1
    assert rules[0]["EventPattern"] == {
        "source": ["aws.elasticbeanstalk"],
        "detail-type": ["Elastic Beanstalk resource status change", "Health status change"],
        "detail": {"EnvironmentName": ["webapp-dev", "webapp-prod", "webapp-staging"]},
    }
    target = rules[0]["Targets"][0]["Arn"]["Fn::GetAtt"][0]
    assert target.startswith("ReleaseWaitersFunction")


@pytest.mark.parametrize("function", ["AwaitReadinessFunction", "ReleaseWaitersFunction"])
def test_readiness_functions_may_complete_tokens(template: dict[str, Any], function: str) -> None:
    allowed = policy_actions(template, function)

    for action in ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"):
        resource = json.dumps(allowed[action])
        assert ":stateMachine:" in resource, action
        assert "EbControlPlane-deployments" in resource, action
    for action in (
        "elasticbeanstalk:DescribeEnvironments",
        "elasticbeanstalk:DescribeEvents",
        "elasticbeanstalk:DescribeEnvironmentHealth",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
    ):
        assert action in allowed, action


def test_polling_deployment_check_may_read_events_and_health(template: dict[str, Any]) -> None:
    allowed = policy_actions(template, "WaitForDeploymentFunction")

    assert "elasticbeanstalk:DescribeEvents" in allowed
    assert "elasticbeanstalk:DescribeEnvironmentHealth" in allowed
