"""Environment lifecycle on the virtual clock: operations, their completion, health and faults.

Nothing runs in the background. Every API call first calls ``advance(now)``, which completes
the operations whose duration has passed, in the order of their virtual completion times, so
events get the virtual time of the transition rather than the time someone looked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from control_plane.sandbox.eb import events
from control_plane.sandbox.eb.app_host import AppHost, AppStartError
from control_plane.sandbox.eb.health import HealthPhase
from control_plane.sandbox.eb.state import TRANSITIONAL_STATUSES, Environment, SimulatorState

logger = logging.getLogger(__name__)

# Read by wsgi_bootstrap.py: the sandbox's broken-health-check fault.
HEALTH_STATUS_VARIABLE = "CONTROL_PLANE_SANDBOX_HEALTH_STATUS"
HEALTH_PATH_VARIABLE = "CONTROL_PLANE_SANDBOX_HEALTH_PATH"

# Cause reported by DescribeEnvironmentHealth when the web process died after it started, as
# EB's Amazon Linux 2 platforms word it.
PROCESS_DIED_CAUSE = "Following services are not running: web."


@dataclass
class Stick:
    """A pending fault: the next environment entering ``status`` stays there ``seconds``."""

    environment_name: str | None
    status: str
    seconds: float


class Lifecycle:
    """Starts and completes environment operations and keeps health in step with the app."""

    def __init__(self, state: SimulatorState, app_host: AppHost) -> None:
        self._state = state
        self._app_host = app_host
        self._sticks: list[Stick] = []

    # Operations

    def begin_launch(self, environment: Environment, now: float, request_id: str) -> None:
        self._begin(environment, "Launching", self._state.durations.launch_seconds, now, request_id)
        self._record(environment, now, events.CREATION_STARTED)

    def begin_update(
        self,
        environment: Environment,
        now: float,
        request_id: str,
        rollback: tuple[str | None, list[dict[str, str]]],
    ) -> None:
        """Start an update; ``rollback`` is the version label and settings before it."""
        environment.rollback = rollback
        self._begin(environment, "Updating", self._state.durations.update_seconds, now, request_id)
        self._record(environment, now, events.UPDATE_STARTED)
        self._set_health(environment, now, "Grey", "Pending", [])

    def begin_abort(self, environment: Environment, now: float, request_id: str) -> None:
        # Rolling back redeploys the previous version, so it takes as long as an update.
        self._begin(environment, "Aborting", self._state.durations.update_seconds, now, request_id)
        self._state.record_event(
            now,
            events.ABORT_STARTED_MESSAGE,
            "INFO",
            environment.application_name,
            environment=environment,
            request_id=request_id,
        )

    def begin_termination(self, environment: Environment, now: float, request_id: str) -> None:
        seconds = self._state.durations.terminate_seconds
        self._begin(environment, "Terminating", seconds, now, request_id)
        # The sandbox reports no health data while it tears an environment down, and records
        # no health event for that change.
        environment.health = "Grey"
        environment.health_status = "NoData"
        environment.health_causes = []
        self._record(environment, now, events.TERMINATION_STARTED)

    def _begin(
        self, environment: Environment, status: str, seconds: float, now: float, request_id: str
    ) -> None:
        environment.status = status
        environment.status_until = now + self._take_stick(environment, status, seconds)
        environment.updated = now
        environment.operation_request_id = request_id
        # A health fault lasts only while its version runs, so a new operation ends it.
        environment.health_schedule = []

    # Completion

    def advance(self, now: float) -> None:
        """Apply every completion and health phase due by ``now``, earliest first.

        Then check that the apps of Ready environments still run.
        """
        while True:
            due = self._next_due(now)
            if due is None:
                break
            at, is_operation, environment = due
            if is_operation:
                self._complete(environment, at)
            else:
                _, phase = environment.health_schedule.pop(0)
                self._set_health(environment, at, phase.color, phase.status, list(phase.causes))
        self._check_processes(now)

    def _next_due(self, now: float) -> tuple[float, bool, Environment] | None:
        """Return the earliest transition due by ``now``: its time, whether it completes an
        operation (else it starts a health phase), and its environment.

        At the same instant an operation comes before a health phase, and otherwise the
        environment created first comes first.
        """
        due: list[tuple[float, int, int, Environment]] = []
        for index, environment in enumerate(self._state.environments):
            if environment.status_until is not None and environment.status_until <= now:
                due.append((environment.status_until, 0, index, environment))
            schedule = environment.health_schedule
            if schedule and schedule[0][0] <= now:
                due.append((schedule[0][0], 1, index, environment))
        if not due:
            return None
        at, kind, _, environment = min(due, key=lambda item: item[:3])
        return at, kind == 0, environment

    def _complete(self, environment: Environment, at: float) -> None:
        finished = environment.status
        environment.status_until = None
        environment.updated = at
        if finished == "Terminating":
            self._finish_termination(environment, at)
            return

        aborted = (
            finished == "Updating"
            and environment.rollback is not None
            and environment.version_label in self._state.aborted_versions
        )
        if aborted:
            self._log(environment, at, events.DEPLOYMENT_FAILED_MESSAGE, "ERROR")
        if (finished == "Aborting" or aborted) and environment.rollback is not None:
            environment.version_label, environment.option_settings = environment.rollback
        previous_label = environment.rollback[0] if environment.rollback else None
        environment.rollback = None
        environment.status = "Ready"

        failure = self._deploy_app(environment)
        deployed_new_version = environment.version_label != previous_label
        if finished == "Updating" and failure is None and deployed_new_version:
            self._log(environment, at, events.VERSION_DEPLOYED_MESSAGE, "INFO")
        health = ("Green", "Ok", []) if failure is None else ("Red", "Severe", [failure])
        # A health fault on the version overrides what the app shows from its first phase on.
        first = self._start_health_schedule(environment, at)
        if first is not None:
            health = (first.color, first.status, list(first.causes))
        self._set_health(environment, at, *health)

        if finished == "Launching":
            change = events.CREATION_SUCCESSFUL if failure is None else events.CREATION_WITH_ISSUES
            self._record(environment, at, change)
        elif finished == "Updating":
            succeeded = failure is None and not aborted
            change = events.UPDATE_SUCCESSFUL if succeeded else events.UPDATE_FAILED
            self._record(environment, at, change)
        else:
            # NOTE: the EventBridge event that EB sends when an abort completes is unconfirmed.
            # The sandbox reports the aborted update as failed.
            self._log(environment, at, events.ABORT_COMPLETED_MESSAGE, "WARN")
            self._record(environment, at, events.UPDATE_FAILED)

    def _finish_termination(self, environment: Environment, at: float) -> None:
        self._app_host.stop(environment.environment_id)
        environment.status = "Terminated"
        environment.terminated_at = at
        environment.health = "Grey"
        environment.health_status = "NoData"
        environment.health_causes = []
        environment.health_schedule = []
        environment.rollback = None
        self._record(environment, at, events.TERMINATION_SUCCESSFUL)

    def _deploy_app(self, environment: Environment) -> str | None:
        """Run the environment's version and return why it failed, or None when it serves.

        An environment without a version, or whose version has no source bundle, serves
        nothing. Real EB runs its sample application then, so health is Green.
        """
        label = environment.version_label
        version = self._state.versions.get((environment.application_name, label)) if label else None
        if version is None or version.source_bundle is None:
            self._app_host.stop(environment.environment_id)
            return None
        properties = environment.environment_properties()
        if label in self._state.health_statuses:
            properties[HEALTH_STATUS_VARIABLE] = str(self._state.health_statuses[label])
            properties[HEALTH_PATH_VARIABLE] = next(
                (
                    setting.get("Value", "/")
                    for setting in environment.option_settings
                    if setting.get("OptionName") == "HealthCheckPath"
                ),
                "/health",
            )
        try:
            self._app_host.deploy(
                environment.environment_id,
                environment.port,
                label,
                version.source_bundle,
                properties,
            )
        except AppStartError as error:
            logger.warning(
                "Version %s of environment %s (%s) failed to start: %s",
                label,
                environment.name,
                environment.environment_id,
                error,
            )
            return str(error)
        return None

    def _check_processes(self, now: float) -> None:
        for environment in self._state.environments:
            if environment.status != "Ready" or environment.health_status != "Ok":
                continue
            environment_id = environment.environment_id
            if self._app_host.has_process(environment_id) and not self._app_host.is_running(
                environment_id
            ):
                logger.warning(
                    "The web process of environment %s (%s) exited",
                    environment.name,
                    environment_id,
                )
                self._set_health(environment, now, "Red", "Severe", [PROCESS_DIED_CAUSE])

    # Faults

    def stick(self, environment_name: str | None, status: str, seconds: float, now: float) -> None:
        """Keep an environment in ``status`` for ``seconds``, now or the next time it enters it.

        Only the first matching environment is affected. Raises ValueError for a status that
        does not end on its own, because sticking in Ready or Terminated would change nothing.
        """
        if status not in TRANSITIONAL_STATUSES:
            raise ValueError(
                f"cannot stick an environment in {status!r}; use one of {TRANSITIONAL_STATUSES}"
            )
        if seconds < 0:
            raise ValueError(f"stick duration must not be negative, got {seconds}")
        for environment in self._state.environments:
            if environment.status == status and environment_name in (None, environment.name):
                environment.status_until = now + seconds
                return
        self._sticks.append(Stick(environment_name, status, seconds))

    def arm_health(self, version_label: str, phases: list[HealthPhase], now: float) -> None:
        """Report ``phases`` whenever ``version_label`` becomes Ready, replacing earlier ones.

        An environment already Ready on that version starts the phases at ``now``.
        """
        self._state.health_faults[version_label] = list(phases)
        for environment in self._state.environments:
            running = environment.status == "Ready" and environment.version_label == version_label
            if not running:
                continue
            first = self._start_health_schedule(environment, now)
            if first is not None:
                self._set_health(environment, now, first.color, first.status, list(first.causes))

    def _start_health_schedule(
        self, environment: Environment, ready_at: float
    ) -> HealthPhase | None:
        """Schedule the health fault of the environment's version from ``ready_at`` on.

        Returns the phase that starts at ``ready_at`` itself, which the caller applies, or None.
        """
        phases = self._state.health_faults.get(environment.version_label or "", [])
        environment.health_schedule = [(ready_at + phase.offset, phase) for phase in phases]
        if environment.health_schedule and environment.health_schedule[0][0] <= ready_at:
            return environment.health_schedule.pop(0)[1]
        return None

    def _take_stick(self, environment: Environment, status: str, default: float) -> float:
        for stick in self._sticks:
            if stick.status == status and stick.environment_name in (None, environment.name):
                self._sticks.remove(stick)
                return stick.seconds
        return default

    # Events and health

    def _set_health(
        self, environment: Environment, at: float, color: str, status: str, causes: list[str]
    ) -> None:
        previous = environment.health_status
        environment.health = color
        environment.health_status = status
        environment.health_causes = causes
        if previous == status:
            return
        self._state.record_event(
            at,
            events.health_change_message(previous, status),
            events.health_change_severity(previous, status),
            environment.application_name,
            environment=environment,
            detail_type=events.HEALTH_STATUS_CHANGE,
            detail_status=events.HEALTH_CHANGED_STATUS,
        )

    def _record(self, environment: Environment, at: float, change: events.StatusChange) -> None:
        self._state.record_event(
            at,
            change.message.format(environment=environment.name),
            change.severity,
            environment.application_name,
            environment=environment,
            request_id=environment.operation_request_id,
            detail_type=events.RESOURCE_STATUS_CHANGE,
            detail_status=change.status,
        )

    def _log(self, environment: Environment, at: float, message: str, severity: str) -> None:
        self._state.record_event(
            at,
            message,
            severity,
            environment.application_name,
            environment=environment,
            request_id=environment.operation_request_id,
        )
