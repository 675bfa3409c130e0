"""Serve ``application.application`` from the current directory on 127.0.0.1:$PORT.

The app host runs this file as a script with the application's Python interpreter when a
bundle has no Procfile, as EB's Python platform does with its default ``WSGIPath``. It uses
only the standard library, because it runs inside the application's own virtualenv.
"""

import os
import sys
from wsgiref.simple_server import make_server


def main() -> None:
    # Replace this script's own directory, so the app cannot import the simulator's modules.
    sys.path[0] = os.getcwd()
    import application

    port = int(os.environ["PORT"])
    with make_server("127.0.0.1", port, application.application) as server:
        print(f"Serving application.application on 127.0.0.1:{port}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
