"""VerifyHealth: check that EB reports accepted health and the health URL returns this version.

Accepted health is Green, or Yellow where the environment's settings accept it
(lambdas/common/health.py); WaitForDeployment has already waited out the settling window.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .common.beanstalk import find_environment
from .common.errors import HealthCheckFailed
from .common.health import color_accepted
from .common.models import TaskEvent
from .common.observability import logger, task_handler
from .common.settings import current_settings

REQUEST_TIMEOUT_SECONDS = 5
# No proxy from the environment: the health URL is requested directly.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def fetch_health(url: str) -> tuple[int, dict[str, Any]]:
    """GET the health URL; return the HTTP status and the JSON body (empty when not JSON)."""
    try:
        with _OPENER.open(url, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            status, body = response.status, response.read(65536)
    except urllib.error.HTTPError as error:
        return error.code, {}
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise HealthCheckFailed(f"health URL {url} did not respond: {error}") from None
    try:
        document = json.loads(body)
    except ValueError:
        document = {}
    return status, document if isinstance(document, dict) else {}


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target, outputs = task.require_target(), task.require_outputs()
    expected = task.version_to_check

    environment = find_environment(
        target.region, outputs.eb_application_name, outputs.eb_environment_name
    )
    color = environment.get("Health") if environment else "missing"
    accept_yellow = current_settings().environment(task.request.environment).health.accept_yellow
    if not color_accepted(color, accept_yellow):
        accepted = "Green or Yellow" if accept_yellow else "Green"
        raise HealthCheckFailed(
            f"environment {outputs.eb_environment_name} health is {color}, not {accepted}"
        )
    url = outputs.health_check_url
    if not url:
        raise HealthCheckFailed("the stack exports no healthCheckUrl to check")
    status, document = fetch_health(url)
    reported = document.get("version")
    logger.info("health checked", extra={"url": url, "http_status": status, "reported": reported})
    if not 200 <= status < 300:
        raise HealthCheckFailed(f"health URL {url} returned HTTP {status}")
    if reported is not None and reported != expected:
        raise HealthCheckFailed(f"health URL {url} reports version {reported}, not {expected}")
    return {"url": url, "httpStatus": status, "reportedVersion": reported, "health": color}
