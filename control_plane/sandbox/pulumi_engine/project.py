"""Project file, per-stack config files and the selected stack, laid out as the CLI does."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .crypto import Crypter
from .errors import ConfigurationError, EngineError, StackNotFoundError

PROJECT_FILE_NAMES = ("Pulumi.yaml", "Pulumi.yml")


@dataclass(frozen=True)
class Project:
    """A Pulumi project: the directory that contains Pulumi.yaml."""

    directory: Path
    name: str
    project_file: Path

    def stack_file(self, stack: str) -> Path:
        return self.directory / f"Pulumi.{stack}.yaml"

    def full_key(self, key: str) -> str:
        """Return a config key with its namespace; a bare key belongs to the project."""
        return key if ":" in key else f"{self.name}:{key}"


def find_project(start: Path) -> Project:
    """Find Pulumi.yaml in `start` or a parent directory, as the CLI does."""
    directory = start.resolve()
    for candidate in (directory, *directory.parents):
        for file_name in PROJECT_FILE_NAMES:
            project_file = candidate / file_name
            if project_file.is_file():
                return _load_project(project_file)
    raise EngineError(
        f"no Pulumi.yaml project file found (searching upwards from {directory}). If you "
        "have not created a project yet, use `pulumi new` to do so: no project file found"
    )


def _load_project(project_file: Path) -> Project:
    data = yaml.safe_load(project_file.read_text()) or {}
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{project_file}: project is missing a 'name' attribute")
    return Project(directory=project_file.parent, name=name, project_file=project_file)


@dataclass
class StackConfigFile:
    """Contents of Pulumi.<stack>.yaml: config values, `encryptionsalt`, `secretsprovider`."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, project: Project, stack: str) -> StackConfigFile:
        path = project.stack_file(stack)
        if not path.exists():
            return cls(path=path)
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ConfigurationError(f"{path}: expected a YAML mapping at the top level")
        return cls(path=path, data=data)

    @property
    def config(self) -> dict[str, Any]:
        config = self.data.setdefault("config", {})
        if config is None:
            config = self.data["config"] = {}
        return config

    @property
    def encryption_salt(self) -> str | None:
        return self.data.get("encryptionsalt")

    @encryption_salt.setter
    def encryption_salt(self, value: str) -> None:
        self.data["encryptionsalt"] = value

    def save(self) -> None:
        # Comments in the file are not kept: PyYAML does not round-trip them.
        self.path.write_text(yaml.safe_dump(self.data, sort_keys=False, default_flow_style=False))

    def set_value(self, key: str, value: str) -> None:
        self.config[key] = value

    def set_secure(self, key: str, ciphertext: str) -> None:
        self.config[key] = {"secure": ciphertext}

    def is_secure(self, key: str) -> bool:
        value = self.config.get(key)
        return isinstance(value, dict) and "secure" in value

    def program_config(
        self, get_crypter: Callable[[], Crypter]
    ) -> tuple[dict[str, str], list[str]]:
        """Return the config as the language host passes it: plain strings and secret keys.

        `get_crypter` is called only when a secure value needs decrypting.
        """
        values: dict[str, str] = {}
        secret_keys: list[str] = []
        for key, value in self.config.items():
            if isinstance(value, dict) and "secure" in value:
                values[key] = get_crypter().decrypt(value["secure"])
                secret_keys.append(key)
            else:
                values[key] = _config_string(value)
        return values, secret_keys

    def encrypted_view(self) -> dict[str, Any]:
        """Config as recorded in update history: secure values stay encrypted."""
        return {
            key: value if isinstance(value, dict) else _config_string(value)
            for key, value in self.config.items()
        }


def _config_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)


def pulumi_home(environ: dict[str, str]) -> Path:
    home = environ.get("PULUMI_HOME")
    return Path(home) if home else Path.home() / ".pulumi"


def _workspace_file(project: Project, environ: dict[str, str]) -> Path:
    # Same naming as the CLI: <project>-<sha1 of the project file path>-workspace.json.
    digest = hashlib.sha1(str(project.project_file).encode()).hexdigest()
    return pulumi_home(environ) / "workspaces" / f"{project.name}-{digest}-workspace.json"


def read_selected_stack(project: Project, environ: dict[str, str]) -> str | None:
    path = _workspace_file(project, environ)
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("stack") or None


def write_selected_stack(project: Project, environ: dict[str, str], stack: str) -> None:
    path = _workspace_file(project, environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"stack": stack}, indent=4) + "\n")


def resolve_stack(project: Project, environ: dict[str, str], stack_option: str | None) -> str:
    """Return the `--stack` value, or the selected stack; raise when there is neither."""
    if stack_option:
        return _short_stack_name(stack_option, project)
    selected = read_selected_stack(project, environ)
    if selected:
        return selected
    raise StackNotFoundError(
        "no stack selected; please use `pulumi stack select` or `pulumi stack init` to "
        "select or create a stack"
    )


def _short_stack_name(stack: str, project: Project) -> str:
    """Accept `dev`, `webapp/dev` and `organization/webapp/dev`."""
    parts = stack.split("/")
    if len(parts) == 1:
        return parts[0]
    if len(parts) in (2, 3) and parts[-2] == project.name:
        return parts[-1]
    raise ConfigurationError(
        f"stack {stack!r} does not belong to project {project.name!r} (Pulumi.yaml)"
    )


def working_directory(cwd_option: str | None) -> Path:
    return Path(cwd_option) if cwd_option else Path(os.getcwd())
