"""Repair of pending operations that an interrupted `pulumi up` left in the state.

A pending create means the CLI asked the provider to create a resource and stopped before it
recorded the result, so the resource may exist in AWS without being in the state. For the
EB environment the runner looks it up by name: an existing environment is imported into the
state (`pulumi refresh --import-pending-creates <URN> <ID>`), after waiting while it is still
Launching, and a missing one is dropped (`--clear-pending-creates`), so the next `up` creates
it. A `pulumi refresh` clears the other pending operations (updates, deletes, reads).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .beanstalk import BeanstalkCheckFailed, EnvironmentWaiter

if TYPE_CHECKING:
    from .actions import Runner

EB_ENVIRONMENT_TYPE = "aws:elasticbeanstalk/environment:Environment"

logger = logging.getLogger("runner")


def repair_pending_operations(runner: Runner) -> None:
    """Resolve every pending operation of the stack with one `pulumi refresh`."""
    operations = runner.export_state().get("pending_operations") or []
    if not operations:
        return
    logger.warning(
        "the stack has %d pending operation(s) from an interrupted update: %s",
        len(operations),
        ", ".join(
            f"{op.get('type')} {(op.get('resource') or {}).get('urn', '?')}" for op in operations
        ),
    )

    repairs: list[dict[str, Any]] = []
    imports: list[tuple[str, str]] = []
    for operation in operations:
        resource = operation.get("resource") or {}
        urn = str(resource.get("urn", "?"))
        if operation.get("type") != "creating":
            repairs.append(
                {
                    "action": "refreshed-pending-operation",
                    "urn": urn,
                    "operation": operation.get("type"),
                }
            )
            continue
        try:
            repair = _decide_pending_create(urn, resource, runner.waiter)
        except BeanstalkCheckFailed as error:
            raise runner.failure(
                f"could not repair the pending create of {urn} left by an interrupted update: "
                f"{error}"
            ) from error
        if repair["action"] == "imported-pending-create":
            imports.append((urn, repair["id"]))
        repairs.append(repair)

    args = ["refresh", "--yes"]
    for urn, resource_id in imports:
        args += ["--import-pending-creates", urn, "--import-pending-creates", resource_id]
    if any(repair["action"] == "cleared-pending-create" for repair in repairs):
        args.append("--clear-pending-creates")
    args += ["--stack", runner.stack]
    result = runner.run_operation(*args)
    if not result.ok:
        runner.raise_failure(result, "`pulumi refresh` of the pending operations")

    left = runner.export_state().get("pending_operations") or []
    if left:
        raise runner.failure(
            f"the stack still has {len(left)} pending operation(s) after `pulumi "
            f"{' '.join(args)}`: "
            + ", ".join((op.get("resource") or {}).get("urn", "?") for op in left)
            + ". Repair them with `pulumi refresh` and deploy again."
        )
    for repair in repairs:
        logger.warning("repaired pending operation: %s", repair)
    runner.result.repairs.extend(repairs)


def _decide_pending_create(
    urn: str, resource: dict[str, Any], waiter: EnvironmentWaiter
) -> dict[str, Any]:
    """Return the repair of one pending create: import the live EB environment, or clear it."""
    qualified_type = urn.split("::")[2] if urn.count("::") >= 3 else ""
    type_token = str(resource.get("type") or qualified_type)
    if not type_token.endswith(EB_ENVIRONMENT_TYPE):
        # NOTE: such a resource may exist in AWS without being in the state. The next `up`
        # then fails on its name, and the resource needs a manual `pulumi import`.
        return {
            "action": "cleared-pending-create",
            "urn": urn,
            "reason": "only the EB environment is looked up in AWS; check AWS for a "
            "half-created resource of this type",
        }
    inputs = resource.get("inputs") or {}
    name = inputs.get("name")
    application = inputs.get("application")
    if not isinstance(name, str) or not name:
        return {
            "action": "cleared-pending-create",
            "urn": urn,
            "reason": "the pending create records no environment name to look up",
        }

    environment, waited = waiter.wait_while_transitional(
        name, application if isinstance(application, str) else None
    )
    if environment is None:
        return {
            "action": "cleared-pending-create",
            "urn": urn,
            "environment": name,
            "reason": f"environment {name} does not exist in Elastic Beanstalk",
        }
    status = environment.get("Status")
    environment_id = environment.get("EnvironmentId")
    if not environment_id:
        raise BeanstalkCheckFailed(
            f"DescribeEnvironments returned environment {name} ({status}) without an "
            "EnvironmentId, so it cannot be imported"
        )
    if waited:
        logger.info("environment %s became %s after %.0f s", name, status, waited)
    return {
        "action": "imported-pending-create",
        "urn": urn,
        "environment": name,
        "id": environment_id,
        "status": status,
    }
