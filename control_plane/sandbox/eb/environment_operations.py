"""Handlers of the operations that create, describe, change and terminate environments."""

from __future__ import annotations

import re
from typing import Any

from control_plane.sandbox.eb.app_host import AppHost
from control_plane.sandbox.eb.context import OperationContext, paginate
from control_plane.sandbox.eb.descriptions import describe_environment, timestamp
from control_plane.sandbox.eb.errors import (
    environment_not_found,
    environment_not_ready,
    invalid_parameter,
    missing_parameter,
)
from control_plane.sandbox.eb.state import (
    DEFAULT_TIER,
    TERMINATED_VISIBLE_SECONDS,
    Environment,
    SimulatorState,
)
from control_plane.sandbox.eb.tag_operations import tag_pairs_to_dict

# EB's documented constraint: 4 to 40 letters, digits and hyphens, no hyphen at either end.
ENVIRONMENT_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{2,38}[A-Za-z0-9]$")


def create_environment(context: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    state = context.state
    application = state.require_application(request["ApplicationName"])
    name = request.get("EnvironmentName")
    if name is None:
        raise missing_parameter("The request must contain the parameter EnvironmentName.")
    if not ENVIRONMENT_NAME_PATTERN.match(name):
        # NOTE: the real message for an invalid name is unconfirmed.
        raise invalid_parameter(
            f"Invalid environment name '{name}': use 4 to 40 letters, digits and hyphens, "
            "not starting or ending with a hyphen."
        )
    _reject_templates(request)
    if state.find_live_environment(name) is not None:
        raise invalid_parameter(f"Environment {name} already exists.")
    label = request.get("VersionLabel")
    if label is not None:
        state.require_version(application.name, label)

    environment = Environment(
        name=name,
        environment_id=state.next_environment_id(),
        application_name=application.name,
        arn=state.environment_arn(application.name, name),
        port=AppHost.allocate_port(),
        created=context.now,
        updated=context.now,
        version_label=label,
        solution_stack_name=request.get("SolutionStackName"),
        platform_arn=request.get("PlatformArn"),
        description=request.get("Description"),
        tier=request.get("Tier") or dict(DEFAULT_TIER),
        option_settings=merge_option_settings([], request.get("OptionSettings", []), []),
        status="Launching",
        health="Grey",
        health_status="Pending",
    )
    state.environments.append(environment)
    if state.terminated_twin_pending:
        state.terminated_twin_pending = False
        state.add_terminated_twin(environment, context.now)
    state.tags[environment.arn] = tag_pairs_to_dict(request.get("Tags", []))
    context.lifecycle.begin_launch(environment, context.now, context.request_id)
    return describe_environment(environment)


def describe_environments(context: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    visible = visible_environments(
        context.state,
        context.now,
        application_name=request.get("ApplicationName"),
        version_label=request.get("VersionLabel"),
        names=request.get("EnvironmentNames"),
        environment_ids=request.get("EnvironmentIds"),
        include_deleted=request.get("IncludeDeleted", True),
        deleted_back_to=request.get("IncludedDeletedBackTo"),
    )
    page, next_token = paginate(visible, request)
    return {
        "Environments": [describe_environment(environment) for environment in page],
        "NextToken": next_token,
    }


def visible_environments(
    state: SimulatorState,
    now: float,
    *,
    application_name: str | None = None,
    version_label: str | None = None,
    names: list[str] | None = None,
    environment_ids: list[str] | None = None,
    include_deleted: bool = True,
    deleted_back_to: Any = None,
) -> list[Environment]:
    """Return environments in creation order, filtered as DescribeEnvironments filters them.

    A terminated environment is listed while IncludeDeleted is true and it terminated after
    IncludedDeletedBackTo, or within the last hour when that is not given.
    """
    cutoff = (
        deleted_back_to.timestamp()
        if deleted_back_to is not None
        else now - TERMINATED_VISIBLE_SECONDS
    )
    visible = []
    for environment in state.environments:
        if application_name is not None and environment.application_name != application_name:
            continue
        if version_label is not None and environment.version_label != version_label:
            continue
        if names and environment.name not in names:
            continue
        if environment_ids and environment.environment_id not in environment_ids:
            continue
        if not environment.is_live and (not include_deleted or environment.terminated_at < cutoff):
            continue
        visible.append(environment)
    return visible


def update_environment(context: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    state = context.state
    environment = _require_environment_of_application(state, request)
    if environment.status != "Ready":
        raise environment_not_ready(environment.name)
    if state.updates_to_refuse > 0:
        # Fault: EB rejects the update as if another operation had just started on it.
        state.updates_to_refuse -= 1
        raise environment_not_ready(environment.name)
    _reject_templates(request)
    if "Tier" in request:
        raise invalid_parameter(
            "The Elastic Beanstalk sandbox cannot change an environment's tier."
        )
    label = request.get("VersionLabel")
    if label is not None:
        state.require_version(environment.application_name, label)
    # Validate every input before changing the environment, so a rejected call changes nothing.
    option_settings = merge_option_settings(
        environment.option_settings,
        request.get("OptionSettings", []),
        request.get("OptionsToRemove", []),
    )

    rollback = (environment.version_label, list(environment.option_settings))
    if label is not None:
        environment.version_label = label
    environment.option_settings = option_settings
    for field, attribute in (
        ("Description", "description"),
        ("SolutionStackName", "solution_stack_name"),
        ("PlatformArn", "platform_arn"),
    ):
        if field in request:
            setattr(environment, attribute, request[field])
    context.lifecycle.begin_update(environment, context.now, context.request_id, rollback)
    return describe_environment(environment)


def terminate_environment(context: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    environment = context.state.require_live_environment(request)
    if environment.status == "Updating":
        raise invalid_parameter(
            f"Cannot terminate environment named {environment.name}. "
            "It is currently pending deployment."
        )
    if environment.status in ("Terminating", "Aborting"):
        raise environment_not_ready(environment.name)
    context.lifecycle.begin_termination(environment, context.now, context.request_id)
    return describe_environment(environment)


def abort_environment_update(context: OperationContext, request: dict[str, Any]) -> None:
    environment = context.state.require_live_environment(request)
    if environment.status != "Updating":
        raise invalid_parameter(
            f"Environment named {environment.name} is in an invalid state for this operation. "
            "Must be pending deployment."
        )
    context.lifecycle.begin_abort(environment, context.now, context.request_id)


def describe_configuration_settings(
    context: OperationContext, request: dict[str, Any]
) -> dict[str, Any]:
    """Return the option settings set on the environment.

    Real EB also lists every default option of the platform. The sandbox has no platform
    defaults, so it returns only settings that a call set.
    """
    state = context.state
    application = state.require_application(request["ApplicationName"])
    _reject_templates(request)
    name = request.get("EnvironmentName")
    if name is None:
        raise missing_parameter("The request must contain the parameter EnvironmentName.")
    environment = state.find_live_environment(name)
    if environment is None or environment.application_name != application.name:
        raise environment_not_found("EnvironmentName", name)
    settings = {
        "SolutionStackName": environment.solution_stack_name,
        "PlatformArn": environment.platform_arn,
        "ApplicationName": environment.application_name,
        "Description": environment.description,
        "EnvironmentName": environment.name,
        "DeploymentStatus": "deployed",
        "DateCreated": timestamp(environment.created),
        "DateUpdated": timestamp(environment.updated),
        "OptionSettings": [dict(setting) for setting in environment.option_settings],
    }
    return {"ConfigurationSettings": [settings]}


def merge_option_settings(
    current: list[dict[str, str]],
    updates: list[dict[str, str]],
    removals: list[dict[str, str]],
) -> list[dict[str, str]]:
    """Apply OptionSettings and OptionsToRemove; a setting's key is resource, namespace, name."""

    def key(setting: dict[str, str]) -> tuple[str | None, str, str]:
        if "Namespace" not in setting or "OptionName" not in setting:
            raise invalid_parameter(
                f"Option setting {setting} needs a Namespace and an OptionName."
            )
        return setting.get("ResourceName"), setting["Namespace"], setting["OptionName"]

    merged = {key(setting): dict(setting) for setting in current}
    for removal in removals:
        merged.pop(key(removal), None)
    for update in updates:
        merged[key(update)] = dict(update)
    return list(merged.values())


def _require_environment_of_application(
    state: SimulatorState, request: dict[str, Any]
) -> Environment:
    environment = state.require_live_environment(request)
    application_name = request.get("ApplicationName")
    if application_name is not None and environment.application_name != application_name:
        field = "EnvironmentId" if "EnvironmentId" in request else "EnvironmentName"
        raise environment_not_found(field, request[field])
    return environment


def _reject_templates(request: dict[str, Any]) -> None:
    if "TemplateName" in request:
        raise invalid_parameter(
            "The Elastic Beanstalk sandbox does not support configuration templates (TemplateName)."
        )
