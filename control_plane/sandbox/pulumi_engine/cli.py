"""Command line of the sandbox engine: the subset of `pulumi` the deployment runner uses.

Flags are parsed as the CLI does (pflag style: `--flag value`, `--flag=value`, short
forms, flags anywhere after the command). Errors print `error: <message>` on stderr and
exit with the CLI's code for that error class.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from . import stacks
from .aws import require_loopback_endpoint
from .context import EngineContext
from .errors import EXIT_INTERNAL, EngineError, UsageError
from .simulation import parse_simulations, preview_output_kib

VALUE_FLAGS = {
    "--stack": "stack",
    "-s": "stack",
    "--cwd": "cwd",
    "-C": "cwd",
    "--target": "target",
    "-t": "target",
    "--color": "color",
    "--message": "message",
    "-m": "message",
    "--parallel": "parallel",
    "-p": "parallel",
    "--import-pending-creates": "import_pending_creates",
}
# Value flags that may repeat. Each occurrence adds one value, as with cobra's StringArray.
REPEATED_FLAGS = {"target", "import_pending_creates"}
BOOL_FLAGS = {
    "--yes": "yes",
    "-y": "yes",
    "--skip-preview": "skip_preview",
    "-f": "skip_preview",
    "--refresh": "refresh",
    "-r": "refresh",
    "--diff": "diff",
    "--expect-no-changes": "expect_no_changes",
    "--json": "json",
    "-j": "json",
    "--show-secrets": "show_secrets",
    "--secret": "secret",
    "--plaintext": "plaintext",
    "--force": "force",
    "--create": "create",
    "-c": "create",
    "--show-name": "show_name",
    "--target-dependents": "target_dependents",
    "--clear-pending-creates": "clear_pending_creates",
    "--non-interactive": "non_interactive",
    "--suppress-outputs": "suppress_outputs",
    "--suppress-progress": "suppress_progress",
    "--suppress-permalink": "suppress_permalink",
    "--emoji": "emoji",
}
# Flags every command accepts.
GLOBAL_OPTIONS = {"stack", "cwd", "color", "non_interactive", "emoji", "suppress_progress"}


@dataclass
class Options:
    """Parsed flags. `positionals` contains the command words and arguments."""

    positionals: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    repeated: dict[str, list[str]] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    def has(self, name: str) -> bool:
        return name in self.flags


def parse_args(argv: list[str]) -> Options:
    options = Options()
    tokens = list(argv)
    while tokens:
        token = tokens.pop(0)
        if token == "--":
            options.positionals.extend(tokens)
            break
        if not token.startswith("-") or token == "-":
            options.positionals.append(token)
            continue

        name, has_value, inline_value = token.partition("=")
        if name in VALUE_FLAGS:
            if has_value:
                value = inline_value
            elif tokens:
                value = tokens.pop(0)
            else:
                raise UsageError(f"flag needs an argument: {name}")
            key = VALUE_FLAGS[name]
            if key == "target":
                options.targets.append(value)
            if key in REPEATED_FLAGS:
                options.repeated.setdefault(key, []).append(value)
            options.values[key] = value
        elif name in BOOL_FLAGS:
            if not has_value or inline_value.lower() in ("true", "1"):
                options.flags.add(BOOL_FLAGS[name])
        else:
            raise UsageError(f"unknown flag: {name}")
    return options


class _LazyOperations:
    """The operations module, imported on first use: it imports the Pulumi SDK, which
    commands such as `stack --show-name` do not need."""

    def __getattr__(self, name: str):
        from . import operations

        return getattr(operations, name)


operations = _LazyOperations()


@dataclass(frozen=True)
class Command:
    """A command word path, the flags it accepts, and how many arguments it takes."""

    run: Callable[[EngineContext, Options, list[str], TextIO], None]
    options: frozenset[str]
    min_args: int = 0
    max_args: int = 0


def _cmd(run, options=(), min_args=0, max_args=0) -> Command:
    return Command(run, frozenset(options) | GLOBAL_OPTIONS, min_args, max_args)


COMMANDS: dict[tuple[str, ...], Command] = {
    ("version",): _cmd(lambda ctx, o, a, i: stacks.version()),
    ("stack", "ls"): _cmd(
        lambda ctx, o, a, i: stacks.stack_ls(ctx, as_json=o.has("json")), {"json"}
    ),
    ("stack", "select"): _cmd(
        lambda ctx, o, a, i: stacks.stack_select(
            ctx, a[0] if a else o.values.get("stack", ""), create=o.has("create")
        ),
        {"create"},
        max_args=1,
    ),
    ("stack", "init"): _cmd(
        lambda ctx, o, a, i: stacks.stack_init(ctx, a[0] if a else o.values.get("stack", "")),
        max_args=1,
    ),
    ("stack",): _cmd(lambda ctx, o, a, i: _stack(ctx, o), {"show_name"}),
    ("stack", "export"): _cmd(
        lambda ctx, o, a, i: stacks.stack_export(ctx, show_secrets=o.has("show_secrets")),
        {"show_secrets"},
    ),
    ("stack", "output"): _cmd(
        lambda ctx, o, a, i: stacks.stack_output(
            ctx, a[0] if a else None, as_json=o.has("json"), show_secrets=o.has("show_secrets")
        ),
        {"json", "show_secrets"},
        max_args=1,
    ),
    ("config", "set"): _cmd(
        lambda ctx, o, a, i: stacks.config_set(
            ctx, a[0], a[1] if len(a) > 1 else None, secret=o.has("secret"), stdin=i
        ),
        {"secret", "plaintext"},
        min_args=1,
        max_args=2,
    ),
    ("config", "get"): _cmd(
        lambda ctx, o, a, i: stacks.config_get(ctx, a[0], as_json=o.has("json")),
        {"json"},
        min_args=1,
        max_args=1,
    ),
    ("preview",): _cmd(
        lambda ctx, o, a, i: operations.preview(
            ctx,
            refresh=o.has("refresh"),
            show_diff=o.has("diff"),
            expect_no_changes=o.has("expect_no_changes"),
            as_json=o.has("json"),
        ),
        {
            "refresh",
            "diff",
            "expect_no_changes",
            "json",
            "message",
            "parallel",
            "suppress_outputs",
            "suppress_permalink",
        },
    ),
    ("up",): _cmd(
        lambda ctx, o, a, i: operations.up(
            ctx,
            yes=o.has("yes"),
            skip_preview=o.has("skip_preview"),
            refresh=o.has("refresh"),
            show_diff=o.has("diff"),
            expect_no_changes=o.has("expect_no_changes"),
        ),
        {
            "yes",
            "skip_preview",
            "refresh",
            "diff",
            "expect_no_changes",
            "message",
            "parallel",
            "suppress_outputs",
            "suppress_permalink",
        },
    ),
    ("refresh",): _cmd(
        lambda ctx, o, a, i: operations.refresh(
            ctx,
            yes=o.has("yes"),
            targets=o.targets,
            clear_pending_creates=o.has("clear_pending_creates"),
            import_pending_creates=o.repeated.get("import_pending_creates", []),
            expect_no_changes=o.has("expect_no_changes"),
            show_diff=o.has("diff"),
        ),
        {
            "yes",
            "skip_preview",
            "target",
            "clear_pending_creates",
            "import_pending_creates",
            "expect_no_changes",
            "diff",
            "message",
            "parallel",
            "suppress_outputs",
            "suppress_permalink",
        },
    ),
    ("state", "delete"): _cmd(
        lambda ctx, o, a, i: operations.state_delete(
            ctx,
            a[0],
            yes=o.has("yes"),
            force=o.has("force"),
            target_dependents=o.has("target_dependents"),
        ),
        {"yes", "force", "target_dependents"},
        min_args=1,
        max_args=1,
    ),
    ("cancel",): _cmd(
        lambda ctx, o, a, i: operations.cancel(
            ctx, yes=o.has("yes"), stack=a[0] if a else o.values.get("stack")
        ),
        {"yes"},
        max_args=1,
    ),
}
ALIASES = {
    ("update",): ("up",),
    ("state", "rm"): ("state", "delete"),
    ("state", "remove"): ("state", "delete"),
    ("stack", "list"): ("stack", "ls"),
}


def _stack(ctx: EngineContext, options: Options) -> None:
    if not options.has("show_name"):
        raise UsageError("the sandbox engine supports `pulumi stack` only with --show-name")
    stacks.stack_show_name(ctx)


def _find_command(positionals: list[str]) -> tuple[Command, list[str]]:
    for length in (2, 1):
        words = tuple(positionals[:length])
        words = ALIASES.get(words, words)
        if len(positionals) >= length and words in COMMANDS:
            return COMMANDS[words], positionals[length:]
    if not positionals:
        raise UsageError("a command is required, e.g. `pulumi up`")
    raise UsageError(f'unknown command "{" ".join(positionals[:2])}" for "pulumi"')


def main(
    argv: list[str] | None = None,
    environ: dict[str, str] | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run one command and return its exit code."""
    argv = sys.argv[1:] if argv is None else argv
    environ = dict(os.environ) if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    try:
        endpoint_url = require_loopback_endpoint(environ)
        parse_simulations(environ)
        preview_output_kib(environ)
        options = parse_args(argv)
        command, arguments = _find_command(options.positionals)
        unsupported = (options.flags | set(options.values)) - command.options
        if unsupported:
            flag = sorted(unsupported)[0].replace("_", "-")
            raise UsageError(f"unknown flag: --{flag}")
        if not command.min_args <= len(arguments) <= command.max_args:
            raise UsageError(
                f"expected {command.min_args} to {command.max_args} argument(s), "
                f"got {len(arguments)}: {' '.join(arguments) or '(none)'}"
            )

        context = EngineContext(
            environ, endpoint_url, cwd=options.values.get("cwd"), stack=options.values.get("stack")
        )
        command.run(context, options, arguments, stdin)
    except EngineError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return error.exit_code
    except Exception as error:
        print(f"error: internal error in the sandbox Pulumi engine: {error!r}", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        sys.stdout.flush()
    return 0
