"""Functional tier: infra/runner.py driving the sandbox Pulumi engine against the EB simulator.

The runner runs in-process from a copy of `infra/`, because it works in its own directory and
writes the stack's config there. It calls the engine through the `pulumi` shim, as CodeBuild
calls the CLI, and its AWS clients and the engine reach an `AwsHarness` on 127.0.0.1. The
runner's sleeps advance the harness's virtual clock, so EB operations end while it waits.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from aws_harness import LAUNCH_SECONDS, UPDATE_SECONDS, AwsHarness

from control_plane.sandbox.pulumi_engine.crypto import new_salt_state

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_BIN = REPO_ROOT / "control_plane" / "sandbox" / "pulumi_engine" / "bin"
PASSPHRASE = "sandbox-passphrase"
PARAMETER = "/control-plane/dev/db-password"
ENV_URN = (
    "urn:pulumi:dev::webapp::webapp:beanstalk:BeanstalkEnvironment"
    "$aws:elasticbeanstalk/environment:Environment::webapp-dev"
)
HEALTH = ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath")


@functools.cache
def _shared_salt() -> str:
    return new_salt_state(PASSPHRASE)


def _load_runner(infra_dir: Path) -> ModuleType:
    """Import the copy's runner.py under its own name, so its INFRA_DIR is the copy."""
    spec = importlib.util.spec_from_file_location(
        f"runner_copy_{uuid.uuid4().hex}", infra_dir / "runner.py"
    )
    module = importlib.util.module_from_spec(spec)
    saved_path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
    return module


class RunnerHarness:
    """A copy of infra/, its state bucket, and the build environment of the runner."""

    def __init__(self, harness: AwsHarness, tmp_path: Path) -> None:
        self.harness = harness
        self.infra_dir = tmp_path / "infra"
        shutil.copytree(
            REPO_ROOT / "infra", self.infra_dir, ignore=shutil.ignore_patterns("__pycache__")
        )
        self.set_stack_file("encryptionsalt", _shared_salt())
        self.runner = _load_runner(self.infra_dir)
        self.bucket = f"state-{uuid.uuid4().hex[:8]}"
        self.s3 = harness.client("s3")
        self.s3.create_bucket(Bucket=self.bucket)
        harness.client("ssm").put_parameter(
            Name=PARAMETER, Value="pw-51b2-not-logged", Type="SecureString"
        )
        self.eb = harness.client("elasticbeanstalk")
        self.environ = {
            "PATH": f"{ENGINE_BIN}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "CONTROL_PLANE_PYTHON": sys.executable,
            "PYTHONPATH": str(REPO_ROOT),
            "AWS_ENDPOINT_URL": harness.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PULUMI_STACK": "dev",
            "PULUMI_BACKEND_URL": f"s3://{self.bucket}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_HOME": str(tmp_path / "pulumi-home"),
            "PULUMI_SECRETS": json.dumps({"db:password": PARAMETER}),
            "PULUMI_LOCK_RETRY_SECONDS": "0",
            "RESULT_URI": f"s3://{self.bucket}/results/run.json",
            "CONTROL_PLANE_REQUEST_ID": "r-functional",
        }

    def run(self, action: str, **environ: str) -> tuple[int, dict[str, Any]]:
        code = self.runner.main(
            {**self.environ, "PULUMI_ACTION": action, **environ},
            sleep=self.harness.clock.advance,
            client_factory=self.harness.client,
        )
        body = self.s3.get_object(Bucket=self.bucket, Key="results/run.json")["Body"].read()
        return code, json.loads(body)

    def set_stack_file(self, key: str, value: Any) -> None:
        path = self.infra_dir / "Pulumi.dev.yaml"
        data = yaml.safe_load(path.read_text())
        data[key] = value
        path.write_text(yaml.safe_dump(data))

    def set_config(self, key: str, value: Any) -> None:
        path = self.infra_dir / "Pulumi.dev.yaml"
        data = yaml.safe_load(path.read_text())
        data["config"][key] = value
        path.write_text(yaml.safe_dump(data))

    def edit_checkpoint(self, edit: Any) -> None:
        key = ".pulumi/stacks/webapp/dev.json"
        checkpoint = json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        edit(checkpoint["checkpoint"]["latest"])
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(checkpoint).encode())

    def environments(self) -> list[dict[str, Any]]:
        return self.eb.describe_environments(IncludeDeleted=False)["Environments"]

    def live_settings(self) -> dict[tuple[str, str], str]:
        response = self.eb.describe_configuration_settings(
            ApplicationName="webapp-dev", EnvironmentName="webapp-dev"
        )
        options = response["ConfigurationSettings"][0]["OptionSettings"]
        return {(o["Namespace"], o["OptionName"]): o.get("Value") for o in options}


@pytest.fixture
def harness(tmp_path: Path) -> Any:
    harness = AwsHarness(tmp_path / "eb")
    yield harness
    harness.close()


@pytest.fixture
def build(harness: AwsHarness, tmp_path: Path) -> RunnerHarness:
    return RunnerHarness(harness, tmp_path)


def up_commands(result: dict[str, Any]) -> list[str]:
    return [command for command in result["commands"] if command.startswith("pulumi up")]


def test_runner_retries_up_once_environment_ready(build: RunnerHarness) -> None:
    """EB rejects a setting change while the tag change's update runs; the runner waits for
    Ready, runs `up` again, and the next drift check is clean."""
    code, first = build.run("up")
    assert code == 0, first["error"]
    build.harness.clock.advance(LAUNCH_SECONDS)

    def hand_edited_tag(latest: dict[str, Any]) -> None:
        for resource in latest["resources"]:
            if resource["urn"] == ENV_URN:
                resource["inputs"]["tags"]["managed-by"] = "hand"

    build.edit_checkpoint(hand_edited_tag)
    build.set_config("webapp:healthCheckPath", "/status")

    code, result = build.run("up")

    assert code == 0, result["error"]
    assert len(up_commands(result)) == 2
    assert [repair["action"] for repair in result["repairs"]] == [
        "retried-up-after-environment-ready"
    ]
    assert result["repairs"][0]["waitedSeconds"] >= UPDATE_SECONDS
    assert build.live_settings()[HEALTH] == "/status"

    build.harness.clock.advance(UPDATE_SECONDS)
    code, check = build.run("check")

    assert code == 0, check["error"]
    assert check["changes"] is False
    assert up_commands(check) == []


def test_runner_check_ignores_eb_normalized_setting(build: RunnerHarness) -> None:
    build.set_config("webapp:instanceType", "t3.micro,t3.small")
    code, first = build.run("up")
    assert code == 0, first["error"]
    build.harness.clock.advance(LAUNCH_SECONDS)

    code, result = build.run("check", CONTROL_PLANE_ENGINE_SIMULATE="eb-normalized-settings")

    assert code == 0, result["error"]
    assert result["changes"] is False
    assert up_commands(result) == []
    assert result["ignoredDiffs"] == [
        {
            "urn": ENV_URN,
            "setting": "aws:ec2:instances:InstanceTypes",
            "old": "t3.micro, t3.small",
            "new": "t3.micro,t3.small",
        }
    ]


def test_runner_check_with_expired_credentials_fails(build: RunnerHarness) -> None:
    code, first = build.run("up")
    assert code == 0, first["error"]
    build.harness.clock.advance(LAUNCH_SECONDS)

    code, result = build.run("check", CONTROL_PLANE_ENGINE_SIMULATE="expired-credentials")

    assert code == 1
    assert result["error"]["name"] == "PreviewFailed"
    assert "ExpiredToken" in result["error"]["message"]
    assert up_commands(result) == []


def test_runner_imports_interrupted_create(build: RunnerHarness) -> None:
    """An `up` killed after CreateEnvironment leaves a pending create; the runner waits for
    the Launching environment and imports it instead of creating a second one."""
    code, first = build.run("up")
    assert code == 0, first["error"]
    environment_id = build.environments()[0]["EnvironmentId"]

    def interrupted_create(latest: dict[str, Any]) -> None:
        environment = next(r for r in latest["resources"] if r["urn"] == ENV_URN)
        latest["resources"].remove(environment)
        pending = {key: environment[key] for key in ("urn", "custom", "type", "inputs")}
        latest["pending_operations"] = [{"resource": pending, "type": "creating"}]

    build.edit_checkpoint(interrupted_create)

    code, result = build.run("up")

    assert code == 0, result["error"]
    assert result["repairs"] == [
        {
            "action": "imported-pending-create",
            "urn": ENV_URN,
            "environment": "webapp-dev",
            "id": environment_id,
            "status": "Ready",
        }
    ]
    assert [e["EnvironmentId"] for e in build.environments()] == [environment_id]
    assert result["outputs"]["ebEnvironmentName"] == "webapp-dev"
