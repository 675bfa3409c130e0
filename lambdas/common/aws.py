"""boto3 clients for the task handlers.

Clients are cached per service and region so warm invocations reuse connections. The user agent
marks the control plane's calls, which makes them easy to find in CloudTrail.

Every client retries in botocore's standard mode: throttling errors (Throttling, SlowDown,
ProvisionedThroughputExceededException and the others botocore lists) and transient errors are
retried with exponential backoff and jitter, at most MAX_ATTEMPTS attempts per call. The
connect and read timeouts keep a hung connection from using up the function's timeout, so the
call is retried within the same invocation.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

USER_AGENT = "control-plane"
# Attempts per API call, the first included. Standard mode waits at most 2**i seconds before
# retry i (counted from 0), so the four retries of a throttled call wait at most 15 s in all.
MAX_ATTEMPTS = 5
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 20

CLIENT_CONFIG = Config(
    user_agent_extra=USER_AGENT,
    # total_max_attempts counts the first attempt; botocore's max_attempts counts only retries.
    retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
)


@cache
def client(service: str, region: str | None = None) -> Any:
    return boto3.client(service, region_name=region, config=CLIENT_CONFIG)


def error_code(error: Exception) -> str:
    """Return the AWS error code of a botocore ClientError, or an empty string."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
