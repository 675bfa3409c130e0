"""Sample Elastic Beanstalk app: a stdlib WSGI app with a health endpoint.

EB's Python platform serves the `application` callable of application.py. The control plane
sets the environment property APP_VERSION to the deployed version label, and /health reports
it so a deployment can check which version is serving.
"""

import json
import os
import time

STARTED_AT = time.time()


def _json(start_response, status, document):
    body = json.dumps(document).encode("utf-8")
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    version = os.environ.get("APP_VERSION", "unknown")
    if path == "/health":
        return _json(
            start_response,
            "200 OK",
            {"status": "ok", "version": version, "uptime_seconds": round(time.time() - STARTED_AT)},
        )
    if path == "/":
        body = f"<h1>Sample app</h1><p>Version {version}</p>".encode()
        headers = [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]
    return _json(start_response, "404 Not Found", {"error": f"no route for {path}"})
