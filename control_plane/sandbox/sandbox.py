"""The sandbox: a local AWS endpoint that runs the synthesized state machine end to end.

One process holds moto's server (bound to 127.0.0.1 on an ephemeral port), the Elastic Beanstalk
simulator, the CodeBuild stand-in and the task Lambdas, all sharing one virtual clock.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from werkzeug.serving import make_server

from lambdas.common import clock as task_clock
from lambdas.common import metrics as task_metrics

from .clock import VirtualClock
from .codebuild import CodeBuildSimulator, ParameterNotFound
from .eb_timers import TransitionTimers
from .events import SandboxEventBridge
from .faults import FaultState
from .gateway import SandboxGateway
from .lambda_runtime import LambdaRuntime
from .moto_patches import install_patches
from .template import REPO_ROOT, SandboxResources, load_resources, synthesize

if TYPE_CHECKING:
    from lambdas.common.settings import EnvironmentSettings

ACCOUNT_ID = "123456789012"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# The sandbox running in this process, if any; moto's backends allow only one.
_running: Sandbox | None = None
REGION = "us-east-1"
LOG = logging.getLogger(__name__)


class LogCapture(logging.Handler):
    """Keeps every formatted log line of the task handlers, for the secret scan."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class SandboxOptions:
    work_dir: Path
    cache_dir: Path = REPO_ROOT / ".sandbox" / "cdk-cache"
    launch_seconds: float = 300
    update_seconds: float = 90
    terminate_seconds: float = 60
    region: str = REGION
    echo_logs: bool = False
    seed_secrets: dict[str, str] = field(default_factory=dict)
    # Settings to change per environment in the environments file the Lambdas read, for
    # example {"dev": {"readiness": "polling"}}. environments.yaml itself stays as it is.
    environment_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    # CDK context values for synthesizing the stack, as `cdk synth -c key=value` sets them.
    cdk_context: dict[str, str] = field(default_factory=dict)


class Sandbox:
    """Start with `start()`, stop with `stop()`; usable as a context manager."""

    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.clock = VirtualClock()
        self.faults = FaultState()
        self.secret_values: list[str] = []
        self.endpoint_url = ""
        self.resources: SandboxResources
        self.lambdas: LambdaRuntime
        self.codebuild: CodeBuildSimulator
        self.eb: Any
        self.eb_timers: TransitionTimers | None = None
        self.events: SandboxEventBridge
        self.log_capture = LogCapture()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._saved_environment: dict[str, str | None] = {}
        self._redirected: list[tuple[logging.StreamHandler, Any]] = []
        self._log_file: Any = None
        self._base_fingerprint: str | None = None

    # Lifecycle

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        global _running
        if _running is not None:
            raise RuntimeError(
                "a sandbox already runs in this process; moto's state is per process, "
                "so stop it before starting another"
            )
        _running = self
        work_dir = self.options.work_dir
        work_dir.mkdir(parents=True, exist_ok=True)
        template = synthesize(self.options.cache_dir, context=self.options.cdk_context)
        self.resources = load_resources(template, self.options.region, ACCOUNT_ID)
        install_patches(self.clock)
        task_clock.install(self.clock.now)
        for noisy in ("werkzeug", "moto.stepfunctions.parser"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
        self._start_server()
        self._reset_moto()
        self._set_process_environment()
        self._build_simulators()
        self._provision()

    def stop(self) -> None:
        global _running
        if _running is self:
            _running = None
        if self.eb_timers is not None:
            self.eb_timers.stop()
        eb = getattr(self, "eb", None)
        if eb is not None:
            eb.shutdown()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
        task_clock.install(None)
        task_metrics.sink = task_metrics.write_line
        logging.getLogger("control-plane").removeHandler(self.log_capture)
        for handler, stream in self._redirected:
            handler.setStream(stream)
        self._redirected = []
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        for key, value in self._saved_environment.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_environment = {}

    def _start_server(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )

        moto_app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            "127.0.0.1",
            0,
            SandboxGateway(moto_app, self),
            threaded=True,
            request_handler=MotoRequestHandler,
        )
        port = self._server.server_port
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="sandbox-server"
        )
        self._thread.start()

    def _reset_moto(self) -> None:
        """Start from empty backends: moto keeps its state per process, not per server."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with _NO_PROXY.open(request, timeout=30):
            pass

    def _aws_variables(self) -> dict[str, str]:
        """Variables that send every AWS SDK call to the sandbox, never to AWS."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "sandbox",
            "AWS_SECRET_ACCESS_KEY": "sandbox",
            "AWS_DEFAULT_REGION": self.options.region,
            "AWS_REGION": self.options.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def _set_process_environment(self) -> None:
        """Point this process's AWS clients (the task handlers run here) at the sandbox."""
        variables = {"MOTO_PORT": str(self._server.server_port), **self._aws_variables()}
        for spec in self.resources.functions.values():
            variables.update(spec.environment)
        staged = self._staged_environments_file()
        variables["ENVIRONMENTS_FILE"] = str(staged)
        variables["STACK_CONFIG_KEYS_FILE"] = str(self._staged_stack_config_keys())
        for key, value in variables.items():
            self._saved_environment.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        from lambdas.common.aws import client
        from lambdas.common.settings import current_settings

        client.cache_clear()
        current_settings.cache_clear()
        from lambdas.common import observability  # creates the Powertools handler to redirect

        capture_logger = logging.getLogger(observability.logger.service)
        for handler in capture_logger.handlers:
            # Capture the same JSON lines Powertools writes, extra keys included.
            if isinstance(handler, logging.StreamHandler) and handler.formatter is not None:
                self.log_capture.setFormatter(handler.formatter)
        capture_logger.addHandler(self.log_capture)
        if not self.options.echo_logs:
            self._redirect_task_logs(capture_logger)

    def _redirect_task_logs(self, task_logger: logging.Logger) -> None:
        """Write the task handlers' JSON log lines to <work dir>/lambdas.log, not stdout."""
        self._log_file = (self.options.work_dir / "lambdas.log").open("a", encoding="utf-8")
        task_metrics.sink = self._write_task_log_line
        for handler in task_logger.handlers:
            if isinstance(handler, logging.StreamHandler) and handler is not self.log_capture:
                self._redirected.append((handler, handler.setStream(self._log_file)))

    def _write_task_log_line(self, line: str) -> None:
        log_file = getattr(self, "_log_file", None)
        if log_file is not None and not log_file.closed:
            log_file.write(line + "\n")
            log_file.flush()

    def _staged_environments_file(self) -> Path:
        from lambdas.common.settings import Settings, load_settings

        settings = load_settings(REPO_ROOT / "environments.yaml")
        document = settings.model_dump(mode="json")
        for name, values in self.options.environment_overrides.items():
            if name not in document["environments"]:
                raise ValueError(
                    f"environment_overrides names environment {name!r}, which "
                    f"environments.yaml does not define; use one of "
                    f"{sorted(document['environments'])}"
                )
            document["environments"][name].update(values)
        # Validated like environments.yaml, so a bad override fails here, naming the key.
        Settings.model_validate(document)
        path = self.options.work_dir / "environments.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    def _staged_stack_config_keys(self) -> Path:
        """Stage the stack settings files' config keys as `cdk synth` does for the Lambdas."""
        from lambdas.common.settings import read_stack_config_keys

        path = self.options.work_dir / "stack_config_keys.json"
        path.write_text(json.dumps(read_stack_config_keys(REPO_ROOT / "infra")), encoding="utf-8")
        return path

    def _build_simulators(self) -> None:
        from .eb import ElasticBeanstalkSimulator
        from .eb.storage import S3Buckets

        s3 = self.client("s3")

        def fetch_object(bucket: str, key: str) -> bytes:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

        self.eb = ElasticBeanstalkSimulator(
            self.clock,
            fetch_object,
            self.options.work_dir / "eb",
            region=self.options.region,
            account_id=ACCOUNT_ID,
            launch_seconds=self.options.launch_seconds,
            update_seconds=self.options.update_seconds,
            terminate_seconds=self.options.terminate_seconds,
            buckets=S3Buckets(lambda region: self.client("s3", region)),
        )
        self.lambdas = LambdaRuntime(self.resources.functions, ACCOUNT_ID, self.options.region)
        # EB status changes reach the template's EventBridge rules, as on AWS.
        self.events = SandboxEventBridge(
            self.resources.rules,
            self.lambdas,
            self.clock,
            region=self.options.region,
            account_id=ACCOUNT_ID,
        )
        self.eb.subscribe(self.events.publish)
        # Operations complete at their virtual time even when nothing polls EB.
        self.eb_timers = TransitionTimers(self.clock, self.eb)
        self.eb.watch_transitions(self.eb_timers.schedule_next)
        ssm = self.client("ssm")

        def resolve_parameter(name: str) -> str:
            # CodeBuild reads PARAMETER_STORE variables in its project's region.
            try:
                return ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            except ssm.exceptions.ParameterNotFound:
                raise ParameterNotFound(name) from None

        # The base environment has no passphrase, because each build reads it from SSM through
        # the project's PARAMETER_STORE variable, as in CodeBuild (see _seed_secrets).
        self.codebuild = CodeBuildSimulator(
            clock=self.clock,
            project_name=self.resources.codebuild_project,
            repo_root=REPO_ROOT,
            work_dir=self.options.work_dir / "builds",
            base_environment={
                "PATH": os.environ.get("PATH", ""),
                "HOME": os.environ.get("HOME", "/tmp"),
                **self._aws_variables(),
                "PULUMI_SKIP_UPDATE_CHECK": "true",
                "PULUMI_HOME": str(self.options.work_dir / "pulumi-home"),
                # A locked stack is retried without real-time sleeps in the sandbox.
                "PULUMI_LOCK_RETRY_SECONDS": "0",
                "CONTROL_PLANE_PYTHON": os.sys.executable,
                "PYTHONPATH": str(REPO_ROOT),
            },
            resolve_parameter=resolve_parameter,
            region=self.options.region,
            account_id=ACCOUNT_ID,
            project_variables=self.resources.codebuild_environment,
        )
        (self.options.work_dir / "builds").mkdir(parents=True, exist_ok=True)
        self.codebuild.on_build_finished = lambda build: self.faults.pulumi_run_finished()

    def _provision(self) -> None:
        """Create the template's resources in moto under their sandbox names."""
        resources = self.resources
        s3 = self.client("s3")
        for bucket in (resources.bundle_bucket, resources.state_bucket):
            s3.create_bucket(Bucket=bucket)
        self.client("dynamodb").create_table(
            TableName=resources.table_name,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        self.client("sns").create_topic(Name=resources.topic_arn.rsplit(":", 1)[1])
        self.client("stepfunctions").create_state_machine(
            name=resources.state_machine_name,
            definition=json.dumps(resources.definition),
            roleArn=resources.state_machine_role_arn,
            type="STANDARD",
        )
        self._seed_secrets()

    def _seed_secrets(self) -> None:
        """Store the stacks' Pulumi passphrase and every required secret of the sample
        environments, as an operator would.

        The passphrase is a SecureString at `pulumi_passphrase_parameter` in the control
        plane's region, where the CodeBuild project reads it. Other SSM parameters are
        SecureStrings, and Secrets Manager secrets are created in the secret's region. A secret
        read by JSON key contains one field per key. `stack_config` secrets are in the stack
        settings files already. `seed_secrets` sets chosen values, keyed by parameter or secret
        name (`<name>#<json key>` for a JSON field).
        """
        from lambdas.common.settings import SecretsManagerSecret, SsmSecret, load_settings

        settings = load_settings(REPO_ROOT / "environments.yaml")
        passphrase_parameter = settings.pulumi_passphrase_parameter
        self.client("ssm").put_parameter(
            Name=passphrase_parameter,
            Value=self._seed_value(passphrase_parameter),
            Type="SecureString",
        )
        secret_strings: dict[tuple[str, str], dict[str, str] | str] = {}
        for environment in settings.environments.values():
            for source in environment.required_secrets.values():
                if isinstance(source, SsmSecret):
                    self.client("ssm", environment.region).put_parameter(
                        Name=source.name, Value=self._seed_value(source.name), Type="SecureString"
                    )
                elif isinstance(source, SecretsManagerSecret):
                    place = (source.region(environment.region), source.name)
                    if source.key is None:
                        secret_strings[place] = self._seed_value(source.name)
                    else:
                        fields = secret_strings.setdefault(place, {})
                        if isinstance(fields, dict):
                            fields[source.key] = self._seed_value(f"{source.name}#{source.key}")
        for (region, name), value in sorted(secret_strings.items()):
            self.client("secretsmanager", region).create_secret(
                Name=name, SecretString=value if isinstance(value, str) else json.dumps(value)
            )

    def _seed_value(self, name: str) -> str:
        value = self.options.seed_secrets.get(name) or secrets.token_urlsafe(18)
        self.secret_values.append(value)
        return value

    def delete_secret(self, environment: EnvironmentSettings, key: str) -> None:
        """Delete the SSM parameter or Secrets Manager secret behind an environment's required
        secret `key`, as if the operator had never stored it.

        A secret already deleted (by another key read from it) stays deleted. Its values stay in
        `secret_values`, so the secret scan still looks for them.
        """
        from lambdas.common.settings import SecretsManagerSecret, SsmSecret

        source = environment.required_secrets[key]
        if isinstance(source, SsmSecret):
            self.client("ssm", environment.region).delete_parameter(Name=source.name)
        elif isinstance(source, SecretsManagerSecret):
            manager = self.client("secretsmanager", source.region(environment.region))
            with contextlib.suppress(manager.exceptions.ResourceNotFoundException):
                manager.delete_secret(SecretId=source.name, ForceDeleteWithoutRecovery=True)
        else:
            raise ValueError(
                f"secret {key!r} is set in the stack's config file, which the sandbox does not "
                "change; only SSM and Secrets Manager secrets can be deleted"
            )

    def delete_pulumi_passphrase(self) -> None:
        """Delete the SSM parameter of the stacks' passphrase, as if it had never been stored.

        Its value stays in `secret_values`, so the secret scan still looks for it.
        """
        from lambdas.common.settings import load_settings

        name = load_settings(REPO_ROOT / "environments.yaml").pulumi_passphrase_parameter
        self.client("ssm").delete_parameter(Name=name)

    # Helpers for the CLI, the scenario runner and the tests.

    def client(self, service: str, region: str | None = None) -> Any:
        return boto3.client(
            service,
            region_name=region or self.options.region,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    def set_stack_config(self, stack: str, values: dict[str, Any]) -> None:
        """Change the stack config that later builds run with, as a commit to infra/ would.

        The program fingerprint changes with it, so the next deployment checks for drift.
        """
        overrides = self.codebuild.stack_config.setdefault(stack, {})
        overrides.update(values)
        document = json.dumps(self.codebuild.stack_config, sort_keys=True, default=str)
        base = self._base_fingerprint or os.environ.get("PROGRAM_FINGERPRINT", "")
        self._base_fingerprint = base
        digest = hashlib.sha256(f"{base}\0{document}".encode()).hexdigest()
        os.environ["PROGRAM_FINGERPRINT"] = digest

    def status(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint_url,
            "virtualSeconds": self.clock.elapsed(),
            "stateMachineArn": self.resources.state_machine_arn,
            "bundleBucket": self.resources.bundle_bucket,
            "stateBucket": self.resources.state_bucket,
            "tableName": self.resources.table_name,
            "pid": os.getpid(),
        }
