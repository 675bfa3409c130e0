"""Unit tier: the CodeBuild runner (infra/runner.py) against a scripted fake `pulumi`.

The fake is a small executable written into tmp_path and put first on PATH. It records each
call (argv and stdin) and plays the responses a test scripts per command; a command's last
response repeats. S3 and SSM are moto's in-process mocks.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = REPO_ROOT / "infra"
sys.path.insert(0, str(INFRA_DIR))

import runner  # noqa: E402 (needs infra/ on sys.path)
from runner_lib.noise import settings_noise  # noqa: E402
from runner_lib.result import parse_change_summary  # noqa: E402

RESULT_BUCKET = "control-plane-results"
RESULT_KEY = "runs/r-1.json"
ENV_URN = (
    "urn:pulumi:dev::webapp::webapp:beanstalk:BeanstalkEnvironment"
    "$aws:elasticbeanstalk/environment:Environment::webapp-dev"
)
LOCK_ERROR = (
    "error: the stack is currently locked by 1 lock(s). Either wait for the other "
    "process(es) to end or delete the lock file with `pulumi cancel`.\n"
    "  s3://state/.pulumi/locks/organization/webapp/dev/1b2c.json: created by ci@builder "
    "(pid 42) at 2026-01-01T00:00:00Z\n"
)
UP_OUTPUT = "Updating (dev):\n\nResources:\n    + 2 created\n    ~ 1 updated\n    20 unchanged\n"
PREVIEW_CHANGES = "Previewing update (dev):\n\nResources:\n    ~ 1 to update\n    22 unchanged\n"
STACK_URN = "urn:pulumi:dev::webapp::pulumi:pulumi:Stack::webapp-dev"
PROVIDER_URN = "urn:pulumi:dev::webapp::pulumi:providers:aws::default_6_83_0"
HEALTH = ("aws:elasticbeanstalk:environment:process:default", "HealthCheckPath")
INSTANCE_TYPES = ("aws:ec2:instances", "InstanceTypes")
NO_CHANGES_EXPECTED = "error: no changes were expected for preview but changes were proposed\n"
NOT_READY_OUTPUT = (
    "Updating (dev):\n\nDiagnostics:\n  aws:elasticbeanstalk:Environment (webapp-dev):\n"
    "    error: updating Elastic Beanstalk Environment (e-1234567890): InvalidParameterValue: "
    "Environment named webapp-dev is in an invalid state for this operation. Must be Ready.\n"
)
# The lock in LOCK_ERROR was created at 2026-01-01T00:00:00Z; tests run at NOW.
NOW = datetime(2026, 1, 1, 3, 12, 5, tzinfo=UTC)


def settings_list(values: dict[tuple[str, str], str]) -> list[dict[str, str]]:
    return [
        {"namespace": namespace, "name": name, "value": value}
        for (namespace, name), value in values.items()
    ]


def environment_update_step(
    old: dict[tuple[str, str], str], new: dict[tuple[str, str], str]
) -> dict[str, Any]:
    """A preview step that updates the EB environment's settings from `old` to `new`."""
    return {
        "op": "update",
        "urn": ENV_URN,
        "provider": f"{PROVIDER_URN}::1d2e",
        "oldState": {
            "urn": ENV_URN,
            "type": "aws:elasticbeanstalk/environment:Environment",
            "inputs": {"settings": settings_list(old)},
            "outputs": {"settings": settings_list(old)},
        },
        "newState": {
            "urn": ENV_URN,
            "type": "aws:elasticbeanstalk/environment:Environment",
            "inputs": {"settings": settings_list(new)},
            "outputs": {"settings": settings_list(new)},
        },
        "diffReasons": ["settings"],
        "detailedDiff": {"settings": {"kind": "update", "inputDiff": False}},
    }


def preview_digest(
    *steps: dict[str, Any],
    diagnostics: list[dict[str, Any]] | None = None,
    summary: dict[str, int] | None = None,
) -> str:
    """Output of `pulumi preview --json`: the root stack step, then `steps`."""
    document: dict[str, Any] = {
        "config": {"aws:region": "us-east-1", "db:password": "[secret]"},
        "steps": [{"op": "same", "urn": STACK_URN}, *steps],
        "duration": 1520000000,
    }
    if diagnostics:
        document["diagnostics"] = diagnostics
    document["changeSummary"] = summary or {"same": 23 - len(steps), "update": len(steps)}
    if not steps and summary is None:
        document["changeSummary"] = {"same": 23}
    return json.dumps(document, indent=4)


def credentials_diagnostic(code: str, message: str) -> dict[str, Any]:
    return {
        "urn": PROVIDER_URN,
        "message": (
            "error: pulumi:providers:aws resource 'default_6_83_0' has a problem: unable to "
            "validate AWS credentials.\nDetails: validating provider credentials: retrieving "
            "caller identity from STS: operation error STS: GetCallerIdentity, https response "
            f"error StatusCode: 403, RequestID: 5c1e, api error {code}: {message}\n"
        ),
        "severity": "error",
    }


FAKE_PULUMI = textwrap.dedent(
    """\
    #!{python} -S
    import json, os, sys

    argv = sys.argv[1:]
    stdin = sys.stdin.read()
    words = [word for word in argv if not word.startswith("-")]
    if argv[:1] == ["stack"] and "--show-name" in argv:
        key = "stack --show-name"
    elif words[:1] in (["stack"], ["config"], ["state"]):
        key = " ".join(words[:2])
    else:
        key = words[0]
    with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
        log.write(json.dumps({{"argv": argv, "stdin": stdin, "cwd": os.getcwd()}}) + "\\n")

    script = json.load(open(os.environ["FAKE_PULUMI_SCRIPT"]))
    counters_path = os.environ["FAKE_PULUMI_SCRIPT"] + ".counters"
    counters = json.load(open(counters_path)) if os.path.exists(counters_path) else {{}}
    responses = script.get(key, [{{"exit": 0}}])
    index = min(counters.get(key, 0), len(responses) - 1)
    counters[key] = counters.get(key, 0) + 1
    json.dump(counters, open(counters_path, "w"))
    response = responses[index]
    sys.stdout.write(response.get("stdout", ""))
    sys.stderr.write(response.get("stderr", ""))
    sys.exit(response.get("exit", 0))
    """
)


def ok(stdout: str = "") -> dict[str, Any]:
    return {"exit": 0, "stdout": stdout}


def fail(stderr: str, code: int = 1, stdout: str = "") -> dict[str, Any]:
    return {"exit": code, "stderr": stderr, "stdout": stdout}


def export_with(*urns: str, pending: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    resources = [
        {
            "urn": urn,
            "type": urn.split("::")[2].split("$")[-1],
            "outputs": {"name": "webapp-dev"} if urn == ENV_URN else {},
        }
        for urn in urns
    ]
    deployment: dict[str, Any] = {"resources": resources}
    if pending:
        deployment["pending_operations"] = pending
    return ok(json.dumps({"version": 3, "deployment": deployment}))


def default_script() -> dict[str, list[dict[str, Any]]]:
    return {
        "version": [ok("v3.272.0\n")],
        "stack ls": [ok(json.dumps([{"name": "dev", "current": True}]))],
        "stack select": [ok()],
        "stack --show-name": [ok("dev\n")],
        "config set": [ok()],
        "stack export": [export_with(ENV_URN)],
        "stack output": [ok(json.dumps({"ebEnvironmentName": "webapp-dev", "db": "[secret]"}))],
        "preview": [ok(preview_digest())],
        "up": [ok(UP_OUTPUT)],
        "refresh": [ok("Refreshing (dev):\n")],
        "state delete": [ok("Resource deleted\n")],
    }


class FakePulumi:
    """Handle on the fake CLI: its script, its call log and the runner's environment."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin_dir = tmp_path / "bin"
        self.bin_dir.mkdir()
        executable = self.bin_dir / "pulumi"
        executable.write_text(FAKE_PULUMI.format(python=sys.executable))
        executable.chmod(0o755)
        self.script_path = tmp_path / "script.json"
        self.log_path = tmp_path / "calls.jsonl"
        self.script = default_script()

    def respond(self, key: str, *responses: dict[str, Any]) -> None:
        self.script[key] = list(responses)

    def environ(self, **overrides: str) -> dict[str, str]:
        import os

        self.script_path.write_text(json.dumps(self.script))
        environ = {
            **os.environ,
            "PATH": f"{self.bin_dir}:{os.environ['PATH']}",
            "FAKE_PULUMI_SCRIPT": str(self.script_path),
            "FAKE_PULUMI_LOG": str(self.log_path),
            "PULUMI_ACTION": "up",
            "PULUMI_STACK": "dev",
            "PULUMI_BACKEND_URL": "s3://state",
            "PULUMI_CONFIG_PASSPHRASE": "test-passphrase",
            "RESULT_URI": f"s3://{RESULT_BUCKET}/{RESULT_KEY}",
            "CONTROL_PLANE_REQUEST_ID": "r-1",
        }
        environ.update(overrides)
        return environ

    @property
    def calls(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def argvs(self, command: str) -> list[list[str]]:
        return [call["argv"] for call in self.calls if call["argv"][:1] == [command]]


@pytest.fixture
def fake(tmp_path: Path) -> FakePulumi:
    return FakePulumi(tmp_path)


@pytest.fixture
def aws() -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=RESULT_BUCKET)
        yield s3


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class FakeBeanstalk:
    """DescribeEnvironments of one environment whose status follows a script.

    Each call returns the next status of `statuses` (the last one repeats); None means the
    environment does not exist.
    """

    def __init__(self, *statuses: str | None, name: str = "webapp-dev") -> None:
        self.statuses = list(statuses)
        self.name = name
        self.calls: list[dict[str, Any]] = []

    def describe_environments(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        status = self.statuses[min(len(self.calls), len(self.statuses)) - 1]
        if status is None:
            return {"Environments": []}
        environment = {
            "EnvironmentName": self.name,
            "EnvironmentId": "e-abcdef1234",
            "ApplicationName": "webapp-dev",
            "Status": status,
        }
        return {"Environments": [environment]}


def run(
    fake: FakePulumi, aws: Any, *, eb: FakeBeanstalk | None = None, **overrides: str
) -> tuple[int, dict[str, Any], Sleeps]:
    sleeps = Sleeps()

    def client_factory(service: str, region_name: str = "us-east-1") -> Any:
        if service == "elasticbeanstalk" and eb is not None:
            return eb
        return boto3.client(service, region_name=region_name)

    code = runner.main(
        fake.environ(**overrides), sleep=sleeps, client_factory=client_factory, now=lambda: NOW
    )
    body = aws.get_object(Bucket=RESULT_BUCKET, Key=RESULT_KEY)["Body"].read()
    return code, json.loads(body), sleeps


# up ---------------------------------------------------------------------------------------


def test_up_succeeds_and_writes_result(fake: FakePulumi, aws: Any) -> None:
    code, result, _ = run(fake, aws)

    assert code == 0
    assert result["error"] is None
    assert result["action"] == "up"
    assert result["stack"] == "dev"
    assert result["project"] == "webapp"
    assert result["requestId"] == "r-1"
    assert result["changes"] is True
    assert result["summary"] == {"create": 2, "update": 1, "same": 20}
    assert result["outputs"] == {"ebEnvironmentName": "webapp-dev"}
    assert "pulumi up --yes --skip-preview --stack dev" in result["commands"]
    assert result["durationSeconds"] >= 0


def test_up_runs_in_infra_directory(fake: FakePulumi, aws: Any) -> None:
    run(fake, aws)

    assert {call["cwd"] for call in fake.calls} == {str(INFRA_DIR)}


def test_up_checks_stack_around_each_operation(fake: FakePulumi, aws: Any) -> None:
    run(fake, aws)
    keys = [" ".join(w for w in call["argv"] if w in ("up", "--show-name")) for call in fake.calls]
    up_index = keys.index("up")

    assert keys[up_index - 1] == "--show-name"
    assert keys[up_index + 1] == "--show-name"


def test_up_failure_is_up_failed(fake: FakePulumi, aws: Any) -> None:
    fake.respond("up", fail("error: creating Elastic Beanstalk Environment (webapp-dev): boom"))

    code, result, _ = run(fake, aws)

    assert code == 1
    assert result["error"]["name"] == "UpFailed"
    assert "creating Elastic Beanstalk Environment" in result["error"]["message"]


def test_locked_stack_retried_then_succeeds(fake: FakePulumi, aws: Any) -> None:
    fake.respond("up", fail(LOCK_ERROR), ok(UP_OUTPUT))

    code, result, sleeps = run(fake, aws)

    assert code == 0
    assert result["error"] is None
    assert len(fake.argvs("up")) == 2
    assert sleeps == [10.0]


def test_locked_stack_gives_stack_locked(fake: FakePulumi, aws: Any) -> None:
    """After the retries, StackLocked names the lock's owner, its age and the command that
    clears it, and the runner does not run `pulumi cancel` itself."""
    fake.respond("up", fail(LOCK_ERROR))

    code, result, sleeps = run(fake, aws, PULUMI_LOCK_RETRIES="3")

    message = result["error"]["message"]
    assert code == 1
    assert result["error"]["name"] == "StackLocked"
    assert "s3://state/.pulumi/locks/organization/webapp/dev/1b2c.json" in message
    assert "ci@builder" in message
    assert "pid 42" in message
    assert "created 2026-01-01T00:00:00Z (3 h 12 min ago)" in message
    assert "`pulumi cancel --stack dev --yes`" in message
    assert "PULUMI_CANCEL_STALE_LOCKS" in message
    assert len(fake.argvs("up")) == 4
    assert fake.argvs("cancel") == []
    assert sleeps == [10.0, 20.0, 40.0]


def test_stale_lock_cancelled_when_enabled(fake: FakePulumi, aws: Any) -> None:
    fake.respond("up", fail(LOCK_ERROR), fail(LOCK_ERROR), ok(UP_OUTPUT))

    code, result, _ = run(fake, aws, PULUMI_LOCK_RETRIES="1", PULUMI_CANCEL_STALE_LOCKS="true")

    assert code == 0, result["error"]
    assert fake.argvs("cancel") == [["cancel", "--stack", "dev", "--yes"]]
    assert len(fake.argvs("up")) == 3
    assert result["repairs"] == [
        {
            "action": "cancelled-stale-lock",
            "lock": "s3://state/.pulumi/locks/organization/webapp/dev/1b2c.json",
            "owner": "ci@builder (pid 42)",
            "created": "2026-01-01T00:00:00Z",
            "ageSeconds": 11525,
        }
    ]


def test_recent_lock_not_cancelled(fake: FakePulumi, aws: Any) -> None:
    fake.respond("up", fail(LOCK_ERROR))

    code, result, _ = run(
        fake,
        aws,
        PULUMI_LOCK_RETRIES="1",
        PULUMI_CANCEL_STALE_LOCKS="true",
        PULUMI_STALE_LOCK_SECONDS="86400",
    )

    assert code == 1
    assert result["error"]["name"] == "StackLocked"
    assert "younger than PULUMI_STALE_LOCK_SECONDS (86400 s)" in result["error"]["message"]
    assert fake.argvs("cancel") == []
    assert result["repairs"] == []


def test_lock_without_owner_not_cancelled(fake: FakePulumi, aws: Any) -> None:
    fake.respond("up", fail("error: the stack is currently locked by 1 lock(s).\n"))

    code, result, _ = run(fake, aws, PULUMI_LOCK_RETRIES="0", PULUMI_CANCEL_STALE_LOCKS="true")

    assert code == 1
    assert result["error"]["name"] == "StackLocked"
    assert "owner and age are unknown" in result["error"]["message"]
    assert fake.argvs("cancel") == []


@pytest.mark.parametrize("value", ["yes", "1", "TRUE "])
def test_cancel_flag_must_be_true_or_false(fake: FakePulumi, aws: Any, value: str) -> None:
    code, result, _ = run(fake, aws, PULUMI_CANCEL_STALE_LOCKS=value)

    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert "PULUMI_CANCEL_STALE_LOCKS" in result["error"]["message"]
    assert fake.calls == []


def test_lock_retry_delay_from_environment(fake: FakePulumi, aws: Any) -> None:
    fake.respond("up", fail(LOCK_ERROR))

    _, _, sleeps = run(fake, aws, PULUMI_LOCK_RETRIES="2", PULUMI_LOCK_RETRY_SECONDS="0")

    assert sleeps == [0.0, 0.0]


# check ------------------------------------------------------------------------------------


def test_check_without_changes_skips_up(fake: FakePulumi, aws: Any) -> None:
    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 0
    assert result["changes"] is False
    assert result["summary"] == {"same": 23}
    assert result["ignoredDiffs"] == []
    assert fake.argvs("up") == []
    assert fake.argvs("preview") == [
        ["preview", "--refresh", "--diff", "--expect-no-changes", "--json", "--stack", "dev"]
    ]


def test_check_with_changes_runs_up(fake: FakePulumi, aws: Any) -> None:
    step = environment_update_step({HEALTH: "/health"}, {HEALTH: "/status"})
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(step)))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 0
    assert result["changes"] is True
    assert result["ignoredDiffs"] == []
    assert fake.argvs("up") == [["up", "--yes", "--skip-preview", "--refresh", "--stack", "dev"]]


def test_check_preview_error_is_preview_failed(fake: FakePulumi, aws: Any) -> None:
    fake.respond("preview", fail("error: failed to load plugin aws", 1))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 1
    assert result["error"]["name"] == "PreviewFailed"
    assert "failed to load plugin aws" in result["error"]["message"]
    assert fake.argvs("up") == []


def test_check_preview_crash_never_runs_up(fake: FakePulumi, aws: Any) -> None:
    fake.respond("preview", fail("panic: runtime error", 255))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 1
    assert result["error"]["name"] == "PreviewFailed"
    assert fake.argvs("up") == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("ExpiredToken", "The security token included in the request is expired"),
        ("InvalidClientTokenId", "The security token included in the request is invalid."),
    ],
)
@pytest.mark.parametrize("exit_code", [1, 255])
def test_check_credentials_error_is_preview_failed(
    fake: FakePulumi, aws: Any, code: str, message: str, exit_code: int
) -> None:
    """Expired or invalid AWS credentials fail the preview; they are never drift."""
    digest = preview_digest(diagnostics=[credentials_diagnostic(code, message)], summary={})
    fake.respond("preview", fail("error: preview failed\n", exit_code, digest))

    run_code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert run_code == 1
    assert result["error"]["name"] == "PreviewFailed"
    assert f"AWS rejected the build's credentials ({code})" in result["error"]["message"]
    assert result["changes"] is None
    assert fake.argvs("up") == []


def test_check_error_with_exit_7_fails(fake: FakePulumi, aws: Any) -> None:
    """An error diagnostic fails the check even when the exit code says changes (7)."""
    step = environment_update_step({HEALTH: "/health"}, {HEALTH: "/status"})
    diagnostic = credentials_diagnostic("ExpiredToken", "The security token is expired")
    fake.respond(
        "preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(step, diagnostics=[diagnostic]))
    )

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 1
    assert result["error"]["name"] == "PreviewFailed"
    assert fake.argvs("up") == []


def test_check_exit_7_without_json_fails(fake: FakePulumi, aws: Any) -> None:
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, PREVIEW_CHANGES))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 1
    assert result["error"]["name"] == "PreviewFailed"
    assert "no JSON" in result["error"]["message"]
    assert fake.argvs("up") == []


def test_check_noise_only_diff_skips_up(fake: FakePulumi, aws: Any) -> None:
    """A settings diff that only EB's rewriting of InstanceTypes causes is not drift."""
    step = environment_update_step(
        {HEALTH: "/health", INSTANCE_TYPES: "t3.micro, t3.small"},
        {HEALTH: "/health", INSTANCE_TYPES: "t3.micro,t3.small"},
    )
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(step)))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 0, result["error"]
    assert result["changes"] is False
    assert fake.argvs("up") == []
    assert result["ignoredDiffs"] == [
        {
            "urn": ENV_URN,
            "setting": "aws:ec2:instances:InstanceTypes",
            "old": "t3.micro, t3.small",
            "new": "t3.micro,t3.small",
        }
    ]


def test_check_settings_order_only_skips_up(fake: FakePulumi, aws: Any) -> None:
    step = environment_update_step(
        {HEALTH: "/health", INSTANCE_TYPES: "t3.micro"},
        {INSTANCE_TYPES: "t3.micro", HEALTH: "/health"},
    )
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(step)))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 0, result["error"]
    assert result["changes"] is False
    assert fake.argvs("up") == []


def test_check_exit_7_without_steps_runs_up(fake: FakePulumi, aws: Any) -> None:
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(summary={"same": 23})))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 0, result["error"]
    assert result["changes"] is True
    assert len(fake.argvs("up")) == 1


def test_check_noise_and_drift_runs_up(fake: FakePulumi, aws: Any) -> None:
    step = environment_update_step(
        {HEALTH: "/health", INSTANCE_TYPES: "t3.micro, t3.small"},
        {HEALTH: "/status", INSTANCE_TYPES: "t3.micro,t3.small"},
    )
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(step)))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 0
    assert result["changes"] is True
    assert len(fake.argvs("up")) == 1


def test_check_replacement_is_drift(fake: FakePulumi, aws: Any) -> None:
    step = {"op": "create", "urn": ENV_URN, "newState": {"urn": ENV_URN, "inputs": {}}}
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(step)))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 0
    assert result["changes"] is True
    assert len(fake.argvs("up")) == 1


def test_check_missing_config_is_configuration_missing(fake: FakePulumi, aws: Any) -> None:
    diagnostic = {
        "urn": STACK_URN,
        "message": ("error: Missing required secret config key 'db:password' for stack 'dev'\n"),
        "severity": "error",
    }
    digest = preview_digest(diagnostics=[diagnostic], summary={})
    fake.respond("preview", fail("error: preview failed", 1, digest))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check")

    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert "db:password" in result["error"]["message"]
    assert fake.argvs("up") == []


@pytest.mark.parametrize(
    ("old", "new", "noise"),
    [
        ({INSTANCE_TYPES: "t3.micro, t3.small"}, {INSTANCE_TYPES: "t3.micro,t3.small"}, True),
        ({INSTANCE_TYPES: "t3.small, t3.micro"}, {INSTANCE_TYPES: "t3.micro,t3.small"}, False),
        ({INSTANCE_TYPES: "t3.micro"}, {INSTANCE_TYPES: "t3.small"}, False),
        (
            {("aws:ec2:vpc", "Subnets"): "subnet-b,subnet-a"},
            {("aws:ec2:vpc", "Subnets"): "subnet-a, subnet-b"},
            True,
        ),
        (
            {
                (
                    "aws:autoscaling:launchconfiguration",
                    "SSHSourceRestriction",
                ): "tcp,22,22,10.0.0.0/8"
            },
            {
                (
                    "aws:autoscaling:launchconfiguration",
                    "SSHSourceRestriction",
                ): "tcp, 22, 22, 10.0.0.0/8"
            },
            True,
        ),
        ({HEALTH: "/health "}, {HEALTH: "/health"}, False),
        ({HEALTH: "/health"}, {HEALTH: "/health", INSTANCE_TYPES: "t3.micro"}, False),
    ],
)
def test_settings_noise_rules(
    old: dict[tuple[str, str], str], new: dict[tuple[str, str], str], noise: bool
) -> None:
    ignored = settings_noise(settings_list(old), settings_list(new))

    assert (ignored is not None) is noise


# recover ----------------------------------------------------------------------------------


def test_recover_refresh_drops_environment(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack export", export_with(ENV_URN), export_with())

    code, result, _ = run(fake, aws, PULUMI_ACTION="recover")

    assert code == 0
    assert fake.argvs("refresh") == [["refresh", "--yes", "--target", ENV_URN, "--stack", "dev"]]
    assert fake.argvs("state") == []
    assert len(fake.argvs("up")) == 1
    assert result["changes"] is True


def test_recover_deletes_environment_still_in_state(fake: FakePulumi, aws: Any) -> None:
    code, result, _ = run(fake, aws, PULUMI_ACTION="recover")

    assert code == 0
    assert result["changes"] is True
    assert fake.argvs("state") == [
        ["state", "delete", ENV_URN, "--force", "--yes", "--stack", "dev"]
    ]
    assert len(fake.argvs("up")) == 1


def test_recover_keeps_an_environment_eb_still_runs(fake: FakePulumi, aws: Any) -> None:
    """An environment that refresh kept and EB still lists must not be forgotten."""
    eb = boto3.client("elasticbeanstalk", region_name="us-east-1")
    eb.create_application(ApplicationName="webapp-dev")
    eb.create_environment(
        ApplicationName="webapp-dev", EnvironmentName="webapp-dev", SolutionStackName="python"
    )

    code, result, _ = run(fake, aws, PULUMI_ACTION="recover")

    assert code == 1
    assert result["error"]["name"] == "UpFailed"
    assert "will not delete" in result["error"]["message"]
    assert fake.argvs("state") == []
    assert fake.argvs("up") == []


RECORD_URN = "urn:pulumi:dev::webapp::webapp:domain$aws:route53/record:Record::www-alias"
DISTRIBUTION_URN = (
    "urn:pulumi:dev::webapp::webapp:domain$aws:cloudfront/distribution:Distribution::cdn"
)


def dependents_error(*urns: str) -> dict[str, Any]:
    listing = "\n".join(f"  * {urn}" for urn in urns)
    return fail(
        f"error: {ENV_URN} can't be safely deleted because the following resources depend on "
        f"it:\n{listing}\n\nDelete those resources first or pass --target-dependents."
    )


def test_recover_drops_dependents_that_up_recreates(fake: FakePulumi, aws: Any) -> None:
    fake.respond("state delete", dependents_error(RECORD_URN), ok("Resource deleted\n"))

    code, _, _ = run(fake, aws, PULUMI_ACTION="recover")

    assert code == 0
    assert fake.argvs("state")[-1] == [
        "state",
        "delete",
        ENV_URN,
        "--force",
        "--yes",
        "--target-dependents",
        "--stack",
        "dev",
    ]
    assert len(fake.argvs("up")) == 1


def test_recover_keeps_dependents_that_still_exist(fake: FakePulumi, aws: Any) -> None:
    fake.respond("state delete", dependents_error(RECORD_URN, DISTRIBUTION_URN))

    code, result, _ = run(fake, aws, PULUMI_ACTION="recover")

    assert code == 1
    assert result["error"]["name"] == "UpFailed"
    assert len(fake.argvs("state")) == 1
    assert fake.argvs("up") == []


def test_recover_protected_state_delete_fails(fake: FakePulumi, aws: Any) -> None:
    fake.respond("refresh", fail("error: refreshing failed"))
    fake.respond(
        "state delete",
        fail(
            f"error: {ENV_URN} can't be safely deleted because it is protected. Re-run this "
            "command with --force to force deletion"
        ),
    )

    code, result, _ = run(fake, aws, PULUMI_ACTION="recover")

    assert code == 1
    assert result["error"]["name"] == "UpFailed"
    assert ENV_URN in result["error"]["message"]
    assert "protected" in result["error"]["message"]
    assert fake.argvs("up") == []


def test_recover_without_environment_runs_up(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack export", export_with())

    code, _, _ = run(fake, aws, PULUMI_ACTION="recover")

    assert code == 0
    assert fake.argvs("refresh") == []
    assert len(fake.argvs("up")) == 1


def test_pending_creates_cleared_before_action(fake: FakePulumi, aws: Any) -> None:
    pending = [{"type": "creating", "resource": {"urn": ENV_URN}}]
    fake.respond("stack export", export_with(pending=pending), export_with())

    code, result, _ = run(fake, aws)

    assert code == 0
    assert fake.argvs("refresh") == [
        ["refresh", "--yes", "--clear-pending-creates", "--stack", "dev"]
    ]
    assert [repair["action"] for repair in result["repairs"]] == ["cleared-pending-create"]


# pending operations of an interrupted update ----------------------------------------------

ENV_TYPE = "aws:elasticbeanstalk/environment:Environment"
PENDING_ENV_CREATE = [
    {
        "type": "creating",
        "resource": {
            "urn": ENV_URN,
            "type": ENV_TYPE,
            "inputs": {"name": "webapp-dev", "application": "webapp-dev"},
        },
    }
]


def test_pending_create_existing_environment_imported(fake: FakePulumi, aws: Any) -> None:
    """A killed `up` left the environment created in EB; it is imported, not created again."""
    fake.respond("stack export", export_with(pending=PENDING_ENV_CREATE), export_with(ENV_URN))
    eb = FakeBeanstalk("Ready")

    code, result, sleeps = run(fake, aws, eb=eb)

    assert code == 0, result["error"]
    assert fake.argvs("refresh") == [
        [
            "refresh",
            "--yes",
            "--import-pending-creates",
            ENV_URN,
            "--import-pending-creates",
            "e-abcdef1234",
            "--stack",
            "dev",
        ]
    ]
    assert eb.calls[0]["EnvironmentNames"] == ["webapp-dev"]
    assert eb.calls[0]["IncludeDeleted"] is False
    assert sleeps == []
    assert result["repairs"] == [
        {
            "action": "imported-pending-create",
            "urn": ENV_URN,
            "environment": "webapp-dev",
            "id": "e-abcdef1234",
            "status": "Ready",
        }
    ]
    assert len(fake.argvs("up")) == 1


def test_pending_create_launching_waits(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack export", export_with(pending=PENDING_ENV_CREATE), export_with(ENV_URN))
    eb = FakeBeanstalk("Launching", "Launching", "Ready")

    code, result, sleeps = run(fake, aws, eb=eb)

    assert code == 0, result["error"]
    assert sleeps == [20.0, 20.0]
    assert "--import-pending-creates" in fake.argvs("refresh")[0]
    assert result["repairs"][0]["status"] == "Ready"


def test_pending_create_missing_environment_cleared(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack export", export_with(pending=PENDING_ENV_CREATE), export_with())
    eb = FakeBeanstalk(None)

    code, result, _ = run(fake, aws, eb=eb)

    assert code == 0, result["error"]
    assert fake.argvs("refresh") == [
        ["refresh", "--yes", "--clear-pending-creates", "--stack", "dev"]
    ]
    assert result["repairs"] == [
        {
            "action": "cleared-pending-create",
            "urn": ENV_URN,
            "environment": "webapp-dev",
            "reason": "environment webapp-dev does not exist in Elastic Beanstalk",
        }
    ]


def test_pending_create_still_launching_times_out(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack export", export_with(pending=PENDING_ENV_CREATE))
    eb = FakeBeanstalk("Launching")

    code, result, sleeps = run(
        fake, aws, eb=eb, EB_WAIT_TIMEOUT_SECONDS="60", EB_WAIT_POLL_SECONDS="20"
    )

    assert code == 1
    assert result["error"]["name"] == "UpFailed"
    assert "webapp-dev was still Launching after 60 s" in result["error"]["message"]
    assert sleeps == [20.0, 20.0, 20.0]
    assert fake.argvs("refresh") == []
    assert fake.argvs("up") == []


def test_pending_create_left_after_refresh_fails(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack export", export_with(pending=PENDING_ENV_CREATE))
    eb = FakeBeanstalk("Ready")

    code, result, _ = run(fake, aws, eb=eb)

    assert code == 1
    assert result["error"]["name"] == "UpFailed"
    assert "still has 1 pending operation" in result["error"]["message"]
    assert fake.argvs("up") == []


def test_pending_update_refreshed(fake: FakePulumi, aws: Any) -> None:
    pending = [{"type": "updating", "resource": {"urn": ENV_URN, "type": ENV_TYPE}}]
    fake.respond("stack export", export_with(ENV_URN, pending=pending), export_with(ENV_URN))

    code, result, _ = run(fake, aws, eb=FakeBeanstalk("Ready"))

    assert code == 0, result["error"]
    assert fake.argvs("refresh") == [["refresh", "--yes", "--stack", "dev"]]
    assert result["repairs"] == [
        {"action": "refreshed-pending-operation", "urn": ENV_URN, "operation": "updating"}
    ]


# up rejected by EB while the environment is not Ready --------------------------------------


def test_up_not_ready_retried_after_wait(fake: FakePulumi, aws: Any) -> None:
    """EB rejects the update while a tag change runs; the runner waits for Ready, then retries."""
    fake.respond("up", fail("error: update failed\n", 1, NOT_READY_OUTPUT), ok(UP_OUTPUT))
    eb = FakeBeanstalk("Updating", "Updating", "Ready")

    code, result, sleeps = run(fake, aws, eb=eb)

    assert code == 0, result["error"]
    assert len(fake.argvs("up")) == 2
    assert sleeps == [20.0, 20.0]
    assert eb.calls[0]["EnvironmentNames"] == ["webapp-dev"]
    assert result["repairs"] == [
        {
            "action": "retried-up-after-environment-ready",
            "environment": "webapp-dev",
            "waitedSeconds": 40,
        }
    ]
    assert result["summary"] == {"create": 2, "update": 1, "same": 20}


def test_up_not_ready_wait_times_out(fake: FakePulumi, aws: Any) -> None:
    fake.respond("up", fail("error: update failed\n", 1, NOT_READY_OUTPUT))
    eb = FakeBeanstalk("Updating")

    code, result, sleeps = run(
        fake, aws, eb=eb, EB_WAIT_TIMEOUT_SECONDS="60", EB_WAIT_POLL_SECONDS="20"
    )

    message = result["error"]["message"]
    assert code == 1
    assert result["error"]["name"] == "UpFailed"
    assert "webapp-dev was still Updating after 60 s" in message
    assert "Must be Ready" in message
    assert len(fake.argvs("up")) == 1
    assert sleeps == [20.0, 20.0, 20.0]


def test_up_rejected_twice_fails(fake: FakePulumi, aws: Any) -> None:
    fake.respond("up", fail("error: update failed\n", 1, NOT_READY_OUTPUT))

    code, result, _ = run(fake, aws, eb=FakeBeanstalk("Ready"))

    assert code == 1
    assert result["error"]["name"] == "UpFailed"
    assert "Must be Ready" in result["error"]["message"]
    assert len(fake.argvs("up")) == 2


def test_check_up_not_ready_retried(fake: FakePulumi, aws: Any) -> None:
    step = environment_update_step({HEALTH: "/health"}, {HEALTH: "/status"})
    fake.respond("preview", fail(NO_CHANGES_EXPECTED, 7, preview_digest(step)))
    fake.respond("up", fail("error: update failed\n", 1, NOT_READY_OUTPUT), ok(UP_OUTPUT))

    code, result, _ = run(fake, aws, PULUMI_ACTION="check", eb=FakeBeanstalk("Ready"))

    assert code == 0, result["error"]
    assert result["changes"] is True
    assert len(fake.argvs("up")) == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EB_WAIT_TIMEOUT_SECONDS", "soon"),
        ("EB_WAIT_POLL_SECONDS", "0"),
        ("PULUMI_STALE_LOCK_SECONDS", "-1"),
    ],
)
def test_invalid_wait_settings_rejected(fake: FakePulumi, aws: Any, name: str, value: str) -> None:
    code, result, _ = run(fake, aws, **{name: value})

    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert name in result["error"]["message"]


# secrets ----------------------------------------------------------------------------------


def test_secret_set_through_stdin(
    fake: FakePulumi, aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cr3t-value-1234"
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/control-plane/dev/db-password", Value=secret, Type="SecureString"
    )

    code, result, _ = run(
        fake, aws, PULUMI_SECRETS=json.dumps({"db:password": "/control-plane/dev/db-password"})
    )

    config_calls = [call for call in fake.calls if call["argv"][:2] == ["config", "set"]]
    assert code == 0
    assert config_calls[0]["argv"] == ["config", "set", "--secret", "db:password", "--stack", "dev"]
    assert config_calls[0]["stdin"] == secret
    assert all(secret not in " ".join(call["argv"]) for call in fake.calls)
    assert secret not in capsys.readouterr().out
    assert secret not in json.dumps(result)


def test_missing_secret_is_configuration_missing(fake: FakePulumi, aws: Any) -> None:
    parameter = "/control-plane/dev/db-password"

    code, result, _ = run(fake, aws, PULUMI_SECRETS=json.dumps({"db:password": parameter}))

    message = result["error"]["message"]
    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert "db:password" in message
    assert f"aws ssm put-parameter --type SecureString --name {parameter}" in message
    assert fake.argvs("up") == []
    assert fake.argvs("preview") == []


def test_invalid_secrets_json_rejected(fake: FakePulumi, aws: Any) -> None:
    code, result, _ = run(fake, aws, PULUMI_SECRETS="{not json")

    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert "PULUMI_SECRETS" in result["error"]["message"]
    assert fake.calls == []


def secrets_manager_reference(name: str, **extra: str) -> dict[str, str]:
    return {"source": "secretsmanager", "name": name, "region": "eu-west-1", **extra}


def test_secrets_manager_json_keys_set_through_stdin(
    fake: FakePulumi, aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    password, username = "pw-9f8e7d6c5b4a", "user-1a2b3c4d"
    boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
        Name="control-plane/prod/db",
        SecretString=json.dumps({"password": password, "username": username}),
    )
    references = {
        "db:password": secrets_manager_reference("control-plane/prod/db", jsonKey="password"),
        "db:username": secrets_manager_reference("control-plane/prod/db", jsonKey="username"),
    }

    code, result, _ = run(fake, aws, PULUMI_SECRETS=json.dumps(references))

    config_calls = [call for call in fake.calls if call["argv"][:2] == ["config", "set"]]
    output = capsys.readouterr().out
    assert code == 0
    assert [call["argv"][3] for call in config_calls] == ["db:password", "db:username"]
    assert [call["stdin"] for call in config_calls] == [password, username]
    for value in (password, username):
        assert all(value not in " ".join(call["argv"]) for call in fake.calls)
        assert value not in output
        assert value not in json.dumps(result)
    assert "set from Secrets Manager secret 'control-plane/prod/db' (JSON key 'password')" in (
        output
    )


def test_secrets_manager_whole_string_is_the_value(fake: FakePulumi, aws: Any) -> None:
    boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
        Name="control-plane/prod/token", SecretString="tok-0a1b2c3d"
    )
    references = {"api:token": secrets_manager_reference("control-plane/prod/token")}

    code, _, _ = run(fake, aws, PULUMI_SECRETS=json.dumps(references))

    config_calls = [call for call in fake.calls if call["argv"][:2] == ["config", "set"]]
    assert code == 0
    assert config_calls[0]["stdin"] == "tok-0a1b2c3d"


def test_missing_secrets_manager_secret_names_create_command(fake: FakePulumi, aws: Any) -> None:
    references = {
        "db:password": secrets_manager_reference("control-plane/prod/db", jsonKey="password")
    }

    code, result, _ = run(fake, aws, PULUMI_SECRETS=json.dumps(references))

    message = result["error"]["message"]
    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert "secret config key 'db:password' is missing" in message
    assert "Secrets Manager secret 'control-plane/prod/db'" in message
    assert "aws secretsmanager create-secret --name control-plane/prod/db" in message
    assert "--region eu-west-1" in message
    assert fake.argvs("up") == []


@pytest.mark.parametrize(
    ("secret_string", "expected"),
    [
        (json.dumps({"user": "someone-5e6f"}), "has no JSON key 'password'"),
        ("not-json-7a8b9c", "is not a JSON object"),
        (json.dumps({"password": 1234}), "holds a int, not a string"),
    ],
)
def test_secrets_manager_json_key_problems_named(
    fake: FakePulumi, aws: Any, secret_string: str, expected: str
) -> None:
    boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
        Name="control-plane/prod/db", SecretString=secret_string
    )
    references = {
        "db:password": secrets_manager_reference("control-plane/prod/db", jsonKey="password")
    }

    code, result, _ = run(fake, aws, PULUMI_SECRETS=json.dumps(references))

    message = result["error"]["message"]
    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert expected in message
    assert "someone-5e6f" not in message
    assert "not-json-7a8b9c" not in message


def test_stack_config_secret_is_not_read(fake: FakePulumi, aws: Any) -> None:
    references = {"db:password": {"source": "stack_config"}}

    code, _, _ = run(fake, aws, PULUMI_SECRETS=json.dumps(references))

    assert code == 0
    assert [call for call in fake.calls if call["argv"][:2] == ["config", "set"]] == []


def test_ssm_reference_reads_its_own_region(fake: FakePulumi, aws: Any) -> None:
    boto3.client("ssm", region_name="eu-west-1").put_parameter(
        Name="/control-plane/prod/db-password", Value="pw-eu-1234", Type="SecureString"
    )
    references = {
        "db:password": {
            "source": "ssm",
            "name": "/control-plane/prod/db-password",
            "region": "eu-west-1",
            "jsonKey": None,
        }
    }

    code, _, _ = run(fake, aws, PULUMI_SECRETS=json.dumps(references))

    config_calls = [call for call in fake.calls if call["argv"][:2] == ["config", "set"]]
    assert code == 0
    assert config_calls[0]["stdin"] == "pw-eu-1234"


@pytest.mark.parametrize(
    ("references", "expected"),
    [
        ({"db:password": {"source": "vault", "name": "x"}}, "source must be one of"),
        ({"db:password": {"source": "secretsmanager"}}, "must name its secretsmanager"),
        ({"db:password": 5}, "got a int"),
        ({"db:password": {"source": "ssm", "name": "/x", "region": ""}}, "region must be"),
        ({"no-namespace": "/x"}, "not a Pulumi config key"),
    ],
)
def test_invalid_secret_reference_rejected(
    fake: FakePulumi, aws: Any, references: dict[str, Any], expected: str
) -> None:
    code, result, _ = run(fake, aws, PULUMI_SECRETS=json.dumps(references))

    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert expected in result["error"]["message"]
    assert fake.calls == []


def test_secret_reader_reads_a_json_secret_once(aws: Any) -> None:
    from runner_lib.secrets import SecretReader, SecretReference

    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name="db", SecretString=json.dumps({"password": "p-1", "username": "u"}))
    calls: list[str] = []
    client.meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **_: calls.append("get")
    )
    reader = SecretReader(lambda service, **_: client)

    values = [
        reader.read(
            SecretReference(key=f"db:{field}", source="secretsmanager", name="db", json_key=field)
        )
        for field in ("password", "username")
    ]

    assert values == ["p-1", "u"]
    assert calls == ["get"]


# stack selection --------------------------------------------------------------------------


def test_wrong_stack_selected_rejected(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack --show-name", ok("prod\n"))

    code, result, _ = run(fake, aws)

    assert code == 1
    assert result["error"]["name"] == "StackNotSelected"
    assert "'dev'" in result["error"]["message"]
    assert "'prod'" in result["error"]["message"]
    assert fake.argvs("up") == []


def test_stack_switched_during_run_detected(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack --show-name", ok("dev\n"), ok("dev\n"), ok("prod\n"))

    code, result, _ = run(fake, aws)

    assert code == 1
    assert result["error"]["name"] == "StackNotSelected"
    assert "after `pulumi up`" in result["error"]["message"]


def test_missing_stack_created_from_stack_file(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack ls", ok("[]"))

    code, _, _ = run(fake, aws)

    assert code == 0
    assert fake.argvs("stack")[1] == ["stack", "select", "--create", "--stack", "dev"]


def test_stack_creation_locked_gives_stack_locked(fake: FakePulumi, aws: Any) -> None:
    # GIVEN a stack that is not in the backend yet, whose lock another run holds: the CLI
    # takes the stack lock to create a stack
    fake.respond("stack ls", ok("[]"))
    fake.respond("stack select", fail(LOCK_ERROR))

    code, result, sleeps = run(fake, aws)

    assert code == 1
    assert result["error"]["name"] == "StackLocked"
    assert "held by ci@builder (pid 42)" in result["error"]["message"]
    assert "pulumi cancel --stack dev --yes" in result["error"]["message"]
    assert len([argv for argv in fake.argvs("stack") if "select" in argv]) == 4
    assert sleeps == [10, 20, 40]
    assert fake.argvs("up") == []


def test_unknown_stack_rejected(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack ls", ok("[]"))

    code, result, _ = run(fake, aws, PULUMI_STACK="qa")

    assert code == 1
    assert result["error"]["name"] == "StackNotSelected"
    assert "Pulumi.qa.yaml" in result["error"]["message"]


def test_stack_select_failure_rejected(fake: FakePulumi, aws: Any) -> None:
    fake.respond("stack select", fail("error: no stack named 'dev' found", 6))

    code, result, _ = run(fake, aws)

    assert code == 1
    assert result["error"]["name"] == "StackNotSelected"
    assert fake.argvs("up") == []


# build environment ------------------------------------------------------------------------


def test_cli_version_mismatch_rejected(fake: FakePulumi, aws: Any) -> None:
    fake.respond("version", ok("v3.100.0\n"))

    code, result, _ = run(fake, aws)

    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert "v3.100.0" in result["error"]["message"]
    assert "3.272.0" in result["error"]["message"]


def test_invalid_action_still_writes_result(fake: FakePulumi, aws: Any) -> None:
    code, result, _ = run(fake, aws, PULUMI_ACTION="destroy")

    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert "PULUMI_ACTION" in result["error"]["message"]
    assert result["commands"] == []


def test_missing_passphrase_rejected(fake: FakePulumi, aws: Any) -> None:
    environ = fake.environ()
    environ.pop("PULUMI_CONFIG_PASSPHRASE")

    code = runner.main(environ, sleep=Sleeps())
    result = json.loads(aws.get_object(Bucket=RESULT_BUCKET, Key=RESULT_KEY)["Body"].read())

    assert code == 1
    assert result["error"]["name"] == "ConfigurationMissing"
    assert "PULUMI_CONFIG_PASSPHRASE" in result["error"]["message"]


def test_invalid_result_uri_exits_one(fake: FakePulumi, aws: Any) -> None:
    code = runner.main(fake.environ(RESULT_URI="not-a-uri"), sleep=Sleeps())

    assert code == 1


# summary parsing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (UP_OUTPUT, {"create": 2, "update": 1, "same": 20}),
        (PREVIEW_CHANGES, {"update": 1, "same": 22}),
        ("Resources:\n    - 1 to delete\n    +-1 to replace\n", {"delete": 1, "replace": 1}),
        ("no summary here", {}),
    ],
)
def test_change_summary_parsed(output: str, expected: dict[str, int]) -> None:
    assert parse_change_summary(output) == expected


# pinned versions and build spec -----------------------------------------------------------


def _pins(path: Path = REPO_ROOT / "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip()] = version.strip()
    return pins


def test_versions_match_requirements() -> None:
    from runner_lib.settings import read_versions

    versions = read_versions(INFRA_DIR / "versions.env")

    assert versions["PULUMI_AWS_PLUGIN_VERSION"] == _pins()["pulumi-aws"]
    assert versions["PULUMI_VERSION"] == _pins()["pulumi"]
    assert versions["PULUMI_AWSX_PLUGIN_VERSION"] == "2.22.0"


def test_build_requirements_match_repository_pins() -> None:
    build_pins = _pins(INFRA_DIR / "requirements.txt")
    repository_pins = _pins()

    assert build_pins
    for name, version in build_pins.items():
        assert repository_pins[name] == version, name


def test_buildspec_pins_install_and_runs_runner() -> None:
    spec = yaml.safe_load((INFRA_DIR / "buildspec.yml").read_text())
    install = "\n".join(spec["phases"]["install"]["commands"])
    build = "\n".join(spec["phases"]["build"]["commands"])

    assert spec["version"] == 0.2
    assert "set -euo pipefail" in install
    assert "bash infra/install-pulumi.sh" in install
    # The CodeBuild source is infra/ alone, so the build installs infra/requirements.txt.
    assert "-r infra/requirements.txt" in install
    assert "set -euo pipefail" in build
    assert "python infra/runner.py" in build
    assert "install-pulumi" not in build


def test_install_script_fails_on_refused_download() -> None:
    script = (INFRA_DIR / "install-pulumi.sh").read_text()

    assert "set -euo pipefail" in script
    assert "curl -fsSL" in script
    assert 'source "${infra_dir}/versions.env"' in script
    assert re.search(
        r"plugin install resource aws \"v\$\{PULUMI_AWS_PLUGIN_VERSION\}\"|"
        r"install_plugin aws \"\$\{PULUMI_AWS_PLUGIN_VERSION\}\"",
        script,
    )
    assert 'install_plugin awsx "${PULUMI_AWSX_PLUGIN_VERSION}"' in script
