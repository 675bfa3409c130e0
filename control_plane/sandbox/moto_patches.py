"""Narrow patches to moto 5.2.5's Step Functions interpreter.

Each patch closes one documented gap between moto and AWS:

- Retry intervals and Wait states sleep in real time. Here they advance the virtual clock, and
  each running execution counts as an actor of that clock.
- `arn:aws:states:::codebuild:startBuild.sync` is rejected as unsupported; here it starts the
  build and polls BatchGetBuilds as AWS does, with AWS's PascalCase parameters and output, and a
  failed build fails the task with States.TaskFailed and the build as JSON in the cause.
- `JitterStrategy: FULL` draws from the process-wide `random`; here each retry's jitter comes
  from a generator seeded with the execution, the state and the attempt, so a scenario gives
  the same virtual timeline on every run.
- `$$.State.EnteredTime` is wall-clock time; here it is virtual time, the clock the task
  handlers measure their wait deadlines with.
- Inner AWS calls go to `localhost:$MOTO_PORT`; here they go to 127.0.0.1 explicitly, so nothing
  depends on how `localhost` resolves.
- A Lambda service error on Invoke (a throttle, for one) fails the task with error `Exception`;
  here it is `Lambda.<error code>` with the Java SDK's description as the cause, as on AWS.
- A `.waitForTaskToken` task waits for SendTaskSuccess, SendTaskFailure or its timeout and
  heartbeat in real time; here it waits in virtual time, and the waiting execution counts as
  asleep until its token is completed.
- SendTaskFailure drops the cause; here the task fails with the cause sent, as on AWS.
- SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat on the token of a task that has ended
  fail with an internal error (moto raises TaskTimedOut without its message); here they fail
  with TaskTimedOut (HTTP 400), one of the three errors AWS documents for them.
- A task that ends with an error after StopExecution (a token wait that ends when its execution
  is stopped, a Lambda invocation still running) turns the stopped execution FAILED; here it
  stays ABORTED, as StopExecution leaves it on AWS.

tests/functional/test_moto_patches.py and tests/functional/test_task_token_wait.py pin the AWS
behaviour of each patch.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import types
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from .clock import VirtualClock

_installed_clock: VirtualClock | None = None
_BUILD_TERMINAL_FAILURES: Final = {"FAILED", "FAULT", "TIMED_OUT", "STOPPED"}


def _clock() -> VirtualClock:
    if _installed_clock is None:
        raise RuntimeError("moto patches used before install_patches(clock) was called")
    return _installed_clock


def _patch_retry_sleep() -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    shim = types.SimpleNamespace(sleep=lambda seconds: _clock().sleep(seconds))
    retrier_decl.time = shim  # type: ignore[attr-defined]


def _patch_wait_state() -> None:
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function

    def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
        if wait_seconds > 0 and env.is_running():
            _clock().sleep(wait_seconds)

    wait_function.WaitFunction._wait_interval = wait_interval


def _patch_history_timestamps() -> None:
    """Stamp execution history events with virtual time, so phase timings follow the clock."""
    from moto.stepfunctions.parser.asl.eval.event import event_manager

    event_manager.EventManager._get_current_timestamp = staticmethod(
        lambda: _clock().now_datetime()
    )


# Seed of the sandbox's retry jitter. Any fixed value keeps timelines identical between runs.
JITTER_SEED = "control-plane-sandbox"


def jitter_fraction(execution_id: str, state_name: str, retry_count: int) -> float:
    """Return one retry's jitter as a fraction of its interval, from a seeded generator.

    Each draw is keyed by the execution, the state and the attempt rather than taken from one
    shared sequence, so concurrent executions get the same delays in whatever order their
    threads run.
    """
    seed = f"{JITTER_SEED}:{execution_id}:{state_name}:{retry_count}"
    return random.Random(seed).random()


def _patch_retry_jitter() -> None:
    """Draw `JitterStrategy: FULL` delays from `jitter_fraction` instead of `random.uniform`.

    As in moto and the ASL, the delay is uniform between 0 and the interval that backoff and
    MaxDelaySeconds give.
    """
    from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl

    def eval_body(self: Any, env: Any) -> None:
        if self.jitter_strategy == jitter_strategy_decl.JitterStrategy.NONE:
            return
        interval_seconds = env.stack.pop()
        context = env.states.context_object.context_object_data
        state = context.get("State") or {}
        fraction = jitter_fraction(
            context["Execution"]["Id"], state.get("Name", ""), state.get("RetryCount", 0)
        )
        env.stack.append(interval_seconds * fraction)

    jitter_strategy_decl.JitterStrategyDecl._eval_body = eval_body


def _patch_state_entered_time() -> None:
    """Stamp `$$.State.EnteredTime` with virtual time.

    moto sets it once per state entry with `datetime.datetime.now(tz=...)` and keeps it while
    Retry attempts run, as AWS does; only the clock changes here.
    """
    import datetime as real_datetime

    from moto.stepfunctions.parser.asl.component.state import state as state_module

    def now(tz: Any = None) -> real_datetime.datetime:
        current = _clock().now_datetime()
        return current if tz is None else current.astimezone(tz)

    state_module.datetime = types.SimpleNamespace(  # type: ignore[attr-defined]
        datetime=types.SimpleNamespace(now=now), timezone=real_datetime.timezone
    )


def _patch_execution_dates() -> None:
    """Date executions' start and stop on the virtual clock, as their history events are."""
    from moto.stepfunctions.parser.backend import execution as execution_module

    execution_class = execution_module.Execution
    original_start = execution_class.start

    # The last start time given out, per clock (a new sandbox starts a new timeline).
    last_start: dict[int, datetime] = {}
    start_lock = threading.Lock()

    def start(self: Any) -> None:
        # StartExecution calls reach AWS one after another, so their start times differ; on
        # the virtual clock, which does not move between them, a millisecond keeps them apart.
        clock = _clock()
        with start_lock:
            started = clock.now_datetime()
            previous = last_start.get(id(clock))
            if previous is not None and started <= previous:
                started = previous + timedelta(milliseconds=1)
            last_start.clear()
            last_start[id(clock)] = started
        self.start_date = started
        original_start(self)

    execution_class.start = start
    communication = execution_module.BaseExecutionWorkerCommunication
    original_reflect = communication._reflect_execution_status

    def reflect_execution_status(self: Any) -> None:
        original_reflect(self)
        self.execution.stop_date = _clock().now_datetime()

    communication._reflect_execution_status = reflect_execution_status


def _loopback_boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
    from moto.settings import moto_server_port

    return boto3.client(
        service_name=service,
        region_name=region,
        endpoint_url=f"http://127.0.0.1:{moto_server_port()}",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
        config=Config(
            parameter_validation=False,
            retries={"max_attempts": 0, "total_max_attempts": 1},
            connect_timeout=60,
            read_timeout=3600,
        ),
    )


def _patch_inner_endpoint() -> None:
    from moto.stepfunctions.parser.asl.utils import boto_client

    boto_client.boto_client_for = _loopback_boto_client_for
    import moto.stepfunctions.parser.models  # noqa: F401  (imports every user of boto_client_for)

    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "")
        if name.startswith("moto.stepfunctions.parser") and hasattr(module, "boto_client_for"):
            module.boto_client_for = _loopback_boto_client_for  # type: ignore[attr-defined]


def _codebuild_service_class() -> type:
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    model = boto3.session.Session().client("codebuild", region_name="us-east-1").meta.service_model

    class StateTaskServiceCodeBuild(callback.StateTaskServiceCallback):
        """codebuild:startBuild with the request-response and .sync patterns."""

        def __init__(self) -> None:
            # WaitForTaskToken is listed because moto's callback code assumes a task-token
            # endpoint exists for every integration pattern it runs.
            super().__init__(
                supported_integration_patterns={
                    ResourceCondition.Sync,
                    ResourceCondition.WaitForTaskToken,
                }
            )

        def _get_supported_parameters(self) -> set[str] | None:
            if self.resource.api_action.lower() not in {"startbuild", "batchgetbuilds"}:
                return None
            # Step Functions takes the API's members in PascalCase (ProjectName, ...).
            return {name[0].upper() + name[1:] for name in self._operation().input_shape.members}

        def _operation(self) -> Any:
            return model.operation_model(
                self.resource.api_action[0].upper() + self.resource.api_action[1:]
            )

        def _normalise_parameters(self, parameters: dict, *args: Any, **kwargs: Any) -> None:
            self._to_boto_request(parameters, self._operation().input_shape)

        def _normalise_response(self, response: Any, *args: Any, **kwargs: Any) -> None:
            self._from_boto_response(response, self._operation().output_shape)

        def _client(self, region: str) -> Any:
            return _loopback_boto_client_for(region, "codebuild")

        def _from_error(self, env: Any, ex: Exception) -> Any:
            if isinstance(ex, ClientError):
                name = f"CodeBuild.{ex.response['Error']['Code']}"
                return FailureEvent(
                    env=env,
                    error_name=CustomErrorName(name),
                    event_type=HistoryEventType.TaskFailed,
                    event_details=EventDetails(
                        taskFailedEventDetails=TaskFailedEventDetails(
                            error=name,
                            cause=ex.response["Error"].get("Message", ""),
                            resource=self._get_sfn_resource(),
                            resourceType=self._get_sfn_resource_type(),
                        )
                    ),
                )
            return super()._from_error(env=env, ex=ex)

        def _eval_service_task(
            self,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: dict,
            state_credentials: Any,
        ) -> None:
            action = self._get_boto_service_action()
            response = getattr(self._client(resource_runtime_part.region), action)(
                **normalised_parameters
            )
            response.pop("ResponseMetadata", None)
            env.stack.append(response)

        def _build_sync_resolver(
            self,
            env: Any,
            resource_runtime_part: Any,
            normalised_parameters: dict,
            state_credentials: Any,
        ) -> Callable[[], Any]:
            # _normalise_response has already put the StartBuild output in Step Functions' casing.
            started = env.stack.pop()
            build_id = started["Build"]["Id"]
            client = self._client(resource_runtime_part.region)
            output_shape = model.operation_model("StartBuild").output_shape

            def resolve() -> Any:
                build = client.batch_get_builds(ids=[build_id])["builds"][0]
                status = build["buildStatus"]
                if status == "IN_PROGRESS":
                    return None
                document = {"build": build}
                self._from_boto_response(document, output_shape)
                document = _json_safe(document)
                if status == "SUCCEEDED":
                    return document
                raise FailureEventException(
                    FailureEvent(
                        env=env,
                        error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
                        event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(
                            taskFailedEventDetails=TaskFailedEventDetails(
                                resource=self._get_sfn_resource(),
                                resourceType=self._get_sfn_resource_type(),
                                error=StatesErrorNameType.StatesTaskFailed.to_name(),
                                cause=to_json_str(document),
                            )
                        ),
                    )
                )

            return resolve

    return StateTaskServiceCodeBuild


def _json_safe(value: Any) -> Any:
    """Turn datetimes into ISO strings: the execution history must stay JSON serializable."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_safe(item) for item in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


# How long StopExecution waits for a just-started execution's thread to set up its state.
STOP_WAIT_SECONDS = 10.0


def wait_for_environment(worker: Any, timeout_seconds: float = STOP_WAIT_SECONDS) -> None:
    """Wait until the execution thread of `worker` has created its evaluation environment.

    moto creates it on the execution's own thread, so a StopExecution right after
    StartExecution found none and failed with AttributeError.
    """
    deadline = time.monotonic() + timeout_seconds
    while getattr(worker, "env", None) is None and time.monotonic() < deadline:
        time.sleep(0.01)


def _patch_stop_before_start() -> None:
    """Let StopExecution stop an execution whose thread has not set up its state yet."""
    from moto.stepfunctions.parser.backend import execution_worker

    original_stop = execution_worker.ExecutionWorker.stop

    def stop(self: Any, stop_date: datetime, error: str | None, cause: str | None) -> None:
        wait_for_environment(self)
        original_stop(self, stop_date=stop_date, error=error, cause=cause)

    execution_worker.ExecutionWorker.stop = stop


def _patch_execution_actors() -> None:
    """Register each running execution with the clock, so sleeps wait for busy executions."""
    from moto.stepfunctions.parser.backend import execution_worker

    worker = execution_worker.ExecutionWorker
    original_start = worker.start
    original_logic = worker._execution_logic

    def start(self: Any) -> None:
        # Registered before the thread starts, so a sleeper cannot slip past a new execution.
        _clock().add_actor()
        original_start(self)

    def execution_logic(self: Any) -> None:
        try:
            original_logic(self)
        finally:
            _clock().remove_actor()

    worker.start = start
    worker._execution_logic = execution_logic

    def start_sync(self: Any) -> None:
        _clock().add_actor()
        self._execution_logic()

    # Express synchronous executions run inline instead of on a thread.
    execution_worker.SyncExecutionWorker.start = start_sync


def _patch_codebuild_sync() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory

    codebuild_class = _codebuild_service_class()
    original = state_task_factory.state_task_service_for

    def service_for(service_name: str) -> Any:
        if service_name == "codebuild":
            return codebuild_class()
        return original(service_name)

    state_task_factory.state_task_service_for = service_for


def lambda_service_error_cause(error: ClientError) -> str:
    """Describe a Lambda service error as Step Functions does in a task's cause.

    AWS reports a throttled invocation as error `Lambda.TooManyRequestsException` with the cause
    "Rate Exceeded. (Service: AWSLambda; Status Code: 429; Error Code: TooManyRequestsException;
    Request ID: <id>; Proxy: null)", the AWS SDK for Java's description of the error.
    """
    details = error.response.get("Error", {})
    metadata = error.response.get("ResponseMetadata", {})
    return (
        f"{details.get('Message', '')} (Service: AWSLambda; "
        f"Status Code: {metadata.get('HTTPStatusCode')}; Error Code: {details.get('Code')}; "
        f"Request ID: {metadata.get('RequestId')}; Proxy: null)"
    )


def _patch_lambda_service_errors() -> None:
    """Name a failed Lambda Invoke `Lambda.<error code>`, as the error AWS recommends retrying."""
    from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import (
        CustomErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_lambda
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    task_class = state_task_lambda.StateTaskLambda
    original = task_class._from_error

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        name = f"Lambda.{ex.response.get('Error', {}).get('Code', 'Unknown')}"
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(name),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=EventDetails(
                lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(
                    error=name, cause=lambda_service_error_cause(ex)
                )
            ),
        )

    task_class._from_error = from_error


def _patch_task_token_wait() -> None:
    """Wait for a task token in virtual time, with TimeoutSeconds and HeartbeatSeconds.

    moto waits on threading events in real time: for the heartbeat when the state has
    HeartbeatSeconds, else for the timeout. Here the wait sleeps on the virtual clock until the
    token is completed, a heartbeat arrives (which starts a new heartbeat period), the
    heartbeat period passes (HeartbeatTimedOut) or the timeout passes (timed out). moto
    reports both timeouts as States.Timeout. While it waits, the execution counts as asleep,
    so time moves on to whatever comes next, such as a simulated EB operation completing.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback_module,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
        ResourceCondition,
    )
    from moto.stepfunctions.parser.asl.eval.callback import callback

    service_class = callback_module.StateTaskServiceCallback
    original_wait = service_class._eval_wait_for_task_token

    def wait_for_task_token(
        self: Any,
        env: Any,
        timeout_seconds: int,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        if self.resource.condition != ResourceCondition.WaitForTaskToken:
            # A `.sync` task listens for a token on a side thread while it polls its job;
            # that listener must not count as the execution sleeping.
            return original_wait(self, env, timeout_seconds, callback_endpoint, heartbeat_endpoint)
        return wait_for_token_in_virtual_time(
            _clock(), env, timeout_seconds, callback_endpoint, heartbeat_endpoint
        )

    service_class._eval_wait_for_task_token = wait_for_task_token

    endpoint_class = callback.CallbackEndpoint
    original_notify = endpoint_class.notify
    original_heartbeat = endpoint_class.notify_heartbeat

    def notify(self: Any, outcome: Any) -> None:
        original_notify(self, outcome)
        if _installed_clock is not None:
            _installed_clock.wake_sleepers()

    def notify_heartbeat(self: Any) -> bool:
        received = original_heartbeat(self)
        if _installed_clock is not None:
            _installed_clock.wake_sleepers()
        return received

    endpoint_class.notify = notify
    endpoint_class.notify_heartbeat = notify_heartbeat


def wait_for_token_in_virtual_time(
    clock: VirtualClock,
    env: Any,
    timeout_seconds: float,
    callback_endpoint: Any,
    heartbeat_endpoint: Any,
) -> Any:
    """Return the token's outcome, or moto's timed-out outcome for the timeout or heartbeat.

    `heartbeat_endpoint` is None for a state without HeartbeatSeconds.
    """
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackConsumerTimeout,
        CallbackOutcomeTimedOut,
        HeartbeatTimedOut,
    )

    deadline = clock.now() + timeout_seconds
    heartbeat_seconds = None
    heartbeat = None
    if heartbeat_endpoint is not None:
        # moto 5.2.5 keeps both on the endpoint without public accessors.
        heartbeat_seconds = heartbeat_endpoint._heartbeat_seconds
        heartbeat = heartbeat_endpoint._next_heartbeat_event

    def signalled() -> bool:
        return (
            callback_endpoint.get_outcome() is not None
            or (heartbeat is not None and heartbeat.is_set())
            or not env.is_running()
        )

    try:
        while env.is_running():
            outcome = callback_endpoint.get_outcome()
            if outcome is not None:
                return outcome
            now = clock.now()
            if now >= deadline:
                return CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)
            wake = deadline
            if heartbeat_seconds is not None:
                wake = min(deadline, now + heartbeat_seconds)
            if clock.sleep(wake - now, until=signalled):
                if heartbeat is not None and callback_endpoint.get_outcome() is None:
                    heartbeat.clear()
                continue
            if clock.now() < deadline:
                return HeartbeatTimedOut()
        return CallbackOutcomeTimedOut(callback_id=callback_endpoint.callback_id)
    finally:
        # The task has ended: a later SendTask* on its token fails with TaskTimedOut.
        callback_endpoint.report(CallbackConsumerTimeout())


def _patch_send_task_failure_cause() -> None:
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"),
            error=self._get_param("error"),
            cause=self._get_param("cause"),
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


def _patch_send_task_errors() -> None:
    """Fail SendTask* on the token of an ended task with TaskTimedOut, and others as moto does.

    moto finds the token's callback endpoint in each execution and, for a task that has ended
    (its wait reported a consumer error), tries to raise TaskTimedOut or TaskDoesNotExist with
    no message, which fails with TypeError. It also looks only at running executions for
    SendTaskSuccess and SendTaskHeartbeat, so an ended execution's token is InvalidToken.
    """
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.exceptions import InvalidToken
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackNotifyConsumerError,
        CallbackOutcomeFailure,
        CallbackOutcomeSuccess,
    )
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    class TaskTimedOut(AWSError):
        TYPE = "TaskTimedOut"
        STATUS = 400

    def deliver(backend: Any, token: str, send: Callable[[Any], bool]) -> None:
        for execution in backend._get_executions():
            worker = getattr(execution, "exec_worker", None)
            if worker is None:
                continue
            try:
                if send(worker.env.callback_pool_manager):
                    return
            except CallbackNotifyConsumerError:
                # NOTE: the message is the sandbox's own; AWS's exact text is unconfirmed.
                raise TaskTimedOut(
                    "Task Timed Out: the task of this token has already ended"
                ) from None
        raise InvalidToken()

    def send_task_success(self: Any, task_token: str, outcome: str) -> None:
        result = CallbackOutcomeSuccess(callback_id=task_token, output=outcome)
        deliver(self, task_token, lambda pool: pool.notify(callback_id=task_token, outcome=result))

    def send_task_failure(
        self: Any, task_token: str, error: str | None = None, cause: str | None = None
    ) -> None:
        result = CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause)
        deliver(self, task_token, lambda pool: pool.notify(callback_id=task_token, outcome=result))

    def send_task_heartbeat(self: Any, task_token: str) -> None:
        def beat(pool: Any) -> bool:
            if pool.get(task_token) is None:
                return False
            # A task without HeartbeatSeconds accepts the heartbeat and ignores it.
            pool.heartbeat(callback_id=task_token)
            return True

        deliver(self, task_token, beat)

    StepFunctionsParserBackend.send_task_success = send_task_success
    StepFunctionsParserBackend.send_task_failure = send_task_failure
    StepFunctionsParserBackend.send_task_heartbeat = send_task_heartbeat


def _patch_stopped_execution_stays_aborted() -> None:
    """Keep a stopped program stopped when a state fails afterwards.

    moto's `set_stop` and `set_ended` change only a running program, but `set_error` and
    `set_timed_out` overwrite any state. After a stop, moto skips every Catch (a stopped
    environment evaluates nothing), so the failure of the task that was running ends the
    execution FAILED instead of ABORTED.
    """
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    original_error = Environment.set_error
    original_timed_out = Environment.set_timed_out

    def set_error(self: Any, error: Any) -> None:
        if not isinstance(self._program_state, ProgramStopped):
            original_error(self, error)

    def set_timed_out(self: Any) -> None:
        if not isinstance(self._program_state, ProgramStopped):
            original_timed_out(self)

    Environment.set_error = set_error
    Environment.set_timed_out = set_timed_out


def install_patches(clock: VirtualClock) -> None:
    """Apply every patch once per process; later calls only swap the clock."""
    global _installed_clock
    first = _installed_clock is None
    _installed_clock = clock
    if not first:
        return
    from moto.core.config import default_user_config

    default_user_config["stepfunctions"]["execute_state_machine"] = True
    _patch_retry_sleep()
    _patch_wait_state()
    _patch_history_timestamps()
    _patch_retry_jitter()
    _patch_state_entered_time()
    _patch_execution_dates()
    _patch_inner_endpoint()
    _patch_codebuild_sync()
    _patch_execution_actors()
    _patch_stop_before_start()
    _patch_lambda_service_errors()
    _patch_task_token_wait()
    _patch_send_task_failure_cause()
    _patch_send_task_errors()
    _patch_stopped_execution_stays_aborted()
