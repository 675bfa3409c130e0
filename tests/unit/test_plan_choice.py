"""InspectInfrastructure's plan follows the documented order."""

from __future__ import annotations

import pytest

from lambdas.common.settings import EnvironmentSettings
from lambdas.inspect_infrastructure import apply_policy, choose_plan

OUTPUTS = {"ebEnvironmentName": "webapp-dev", "ebApplicationName": "webapp-dev"}


@pytest.mark.parametrize(
    ("outputs", "environment", "plan"),
    [
        ({}, None, "provision"),
        ({}, {"Status": "Ready"}, "provision"),
        (OUTPUTS, None, "recover"),
        (OUTPUTS, {"Status": "Launching"}, "wait-transitional"),
        (OUTPUTS, {"Status": "Updating"}, "wait-transitional"),
        (OUTPUTS, {"Status": "Terminating"}, "wait-transitional"),
        (OUTPUTS, {"Status": "Ready"}, "check-drift"),
    ],
)
def test_plan_for_state(outputs: dict, environment: dict | None, plan: str) -> None:
    chosen, reason = choose_plan(outputs, environment)

    assert chosen == plan
    assert reason


BASE = {
    "region": "us-east-1",
    "pulumi_project": "webapp",
    "pulumi_stack": "dev",
    "backend_url": "s3://state",
    "eb_application": "webapp-dev",
    "drift_check_max_age_seconds": 600,
}


@pytest.mark.parametrize(
    ("policy", "last_run", "plan"),
    [
        ("auto", {"fingerprint": "abc", "checkedAt": 1000}, "none"),
        ("auto", {"fingerprint": "old", "checkedAt": 1000}, "check-drift"),
        ("auto", {"fingerprint": "abc", "checkedAt": 100}, "check-drift"),
        ("auto", None, "check-drift"),
        ("always", {"fingerprint": "abc", "checkedAt": 1000}, "check-drift"),
        ("never", None, "none"),
    ],
)
def test_infra_check_policy(policy: str, last_run: dict | None, plan: str) -> None:
    settings = EnvironmentSettings.model_validate({**BASE, "infra_check": policy})

    chosen, reason = apply_policy(settings, "abc", last_run, now=1200)

    assert chosen == plan
    assert reason


@pytest.mark.parametrize(("policy", "plan"), [("auto", "check-drift"), ("never", "none")])
def test_pending_operations_defeat_fast_path(policy: str, plan: str) -> None:
    # GIVEN a recent clean run of the same program, and 1 pending operation left by a
    # Pulumi run that was killed afterwards
    settings = EnvironmentSettings.model_validate({**BASE, "infra_check": policy})
    last_run = {"fingerprint": "abc", "checkedAt": 1000}

    chosen, reason = apply_policy(settings, "abc", last_run, now=1200, pending_operations=1)

    assert chosen == plan
    if policy == "auto":
        assert "1 pending operation(s)" in reason
