"""CodeBuild stand-in: runs the build phase of infra/buildspec.yml with the local Pulumi engine.

moto's CodeBuild reports every build as succeeded without running anything, so the sandbox
serves StartBuild and BatchGetBuilds itself. A build first resolves its environment variables:
the synthesized project's own, then those an operator set on the project, then StartBuild's
overrides, each PARAMETER_STORE one read from the sandbox's SSM. A missing parameter fails the
build in its DOWNLOAD_SOURCE phase with CodeBuild's phase context, before any command runs. The
build then copies the source (infra/) into a fresh folder, as CodeBuild downloads its source,
puts the local engine's `pulumi` first on PATH in place of the install phase (the real CLI
cannot be downloaded offline) and runs the build phase commands with bash, failing on any failed
command or pipe.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .clock import VirtualClock
from .pulumi_engine.forkserver import SOCKET_VARIABLE, engine_socket

ENGINE_BIN = Path(__file__).resolve().parent / "pulumi_engine" / "bin"
# Virtual duration of one build: provisioning, source download and the Pulumi run.
DEFAULT_BUILD_SECONDS = 60
BUILD_TIMEOUT_SECONDS = 600
# CodeBuild's phase context when it cannot read a PARAMETER_STORE variable, and its message for
# a parameter that does not exist, as CodeBuild build logs show them.
VARIABLES_ERROR_CODE = "Decrypted Variables Error"
MISSING_PARAMETER_MESSAGE = "parameter does not exist: {name}"
# The phases a build goes through before CodeBuild resolves its variables, which it does while
# downloading the source.
PHASES_BEFORE_SOURCE = ("SUBMITTED", "QUEUED", "PROVISIONING")


@dataclass
class Build:
    id: str
    number: int
    project: str
    # StartBuild's environmentVariablesOverride, unresolved: {"name", "value", "type"?}.
    overrides: list[dict[str, Any]]
    start_time: float
    status: str = "IN_PROGRESS"
    end_time: float | None = None
    # The build's resolved environment variables, set when the build starts running.
    variables: dict[str, str] = field(default_factory=dict)
    exported: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    # NOTE: CodeBuild reports the phases of every build. The sandbox reports them only for a
    # build that failed before its commands ran, the one case that ClassifyBuildFailure reads.
    phases: list[dict[str, Any]] = field(default_factory=list)

    def describe(self, region: str, account_id: str) -> dict[str, Any]:
        description: dict[str, Any] = {
            "id": self.id,
            "arn": f"arn:aws:codebuild:{region}:{account_id}:build/{self.id}",
            "buildNumber": self.number,
            "startTime": self.start_time,
            "currentPhase": "COMPLETED" if self.status != "IN_PROGRESS" else "BUILD",
            "buildStatus": self.status,
            "projectName": self.project,
            "buildComplete": self.status != "IN_PROGRESS",
            "logs": {"groupName": f"/aws/codebuild/{self.project}", "streamName": self.id},
            "exportedEnvironmentVariables": [
                {"name": name, "value": value} for name, value in sorted(self.exported.items())
            ],
        }
        if self.end_time is not None:
            description["endTime"] = self.end_time
        if self.phases:
            description["phases"] = self.phases
        return description


class ProjectNotFound(LookupError):
    """StartBuild named a project that does not exist (AWS: ResourceNotFoundException)."""


class ParameterNotFound(LookupError):
    """A PARAMETER_STORE variable names an SSM parameter that does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class CodeBuildSimulator:
    """Serves StartBuild and BatchGetBuilds for the sandbox's one CodeBuild project."""

    def __init__(
        self,
        *,
        clock: VirtualClock,
        project_name: str,
        repo_root: Path,
        work_dir: Path,
        base_environment: dict[str, str],
        resolve_parameter: Callable[[str], str],
        region: str,
        account_id: str,
        project_variables: list[dict[str, str]] | None = None,
        build_seconds: float = DEFAULT_BUILD_SECONDS,
    ) -> None:
        """`resolve_parameter` returns an SSM parameter's decrypted value and raises
        ParameterNotFound for a missing one. `project_variables` are the synthesized project's
        environment variables ({"name", "type", "value"})."""
        self._clock = clock
        self._project_name = project_name
        self._repo_root = repo_root
        self._work_dir = work_dir
        self._base_environment = base_environment
        self._resolve_parameter = resolve_parameter
        self._project_variables = list(project_variables or [])
        self._region = region
        self._account_id = account_id
        self._build_seconds = build_seconds
        self._builds: dict[str, Build] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self.failures_to_inject = 0
        # Plain-text environment variables of the CodeBuild project that scenarios set, as an
        # operator sets them on the project. They apply to builds that start afterwards, take
        # precedence over the buildspec's variables and replace a synthesized variable of the
        # same name.
        self.project_environment: dict[str, str] = {}
        # Stack config set by scenarios: stack name -> {config key: value}, written into the
        # build's copy of infra/Pulumi.<stack>.yaml, as a commit to the program would.
        self.stack_config: dict[str, dict[str, Any]] = {}
        self.on_build_finished: Callable[[Build], None] | None = None

    @property
    def builds(self) -> list[Build]:
        with self._lock:
            return list(self._builds.values())

    def start_build(self, request: dict[str, Any]) -> dict[str, Any]:
        project = request.get("projectName", "")
        if project != self._project_name:
            raise ProjectNotFound(f"Project cannot be found: {project}")
        number = next(self._numbers)
        # CodeBuild resolves PARAMETER_STORE variables when the build runs, not in StartBuild.
        build = Build(
            id=f"{project}:{number:08d}",
            number=number,
            project=project,
            overrides=list(request.get("environmentVariablesOverride", [])),
            start_time=self._clock.now(),
        )
        with self._lock:
            self._builds[build.id] = build
        # The build runs in the background, as on AWS; the caller polls BatchGetBuilds.
        threading.Thread(target=self._run, args=(build,), daemon=True, name=build.id).start()
        return {"build": build.describe(self._region, self._account_id)}

    def batch_get_builds(self, ids: list[str]) -> dict[str, Any]:
        with self._lock:
            found = [self._builds[build_id] for build_id in ids if build_id in self._builds]
        return {
            "builds": [build.describe(self._region, self._account_id) for build in found],
            "buildsNotFound": [build_id for build_id in ids if build_id not in self._builds],
        }

    def _variable_value(self, item: dict[str, Any]) -> str:
        kind = item.get("type", "PLAINTEXT")
        if kind == "PARAMETER_STORE":
            return self._resolve_parameter(item["value"])
        if kind != "PLAINTEXT":
            raise NotImplementedError(f"the sandbox's CodeBuild does not resolve {kind} variables")
        return str(item["value"])

    def _resolve_variables(self, build: Build) -> dict[str, str]:
        """Return the build's variables: StartBuild's overrides over the project's variables.

        Raises ParameterNotFound for the first PARAMETER_STORE variable whose parameter is
        missing.
        """
        items = [
            *self._project_variables,
            *(
                {"name": name, "value": value, "type": "PLAINTEXT"}
                for name, value in self.project_environment.items()
            ),
            *build.overrides,
        ]
        chosen = {item["name"]: item for item in items}
        return {name: self._variable_value(item) for name, item in chosen.items()}

    def _fail_resolving_variables(self, build: Build, message: str) -> None:
        """Record a build that failed in DOWNLOAD_SOURCE, as CodeBuild reports it."""
        now = self._clock.now()
        build.phases = [
            *(
                {"phaseType": phase, "phaseStatus": "SUCCEEDED", "startTime": now, "endTime": now}
                for phase in PHASES_BEFORE_SOURCE
            ),
            {
                "phaseType": "DOWNLOAD_SOURCE",
                "phaseStatus": "FAILED",
                "startTime": now,
                "endTime": now,
                "contexts": [{"statusCode": VARIABLES_ERROR_CODE, "message": message}],
            },
            {"phaseType": "FINALIZING", "phaseStatus": "SUCCEEDED", "startTime": now},
            {"phaseType": "COMPLETED", "startTime": now},
        ]
        assert build.log_path is not None
        build.log_path.write_text(
            "[Container] Processing environment variables\n"
            "[Container] Decrypting parameter store environment variables\n"
            "[Container] Phase complete: DOWNLOAD_SOURCE State: FAILED\n"
            f"[Container] Phase context status code: {VARIABLES_ERROR_CODE} Message: {message}\n",
            encoding="utf-8",
        )

    def _run(self, build: Build) -> None:
        source_dir = Path(tempfile.mkdtemp(prefix="build-", dir=self._work_dir))
        build.log_path = self._work_dir / f"{build.id.replace(':', '-')}.log"
        try:
            status, exported = self._execute(build, source_dir)
        except Exception as error:
            build.log_path.write_text(f"sandbox build error: {error}\n", encoding="utf-8")
            status, exported = "FAULT", {}
        finally:
            shutil.rmtree(source_dir, ignore_errors=True)
        if status == "SUCCEEDED" and self.failures_to_inject > 0:
            self.failures_to_inject -= 1
            status = "FAILED"
        self._clock.advance(self._build_seconds)
        build.exported = exported
        build.end_time = self._clock.now()
        build.status = status
        if self.on_build_finished is not None:
            self.on_build_finished(build)

    def _apply_stack_config(self, infra_dir: Path, stack: str) -> None:
        overrides = self.stack_config.get(stack)
        if not overrides:
            return
        path = infra_dir / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
        document = document or {}
        document.setdefault("config", {}).update(overrides)
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

    def _execute(self, build: Build, source_dir: Path) -> tuple[str, dict[str, str]]:
        try:
            build.variables = self._resolve_variables(build)
        except ParameterNotFound as missing:
            self._fail_resolving_variables(
                build, MISSING_PARAMETER_MESSAGE.format(name=missing.name)
            )
            return "FAILED", {}
        shutil.copytree(
            self._repo_root / "infra",
            source_dir / "infra",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        self._apply_stack_config(source_dir / "infra", build.variables.get("PULUMI_STACK", ""))
        spec = yaml.safe_load((source_dir / "infra" / "buildspec.yml").read_text(encoding="utf-8"))
        commands = spec["phases"]["build"]["commands"]
        exported_names = spec.get("env", {}).get("exported-variables", [])
        environment = {
            **self._base_environment,
            **{
                name: str(value)
                for name, value in (spec.get("env", {}).get("variables") or {}).items()
            },
            **build.variables,
            "CODEBUILD_BUILD_ID": build.id,
            "CODEBUILD_SRC_DIR": str(source_dir),
            SOCKET_VARIABLE: engine_socket(self._base_environment),
            "PATH": f"{ENGINE_BIN}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}"
            + self._base_environment.get("PATH", os.environ.get("PATH", "")),
        }
        export_file = source_dir / ".exported-variables"
        script = "\n".join(["set -eo pipefail", *commands, f'env -0 > "{export_file}"'])
        with build.log_path.open("w", encoding="utf-8") as log:
            result = subprocess.run(
                ["bash", "-c", script],
                cwd=source_dir,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT_SECONDS,
            )
        if result.returncode != 0 or not export_file.exists():
            return "FAILED", {}
        values = dict(
            entry.split("=", 1)
            for entry in export_file.read_text(encoding="utf-8").split("\0")
            if "=" in entry
        )
        return "SUCCEEDED", {name: values.get(name, "") for name in exported_names}
