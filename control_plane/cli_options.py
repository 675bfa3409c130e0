"""Options that several `control-plane` commands share: the environments file and --environment.

The CLI reads the environments file named by `--environments-file`, else by the
ENVIRONMENTS_FILE variable (the name the Lambda functions use), else the repository's
environments.yaml. Every command that takes `--environment` checks the name against that file
before it calls AWS, so a typo fails at once with the list of known names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from lambdas.common.settings import (
    ENVIRONMENT_NAME_PATTERN,
    EnvironmentSettings,
    Settings,
    SettingsError,
    load_settings,
)

from .sandbox.template import REPO_ROOT

ENVIRONMENTS_FILE_VARIABLE = "ENVIRONMENTS_FILE"
DEFAULT_ENVIRONMENTS_FILE = REPO_ROOT / "environments.yaml"
_META_KEY = "control_plane.environments_file"


def remember_environments_file(context: click.Context, path: Path | None) -> None:
    """Keep the --environments-file value for the subcommand that runs."""
    context.meta[_META_KEY] = path


def environments_file() -> Path:
    """Return the environments file of this invocation."""
    context = click.get_current_context(silent=True)
    chosen = context.meta.get(_META_KEY) if context is not None else None
    if chosen is not None:
        return Path(chosen)
    from_variable = os.environ.get(ENVIRONMENTS_FILE_VARIABLE)
    return Path(from_variable) if from_variable else DEFAULT_ENVIRONMENTS_FILE


def load_cli_settings() -> Settings:
    """Load the environments file; raise click.UsageError naming the file and the problem."""
    path = environments_file()
    try:
        return load_settings(path)
    except SettingsError as problem:
        raise click.UsageError(
            f"{problem}\n(environments file: {path}; choose another with --environments-file "
            f"or {ENVIRONMENTS_FILE_VARIABLE})"
        ) from None


def environment_settings(name: str) -> EnvironmentSettings:
    """Return the settings of environment `name`; raise click.BadParameter when it is undefined."""
    settings = load_cli_settings()
    try:
        return settings.environment(name)
    except SettingsError as problem:
        raise click.BadParameter(
            f"{problem} in {environments_file()}", param_hint="'--environment'"
        ) from None


def _check_environment(context: click.Context, parameter: click.Parameter, value: str) -> str:
    if not ENVIRONMENT_NAME_PATTERN.fullmatch(value):
        raise click.BadParameter(
            f"{value[:40]!r} is not an environment name: 1 to 31 lowercase letters, digits and "
            "dashes, starting with a letter, as in environments.yaml"
        )
    environment_settings(value)
    return value


def environment_option(help_text: str) -> Any:
    """Return the --environment/-e option, checked against the environments file."""
    return click.option(
        "--environment", "-e", required=True, callback=_check_environment, help=help_text
    )


def output_option(function: Any) -> Any:
    """Add --output text|json to a command."""
    return click.option(
        "--output",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Print text for people or one JSON document for scripts.",
    )(function)


def print_json(document: Any) -> None:
    """Print one JSON document, the result of a command run with --output json."""
    click.echo(json.dumps(document, indent=2, default=str))


def check_sandbox_environment(name: str) -> None:
    """Raise click.BadParameter when the sandbox, built from the repository's environments.yaml,
    does not manage environment `name` that another environments file defines."""
    if environments_file().resolve() == DEFAULT_ENVIRONMENTS_FILE.resolve():
        return
    if name in load_settings(DEFAULT_ENVIRONMENTS_FILE).environments:
        return
    raise click.BadParameter(
        f"environment {name!r} is defined in {environments_file()} but not in "
        f"{DEFAULT_ENVIRONMENTS_FILE}, which the sandbox's stack and tasks are built from; add it "
        "there to try it in the sandbox",
        param_hint="'--environment'",
    )
