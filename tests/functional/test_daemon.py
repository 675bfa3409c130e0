"""The background sandbox: one daemon per state dir, and no app left running after a stop.

Most tests replace the daemon with a small script, so they take well under a second. The last
test runs the real sandbox and deploys the sample app.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from control_plane.cli import main
from control_plane.sandbox import daemon
from control_plane.sandbox.eb.app_host import PID_DIR, process_start_time

# Stands in for the daemon: optionally runs one app through the real AppHost, which writes the
# app's pid file, then publishes daemon.json and waits for signals like the real daemon.
FAKE_DAEMON = """
import io, json, os, signal, sys, time, zipfile
from pathlib import Path

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
state_dir = Path(sys.argv[1])
with open(state_dir / "spawned.txt", "a") as spawned:
    spawned.write(f"{os.getpid()}\\n")
if sys.argv[2] == "with-app":
    from control_plane.sandbox.eb.app_host import AppHost

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "application.py",
            "def application(environ, start_response):\\n"
            "    start_response('200 OK', [])\\n"
            "    return [b'ok']\\n",
        )
    host = AppHost(lambda bucket, key: buffer.getvalue(), state_dir / "work" / "eb")
    port = AppHost.allocate_port()
    host.deploy("e-fake", port, "v1", ("bucket", "key"), {})
time.sleep(0.5)
from control_plane.sandbox.eb.app_host import process_start_time

state = {
    "pid": os.getpid(),
    "endpoint": "http://127.0.0.1:1",
    "region": "us-east-1",
    "startTime": process_start_time(os.getpid()),
}
(state_dir / "daemon.tmp").write_text(json.dumps(state))
(state_dir / "daemon.tmp").replace(state_dir / "daemon.json")
time.sleep(60)
"""


def is_running(pid: int) -> bool:
    """Return whether the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def wait_until_ended(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "state"
    path.mkdir()
    yield path
    daemon.stop_daemon(path, timeout_seconds=5)
    spawned = path / "spawned.txt"
    for line in spawned.read_text().split() if spawned.exists() else []:
        if is_running(int(line)):
            os.kill(int(line), signal.SIGKILL)


def use_fake_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: str = "no-app") -> None:
    script = tmp_path / "fake_daemon.py"
    script.write_text(FAKE_DAEMON)
    monkeypatch.setattr(
        daemon,
        "daemon_command",
        lambda state_dir: [sys.executable, str(script), str(state_dir), mode],
    )
    monkeypatch.setattr(daemon, "START_TIMEOUT_SECONDS", 10)


def test_concurrent_starts_share_one_daemon(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_daemon(monkeypatch, tmp_path)
    results: list[dict] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            results.append(daemon.start_daemon(state_dir))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    spawned = (state_dir / "spawned.txt").read_text().split()
    assert errors == []
    assert len(spawned) == 1
    assert {result["pid"] for result in results} == {int(spawned[0])}


def test_stop_kills_apps_of_a_hung_daemon(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_fake_daemon(monkeypatch, tmp_path, mode="with-app")
    state = daemon.start_daemon(state_dir)
    pid_file = state_dir / "work" / "eb" / PID_DIR / "e-fake.pid"
    app_pid = json.loads(pid_file.read_text())["pid"]
    assert is_running(app_pid)
    os.kill(state["pid"], signal.SIGSTOP)

    result = daemon.stop_daemon(state_dir, timeout_seconds=0.5)

    assert result.killed
    assert result.stopped_app_groups == [app_pid]
    assert wait_until_ended(app_pid)
    assert not pid_file.exists()


def test_stop_skips_a_reused_pid(state_dir: Path) -> None:
    unrelated = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        pid_file = state_dir / "work" / "eb" / PID_DIR / "e-old.pid"
        pid_file.parent.mkdir(parents=True)
        recorded_start = process_start_time(unrelated.pid) - 1
        pid_file.write_text(
            json.dumps({"pid": unrelated.pid, "pgid": unrelated.pid, "startTime": recorded_start})
        )

        result = daemon.stop_daemon(state_dir)

        assert not result.was_running
        assert result.stopped_app_groups == []
        assert unrelated.poll() is None
        assert not pid_file.exists()
    finally:
        unrelated.kill()
        unrelated.wait()


def health_version(url: str) -> str | None:
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        connection.request("GET", "/health")
        return json.loads(connection.getresponse().read()).get("version")
    finally:
        connection.close()


def test_real_sandbox_from_another_folder(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two concurrent starts, a deploy of the default bundle, status, and a hung stop."""
    workspace = tmp_path / "elsewhere"
    workspace.mkdir()
    monkeypatch.chdir(workspace)
    monkeypatch.setenv("CONTROL_PLANE_SANDBOX_DIR", str(state_dir))
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "control_plane.cli", "sandbox", "start"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [start.communicate(timeout=180)[0] for start in starts]
    runner = CliRunner()

    deployed = runner.invoke(main, ["deploy", "--sandbox", "-e", "dev", "-v", "v1"])
    status = runner.invoke(main, ["sandbox", "status"])

    pids = {re.search(r"\(pid (\d+)\)", output).group(1) for output in outputs}
    assert len(pids) == 1, outputs
    assert daemon.log_path(state_dir).read_text().count("sandbox ready") == 1
    assert deployed.exit_code == 0, deployed.output
    assert "Ready" in status.output, status.output
    assert "version=v1" in status.output
    url = re.search(r"http://127\.0\.0\.1:\d+(?=\s*$)", status.output, re.MULTILINE).group(0)
    assert health_version(url) == "v1"

    os.kill(int(pids.pop()), signal.SIGSTOP)
    result = daemon.stop_daemon(state_dir, timeout_seconds=1)

    assert result.killed
    assert len(result.stopped_app_groups) == 1
    assert wait_until_ended(result.stopped_app_groups[0])
    with pytest.raises(OSError):
        health_version(url)


def test_stop_leaves_alone_a_process_that_reused_the_daemon_pid(state_dir: Path) -> None:
    # A daemon died and its pid went to an unrelated process: stop must not signal it.
    unrelated = subprocess.Popen(["sleep", "60"])
    try:
        (state_dir / daemon.STATE_FILE).write_text(
            json.dumps({"pid": unrelated.pid, "endpoint": "http://127.0.0.1:9"}),
            encoding="utf-8",
        )

        result = daemon.stop_daemon(state_dir, timeout_seconds=1)

        assert result.was_running is False
        assert unrelated.poll() is None
        assert not (state_dir / daemon.STATE_FILE).exists()
    finally:
        unrelated.kill()
        unrelated.wait()
