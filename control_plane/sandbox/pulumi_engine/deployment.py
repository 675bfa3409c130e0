"""One pass of the program against a snapshot: plan each resource, and in `up` apply it.

Each registration becomes a step, as in Pulumi's engine: `create` (not in state), `same`
(inputs unchanged), `update`, or `replace`. A replace happens when a property that forces
a new resource changed, and the old resource is deleted first. State resources that the
program no longer declares become `delete` steps once the program has finished.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from typing import Any

from .display import Display
from .errors import EngineError, PartialUpdateError
from .program import ProgramResult, Registration
from .providers import ProviderContext, ResourceProvider, provider_for
from .state import (
    PROVIDER_TYPE_PREFIX,
    STACK_TYPE,
    ResourceState,
    Snapshot,
    is_secret,
    make_urn,
    now_rfc3339,
    urn_name,
    wrap_secret,
)


class DeploymentStoppedError(EngineError):
    """A registration after an earlier step failed; the update stops there."""


class Deployment:
    """RegistrationHandler that plans (preview) or applies (up) each resource."""

    def __init__(
        self,
        *,
        old: Snapshot,
        stack: str,
        project: str,
        providers: ProviderContext,
        display: Display,
        apply: bool,
    ) -> None:
        self.old = old
        self.stack = stack
        self.project = project
        self.providers = providers
        self.display = display
        self.apply = apply
        self.failure: Exception | None = None
        self.failed_urn = ""
        self.plugin_versions: dict[str, str] = {}
        self._old_by_urn = {resource.urn: resource for resource in old.resources}
        self._new: dict[str, ResourceState] = {}
        self._deleted: set[str] = set()
        self._lock = threading.Lock()

    # RegistrationHandler -------------------------------------------------------------

    def register_stack(self, urn: str) -> None:
        with self._lock:
            old = self._old_by_urn.get(urn)
            self._new[urn] = ResourceState(
                urn=urn,
                type=STACK_TYPE,
                custom=False,
                outputs=dict(old.outputs) if old else {},
                created=old.created if old else now_rfc3339(),
                modified=old.modified if old else now_rfc3339(),
            )
            self._record(
                "same" if old else "create",
                urn,
                STACK_TYPE,
                old_state=old,
                new_state=self._new[urn],
            )

    def register(self, registration: Registration) -> tuple[str, dict[str, Any]]:
        with self._lock:
            if self.failure is not None:
                raise DeploymentStoppedError(
                    f"{registration.urn} was not processed because an earlier step failed"
                )
            try:
                if not registration.custom:
                    return self._register_component(registration)
                return self._register_custom(registration)
            except Exception as error:
                self.failure = error
                self.failed_urn = registration.urn
                raise

    def register_outputs(self, urn: str, outputs: dict[str, Any]) -> None:
        with self._lock:
            if urn in self._new and self.apply:
                self._new[urn].outputs = outputs

    # Steps ---------------------------------------------------------------------------

    def _register_component(self, registration: Registration) -> tuple[str, dict[str, Any]]:
        old = self._old_by_urn.get(registration.urn)
        self._new[registration.urn] = ResourceState(
            urn=registration.urn,
            type=registration.type,
            custom=False,
            parent=registration.parent,
            outputs=dict(old.outputs) if old else {},
            dependencies=registration.dependencies,
            protect=registration.protect,
            created=old.created if old else now_rfc3339(),
            modified=old.modified if old else now_rfc3339(),
        )
        self._record(
            "same" if old else "create",
            registration.urn,
            registration.type,
            old_state=old,
            new_state=self._new[registration.urn],
        )
        return "", {}

    def _register_custom(self, registration: Registration) -> tuple[str, dict[str, Any]]:
        urn = registration.urn
        provider_reference = self._default_provider(registration)
        provider = provider_for(registration.type, self.providers)
        old = self._old_by_urn.get(urn)

        inputs = provider.check(urn, registration.inputs, old)
        changed: set[str] = set()
        if old is None:
            op = "create"
        else:
            inputs = _apply_ignore_changes(inputs, old.inputs, registration.ignore_changes)
            changed = provider.diff(old, inputs) - _top_level(registration.ignore_changes)
            if not changed:
                op = "same"
            elif changed & provider.replace_properties:
                op = "replace"
            else:
                op = "update"

        if self.apply:
            try:
                resource_id, outputs = self._apply_step(op, provider, urn, old, inputs, changed)
            except PartialUpdateError as error:
                # Part of the update reached AWS: the state records that part, so the next
                # `up` retries only the rest.
                # NOTE: how pulumi-aws records a partly applied update is unverified.
                self._new[urn] = dataclasses.replace(
                    old, inputs=error.inputs, outputs=error.outputs, modified=now_rfc3339()
                )
                raise
        else:
            resource_id, outputs = _planned_outputs(op, old, inputs)
        outputs = _mark_secret_outputs(outputs, inputs, registration.additional_secret_outputs)

        now = now_rfc3339()
        self._new[urn] = ResourceState(
            urn=urn,
            type=registration.type,
            custom=True,
            id=resource_id,
            parent=registration.parent,
            inputs=inputs,
            outputs=outputs,
            dependencies=registration.dependencies,
            property_dependencies=registration.property_dependencies,
            provider=provider_reference,
            protect=registration.protect,
            additional_secret_outputs=registration.additional_secret_outputs,
            created=old.created if old and op != "replace" else now,
            modified=old.modified if old and op == "same" else now,
        )
        self._record(
            op,
            urn,
            registration.type,
            changed,
            old.inputs if old else None,
            inputs,
            old_state=old,
            new_state=self._new[urn],
        )
        return resource_id, outputs

    def _apply_step(
        self,
        op: str,
        provider: ResourceProvider,
        urn: str,
        old: ResourceState | None,
        inputs: dict[str, Any],
        changed: set[str],
    ) -> tuple[str, dict[str, Any]]:
        if op == "same":
            return old.id, dict(old.outputs)
        if op == "update":
            return old.id, provider.update(old, inputs, changed)
        if op == "replace":
            if old.protect:
                raise EngineError(_protected_message(urn))
            provider.delete(old)
        return provider.create(urn, inputs)

    def _default_provider(self, registration: Registration) -> str:
        """Reference (`<urn>::<id>`) to the package's default provider, added on first use."""
        package = registration.package
        version = registration.provider_version
        name = f"default_{version.replace('.', '_')}" if version else "default"
        urn = make_urn(self.stack, self.project, f"{PROVIDER_TYPE_PREFIX}{package}", name)
        if urn not in self._new:
            if package == "aws":
                self.providers.configure(urn)
            old = self._old_by_urn.get(urn)
            inputs = {"region": self.providers.region}
            if version:
                inputs["version"] = version
                self.plugin_versions[package] = version
            self._new[urn] = ResourceState(
                urn=urn,
                type=f"{PROVIDER_TYPE_PREFIX}{package}",
                custom=True,
                id=old.id if old else str(uuid.uuid4()),
                inputs=inputs,
                outputs=dict(inputs),
                created=old.created if old else now_rfc3339(),
                modified=now_rfc3339(),
            )
        return f"{urn}::{self._new[urn].id}"

    def _record(
        self,
        op: str,
        urn: str,
        type_token: str,
        changed: set[str] | tuple[()] = (),
        old: dict[str, Any] | None = None,
        new: dict[str, Any] | None = None,
        *,
        old_state: ResourceState | None = None,
        new_state: ResourceState | None = None,
    ) -> None:
        self.display.step(
            op,
            type_token,
            urn_name(urn),
            changed=changed,
            old=old,
            new=new,
            urn=urn,
            old_state=old_state,
            new_state=new_state,
        )

    # Completion ----------------------------------------------------------------------

    def finish(self, result: ProgramResult) -> None:
        """Delete what the program no longer declares and set the stack outputs."""
        for old in reversed(self.old.resources):
            if old.urn in self._new or old.type.startswith(PROVIDER_TYPE_PREFIX):
                continue
            if old.protect:
                raise EngineError(_protected_message(old.urn))
            if self.apply and old.custom:
                provider_for(old.type, self.providers).delete(old)
            self._deleted.add(old.urn)
            self._record("delete", old.urn, old.type, old_state=old)

        root = self._new.get(result.stack_urn)
        if root is not None and self.apply:
            root.outputs = result.outputs
            root.modified = now_rfc3339()

    def new_snapshot(self, *, succeeded: bool) -> Snapshot:
        """State after the run. After a failure, untouched old resources are kept."""
        resources = list(self._new.values())
        if not succeeded:
            for old in self.old.resources:
                if old.urn not in self._new and old.urn not in self._deleted:
                    resources.append(old)
        return Snapshot(
            resources=resources,
            pending_operations=[],
            salt_state=self.old.salt_state,
            metadata=self.old.metadata,
            exists=True,
        )


def _apply_ignore_changes(
    inputs: dict[str, Any], old_inputs: dict[str, Any], ignore_changes: list[str]
) -> dict[str, Any]:
    """Keep the state's value of each ignored property, as Pulumi does before diffing."""
    result = dict(inputs)
    for key in _top_level(ignore_changes):
        if key in old_inputs:
            result[key] = old_inputs[key]
        else:
            result.pop(key, None)
    return result


def _top_level(paths: list[str]) -> set[str]:
    # NOTE: only whole top-level properties are ignored, so a nested path such as
    # `settings[0].value` ignores all of `settings`.
    return {path.split(".", 1)[0].split("[", 1)[0] for path in paths}


def _planned_outputs(
    op: str, old: ResourceState | None, inputs: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Outputs a preview hands the program: computed values of new resources are unknown."""
    if op == "same":
        return old.id, dict(old.outputs)
    if op == "update":
        return old.id, {**old.outputs, **inputs}
    return "", dict(inputs)


def _mark_secret_outputs(
    outputs: dict[str, Any], inputs: dict[str, Any], additional: list[str]
) -> dict[str, Any]:
    """Outputs of secret inputs and of `additionalSecretOutputs` stay secret."""
    secret_keys = set(additional) | {key for key, value in inputs.items() if is_secret(value)}
    marked = dict(outputs)
    for key in secret_keys:
        if key in marked and not is_secret(marked[key]):
            marked[key] = wrap_secret(marked[key])
    return marked


def _protected_message(urn: str) -> str:
    return (
        f'unable to delete resource "{urn}"\nas it is currently marked for protection. To '
        "unprotect the resource, either remove the `protect` flag from the resource in your "
        "Pulumi program and run `pulumi up`, or use the command:\n"
        f"`pulumi state unprotect '{urn}'`"
    )
