"""boto3 clients for the task handlers.

Clients are cached per service and region so warm invocations reuse connections. The user agent
marks the control plane's calls, which makes them easy to find in CloudTrail.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

USER_AGENT = "control-plane"

_CONFIG = Config(user_agent_extra=USER_AGENT, retries={"mode": "standard", "max_attempts": 5})


@cache
def client(service: str, region: str | None = None) -> Any:
    return boto3.client(service, region_name=region, config=_CONFIG)


def error_code(error: Exception) -> str:
    """Return the AWS error code of a botocore ClientError, or an empty string."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
