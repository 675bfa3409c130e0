"""The forwarding stacks that bring other regions' EB events to the control plane."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from control_plane.event_forwarding import EbEventForwardingStack, regions_to_forward
from lambdas.common.settings import load_settings
from tests.conftest import REPO_ROOT


def test_sample_settings_forward_the_prod_region_only() -> None:
    settings = load_settings(REPO_ROOT / "environments.yaml")

    forwarded = regions_to_forward(settings, "us-east-1")

    prod = settings.environment("prod")
    assert forwarded == {prod.region: [prod.eb_environment_name]}
    assert "us-east-1" not in forwarded


def test_no_region_is_forwarded_to_itself() -> None:
    settings = load_settings(REPO_ROOT / "environments.yaml")
    prod_region = settings.environment("prod").region

    forwarded = regions_to_forward(settings, prod_region)

    assert prod_region not in forwarded
    assert "us-east-1" in forwarded


def test_rule_forwards_managed_eb_status_changes_to_the_control_plane_bus() -> None:
    app = cdk.App()
    stack = EbEventForwardingStack(
        app,
        "Forward",
        control_plane_region="us-east-1",
        environment_names=["webapp-prod"],
        env=cdk.Environment(account="123456789012", region="eu-west-1"),
    )
    template = Template.from_stack(stack)

    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.elasticbeanstalk"],
                "detail-type": ["Elastic Beanstalk resource status change"],
                "detail": {"EnvironmentName": ["webapp-prod"]},
            },
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {
                            "Fn::Join": [
                                "",
                                Match.array_with([":events:us-east-1:", ":event-bus/default"]),
                            ]
                        },
                        "RoleArn": Match.any_value(),
                    }
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {"PolicyDocument": {"Statement": [Match.object_like({"Action": "events:PutEvents"})]}},
    )


def test_forwarding_stack_needs_an_environment() -> None:
    with pytest.raises(ValueError, match="at least one EB environment name"):
        EbEventForwardingStack(
            cdk.App(), "Empty", control_plane_region="us-east-1", environment_names=[]
        )
