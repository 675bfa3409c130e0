"""The background sandbox process behind `control-plane sandbox start|status|stop`.

The process writes its endpoint and resource names to `<state dir>/daemon.json` once it is
ready, serves until SIGTERM or SIGINT, then stops its app processes and removes the file.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from .template import REPO_ROOT

STATE_FILE = "daemon.json"
START_TIMEOUT_SECONDS = 120
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DaemonError(RuntimeError):
    """The background sandbox cannot be started or reached."""


def default_state_dir() -> Path:
    return Path(os.environ.get("CONTROL_PLANE_SANDBOX_DIR", REPO_ROOT / ".sandbox"))


def read_state(state_dir: Path) -> dict[str, Any] | None:
    """Return the running daemon's description, or None when none is running."""
    path = state_dir / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(state["pid"]), 0)
    except (OSError, KeyError, ValueError):
        path.unlink(missing_ok=True)  # left by a daemon that died
        return None
    return state


def live_status(state: dict[str, Any]) -> dict[str, Any]:
    with _NO_PROXY.open(f"{state['endpoint']}/_sandbox/status", timeout=5) as response:
        return json.loads(response.read())


def start_daemon(state_dir: Path) -> dict[str, Any]:
    """Start a background sandbox unless one runs; return its description."""
    existing = read_state(state_dir)
    if existing:
        return existing
    state_dir.mkdir(parents=True, exist_ok=True)
    log = (state_dir / "sandbox.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "control_plane.sandbox.daemon", "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        state = read_state(state_dir)
        if state and state.get("pid") == process.pid:
            return state
        if process.poll() is not None:
            raise DaemonError(
                f"the sandbox exited with code {process.returncode} while starting; "
                f"see {state_dir / 'sandbox.log'}"
            )
        time.sleep(0.2)
    process.terminate()
    raise DaemonError(f"the sandbox did not start within {START_TIMEOUT_SECONDS} s")


def stop_daemon(state_dir: Path, timeout_seconds: float = 20) -> bool:
    """Stop the running sandbox by its process id; return False when none was running."""
    state = read_state(state_dir)
    if not state:
        return False
    pid = int(state["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except OSError:
            return True
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    return True


def serve(state_dir: Path) -> None:
    from .sandbox import Sandbox, SandboxOptions

    sandbox = Sandbox(SandboxOptions(work_dir=state_dir / "work"))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    sandbox.start()
    state = {**sandbox.status(), "region": sandbox.options.region}
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
