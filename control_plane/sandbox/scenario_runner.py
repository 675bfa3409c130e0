"""Run scenario files, each in a fresh sandbox, and check their expectations."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdas.common.settings import load_settings

from ..bundle import build_bundle
from ..executions import (
    ExecutionReport,
    execution_name,
    start_deployment,
    upload_bundle,
    wait_for_execution,
)
from .scenario import (
    AdvanceStep,
    DeployStep,
    Expectation,
    LoadedScenario,
    check_unique_names,
    load_scenario,
)
from .template import REPO_ROOT

SAMPLE_APP = REPO_ROOT / "samples" / "webapp"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StepFailed(RuntimeError):
    """A step could not run as written: the scenario is wrong, not the control plane."""


@dataclass
class StepResult:
    index: int
    kind: str
    request_id: str | None = None
    ledger_environment: str | None = None
    execution_arn: str | None = None
    report: ExecutionReport | None = None
    plan: str | None = None
    outcome: str | None = None
    builds_started: int = 0
    recoveries: int = 0
    serving_version: str | None = None
    error: str | None = None


@dataclass
class CheckResult:
    passed: bool
    line: str


@dataclass
class ScenarioResult:
    name: str
    checks: list[CheckResult] = field(default_factory=list)
    virtual_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)


def _fetch_version(url: str) -> str | None:
    try:
        with _NO_PROXY.open(url, timeout=5) as response:
            return json.loads(response.read()).get("version")
    except (OSError, ValueError):
        return None


class ScenarioRun:
    """Executes one loaded scenario against one sandbox."""

    def __init__(self, loaded: LoadedScenario, sandbox: Any) -> None:
        self.loaded = loaded
        self.scenario = loaded.scenario
        self.sandbox = sandbox
        self.sfn = sandbox.client("stepfunctions")
        self.settings = load_settings(REPO_ROOT / "environments.yaml").environment(
            self.scenario.environment
        )
        self.results: list[StepResult] = []
        self._pending: list[StepResult] = []
        self._bundles: dict[str, str] = {}

    def run(self) -> ScenarioResult:
        self.sandbox.eb.configure(**self.scenario.clock.model_dump())
        for index, step in enumerate(self.loaded.steps, 1):
            self._arm_faults(index)
            builds_before = len(self.sandbox.codebuild.builds)
            recoveries_before = self._recovery_executions()
            result = StepResult(index=index, kind=step.kind)
            try:
                self._run_step(step.kind, step.arguments, result)
            except StepFailed as error:
                result.error = str(error)
            result.builds_started = len(self.sandbox.codebuild.builds) - builds_before
            result.recoveries = self._recovery_executions() - recoveries_before
            self.results.append(result)
        self._finish_pending()
        outcome = ScenarioResult(
            name=self.scenario.name, virtual_seconds=self.sandbox.clock.elapsed()
        )
        outcome.checks.extend(self._check(expectation) for expectation in self.scenario.expect)
        outcome.checks.extend(self._always_checked())
        return outcome

    # Steps

    def _run_step(self, kind: str, arguments: dict[str, Any], result: StepResult) -> None:
        if kind == "deploy":
            self._deploy(DeployStep.model_validate(arguments), result)
        elif kind == "wait_all":
            self._finish_pending()
        elif kind == "advance":
            self.sandbox.clock.let_pass(AdvanceStep.model_validate(arguments).seconds)
        elif kind == "terminate_environment":
            self._terminate()
        elif kind == "stack_config":
            self.sandbox.set_stack_config(self.settings.pulumi_stack, arguments)

    def _arm_faults(self, index: int) -> None:
        for fault in self.loaded.faults:
            if fault.at_step != index:
                continue
            arguments = fault.arguments
            if fault.kind == "outputs_unavailable":
                self.sandbox.faults.set_outputs_unavailable(arguments.reads)
            elif fault.kind == "environment_stuck":
                self.sandbox.eb.stick(None, arguments.status, arguments.seconds)
            elif fault.kind == "codebuild_fails":
                self.sandbox.codebuild.failures_to_inject += arguments.builds
            elif fault.kind == "health_endpoint":
                self.sandbox.eb.set_health_status(arguments.after_version, arguments.status)
            elif fault.kind == "update_aborted":
                self.sandbox.eb.abort_updates_to(arguments.after_version)
            elif fault.kind == "eb_update_refused":
                self.sandbox.eb.refuse_updates(arguments.times)
            elif fault.kind == "version_quota":
                self._fill_version_quota(arguments.existing)
            elif fault.kind == "existing_version":
                bundle = self._bundle_uri(None)
                if not arguments.same_bundle:
                    bundle = bundle.replace(".zip", "-other.zip")
                self._create_version(arguments.label, bundle)

    def _create_version(self, label: str, bundle: str) -> None:
        bucket, key = bundle[len("s3://") :].split("/", 1)
        try:
            self.sandbox.client("elasticbeanstalk").create_application_version(
                ApplicationName=self.settings.eb_application,
                VersionLabel=label,
                SourceBundle={"S3Bucket": bucket, "S3Key": key},
            )
        except Exception as error:
            raise StepFailed(f"could not create version {label}: {error}") from None

    def _fill_version_quota(self, existing: int) -> None:
        """Fill the application with old versions up to `existing`, then cap it there."""
        eb = self.sandbox.client("elasticbeanstalk")
        versions = eb.describe_application_versions(ApplicationName=self.settings.eb_application)
        bundle = self._bundle_uri(None)
        for number in range(len(versions["ApplicationVersions"]), existing):
            self._create_version(f"old-{number:04d}", bundle)
        self.sandbox.eb.configure(max_application_versions=existing)

    def _bundle_uri(self, bundle: str | None) -> str:
        if bundle and bundle.startswith("s3://"):
            return bundle
        source = Path(bundle) if bundle else SAMPLE_APP
        if not source.is_absolute():
            source = (Path(self.loaded.source).parent / source).resolve()
        key = str(source)
        if key not in self._bundles:
            self._bundles[key] = upload_bundle(
                self.sandbox.client("s3"),
                self.sandbox.resources.bundle_bucket,
                self.scenario.environment,
                build_bundle(source),
            )
        return self._bundles[key]

    def _deploy(self, step: DeployStep, result: StepResult) -> None:
        request_id = step.request_id or f"r-{result.index}"
        request = step.raw_input or {
            "environment": self.scenario.environment,
            "version": step.version,
            "bundle": self._bundle_uri(step.bundle),
            "requestId": request_id,
            "trigger": "manual",
            "startedBy": "scenario",
        }
        name = execution_name(self.scenario.environment, request_id)
        # The ledger keys a request without a valid requestId by its execution name.
        result.request_id = str(request.get("requestId") or name)
        result.ledger_environment = str(request.get("environment") or "unknown")
        result.execution_arn = start_deployment(
            self.sfn, self.sandbox.resources.state_machine_arn, request, name=name
        )
        if step.wait:
            self._collect(result)
        else:
            self._pending.append(result)

    def _collect(self, result: StepResult) -> None:
        assert result.execution_arn is not None
        result.report = wait_for_execution(self.sfn, result.execution_arn, timeout_seconds=300)
        record = self._ledger_record(result.ledger_environment, result.request_id)
        result.plan = (record or {}).get("plan")
        result.outcome = (record or {}).get("outcome")
        result.serving_version = self._serving_version()

    def _finish_pending(self) -> None:
        while self._pending:
            self._collect(self._pending.pop(0))

    def _terminate(self) -> None:
        eb = self.sandbox.client("elasticbeanstalk")
        environments = eb.describe_environments(
            ApplicationName=self.settings.eb_application, IncludeDeleted=False
        )["Environments"]
        if not environments:
            raise StepFailed("terminate_environment: no live environment to terminate")
        for environment in environments:
            eb.terminate_environment(EnvironmentName=environment["EnvironmentName"])
        # A console user waits until the termination completes.
        self.sandbox.clock.advance(self.scenario.clock.terminate_seconds + 1)

    # Observations

    def _recovery_executions(self) -> int:
        """Count executions started with trigger=recovery (EventBridge starts them on AWS)."""
        sfn = self.sfn
        arn = self.sandbox.resources.state_machine_arn
        count = 0
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for execution in page["executions"]:
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                if json.loads(described.get("input") or "{}").get("trigger") == "recovery":
                    count += 1
        return count

    def _ledger_record(
        self, environment: str | None, request_id: str | None
    ) -> dict[str, Any] | None:
        from lambdas.common.store import ledger_records

        table = self.sandbox.resources.table_name
        for record in ledger_records(environment or self.scenario.environment, table):
            if record.get("requestId") == request_id:
                return record
        return None

    def _serving_version(self) -> str | None:
        eb = self.sandbox.client("elasticbeanstalk")
        environments = eb.describe_environments(
            ApplicationName=self.settings.eb_application, IncludeDeleted=False
        )["Environments"]
        for environment in environments:
            cname = environment.get("CNAME")
            if cname and environment.get("Status") == "Ready":
                return _fetch_version(f"http://{cname}{self.settings.health_path}")
        return None

    # Checks

    def _check(self, expectation: Expectation) -> CheckResult:
        result = self.results[expectation.step - 1]
        report = result.report
        problems: list[str] = []
        if report is None:
            return CheckResult(False, f"FAIL step {expectation.step}: no deployment ran in it")

        observed: dict[str, Any] = {
            "status": report.status,
            "outcome": result.outcome,
            "plan": result.plan,
            "serving_version": result.serving_version,
            "codebuild_builds": result.builds_started,
            "recoveries": result.recoveries,
        }
        for key, value in observed.items():
            expected = getattr(expectation, key)
            if expected is not None and value != expected:
                problems.append(f"{key}: expected {expected!r}, got {value!r}")

        if expectation.path is not None and report.path != expectation.path:
            problems.append(f"path: expected {expectation.path}, got {report.path}")
        missing = [state for state in expectation.path_includes if state not in report.path]
        if missing:
            problems.append(f"path_includes: {missing} not in path {report.path}")
        present = [state for state in expectation.path_excludes if state in report.path]
        if present:
            problems.append(f"path_excludes: {present} in path {report.path}")

        if (
            expectation.max_transitions is not None
            and report.transitions > expectation.max_transitions
        ):
            problems.append(
                f"max_transitions: {report.transitions} > {expectation.max_transitions}"
            )
        cause = report.cause or ""
        absent = [word for word in expectation.cause_includes if word not in cause]
        if absent:
            problems.append(f"cause_includes: {absent} not in cause {cause[:300]!r}")

        summary = f"step {expectation.step} ({report.status}, {len(report.path)} states)"
        if problems:
            if report.status != "SUCCEEDED":
                problems.append(f"the execution failed with {report.error}: {cause[:500]}")
            return CheckResult(False, f"FAIL {summary}: " + "; ".join(problems))
        return CheckResult(True, f"PASS {summary}")

    def _always_checked(self) -> list[CheckResult]:
        checks = [
            CheckResult(False, f"FAIL step {result.index} ({result.kind}): {result.error}")
            for result in self.results
            if result.error
        ]
        checks += [self._no_lock_left(), self._one_record_per_request(), self._no_secret_leaked()]
        return checks

    def _no_lock_left(self) -> CheckResult:
        from lambdas.common.store import read_lock

        held = read_lock(self.scenario.environment, self.sandbox.resources.table_name)
        if held:
            holder = held.get("holder", {}).get("S")
            return CheckResult(False, f"FAIL no lock left: lock still held by {holder}")
        return CheckResult(True, "PASS no lock left held")

    def _one_record_per_request(self) -> CheckResult:
        from lambdas.common.store import ledger_records

        environments = {self.scenario.environment}
        environments.update(r.ledger_environment for r in self.results if r.ledger_environment)
        by_request: dict[str, int] = {}
        for environment in environments:
            for record in ledger_records(environment, self.sandbox.resources.table_name):
                by_request[record["requestId"]] = by_request.get(record["requestId"], 0) + 1
        problems = [
            f"{result.request_id}: {by_request.get(result.request_id or '', 0)} records"
            for result in self.results
            if result.kind == "deploy"
            and result.report is not None
            and result.request_id
            and by_request.get(result.request_id, 0) != 1
        ]
        if problems:
            return CheckResult(False, "FAIL one ledger record per request: " + ", ".join(problems))
        return CheckResult(True, "PASS one ledger record per request")

    def _no_secret_leaked(self) -> CheckResult:
        texts: list[str] = list(self.sandbox.log_capture.lines)
        for result in self.results:
            if result.report is not None:
                texts.append(json.dumps(result.report.events, default=str))
                texts.append(json.dumps(result.report.output or {}))
        for build in self.sandbox.codebuild.builds:
            if build.log_path and build.log_path.exists():
                texts.append(build.log_path.read_text(encoding="utf-8", errors="replace"))
        leaks = [
            index
            for index, value in enumerate(self.sandbox.secret_values)
            if any(value in text for text in texts)
        ]
        if leaks:
            return CheckResult(False, f"FAIL no secret leaked: {len(leaks)} secret value(s) found")
        return CheckResult(True, "PASS no secret in history, output or logs")


def load_scenario_files(paths: list[Path]) -> list[LoadedScenario]:
    """Validate every file and the uniqueness of their names; raise ScenarioError otherwise."""
    known = set(load_settings(REPO_ROOT / "environments.yaml").environments)
    loaded = [load_scenario(path, known) for path in paths]
    check_unique_names(loaded)
    return loaded


def run_scenario_file(path: Path, *, work_root: Path | None = None) -> ScenarioResult:
    """Validate the file, run it in a fresh sandbox and return its checks.

    Raises ScenarioError when the file is invalid.
    """
    return run_loaded_scenario(load_scenario_files([path])[0], work_root=work_root)


def run_loaded_scenario(loaded: LoadedScenario, *, work_root: Path | None = None) -> ScenarioResult:
    """Run a validated scenario in a fresh sandbox and return its checks."""
    from .sandbox import Sandbox, SandboxOptions

    root = work_root or Path(tempfile.gettempdir()) / "control-plane-sandbox"
    root.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="scenario-", dir=root))
    clock = loaded.scenario.clock
    options = SandboxOptions(
        work_dir=work_dir,
        launch_seconds=clock.launch_seconds,
        update_seconds=clock.update_seconds,
        terminate_seconds=clock.terminate_seconds,
    )
    try:
        with Sandbox(options) as sandbox:
            return ScenarioRun(loaded, sandbox).run()
    finally:
        if not os.environ.get("CONTROL_PLANE_KEEP_SCENARIO_DIRS"):
            shutil.rmtree(work_dir, ignore_errors=True)
