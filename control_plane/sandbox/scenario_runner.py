"""Run scenario files, each in a fresh sandbox, and check their expectations."""

from __future__ import annotations

import itertools
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
    RequestConflict,
    execution_name,
    start_or_attach,
    upload_bundle,
    wait_for_execution,
)
from .faults import TaskFault
from .scenario import (
    RECOVERY_STEPS,
    AdvanceStep,
    DeployStep,
    EbEventStep,
    Expectation,
    FaultSpec,
    LoadedScenario,
    MaintenanceStep,
    StopExecutionStep,
    check_unique_names,
    load_scenario,
)
from .stack_faults import STACK_FAULTS, FaultNotArmed, arm_stack_fault
from .template import REPO_ROOT

SAMPLE_APP = REPO_ROOT / "samples" / "webapp"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# Scenario faults of the sandbox's EventBridge, and the bus method that arms each.
EVENT_FAULTS = {"lost_events": "lose_events", "duplicate_events": "duplicate_events"}
# Faults of the EB simulator that apply while the version `after_version` is deployed.
EB_VERSION_FAULTS = ("health_endpoint", "update_aborted", "environment_health", "health_sequence")


class StepFailed(RuntimeError):
    """A step could not run as written: the scenario is wrong, not the control plane."""


@dataclass
class StepResult:
    index: int
    kind: str
    request_id: str | None = None
    environment: str | None = None
    ledger_environment: str | None = None
    # Why the start itself was refused (a request id reused for another version).
    rejected: str | None = None
    execution_arn: str | None = None
    report: ExecutionReport | None = None
    plan: str | None = None
    outcome: str | None = None
    builds_started: int = 0
    build_log_bytes: int = 0
    live_environments: int | None = None
    recoveries: int = 0
    # Scheduled drift checks (trigger=schedule) that the step's schedules started.
    drift_checks: int = 0
    serving_version: str | None = None
    # Why automatic recovery stopped in this step, from the ledger (circuit breaker).
    stop_cause: str | None = None
    # The cause in the request's ledger record, such as the drift a check found.
    ledger_cause: str | None = None
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
        self._events_published = 0
        self._bundles: dict[str, str] = {}
        # The trigger of every execution seen so far (None when not one of EventBridge's), so
        # each execution is described once per scenario.
        self._triggers: dict[str, str | None] = {}

    def run(self) -> ScenarioResult:
        self.sandbox.eb.configure(**self.scenario.clock.model_dump())
        # The runner is an actor of the virtual clock: time does not move while a step runs, so
        # requests started by consecutive steps arrive at the same virtual instant. It lets
        # time pass only where a step waits (advance, or waiting for an execution to end).
        clock = self.sandbox.clock
        clock.add_actor()
        try:
            self._run_steps()
            self._finish_pending()
        finally:
            clock.remove_actor()
        # A request's record can come later than its execution's end: a stopped execution's
        # record is written by the request that takes its lease over.
        for result in self.results:
            if result.report is not None and result.outcome is None:
                record = self._ledger_record(result.ledger_environment, result.request_id)
                result.plan = (record or {}).get("plan")
                result.outcome = (record or {}).get("outcome")
                result.ledger_cause = (record or {}).get("cause")
        outcome = ScenarioResult(
            name=self.scenario.name, virtual_seconds=self.sandbox.clock.elapsed()
        )
        outcome.checks.extend(self._check(expectation) for expectation in self.scenario.expect)
        outcome.checks.extend(self._always_checked())
        return outcome

    def _run_steps(self) -> None:
        for index, step in enumerate(self.loaded.steps, 1):
            builds_before = len(self.sandbox.codebuild.builds)
            recoveries_before = self._recovery_arns()
            result = StepResult(index=index, kind=step.kind)
            try:
                self._arm_faults(index)
                self._run_step(step.kind, step.arguments, result)
            except StepFailed as error:
                result.error = str(error)
            result.builds_started = len(self.sandbox.codebuild.builds) - builds_before
            result.build_log_bytes = sum(
                build.log_path.stat().st_size
                for build in self.sandbox.codebuild.builds[builds_before:]
                if build.log_path is not None and build.log_path.exists()
            )
            self._observe_recoveries(result, recoveries_before)
            self.results.append(result)

    # Steps

    def _run_step(self, kind: str, arguments: dict[str, Any], result: StepResult) -> None:
        if kind == "deploy":
            self._deploy(DeployStep.model_validate(arguments), result)
        elif kind == "wait_all":
            self._finish_pending()
        elif kind == "advance":
            # Scheduled rules (the recovery sweep) run when time passes their schedule.
            self.sandbox.events.let_time_pass(AdvanceStep.model_validate(arguments).seconds)
        elif kind == "stop_execution":
            self._stop(StopExecutionStep.model_validate(arguments).step)
        elif kind == "terminate_environment":
            self._terminate()
        elif kind == "stack_config":
            self.sandbox.set_stack_config(self.settings.pulumi_stack, arguments)
        elif kind == "eb_event":
            self._publish_eb_event(EbEventStep.model_validate(arguments))
        elif kind == "maintenance":
            self._set_maintenance(MaintenanceStep.model_validate(arguments).on)

    def _arm_faults(self, index: int) -> None:
        for fault in self.loaded.faults:
            if fault.at_step == index:
                self._arm_fault(fault)

    def _arm_fault(self, fault: FaultSpec) -> None:
        arguments = fault.arguments
        if fault.kind == "outputs_unavailable":
            self.sandbox.faults.set_outputs_unavailable(arguments.reads)
        elif fault.kind == "environment_stuck":
            self.sandbox.eb.stick(None, arguments.status, arguments.seconds)
        elif fault.kind == "codebuild_fails":
            self.sandbox.codebuild.failures_to_inject += arguments.builds
        elif fault.kind in EB_VERSION_FAULTS:
            self._arm_version_fault(fault.kind, arguments)
        elif fault.kind == "eb_update_refused":
            self.sandbox.eb.refuse_updates(arguments.times)
        elif fault.kind == "version_quota":
            self._fill_version_quota(arguments.existing)
        elif fault.kind == "existing_version":
            bundle = self._bundle_uri(None)
            if not arguments.same_bundle:
                bundle = bundle.replace(".zip", "-other.zip")
            self._create_version(arguments.label, bundle)
        elif fault.kind in EVENT_FAULTS:
            getattr(self.sandbox.events, EVENT_FAULTS[fault.kind])()
        elif fault.kind in STACK_FAULTS:
            try:
                arm_stack_fault(self.sandbox, self.settings, fault.kind, arguments)
            except FaultNotArmed as error:
                raise StepFailed(str(error)) from None
        elif fault.kind == "throttle":
            self.sandbox.faults.add_throttle(
                arguments.service, arguments.operation, arguments.times
            )
        elif fault.kind in ("task_crash", "task_timeout"):
            self.sandbox.faults.add_task_fault(
                TaskFault(fault.kind), arguments.state, arguments.times
            )

    def _arm_version_fault(self, kind: str, arguments: Any) -> None:
        """Arm an EB simulator fault that acts once `arguments.after_version` is deployed."""
        eb, version = self.sandbox.eb, arguments.after_version
        if kind == "health_endpoint":
            eb.set_health_status(version, arguments.status)
        elif kind == "update_aborted":
            eb.abort_updates_to(version)
        elif kind == "environment_health":
            eb.set_environment_health(version, arguments.color, arguments.status, arguments.causes)
        elif kind == "health_sequence":
            eb.set_health_sequence(version, arguments.colors)

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
        environment = step.environment or self.scenario.environment
        result.environment = environment
        request = step.raw_input or {
            "environment": environment,
            "version": step.version,
            "bundle": self._bundle_uri(step.bundle),
            "requestId": request_id,
            "trigger": "manual",
            "startedBy": "scenario",
        }
        name = execution_name(environment, request_id)
        # The ledger keys a request without a valid requestId by its execution name.
        result.request_id = str(request.get("requestId") or name)
        result.ledger_environment = str(request.get("environment") or "unknown")
        try:
            result.execution_arn, _ = start_or_attach(
                self.sfn, self.sandbox.resources.state_machine_arn, request, name=name
            )
        except RequestConflict as error:
            result.rejected = str(error)
            return
        if step.wait:
            self._collect(result)
        else:
            self._pending.append(result)

    def _collect(self, result: StepResult) -> None:
        assert result.execution_arn is not None
        clock = self.sandbox.clock
        # Waiting for the execution lets virtual time pass for it.
        clock.remove_actor()
        try:
            result.report = wait_for_execution(self.sfn, result.execution_arn, timeout_seconds=300)
        finally:
            clock.add_actor()
        record = self._ledger_record(result.ledger_environment, result.request_id)
        result.plan = (record or {}).get("plan")
        result.outcome = (record or {}).get("outcome")
        result.ledger_cause = (record or {}).get("cause")
        result.serving_version = self._serving_version(result.environment)
        result.live_environments = self._live_environment_count(result.environment)

    def _finish_pending(self) -> None:
        while self._pending:
            self._collect(self._pending.pop(0))
        # Recoveries that events started and no step collected end before anything is checked.
        clock = self.sandbox.clock
        clock.remove_actor()
        try:
            self.sandbox.events.wait_idle()
            for arn in sorted(self._running_executions()):
                wait_for_execution(self.sfn, arn, timeout_seconds=300)
        finally:
            clock.add_actor()

    def _running_executions(self) -> set[str]:
        pages = self.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.sandbox.resources.state_machine_arn, statusFilter="RUNNING"
        )
        return {execution["executionArn"] for page in pages for execution in page["executions"]}

    def _stop(self, step: int) -> None:
        """Stop the execution of deploy step `step` and wait until it has ended."""
        started = self.results[step - 1]
        if started.execution_arn is None:
            raise StepFailed(f"stop_execution: step {step} started no execution")
        self.sfn.stop_execution(
            executionArn=started.execution_arn,
            error="ScenarioStopped",
            cause=f"stopped by step {len(self.results) + 1} of the scenario",
        )
        if started in self._pending:
            self._pending.remove(started)
            self._collect(started)

    def _terminate(self) -> None:
        eb = self.sandbox.client("elasticbeanstalk")
        environments = eb.describe_environments(
            ApplicationName=self.settings.eb_application, IncludeDeleted=False
        )["Environments"]
        if not environments:
            raise StepFailed("terminate_environment: no live environment to terminate")
        for environment in environments:
            eb.terminate_environment(EnvironmentName=environment["EnvironmentName"])
        # A console user waits until the termination completes; EB then sends its event.
        self.sandbox.clock.advance(self.scenario.clock.terminate_seconds + 1)
        self.sandbox.eb.refresh()

    def _publish_eb_event(self, step: EbEventStep) -> None:
        """Publish an EB status-change event in AWS's format, as EB would send it."""
        from .eb.events import RESOURCE_STATUS_CHANGE

        name = step.environment_name or self.settings.eb_environment_name
        application = step.application_name or self.settings.eb_application
        region = self.settings.region
        account = self.sandbox.resources.account_id
        now = self.sandbox.clock.now()
        self._events_published += 1
        self.sandbox.events.publish(
            {
                "version": "0",
                "id": f"scenario-event-{self._events_published}-{int(now)}",
                "detail-type": RESOURCE_STATUS_CHANGE,
                "source": "aws.elasticbeanstalk",
                "account": account,
                "time": self.sandbox.clock.now_datetime().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": region,
                "resources": [
                    f"arn:aws:elasticbeanstalk:{region}:{account}:environment/{application}/{name}"
                ],
                "detail": {
                    "Status": step.status,
                    "EventDate": round(now * 1000),
                    "ApplicationName": application,
                    "Message": f"{step.status} (published by the scenario)",
                    "EnvironmentName": name,
                    "Severity": "ERROR" if step.status.endswith("failed") else "INFO",
                },
            }
        )

    def _set_maintenance(self, on: bool) -> None:
        from lambdas.common.recovery import maintenance_parameter

        self.sandbox.client("ssm").put_parameter(
            Name=maintenance_parameter(self.scenario.environment),
            Value="on" if on else "off",
            Type="String",
            Overwrite=True,
        )

    def _observe_recoveries(self, result: StepResult, before: dict[str, str]) -> None:
        """Count the recoveries and drift checks the step started.

        A recovery step's expectations check the first recovery, or else the first drift check.
        """
        self.sandbox.events.wait_idle()
        started = {
            arn: trigger for arn, trigger in self._recovery_arns().items() if arn not in before
        }
        result.recoveries = sum(1 for trigger in started.values() if trigger == "recovery")
        result.drift_checks = sum(1 for trigger in started.values() if trigger == "schedule")
        if result.kind not in RECOVERY_STEPS:
            return
        if started:
            first = min(started, key=lambda arn: (started[arn] != "recovery", arn))
            described = self.sfn.describe_execution(executionArn=first)
            result.execution_arn = first
            result.request_id = json.loads(described["input"])["requestId"]
            result.environment = result.ledger_environment = self.scenario.environment
            self._pending.append(result)
            return
        from lambdas.common.recovery import BREAKER_OUTCOME
        from lambdas.common.store import ledger_records

        table = self.sandbox.resources.table_name
        for record in ledger_records(self.scenario.environment, table):
            if record.get("outcome") == BREAKER_OUTCOME and record["requestId"] not in {
                other.request_id for other in self.results
            }:
                result.request_id = record["requestId"]
                result.outcome = record["outcome"]
                result.stop_cause = record.get("cause")

    # Observations

    def _recovery_arns(self) -> dict[str, str]:
        """Return the executions that EventBridge's targets started, with their trigger:
        `recovery` (a termination or the sweep) or `schedule` (a drift check)."""
        sfn = self.sfn
        arn = self.sandbox.resources.state_machine_arn
        found = {}
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
            for execution in page["executions"]:
                execution_arn = execution["executionArn"]
                if execution_arn not in self._triggers:
                    described = sfn.describe_execution(executionArn=execution_arn)
                    trigger = json.loads(described.get("input") or "{}").get("trigger")
                    self._triggers[execution_arn] = (
                        trigger if trigger in ("recovery", "schedule") else None
                    )
                trigger = self._triggers[execution_arn]
                if trigger is not None:
                    found[execution_arn] = trigger
        return found

    def _ledger_record(
        self, environment: str | None, request_id: str | None
    ) -> dict[str, Any] | None:
        from lambdas.common.store import ledger_records

        table = self.sandbox.resources.table_name
        for record in ledger_records(environment or self.scenario.environment, table):
            if record.get("requestId") == request_id:
                return record
        return None

    def _serving_version(self, environment_name: str | None = None) -> str | None:
        settings = self.settings
        if environment_name and environment_name != self.scenario.environment:
            settings = load_settings(REPO_ROOT / "environments.yaml").environment(environment_name)
        eb = self.sandbox.client("elasticbeanstalk", settings.region)
        environments = eb.describe_environments(
            ApplicationName=settings.eb_application, IncludeDeleted=False
        )["Environments"]
        for environment in environments:
            cname = environment.get("CNAME")
            if cname and environment.get("Status") == "Ready":
                return _fetch_version(f"http://{cname}{settings.health_path}")
        return None

    def _live_environment_count(self, environment_name: str | None) -> int:
        settings = self.settings
        if environment_name and environment_name != self.scenario.environment:
            settings = load_settings(REPO_ROOT / "environments.yaml").environment(environment_name)
        eb = self.sandbox.client("elasticbeanstalk", settings.region)
        environments = eb.describe_environments(
            ApplicationName=settings.eb_application, IncludeDeleted=False
        )["Environments"]
        return sum(1 for environment in environments if environment.get("Status") != "Terminated")

    # Checks

    def _check(self, expectation: Expectation) -> CheckResult:
        if expectation.step is None:
            return self._check_outcome_counts(expectation.outcomes or {})
        result = self.results[expectation.step - 1]
        report = result.report
        problems: list[str] = []
        if result.rejected is not None:
            return self._check_rejected(expectation, result.rejected)
        if report is None and result.kind in RECOVERY_STEPS:
            return self._check_without_recovery(expectation, result)
        if report is None:
            return CheckResult(False, f"FAIL step {expectation.step}: no deployment ran in it")

        observed: dict[str, Any] = {
            "status": report.status,
            "outcome": result.outcome,
            "plan": result.plan,
            "serving_version": result.serving_version,
            "codebuild_builds": result.builds_started,
            "recoveries": result.recoveries,
            "drift_checks": result.drift_checks,
            "live_environments": result.live_environments,
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
        log_kib = result.build_log_bytes / 1024
        if expectation.min_build_log_kib is not None and log_kib < expectation.min_build_log_kib:
            problems.append(
                f"min_build_log_kib: the step's build logs contain {log_kib:.0f} KiB, expected at "
                f"least {expectation.min_build_log_kib}"
            )
        # A succeeded execution has no cause, but its ledger record may (Superseded, DriftDetected).
        cause = report.cause or result.ledger_cause or ""
        absent = [word for word in expectation.cause_includes if word not in cause]
        if absent:
            problems.append(f"cause_includes: {absent} not in cause {cause[:300]!r}")
        problems += _retry_problems(expectation.retries or {}, report.retries)

        summary = f"step {expectation.step} ({report.status}, {len(report.path)} states)"
        if problems:
            if report.status != "SUCCEEDED":
                problems.append(f"the execution failed with {report.error}: {cause[:500]}")
            return CheckResult(False, f"FAIL {summary}: " + "; ".join(problems))
        return CheckResult(True, f"PASS {summary}")

    def _check_without_recovery(self, expectation: Expectation, result: StepResult) -> CheckResult:
        """Check a recovery step that started no recovery: its count, or why recovery stopped."""
        problems = []
        if expectation.recoveries is not None and result.recoveries != expectation.recoveries:
            problems.append(
                f"recoveries: expected {expectation.recoveries}, got {result.recoveries}"
            )
        if expectation.drift_checks is not None and result.drift_checks != expectation.drift_checks:
            problems.append(
                f"drift_checks: expected {expectation.drift_checks}, got {result.drift_checks}"
            )
        if expectation.outcome is not None and result.outcome != expectation.outcome:
            problems.append(f"outcome: expected {expectation.outcome!r}, got {result.outcome!r}")
        cause = result.stop_cause or ""
        absent = [word for word in expectation.cause_includes if word not in cause]
        if absent:
            problems.append(f"cause_includes: {absent} not in the ledger's cause {cause[:300]!r}")
        execution_keys = ("status", "plan", "path", "serving_version", "max_transitions")
        asked = [key for key in execution_keys if getattr(expectation, key) is not None]
        if asked:
            problems.append(f"{', '.join(asked)}: no recovery or drift check started in this step")
        summary = f"step {expectation.step} ({result.kind}, {result.recoveries} recoveries)"
        if problems:
            return CheckResult(False, f"FAIL {summary}: " + "; ".join(problems))
        return CheckResult(True, f"PASS {summary}")

    def _check_rejected(self, expectation: Expectation, message: str) -> CheckResult:
        problems = []
        if expectation.status != "REJECTED":
            problems.append(f"status: expected {expectation.status!r}, got 'REJECTED'")
        absent = [word for word in expectation.cause_includes if word not in message]
        if absent:
            problems.append(f"cause_includes: {absent} not in {message!r}")
        summary = f"step {expectation.step} (start refused: {message})"
        if problems:
            return CheckResult(False, f"FAIL {summary}: " + "; ".join(problems))
        return CheckResult(True, f"PASS step {expectation.step} (start refused)")

    def _check_outcome_counts(self, expected: dict[str, int]) -> CheckResult:
        """Count the outcomes of the distinct executions the deploy steps started."""
        counts: dict[str, int] = {}
        seen: set[str] = set()
        for result in self.results:
            if result.execution_arn is None or result.execution_arn in seen:
                continue
            seen.add(result.execution_arn)
            outcome = result.outcome or "none"
            counts[outcome] = counts.get(outcome, 0) + 1
        wrong = {
            outcome: counts.get(outcome, 0)
            for outcome, number in expected.items()
            if counts.get(outcome, 0) != number
        }
        if wrong:
            return CheckResult(False, f"FAIL outcomes: expected {dict(expected)}, counted {counts}")
        return CheckResult(True, f"PASS outcomes {counts}")

    def _always_checked(self) -> list[CheckResult]:
        checks = [
            CheckResult(False, f"FAIL step {result.index} ({result.kind}): {result.error}")
            for result in self.results
            if result.error
        ]
        checks += [
            self._no_lock_left(),
            self._lease_holders_never_overlapped(),
            self._one_record_per_request(),
            self._no_secret_leaked(),
            self._states_within_size_limit(),
            self._faults_all_fired(),
        ]
        return checks

    def _faults_all_fired(self) -> CheckResult:
        """Check that every armed throttle and task fault met as many calls as it was armed for.

        A fault that never fired tested nothing, though the scenario's expectations may hold.
        """
        unused = self.sandbox.faults.unused()
        if unused:
            return CheckResult(False, "FAIL every armed fault fired: " + "; ".join(unused))
        return CheckResult(True, "PASS every armed fault fired")

    def _no_lock_left(self) -> CheckResult:
        from lambdas.common.lease import read_lock

        held = read_lock(self.scenario.environment, self.sandbox.resources.table_name)
        if held:
            holder = held.get("holder", {}).get("S")
            return CheckResult(False, f"FAIL no lock left: lock still held by {holder}")
        return CheckResult(True, "PASS no lock left held")

    def _lease_holders_never_overlapped(self) -> CheckResult:
        """Check that no two executions of one environment held its lease at the same time.

        An execution holds the lease from the end of its successful AcquireLock (one that went
        on to Preflight) to the start of its ReleaseLock, or its end when it never released.
        """
        held: dict[str, list[tuple[Any, Any, str]]] = {}
        seen: set[str] = set()
        for result in self.results:
            if result.report is None or result.report.arn in seen:
                continue
            seen.add(result.report.arn)
            span = _lease_span(result.report.events)
            if span is not None:
                environment = result.environment or self.scenario.environment
                held.setdefault(environment, []).append((*span, result.report.arn))
        for environment, spans in held.items():
            spans.sort()
            for (_, first_end, first), (second_start, _, second) in itertools.pairwise(spans):
                if second_start < first_end:
                    return CheckResult(
                        False,
                        f"FAIL lease holders never overlapped: {second} took the lease of "
                        f"{environment} while {first} still held it",
                    )
        return CheckResult(True, "PASS lease holders never overlapped")

    def _states_within_size_limit(self) -> CheckResult:
        """Check every execution's state data against Step Functions' 256 KiB limit.

        moto does not enforce the limit, so a payload that would fail on AWS fails here.
        """
        for result in self.results:
            if result.report is None:
                continue
            size, where = _largest_state_data(result.report.events)
            if size > STATE_SIZE_LIMIT_BYTES:
                return CheckResult(
                    False,
                    f"FAIL state data within 256 KiB: step {result.index} carried {size} bytes "
                    f"in {where}",
                )
        return CheckResult(True, "PASS state data within 256 KiB")

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
            if (result.kind == "deploy" or result.kind in RECOVERY_STEPS)
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


def _retry_problems(expected: dict[str, int], observed: dict[str, int]) -> list[str]:
    """Compare the expected retries per state with the execution history's."""
    wrong = {
        state: observed.get(state, 0)
        for state, count in expected.items()
        if observed.get(state, 0) != count
    }
    return [f"retries: expected {expected}, got {wrong}"] if wrong else []


# Step Functions fails an execution whose input, output or state data exceeds 256 KiB.
STATE_SIZE_LIMIT_BYTES = 256 * 1024
_STATE_DATA_FIELDS = ("input", "output", "parameters")


def _largest_state_data(events: list[dict[str, Any]]) -> tuple[int, str]:
    """Return the size in bytes of the largest input, output or parameters of the history,
    and the event type that carried it."""
    largest, where = 0, ""
    for event in events:
        for name, details in event.items():
            if not name.endswith("EventDetails") or not isinstance(details, dict):
                continue
            for field_name in _STATE_DATA_FIELDS:
                value = details.get(field_name)
                size = len(value.encode("utf-8")) if isinstance(value, str) else 0
                if size > largest:
                    largest, where = size, f"{event['type']} {field_name}"
    return largest, where


def _lease_span(events: list[dict[str, Any]]) -> tuple[Any, Any] | None:
    """Return when an execution took and gave back its lease, from its history."""
    start = end = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            if name == "Preflight" and start is None:
                start = event["timestamp"]
            elif name.startswith("ReleaseLock") and start is not None:
                end = end or event["timestamp"]
    if start is None:
        return None
    return start, end or events[-1]["timestamp"]


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
