"""FallbackOutputs: find the environment through EB when the stack outputs stay unreadable.

Only an unambiguous match is accepted: exactly one live environment in the environment's EB
application. Anything else fails rather than deploying to a guess.
"""

from __future__ import annotations

from typing import Any

from .common.beanstalk import environment_url, live_environments
from .common.errors import OutputsNotAvailable
from .common.models import StackOutputs, TaskEvent
from .common.observability import logger, task_handler


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target = task.require_target()

    environments = live_environments(target.region, target.eb_application)
    if len(environments) != 1:
        names = ", ".join(env["EnvironmentName"] for env in environments) or "none"
        raise OutputsNotAvailable(
            f"stack outputs unreadable and application {target.eb_application} has "
            f"{len(environments)} live environments ({names}); expected exactly one. "
            f"Check the Pulumi state with `pulumi stack output --stack {target.stack}`."
        )
    environment = environments[0]
    url = environment_url(environment)
    outputs = StackOutputs(
        eb_environment_name=environment["EnvironmentName"],
        eb_application_name=target.eb_application,
        environment_url=url,
        health_check_url=f"{url}{target.health_path}" if url else None,
        source="fallback",
    )
    logger.info(
        "outputs taken from Elastic Beanstalk",
        extra={"eb_environment": outputs.eb_environment_name},
    )
    return outputs.model_dump(by_alias=True)
