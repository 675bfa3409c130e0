"""The background sandbox process behind `control-plane sandbox start|status|stop`.

The process writes its endpoint and resource names to `<state dir>/daemon.json` once it is
ready, serves until SIGTERM or SIGINT, then stops its app processes and removes the file.
Starting and stopping hold an flock on `<state dir>/daemon.lock`, so concurrent commands
share one daemon. Its output goes to `<state dir>/sandbox.log`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .eb.app_host import process_start_time, recorded_app_processes
from .template import REPO_ROOT

STATE_FILE = "daemon.json"
LOCK_FILE = "daemon.lock"
LOG_FILE = "sandbox.log"
START_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 20
STATUS_TIMEOUT_SECONDS = 5
LOG_TAIL_LINES = 20
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DaemonError(RuntimeError):
    """The background sandbox cannot be started or reached.

    `log_tail` contains the last lines that the failed start wrote to the sandbox log.
    """

    def __init__(self, message: str, log_tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.log_tail = log_tail or []


@dataclass
class StopResult:
    """Outcome of `stop_daemon`."""

    was_running: bool
    pid: int | None = None
    # True when the daemon ignored SIGTERM for the whole timeout and got SIGKILL.
    killed: bool = False
    # Process group ids of app processes that outlived their daemon and were killed.
    stopped_app_groups: list[int] = field(default_factory=list)


def default_state_dir() -> Path:
    return Path(os.environ.get("CONTROL_PLANE_SANDBOX_DIR", REPO_ROOT / ".sandbox"))


def log_path(state_dir: Path) -> Path:
    return state_dir / LOG_FILE


def app_host_work_dir(state_dir: Path) -> Path:
    """Return the EB simulator's work dir, which contains the app processes' pid files.

    `serve` gives the sandbox `<state dir>/work`, and the sandbox gives the EB simulator the
    `eb` folder under it.
    """
    return state_dir / "work" / "eb"


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """Return the running daemon's description, or None when none is running."""
    path = state_dir / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        pid = int(state["pid"])
        os.kill(pid, 0)
    except (OSError, KeyError, ValueError, TypeError):
        path.unlink(missing_ok=True)  # left by a daemon that died
        return None
    if not _is_this_sandbox(pid, state):
        # The daemon died and its pid now belongs to another process, which must not be
        # signalled as if it were the sandbox.
        path.unlink(missing_ok=True)
        return None
    return state


def _is_this_sandbox(pid: int, state: dict[str, Any]) -> bool:
    """Return whether `pid` is still the daemon the state file describes.

    The daemon records its start time; a process with another start time reused the pid. A
    state file without one is checked by the command line. Without /proc (macOS) neither can
    be read, and the pid is trusted.
    """
    recorded = state.get("startTime")
    current = process_start_time(pid)
    if recorded is not None and current is not None:
        return int(recorded) == current
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return True
    return b"control_plane.sandbox.daemon" in command


def live_status(state: dict[str, Any]) -> Any:
    """Return the daemon's /_sandbox/status document.

    Raises OSError (TimeoutError included) when the daemon does not respond within
    STATUS_TIMEOUT_SECONDS, and ValueError when the response is not JSON.
    """
    url = f"{state['endpoint']}/_sandbox/status"
    with _NO_PROXY.open(url, timeout=STATUS_TIMEOUT_SECONDS) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def _exclusive_lock(state_dir: Path, on_wait: Callable[[], None] | None) -> Iterator[None]:
    """Hold an exclusive flock on `<state dir>/daemon.lock`; call `on_wait` before blocking.

    The kernel releases the lock when this process exits, so a crashed caller never leaves it
    held. Popen closes the descriptor in the daemon, so the daemon never keeps the lock.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK_FILE, "a", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def daemon_command(state_dir: Path) -> list[str]:
    """Return the command that runs the daemon. Tests replace it with a stand-in."""
    return [sys.executable, "-m", "control_plane.sandbox.daemon", "--state-dir", str(state_dir)]


def start_daemon(state_dir: Path, on_wait: Callable[[], None] | None = None) -> dict[str, Any]:
    """Start a background sandbox unless one runs; return its description.

    The check and the start run under the state dir's lock, so concurrent callers share one
    daemon: a caller that finds the lock held calls `on_wait`, waits for the other start to
    finish and then returns that daemon. App processes left by a daemon that died are killed
    before a new one starts. Raises DaemonError when the daemon exits or does not become ready
    within START_TIMEOUT_SECONDS.
    """
    with _exclusive_lock(state_dir, on_wait):
        existing = read_state(state_dir)
        if existing:
            return existing
        stop_orphaned_apps(state_dir)
        return _spawn(state_dir)


def _spawn(state_dir: Path) -> dict[str, Any]:
    log = log_path(state_dir)
    with log.open("ab") as log_file:
        log_offset = log_file.tell()
        process = subprocess.Popen(
            daemon_command(state_dir),
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        return _wait_until_ready(process, state_dir, log_offset)
    except BaseException:
        # Covers DaemonError and Ctrl-C: a start that the caller gave up on must not linger.
        _terminate(process)
        raise


def _wait_until_ready(
    process: subprocess.Popen[bytes], state_dir: Path, log_offset: int
) -> dict[str, Any]:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        state = read_state(state_dir)
        if state and state.get("pid") == process.pid:
            return state
        if process.poll() is not None:
            raise DaemonError(
                f"the sandbox exited with code {process.returncode} while starting; "
                f"see {log_path(state_dir)}",
                _log_tail(log_path(state_dir), log_offset),
            )
        time.sleep(0.2)
    raise DaemonError(
        f"the sandbox did not start within {START_TIMEOUT_SECONDS} s and was stopped; "
        f"see {log_path(state_dir)}",
        _log_tail(log_path(state_dir), log_offset),
    )


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _log_tail(path: Path, offset: int) -> list[str]:
    """Return the last LOG_TAIL_LINES lines written to the log after `offset`."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-LOG_TAIL_LINES:]


def stop_daemon(
    state_dir: Path,
    timeout_seconds: float = STOP_TIMEOUT_SECONDS,
    on_wait: Callable[[], None] | None = None,
) -> StopResult:
    """Stop the running sandbox by its process id, then any app process it left behind.

    The daemon gets SIGTERM and, if it has not exited after `timeout_seconds`, SIGKILL. A
    killed daemon cannot stop its apps, so the apps recorded in the EB work dir's pid files
    are killed by process group afterwards. Those are also killed when no daemon runs, since
    no daemon can manage them anymore. Waits for a concurrent start to finish first.
    """
    with _exclusive_lock(state_dir, on_wait):
        state = read_state(state_dir)
        if not state:
            return StopResult(was_running=False, stopped_app_groups=stop_orphaned_apps(state_dir))
        pid = int(state["pid"])
        killed = False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_for_exit(pid, timeout_seconds):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed = True
            _wait_for_exit(pid, 5)
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        return StopResult(
            was_running=True,
            pid=pid,
            killed=killed,
            stopped_app_groups=stop_orphaned_apps(state_dir),
        )


def _is_alive(pid: int) -> bool:
    """Return whether the process runs; reap it first when it is this process's child.

    Without the reap, a daemon that this process started (as `demo` does) would stay a zombie
    after exiting, and a zombie still accepts signal 0.
    """
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_exit(pid: int, timeout_seconds: float) -> bool:
    deadline = time.monotonic() + timeout_seconds
    while _is_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def stop_orphaned_apps(state_dir: Path) -> list[int]:
    """Kill the process groups recorded in the app host's pid files and remove the files.

    Call only while no daemon runs, because a running daemon still manages these processes.
    A group is skipped when its leader's pid now belongs to a process with another start time,
    since the pid was then reused by an unrelated process. Returns the killed group ids.
    """
    stopped = []
    for record in recorded_app_processes(app_host_work_dir(state_dir)):
        current_start = process_start_time(record.pid)
        reused = (
            record.start_time is not None
            and current_start is not None
            and current_start != record.start_time
        )
        # NOTE: without /proc (macOS) the start times are None and the pid reuse check is
        # skipped, so a group id reused since the daemon died would be signalled.
        if not reused:
            try:
                os.killpg(record.pgid, signal.SIGKILL)
                stopped.append(record.pgid)
            except (ProcessLookupError, PermissionError):
                pass  # the group has ended, or belongs to another user and is not ours
        record.pid_file.unlink(missing_ok=True)
    return stopped


def serve(state_dir: Path) -> None:
    from .sandbox import Sandbox, SandboxOptions

    sandbox = Sandbox(SandboxOptions(work_dir=state_dir / "work"))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    sandbox.start()
    state = {
        **sandbox.status(),
        "region": sandbox.options.region,
        "startTime": process_start_time(os.getpid()),
    }
    path = state_dir / STATE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(state, indent=2), encoding="utf-8")
    temporary.replace(path)
    print(f"sandbox ready on {sandbox.endpoint_url} (pid {os.getpid()})", flush=True)
    try:
        stopping.wait()
    finally:
        sandbox.stop()
        path.unlink(missing_ok=True)
        print("sandbox stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=default_state_dir())
    serve(parser.parse_args().state_dir)


if __name__ == "__main__":
    main()
