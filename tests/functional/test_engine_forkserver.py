"""The sandbox engine's fork server: a command run through it behaves as a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.sandbox.codebuild import ENGINE_BIN
from control_plane.sandbox.pulumi_engine.forkserver import SOCKET_VARIABLE, EngineForkServer

PULUMI = str(ENGINE_BIN / "pulumi")


def engine_environment(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "CONTROL_PLANE_PYTHON": sys.executable,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        **extra,
    }


@pytest.fixture(scope="module")
def server() -> Iterator[EngineForkServer]:
    started = EngineForkServer(engine_environment())
    yield started
    started.stop()


def run(
    arguments: list[str], environment: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PULUMI, *arguments], env=environment, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("arguments", "endpoint"),
    [
        (["version"], "http://127.0.0.1:9"),
        (["version"], "http://example.com"),
        (["stack", "frobnicate"], "http://127.0.0.1:9"),
    ],
)
def test_forkserver_matches_separate_process(
    server: EngineForkServer, tmp_path: Path, arguments: list[str], endpoint: str
) -> None:
    alone = run(arguments, engine_environment(AWS_ENDPOINT_URL=endpoint), tmp_path)
    served = run(
        arguments,
        engine_environment(AWS_ENDPOINT_URL=endpoint, **{SOCKET_VARIABLE: server.socket_path}),
        tmp_path,
    )

    assert served.returncode == alone.returncode
    assert served.stdout == alone.stdout
    assert served.stderr == alone.stderr


def test_forkserver_rejects_remote_endpoint(server: EngineForkServer, tmp_path: Path) -> None:
    environment = engine_environment(
        AWS_ENDPOINT_URL="http://example.com", **{SOCKET_VARIABLE: server.socket_path}
    )

    result = run(["version"], environment, tmp_path)

    assert result.returncode != 0
    assert "is not a loopback address" in result.stderr


def test_forkserver_runs_in_callers_folder(server: EngineForkServer, tmp_path: Path) -> None:
    environment = engine_environment(
        PULUMI_BACKEND_URL="s3://state", **{SOCKET_VARIABLE: server.socket_path}
    )

    result = run(["stack", "--show-name"], environment, tmp_path)

    assert result.returncode == 1
    assert f"no Pulumi.yaml project file found (searching upwards from {tmp_path})" in (
        result.stderr
    )


def test_forkserver_ends_with_its_parent(tmp_path: Path) -> None:
    socket_path = tmp_path / "engine.sock"
    script = (
        "import subprocess, sys, time\n"
        "server = subprocess.Popen([sys.executable, '-m', "
        "'control_plane.sandbox.pulumi_engine.forkserver', sys.argv[1]])\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(socket_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    server_pid = int(parent.stdout.readline())
    deadline = time.monotonic() + 60
    while not socket_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert socket_path.exists()

    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{server_pid}").exists() and time.monotonic() < deadline:
        # The server is now a child of init, which reaps it once it exits.
        time.sleep(0.1)

    status = Path(f"/proc/{server_pid}/status")
    assert not status.exists() or "zombie" in status.read_text()
    assert not socket_path.exists()
