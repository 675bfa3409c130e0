"""Functional tier: the sandbox Pulumi engine against the Elastic Beanstalk simulator.

The engine runs in-process on a copy of `infra/`. Its AWS endpoint is an `AwsHarness` on
127.0.0.1: the sandbox's EB simulator on a virtual clock, moto for S3 and the rest. The tests
cover `preview --json`, the simulated credential and EB normalization cases, a tag change that
EB answers with an environment update, and importing pending creates.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_harness import LAUNCH_SECONDS, UPDATE_SECONDS, AwsHarness
from engine_driver import EngineDriver, Result

SECRET = "pw-3c1e77-never-printed"
ENVIRONMENT = "webapp-dev"
ENV_URN = (
    "urn:pulumi:dev::webapp::webapp:beanstalk:BeanstalkEnvironment"
    "$aws:elasticbeanstalk/environment:Environment::webapp-dev"
)
STACK_URN = "urn:pulumi:dev::webapp::pulumi:pulumi:Stack::webapp-dev"
DIGEST_KEYS = {"config", "steps", "diagnostics", "duration", "changeSummary", "maybeCorrupt"}
NOT_READY = "Environment named webapp-dev is in an invalid state for this operation. Must be Ready."


class Engine(EngineDriver):
    """The engine against the AWS harness (moto plus the EB simulator)."""

    def __init__(self, harness: AwsHarness, tmp_path: Path) -> None:
        super().__init__(
            harness.endpoint,
            harness.client,
            tmp_path,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        self.harness = harness

    def deploy(self) -> None:
        """Create the stack, run `up` and let the environment launch."""
        self.ok("stack", "select", "--create", "dev")
        self.run("config", "set", "--secret", "db:password", stdin=SECRET)
        self.ok("up", "--yes", "--skip-preview")
        self.harness.clock.advance(LAUNCH_SECONDS)

    def preview_json(self, **environ: str) -> Result:
        return self.run(
            "preview", "--refresh", "--diff", "--expect-no-changes", "--json", **environ
        )

    def describe(self) -> dict[str, Any]:
        environments = self.eb.describe_environments(EnvironmentNames=[ENVIRONMENT])
        return environments["Environments"][0]

    def live_settings(self) -> dict[tuple[str, str], str]:
        response = self.eb.describe_configuration_settings(
            ApplicationName=ENVIRONMENT, EnvironmentName=ENVIRONMENT
        )
        options = response["ConfigurationSettings"][0]["OptionSettings"]
        return {(o["Namespace"], o["OptionName"]): o.get("Value") for o in options}


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[AwsHarness]:
    harness = AwsHarness(tmp_path / "eb")
    yield harness
    harness.close()


@pytest.fixture
def engine(harness: AwsHarness, tmp_path: Path) -> Engine:
    return Engine(harness, tmp_path)


def settings_of(state: dict[str, Any], where: str) -> dict[tuple[str, str], str]:
    return {(s["namespace"], s["name"]): s["value"] for s in state[where]["settings"]}


def step_for(digest: dict[str, Any], urn: str) -> dict[str, Any]:
    return next(step for step in digest.get("steps", []) if step["urn"] == urn)


# preview --json -------------------------------------------------------------------------------


def test_preview_json_clean_after_up(engine: Engine) -> None:
    engine.deploy()

    result = engine.preview_json()

    digest = result.digest()
    assert result.code == 0, result.stdout + result.stderr
    assert set(digest) <= DIGEST_KEYS
    assert [step["urn"] for step in digest["steps"]] == [STACK_URN]
    assert digest["steps"][0]["op"] == "same"
    assert set(digest["changeSummary"]) == {"same"}
    assert digest["changeSummary"]["same"] > 20
    assert "diagnostics" not in digest
    assert digest["config"]["db:password"] == "[secret]"
    assert SECRET not in result.stdout


def test_preview_json_drift_is_update_step(engine: Engine) -> None:
    engine.deploy()
    engine.set_config("webapp:healthCheckPath", "/status")

    result = engine.preview_json()

    step = step_for(result.digest(), ENV_URN)
    health = ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath")
    assert result.code == 7
    assert "no changes were expected for preview" in result.stderr
    assert step["op"] == "update"
    assert step["diffReasons"] == ["settings"]
    assert settings_of(step["oldState"], "outputs")[health] == "/health"
    assert settings_of(step["newState"], "inputs")[health] == "/status"
    assert result.digest()["changeSummary"]["update"] == 1


@pytest.mark.parametrize(
    ("simulation", "code"),
    [("expired-credentials", "ExpiredToken"), ("invalid-credentials", "InvalidClientTokenId")],
)
def test_preview_json_credentials_error(engine: Engine, simulation: str, code: str) -> None:
    engine.deploy()

    result = engine.preview_json(CONTROL_PLANE_ENGINE_SIMULATE=simulation)

    diagnostics = result.digest()["diagnostics"]
    errors = [d for d in diagnostics if d["severity"] == "error"]
    assert result.code == 1
    assert result.stderr.strip() == "error: preview failed"
    assert len(errors) == 1
    assert f"api error {code}:" in errors[0]["message"]
    assert errors[0]["message"].startswith("error: pulumi:providers:aws resource")
    assert errors[0]["urn"].startswith("urn:pulumi:dev::webapp::pulumi:providers:aws::")


def test_up_expired_credentials_changes_nothing(engine: Engine) -> None:
    engine.ok("stack", "select", "--create", "dev")
    engine.run("config", "set", "--secret", "db:password", stdin=SECRET)

    result = engine.run(
        "up", "--yes", "--skip-preview", CONTROL_PLANE_ENGINE_SIMULATE="expired-credentials"
    )

    assert result.code == 1
    assert "api error ExpiredToken" in result.stdout
    assert engine.eb.describe_environments()["Environments"] == []


def test_preview_json_eb_normalized_setting(engine: Engine) -> None:
    engine.set_config("webapp:instanceType", "t3.micro,t3.small")
    engine.deploy()

    result = engine.preview_json(CONTROL_PLANE_ENGINE_SIMULATE="eb-normalized-settings")

    digest = result.digest()
    changes = [step for step in digest["steps"] if step["op"] != "same"]
    instance_types = ("aws:ec2:instances", "InstanceTypes")
    assert result.code == 7
    assert [step["urn"] for step in changes] == [ENV_URN]
    assert changes[0]["diffReasons"] == ["settings"]
    assert settings_of(changes[0]["oldState"], "outputs")[instance_types] == "t3.micro, t3.small"
    assert settings_of(changes[0]["newState"], "inputs")[instance_types] == "t3.micro,t3.small"


def test_preview_json_unchanged_without_simulation(engine: Engine) -> None:
    engine.set_config("webapp:instanceType", "t3.micro,t3.small")
    engine.deploy()

    assert engine.preview_json().code == 0


def test_unknown_simulation_rejected(engine: Engine) -> None:
    engine.deploy()

    result = engine.preview_json(CONTROL_PLANE_ENGINE_SIMULATE="slow-network")

    assert result.code == 2
    assert "slow-network" in result.stderr


def test_refresh_reads_settings_from_eb(engine: Engine) -> None:
    engine.deploy()
    health = ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath")
    engine.eb.update_environment(
        EnvironmentName=ENVIRONMENT,
        OptionSettings=[{"Namespace": health[0], "OptionName": health[1], "Value": "/other"}],
    )
    engine.harness.clock.advance(UPDATE_SECONDS)

    engine.ok("refresh", "--yes")
    result = engine.preview_json()

    assert settings_of(engine.resources()[ENV_URN], "outputs")[health] == "/other"
    assert result.code == 7
    assert step_for(result.digest(), ENV_URN)["diffReasons"] == ["settings"]


# A tag change that EB answers with an environment update ------------------------------------


def _change_state_tag(engine: Engine) -> None:
    """Make the state's tags differ from the program's, so `up` changes a tag."""
    checkpoint = engine.checkpoint()
    for resource in checkpoint["checkpoint"]["latest"]["resources"]:
        if resource["urn"] == ENV_URN:
            resource["inputs"]["tags"]["managed-by"] = "hand"
            resource["outputs"]["tags"]["managed-by"] = "hand"
    engine.write_checkpoint(checkpoint)


def test_tag_change_blocks_setting_update(engine: Engine) -> None:
    """A tag change puts the environment in Updating, so EB rejects the setting change."""
    engine.deploy()
    _change_state_tag(engine)
    engine.set_config("webapp:healthCheckPath", "/status")
    health = ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath")

    result = engine.run("up", "--yes", "--skip-preview")

    environment = engine.resources()[ENV_URN]
    tags = engine.eb.list_tags_for_resource(ResourceArn=engine.describe()["EnvironmentArn"])
    assert result.code == 1
    assert NOT_READY in result.stdout
    assert "InvalidParameterValue" in result.stdout
    assert engine.describe()["Status"] == "Updating"
    assert {t["Key"]: t["Value"] for t in tags["ResourceTags"]}["managed-by"] == "pulumi"
    assert environment["inputs"]["tags"]["managed-by"] == "pulumi", "applied tag kept in state"
    assert settings_of(environment, "inputs")[health] == "/health"
    assert engine.live_settings()[health] == "/health"


def test_up_after_ready_applies_rejected_setting(engine: Engine) -> None:
    engine.deploy()
    _change_state_tag(engine)
    engine.set_config("webapp:healthCheckPath", "/status")
    health = ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath")
    engine.run("up", "--yes", "--skip-preview")
    engine.harness.clock.advance(UPDATE_SECONDS)

    engine.ok("up", "--yes", "--skip-preview")
    engine.harness.clock.advance(UPDATE_SECONDS)

    assert engine.live_settings()[health] == "/status"
    assert engine.preview_json().code == 0


# Pending creates ------------------------------------------------------------------------------


def _make_pending_create(engine: Engine) -> dict[str, Any]:
    """Turn the environment's state entry into a pending create, as a killed `up` leaves it."""
    checkpoint = engine.checkpoint()
    latest = checkpoint["checkpoint"]["latest"]
    environment = next(r for r in latest["resources"] if r["urn"] == ENV_URN)
    latest["resources"] = [r for r in latest["resources"] if r["urn"] != ENV_URN]
    pending = {key: environment[key] for key in ("urn", "custom", "type", "inputs", "parent")}
    pending["outputs"] = {}
    latest["pending_operations"] = [{"resource": pending, "type": "creating"}]
    engine.write_checkpoint(checkpoint)
    return environment


def test_refresh_imports_pending_create(engine: Engine) -> None:
    engine.deploy()
    environment = _make_pending_create(engine)
    environment_id = engine.describe()["EnvironmentId"]

    result = engine.run(
        "refresh",
        "--yes",
        "--import-pending-creates",
        ENV_URN,
        "--import-pending-creates",
        environment_id,
    )

    imported = engine.resources()[ENV_URN]
    assert result.code == 0, result.stdout + result.stderr
    assert imported["id"] == environment_id == environment["id"]
    assert imported["outputs"]["cname"] == engine.describe()["CNAME"]
    assert "pending_operations" not in engine.checkpoint()["checkpoint"]["latest"]
    assert engine.preview_json().code == 0


def test_import_missing_environment_fails(engine: Engine) -> None:
    engine.deploy()
    _make_pending_create(engine)
    before = engine.checkpoint()

    result = engine.run(
        "refresh",
        "--yes",
        "--import-pending-creates",
        ENV_URN,
        "--import-pending-creates",
        "e-doesnotexist",
    )

    assert result.code == 1
    assert "resource 'e-doesnotexist' does not exist" in result.stderr
    assert engine.checkpoint() == before


def test_import_pending_creates_needs_pairs(engine: Engine) -> None:
    engine.deploy()

    result = engine.run("refresh", "--yes", "--import-pending-creates", ENV_URN)

    assert result.code == 2
    assert "each URN must be followed by an ID" in result.stderr


def test_import_unknown_urn_warns(engine: Engine) -> None:
    engine.deploy()
    _make_pending_create(engine)
    other = ENV_URN.replace("::webapp-dev", "::other")

    result = engine.run(
        "refresh",
        "--yes",
        "--clear-pending-creates",
        "--import-pending-creates",
        other,
        "--import-pending-creates",
        "e-1",
    )

    assert result.code == 0, result.stderr
    assert f'warning: "{other}" did not correspond to a pending create' in result.stderr
    assert "pending_operations" not in engine.checkpoint()["checkpoint"]["latest"]


def test_refresh_clears_pending_update(engine: Engine) -> None:
    engine.deploy()
    checkpoint = engine.checkpoint()
    latest = checkpoint["checkpoint"]["latest"]
    environment = next(r for r in latest["resources"] if r["urn"] == ENV_URN)
    latest["pending_operations"] = [{"resource": environment, "type": "updating"}]
    engine.write_checkpoint(checkpoint)

    engine.ok("refresh", "--yes")

    assert "pending_operations" not in engine.checkpoint()["checkpoint"]["latest"]
    assert ENV_URN in engine.resources()
