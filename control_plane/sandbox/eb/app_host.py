"""Runs the deployed application version of each sandbox environment on 127.0.0.1.

It follows EB's Python platform: the bundle's Procfile ``web:`` command when there is one,
otherwise the WSGI callable ``application`` from ``application.py``. The process gets
``PORT`` and the environment properties in its environment. A ``requirements.txt`` is
installed into a virtualenv that is cached by the file's sha256. Each environment keeps one
loopback port for its life, so its CNAME stays valid across deployments.

Layout under ``work_dir``: ``apps/<environment-id>/<n>-<label>/`` (the extracted bundle of
deployment n), ``logs/<environment-id>/`` (``web.stdout.log``, ``web.stderr.log``,
``pip.log``), ``venvs/<sha256>/`` and ``pids/<environment-id>.pid``. A pid file exists while
the host runs the environment's process. It lets another process stop the app after the
sandbox itself was killed (see ``recorded_app_processes``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import weakref
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

BOOTSTRAP_SCRIPT = Path(__file__).with_name("wsgi_bootstrap.py")

# Variables copied from the sandbox's own environment into an app's. Everything else (AWS
# credentials, the sandbox's virtualenv) stays out, as on a fresh EB instance.
INHERITED_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "SYSTEMROOT")

STOP_TIMEOUT_SECONDS = 5.0
PIP_TIMEOUT_SECONDS = 600.0
PID_DIR = "pids"

FetchObject = Callable[[str, str], bytes]


class AppStartError(Exception):
    """The application version could not be installed or did not start serving."""


@dataclass
class RunningApp:
    process: subprocess.Popen[bytes]
    version_label: str | None
    app_dir: Path
    pid_file: Path | None = None


@dataclass(frozen=True)
class AppProcessRecord:
    """An app process as its pid file describes it."""

    environment_id: str
    pid: int
    # The process leads its own group, so the group id equals the pid.
    pgid: int
    # Field 22 of /proc/<pid>/stat (clock ticks after boot), which distinguishes the process
    # from a later one that reuses its pid. None where /proc is not available.
    start_time: int | None
    pid_file: Path


def process_start_time(pid: int) -> int | None:
    """Return the process's start time from /proc, or None when it or /proc does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses, so split after its end.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def recorded_app_processes(work_dir: Path) -> list[AppProcessRecord]:
    """Return the app processes whose pid files are under ``work_dir``, skipping unreadable ones."""
    records = []
    for path in sorted((Path(work_dir) / PID_DIR).glob("*.pid")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            records.append(
                AppProcessRecord(
                    environment_id=path.stem,
                    pid=int(document["pid"]),
                    pgid=int(document["pgid"]),
                    start_time=document.get("startTime"),
                    pid_file=path,
                )
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning("Skipping unreadable pid file %s: %s", path, error)
    return records


class AppHost:
    """Starts, replaces and stops one application process per environment.

    Processes run in their own session, so each is the leader of a process group, and stopping
    signals that group (a Procfile shell and the server it started) and no other process.
    """

    def __init__(
        self, fetch_object: FetchObject, work_dir: Path, start_timeout: float = 10.0
    ) -> None:
        self._fetch_object = fetch_object
        self._work_dir = Path(work_dir)
        self._start_timeout = start_timeout
        self._running: dict[str, RunningApp] = {}
        self._deployment_count = 0
        # Stops the processes at interpreter exit when shutdown() was never called.
        self._finalizer = weakref.finalize(self, _stop_all, self._running)

    @staticmethod
    def allocate_port() -> int:
        """Return a loopback port that is free now.

        NOTE: nothing reserves the port between this call and the first deployment, so another
        process may take it. deploy() then fails with a clear error instead of serving.
        """
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]

    def deploy(
        self,
        environment_id: str,
        port: int,
        version_label: str | None,
        source_bundle: tuple[str, str],
        properties: Mapping[str, str],
    ) -> None:
        """Replace the environment's process with one running ``source_bundle`` on ``port``.

        Returns once the port accepts connections. Raises AppStartError when the bundle cannot
        be fetched or installed, or the process exits or does not listen within the start
        timeout. The old process is stopped first in every case.
        """
        self.stop(environment_id)
        self._deployment_count += 1
        app_dir = self._extract_bundle(environment_id, version_label, source_bundle)
        log_dir = self._work_dir / "logs" / environment_id
        log_dir.mkdir(parents=True, exist_ok=True)
        python, bin_dir = self._prepare_python(app_dir, log_dir)
        command = _web_command(app_dir, python)
        _require_free_port(port)
        process_environment = _process_environment(bin_dir, port, properties)
        with (
            open(log_dir / "web.stdout.log", "ab") as stdout,
            open(log_dir / "web.stderr.log", "ab") as stderr,
        ):
            process = subprocess.Popen(
                command,
                cwd=app_dir,
                env=process_environment,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        pid_file = self._write_pid_file(environment_id, process)
        self._running[environment_id] = RunningApp(process, version_label, app_dir, pid_file)
        logger.info(
            "Started version %s of environment %s: pid %d on 127.0.0.1:%d",
            version_label,
            environment_id,
            process.pid,
            port,
        )
        try:
            self._wait_until_listening(process, port, log_dir)
        except AppStartError:
            self.stop(environment_id)
            raise

    def has_process(self, environment_id: str) -> bool:
        """Return whether a process was started for the environment and not stopped since."""
        return environment_id in self._running

    def is_running(self, environment_id: str) -> bool:
        """Return whether the environment's process is alive, without reaping it."""
        running = self._running.get(environment_id)
        return running is not None and not _has_exited(running.process)

    def stop(self, environment_id: str) -> None:
        """Stop the environment's process group, if one runs, and remove its extracted bundle."""
        running = self._running.pop(environment_id, None)
        if running is None:
            return
        _stop_process_group(running.process)
        _remove_pid_file(running)
        logger.info("Stopped pid %d of environment %s", running.process.pid, environment_id)
        shutil.rmtree(running.app_dir, ignore_errors=True)

    def shutdown(self) -> None:
        """Stop every process that this host started."""
        for environment_id in list(self._running):
            self.stop(environment_id)

    def _write_pid_file(self, environment_id: str, process: subprocess.Popen[bytes]) -> Path | None:
        """Record the process, so that the sandbox's stop command can end it after a crash."""
        path = self._work_dir / PID_DIR / f"{environment_id}.pid"
        document = {
            "pid": process.pid,
            "pgid": process.pid,
            "startTime": process_start_time(process.pid),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(document), encoding="utf-8")
            temporary.replace(path)
        except OSError as error:
            logger.error(
                "Cannot write pid file %s for pid %d (it will not be stopped if the sandbox "
                "is killed): %s",
                path,
                process.pid,
                error,
            )
            return None
        return path

    def _extract_bundle(
        self, environment_id: str, version_label: str | None, source_bundle: tuple[str, str]
    ) -> Path:
        bucket, key = source_bundle
        try:
            data = self._fetch_object(bucket, key)
        except Exception as error:
            raise AppStartError(f"fetching s3://{bucket}/{key} failed: {error}") from error
        safe_label = re.sub(r"[^A-Za-z0-9._-]", "_", version_label or "none")
        app_dir = (
            self._work_dir / "apps" / environment_id / f"{self._deployment_count:04d}-{safe_label}"
        )
        shutil.rmtree(app_dir, ignore_errors=True)
        app_dir.mkdir(parents=True)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    # ZipFile.extract drops ".." and leading "/" from member names.
                    extracted = archive.extract(info, app_dir)
                    mode = (info.external_attr >> 16) & 0o777
                    if mode and not info.is_dir():
                        os.chmod(extracted, mode)
        except zipfile.BadZipFile as error:
            raise AppStartError(f"s3://{bucket}/{key} is not a valid zip file: {error}") from error
        return app_dir

    def _prepare_python(self, app_dir: Path, log_dir: Path) -> tuple[str, str]:
        """Return the interpreter and bin directory for the app, installing requirements."""
        requirements = app_dir / "requirements.txt"
        if not requirements.is_file():
            return sys.executable, str(Path(sys.executable).parent)
        digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
        venv_dir = self._work_dir / "venvs" / digest
        python = venv_dir / "bin" / "python"
        if not (venv_dir / ".installed").is_file():
            self._create_virtualenv(venv_dir, requirements, app_dir, log_dir)
        return str(python), str(venv_dir / "bin")

    def _create_virtualenv(
        self, venv_dir: Path, requirements: Path, app_dir: Path, log_dir: Path
    ) -> None:
        # Build next to the final path and mark it complete last, so an interrupted install
        # is rebuilt on the next deployment instead of being reused half-done.
        shutil.rmtree(venv_dir, ignore_errors=True)
        venv_dir.parent.mkdir(parents=True, exist_ok=True)
        logger.info("Creating virtualenv %s for %s", venv_dir, requirements)
        commands = [
            [sys.executable, "-m", "venv", str(venv_dir)],
            [
                str(venv_dir / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "-r",
                str(requirements),
            ],
        ]
        with open(log_dir / "pip.log", "ab") as log:
            for command in commands:
                try:
                    subprocess.run(
                        command,
                        cwd=app_dir,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        timeout=PIP_TIMEOUT_SECONDS,
                        check=True,
                    )
                except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                    raise AppStartError(
                        f"installing requirements.txt failed ({error}); see {log_dir / 'pip.log'}"
                    ) from error
        (venv_dir / ".installed").write_text(str(requirements.stat().st_size))

    def _wait_until_listening(
        self, process: subprocess.Popen[bytes], port: int, log_dir: Path
    ) -> None:
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if _has_exited(process):
                raise AppStartError(
                    f"the web process exited with code {process.poll()} before listening on "
                    f"port {port}; see {log_dir / 'web.stderr.log'}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise AppStartError(
            f"the web process did not listen on 127.0.0.1:{port} within {self._start_timeout} s; "
            f"see {log_dir / 'web.stderr.log'}"
        )


def _web_command(app_dir: Path, python: str) -> list[str]:
    procfile = app_dir / "Procfile"
    if procfile.is_file():
        for line in procfile.read_text().splitlines():
            name, separator, command = line.partition(":")
            if separator and name.strip() == "web" and command.strip():
                return ["/bin/sh", "-c", command.strip()]
        raise AppStartError("the Procfile has no 'web:' process")
    if (app_dir / "application.py").is_file():
        return [python, str(BOOTSTRAP_SCRIPT)]
    raise AppStartError("the bundle has neither a Procfile nor an application.py")


def _process_environment(bin_dir: str, port: int, properties: Mapping[str, str]) -> dict[str, str]:
    environment = {name: os.environ[name] for name in INHERITED_VARIABLES if name in os.environ}
    environment["PATH"] = bin_dir + os.pathsep + environment.get("PATH", os.defpath)
    environment.update(properties)
    environment["PORT"] = str(port)
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


def _require_free_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise AppStartError(
                f"port 127.0.0.1:{port} of this environment is in use by another process"
            ) from error


def _has_exited(process: subprocess.Popen[bytes]) -> bool:
    """Return whether the process exited, without reaping it (``WNOWAIT``)."""
    if process.returncode is not None:
        return True
    try:
        result = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return process.poll() is not None
    return result is not None


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Send SIGTERM, then SIGKILL after a grace period, to the group that ``process`` leads."""
    # Linux does not reuse a pid while it is the id of a live process group, so these signals
    # reach only the processes that this host started.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
            return
        except subprocess.TimeoutExpired:
            continue
    logger.error("pid %d did not exit after SIGKILL", process.pid)


def _remove_pid_file(running: RunningApp) -> None:
    if running.pid_file is not None:
        running.pid_file.unlink(missing_ok=True)


def _stop_all(running: dict[str, RunningApp]) -> None:
    for environment_id in list(running):
        app = running.pop(environment_id)
        _stop_process_group(app.process)
        _remove_pid_file(app)
