"""Serve ``application.application`` from the current directory on 127.0.0.1:$PORT.

The app host runs this file as a script with the application's Python interpreter when a
bundle has no Procfile, as EB's Python platform does with its default ``WSGIPath``. It uses
only the standard library, because it runs inside the application's own virtualenv.
"""

import os
import sys
from wsgiref.simple_server import make_server


def with_forced_health_status(app, status, path):
    """Wrap the app so its health path returns ``status`` (the sandbox's failing-health fault)."""

    def wrapped(environ, start_response):
        if environ.get("PATH_INFO") != path:
            return app(environ, start_response)
        start_response(f"{status} Forced by the sandbox", [("Content-Type", "text/plain")])
        return [b"health check failure injected by the sandbox\n"]

    return wrapped


def main() -> None:
    # Replace this script's own directory, so the app cannot import the simulator's modules.
    sys.path[0] = os.getcwd()
    import application

    app = application.application
    forced = os.environ.get("CONTROL_PLANE_SANDBOX_HEALTH_STATUS")
    if forced:
        path = os.environ.get("CONTROL_PLANE_SANDBOX_HEALTH_PATH", "/health")
        app = with_forced_health_status(app, int(forced), path)
    port = int(os.environ["PORT"])
    with make_server("127.0.0.1", port, app) as server:
        print(f"Serving application.application on 127.0.0.1:{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
