"""Handlers of UpdateTagsForResource and ListTagsForResource."""

from __future__ import annotations

from typing import Any

from control_plane.sandbox.eb.context import OperationContext
from control_plane.sandbox.eb.errors import ElasticBeanstalkError
from control_plane.sandbox.eb.state import SimulatorState


def tag_pairs_to_dict(tags: list[dict[str, str]]) -> dict[str, str]:
    return {tag["Key"]: tag.get("Value", "") for tag in tags}


def update_tags_for_resource(context: OperationContext, request: dict[str, Any]) -> None:
    tags = _require_resource_tags(context.state, request["ResourceArn"])
    for key in request.get("TagsToRemove", []):
        tags.pop(key, None)
    tags.update(tag_pairs_to_dict(request.get("TagsToAdd", [])))


def list_tags_for_resource(context: OperationContext, request: dict[str, Any]) -> dict[str, Any]:
    arn = request["ResourceArn"]
    tags = _require_resource_tags(context.state, arn)
    return {
        "ResourceArn": arn,
        "ResourceTags": [{"Key": key, "Value": value} for key, value in tags.items()],
    }


def _require_resource_tags(state: SimulatorState, arn: str) -> dict[str, str]:
    """Return the mutable tag dict of an application, version or live environment."""
    live_environment_arns = {
        environment.arn for environment in state.environments if environment.is_live
    }
    known = (
        {application.arn for application in state.applications.values()}
        | {version.arn for version in state.versions.values()}
        | live_environment_arns
    )
    if arn not in known:
        raise ElasticBeanstalkError("ResourceNotFoundException", f"Resource {arn} not found.")
    return state.tags.setdefault(arn, {})
