"""Elastic Beanstalk simulator: the sandbox's stand-in for the EB Query API.

moto implements only a few EB operations and never changes an environment's status, so the
sandbox routes every EB request here. ``handle`` takes the decoded form fields of one request
and returns the HTTP status and XML body that AWS would send.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from control_plane.sandbox.clock import VirtualClock
from control_plane.sandbox.eb import application_operations as applications
from control_plane.sandbox.eb import environment_operations as environments
from control_plane.sandbox.eb import monitoring_operations as monitoring
from control_plane.sandbox.eb import tag_operations as tags
from control_plane.sandbox.eb.app_host import AppHost
from control_plane.sandbox.eb.context import OperationContext
from control_plane.sandbox.eb.descriptions import describe_environment
from control_plane.sandbox.eb.errors import (
    ElasticBeanstalkError,
    missing_parameter,
    unsupported_action,
)
from control_plane.sandbox.eb.events import to_eventbridge
from control_plane.sandbox.eb.health import HealthPhase, check_sequence, health_phase
from control_plane.sandbox.eb.lifecycle import Lifecycle
from control_plane.sandbox.eb.query_protocol import (
    operation_model,
    parse_request,
    serialize_error,
    serialize_result,
)
from control_plane.sandbox.eb.state import Durations, Event, SimulatorState
from control_plane.sandbox.eb.storage import Buckets

logger = logging.getLogger(__name__)

Handler = Callable[[OperationContext, dict[str, Any]], dict[str, Any] | None]
Subscriber = Callable[[dict[str, Any]], None]

HANDLERS: dict[str, Handler] = {
    "CreateApplication": applications.create_application,
    "DescribeApplications": applications.describe_applications,
    "UpdateApplication": applications.update_application,
    "UpdateApplicationResourceLifecycle": applications.update_application_resource_lifecycle,
    "DeleteApplication": applications.delete_application,
    "CreateApplicationVersion": applications.create_application_version,
    "DescribeApplicationVersions": applications.describe_application_versions,
    "DeleteApplicationVersion": applications.delete_application_version,
    "CreateStorageLocation": applications.create_storage_location,
    "CreateEnvironment": environments.create_environment,
    "DescribeEnvironments": environments.describe_environments,
    "UpdateEnvironment": environments.update_environment,
    "TerminateEnvironment": environments.terminate_environment,
    "AbortEnvironmentUpdate": environments.abort_environment_update,
    "DescribeConfigurationSettings": environments.describe_configuration_settings,
    "DescribeEvents": monitoring.describe_events,
    "DescribeEnvironmentHealth": monitoring.describe_environment_health,
    "UpdateTagsForResource": tags.update_tags_for_resource,
    "ListTagsForResource": tags.list_tags_for_resource,
}


class ElasticBeanstalkSimulator:
    """Simulated EB account whose environments change status on a virtual clock.

    Statuses are computed lazily: each call first completes the operations whose duration
    has passed on ``clock``. Environments that reach Ready run their application version on
    127.0.0.1 (see AppHost). Calls from several threads are serialized.
    """

    def __init__(
        self,
        clock: VirtualClock,
        fetch_object: Callable[[str, str], bytes],
        work_dir: Path,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        launch_seconds: float = 300,
        update_seconds: float = 90,
        terminate_seconds: float = 60,
        *,
        max_application_versions: int = 1000,
        app_start_timeout: float = 10.0,
        buckets: Buckets | None = None,
    ) -> None:
        """Create an empty account.

        ``max_application_versions`` is the account quota behind
        TooManyApplicationVersionsException (AWS's default quota is 1000 per region).
        ``app_start_timeout`` is the wall-clock time in seconds that a deployed app gets to
        start listening before its environment turns Red. With ``buckets``, a version's
        source bundle must be in a bucket of the endpoint's region, and CreateStorageLocation
        creates EB's storage bucket there. Without ``buckets``, neither operation calls S3.
        """
        self._clock = clock
        self._fetch_object = fetch_object
        self._buckets = buckets
        durations = Durations(
            launch_seconds=launch_seconds,
            update_seconds=update_seconds,
            terminate_seconds=terminate_seconds,
            max_application_versions=max_application_versions,
        )
        _validate_durations(durations)
        self._state = SimulatorState(region, account_id, durations)
        self._app_host = AppHost(fetch_object, Path(work_dir), start_timeout=app_start_timeout)
        self._lifecycle = Lifecycle(self._state, self._app_host)
        self._lock = threading.RLock()
        # Held by the thread that sends events to subscribers. Reentrant, so a subscriber may
        # call the simulator while it is being notified.
        self._delivery_lock = threading.RLock()
        self._subscribers: list[Subscriber] = []
        self._watchers: list[Callable[[], None]] = []

    def handle(self, params: Mapping[str, str], region: str | None = None) -> tuple[int, str]:
        """Run one API request and return its HTTP status and XML body.

        ``params`` are the decoded form fields, including ``Action``. ``region`` is the region
        of the endpoint the request was signed for, by default the simulator's own. Errors come
        back as AWS-shaped ``ErrorResponse`` documents. An action that the sandbox does not
        implement gets a 400 error that names the action.
        """
        with self._lock:
            request_id = self._state.next_request_id()
            status, body = self._dispatch(params, request_id, region or self._state.region)
        self._deliver_events()
        return status, body

    def _dispatch(self, params: Mapping[str, str], request_id: str, region: str) -> tuple[int, str]:
        action = params.get("Action", "")
        try:
            now = self._clock.now()
            self._lifecycle.advance(now)
            if not action:
                raise missing_parameter("The request must contain the parameter Action.")
            operation = operation_model(action)
            handler = HANDLERS.get(action)
            if operation is None or handler is None:
                raise unsupported_action(action)
            request = parse_request(operation, params)
            context = OperationContext(
                self._state,
                self._lifecycle,
                self._fetch_object,
                now,
                request_id,
                region=region,
                buckets=self._buckets,
            )
            result = handler(context, request)
            return 200, serialize_result(operation, result, request_id)
        except ElasticBeanstalkError as error:
            logger.info("%s %s failed: %s %s", action, request_id, error.code, error.message)
            return error.status, serialize_error(error, request_id)
        except Exception as error:
            logger.exception("%s %s failed inside the simulator", action, request_id)
            internal = ElasticBeanstalkError("InternalFailure", f"Simulator error: {error}", 500)
            return internal.status, serialize_error(internal, request_id)

    def refresh(self) -> None:
        """Apply every transition due at the clock's current time and send its events.

        Statuses change only when the simulator is called. The sandbox calls this after it
        advances the clock, so that subscribers receive transitions without an API call.
        """
        with self._lock:
            self._lifecycle.advance(self._clock.now())
        self._deliver_events()

    def stick(self, environment_name: str | None, status: str, seconds: float) -> None:
        """Keep an environment in a transitional status for ``seconds`` virtual seconds.

        Applies to the environment named ``environment_name`` (any environment when None) the
        next time it enters ``status``, or at once if it is in ``status`` now. It fires once.
        ``status`` must be Launching, Updating, Terminating or Aborting (ValueError otherwise).
        """
        with self._lock:
            now = self._clock.now()
            self._lifecycle.advance(now)
            self._lifecycle.stick(environment_name, status, seconds, now)
        self._deliver_events()

    def abort_updates_to(self, version_label: str) -> None:
        """Fault: an update to ``version_label`` fails and EB returns to the previous version.

        EB then reports Ready on the old version, with ERROR events, as after a failed
        deployment that it rolled back on its own.
        """
        with self._lock:
            self._state.aborted_versions.add(version_label)

    def refuse_updates(self, times: int) -> None:
        """Fault: the next ``times`` UpdateEnvironment calls fail as if the environment was busy."""
        with self._lock:
            self._state.updates_to_refuse += times

    def list_terminated_twin(self) -> None:
        """Fault: list a terminated environment of the same name beside the live one.

        Each live environment gets one at once, as if an earlier environment of its name had
        just terminated. With no live environment, the next one created gets it. EB lists
        such environments for about an hour unless IncludeDeleted is false.
        """
        with self._lock:
            now = self._clock.now()
            self._lifecycle.advance(now)
            live = [environment for environment in self._state.environments if environment.is_live]
            for environment in live:
                self._state.add_terminated_twin(environment, now)
            self._state.terminated_twin_pending = not live
        self._deliver_events()

    def set_environment_health(
        self,
        version_label: str,
        color: str,
        status: str | None = None,
        causes: list[str] | None = None,
    ) -> None:
        """Fault: EB reports this health while ``version_label`` is Ready on an environment.

        ``status`` is the enhanced health status, by default the first of the color (Ok,
        Warning, Degraded, NoData). ``causes`` are what DescribeEnvironmentHealth returns, by
        default a cause that fits the status. Raises ValueError for an unknown color or a
        status of another color.
        """
        self._arm_health(version_label, [health_phase(color, 0, status, causes)])

    def set_health_sequence(self, version_label: str, colors: list[tuple[str, float]]) -> None:
        """Fault: once ``version_label`` is Ready, report each color from that many seconds on.

        Before the first offset the app's own health shows. Raises ValueError for an unknown
        color, a negative offset or offsets that do not increase.
        """
        phases = [health_phase(color, offset) for color, offset in colors]
        check_sequence(phases)
        self._arm_health(version_label, phases)

    def _arm_health(self, version_label: str, phases: list[HealthPhase]) -> None:
        with self._lock:
            now = self._clock.now()
            self._lifecycle.advance(now)
            self._lifecycle.arm_health(version_label, phases, now)
        self._deliver_events()

    def set_health_status(self, version_label: str, status: int) -> None:
        """Fault: the app of ``version_label`` returns HTTP ``status`` on its health path."""
        with self._lock:
            self._state.health_statuses[version_label] = status

    def subscribe(self, callback: Subscriber) -> None:
        """Send every later status and health change to ``callback`` as an EventBridge event.

        Events go out after the call that caused them has released the simulator, in the order
        they happened. When several threads call at once, whichever thread is already sending
        events sends the others' too, so a call may return before its events are delivered.
        """
        with self._lock:
            self._subscribers.append(callback)

    def watch_transitions(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every call that may have started or completed an operation.

        ``callback`` runs on the calling thread, outside the simulator's lock, and typically
        reads ``next_transition_at()`` to schedule a ``refresh()`` for that time.
        """
        with self._lock:
            self._watchers.append(callback)

    def next_transition_at(self) -> float | None:
        """Return the virtual time of the earliest pending transition, or None when none is.

        Transitions are operations that complete (Launching, Updating, Aborting, Terminating)
        and the phases of health faults.
        """
        with self._lock:
            times = []
            for environment in self._state.environments:
                if environment.status_until is not None:
                    times.append(environment.status_until)
                if environment.health_schedule:
                    times.append(environment.health_schedule[0][0])
            return min(times, default=None)

    def configure(self, **settings: float) -> None:
        """Change launch_seconds, update_seconds, terminate_seconds or max_application_versions.

        New values apply to operations that start afterwards.
        """
        with self._lock:
            durations = self._state.durations
            for name, value in settings.items():
                if not hasattr(durations, name):
                    raise TypeError(f"configure() got an unknown setting {name!r}")
                setattr(durations, name, value)
            _validate_durations(durations)

    def environments(self) -> list[dict[str, Any]]:
        """Return the environments that DescribeEnvironments lists without filters."""
        with self._lock:
            now = self._clock.now()
            self._lifecycle.advance(now)
            visible = environments.visible_environments(self._state, now)
            descriptions = [describe_environment(environment) for environment in visible]
        self._deliver_events()
        return descriptions

    def shutdown(self) -> None:
        """Stop every application process that the simulator started."""
        with self._lock:
            self._app_host.shutdown()

    def _deliver_events(self) -> None:
        for watcher in list(self._watchers):
            watcher()
        # One thread at a time sends events, oldest first. A thread that finds another one
        # sending returns at once instead of waiting: a subscriber may block on a request that
        # another thread serves, and that thread must not wait for the subscriber in turn.
        # The sending thread checks the outbox again after it lets go, so no event is left.
        while True:
            if not self._delivery_lock.acquire(blocking=False):
                return
            try:
                self._send_outbox()
            finally:
                self._delivery_lock.release()
            with self._lock:
                if not self._state.outbox:
                    return

    def _send_outbox(self) -> None:
        while True:
            with self._lock:
                if not self._state.outbox:
                    return
                event = self._state.outbox.pop(0)
                message = self._to_eventbridge(event)
            for subscriber in list(self._subscribers):
                try:
                    subscriber(message)
                except Exception:
                    logger.exception(
                        "EB event subscriber %r failed on %s for %s",
                        subscriber,
                        message["detail"]["Status"],
                        event.environment_name,
                    )

    def _to_eventbridge(self, event: Event) -> dict[str, Any]:
        state = self._state
        environment_arn = state.environment_arn(event.application_name, event.environment_name)
        return to_eventbridge(
            event,
            event_id=state.next_event_id(),
            region=state.region,
            account_id=state.account_id,
            environment_arn=environment_arn,
        )


def _validate_durations(durations: Durations) -> None:
    for name in ("launch_seconds", "update_seconds", "terminate_seconds"):
        if getattr(durations, name) < 0:
            raise ValueError(f"{name} must not be negative, got {getattr(durations, name)}")
    if durations.max_application_versions < 0:
        raise ValueError(
            f"max_application_versions must not be negative, got "
            f"{durations.max_application_versions}"
        )
