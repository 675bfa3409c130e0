"""The deployment state machine, built with the CDK chain API.

One function per phase, in the order the phases run. Every Retry and Catch names its errors;
the retry numbers below are the contract the workflow tests check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from lambdas.common.drift import (
    CHECK_ONLY_ACTION,
    DRIFT_CHECK_TRIGGER,
    DRIFT_DETECTED,
    DRIFT_REMEDIATED,
    NO_DRIFT,
    REMEDIATE_ACTION,
)
from lambdas.common.errors import FAILURE_NAMES, UNEXPECTED_FAILURE
from lambdas.common.readiness import READINESS_HEARTBEAT_SECONDS, WAIT_BUDGET_SECONDS, WaitFor
from lambdas.common.waits import DEPLOYMENT_WAIT_SECONDS, ENVIRONMENT_WAIT_SECONDS


@dataclass(frozen=True)
class RetryPolicy:
    """A Retry rule on one named error, by default with a constant interval and no jitter.

    With `full_jitter`, Step Functions waits a random time between 0 and the interval that
    backoff and `max_delay_seconds` give (JitterStrategy FULL).
    """

    error: str
    interval_seconds: int
    max_attempts: int
    backoff_rate: float = 1
    max_delay_seconds: int | None = None
    full_jitter: bool = False


# Stack outputs can lag behind a finished `pulumi up`: retry 5 times, 10 s apart.
OUTPUTS_RETRY = RetryPolicy("OutputsNotAvailable", interval_seconds=10, max_attempts=5)
# Environment readiness in WaitForEnvironment, WaitForDeployment and WaitForRollback. Each wait
# ends with WaitTimedOut at its deadline (lambdas/common/waits.py), so MaxAttempts is only a
# backstop. Intervals start at 10 s and grow by half up to 30 s. Full jitter spreads the checks
# of concurrent deployments, and a jittered interval averages half of its cap, so the backstop
# allows twice the retries that an average run of the longest wait needs.
READINESS_MAX_DELAY_SECONDS = 30
_LONGEST_WAIT_SECONDS = max(ENVIRONMENT_WAIT_SECONDS, DEPLOYMENT_WAIT_SECONDS)
READINESS_RETRY = RetryPolicy(
    "EnvironmentNotReady",
    interval_seconds=10,
    backoff_rate=1.5,
    max_delay_seconds=READINESS_MAX_DELAY_SECONDS,
    full_jitter=True,
    max_attempts=math.ceil(2 * _LONGEST_WAIT_SECONDS / (READINESS_MAX_DELAY_SECONDS / 2)),
)
# AwaitEnvironment and AwaitDeployment wait for EB's events (lambdas/common/readiness.py). They
# go on with their polling task on these errors. A timeout means no event came within the
# heartbeat (moto reports that as States.Timeout only) or the wait's budget is spent, and then
# the polling task ends the wait with WaitTimedOut. EnvironmentNotReady is the release handing
# the wait over while health is undecided. The polling task measures the same deadline from
# the same start.
AWAIT_FALLBACK_ERRORS = ["States.Timeout", "States.HeartbeatTimeout", "EnvironmentNotReady"]
# WaitForTransition has no deadline, so a fixed count bounds it: 30 checks 20 s apart.
TRANSITION_RETRY = RetryPolicy("EnvironmentNotReady", interval_seconds=20, max_attempts=29)
# The polling of the shell scripts this workflow replaces: 30 checks 20 s apart, no jitter. The
# CDK context value `readinessPolling: fixed` gives it to the three readiness waits in place of
# READINESS_RETRY; bench/run.py measures the default against it. Each wait's deadline still
# applies, but 30 checks end first.
FIXED_READINESS_RETRY = RetryPolicy("EnvironmentNotReady", interval_seconds=20, max_attempts=29)
READINESS_POLLING_CONTEXT = "readinessPolling"
READINESS_POLLING = {"backoff": READINESS_RETRY, "fixed": FIXED_READINESS_RETRY}
# The time the current state was entered. Retry attempts stay in the same state entry, so a wait
# task receives the same value on every attempt and measures its deadline from it.
WAIT_STARTED_AT = "$$.State.EnteredTime"
# Another request holds the lock: check every 30 s for up to 30 minutes, long enough for a
# deployment that launches an environment. A newer request supersedes a queued one meanwhile.
LOCK_RETRY = RetryPolicy("EnvironmentLocked", interval_seconds=30, max_attempts=60)
# EB refused the update because an operation is in progress.
BUSY_RETRY = RetryPolicy("EnvironmentBusy", interval_seconds=20, max_attempts=15)
# The app's health URL, after EB reports the new version Ready.
HEALTH_RETRY = RetryPolicy("HealthCheckFailed", interval_seconds=10, max_attempts=5)


@dataclass(frozen=True)
class LambdaFailureRetry:
    """A Retry rule on Lambda's own failures, with exponential backoff."""

    errors: tuple[str, ...]
    interval_seconds: int
    max_attempts: int
    backoff_rate: float


# Lambda's own failures get the same rules in every Lambda task (`_handle_lambda_failures`).
# The CDK's LambdaInvoke already retries Lambda's transient service errors, as AWS recommends:
# 6 retries from 2 s with backoff rate 2 (`retry_on_service_exceptions`, on by default).
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
)
# Lambda throttled the invocation, so the function did not run: retried like a service error.
THROTTLE_RETRY = LambdaFailureRetry(
    ("Lambda.TooManyRequestsException",), interval_seconds=2, max_attempts=6, backoff_rate=2
)
# The runtime process exited during the invocation (an unhandled crash, out of memory).
CRASH_RETRY = LambdaFailureRetry(
    ("Runtime.ExitError",), interval_seconds=2, max_attempts=2, backoff_rate=2
)
# The function ran past its timeout. Lambda returns errorType Sandbox.Timedout with "RequestId:
# <id> Error: Task timed out after N.00 seconds" (Lambda developer guide, "Troubleshoot
# invocation issues"), and Step Functions names a function error after its errorType. Without
# an errorType, which is what Lambda returned for timeouts before, Step Functions reports
# Lambda.Unknown (Step Functions developer guide, "Handle Lambda service exceptions").
# States.Timeout comes from a TimeoutSeconds on the state, which these tasks do not set. A task
# that timed out has already spent its whole timeout, so it is retried once.
# NOTE: AWS documents timeouts as Lambda.Unknown and shows no Step Functions history with
# Sandbox.Timedout, so both are retried and caught alike.
TIMEOUT_RETRY = LambdaFailureRetry(
    ("Sandbox.Timedout", "Lambda.Unknown", "States.Timeout"),
    interval_seconds=2,
    max_attempts=1,
    backoff_rate=2,
)
# Tasks whose second run would repeat a side effect: Rollback would redeploy. A crash or timeout
# may hit after that side effect, so Step Functions does not run it again. DeployVersion notes
# its update on the lease before starting it, so a repeated run reports that update instead.
MUTATING_TASKS = frozenset({"Rollback"})
# An await's own States.Timeout means that no event came, and its catch handles that. So only
# the Lambda's timeouts are retried.
AWAIT_TASKS = frozenset({"AwaitEnvironment", "AwaitDeployment"})
AWAIT_TIMEOUT_RETRY = LambdaFailureRetry(
    ("Sandbox.Timedout", "Lambda.Unknown"), interval_seconds=2, max_attempts=1, backoff_rate=2
)
# Failures after which a task is caught with its state named in the cause. The error output of
# each of them carries a Cause string. States.Timeout is left to the States.ALL catch.
UNFINISHED_ERRORS = (
    *LAMBDA_SERVICE_ERRORS,
    *THROTTLE_RETRY.errors,
    *CRASH_RETRY.errors,
    "Sandbox.Timedout",
    "Lambda.Unknown",
)

ALL_ERRORS = [sfn.Errors.ALL]


@dataclass(frozen=True)
class TaskFunctions:
    """The Lambda function behind each task state."""

    validate_request: lambda_.IFunction
    acquire_lock: lambda_.IFunction
    prepare_recovery: lambda_.IFunction
    preflight: lambda_.IFunction
    inspect_infrastructure: lambda_.IFunction
    wait_for_transition: lambda_.IFunction
    classify_build_failure: lambda_.IFunction
    resolve_outputs: lambda_.IFunction
    fallback_outputs: lambda_.IFunction
    wait_for_environment: lambda_.IFunction
    deploy_version: lambda_.IFunction
    wait_for_deployment: lambda_.IFunction
    verify_health: lambda_.IFunction
    rollback: lambda_.IFunction
    release_lock: lambda_.IFunction
    record: lambda_.IFunction
    read_drift_result: lambda_.IFunction
    await_readiness: lambda_.IFunction


def readiness_retry(polling: object) -> RetryPolicy:
    """Return the Retry rule of the readiness waits for a `readinessPolling` context value."""
    if polling is None:
        return READINESS_RETRY
    if polling not in READINESS_POLLING:
        raise ValueError(
            f"CDK context {READINESS_POLLING_CONTEXT} is {polling!r}; set it to "
            f"{' or '.join(READINESS_POLLING)}, or leave it unset for backoff"
        )
    return READINESS_POLLING[polling]


def _add_retry(task: tasks.LambdaInvoke, policy: RetryPolicy) -> None:
    max_delay = policy.max_delay_seconds
    task.add_retry(
        errors=[policy.error],
        interval=Duration.seconds(policy.interval_seconds),
        max_attempts=policy.max_attempts,
        backoff_rate=policy.backoff_rate,
        max_delay=Duration.seconds(max_delay) if max_delay is not None else None,
        jitter_strategy=sfn.JitterType.FULL if policy.full_jitter else None,
    )


def _task_payload(**extra: str) -> sfn.TaskInput:
    """Payload for the tasks after validation: the request, the execution and the known data."""
    fields = {
        "request": sfn.JsonPath.object_at("$.request"),
        "executionArn": sfn.JsonPath.execution_id,
    }
    fields.update({key: sfn.JsonPath.object_at(path) for key, path in extra.items()})
    return sfn.TaskInput.from_object(fields)


class DeploymentWorkflow(Construct):
    """Builds the definition; `definition` is the chain to hand to the StateMachine."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        workflow_functions: TaskFunctions,
        workflow_pulumi_project: codebuild.IProject,
        workflow_state_bucket_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._functions = workflow_functions
        self._project = workflow_pulumi_project
        self._state_bucket_name = workflow_state_bucket_name
        self._readiness_retry = readiness_retry(
            self.node.try_get_context(READINESS_POLLING_CONTEXT)
        )

        self._failure_router = self._route_failure()
        self._record_failure = self._record(
            "RecordFailure", next_state=self._failure_router, result_path="$.failure"
        )
        self._release_after_failure = self._release_lock(
            "ReleaseLockAfterFailure", next_state=self._record_failure
        )
        self._rollback_decision = self._rollback()
        self.definition = self._validate_request().next(self._acquire_lock())
        superseded = self._record("RecordSuperseded", next_state=sfn.Succeed(self, "Superseded"))
        self._acquire_lock_state.next(
            sfn.Choice(self, "CheckSuperseded")
            .when(sfn.Condition.is_present("$.lock.superseded"), superseded)
            .otherwise(self._preflight())
        )

    # Phases, in the order they run.

    def _validate_request(self) -> sfn.IChainable:
        task = tasks.LambdaInvoke(
            self,
            "ValidateRequest",
            lambda_function=self._functions.validate_request,
            payload=sfn.TaskInput.from_object(
                {"input": sfn.JsonPath.entire_payload, "executionArn": sfn.JsonPath.execution_id}
            ),
            payload_response_only=True,
            result_path="$.request",
        )
        self._handle_lambda_failures(task, unfinished_next=self._record_failure)
        task.add_catch(self._record_failure, errors=ALL_ERRORS, result_path="$.failure")
        return task

    def _acquire_lock(self) -> tasks.LambdaInvoke:
        task = tasks.LambdaInvoke(
            self,
            "AcquireLock",
            lambda_function=self._functions.acquire_lock,
            payload=sfn.TaskInput.from_object(
                {
                    "request": sfn.JsonPath.object_at("$.request"),
                    "executionArn": sfn.JsonPath.execution_id,
                    # Queue order: the request that reached Step Functions last wins.
                    "startedAt": sfn.JsonPath.execution_start_time,
                }
            ),
            payload_response_only=True,
            result_path="$.lock",
        )
        # A crashed or timed-out attempt may have taken the lease, so release it on that path.
        self._handle_lambda_failures(task, unfinished_next=self._release_after_failure)
        _add_retry(task, LOCK_RETRY)
        task.add_catch(self._record_failure, errors=ALL_ERRORS, result_path="$.failure")
        self._acquire_lock_state = task
        return task

    def _preflight(self) -> sfn.IChainable:
        task = self._lambda_task("Preflight", self._functions.preflight, "$.target")
        task.next(self._inspect_infrastructure())
        # A recovery picks the version to redeploy only once it holds the lock, so a deployment
        # that succeeded while it waited is never replaced by an older version.
        prepare = self._lambda_task(
            "PrepareRecovery", self._functions.prepare_recovery, "$.request"
        )
        prepare.next(task)
        return (
            sfn.Choice(self, "IsRecovery")
            .when(sfn.Condition.string_equals("$.request.trigger", "recovery"), prepare)
            .otherwise(task)
        )

    def _inspect_infrastructure(self) -> sfn.IChainable:
        inspect = self._lambda_task(
            "InspectInfrastructure",
            self._functions.inspect_infrastructure,
            "$.inspection",
            target="$.target",
            lock="$.lock",
        )
        resolve_outputs = self._resolve_outputs()
        run_pulumi = self._run_pulumi(resolve_outputs)
        # The fast path: the program is unchanged and was checked recently, so no build runs.
        skip_pulumi = sfn.Pass(
            self,
            "SkipPulumi",
            result=sfn.Result.from_object({"status": "SKIPPED"}),
            result_path="$.build",
        ).next(resolve_outputs)
        wait_for_transition = self._lambda_task(
            "WaitForTransition",
            self._functions.wait_for_transition,
            "$.transition",
            target="$.target",
            inspection="$.inspection",
        )
        _add_retry(wait_for_transition, TRANSITION_RETRY)
        wait_for_transition.next(inspect)

        run_drift_check = self._drift_check()

        def action(name: str, pulumi_action: str, build: sfn.IChainable = run_pulumi) -> sfn.Pass:
            return sfn.Pass(
                self,
                name,
                result=sfn.Result.from_string(pulumi_action),
                result_path="$.pulumiAction",
            ).next(build)

        plan = "$.inspection.plan"
        scheduled = sfn.Condition.string_equals("$.request.trigger", DRIFT_CHECK_TRIGGER)
        choose = (
            sfn.Choice(self, "ChoosePlan")
            .when(sfn.Condition.string_equals(plan, "provision"), action("Provision", "up"))
            .when(sfn.Condition.string_equals(plan, "recover"), action("Recover", "recover"))
            .when(sfn.Condition.string_equals(plan, "wait-transitional"), wait_for_transition)
            .when(sfn.Condition.string_equals(plan, "none"), skip_pulumi)
            .when(
                sfn.Condition.and_(
                    scheduled, sfn.Condition.boolean_equals("$.inspection.checkOnly", True)
                ),
                action("CheckOnly", CHECK_ONLY_ACTION, run_drift_check),
            )
            .when(scheduled, action("CheckAndRemediate", REMEDIATE_ACTION, run_drift_check))
            .otherwise(action("CheckDrift", "check"))
        )
        return inspect.next(choose)

    def _run_pulumi(self, resolve_outputs: sfn.IChainable) -> sfn.IChainable:
        task = self._pulumi_build("RunPulumi")
        classify = self._lambda_task(
            "ClassifyBuildFailure",
            self._functions.classify_build_failure,
            "$.failure",
            target="$.target",
            failure="$.failure",
            catch=False,
        )
        classify.add_catch(self._release_after_failure, errors=ALL_ERRORS, result_path="$.error")
        classify.next(self._release_after_failure)
        self._classify_build_failure = classify
        task.add_catch(classify, errors=ALL_ERRORS, result_path="$.failure")
        return task.next(resolve_outputs)

    def _drift_check(self) -> sfn.IChainable:
        """Build the states of a scheduled drift check (trigger=schedule) after ChoosePlan.

        One Pulumi run (`check-only`, or `check` where the environment remediates), its outcome,
        then ReleaseLock and Record, and no version is deployed. Drift is not a failure, so the
        execution ends in the Succeed state named after the outcome. A failed run goes through
        ClassifyBuildFailure like any other. Call it after `_run_pulumi`.
        """
        build = self._pulumi_build("RunDriftCheck")
        build.add_catch(self._classify_build_failure, errors=ALL_ERRORS, result_path="$.failure")
        read = self._lambda_task(
            "ReadDriftResult",
            self._functions.read_drift_result,
            "$.drift",
            target="$.target",
            inspection="$.inspection",
            build="$.build",
        )
        outcome = "$.drift.outcome"
        ends = (
            sfn.Choice(self, "DriftCheckOutcome")
            .when(
                sfn.Condition.string_equals(outcome, DRIFT_DETECTED),
                sfn.Succeed(self, DRIFT_DETECTED),
            )
            .when(
                sfn.Condition.string_equals(outcome, DRIFT_REMEDIATED),
                sfn.Succeed(self, DRIFT_REMEDIATED),
            )
            .otherwise(sfn.Succeed(self, NO_DRIFT))
        )
        record = self._record("RecordDriftCheck", next_state=ends)
        read.next(self._release_lock("ReleaseLockAfterDriftCheck", next_state=record))
        return build.next(read)

    def _pulumi_build(self, name: str) -> tasks.CodeBuildStartBuild:
        """Create a task that runs the runner in CodeBuild with the action in $.pulumiAction."""
        plaintext = codebuild.BuildEnvironmentVariableType.PLAINTEXT

        def variable(value: str) -> codebuild.BuildEnvironmentVariable:
            return codebuild.BuildEnvironmentVariable(type=plaintext, value=value)

        return tasks.CodeBuildStartBuild(
            self,
            name,
            project=self._project,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            environment_variables_override={
                "PULUMI_ACTION": variable(sfn.JsonPath.string_at("$.pulumiAction")),
                "PULUMI_STACK": variable(sfn.JsonPath.string_at("$.target.stack")),
                "PULUMI_BACKEND_URL": variable(sfn.JsonPath.string_at("$.target.backendUrl")),
                "PULUMI_SECRETS": variable(
                    sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.target.secrets"))
                ),
                "RESULT_URI": variable(
                    sfn.JsonPath.format(
                        "s3://" + self._state_bucket_name + "/results/{}/{}.json",
                        sfn.JsonPath.string_at("$.request.environment"),
                        sfn.JsonPath.string_at("$.request.requestId"),
                    )
                ),
                "CONTROL_PLANE_REQUEST_ID": variable(sfn.JsonPath.string_at("$.request.requestId")),
                "PROGRAM_FINGERPRINT": variable(sfn.JsonPath.string_at("$.inspection.fingerprint")),
            },
            result_selector={
                "id": sfn.JsonPath.string_at("$.Build.Id"),
                "status": sfn.JsonPath.string_at("$.Build.BuildStatus"),
            },
            result_path="$.build",
        )

    def _resolve_outputs(self) -> sfn.IChainable:
        resolve = self._lambda_task(
            "ResolveOutputs",
            self._functions.resolve_outputs,
            "$.outputs",
            target="$.target",
            inspection="$.inspection",
            build="$.build",
            catch=False,
        )
        _add_retry(resolve, OUTPUTS_RETRY)
        fallback = self._lambda_task(
            "FallbackOutputs", self._functions.fallback_outputs, "$.outputs", target="$.target"
        )
        resolve.add_catch(fallback, errors=["OutputsNotAvailable"], result_path="$.outputsError")
        resolve.add_catch(self._release_after_failure, errors=ALL_ERRORS, result_path="$.failure")
        wait = self._wait_for_environment()
        fallback.next(wait)
        return resolve.next(wait)

    def _wait_for_environment(self) -> sfn.IChainable:
        begin = self._begin_wait("BeginEnvironmentWait", "$.environmentWait")
        task = self._environment_task(
            "WaitForEnvironment",
            self._functions.wait_for_environment,
            "$.environment",
            waitStartedAt="$.environmentWait.startedAt",
        )
        _add_retry(task, self._readiness_retry)
        wait = self._await(
            "AwaitEnvironment",
            "environment",
            "$.environment",
            polling=task,
            failure_next=self._release_after_failure,
            target="$.target",
            outputs="$.outputs",
            lock="$.lock",
            waitStartedAt="$.environmentWait.startedAt",
        )
        deploy = self._deploy_version()
        task.next(deploy)
        wait.next(deploy)
        return begin.next(wait)

    def _deploy_version(self) -> sfn.IChainable:
        task = self._environment_task(
            "DeployVersion", self._functions.deploy_version, "$.deployment"
        )
        _add_retry(task, BUSY_RETRY)
        return task.next(self._wait_for_deployment())

    def _wait_for_deployment(self) -> sfn.IChainable:
        task = self._lambda_task(
            "WaitForDeployment",
            self._functions.wait_for_deployment,
            "$.environment",
            catch=False,
            unfinished_next=self._rollback_decision,
            target="$.target",
            outputs="$.outputs",
            deployment="$.deployment",
            waitStartedAt="$.deploymentWait.startedAt",
        )
        _add_retry(task, self._readiness_retry)
        # From here on the update has started: any failure rolls back.
        task.add_catch(self._rollback_decision, errors=ALL_ERRORS, result_path="$.failure")
        wait = self._await(
            "AwaitDeployment",
            "deployment",
            "$.environment",
            polling=task,
            failure_next=self._rollback_decision,
            target="$.target",
            outputs="$.outputs",
            deployment="$.deployment",
            waitStartedAt="$.deploymentWait.startedAt",
        )
        verify = self._verify_health()
        task.next(verify)
        wait.next(verify)
        return self._begin_wait("BeginDeploymentWait", "$.deploymentWait").next(wait)

    def _begin_wait(self, name: str, result_path: str) -> sfn.Pass:
        """Record when a wait on the environment starts, at `<result_path>.startedAt`.

        Its await and its polling task both measure the wait's one deadline from it.
        """
        return sfn.Pass(
            self,
            name,
            parameters={"startedAt": sfn.JsonPath.string_at(WAIT_STARTED_AT)},
            result_path=result_path,
        )

    def _await(
        self,
        name: str,
        wait_for: WaitFor,
        result_path: str,
        *,
        polling: sfn.IChainable,
        failure_next: sfn.IChainable,
        **inputs: str,
    ) -> tasks.LambdaInvoke:
        """Create a task that waits until an EB event releases it, then goes on to its next.

        Its payload is the polling task's input (`inputs`) plus the task token. It ends as the
        polling task would: with the check's result at `result_path`, or with the check's
        error, which it routes to `failure_next`. Without an event it times out into `polling`.
        """
        fields = {key: sfn.JsonPath.object_at(path) for key, path in inputs.items()}
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self._functions.await_readiness,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {
                    "request": sfn.JsonPath.object_at("$.request"),
                    "executionArn": sfn.JsonPath.execution_id,
                    "taskToken": sfn.JsonPath.task_token,
                    "waitFor": wait_for,
                    **fields,
                }
            ),
            result_path=result_path,
            heartbeat_timeout=sfn.Timeout.duration(Duration.seconds(READINESS_HEARTBEAT_SECONDS)),
            task_timeout=sfn.Timeout.duration(Duration.seconds(WAIT_BUDGET_SECONDS[wait_for])),
        )
        self._handle_lambda_failures(task, unfinished_next=failure_next)
        task.add_catch(polling, errors=AWAIT_FALLBACK_ERRORS, result_path="$.readinessFallback")
        task.add_catch(failure_next, errors=ALL_ERRORS, result_path="$.failure")
        return task

    def _verify_health(self) -> sfn.IChainable:
        task = self._environment_task(
            "VerifyHealth",
            self._functions.verify_health,
            "$.health",
            catch=False,
            unfinished_next=self._rollback_decision,
        )
        _add_retry(task, HEALTH_RETRY)
        task.add_catch(self._rollback_decision, errors=ALL_ERRORS, result_path="$.failure")
        done = sfn.Succeed(self, "Deployed")
        record = self._record("Record", next_state=done)
        return task.next(self._release_lock("ReleaseLock", next_state=record))

    def _rollback(self) -> sfn.IChainable:
        """Build the states that restore the previous version after a failed update.

        A first deployment has no previous version; its failure then notes that.
        """
        previous = "$.deployment.previousVersion"
        rolled_back = sfn.Pass(
            self,
            "MarkRolledBack",
            parameters={"Error": "RolledBack", "Cause": sfn.JsonPath.string_at("$.rollback.cause")},
            result_path="$.failure",
        ).next(self._release_after_failure)
        rollback_failed = sfn.Pass(
            self,
            "MarkRollbackFailed",
            parameters={
                "Error": "RollbackFailed",
                "Cause": sfn.JsonPath.format(
                    "rolling back to {} after {} failed: {}",
                    sfn.JsonPath.string_at(previous),
                    sfn.JsonPath.string_at("$.failure.Error"),
                    sfn.JsonPath.string_at("$.rollbackError.Cause"),
                ),
            },
            result_path="$.failure",
        ).next(self._release_after_failure)
        nothing_to_roll_back = sfn.Pass(
            self,
            "NothingToRollBack",
            result=sfn.Result.from_object(
                {"skipped": "first deployment: no previous version to roll back to"}
            ),
            result_path="$.rollback",
        ).next(self._release_after_failure)

        steps = []
        for name, function, result_path, retry in (
            ("Rollback", self._functions.rollback, "$.rollback", BUSY_RETRY),
            (
                "WaitForRollback",
                self._functions.wait_for_deployment,
                "$.rollbackEnvironment",
                self._readiness_retry,
            ),
            ("VerifyRollback", self._functions.verify_health, "$.rollbackHealth", HEALTH_RETRY),
        ):
            task = tasks.LambdaInvoke(
                self,
                name,
                lambda_function=function,
                payload=_task_payload(
                    target="$.target",
                    outputs="$.outputs",
                    lock="$.lock",
                    deployment="$.deployment",
                    failure="$.failure",
                    expectedVersion=previous,
                    **(
                        {"waitStartedAt": WAIT_STARTED_AT} if retry is self._readiness_retry else {}
                    ),
                ),
                payload_response_only=True,
                result_path=result_path,
            )
            self._handle_lambda_failures(
                task, unfinished_next=rollback_failed, unfinished_path="$.rollbackError"
            )
            _add_retry(task, retry)
            task.add_catch(rollback_failed, errors=ALL_ERRORS, result_path="$.rollbackError")
            steps.append(task)
        steps[0].next(steps[1])
        steps[1].next(steps[2])
        steps[2].next(rolled_back)

        return (
            sfn.Choice(self, "CanRollBack")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present(previous), sfn.Condition.is_not_null(previous)
                ),
                steps[0],
            )
            .otherwise(nothing_to_roll_back)
        )

    # The closing states shared by every path.

    def _release_lock(self, name: str, *, next_state: sfn.IChainable) -> sfn.IChainable:
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self._functions.release_lock,
            payload=_task_payload(),
            payload_response_only=True,
            result_path="$.lockRelease",
        )
        self._handle_lambda_failures(task, unfinished_next=None)
        # A failed release must not skip the ledger record; the lease expires on its own.
        task.add_catch(next_state, errors=ALL_ERRORS, result_path="$.lockReleaseError")
        return task.next(next_state)

    def _record(
        self, name: str, *, next_state: sfn.IChainable, result_path: str = "$.record"
    ) -> sfn.IChainable:
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=self._functions.record,
            payload=sfn.TaskInput.from_object(
                {
                    "state": sfn.JsonPath.entire_payload,
                    "executionArn": sfn.JsonPath.execution_id,
                    "executionName": sfn.JsonPath.execution_name,
                }
            ),
            payload_response_only=True,
            result_path=result_path,
        )
        self._handle_lambda_failures(task, unfinished_next=None)
        task.add_catch(next_state, errors=ALL_ERRORS, result_path="$.recordError")
        return task.next(next_state)

    def _route_failure(self) -> sfn.IChainable:
        """End every failure in a Fail state named after its error."""
        router = sfn.Choice(self, "RouteFailure")
        for name in FAILURE_NAMES:
            router.when(
                sfn.Condition.string_equals("$.failure.Error", name),
                sfn.Fail(self, name, error=name, cause_path="$.failure.Cause"),
            )
        return router.otherwise(
            sfn.Fail(
                self, UNEXPECTED_FAILURE, error=UNEXPECTED_FAILURE, cause_path="$.failure.Cause"
            )
        )

    def _environment_task(
        self,
        name: str,
        function: lambda_.IFunction,
        result_path: str,
        *,
        catch: bool = True,
        unfinished_next: sfn.IChainable | None = None,
        **inputs: str,
    ) -> tasks.LambdaInvoke:
        """Create a task that acts on the environment named by the resolved stack outputs."""
        return self._lambda_task(
            name,
            function,
            result_path,
            catch=catch,
            unfinished_next=unfinished_next,
            target="$.target",
            outputs="$.outputs",
            lock="$.lock",
            **inputs,
        )

    def _lambda_task(
        self,
        name: str,
        function: lambda_.IFunction,
        result_path: str,
        *,
        catch: bool = True,
        unfinished_next: sfn.IChainable | None = None,
        **inputs: str,
    ) -> tasks.LambdaInvoke:
        """Create a Lambda task; its failures go to ReleaseLockAfterFailure.

        With `catch=False` the caller adds the task's States.ALL catch. A task Lambda could not
        finish goes to `unfinished_next` (default ReleaseLockAfterFailure).
        """
        task = tasks.LambdaInvoke(
            self,
            name,
            lambda_function=function,
            payload=_task_payload(**inputs),
            payload_response_only=True,
            result_path=result_path,
        )
        self._handle_lambda_failures(
            task, unfinished_next=unfinished_next or self._release_after_failure
        )
        if catch:
            task.add_catch(self._release_after_failure, errors=ALL_ERRORS, result_path="$.failure")
        return task

    def _handle_lambda_failures(
        self,
        task: tasks.LambdaInvoke,
        *,
        unfinished_next: sfn.IChainable | None,
        unfinished_path: str = "$.failure",
    ) -> None:
        """Add the Retry and Catch rules for Lambda's own failures; every Lambda task calls it.

        Call it right after creating the task, so its Catch comes before the task's own. After
        the retries, a task that Lambda could not finish goes through Mark<Task>Unfinished,
        which names the state in the cause, to `unfinished_next`; the error output lands at
        `unfinished_path`. Without `unfinished_next` the task's own catches handle it.
        """
        name = task.node.id
        rules = [THROTTLE_RETRY]
        if name in AWAIT_TASKS:
            rules += [CRASH_RETRY, AWAIT_TIMEOUT_RETRY]
        elif name not in MUTATING_TASKS:
            rules += [CRASH_RETRY, TIMEOUT_RETRY]
        for rule in rules:
            task.add_retry(
                errors=list(rule.errors),
                interval=Duration.seconds(rule.interval_seconds),
                max_attempts=rule.max_attempts,
                backoff_rate=rule.backoff_rate,
            )
        if unfinished_next is None:
            return
        mark = sfn.Pass(
            self,
            f"Mark{name}Unfinished",
            parameters={
                "Error": sfn.JsonPath.string_at(f"{unfinished_path}.Error"),
                "Cause": sfn.JsonPath.format(
                    f"{name} did not finish ({{}}): {{}}",
                    sfn.JsonPath.string_at(f"{unfinished_path}.Error"),
                    sfn.JsonPath.string_at(f"{unfinished_path}.Cause"),
                ),
            },
            result_path=unfinished_path,
        ).next(unfinished_next)
        task.add_catch(mark, errors=list(UNFINISHED_ERRORS), result_path=unfinished_path)
