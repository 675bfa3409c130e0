"""Run the real Pulumi program in-process under Pulumi's mock runtime.

The mock monitor hands every resource registration to a RegistrationHandler, which plans
or applies it and returns the resource's id and outputs to the program, as the engine's
resource monitor does for a real `pulumi up`. Registrations arrive on worker threads, in
dependency order: a resource registers only after the outputs it consumes have resolved.
"""

from __future__ import annotations

import os
import runpy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pulumi
import yaml
from pulumi.output import Unknown
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from .errors import ProgramError
from .project import Project
from .state import STACK_TYPE, child_qualified_type, make_urn, wrap_secret


@dataclass
class Registration:
    """One RegisterResource request of the program, with its options."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    ignore_changes: list[str] = field(default_factory=list)
    additional_secret_outputs: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    provider_version: str = ""

    @property
    def package(self) -> str:
        return self.type.split(":", 1)[0]


class RegistrationHandler(Protocol):
    """Receives the program's registrations; implemented by preview, up and tests."""

    def register_stack(self, urn: str) -> None: ...

    def register(self, registration: Registration) -> tuple[str, dict[str, Any]]: ...

    def register_outputs(self, urn: str, outputs: dict[str, Any]) -> None: ...


@dataclass
class ProgramResult:
    """Top-level results of one program run."""

    stack_urn: str
    outputs: dict[str, Any]


class _RecordingMonitor(mocks.MockMonitor):
    """Mock monitor that builds real URNs and passes registrations to a handler."""

    def __init__(self, handler: RegistrationHandler, stack: str, project: str) -> None:
        super().__init__(_UnsupportedCalls())
        self._handler = handler
        self._stack = stack
        self._project = project

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The stock mock monitor keeps only the parent's last type and keeps the root stack
        # type. The engine writes the real format: the parent chain, `$`, then the type.
        qualified_type = child_qualified_type(parent, type_)
        return make_urn(self._stack, self._project, qualified_type, name)

    def RegisterResource(self, request):
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == STACK_TYPE:
            self._handler.register_stack(urn)
            return resource_pb2.RegisterResourceResponse(urn=urn)

        _ensure_event_loop()
        registration = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=bool(request.custom),
            parent=request.parent,
            inputs=rpc.deserialize_properties(request.object),
            dependencies=list(request.dependencies),
            property_dependencies={
                key: list(value.urns) for key, value in request.propertyDependencies.items()
            },
            protect=bool(request.protect),
            ignore_changes=list(request.ignoreChanges),
            additional_secret_outputs=list(request.additionalSecretOutputs),
            delete_before_replace=bool(request.deleteBeforeReplace),
            provider_version=request.version,
        )
        resource_id, outputs = self._handler.register(registration)
        outputs_proto = _sync_await(rpc.serialize_properties(outputs, {}))
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, resource_id, outputs)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=outputs_proto)

    def RegisterResourceOutputs(self, request):
        _ensure_event_loop()
        outputs = rpc.deserialize_properties(request.outputs)
        if not request.urn.endswith(f"::{STACK_TYPE}::{self._project}-{self._stack}"):
            self._handler.register_outputs(request.urn, outputs)
        return super().RegisterResourceOutputs(request)

    def ReadResource(self, request):
        raise NotImplementedError(
            f"reading an existing resource ({request.type} {request.name}, `.get()`) is not "
            "supported by the sandbox Pulumi engine"
        )


class _UnsupportedCalls(pulumi.runtime.Mocks):
    """Mocks for provider function calls (invokes), which the engine does not support."""

    def call(self, args: pulumi.runtime.MockCallArgs):
        raise NotImplementedError(
            f"the sandbox Pulumi engine does not implement the provider function {args.token}"
        )

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        raise AssertionError("registrations are handled by the recording monitor")


def run_program(
    project: Project,
    stack: str,
    config: dict[str, str],
    secret_keys: list[str],
    handler: RegistrationHandler,
    *,
    preview: bool,
) -> ProgramResult:
    """Execute the project's program once and return its stack outputs.

    The program runs with the project directory as working directory and first on
    sys.path. Modules it imported from the project are dropped afterwards, so the next
    run (maybe of another copy of the project) imports them afresh.
    """
    monitor = _RecordingMonitor(handler, stack, project.name)
    # A previous run in this process leaves its root stack resource and pending outputs
    # behind. Without a reset, set_mocks would reuse that root and never register it.
    settings.ROOT.set(None)
    settings.SETTINGS.outputs.clear()
    pulumi.runtime.set_mocks(
        _UnsupportedCalls(), project=project.name, stack=stack, preview=preview, monitor=monitor
    )
    settings.SETTINGS.root_directory = str(project.directory)
    set_all_config(config, secret_keys)
    main_file = _main_file(project)

    previous_cwd = os.getcwd()
    _forget_project_modules(project.directory)
    sys.path.insert(0, str(project.directory))
    try:
        os.chdir(project.directory)
        _sync_await(run_pulumi_func(lambda: runpy.run_path(str(main_file), run_name="__main__")))
        root = settings.get_root_resource()
        outputs = _sync_await(_resolve_outputs(getattr(root, "outputs", {})))
    except pulumi.RunError as error:
        raise ProgramError(str(error)) from error
    finally:
        os.chdir(previous_cwd)
        sys.path.remove(str(project.directory))
        _forget_project_modules(project.directory)

    stack_urn = make_urn(stack, project.name, STACK_TYPE, f"{project.name}-{stack}")
    return ProgramResult(stack_urn=stack_urn, outputs=outputs)


def _main_file(project: Project) -> Path:
    settings = yaml.safe_load(project.project_file.read_text()) or {}
    main = settings.get("main")
    path = project.directory / main if main else project.directory
    if path.is_dir():
        path = path / "__main__.py"
    if not path.is_file():
        raise ProgramError(f"the Python program {path} does not exist")
    return path


async def _resolve_outputs(exports: dict[str, Any]) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for name, value in exports.items():
        output = pulumi.Output.from_input(value)
        if not await output.is_known():
            resolved[name] = Unknown()
            continue
        plain = await output.future()
        resolved[name] = wrap_secret(plain) if await output.is_secret() else plain
    return resolved


def _forget_project_modules(directory: Path) -> None:
    """Drop cached modules loaded from `directory` or named like its top-level modules.

    The second rule matters when another copy of the project (say, the repository's own
    `infra/`) was imported earlier in this process under the same package names.
    """
    # Modules imported from the project carry a path under the sys.path entry added for it,
    # so comparing path prefixes is enough (and cheap for thousands of modules).
    roots = tuple({str(directory) + os.sep, str(directory.resolve()) + os.sep})
    local_names = {
        path.stem
        for path in directory.iterdir()
        if (path.suffix == ".py" and path.stem != "__main__") or (path / "__init__.py").is_file()
    }
    for name, module in list(sys.modules.items()):
        module_file = getattr(module, "__file__", None) or ""
        if module_file.startswith(roots) or name.split(".", 1)[0] in local_names:
            del sys.modules[name]
