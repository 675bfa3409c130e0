"""Functional tier: the sandbox Pulumi engine against moto's server on 127.0.0.1.

The engine runs in-process (its `main(argv, environ, stdin)`) on a copy of `infra/`, with its
state in a moto S3 bucket. moto 5.2.5 implements neither UpdateEnvironment,
TerminateEnvironment nor DescribeConfigurationSettings for Elastic Beanstalk, so the fixture
adds them to moto's EB responses for the duration of this module. The update records its
request and merges its option settings, the termination marks the environment Terminated,
and DescribeConfigurationSettings returns the settings of the create and of later updates.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import yaml
from engine_driver import EngineDriver, Result
from moto.core.responses import ActionResult
from moto.elasticbeanstalk.models import eb_backends
from moto.elasticbeanstalk.responses import EBResponse
from moto.server import ThreadedMotoServer

from control_plane.sandbox.pulumi_engine.aws import USER_AGENT_MARKER, ClientFactory
from control_plane.sandbox.pulumi_engine.backend import BackendUrl, DiyBackend
from control_plane.sandbox.pulumi_engine.backend_faults import (
    BackendFaultError,
    interrupt_environment_create,
    wipe_stack_outputs,
    write_lock_file,
)
from control_plane.sandbox.pulumi_engine.cli import main
from control_plane.sandbox.pulumi_engine.crypto import crypter_from_salt_state, new_salt_state

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "pw-7f3a9c-do-not-leak"
ACCOUNT = "123456789012"
ENV_URN = (
    "urn:pulumi:dev::webapp::webapp:beanstalk:BeanstalkEnvironment"
    "$aws:elasticbeanstalk/environment:Environment::webapp-dev"
)
APP_URN = (
    "urn:pulumi:dev::webapp::webapp:beanstalk:BeanstalkEnvironment"
    "$aws:elasticbeanstalk/application:Application::webapp-dev"
)
STACK_URN = "urn:pulumi:dev::webapp::pulumi:pulumi:Stack::webapp-dev"
EXPORTS = {
    "ebEnvironmentName",
    "ebApplicationName",
    "environmentUrl",
    "healthCheckUrl",
    "appVersionsBucketName",
}
UPDATES: list[dict[str, Any]] = []
# Option settings per environment name, as CreateEnvironment and UpdateEnvironment set them.
OPTION_SETTINGS: dict[str, dict[tuple[str, str], dict[str, str]]] = {}
_moto_create_environment = EBResponse.create_environment


def _find_environment(backend: Any, params: dict[str, Any]) -> Any:
    for application in backend.applications.values():
        for environment in application.environments.values():
            if environment.environment_name == params.get("EnvironmentName") or (
                params.get("EnvironmentId")
                and environment.environment_id == params.get("EnvironmentId")
            ):
                return environment
    raise AssertionError(f"test double found no environment for {params}")


def _merge_settings(name: str, updates: list[dict], removals: list[dict]) -> None:
    settings = OPTION_SETTINGS.setdefault(name, {})
    for removal in removals:
        settings.pop((removal["Namespace"], removal["OptionName"]), None)
    for update in updates:
        settings[(update["Namespace"], update["OptionName"])] = dict(update)


def _create_environment(self: EBResponse) -> ActionResult:
    result = _moto_create_environment(self)
    OPTION_SETTINGS.pop(self._get_param("EnvironmentName"), None)
    _merge_settings(self._get_param("EnvironmentName"), self._get_param("OptionSettings", []), [])
    return result


def _update_environment(self: EBResponse) -> ActionResult:
    params = {
        "EnvironmentName": self._get_param("EnvironmentName"),
        "EnvironmentId": self._get_param("EnvironmentId"),
        "OptionSettings": self._get_param("OptionSettings", []),
        "OptionsToRemove": self._get_param("OptionsToRemove", []),
    }
    UPDATES.append(params)
    environment = _find_environment(self.elasticbeanstalk_backend, params)
    _merge_settings(
        environment.environment_name, params["OptionSettings"], params["OptionsToRemove"]
    )
    return ActionResult(environment)


def _describe_configuration_settings(self: EBResponse) -> ActionResult:
    name = self._get_param("EnvironmentName")
    settings = list(OPTION_SETTINGS.get(name, {}).values())
    return ActionResult(
        {
            "ConfigurationSettings": [
                {
                    "ApplicationName": self._get_param("ApplicationName"),
                    "EnvironmentName": name,
                    "OptionSettings": settings,
                }
            ]
        }
    )


def _terminate_environment(self: EBResponse) -> ActionResult:
    params = {
        "EnvironmentName": self._get_param("EnvironmentName"),
        "EnvironmentId": self._get_param("EnvironmentId"),
    }
    environment = _find_environment(self.elasticbeanstalk_backend, params)
    environment.status = "Terminated"
    return ActionResult(environment)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EBResponse, "create_environment", _create_environment)
        patch.setattr(EBResponse, "update_environment", _update_environment, raising=False)
        patch.setattr(EBResponse, "terminate_environment", _terminate_environment, raising=False)
        patch.setattr(
            EBResponse,
            "describe_configuration_settings",
            _describe_configuration_settings,
            raising=False,
        )
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@functools.cache
def _test_client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


class Engine(EngineDriver):
    """The engine against moto's server, on a copy of infra/ without the runner."""

    def __init__(self, endpoint: str, tmp_path: Path) -> None:
        super().__init__(
            endpoint,
            functools.partial(_test_client, endpoint),
            tmp_path,
            ignore=shutil.ignore_patterns("__pycache__", "runner*", "*.sh", "buildspec.yml"),
        )
        self.endpoint = endpoint

    def client(self, service: str) -> Any:
        return _test_client(self.endpoint, service)

    def deploy(self) -> Result:
        self.ok("stack", "select", "--create", "dev")
        self.ok("config", "set", "--secret", "db:password", stdin=SECRET)
        return self.ok("up", "--yes", "--skip-preview")

    def object_keys(self) -> list[str]:
        response = self.s3.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in response.get("Contents", []))


@pytest.fixture
def engine(endpoint: str, tmp_path: Path) -> Iterator[Engine]:
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    UPDATES.clear()
    OPTION_SETTINGS.clear()
    yield Engine(endpoint, tmp_path)


def moto_environment() -> Any:
    backend = eb_backends[ACCOUNT]["us-east-1"]
    return backend.applications["webapp-dev"].environments["webapp-dev"]


# Safety -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ",
    [
        {},
        {"AWS_ENDPOINT_URL": "https://s3.amazonaws.com"},
        {"AWS_ENDPOINT_URL": "http://169.254.169.254"},
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000", "AWS_ENDPOINT_URL_S3": "https://x.io"},
    ],
)
def test_rejects_non_loopback_endpoint(environ: dict[str, str]) -> None:
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(["version"], environ, io.StringIO())

    assert code == 255
    assert "loopback" in stderr.getvalue() or "AWS_ENDPOINT_URL is not set" in stderr.getvalue()


def test_clients_carry_user_agent_marker() -> None:
    client = ClientFactory("http://127.0.0.1:1").client("elasticbeanstalk", "us-east-1")

    assert USER_AGENT_MARKER in client.meta.config.user_agent_extra
    assert client.meta.endpoint_url == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("endpoint_url", "expected_code"),
    [("http://127.0.0.1:9", 0), ("https://elasticbeanstalk.us-east-1.amazonaws.com", 255)],
)
def test_shim_runs_engine(tmp_path: Path, endpoint_url: str, expected_code: int) -> None:
    shim = REPO_ROOT / "control_plane" / "sandbox" / "pulumi_engine" / "bin" / "pulumi"
    environ = {
        "PATH": "/usr/bin:/bin",
        "AWS_ENDPOINT_URL": endpoint_url,
        "CONTROL_PLANE_PYTHON": sys.executable,
    }

    result = subprocess.run(
        [str(shim), "version"], cwd=tmp_path, env=environ, capture_output=True, text=True
    )

    assert result.returncode == expected_code, result.stderr
    if expected_code == 0:
        assert result.stdout == "v3.272.0\n"
        assert result.stderr == ""
    else:
        assert "is not a loopback address" in result.stderr


def test_version_prints_sdk_version(engine: Engine) -> None:
    result = engine.ok("version")

    assert result.stdout.strip() == "v3.272.0"


# up ---------------------------------------------------------------------------------------


def test_up_writes_state_in_pulumi_layout(engine: Engine) -> None:
    engine.deploy()
    keys = engine.object_keys()

    assert engine.read(".pulumi/meta.yaml") == b"version: 1\n"
    assert ".pulumi/stacks/webapp/dev.json" in keys
    assert ".pulumi/stacks/webapp/dev.json.bak" in keys
    assert any(
        k.startswith(".pulumi/history/webapp/dev/dev-") and k.endswith(".history.json")
        for k in keys
    )
    assert any(k.endswith(".checkpoint.json") for k in keys)
    assert any(k.startswith(".pulumi/backups/webapp/dev/dev.") for k in keys)
    assert not any(k.startswith(".pulumi/locks/") for k in keys)


def test_up_checkpoint_has_root_outputs(engine: Engine) -> None:
    engine.deploy()
    checkpoint = engine.checkpoint()
    latest = checkpoint["checkpoint"]["latest"]
    root = latest["resources"][0]

    assert checkpoint["version"] == 3
    assert checkpoint["checkpoint"]["stack"] == "organization/webapp/dev"
    assert latest["secrets_providers"]["type"] == "passphrase"
    assert root["urn"] == STACK_URN
    assert root["type"] == "pulumi:pulumi:Stack"
    assert set(root["outputs"]) == EXPORTS
    assert root["outputs"]["ebEnvironmentName"] == "webapp-dev"


def test_up_checkpoint_uses_real_urns(engine: Engine) -> None:
    engine.deploy()
    resources = engine.resources()

    assert ENV_URN in resources
    assert APP_URN in resources
    assert all("pulumi:pulumi:Stack$" not in urn for urn in resources)
    assert resources[ENV_URN]["parent"] == (
        "urn:pulumi:dev::webapp::webapp:beanstalk:BeanstalkEnvironment::webapp-dev"
    )
    assert resources[ENV_URN]["provider"].startswith(
        "urn:pulumi:dev::webapp::pulumi:providers:aws::default_6_83_0::"
    )
    assert APP_URN in resources[ENV_URN]["dependencies"]


def test_up_creates_application_and_environment(engine: Engine) -> None:
    engine.deploy()
    applications = engine.eb.describe_applications()["Applications"]
    environments = engine.eb.describe_environments()["Environments"]
    arn = environments[0]["EnvironmentArn"]
    tags = engine.eb.list_tags_for_resource(ResourceArn=arn)["ResourceTags"]

    assert [a["ApplicationName"] for a in applications] == ["webapp-dev"]
    assert [e["EnvironmentName"] for e in environments] == ["webapp-dev"]
    assert {t["Key"]: t["Value"] for t in tags} == {
        "project": "webapp",
        "environment": "dev",
        "managed-by": "pulumi",
    }


def test_up_accepts_empty_cname(engine: Engine) -> None:
    engine.deploy()
    environment = engine.resources()[ENV_URN]

    # moto returns an empty CNAME and EnvironmentId from CreateEnvironment.
    assert environment["outputs"]["cname"] == ""
    assert environment["id"].startswith("e-")
    assert engine.resources()[STACK_URN]["outputs"]["environmentUrl"] == "http://"


def test_up_creates_app_versions_bucket(engine: Engine) -> None:
    engine.deploy()
    name = engine.resources()[STACK_URN]["outputs"]["appVersionsBucketName"]
    encryption = engine.s3.get_bucket_encryption(Bucket=name)
    rule = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]
    block = engine.s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    policy = json.loads(engine.s3.get_bucket_policy(Bucket=name)["Policy"])

    assert name.startswith("webapp-dev-app-versions-")
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert engine.s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    assert all(block.values())
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_up_prints_summary_and_outputs(engine: Engine) -> None:
    result = engine.deploy()

    assert "Updating (dev):" in result.stdout
    assert " +  aws:elasticbeanstalk:Environment webapp-dev created" in result.stdout
    assert 'ebEnvironmentName: "webapp-dev"' in result.stdout
    assert "Resources:\n    + " in result.stdout


def test_stack_output_json(engine: Engine) -> None:
    engine.deploy()
    outputs = json.loads(engine.ok("stack", "output", "--json").stdout)

    assert set(outputs) == EXPORTS
    assert outputs["healthCheckUrl"] == "http:///health"


def test_stack_ls_marks_current(engine: Engine) -> None:
    engine.deploy()
    stacks = json.loads(engine.ok("stack", "ls", "--json").stdout)

    assert [s["name"] for s in stacks] == ["dev"]
    assert stacks[0]["current"] is True
    assert stacks[0]["updateInProgress"] is False
    assert stacks[0]["resourceCount"] > 20


def test_second_up_changes_nothing(engine: Engine) -> None:
    engine.deploy()
    before = engine.resources()

    result = engine.ok("up", "--yes", "--skip-preview")

    assert "unchanged" in result.stdout
    assert " created" not in result.stdout
    assert engine.resources().keys() == before.keys()
    assert len(engine.eb.describe_environments()["Environments"]) == 1


# preview ----------------------------------------------------------------------------------


def test_preview_after_up_has_no_changes(engine: Engine) -> None:
    engine.deploy()

    result = engine.run("preview", "--refresh", "--diff", "--expect-no-changes")

    assert result.code == 0, result.stdout + result.stderr
    assert "unchanged" in result.stdout
    assert "to update" not in result.stdout


def test_preview_after_config_change_exits_7(engine: Engine) -> None:
    engine.deploy()
    engine.set_config("webapp:healthCheckPath", "/status")
    checkpoint_before = engine.checkpoint()

    result = engine.run("preview", "--refresh", "--diff", "--expect-no-changes")

    assert result.code == 7
    assert "error: no changes were expected for preview but changes were proposed" in (
        result.stderr
    )
    assert "aws:elasticbeanstalk:Environment webapp-dev update [diff: ~settings]" in (result.stdout)
    assert '"/status"' in result.stdout
    assert engine.checkpoint() == checkpoint_before


def test_preview_without_expect_flag_exits_0(engine: Engine) -> None:
    engine.deploy()
    engine.set_config("webapp:healthCheckPath", "/status")

    result = engine.run("preview")

    assert result.code == 0
    assert "~ 1 to update" in result.stdout


def test_up_applies_changed_settings(engine: Engine) -> None:
    engine.deploy()
    engine.set_config("webapp:healthCheckPath", "/status")

    engine.ok("up", "--yes", "--skip-preview")

    health = [
        option
        for update in UPDATES
        for option in update["OptionSettings"]
        if option["OptionName"] == "HealthCheckPath"
    ]
    assert health == [
        {
            "Namespace": "aws:elasticbeanstalk:environment:process:default",
            "OptionName": "HealthCheckPath",
            "Value": "/status",
        }
    ]
    assert engine.resources()[STACK_URN]["outputs"]["healthCheckUrl"].endswith("/status")


def test_deployed_version_ignored_by_preview(engine: Engine) -> None:
    engine.deploy()
    moto_environment().version_label = "v2"

    result = engine.run("preview", "--refresh", "--expect-no-changes")

    assert result.code == 0, result.stdout + result.stderr


def test_deployed_version_is_drift_without_ignore(engine: Engine) -> None:
    environment_module = engine.project_dir / "webapp" / "environment.py"
    source = environment_module.read_text()
    environment_module.write_text(source.replace('ignore_changes=["version"],', ""))
    engine.deploy()
    moto_environment().version_label = "v2"

    result = engine.run("preview", "--refresh", "--diff", "--expect-no-changes")

    assert result.code == 7
    assert "[diff: ~version]" in result.stdout


def test_environment_removed_from_program_terminated(engine: Engine) -> None:
    engine.deploy()
    engine.eb.create_environment(ApplicationName="webapp-dev", EnvironmentName="webapp-old")
    old_urn = ENV_URN.replace("::webapp-dev", "::webapp-old")
    checkpoint = engine.checkpoint()
    resources = checkpoint["checkpoint"]["latest"]["resources"]
    old = json.loads(json.dumps(engine.resources()[ENV_URN]))
    old.update(urn=old_urn, id="e-oldenv0001")
    old["inputs"]["name"] = "webapp-old"
    resources.append(old)
    engine.write_checkpoint(checkpoint)

    result = engine.ok("up", "--yes", "--skip-preview")

    application = eb_backends[ACCOUNT]["us-east-1"].applications["webapp-dev"]
    assert " -  aws:elasticbeanstalk:Environment webapp-old deleted" in result.stdout
    assert application.environments["webapp-old"].status == "Terminated"
    assert application.environments["webapp-dev"].status == "Ready"
    assert old_urn not in engine.resources()


def test_removed_database_is_deleted(engine: Engine) -> None:
    engine.deploy()
    engine.set_config("webapp:database", False)

    result = engine.ok("up", "--yes", "--skip-preview")

    assert " -  aws:rds:Instance webapp-dev-db deleted" in result.stdout
    assert not any("rds/instance" in urn for urn in engine.resources())


# refresh ----------------------------------------------------------------------------------


def test_refresh_drops_terminated_environment(engine: Engine) -> None:
    engine.deploy()
    moto_environment().status = "Terminated"

    result = engine.ok("refresh", "--yes", "--target", ENV_URN)

    assert ENV_URN not in engine.resources()
    assert APP_URN in engine.resources()
    assert "aws:elasticbeanstalk:Environment webapp-dev deleted" in result.stdout


def test_refresh_drops_missing_environment(engine: Engine) -> None:
    engine.deploy()
    eb_backends[ACCOUNT]["us-east-1"].applications["webapp-dev"].environments.clear()

    engine.ok("refresh", "--yes")

    assert ENV_URN not in engine.resources()


@pytest.mark.parametrize("status", ["Launching", "Updating", "Terminating"])
def test_refresh_keeps_transitional_environment(engine: Engine, status: str) -> None:
    engine.deploy()
    moto_environment().status = status

    engine.ok("refresh", "--yes", "--target", ENV_URN)

    assert ENV_URN in engine.resources()


def test_preview_refresh_proposes_recreate(engine: Engine) -> None:
    engine.deploy()
    moto_environment().status = "Terminated"

    result = engine.run("preview", "--refresh", "--expect-no-changes")

    assert result.code == 7
    assert " +  aws:elasticbeanstalk:Environment webapp-dev create" in result.stdout
    assert ENV_URN in engine.resources(), "preview must not change the state"


def test_recovery_recreates_environment(engine: Engine) -> None:
    engine.deploy()
    eb_backends[ACCOUNT]["us-east-1"].applications["webapp-dev"].environments.clear()

    engine.ok("refresh", "--yes", "--target", ENV_URN)
    engine.ok("up", "--yes", "--skip-preview")

    assert ENV_URN in engine.resources()
    assert [e["EnvironmentName"] for e in engine.eb.describe_environments()["Environments"]] == [
        "webapp-dev"
    ]


def test_refresh_clears_pending_creates(engine: Engine) -> None:
    engine.deploy()
    checkpoint = engine.checkpoint()
    checkpoint["checkpoint"]["latest"]["pending_operations"] = [
        {"resource": {"urn": ENV_URN, "type": "x"}, "type": "creating"}
    ]
    engine.write_checkpoint(checkpoint)

    warned = engine.ok("preview")
    engine.ok("refresh", "--yes", "--clear-pending-creates")

    assert "pending operations from previous deployment" in warned.stdout
    assert "pending_operations" not in engine.checkpoint()["checkpoint"]["latest"]


# state delete -----------------------------------------------------------------------------


def test_state_delete_removes_resource(engine: Engine) -> None:
    engine.deploy()

    result = engine.ok("state", "delete", ENV_URN, "--force", "--yes")

    assert result.stdout.strip() == "Resource deleted"
    assert ENV_URN not in engine.resources()
    assert len(engine.eb.describe_environments()["Environments"]) == 1, "AWS is untouched"


def test_state_delete_protected_needs_force(engine: Engine) -> None:
    engine.deploy()
    checkpoint = engine.checkpoint()
    for resource in checkpoint["checkpoint"]["latest"]["resources"]:
        if resource["urn"] == ENV_URN:
            resource["protect"] = True
    engine.write_checkpoint(checkpoint)

    rejected = engine.run("state", "delete", ENV_URN, "--yes")
    forced = engine.run("state", "delete", ENV_URN, "--force", "--yes")

    assert rejected.code == 1
    assert rejected.stderr.strip() == (
        f"error: {ENV_URN} can't be safely deleted because it is protected. Re-run this "
        "command with --force to force deletion"
    )
    assert forced.code == 0


def test_state_delete_rejects_with_dependents(engine: Engine) -> None:
    engine.deploy()

    result = engine.run("state", "delete", APP_URN, "--yes")

    assert result.code == 1
    assert "can't be safely deleted because the following resources depend on it" in (result.stderr)
    assert ENV_URN in result.stderr
    assert "--target-dependents" in result.stderr
    assert APP_URN in engine.resources()


def test_state_delete_unknown_urn(engine: Engine) -> None:
    engine.deploy()

    result = engine.run("state", "delete", "urn:pulumi:dev::webapp::x:y:Z::nope", "--yes")

    assert result.code == 1
    assert "No such resource" in result.stderr


# locks ------------------------------------------------------------------------------------


def test_lock_file_blocks_up_with_cli_message(engine: Engine) -> None:
    engine.deploy()
    lock_key = ".pulumi/locks/organization/webapp/dev/8f0c7a52-2b1e-4c1e-9d2a-1f6f3c3d9a10.json"
    content = {
        "pid": 4242,
        "username": "ci",
        "hostname": "builder",
        "timestamp": "2026-01-01T00:00:00.123456789Z",
    }
    engine.s3.put_object(Bucket=engine.bucket, Key=lock_key, Body=json.dumps(content).encode())
    before = engine.checkpoint()

    result = engine.run("up", "--yes", "--skip-preview")

    assert result.code == 1
    assert result.stderr == (
        "error: the stack is currently locked by 1 lock(s). Either wait for the other "
        "process(es) to end or delete the lock file with `pulumi cancel`.\n"
        f"  s3://{engine.bucket}/{lock_key}: created by ci@builder (pid 4242) at "
        "2026-01-01T00:00:00Z\n"
    )
    assert engine.checkpoint() == before
    assert [k for k in engine.object_keys() if k.startswith(".pulumi/locks/")] == [lock_key]


@pytest.mark.parametrize("command", [("refresh", "--yes"), ("state", "delete", ENV_URN, "--yes")])
def test_lock_file_blocks_other_writers(engine: Engine, command: tuple[str, ...]) -> None:
    engine.deploy()
    lock_key = ".pulumi/locks/organization/webapp/dev/0a0a.json"
    engine.s3.put_object(Bucket=engine.bucket, Key=lock_key, Body=b'{"pid": 1}')

    result = engine.run(*command)

    assert result.code == 1
    assert "the stack is currently locked by 1 lock(s)" in result.stderr


def test_cancel_removes_locks(engine: Engine) -> None:
    engine.deploy()
    lock_key = ".pulumi/locks/organization/webapp/dev/0a0a.json"
    engine.s3.put_object(Bucket=engine.bucket, Key=lock_key, Body=b'{"pid": 1}')

    result = engine.ok("cancel", "--yes")

    assert result.stdout.strip() == "The currently running update for 'dev' has been canceled!"
    assert not any(k.startswith(".pulumi/locks/") for k in engine.object_keys())
    assert engine.run("up", "--yes", "--skip-preview").code == 0


# secrets ----------------------------------------------------------------------------------


def test_no_plaintext_secret_anywhere(engine: Engine) -> None:
    results = [engine.deploy(), engine.ok("stack", "export"), engine.ok("preview", "--diff")]

    for key in engine.object_keys():
        assert SECRET.encode() not in engine.read(key), key
    assert SECRET not in (engine.project_dir / "Pulumi.dev.yaml").read_text()
    for result in results:
        assert SECRET not in result.stdout + result.stderr


def test_secret_stored_as_ciphertext(engine: Engine) -> None:
    engine.deploy()
    database = next(r for urn, r in engine.resources().items() if "rds/instance" in urn)
    password = database["inputs"]["password"]
    stack_file = yaml.safe_load((engine.project_dir / "Pulumi.dev.yaml").read_text())

    assert set(password) == {"4dabf18193072939515e22adb298388d", "ciphertext"}
    assert password["ciphertext"].startswith("v1:")
    assert database["outputs"]["password"]["ciphertext"].startswith("v1:")
    assert stack_file["config"]["db:password"]["secure"].startswith("v1:")
    assert stack_file["encryptionsalt"].startswith("v1:")


def test_secret_decrypts_with_passphrase(engine: Engine) -> None:
    engine.deploy()

    assert engine.ok("config", "get", "db:password").stdout.strip() == SECRET
    exported = engine.ok("stack", "export", "--show-secrets").stdout
    assert json.dumps(json.dumps(SECRET))[1:-1] in exported


def test_wrong_passphrase_rejected(engine: Engine) -> None:
    engine.deploy()

    result = engine.run("preview", PULUMI_CONFIG_PASSPHRASE="wrong")

    assert result.code == 2
    assert "incorrect passphrase" in result.stderr


def test_missing_db_password_fails_before_resources(engine: Engine) -> None:
    engine.ok("stack", "select", "--create", "dev")

    result = engine.run("up", "--yes", "--skip-preview")

    assert result.code == 1
    assert "pulumi config set --secret db:password <value> --stack dev" in result.stdout
    assert engine.eb.describe_applications()["Applications"] == []


def test_salt_format_matches_pulumi() -> None:
    salt_state = new_salt_state("phrase")
    crypter = crypter_from_salt_state("phrase", salt_state)
    ciphertext = crypter.encrypt('"value"')

    assert salt_state.count(":") == 4
    assert salt_state.startswith("v1:")
    assert ciphertext.startswith("v1:")
    assert crypter.decrypt(ciphertext) == '"value"'


# stack selection --------------------------------------------------------------------------


def test_select_unknown_stack_exits_6(engine: Engine) -> None:
    result = engine.run("stack", "select", "qa")

    assert result.code == 6
    assert result.stderr.strip() == "error: no stack named 'qa' found"


def test_show_name_without_selection_exits_6(engine: Engine) -> None:
    result = engine.run("stack", "--show-name")

    assert result.code == 6
    assert "no stack selected" in result.stderr


def test_show_name_after_select(engine: Engine) -> None:
    engine.ok("stack", "select", "--create", "dev")

    assert engine.ok("stack", "--show-name").stdout.strip() == "dev"


def test_up_requires_yes(engine: Engine) -> None:
    engine.ok("stack", "select", "--create", "dev")

    result = engine.run("up")

    assert result.code == 2
    assert "--yes must be passed" in result.stderr


def test_unknown_flag_rejected(engine: Engine) -> None:
    result = engine.run("preview", "--bogus")

    assert result.code == 2
    assert "unknown flag: --bogus" in result.stderr


# faults injected into the backend ---------------------------------------------------------


def fault_backend(engine: Engine) -> DiyBackend:
    """Return the backend as the sandbox's fault injection uses it, with its own S3 client."""
    return DiyBackend(BackendUrl.parse(f"s3://{engine.bucket}"), "webapp", engine.s3)


def test_injected_lock_blocks_up_naming_owner(engine: Engine) -> None:
    engine.deploy()
    created = datetime(2026, 1, 1, 8, 30, tzinfo=UTC)
    key = write_lock_file(
        fault_backend(engine), "dev", username="deployer", hostname="ci-2", pid=77, created=created
    )

    result = engine.run("up", "--yes", "--skip-preview")

    assert key.startswith(".pulumi/locks/organization/webapp/dev/")
    assert result.code == 1
    assert "the stack is currently locked by 1 lock(s)" in result.stderr
    assert f"{key}: created by deployer@ci-2 (pid 77) at 2026-01-01T08:30:00Z" in result.stderr


def test_injected_lock_creates_missing_stack(engine: Engine) -> None:
    write_lock_file(
        fault_backend(engine),
        "dev",
        username="deployer",
        hostname="ci-2",
        pid=77,
        created=datetime.now(UTC),
    )

    listing = json.loads(engine.ok("stack", "ls", "--json").stdout)
    result = engine.run("stack", "select", "dev")

    assert [entry["name"] for entry in listing] == ["dev"]
    assert listing[0]["updateInProgress"] is True
    assert result.code == 0, result.stderr


def test_interrupted_create_leaves_pending_environment(engine: Engine) -> None:
    engine.deploy()
    environment = engine.resources()[ENV_URN]

    urn = interrupt_environment_create(fault_backend(engine), "dev")

    latest = engine.checkpoint()["checkpoint"]["latest"]
    assert urn == ENV_URN
    assert ENV_URN not in engine.resources()
    assert len(latest["pending_operations"]) == 1
    pending = latest["pending_operations"][0]
    assert pending["type"] == "creating"
    assert pending["resource"]["inputs"] == environment["inputs"]
    assert "id" not in pending["resource"]
    assert "outputs" not in pending["resource"]
    warning = engine.run("preview")
    assert "1 pending operations from previous deployment" in warning.stdout


def test_wiped_outputs_come_back_with_up(engine: Engine) -> None:
    engine.deploy()
    resources_before = set(engine.resources())

    names = wipe_stack_outputs(fault_backend(engine), "dev")
    wiped = json.loads(engine.ok("stack", "output", "--json").stdout)
    result = engine.ok("up", "--yes", "--skip-preview")
    restored = json.loads(engine.ok("stack", "output", "--json").stdout)

    assert set(names) >= EXPORTS
    assert wiped == {}
    assert set(engine.resources()) == resources_before
    assert " created" not in result.stdout
    assert restored["ebEnvironmentName"] == "webapp-dev"
    assert len(engine.eb.describe_environments()["Environments"]) == 1


def test_backend_faults_need_a_deployed_stack(engine: Engine) -> None:
    backend = fault_backend(engine)

    with pytest.raises(BackendFaultError, match="no checkpoint yet"):
        wipe_stack_outputs(backend, "dev")
    with pytest.raises(BackendFaultError, match="no checkpoint yet"):
        interrupt_environment_create(backend, "dev")


def test_preview_prints_requested_program_output(engine: Engine) -> None:
    engine.deploy()

    result = engine.run(
        "preview", "--json", "--expect-no-changes", CONTROL_PLANE_ENGINE_PREVIEW_OUTPUT_KIB="64"
    )

    assert result.code == 0, result.stderr
    digest = result.digest()
    info = [d for d in digest["diagnostics"] if d["severity"] == "info"]
    assert sum(len(d["message"]) for d in info) >= 64 * 1024
    assert {d["urn"] for d in info} == {STACK_URN}
    assert "update" not in digest["changeSummary"]
    assert len(result.stdout) >= 64 * 1024


def test_preview_output_size_must_be_a_number(engine: Engine) -> None:
    result = engine.run("preview", CONTROL_PLANE_ENGINE_PREVIEW_OUTPUT_KIB="lots")

    assert result.code == 2
    assert "CONTROL_PLANE_ENGINE_PREVIEW_OUTPUT_KIB='lots' is invalid" in result.stderr
