"""Forwarding stacks: EB events of other regions reach the control plane's event bus.

EventBridge delivers an AWS service's events only in the region where they happen. For every
region that contains a managed environment other than the control plane's own, the CDK app adds
one small stack there: a rule on EB's status-change events of the managed environments of
that region, whose target is the control plane region's default event bus. Forwarded events
keep their source, detail type and detail, so the control plane's rules (recovery, readiness)
match them as if they were local.
"""

from __future__ import annotations

from aws_cdk import Aws, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from lambdas.common.recovery import EB_SOURCE, RESOURCE_STATUS_CHANGE
from lambdas.common.settings import Settings


def regions_to_forward(settings: Settings, control_plane_region: str) -> dict[str, list[str]]:
    """Map each other region to the EB environment names managed there."""
    regions: dict[str, set[str]] = {}
    for environment in settings.environments.values():
        if environment.region != control_plane_region:
            regions.setdefault(environment.region, set()).add(environment.eb_environment_name)
    return {region: sorted(names) for region, names in sorted(regions.items())}


class EbEventForwardingStack(Stack):
    """Sends one region's EB status-change events of managed environments to the control plane."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        control_plane_region: str,
        environment_names: list[str],
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        if not environment_names:
            raise ValueError("a forwarding stack needs at least one EB environment name")
        control_plane_bus = events.EventBus.from_event_bus_arn(
            self,
            "ControlPlaneBus",
            f"arn:{Aws.PARTITION}:events:{control_plane_region}:{Aws.ACCOUNT_ID}:event-bus/default",
        )
        self.rule = events.Rule(
            self,
            "ForwardEbStatusChanges",
            description=(
                f"Forwards EB status changes of managed environments to the control plane in "
                f"{control_plane_region}"
            ),
            event_pattern=events.EventPattern(
                source=[EB_SOURCE],
                detail_type=[RESOURCE_STATUS_CHANGE],
                detail={"EnvironmentName": environment_names},
            ),
        )
        # Same account, another region: EventBridge needs a role to put the events there.
        self.rule.add_target(targets.EventBus(control_plane_bus))
