"""StartRecovery: the EventBridge rule's target for "Environment termination successful".

It maps the event to a managed environment by the EB environment and application names in the
environments file, and starts its recovery (see common/recovery.py). Any other event is logged
and ignored.

EventBridge delivers at least once, so each event id is processed once: powertools Idempotency
keeps a record per event id in the deployment table for 24 hours. While an invocation runs, its
record is "in progress" until the invocation's own timeout. A duplicate arriving meanwhile raises
IdempotencyAlreadyInProgressError; Lambda's asynchronous retries deliver it again later, when it
finds the result. A record left "in progress" by an invocation that timed out lapses at that
timeout, so the retry of that event runs instead of waiting for 24 hours.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from pydantic import ValidationError

from .common.aws import client
from .common.observability import logger
from .common.recovery import (
    EB_SOURCE,
    EVENT_ID_RETENTION_SECONDS,
    RESOURCE_STATUS_CHANGE,
    TERMINATION_SUCCESSFUL,
    TTL_ATTRIBUTE,
    StatusChangeEvent,
    managed_environment,
    start_recovery,
)
from .common.settings import current_settings

IDEMPOTENCY_PARTITION = "IDEMPOTENCY#start-recovery"


def idempotency_config(context: Any) -> IdempotencyConfig:
    """Build the config of one invocation; its context gives the time left before the timeout."""
    config = IdempotencyConfig(
        event_key_jmespath="id",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=EVENT_ID_RETENTION_SECONDS,
    )
    config.register_lambda_context(context)
    return config


def _persistence_layer() -> DynamoDBPersistenceLayer:
    # The deployment table stores the records in one partition, sorted by the hashed event id.
    return DynamoDBPersistenceLayer(
        table_name=os.environ["TABLE_NAME"],
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=IDEMPOTENCY_PARTITION,
        expiry_attr=TTL_ATTRIBUTE,
        boto3_client=client("dynamodb"),
    )


def handle_event(event: dict[str, Any]) -> dict[str, Any]:
    """Map one status-change event to a managed environment and start its recovery."""
    parsed = StatusChangeEvent.model_validate(event)
    detail = parsed.detail
    if (
        parsed.source != EB_SOURCE
        or parsed.detail_type != RESOURCE_STATUS_CHANGE
        or detail.status != TERMINATION_SUCCESSFUL
    ):
        logger.info(
            "event ignored: not an environment termination",
            extra={"detail_type": parsed.detail_type, "eb_status": detail.status},
        )
        return {"action": "ignored", "reason": f"status {detail.status!r} is not a termination"}
    environment = managed_environment(
        current_settings(), detail.environment_name, detail.application_name
    )
    if environment is None:
        logger.info(
            "event ignored: environment not managed by the control plane",
            extra={
                "eb_environment": detail.environment_name,
                "eb_application": detail.application_name,
            },
        )
        return {
            "action": "ignored",
            "reason": f"EB environment {detail.environment_name} is not in the environments file",
        }
    logger.append_keys(environment=environment)
    return start_recovery(environment, source=f"event {parsed.id}").as_result()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(event.get("id") if isinstance(event, dict) else None)
    try:
        StatusChangeEvent.model_validate(event)
    except ValidationError as error:
        # Retrying a malformed event cannot help, so it is dropped here.
        logger.warning(
            "event ignored: not an EB status-change event", extra={"problems": str(error)[:500]}
        )
        return {"action": "ignored", "reason": "not an EB status-change event"}
    process = idempotent_function(
        data_keyword_argument="event",
        persistence_store=_persistence_layer(),
        config=idempotency_config(context),
    )(handle_event)
    return process(event=event)
