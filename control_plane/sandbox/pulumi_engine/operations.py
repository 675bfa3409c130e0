"""Commands that change or plan infrastructure: preview, up, refresh, state delete, cancel."""

from __future__ import annotations

import dataclasses
import io
import sys
import time
import traceback

from .context import EngineContext
from .deployment import Deployment
from .digest import PreviewDigest
from .display import Display
from .errors import EngineError, NoChangesExpectedError, ProviderError, UsageError
from .program import ProgramResult, run_program
from .refresh import refresh_snapshot
from .simulation import preview_output_kib, program_output_lines
from .state import STACK_TYPE, Snapshot, make_urn, urn_name, urn_qualified_type

YES_REQUIRED = "--yes must be passed in to proceed when running in non-interactive mode"


def preview(
    ctx: EngineContext,
    *,
    refresh: bool = False,
    show_diff: bool = False,
    expect_no_changes: bool = False,
    as_json: bool = False,
    operation: str = "preview",
) -> None:
    """Plan the update without changing anything; with `expect_no_changes`, fail with
    exit code 7 when the plan has changes.

    With `as_json` the text output is replaced by one JSON document (see `digest`), which is
    printed after failures too, with the failure in its diagnostics.
    """
    stack = ctx.require_stack()
    digest = PreviewDigest() if as_json else None
    out = io.StringIO() if as_json else None
    display = Display(applied=False, show_diff=show_diff, out=out, digest=digest)
    display.line(f"Previewing update ({stack}):")
    display.line()

    snapshot = ctx.load_snapshot()
    _warn_pending_operations(display, snapshot)
    if digest is not None:
        digest.config = _blinded_config(ctx)
    deployment: Deployment | None = None
    try:
        if refresh:
            # NOTE: changes found by the refresh alone (such as a new deployed version) are
            # shown but not counted. A resource that the refresh drops shows up as a create.
            snapshot = refresh_snapshot(
                snapshot, ctx.provider_context, Display(applied=False, out=display.out)
            )
        deployment = _new_deployment(ctx, snapshot, display, apply=False)
        result = _run(ctx, deployment, preview=True)
        deployment.finish(result)
    except Exception as error:
        _report_failure(ctx, display, deployment, error)
        if digest is not None:
            digest.print()
        raise EngineError("preview failed") from error

    _print_program_output(ctx, display, program_output_lines(preview_output_kib(ctx.environ)))
    display.outputs(result.outputs)
    display.summary()
    if digest is not None:
        digest.print()
    if expect_no_changes and display.has_changes():
        raise NoChangesExpectedError(
            f"no changes were expected for {operation} but changes were proposed"
        )


def _blinded_config(ctx: EngineContext) -> dict[str, str]:
    """Return the stack config for the digest, with secret values shown as "[secret]"."""
    values, secret_keys = ctx.program_config()
    return {
        key: "[secret]" if key in secret_keys else str(value)
        for key, value in sorted(values.items())
    }


def up(
    ctx: EngineContext,
    *,
    yes: bool,
    skip_preview: bool = False,
    refresh: bool = False,
    show_diff: bool = False,
    expect_no_changes: bool = False,
) -> None:
    """Apply the program: create, update and delete resources, then save the state."""
    if not yes:
        raise UsageError(YES_REQUIRED)
    stack = ctx.require_stack()

    ctx.backend.lock(stack)
    try:
        if expect_no_changes or not skip_preview:
            preview(
                ctx,
                refresh=refresh,
                show_diff=show_diff,
                expect_no_changes=expect_no_changes,
                operation="update",
            )
            print(flush=True)
        _update(ctx, stack, refresh=refresh, show_diff=show_diff)
    finally:
        ctx.backend.unlock(stack)


def _update(ctx: EngineContext, stack: str, *, refresh: bool, show_diff: bool) -> None:
    start = time.time()
    display = Display(applied=True, show_diff=show_diff)
    display.line(f"Updating ({stack}):")
    display.line()

    snapshot = ctx.load_snapshot()
    _warn_pending_operations(display, snapshot)
    if refresh:
        snapshot = refresh_snapshot(
            snapshot, ctx.provider_context, Display(applied=True, out=display.out)
        )

    deployment = _new_deployment(ctx, snapshot, display, apply=True)
    failure: Exception | None = None
    result: ProgramResult | None = None
    try:
        result = _run(ctx, deployment, preview=False)
        deployment.finish(result)
    except Exception as error:
        failure = error

    ctx.plugin_versions.update(deployment.plugin_versions)
    ctx.save_snapshot(deployment.new_snapshot(succeeded=failure is None))
    info = ctx.update_info("update", start, failure is None, display.change_counts())
    ctx.backend.add_history(stack, info)
    ctx.backend.write_backup(stack)

    if failure is not None or result is None:
        _report_failure(ctx, display, deployment, failure)
        display.summary()
        raise EngineError("update failed") from failure

    display.outputs(result.outputs)
    display.summary()
    display.line()
    display.line(f"Duration: {max(1, round(time.time() - start))}s")


def refresh(
    ctx: EngineContext,
    *,
    yes: bool,
    targets: list[str],
    clear_pending_creates: bool = False,
    import_pending_creates: list[str] | None = None,
    expect_no_changes: bool = False,
    show_diff: bool = False,
) -> None:
    """Read resources back from AWS and save what changed (all, or only `targets`).

    `import_pending_creates` is a flat list of URN and ID pairs: each pending create of a
    listed URN becomes a resource with that ID, read from AWS like the others.
    """
    pairs = list(import_pending_creates or [])
    if len(pairs) % 2:
        raise UsageError("each URN must be followed by an ID: found an odd number of entries")
    if not yes:
        raise UsageError(YES_REQUIRED)
    stack = ctx.require_stack()

    ctx.backend.lock(stack)
    try:
        start = time.time()
        display = Display(applied=True, show_diff=show_diff)
        display.line(f"Refreshing ({stack}):")
        display.line()

        snapshot = ctx.load_snapshot()
        snapshot, imported = _import_pending_creates(ctx, display, snapshot, pairs)
        snapshot = _handle_pending_creates(display, snapshot, clear=clear_pending_creates)
        known = {resource.urn for resource in snapshot.resources}
        for target in targets:
            if target not in known:
                display.warning(f"Resource to refresh '{target}' could not be found in the stack.")
        refresh_targets = set(targets) | set(imported) if targets else None
        refreshed = refresh_snapshot(
            snapshot, ctx.provider_context, display, targets=refresh_targets
        )
        found = {resource.urn for resource in refreshed.resources}
        for urn, resource_id in imported.items():
            if urn not in found:
                raise EngineError(
                    f"importing pending create {urn} failed: resource '{resource_id}' does "
                    "not exist"
                )
        # Like the CLI's refresh, this one clears pending updates, deletes and reads; pending
        # creates stay unless the flags above handled them.
        refreshed = dataclasses.replace(
            refreshed,
            pending_operations=[
                op for op in refreshed.pending_operations if op.get("type") == "creating"
            ],
        )
        if expect_no_changes and display.has_changes():
            display.summary()
            raise NoChangesExpectedError(
                "no changes were expected for refresh but changes were proposed"
            )

        ctx.save_snapshot(refreshed)
        info = ctx.update_info("refresh", start, True, display.change_counts())
        ctx.backend.add_history(stack, info)
        ctx.backend.write_backup(stack)
        display.summary()
        display.line()
        display.line(f"Duration: {max(1, round(time.time() - start))}s")
    finally:
        ctx.backend.unlock(stack)


def state_delete(
    ctx: EngineContext,
    urn: str,
    *,
    yes: bool,
    force: bool = False,
    target_dependents: bool = False,
) -> None:
    """Remove a resource from the state without touching the resource itself."""
    if not yes:
        raise UsageError(YES_REQUIRED)
    stack = ctx.require_stack()

    ctx.backend.lock(stack)
    try:
        snapshot = ctx.load_snapshot()
        resource = snapshot.find(urn)
        if resource is None:
            raise EngineError(f'No such resource "{urn}" exists in the current state')
        if resource.protect and not force:
            raise EngineError(
                f"{urn} can't be safely deleted because it is protected. Re-run this command "
                "with --force to force deletion"
            )

        doomed = _with_dependents(snapshot, urn)
        dependents = [other for other in doomed if other != urn]
        if dependents and not target_dependents:
            listing = "\n".join(f"  * {other}" for other in dependents)
            raise EngineError(
                f"{urn} can't be safely deleted because the following resources depend on "
                f"it:\n{listing}\n\nDelete those resources first or pass --target-dependents."
            )

        remaining = [r for r in snapshot.resources if r.urn not in doomed]
        ctx.save_snapshot(dataclasses.replace(snapshot, resources=remaining))
        print("Resource deleted", flush=True)
    finally:
        ctx.backend.unlock(stack)


def cancel(ctx: EngineContext, *, yes: bool, stack: str | None) -> None:
    """Delete every lock file of the stack, as `pulumi cancel` does on a DIY backend."""
    if not yes:
        raise UsageError(YES_REQUIRED)
    name = stack or ctx.require_stack()
    ctx.backend.cancel(name)
    print(f"The currently running update for '{name}' has been canceled!", flush=True)


# Helpers ---------------------------------------------------------------------------------


def _new_deployment(
    ctx: EngineContext, snapshot: Snapshot, display: Display, *, apply: bool
) -> Deployment:
    return Deployment(
        old=snapshot,
        stack=ctx.stack,
        project=ctx.project.name,
        providers=ctx.provider_context,
        display=display,
        apply=apply,
    )


def _run(ctx: EngineContext, deployment: Deployment, *, preview: bool) -> ProgramResult:
    config, secret_keys = ctx.program_config()
    return run_program(ctx.project, ctx.stack, config, secret_keys, deployment, preview=preview)


def _report_failure(
    ctx: EngineContext,
    display: Display,
    deployment: Deployment | None,
    error: Exception | None,
) -> None:
    """Print the failure under "Diagnostics:", attributed to the resource that failed."""
    cause = (deployment.failure if deployment is not None else None) or error
    if isinstance(cause, EngineError):
        message = str(cause)
    else:
        lines = traceback.format_exception_only(type(cause), cause) if cause else ["unknown"]
        message = "".join(lines).strip()

    owner_urn = make_urn(ctx.stack, ctx.project.name, STACK_TYPE, f"{ctx.project.name}-{ctx.stack}")
    if isinstance(cause, ProviderError) and cause.urn:
        owner_urn = cause.urn
    elif isinstance(cause, ProviderError) and deployment is not None and deployment.failed_urn:
        owner_urn = deployment.failed_urn
    owner = f"{urn_qualified_type(owner_urn).rsplit('$', 1)[-1]} ({urn_name(owner_urn)})"

    display.line()
    display.line("Diagnostics:")
    display.line(f"  {owner}:")
    first, *rest = message.splitlines() or [""]
    display.line(f"    error: {first}")
    for line in rest:
        display.line(f"    {line}")
    if display.digest is not None:
        display.digest.add_diagnostic("error", message, owner_urn)


def _print_program_output(ctx: EngineContext, display: Display, lines: list[str]) -> None:
    """Show what the program printed as the CLI does: `info` diagnostics of the root stack."""
    if not lines:
        return
    stack_name = f"{ctx.project.name}-{ctx.stack}"
    display.line()
    display.line("Diagnostics:")
    display.line(f"  pulumi:pulumi:Stack ({stack_name}):")
    for line in lines:
        display.line(f"    {line}")
    if display.digest is not None:
        urn = make_urn(ctx.stack, ctx.project.name, STACK_TYPE, stack_name)
        for line in lines:
            display.digest.add_diagnostic("info", line, urn)


def _warn_pending_operations(display: Display, snapshot: Snapshot) -> None:
    if not snapshot.pending_operations:
        return
    listing = "\n".join(
        f"  * {op.get('resource', {}).get('urn')}, interrupted while {op.get('type')}"
        for op in snapshot.pending_operations
    )
    display.warning(
        f"Attempting to deploy or update resources with {len(snapshot.pending_operations)} "
        f"pending operations from previous deployment.\n{listing}\n"
        "These resources are in an unknown state because the Pulumi CLI was interrupted "
        "while waiting for changes to these resources to complete. Once you have confirmed "
        "the status of the interrupted operations, you can repair your stack using "
        "`pulumi refresh` which will refresh the state from the provider you are using and "
        "clear the pending operations if there are any.\n\nNote that `pulumi refresh` will "
        "need to be run interactively to clear pending CREATE operations."
    )


def _import_pending_creates(
    ctx: EngineContext, display: Display, snapshot: Snapshot, pairs: list[str]
) -> tuple[Snapshot, dict[str, str]]:
    """Turn the pending creates named in `pairs` into resources with the given IDs.

    Returns the new snapshot and the imported URNs with their IDs. A URN without a pending
    create gets the CLI's warning on stderr.
    """
    wanted = dict(zip(pairs[::2], pairs[1::2], strict=True))
    if not wanted:
        return snapshot, {}
    imported: dict[str, str] = {}
    resources = list(snapshot.resources)
    remaining = []
    for op in snapshot.pending_operations:
        raw = op.get("resource") or {}
        urn = raw.get("urn")
        if op.get("type") != "creating" or urn not in wanted or urn in imported:
            remaining.append(op)
            continue
        resource = ctx.resource_from_checkpoint(raw, snapshot.salt_state)
        resource = dataclasses.replace(resource, id=wanted[urn], custom=True)
        resources.append(resource)
        imported[urn] = resource.id
        display.line(f"Importing pending create {urn} with ID {resource.id}")
    for urn in wanted:
        if urn not in imported:
            print(f'warning: "{urn}" did not correspond to a pending create', file=sys.stderr)
    snapshot = dataclasses.replace(snapshot, resources=resources, pending_operations=remaining)
    return snapshot, imported


def _handle_pending_creates(display: Display, snapshot: Snapshot, *, clear: bool) -> Snapshot:
    creates = [op for op in snapshot.pending_operations if op.get("type") == "creating"]
    if not creates:
        return snapshot
    if not clear:
        display.warning(
            f"{len(creates)} pending CREATE operation(s) were kept; pass "
            "--clear-pending-creates to drop them from the state"
        )
        return snapshot
    for op in creates:
        display.line(f"Clearing pending create: {op.get('resource', {}).get('urn')}")
    remaining = [op for op in snapshot.pending_operations if op.get("type") != "creating"]
    return dataclasses.replace(snapshot, pending_operations=remaining)


def _with_dependents(snapshot: Snapshot, urn: str) -> list[str]:
    """`urn` and, transitively, every resource that depends on it or is its child."""
    doomed = [urn]
    changed = True
    while changed:
        changed = False
        for resource in snapshot.resources:
            if resource.urn in doomed:
                continue
            references = set(resource.dependencies) | {resource.parent}
            for urns in resource.property_dependencies.values():
                references |= set(urns)
            if resource.provider:
                references.add(resource.provider.rsplit("::", 1)[0])
            if references & set(doomed):
                doomed.append(resource.urn)
                changed = True
    return doomed
