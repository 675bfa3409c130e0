"""ResolveOutputs: read the stack outputs the deployment needs from the Pulumi backend."""

from __future__ import annotations

from typing import Any

from .common import clock
from .common.errors import OutputsNotAvailable
from .common.models import StackOutputs, TaskEvent
from .common.observability import logger, task_handler
from .common.store import write_infrastructure_record

REQUIRED_OUTPUTS = ("ebEnvironmentName", "ebApplicationName")


@task_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = TaskEvent.model_validate(event)
    target = task.require_target()

    state = target.read_state()
    missing = [name for name in REQUIRED_OUTPUTS if not state.outputs.get(name)]
    if missing:
        where = "no state" if not state.exists else f"missing {', '.join(missing)}"
        raise OutputsNotAvailable(
            f"stack {target.project}/{target.stack} outputs not readable yet ({where})"
        )
    outputs = StackOutputs.model_validate({**state.outputs, "source": "state"})
    logger.info("outputs resolved", extra={"eb_environment": outputs.eb_environment_name})
    record_clean_run(task)
    return outputs.model_dump(by_alias=True)


def record_clean_run(task: TaskEvent) -> None:
    """After a successful Pulumi run, remember its program fingerprint for the fast path."""
    fingerprint = (task.inspection or {}).get("fingerprint")
    if (task.build or {}).get("status") != "SUCCEEDED" or not fingerprint:
        return
    write_infrastructure_record(task.request.environment, fingerprint, int(clock.now()))
    logger.info("clean Pulumi run recorded", extra={"fingerprint": fingerprint})
