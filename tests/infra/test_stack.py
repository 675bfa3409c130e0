"""Infra tier: the synthesized CloudFormation template and the state machine definition in it.

The retry numbers asserted here are the contract: outputs are re-read 5 times 10 s apart and
readiness is polled with backoff and full jitter until each wait's deadline, with at most
160 retries as a backstop.
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


def catches(state: dict[str, Any], error: str) -> bool:
    return any(
        error in catch["ErrorEquals"] or "States.ALL" in catch["ErrorEquals"]
        for catch in state.get("Catch", [])
    )


def test_one_state_machine_with_tracing_and_quiet_logs(template: dict[str, Any]) -> None:
    machines = resources_of(template, "AWS::StepFunctions::StateMachine")

    assert len(machines) == 1
    properties = machines[0]["Properties"]
    assert properties["TracingConfiguration"] == {"Enabled": True}
    assert properties["LoggingConfiguration"]["Level"] == "ERROR"
    assert properties["LoggingConfiguration"]["IncludeExecutionData"] is False
    destination = properties["LoggingConfiguration"]["Destinations"][0]
    log_group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert template["Resources"][log_group]["Properties"]["RetentionInDays"] == 90


def test_outputs_are_retried_five_times_ten_seconds_apart(states: dict[str, Any]) -> None:
    rule = retry_for(states["ResolveOutputs"], "OutputsNotAvailable")
    fallback = next(
        catch
        for catch in states["ResolveOutputs"]["Catch"]
        if catch["ErrorEquals"] == ["OutputsNotAvailable"]
    )

    assert (rule["MaxAttempts"], rule["IntervalSeconds"], rule["BackoffRate"]) == (5, 10, 1)
    assert fallback["Next"] == "FallbackOutputs"


@pytest.mark.parametrize("state", ["WaitForEnvironment", "WaitForDeployment", "WaitForRollback"])
def test_readiness_polls_with_backoff_and_full_jitter(states: dict[str, Any], state: str) -> None:
    rule = retry_for(states[state], "EnvironmentNotReady")

    assert rule["IntervalSeconds"] == 10
    assert rule["BackoffRate"] == 1.5
    assert rule["MaxDelaySeconds"] == 30
    assert rule["JitterStrategy"] == "FULL"
    # A backstop: the deadline ends the wait first. Jittered intervals average 15 s, so 160
    # retries are twice what an average 1200 s wait needs.
    assert rule["MaxAttempts"] == 160


def test_readiness_waits_receive_the_state_entered_time(states: dict[str, Any]) -> None:
    assert states["WaitForRollback"]["Parameters"]["waitStartedAt.$"] == "$$.State.EnteredTime"


@pytest.mark.parametrize(
    ("begin", "wait", "poll"),
    [
        ("BeginEnvironmentWait", "AwaitEnvironment", "WaitForEnvironment"),
        ("BeginDeploymentWait", "AwaitDeployment", "WaitForDeployment"),
    ],
)
def test_await_and_polling_share_one_start(
    states: dict[str, Any], begin: str, wait: str, poll: str
) -> None:
    """The await and its polling fallback measure one deadline from the wait's first state."""
    recorded = states[begin]

    assert recorded["Parameters"] == {"startedAt.$": "$$.State.EnteredTime"}
    assert recorded["Next"] == wait
    started_at = f"{recorded['ResultPath']}.startedAt"
    assert states[wait]["Parameters"]["Payload"]["waitStartedAt.$"] == started_at
    assert states[poll]["Parameters"]["waitStartedAt.$"] == started_at


def test_wait_deadline_is_not_retried(states: dict[str, Any]) -> None:
    for name in ("WaitForEnvironment", "WaitForDeployment", "WaitForRollback"):
        retried = {error for rule in states[name]["Retry"] for error in rule["ErrorEquals"]}
        assert "WaitTimedOut" not in retried, name
        assert catches(states[name], "WaitTimedOut"), name


def test_transition_wait_keeps_thirty_checks_twenty_seconds_apart(states: dict[str, Any]) -> None:
    rule = retry_for(states["WaitForTransition"], "EnvironmentNotReady")

    assert rule["MaxAttempts"] + 1 == 30
    assert rule["IntervalSeconds"] == 20
    assert "JitterStrategy" not in rule


def test_pulumi_runs_in_codebuild_synchronously(states: dict[str, Any]) -> None:
    run = states["RunPulumi"]
    variables = {item["Name"] for item in run["Parameters"]["EnvironmentVariablesOverride"]}

    assert run["Resource"] == "arn:aws:states:::codebuild:startBuild.sync"
    assert {"PULUMI_ACTION", "PULUMI_STACK", "PULUMI_BACKEND_URL", "RESULT_URI"} <= variables
    assert run["Catch"][0]["Next"] == "ClassifyBuildFailure"


def test_plan_choice_routes_each_plan(states: dict[str, Any]) -> None:
    choices = {
        rule["StringEquals"]: rule["Next"]
        for rule in states["ChoosePlan"]["Choices"]
        if rule.get("Variable") == "$.inspection.plan"
    }

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
    closing = {
        "ReleaseLock",
        "Record",
        "RecordSuperseded",
        "ReleaseLockAfterFailure",
        "RecordFailure",
        "ReleaseLockAfterDriftCheck",
        "RecordDriftCheck",
    }
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
    def catch_all(name: str) -> dict[str, Any]:
        return next(c for c in states[name]["Catch"] if c["ErrorEquals"] == ["States.ALL"])

    for name in ("WaitForDeployment", "VerifyHealth"):
        assert catch_all(name)["Next"] == "CanRollBack", name
        # A task Lambda could not finish is named in the cause on its way to the rollback.
        assert states[f"Mark{name}Unfinished"]["Next"] == "CanRollBack", name
    for name in ("Rollback", "WaitForRollback", "VerifyRollback"):
        assert catch_all(name)["Next"] == "MarkRollbackFailed", name
        assert states[f"Mark{name}Unfinished"]["Next"] == "MarkRollbackFailed", name
    assert states["CanRollBack"]["Default"] == "NothingToRollBack"
    assert states["MarkRolledBack"]["Parameters"]["Error"] == "RolledBack"


def test_task_handlers_import(template_path: Path) -> None:
    functions = load_resources(template_path, "us-east-1", "123456789012").functions

    for spec in functions.values():
        module, _, attribute = spec.handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)), spec.handler


def test_buckets_are_private_and_encrypted(template: dict[str, Any]) -> None:
    buckets = {
        logical_id: resource["Properties"]
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::S3::Bucket"
    }
    policies = {
        policy["Properties"]["Bucket"]["Ref"]: policy["Properties"]["PolicyDocument"]
        for policy in resources_of(template, "AWS::S3::BucketPolicy")
    }
    (logs_bucket,) = [key for key in buckets if key.startswith("AccessLogsBucket")]

    assert len(buckets) == 3
    for logical_id, properties in buckets.items():
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", logical_id
        # Every request without TLS is denied by the bucket's policy.
        denials = [s for s in policies[logical_id]["Statement"] if s["Effect"] == "Deny"]
        assert [d["Condition"] for d in denials] == [{"Bool": {"aws:SecureTransport": "false"}}], (
            logical_id
        )
        if logical_id != logs_bucket:
            logging = properties["LoggingConfiguration"]
            assert logging["DestinationBucketName"] == {"Ref": logs_bucket}, logical_id
            assert properties["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
    # The logging service may write there only for this account's buckets.
    delivery = [s for s in policies[logs_bucket]["Statement"] if s.get("Principal") != {"AWS": "*"}]
    assert {s["Principal"]["Service"] for s in delivery} == {"logging.s3.amazonaws.com"}
    assert all("aws:SourceAccount" in s["Condition"]["StringEquals"] for s in delivery)


def test_table_encrypted_with_point_in_time_recovery(template: dict[str, Any]) -> None:
    (table,) = resources_of(template, "AWS::DynamoDB::GlobalTable")
    properties = table["Properties"]

    assert properties["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    (replica,) = properties["Replicas"]
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_topic_accepts_only_tls(template: dict[str, Any]) -> None:
    (policy,) = resources_of(template, "AWS::SNS::TopicPolicy")
    denials = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"
    ]

    assert [d["Condition"] for d in denials] == [{"Bool": {"aws:SecureTransport": "false"}}]


def test_definition_avoids_what_moto_evaluates_differently(template_path: Path) -> None:
    """moto returns `$.a[0].b` wrapped in a list and cannot evaluate JSONata; AWS does both.

    The definition uses neither, so the sandbox and AWS take the same path.
    """
    text = json.dumps(load_resources(template_path, "us-east-1", "123456789012").definition)

    assert not re.search(r"\$[\w.]*\[\d+\]\.", text)
    assert "JSONata" not in text
    assert "{%" not in text
