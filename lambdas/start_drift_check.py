"""StartDriftCheck: the target of each environment's drift-check schedule.

The rule's target input is `{"environment": NAME, "scheduledAt": <event time>, "eventId": <id>}`
(an EventBridge input transformer). The handler starts the environment's check for that
schedule slot (see common/drift.py). An operator may invoke it with only the environment, to
check now: the slot is then the current one.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from .common import clock
from .common.drift import start_drift_check
from .common.observability import logger
from .common.settings import SettingsError, current_settings, format_validation_error

EXPECTED_INPUT = '{"environment": "<name>", "scheduledAt": "<ISO 8601 time, optional>"}'


class ScheduledCheckInput(BaseModel):
    """The schedule rule's target input."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    environment: str = Field(min_length=1)
    scheduled_at: AwareDatetime | None = Field(default=None, alias="scheduledAt")
    event_id: str | None = Field(default=None, alias="eventId")


def _rejected(reason: str) -> dict[str, Any]:
    # Lambda would retry a raised error, which cannot fix the input, so it is logged instead.
    logger.error("drift check input rejected", extra={"reason": reason})
    return {"action": "rejected", "reason": reason}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if isinstance(event, dict):
        logger.set_correlation_id(event.get("eventId"))
    try:
        parsed = ScheduledCheckInput.model_validate(event)
    except ValidationError as error:
        return _rejected(
            f"invalid input ({format_validation_error(error)}); expected {EXPECTED_INPUT}"
        )
    try:
        current_settings().environment(parsed.environment)
    except SettingsError as error:
        return _rejected(f"{error}; fix the schedule rule's input or the environments file")
    logger.append_keys(environment=parsed.environment)

    scheduled_at = parsed.scheduled_at.timestamp() if parsed.scheduled_at else clock.now()
    return start_drift_check(parsed.environment, scheduled_at).as_result()
