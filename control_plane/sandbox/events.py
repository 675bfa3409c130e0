"""The sandbox's EventBridge: delivers events to the synthesized rules' Lambda targets.

moto's EventBridge delivers only to SQS, logs, archives and other buses, and raises
NotImplementedError for a Lambda target. So the sandbox evaluates each rule of the synthesized
template itself. An event goes to every target of every rule whose event pattern matches; the
pattern is evaluated by moto's EventPattern, the matcher behind its PutEvents. A rule with a
`rate(...)` schedule runs when virtual time passes its schedule during `let_time_pass`. No
schedule runs while the sandbox only serves API calls (`control-plane sandbox start`). A
target's constant `Input` or its `InputTransformer` replaces the event, as on EventBridge.

Like EventBridge, delivery is asynchronous: each delivery runs the target's handler on its own
thread. The thread counts as an actor of the virtual clock, so virtual time does not move until
the target returns. Two faults act here: lost events are dropped, and duplicated events are
delivered a second time 200 ms (wall clock) after the first.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.events.models import EventPattern

from .clock import VirtualClock
from .lambda_runtime import FunctionSpec, LambdaRuntime

LOG = logging.getLogger(__name__)
DUPLICATE_DELAY_SECONDS = 0.2
_RATE = re.compile(r"^rate\((?P<value>\d+) (?P<unit>minutes?|hours?|days?)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_PLACEHOLDER = re.compile(r"<(?P<name>[A-Za-z0-9_.-]+)>")
_JSON_PATH = re.compile(r"^\$(\.[A-Za-z0-9_-]+)*$")


def rate_seconds(expression: str) -> int:
    """Return the period of a `rate(N unit)` schedule expression in seconds."""
    match = _RATE.match(expression)
    if match is None:
        raise NotImplementedError(
            f"schedule expression {expression!r}: the sandbox runs rate(N minutes|hours|days) "
            "schedules only, not cron()"
        )
    return int(match.group("value")) * _UNIT_SECONDS[match.group("unit").rstrip("s")]


def _path_value(event: dict[str, Any], path: str) -> Any:
    """Return the value at a dotted JSON path (`$.detail.status`) of the event, or None."""
    if not _JSON_PATH.match(path):
        raise NotImplementedError(
            f"input path {path!r}: the sandbox supports dotted paths such as $.detail.status only"
        )
    value: Any = event
    for key in path.split(".")[1:]:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _inside_json_string(text: str, position: int) -> bool:
    """Return whether `position` of a JSON text lies inside a string literal."""
    inside = escaped = False
    for character in text[:position]:
        if escaped:
            escaped = False
        elif character == "\\":
            escaped = inside
        elif character == '"':
            inside = not inside
    return inside


def transform_input(transformer: dict[str, Any], event: dict[str, Any]) -> Any:
    """Render a target's InputTransformer for an event, as EventBridge does for a JSON template.

    A placeholder inside a JSON string becomes the value's text. A placeholder outside a string
    becomes the value as JSON, so a string value gets quotes, which the CDK's
    RuleTargetInput.fromObject relies on for its EventField placeholders.
    """
    values = {
        name: _path_value(event, path)
        for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    template = str(transformer["InputTemplate"])

    def render(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in values:
            raise NotImplementedError(
                f"input template placeholder <{name}> is not in InputPathsMap; the sandbox does "
                "not provide EventBridge's predefined variables"
            )
        value = values[name]
        if _inside_json_string(template, match.start()):
            text = value if isinstance(value, str) else json.dumps(value)
            return json.dumps(text)[1:-1]
        return json.dumps(value)

    rendered = _PLACEHOLDER.sub(render, template)
    try:
        return json.loads(rendered)
    except json.JSONDecodeError:
        raise NotImplementedError(
            f"input template {template!r} does not render to JSON; the sandbox delivers JSON "
            "input to Lambda targets only"
        ) from None


@dataclass
class RuleTarget:
    """A rule's Lambda target and the input it receives in place of the event, if any."""

    function: FunctionSpec
    # The target's constant `Input` (JSON text) or its `InputTransformer`.
    constant_input: str | None = None
    transformer: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.function.name

    def payload(self, event: dict[str, Any]) -> Any:
        """Return what EventBridge sends the target for this event."""
        if self.constant_input is not None:
            return json.loads(self.constant_input)
        if self.transformer is not None:
            return transform_input(self.transformer, event)
        return event


@dataclass
class Delivery:
    """One delivery of an event to a rule's target, and what the target returned."""

    rule: str
    function: str
    event: dict[str, Any]
    # What the target received: the event, or the input its rule made of it.
    payload: Any = None
    result: Any = None
    error_type: str | None = None


@dataclass
class _PatternRule:
    name: str
    pattern: EventPattern
    targets: list[RuleTarget]


@dataclass
class _ScheduledRule:
    name: str
    period_seconds: int
    targets: list[RuleTarget]
    next_due: float = 0.0


@dataclass
class _Faults:
    lose: bool = False
    duplicate: bool = False


class SandboxEventBridge:
    """The default event bus of the sandbox, with the template's rules."""

    def __init__(
        self,
        rules: dict[str, dict[str, Any]],
        lambdas: LambdaRuntime,
        clock: VirtualClock,
        *,
        region: str,
        account_id: str,
    ) -> None:
        self._lambdas = lambdas
        self._clock = clock
        self._region = region
        self._account_id = account_id
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._faults = _Faults()
        self.deliveries: list[Delivery] = []
        self.dropped: list[dict[str, Any]] = []
        self._pattern_rules: list[_PatternRule] = []
        self._scheduled_rules: list[_ScheduledRule] = []
        for name, properties in sorted(rules.items()):
            if properties.get("State", "ENABLED") != "ENABLED":
                continue
            targets = [self._target(name, target) for target in properties.get("Targets", [])]
            if "EventPattern" in properties:
                pattern = EventPattern.load(json.dumps(properties["EventPattern"]))
                self._pattern_rules.append(_PatternRule(name, pattern, targets))
            if "ScheduleExpression" in properties:
                period = rate_seconds(properties["ScheduleExpression"])
                self._scheduled_rules.append(
                    _ScheduledRule(name, period, targets, next_due=clock.now() + period)
                )

    def _target(self, rule: str, target: dict[str, Any]) -> RuleTarget:
        spec = self._lambdas.function_for(str(target.get("Arn", "")))
        if spec is None:
            raise NotImplementedError(
                f"rule {rule}: target {target.get('Arn')} is not a Lambda function of the "
                "template; the sandbox delivers events to Lambda targets only"
            )
        if "InputPath" in target:
            raise NotImplementedError(
                f"rule {rule}: a target's InputPath is not supported by the sandbox; use Input "
                "or InputTransformer"
            )
        return RuleTarget(spec, target.get("Input"), target.get("InputTransformer"))

    # Faults

    def lose_events(self) -> None:
        """Drop every later published event, as EventBridge's best-effort delivery may."""
        with self._lock:
            self._faults.lose = True

    def duplicate_events(self) -> None:
        """Deliver every later published event twice, the copy 200 ms after the original."""
        with self._lock:
            self._faults.duplicate = True

    # Events

    def publish(self, event: dict[str, Any]) -> None:
        """Put one event on the bus; matching rules' targets receive it asynchronously."""
        with self._lock:
            lose, duplicate = self._faults.lose, self._faults.duplicate
        matching = [rule for rule in self._pattern_rules if rule.pattern.matches_event(event)]
        if lose:
            LOG.info("event %s dropped (lost_events fault)", event.get("id"))
            with self._lock:
                self.dropped.append(event)
            return
        for rule in matching:
            for target in rule.targets:
                self._deliver(rule.name, target, event, delay_seconds=0.0)
                if duplicate:
                    self._deliver(rule.name, target, event, delay_seconds=DUPLICATE_DELAY_SECONDS)

    def _deliver(
        self, rule: str, target: RuleTarget, event: dict[str, Any], *, delay_seconds: float
    ) -> None:
        delivery = Delivery(
            rule=rule, function=target.name, event=event, payload=target.payload(event)
        )
        payload = json.dumps(delivery.payload).encode()

        def run() -> None:
            try:
                if delay_seconds:
                    time.sleep(delay_seconds)
                response, error = self._lambdas.invoke(target.function, payload)
                delivery.result = json.loads(response or b"null")
                delivery.error_type = delivery.result.get("errorType") if error else None
                if error:
                    LOG.warning(
                        "rule %s: %s failed on event %s: %s",
                        rule,
                        target.name,
                        event.get("id"),
                        delivery.error_type,
                    )
            finally:
                self._clock.remove_actor()

        # Counted before the thread starts, so virtual time cannot move past the delivery.
        self._clock.add_actor()
        thread = threading.Thread(target=run, daemon=True, name=f"event-{rule}")
        with self._lock:
            self.deliveries.append(delivery)
            self._threads.append(thread)
        thread.start()

    def wait_idle(self, timeout_seconds: float = 120) -> None:
        """Wait until every delivery started so far has returned."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            with self._lock:
                running = [thread for thread in self._threads if thread.is_alive()]
                self._threads = running
            if not running:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{len(running)} event deliveries still running after {timeout_seconds} s"
                )
            running[0].join(timeout=remaining)

    # Schedules

    def let_time_pass(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass, running each scheduled rule when it is due.

        The caller must be an actor of the clock (see VirtualClock.add_actor), so running
        executions keep their order around each scheduled run.
        """
        end = self._clock.now() + seconds
        while True:
            due = min((rule.next_due for rule in self._scheduled_rules), default=end + 1)
            if due > end:
                remaining = end - self._clock.now()
                if remaining > 0:
                    self._clock.sleep(remaining)
                return
            if due > self._clock.now():
                self._clock.sleep(due - self._clock.now())
            self.run_due_schedules()

    def run_due_schedules(self) -> list[str]:
        """Deliver a Scheduled Event to each rule due at the current virtual time.

        Returns the names of the rules that ran. A rule that fell several periods behind runs
        once, as EventBridge does not replay missed invocations.
        """
        now = self._clock.now()
        ran = []
        self._clock.add_actor()
        try:
            for rule in self._scheduled_rules:
                if rule.next_due > now:
                    continue
                periods = int((now - rule.next_due) // rule.period_seconds) + 1
                rule.next_due += periods * rule.period_seconds
                event = self._scheduled_event(rule.name, now)
                for target in rule.targets:
                    self._deliver(rule.name, target, event, delay_seconds=0.0)
                ran.append(rule.name)
            self.wait_idle()
        finally:
            self._clock.remove_actor()
        return ran

    def _scheduled_event(self, rule: str, now: float) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self._account_id,
            "time": datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [f"arn:aws:events:{self._region}:{self._account_id}:rule/{rule}"],
            "detail": {},
        }
