"""A fork server for the sandbox's `pulumi` stand-in, so each command starts warm.

A sandbox build runs about ten `pulumi` commands, and a fresh Python process spends most of
each one importing the engine, boto3 and the Pulumi SDK and loading botocore's service models.
The server does that once, then forks a child per command. The `pulumi` script's client
(bin/engine_client.py) passes the command's arguments, environment, working folder and its
own stdin, stdout and stderr descriptors over a Unix socket. The child runs the command on
those descriptors and sends back the exit code, so the caller sees what a separate process
would print and return.

    python -m control_plane.sandbox.pulumi_engine.forkserver SOCKET_PATH
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

SOCKET_VARIABLE = "CONTROL_PLANE_ENGINE_SOCKET"
HEADER_BYTES = 8
FOLDER_PREFIX = "cp-engine-"
START_TIMEOUT_SECONDS = 60.0
# How often the server checks that the process that started it still runs.
PARENT_CHECK_SECONDS = 1.0
# Services whose models the engine loads: S3 for the backend and the buckets, and EB.
PRELOADED_SERVICES = ("s3", "elasticbeanstalk")


def _preload() -> None:
    """Import what every command needs and load the service models it reads."""
    import pulumi  # noqa: F401
    import pulumi_aws  # noqa: F401

    from . import aws, cli  # noqa: F401

    session = aws._session()
    for service in PRELOADED_SERVICES:
        session._session.get_service_model(service)


def _receive_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client closed the connection mid-request")
        data += chunk
    return data


def _run_request(connection: socket.socket) -> int:
    """Run one command in this forked child; return its exit code."""
    header, descriptors, _, _ = socket.recv_fds(connection, HEADER_BYTES, 3)
    if len(descriptors) != 3 or len(header) != HEADER_BYTES:
        raise ConnectionError("a request needs a length header and three descriptors")
    request = json.loads(_receive_exactly(connection, int.from_bytes(header, "big")))
    for target, descriptor in enumerate(descriptors):
        os.dup2(descriptor, target)
        os.close(descriptor)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["pulumi", *request["argv"]]
    from .cli import main

    return main(request["argv"], dict(os.environ), sys.stdin)


def _serve_child(connection: socket.socket) -> None:
    """Run the request of `connection`, report its exit code and end the process."""
    # Subprocesses of the command must be waited for, so the child takes SIGCHLD back.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        code = _run_request(connection)
    except SystemExit as exit_request:
        code = exit_request.code if isinstance(exit_request.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 255
    sys.stdout.flush()
    sys.stderr.flush()
    # OSError means the client disconnected and expects no exit code.
    with contextlib.suppress(OSError):
        connection.sendall(str(code).encode())
    # As in __main__: skip interpreter teardown, which prints asyncio tracebacks.
    os._exit(code)


def serve(path: str) -> None:
    """Preload, then fork one child per connection on the Unix socket `path`.

    Runs until its parent process ends, so a sandbox killed without cleanup leaves no server.
    """
    parent = os.getppid()
    _preload()
    # With SIGCHLD ignored the kernel reaps the children, so the server never waits for them.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Listen before the socket gets its final name, so a client never meets a closed socket.
    listener.bind(f"{path}.starting")
    listener.listen(64)
    os.rename(f"{path}.starting", path)
    listener.settimeout(PARENT_CHECK_SECONDS)
    while os.getppid() == parent:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        connection.settimeout(None)
        if os.fork() == 0:
            listener.close()
            _serve_child(connection)
        connection.close()
    # The parent has gone without stopping the server: remove the socket, and its folder when
    # EngineForkServer made it.
    Path(path).unlink(missing_ok=True)
    if Path(path).parent.name.startswith(FOLDER_PREFIX):
        shutil.rmtree(Path(path).parent, ignore_errors=True)


class EngineForkServer:
    """Starts and stops one fork server process for a sandbox's builds."""

    def __init__(self, environment: dict[str, str]) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
        self.socket_path = str(self._directory / "engine.sock")
        repo_root = Path(__file__).resolve().parents[3]
        variables = {**environment, "PYTHONPATH": str(repo_root)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__, self.socket_path],
            env=variables,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not os.path.exists(self.socket_path):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    "the sandbox Pulumi engine's fork server did not start within "
                    f"{START_TIMEOUT_SECONDS:.0f} s (exit status {self._process.returncode}); "
                    "its error output precedes this message"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server by its process id; commands still running finish on their own."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        shutil.rmtree(self._directory, ignore_errors=True)


_shared_server: EngineForkServer | None = None
_shared_lock = threading.Lock()


def engine_socket(environment: dict[str, str]) -> str:
    """Return the socket of this process's fork server, starting it on first use.

    Every sandbox of the process shares the server, because each command brings its own
    environment. The server is stopped when the process exits.
    """
    global _shared_server
    with _shared_lock:
        if _shared_server is None:
            _shared_server = EngineForkServer(environment)
            atexit.register(_shared_server.stop)
        return _shared_server.socket_path


if __name__ == "__main__":
    serve(sys.argv[1])
