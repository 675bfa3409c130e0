"""Deployment and recovery metrics, as the EMF lines CloudWatch reads."""

from __future__ import annotations

import json

import pytest

from lambdas.common.metrics import NAMESPACE, publish_deployment, publish_recovery


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    """Return (name, value, dimensions) of each EMF line written to stdout."""
    metrics = []
    for line in capsys.readouterr().out.splitlines():
        document = json.loads(line)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == NAMESPACE
        (definition,) = directive["Metrics"]
        name = definition["Name"]
        dimensions = {key: document[key] for key in directive["Dimensions"][0] if key != "service"}
        value = document[name]
        # Powertools writes a metric's values as a list, even for one value.
        metrics.append(
            {
                "name": name,
                "value": value[0] if isinstance(value, list) else value,
                "dimensions": dimensions,
            }
        )
    return metrics


def test_rolled_back_deployment_publishes_outcome_rollback_and_times(capsys) -> None:
    publish_deployment(
        {
            "environment": "dev",
            "outcome": "RolledBack",
            "plan": "none",
            "durationSeconds": 400.0,
            "phases": {
                "AwaitDeployment": 200.0,
                "WaitForDeployment": 120.0,
                "WaitForEnvironment": 30.0,
                "Preflight": 1.0,
            },
        }
    )

    metrics = emitted(capsys)

    by_name = {}
    for metric in metrics:
        by_name.setdefault(metric["name"], []).append(metric)
    assert by_name["Deployments"][0]["dimensions"] == {
        "environment": "dev",
        "outcome": "RolledBack",
    }
    assert by_name["Rollbacks"][0]["value"] == 1
    assert by_name["PlansChosen"][0]["dimensions"]["plan"] == "none"
    assert by_name["DeploymentDuration"][0]["value"] == 400.0
    assert {m["dimensions"]["state"] for m in by_name["PhaseDuration"]} == {
        "AwaitDeployment",
        "WaitForDeployment",
        "WaitForEnvironment",
        "Preflight",
    }
    assert by_name["ReadinessWait"][0]["value"] == 350.0


def test_deployed_outcome_publishes_no_rollback(capsys) -> None:
    publish_deployment({"environment": "dev", "outcome": "Deployed"})

    names = [metric["name"] for metric in emitted(capsys)]

    assert names == ["Deployments"]


@pytest.mark.parametrize(
    ("action", "expected"),
    [("started", ["Recoveries"]), ("breaker-opened", ["BreakerOpened"]), ("skipped", [])],
)
def test_recovery_decisions_publish_their_metric(capsys, action: str, expected: list) -> None:
    publish_recovery("dev", action)

    assert [metric["name"] for metric in emitted(capsys)] == expected
