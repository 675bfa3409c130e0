"""InspectInfrastructure's plan follows the documented order."""

from __future__ import annotations

import pytest

from lambdas.inspect_infrastructure import choose_plan

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
