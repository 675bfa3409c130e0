"""Commands that read or select stacks and edit stack config."""

from __future__ import annotations

import json
from typing import Any, TextIO

from .context import CLI_VERSION, EngineContext
from .crypto import read_passphrase
from .errors import EngineError, StackNotFoundError
from .project import read_selected_stack, write_selected_stack
from .state import SECRET_SIG, SECRET_SIG_KEY, empty_checkpoint, is_secret, unwrap_secrets


def version() -> None:
    print(f"v{CLI_VERSION}")


def stack_ls(ctx: EngineContext, *, as_json: bool) -> None:
    backend = ctx.backend
    selected = read_selected_stack(ctx.project, ctx.environ)
    summaries = []
    for name in backend.list_stacks():
        latest = (backend.read_checkpoint(name).get("checkpoint") or {}).get("latest") or {}
        summary: dict[str, Any] = {
            "name": name,
            "current": name == selected,
            "updateInProgress": backend.is_locked(name),
            "url": backend.url.object_url(backend.stack_key(name)[len(backend.url.prefix) :]),
        }
        if latest:
            summary["lastUpdate"] = (latest.get("manifest") or {}).get("time")
            summary["resourceCount"] = len(latest.get("resources") or [])
        summaries.append(summary)

    if as_json:
        print(json.dumps(summaries, indent=4))
        return
    print("NAME  LAST UPDATE  RESOURCE COUNT")
    for summary in summaries:
        marker = "*" if summary["current"] else ""
        print(
            f"{summary['name']}{marker}  {summary.get('lastUpdate') or 'n/a'}  "
            f"{summary.get('resourceCount', 'n/a')}"
        )


def stack_select(ctx: EngineContext, name: str, *, create: bool) -> None:
    if not ctx.backend.stack_exists(name):
        if not create:
            raise StackNotFoundError(f"no stack named '{name}' found")
        _create_stack(ctx, name)
    write_selected_stack(ctx.project, ctx.environ, name)


def stack_init(ctx: EngineContext, name: str) -> None:
    if ctx.backend.stack_exists(name):
        raise EngineError(f"stack '{name}' already exists")
    _create_stack(ctx, name)
    write_selected_stack(ctx.project, ctx.environ, name)


def _create_stack(ctx: EngineContext, name: str) -> None:
    backend = ctx.backend
    backend.lock(name)
    try:
        if backend.stack_exists(name):
            raise EngineError(f"stack '{name}' already exists")
        backend.write_checkpoint(name, empty_checkpoint(backend.fully_qualified_name(name)))
    finally:
        backend.unlock(name)
    print(f"Created stack '{name}'", flush=True)


def stack_show_name(ctx: EngineContext) -> None:
    print(ctx.require_stack())


def stack_export(ctx: EngineContext, *, show_secrets: bool, out: TextIO | None = None) -> None:
    """Print `{"version": 3, "deployment": <latest>}`, secrets encrypted unless asked."""
    checkpoint = ctx.backend.read_checkpoint(ctx.require_stack())
    latest = (checkpoint.get("checkpoint") or {}).get("latest") or {"resources": []}
    if show_secrets:
        salt = ((latest.get("secrets_providers") or {}).get("state") or {}).get("salt")
        latest = _reveal(latest, lambda ciphertext: ctx.crypter_for(salt).decrypt(ciphertext))
    print(json.dumps({"version": 3, "deployment": latest}, indent=4), file=out)


def _reveal(value: Any, decrypt) -> Any:
    if (
        isinstance(value, dict)
        and value.get(SECRET_SIG_KEY) == SECRET_SIG
        and "ciphertext" in value
    ):
        return {SECRET_SIG_KEY: SECRET_SIG, "plaintext": decrypt(value["ciphertext"])}
    if isinstance(value, dict):
        return {key: _reveal(item, decrypt) for key, item in value.items()}
    if isinstance(value, list):
        return [_reveal(item, decrypt) for item in value]
    return value


def stack_output(
    ctx: EngineContext, name: str | None, *, as_json: bool, show_secrets: bool
) -> None:
    outputs = ctx.load_snapshot().outputs
    visible = {
        key: unwrap_secrets(value) if show_secrets or not is_secret(value) else "[secret]"
        for key, value in outputs.items()
    }
    if name is not None:
        if name not in visible:
            raise EngineError(f"current stack does not have output property '{name}'")
        value = visible[name]
        print(json.dumps(value, indent=2) if as_json or not isinstance(value, str) else value)
        return
    if as_json:
        print(json.dumps(visible, indent=2, sort_keys=True))
        return
    print(f"Current stack outputs ({len(visible)}):")
    print("    OUTPUT  VALUE")
    for key in sorted(visible):
        value = visible[key]
        print(f"    {key}  {value if isinstance(value, str) else json.dumps(value)}")


def config_set(
    ctx: EngineContext, key: str, value: str | None, *, secret: bool, stdin: TextIO
) -> None:
    """Set a config value; without VALUE it is read from stdin, so it stays out of argv."""
    ctx.require_stack()
    full_key = ctx.project.full_key(key)
    if value is None:
        # One trailing line break (from `echo` or a heredoc) is not part of the value.
        value = stdin.read().removesuffix("\n").removesuffix("\r")

    config_file = ctx.stack_config
    if secret:
        read_passphrase(ctx.environ)
        config_file.set_secure(full_key, ctx.config_crypter().encrypt(value))
    else:
        config_file.set_value(full_key, value)
    config_file.save()


def config_get(ctx: EngineContext, key: str, *, as_json: bool) -> None:
    stack = ctx.require_stack()
    full_key = ctx.project.full_key(key)
    config_file = ctx.stack_config
    if full_key not in config_file.config:
        raise EngineError(f"configuration key '{full_key}' not found for stack '{stack}'")

    secret = config_file.is_secure(full_key)
    values, _ = config_file.program_config(ctx.config_crypter)
    value = values[full_key]
    if as_json:
        print(json.dumps({"value": value, "secret": secret}, indent=2))
    else:
        print(value)
