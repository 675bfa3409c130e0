"""In-memory records of the simulated Elastic Beanstalk account, and their lookups.

Times are epoch seconds on the sandbox's virtual clock. Identifiers derive from counters and
the account and region, so the same calls produce the same ids on every run.
"""

from __future__ import annotations

import hashlib
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

from control_plane.sandbox.eb.app_host import AppHost
from control_plane.sandbox.eb.errors import (
    application_not_found,
    environment_not_found,
    missing_parameter,
    version_not_found,
)
from control_plane.sandbox.eb.health import HealthPhase

# Statuses that an operation moves through and that end on their own after a duration.
TRANSITIONAL_STATUSES = ("Launching", "Updating", "Terminating", "Aborting")

# Real Elastic Beanstalk lists a terminated environment for about an hour.
TERMINATED_VISIBLE_SECONDS = 3600.0

DEFAULT_TIER = {"Name": "WebServer", "Type": "Standard", "Version": "1.0"}

_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class Application:
    name: str
    arn: str
    description: str | None
    created: float
    updated: float
    # Stored and returned as given. The sandbox does not delete versions by these rules.
    resource_lifecycle_config: dict[str, Any] | None = None


@dataclass
class ApplicationVersion:
    application_name: str
    label: str
    arn: str
    description: str | None
    # (bucket, key) of the source bundle in S3, or None for EB's sample application.
    source_bundle: tuple[str, str] | None
    status: str
    created: float
    updated: float


@dataclass
class Environment:
    name: str
    environment_id: str
    application_name: str
    arn: str
    port: int
    created: float
    updated: float
    version_label: str | None
    solution_stack_name: str | None
    platform_arn: str | None
    description: str | None
    tier: dict[str, str]
    option_settings: list[dict[str, str]]
    status: str
    health: str
    health_status: str
    # Virtual time at which the running operation ends, or None while no operation runs.
    status_until: float | None = None
    # Version label and option settings to restore when an update is aborted.
    rollback: tuple[str | None, list[dict[str, str]]] | None = None
    # Request that started the running operation, for its completion events.
    operation_request_id: str | None = None
    health_causes: list[str] = field(default_factory=list)
    terminated_at: float | None = None
    # Health faults' phases still to come while the environment runs its version, with the
    # virtual time each one starts, earliest first.
    health_schedule: list[tuple[float, HealthPhase]] = field(default_factory=list)

    @property
    def is_live(self) -> bool:
        return self.status != "Terminated"

    def environment_properties(self) -> dict[str, str]:
        """Return the option settings of ``aws:elasticbeanstalk:application:environment``."""
        return {
            setting["OptionName"]: setting.get("Value", "")
            for setting in self.option_settings
            if setting.get("Namespace") == "aws:elasticbeanstalk:application:environment"
        }


@dataclass(frozen=True)
class Event:
    """One entry of the event log, which DescribeEvents returns newest first."""

    sequence: int
    date: float
    message: str
    severity: str
    application_name: str
    environment_name: str | None = None
    environment_id: str | None = None
    version_label: str | None = None
    request_id: str | None = None
    # EventBridge ``detail-type`` and ``detail.Status`` when the event also goes to
    # subscribers, or None for log-only events.
    detail_type: str | None = None
    detail_status: str | None = None


@dataclass
class Durations:
    """Virtual seconds that each operation takes, plus the account's version quota."""

    launch_seconds: float
    update_seconds: float
    terminate_seconds: float
    max_application_versions: int


class SimulatorState:
    """Applications, versions, environments, tags and events of one simulated account."""

    def __init__(self, region: str, account_id: str, durations: Durations) -> None:
        self.region = region
        self.account_id = account_id
        self.durations = durations
        self.applications: dict[str, Application] = {}
        self.versions: dict[tuple[str, str], ApplicationVersion] = {}
        # In creation order. Terminated environments stay, so they can still be described.
        self.environments: list[Environment] = []
        self.tags: dict[str, dict[str, str]] = {}
        self.events: list[Event] = []
        # Events waiting to go to subscribers. The simulator sends them outside its lock.
        self.outbox: list[Event] = []
        self._counters: dict[str, int] = {}
        # Faults armed by scenarios: version labels whose update EB aborts, and the HTTP status
        # the app of a version returns on its health path.
        self.aborted_versions: set[str] = set()
        self.health_statuses: dict[str, int] = {}
        self.updates_to_refuse = 0
        # Health that EB reports once a version label is Ready, phase by phase.
        self.health_faults: dict[str, list[HealthPhase]] = {}
        # Fault: the next environment created gets a terminated one of the same name listed
        # beside it.
        self.terminated_twin_pending = False

    # Identifiers

    def _next(self, kind: str) -> int:
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return self._counters[kind]

    def _digest(self, kind: str, number: int) -> bytes:
        seed = f"{self.account_id}:{self.region}:{kind}:{number}"
        return hashlib.sha256(seed.encode()).digest()

    def next_request_id(self) -> str:
        return str(uuid.UUID(bytes=self._digest("request", self._next("request"))[:16], version=4))

    def next_event_id(self) -> str:
        return str(uuid.UUID(bytes=self._digest("event", self._next("event"))[:16], version=4))

    def next_environment_id(self) -> str:
        """Return an id shaped like EB's (``e-`` and 10 lowercase letters or digits)."""
        digest = self._digest("environment", self._next("environment"))
        return "e-" + "".join(_ID_ALPHABET[byte % len(_ID_ALPHABET)] for byte in digest[:10])

    # ARNs

    def application_arn(self, application_name: str) -> str:
        return self._arn(f"application/{application_name}")

    def version_arn(self, application_name: str, label: str) -> str:
        return self._arn(f"applicationversion/{application_name}/{label}")

    def environment_arn(self, application_name: str, environment_name: str) -> str:
        return self._arn(f"environment/{application_name}/{environment_name}")

    def _arn(self, resource: str) -> str:
        return f"arn:aws:elasticbeanstalk:{self.region}:{self.account_id}:{resource}"

    def add_terminated_twin(self, environment: Environment, now: float) -> Environment:
        """List a terminated environment of the same name just before ``environment``.

        It stands for an earlier environment of that name that ended at ``now``, which EB
        keeps listing for about an hour. It has its own EnvironmentId but the same ARN, which
        names only the application and the environment. Nothing serves its CNAME.
        """
        twin = Environment(
            name=environment.name,
            environment_id=self.next_environment_id(),
            application_name=environment.application_name,
            arn=environment.arn,
            port=AppHost.allocate_port(),
            created=min(environment.created, now) - self.durations.launch_seconds,
            updated=now,
            version_label=environment.version_label,
            solution_stack_name=environment.solution_stack_name,
            platform_arn=environment.platform_arn,
            description=environment.description,
            tier=dict(environment.tier),
            option_settings=[dict(setting) for setting in environment.option_settings],
            status="Terminated",
            health="Grey",
            health_status="NoData",
            terminated_at=now,
        )
        self.environments.insert(self.environments.index(environment), twin)
        return twin

    # Lookups

    def require_application(self, application_name: str) -> Application:
        application = self.applications.get(application_name)
        if application is None:
            raise application_not_found(application_name)
        return application

    def require_version(self, application_name: str, label: str) -> ApplicationVersion:
        version = self.versions.get((application_name, label))
        if version is None:
            raise version_not_found(label)
        return version

    def find_live_environment(self, environment_name: str) -> Environment | None:
        for environment in self.environments:
            if environment.name == environment_name and environment.is_live:
                return environment
        return None

    def require_live_environment(self, request: dict[str, Any]) -> Environment:
        """Return the live environment named by EnvironmentId or EnvironmentName in ``request``.

        Terminated environments count as not found, as they do for EB's mutating calls.
        """
        environment_id = request.get("EnvironmentId")
        environment_name = request.get("EnvironmentName")
        if environment_id is None and environment_name is None:
            # NOTE: EB returns MissingRequiredParameter here, but the message text is unconfirmed.
            raise missing_parameter("Either EnvironmentName or EnvironmentId must be specified.")
        for environment in self.environments:
            if not environment.is_live:
                continue
            if environment_id is not None and environment.environment_id != environment_id:
                continue
            if environment_name is not None and environment.name != environment_name:
                continue
            return environment
        if environment_id is not None:
            raise environment_not_found("EnvironmentId", environment_id)
        raise environment_not_found("EnvironmentName", environment_name)

    # Events

    def record_event(
        self,
        date: float,
        message: str,
        severity: str,
        application_name: str,
        *,
        environment: Environment | None = None,
        request_id: str | None = None,
        detail_type: str | None = None,
        detail_status: str | None = None,
    ) -> Event:
        """Append an event to the log and, when it has a detail type, to the outbox."""
        event = Event(
            sequence=self._next("event-log"),
            date=date,
            message=message,
            severity=severity,
            application_name=application_name,
            environment_name=environment.name if environment else None,
            environment_id=environment.environment_id if environment else None,
            version_label=environment.version_label if environment else None,
            request_id=request_id,
            detail_type=detail_type,
            detail_status=detail_status,
        )
        self.events.append(event)
        if detail_type is not None:
            self.outbox.append(event)
        return event
