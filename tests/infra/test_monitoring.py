"""Infra tier: the deployments' dashboard, their alarms and the overdue check in the template.

The alarms must read the metrics exactly as the Lambdas publish them: CloudWatch matches a
metric by its namespace, name and full set of dimensions, so the tests compare the template
with the EMF lines the Lambdas' own code writes.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest

from control_plane import monitoring
from control_plane.sandbox.template import synthesize
from lambdas import check_overdue_executions
from lambdas.common import metrics
from lambdas.common.models import Plan

REPO_ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("dev", "prod", "staging")
STATES = "AWS/States"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    path = synthesize(REPO_ROOT / ".sandbox" / "cdk-cache")
    return json.loads(path.read_text())


def logical_id(template: dict[str, Any], kind: str, prefix: str) -> str:
    found = [
        key
        for key, item in template["Resources"].items()
        if item["Type"] == kind and key.startswith(prefix)
    ]
    assert len(found) == 1, f"expected one {kind} named {prefix}*, found {found}"
    return found[0]


def resource(template: dict[str, Any], kind: str, prefix: str) -> dict[str, Any]:
    return template["Resources"][logical_id(template, kind, prefix)]


def render(value: Any) -> str:
    """Render a Fn::Join of strings and tokens as text, each token as `${Ref}` or `${Id.Attr}`."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    separator, parts = value["Fn::Join"]
    return separator.join(render(part) for part in parts)


@pytest.fixture(scope="module")
def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    body = resource(template, "AWS::CloudWatch::Dashboard", "MonitoringDashboard")
    return json.loads(render(body["Properties"]["DashboardBody"]))


@pytest.fixture(scope="module")
def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        item["Properties"]["AlarmName"]: item["Properties"]
        for item in template["Resources"].values()
        if item["Type"] == "AWS::CloudWatch::Alarm"
    }


def dashboard_metrics(dashboard: dict[str, Any]) -> list[tuple[str, str, dict[str, str], str]]:
    """Return (namespace, name, dimensions, statistic) of every metric the graphs show."""
    found = []
    for widget in dashboard["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            if isinstance(row[-1], dict) and "expression" in row[-1]:
                continue
            options = row[-1] if isinstance(row[-1], dict) else {}
            fields = row[:-1] if options else row
            namespace, name, *pairs = fields
            dimensions = dict(zip(pairs[::2], pairs[1::2], strict=True))
            found.append((namespace, name, dimensions, options.get("stat", "Average")))
    return found


def dashboard_expressions(dashboard: dict[str, Any]) -> list[str]:
    return [
        row[-1]["expression"]
        for widget in dashboard["widgets"]
        for row in widget.get("properties", {}).get("metrics", [])
        if isinstance(row[-1], dict) and "expression" in row[-1]
    ]


def state_machine_id(template: dict[str, Any]) -> str:
    return logical_id(template, "AWS::StepFunctions::StateMachine", "DeploymentStateMachine")


def topic_ref(template: dict[str, Any]) -> dict[str, str]:
    return {"Ref": logical_id(template, "AWS::SNS::Topic", "DeploymentEvents")}


def metric_stats(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """Return each metric an alarm reads, as namespace, name, dimensions, statistic, period."""
    if "MetricName" in alarm:
        return [
            {
                "namespace": alarm["Namespace"],
                "name": alarm["MetricName"],
                "dimensions": {item["Name"]: item["Value"] for item in alarm["Dimensions"]},
                "statistic": alarm["Statistic"],
                "period": alarm["Period"],
            }
        ]
    return [
        {
            "namespace": query["MetricStat"]["Metric"]["Namespace"],
            "name": query["MetricStat"]["Metric"]["MetricName"],
            "dimensions": {
                item["Name"]: item["Value"] for item in query["MetricStat"]["Metric"]["Dimensions"]
            },
            "statistic": query["MetricStat"]["Stat"],
            "period": query["MetricStat"]["Period"],
        }
        for query in alarm["Metrics"]
        if "MetricStat" in query
    ]


# What the Lambdas publish


@pytest.fixture(scope="module")
def published() -> dict[str, set[tuple[str, ...]]]:
    """Map each metric the Lambdas publish to the sets of dimension names it is published with.

    The lines come from the Lambdas' own code, with the service name that the stack gives
    every function.
    """
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "sink", lines.append)
        patch.setenv("POWERTOOLS_SERVICE_NAME", monitoring.SERVICE_NAME)
        for outcome in ("Deployed", "RolledBack", "RollbackFailed"):
            metrics.publish_deployment(
                {
                    "environment": "dev",
                    "outcome": outcome,
                    "plan": "provision",
                    "durationSeconds": 600.0,
                    "phases": {"RunPulumi": 300.0, "WaitForEnvironment": 200.0},
                }
            )
        metrics.publish_recovery("dev", "started")
        metrics.publish_recovery("dev", "breaker-opened")
        metrics.publish(
            check_overdue_executions.METRIC_NAME,
            0,
            metrics.MetricUnit.Count,
            environment="dev",
        )
    found: dict[str, set[tuple[str, ...]]] = {}
    for line in lines:
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == metrics.NAMESPACE
        assert document["service"] == monitoring.SERVICE_NAME
        for metric in directive["Metrics"]:
            for dimension_names in directive["Dimensions"]:
                found.setdefault(metric["Name"], set()).add(tuple(sorted(dimension_names)))
    return found


def test_every_handler_sets_the_metrics_service(template: dict[str, Any]) -> None:
    # The control plane's own functions; CDK's custom resources publish no metrics.
    functions = {
        key: item["Properties"]
        for key, item in template["Resources"].items()
        if item["Type"] == "AWS::Lambda::Function"
        and item["Properties"].get("Handler", "").startswith("lambdas.")
    }

    assert functions
    for key, properties in functions.items():
        variables = properties["Environment"]["Variables"]
        assert variables.get("POWERTOOLS_SERVICE_NAME") == monitoring.SERVICE_NAME, key


def test_alarms_read_metrics_the_lambdas_publish(
    alarms: dict[str, dict[str, Any]], published: dict[str, set[tuple[str, ...]]]
) -> None:
    custom = [
        stat
        for alarm in alarms.values()
        for stat in metric_stats(alarm)
        if stat["namespace"] == metrics.NAMESPACE
    ]

    assert {stat["name"] for stat in custom} == {
        "Rollbacks",
        "BreakerOpened",
        check_overdue_executions.METRIC_NAME,
    }
    for stat in custom:
        assert tuple(sorted(stat["dimensions"])) in published[stat["name"]], stat
        assert stat["dimensions"]["service"] == monitoring.SERVICE_NAME


def test_dashboard_reads_metrics_the_lambdas_publish(
    dashboard: dict[str, Any], published: dict[str, set[tuple[str, ...]]]
) -> None:
    custom = [item for item in dashboard_metrics(dashboard) if item[0] == metrics.NAMESPACE]

    assert custom
    for _, name, dimensions, _ in custom:
        assert tuple(sorted(dimensions)) in published[name], (name, dimensions)
        assert dimensions["service"] == monitoring.SERVICE_NAME


# Dashboard


def test_dashboard_shows_execution_counts(
    template: dict[str, Any], dashboard: dict[str, Any]
) -> None:
    machine = "${" + state_machine_id(template) + "}"
    graphed = {
        (name, statistic)
        for namespace, name, dimensions, statistic in dashboard_metrics(dashboard)
        if namespace == STATES and dimensions == {"StateMachineArn": machine}
    }

    assert {
        ("ExecutionsStarted", "Sum"),
        ("ExecutionsSucceeded", "Sum"),
        ("ExecutionsFailed", "Sum"),
        ("ExecutionsTimedOut", "Sum"),
        ("ExecutionsAborted", "Sum"),
        ("ExecutionTime", "Average"),
        ("ExecutionTime", "Maximum"),
    } <= graphed


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_dashboard_has_a_row_per_environment(dashboard: dict[str, Any], environment: str) -> None:
    graphed = {
        (name, tuple(sorted((key, value) for key, value in dimensions.items() if key != "service")))
        for namespace, name, dimensions, _ in dashboard_metrics(dashboard)
        if namespace == metrics.NAMESPACE and dimensions["environment"] == environment
    }
    env = ("environment", environment)
    plans = {("PlansChosen", (env, ("plan", plan))) for plan in typing.get_args(Plan)}
    headings = [
        widget["properties"]["markdown"]
        for widget in dashboard["widgets"]
        if widget["type"] == "text"
    ]

    assert ("DeploymentDuration", (env,)) in graphed
    assert ("ReadinessWait", (env,)) in graphed
    assert plans <= graphed
    assert ("Rollbacks", (env, ("outcome", "RolledBack"))) in graphed
    assert ("Rollbacks", (env, ("outcome", "RollbackFailed"))) in graphed
    assert ("Recoveries", (env,)) in graphed
    assert ("BreakerOpened", (env,)) in graphed
    assert (check_overdue_executions.METRIC_NAME, (env,)) in graphed
    assert f"## {environment}" in headings


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_dashboard_searches_every_state_time(dashboard: dict[str, Any], environment: str) -> None:
    expected = (
        "SEARCH('{EbControlPlane,environment,service,state} "
        f'MetricName="PhaseDuration" environment="{environment}"\', \'Average\', 3600)'
    )

    assert expected in dashboard_expressions(dashboard)


def test_dashboard_lists_every_alarm(
    template: dict[str, Any], dashboard: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    (widget,) = [item for item in dashboard["widgets"] if item["type"] == "alarm"]
    alarm_ids = {
        key
        for key, item in template["Resources"].items()
        if item["Type"] == "AWS::CloudWatch::Alarm"
    }

    assert len(alarm_ids) == len(alarms) == 2 + 3 * len(ENVIRONMENTS)
    assert set(widget["properties"]["alarms"]) == {"${" + key + ".Arn}" for key in alarm_ids}


# Alarms


@pytest.mark.parametrize(
    ("alarm_name", "metric_name"),
    [
        ("EbControlPlane-executions-failed", "ExecutionsFailed"),
        ("EbControlPlane-executions-aborted", "ExecutionsAborted"),
    ],
)
def test_execution_alarm_reads_step_functions(
    template: dict[str, Any],
    alarms: dict[str, dict[str, Any]],
    alarm_name: str,
    metric_name: str,
) -> None:
    alarm = alarms[alarm_name]
    (stat,) = metric_stats(alarm)

    assert stat == {
        "namespace": STATES,
        "name": metric_name,
        "dimensions": {"StateMachineArn": {"Ref": state_machine_id(template)}},
        "statistic": "Sum",
        "period": 300,
    }
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [topic_ref(template)]
    assert "OKActions" not in alarm


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_rollback_alarm_counts_both_outcomes(
    template: dict[str, Any], alarms: dict[str, dict[str, Any]], environment: str
) -> None:
    alarm = alarms[f"EbControlPlane-{environment}-rollbacks"]
    expressions = [query for query in alarm["Metrics"] if "Expression" in query]
    stats = {query["Id"]: query for query in alarm["Metrics"] if "MetricStat" in query}

    assert [stat["dimensions"] for stat in metric_stats(alarm)] == [
        {"environment": environment, "outcome": outcome, "service": monitoring.SERVICE_NAME}
        for outcome in ("RolledBack", "RollbackFailed")
    ]
    assert {stat["name"] for stat in metric_stats(alarm)} == {"Rollbacks"}
    assert {(stat["statistic"], stat["period"]) for stat in metric_stats(alarm)} == {("Sum", 300)}
    (expression,) = expressions
    assert expression["ReturnData"] is True
    assert expression["Expression"] == " + ".join(f"FILL({key}, 0)" for key in stats)
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [topic_ref(template)]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_breaker_alarm_reads_breaker_openings(
    template: dict[str, Any], alarms: dict[str, dict[str, Any]], environment: str
) -> None:
    alarm = alarms[f"EbControlPlane-{environment}-breaker-opened"]

    assert metric_stats(alarm) == [
        {
            "namespace": metrics.NAMESPACE,
            "name": "BreakerOpened",
            "dimensions": {"environment": environment, "service": monitoring.SERVICE_NAME},
            "statistic": "Sum",
            "period": 300,
        }
    ]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [topic_ref(template)]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_overdue_alarm_reports_every_state_change(
    template: dict[str, Any], alarms: dict[str, dict[str, Any]], environment: str
) -> None:
    alarm = alarms[f"EbControlPlane-{environment}-overdue-executions"]

    assert metric_stats(alarm) == [
        {
            "namespace": metrics.NAMESPACE,
            "name": "OverdueExecutions",
            "dimensions": {"environment": environment, "service": monitoring.SERVICE_NAME},
            "statistic": "Maximum",
            "period": 600,
        }
    ]
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 2
    assert alarm["DatapointsToAlarm"] == 1
    assert alarm["TreatMissingData"] == "missing"
    assert alarm["AlarmActions"] == [topic_ref(template)]
    assert alarm["OKActions"] == [topic_ref(template)]
    assert alarm["InsufficientDataActions"] == [topic_ref(template)]


def test_topic_lets_only_stack_alarms_publish(
    template: dict[str, Any], alarms: dict[str, dict[str, Any]]
) -> None:
    policy = resource(template, "AWS::SNS::TopicPolicy", "DeploymentEventsPolicy")["Properties"]
    statements = policy["PolicyDocument"]["Statement"]
    (allow,) = [item for item in statements if item.get("Sid") == "AllowDeploymentAlarmsToPublish"]
    source = render(allow["Condition"]["ArnLike"]["aws:SourceArn"])

    assert allow["Effect"] == "Allow"
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == "sns:Publish"
    assert allow["Resource"] == topic_ref(template)
    assert (
        source
        == "arn:${AWS::Partition}:cloudwatch:us-east-1:${AWS::AccountId}:alarm:EbControlPlane-*"
    )
    assert all(name.startswith("EbControlPlane-") for name in alarms)


# The overdue check


def test_overdue_check_runs_every_ten_minutes(template: dict[str, Any]) -> None:
    rule = resource(template, "AWS::Events::Rule", "MonitoringOverdueExecutionsSchedule")
    function_id = logical_id(template, "AWS::Lambda::Function", "CheckOverdueExecutionsFunction")

    assert rule["Properties"]["ScheduleExpression"] == "rate(10 minutes)"
    assert [target["Arn"] for target in rule["Properties"]["Targets"]] == [
        {"Fn::GetAtt": [function_id, "Arn"]}
    ]


def test_overdue_check_may_only_list_executions(template: dict[str, Any]) -> None:
    function = resource(template, "AWS::Lambda::Function", "CheckOverdueExecutionsFunction")
    properties = function["Properties"]
    policy = resource(template, "AWS::IAM::Policy", "CheckOverdueExecutionsFunctionServiceRole")
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    granted = {
        action
        for statement in statements
        for action in (
            [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        )
    }
    (list_executions,) = [item for item in statements if item["Action"] == "states:ListExecutions"]

    assert properties["Handler"] == "lambdas.check_overdue_executions.handler"
    assert properties["Timeout"] == check_overdue_executions.CHECK_TIMEOUT_SECONDS
    assert properties["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {
        "Ref": state_machine_id(template)
    }
    # Writing its own logs and traces comes with every function of the stack.
    assert {action for action in granted if not action.startswith(("logs:", "xray:"))} == {
        "states:ListExecutions"
    }
    assert list_executions["Resource"] == {"Ref": state_machine_id(template)}
