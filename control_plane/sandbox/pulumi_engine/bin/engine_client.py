"""Run one `pulumi` command in the sandbox engine's fork server (see ../forkserver.py).

Uses the standard library only and starts in milliseconds: it passes its arguments,
environment, working folder and standard descriptors to the server and exits with the
command's exit code.
"""

import json
import os
import socket
import sys

HEADER_BYTES = 8


def main() -> int:
    request = json.dumps(
        {"argv": sys.argv[1:], "cwd": os.getcwd(), "env": dict(os.environ)}
    ).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(os.environ["CONTROL_PLANE_ENGINE_SOCKET"])
        socket.send_fds(connection, [len(request).to_bytes(HEADER_BYTES, "big")], [0, 1, 2])
        connection.sendall(request)
        reply = b""
        while chunk := connection.recv(64):
            reply += chunk
    if not reply.strip().isdigit():
        print("error: the sandbox Pulumi engine ended without an exit code", file=sys.stderr)
        return 255
    return int(reply)


if __name__ == "__main__":
    sys.exit(main())
