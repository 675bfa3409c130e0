"""AWS calls made on behalf of a resource, with failures turned into ProviderError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import ProviderError


def call_aws(
    action: str,
    operation: Callable[..., Any],
    *,
    ignore_codes: tuple[str, ...] = (),
    **params: Any,
) -> dict[str, Any]:
    """Run one boto3 operation; on failure raise ProviderError naming the action.

    `action` reads like the AWS provider's own messages, e.g.
    "creating Elastic Beanstalk Environment (webapp-dev)". An error whose code is in
    `ignore_codes` (such as NoSuchBucket when deleting) returns an empty response.
    """
    try:
        return operation(**params)
    except ClientError as error:
        details = error.response.get("Error", {})
        if details.get("Code") in ignore_codes:
            return {}
        raise ProviderError(
            f"{action}: {details.get('Code', 'Error')}: {details.get('Message', error)}"
        ) from error
    except BotoCoreError as error:
        raise ProviderError(f"{action}: {error}") from error
