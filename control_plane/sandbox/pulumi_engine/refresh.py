"""Refresh: read each resource back from the sandbox's AWS APIs and update the state.

A resource that no longer exists (for EB, a Terminated or missing environment) is dropped
from the state, as the AWS provider does. A resource whose outputs changed is updated.
"""

from __future__ import annotations

import dataclasses

from .display import Display
from .providers import ProviderContext, provider_for
from .providers.base import comparable
from .state import ResourceState, Snapshot


def refresh_snapshot(
    snapshot: Snapshot,
    providers: ProviderContext,
    display: Display,
    *,
    targets: set[str] | None = None,
) -> Snapshot:
    """Return the refreshed snapshot; `targets` limits the refresh to those URNs."""
    remaining: list[ResourceState] = []
    dropped: set[str] = set()
    configured: set[str] = set()
    for resource in snapshot.resources:
        if not _refreshable(resource, targets):
            remaining.append(resource)
            continue

        provider_urn = resource.provider.rsplit("::", 1)[0]
        if resource.type.startswith("aws:") and provider_urn not in configured:
            providers.configure(provider_urn)
            configured.add(provider_urn)
        refreshed = provider_for(resource.type, providers).read(resource)
        if refreshed is None:
            dropped.add(resource.urn)
            display.step(
                "delete", resource.type, resource.name, urn=resource.urn, old_state=resource
            )
            continue

        changed = {
            key
            for key in set(resource.outputs) | set(refreshed.outputs)
            if comparable(resource.outputs.get(key)) != comparable(refreshed.outputs.get(key))
        }
        display.step(
            "update" if changed else "same",
            resource.type,
            resource.name,
            changed=changed,
            old=resource.outputs,
            new=refreshed.outputs,
            urn=resource.urn,
            old_state=resource,
            new_state=refreshed,
        )
        remaining.append(refreshed)

    if dropped:
        remaining = [_without_dependencies(resource, dropped) for resource in remaining]
    return dataclasses.replace(snapshot, resources=remaining)


def _refreshable(resource: ResourceState, targets: set[str] | None) -> bool:
    if not resource.custom or resource.is_provider:
        return False
    return targets is None or resource.urn in targets


def _without_dependencies(resource: ResourceState, dropped: set[str]) -> ResourceState:
    """Remove references to dropped resources so the snapshot stays consistent."""
    if not dropped & set(resource.dependencies) and not any(
        dropped & set(urns) for urns in resource.property_dependencies.values()
    ):
        return resource
    return dataclasses.replace(
        resource,
        dependencies=[urn for urn in resource.dependencies if urn not in dropped],
        property_dependencies={
            key: [urn for urn in urns if urn not in dropped]
            for key, urns in resource.property_dependencies.items()
        },
    )
