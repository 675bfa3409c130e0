#!/usr/bin/env python3
"""CDK app entry point: validates the environments file, wires the control plane stack and
the EB event forwarding stacks of the other regions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk

from control_plane.event_forwarding import EbEventForwardingStack, regions_to_forward
from control_plane.stack import ControlPlaneStack
from lambdas.common.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parent


def main() -> None:
    app = cdk.App()
    settings_file = app.node.try_get_context("environmentsFile") or "environments.yaml"
    try:
        settings = load_settings(ROOT / settings_file)
    except SettingsError as error:
        sys.exit(f"cdk synth stopped: {error}")
    region = os.environ.get("CDK_DEFAULT_REGION", "us-east-1")
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    ControlPlaneStack(
        app,
        "EbControlPlane",
        control_plane_settings=settings,
        # Beside the output folder, so concurrent synths never share a staging folder.
        lambda_staging_dir=Path(f"{app.outdir}-staging") / "lambda-code",
        env=cdk.Environment(account=account, region=region),
    )
    # EB events are regional: each other region with a managed environment forwards them.
    for other_region, names in regions_to_forward(settings, region).items():
        EbEventForwardingStack(
            app,
            f"EbControlPlaneEvents-{other_region}",
            control_plane_region=region,
            environment_names=names,
            env=cdk.Environment(account=account, region=other_region),
        )
    app.synth()


if __name__ == "__main__":
    main()
