#!/usr/bin/env python3
"""CDK app entry point: validates the environments file, wires the control plane stack and
the EB event forwarding stacks of the other regions, and runs cdk-nag's AwsSolutions checks
on all of them, so `cdk synth` reports every finding that no construct acknowledges."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk

from control_plane.event_forwarding import EbEventForwardingStack, regions_to_forward
from control_plane.nag import apply_aws_solutions_checks
from control_plane.stack import ControlPlaneStack
from lambdas.common.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent
STACK_NAME = "EbControlPlane"


def build_stacks(
    app: cdk.App, settings: Settings, *, region: str, account: str | None
) -> list[cdk.Stack]:
    """Add the control plane stack and one forwarding stack per other region to `app`."""
    stacks: list[cdk.Stack] = [
        ControlPlaneStack(
            app,
            STACK_NAME,
            control_plane_settings=settings,
            # Beside the output folder, so concurrent synths never share a staging folder.
            lambda_staging_dir=Path(f"{app.outdir}-staging") / "lambda-code",
            env=cdk.Environment(account=account, region=region),
        )
    ]
    # EB events are regional: each other region with a managed environment forwards them.
    for other_region, names in regions_to_forward(settings, region).items():
        stacks.append(
            EbEventForwardingStack(
                app,
                f"{STACK_NAME}Events-{other_region}",
                control_plane_region=region,
                environment_names=names,
                env=cdk.Environment(account=account, region=other_region),
            )
        )
    apply_aws_solutions_checks(app)
    return stacks


def main() -> None:
    app = cdk.App()
    settings_file = app.node.try_get_context("environmentsFile") or "environments.yaml"
    try:
        settings = load_settings(ROOT / settings_file)
    except SettingsError as error:
        sys.exit(f"cdk synth stopped: {error}")
    build_stacks(
        app,
        settings,
        region=os.environ.get("CDK_DEFAULT_REGION", "us-east-1"),
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
    )
    app.synth()


if __name__ == "__main__":
    main()
