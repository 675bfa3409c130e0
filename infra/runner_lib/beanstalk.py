"""Elastic Beanstalk status checks of the runner: DescribeEnvironments with boto3, polled
until the environment leaves its transitional status or a time limit passes."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

TRANSITIONAL = frozenset({"Launching", "Updating", "Terminating", "Aborting"})

logger = logging.getLogger("runner")


class BeanstalkCheckFailed(Exception):
    """DescribeEnvironments failed, or the environment stayed transitional too long."""


class EnvironmentWaiter:
    """Reader of an environment's status that can wait for it to leave a transitional one.

    `client` returns the boto3 EB client and is called on first use, so runs that never
    look at EB need no EB client. Waiting polls every `poll_seconds`, at most
    `timeout_seconds / poll_seconds` times (rounded up); a timeout of 0 does not wait.
    """

    def __init__(
        self,
        client: Callable[[], Any],
        *,
        timeout_seconds: float,
        poll_seconds: float,
        sleep: Callable[[float], None],
    ) -> None:
        self._client_factory = client
        self._client: Any = None
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def describe(self, name: str, application: str | None = None) -> dict[str, Any] | None:
        """Return the live environment named `name` (terminated ones are skipped), or None."""
        params: dict[str, Any] = {"EnvironmentNames": [name], "IncludeDeleted": False}
        if application:
            params["ApplicationName"] = application
        if self._client is None:
            self._client = self._client_factory()
        try:
            response = self._client.describe_environments(**params)
        except (ClientError, BotoCoreError) as error:
            raise BeanstalkCheckFailed(
                f"DescribeEnvironments for environment {name} failed: {error}"
            ) from error
        for environment in response.get("Environments", []):
            if environment.get("EnvironmentName") == name and environment.get("Status") not in (
                None,
                "Terminated",
            ):
                return environment
        return None

    def wait_while_transitional(
        self, name: str, application: str | None = None
    ) -> tuple[dict[str, Any] | None, float]:
        """Poll until the environment is not in a transitional status or is gone.

        Returns the last description (None when the environment is gone) and the seconds
        waited. Raises BeanstalkCheckFailed when it is still transitional at the time limit.
        """
        max_polls = math.ceil(self.timeout_seconds / self.poll_seconds)
        waited = 0.0
        environment = self.describe(name, application)
        for poll in range(1, max_polls + 1):
            if environment is None or environment.get("Status") not in TRANSITIONAL:
                return environment, waited
            logger.info(
                "environment %s is %s; checking again in %.0f s (check %d of %d)",
                name,
                environment.get("Status"),
                self.poll_seconds,
                poll,
                max_polls,
            )
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds
            environment = self.describe(name, application)
        if environment is None or environment.get("Status") not in TRANSITIONAL:
            return environment, waited
        raise BeanstalkCheckFailed(
            f"environment {name} was still {environment.get('Status')} after {waited:.0f} s "
            f"(EB_WAIT_TIMEOUT_SECONDS={self.timeout_seconds:.0f}); its Elastic Beanstalk "
            "operation has not ended. Read its events (aws elasticbeanstalk describe-events "
            f"--environment-name {name}) and deploy again once it is Ready."
        )
