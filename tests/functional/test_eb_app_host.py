"""The app host installs and runs bundles as real processes on 127.0.0.1."""

from __future__ import annotations

import http.client
import io
import json
import re
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from control_plane.sandbox.eb.app_host import AppHost, AppStartError

REPORT_PREFIX_APP = """
import json, sys

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"prefix": sys.prefix}).encode()]
"""


def make_bundle(files: dict[str, str], modes: dict[str, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = ((modes or {}).get(name, 0o644)) << 16
            archive.writestr(info, text)
    return buffer.getvalue()


def get_json(port: int, path: str = "/") -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


@pytest.fixture
def objects() -> dict[tuple[str, str], bytes]:
    return {}


@pytest.fixture
def host(tmp_path: Path, objects) -> Iterator[AppHost]:
    host = AppHost(lambda bucket, key: objects[(bucket, key)], tmp_path, start_timeout=5.0)
    yield host
    host.shutdown()


def test_requirements_install_into_cached_virtualenv(host, objects, tmp_path, monkeypatch):
    # The requirements name no package and pip may not use an index, so nothing is downloaded.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    objects[("b", "app.zip")] = make_bundle(
        {"requirements.txt": "# no dependencies\n", "application.py": REPORT_PREFIX_APP}
    )
    ports = [AppHost.allocate_port(), AppHost.allocate_port()]

    for index, port in enumerate(ports):
        host.deploy(f"e-{index}", port, "v1", ("b", "app.zip"), {})

    venvs = list((tmp_path / "venvs").iterdir())
    assert len(venvs) == 1
    assert (venvs[0] / ".installed").is_file()
    for port in ports:
        assert Path(get_json(port)["prefix"]) == venvs[0]


def test_executable_bit_survives_extraction(host, objects):
    script = '#!/bin/sh\nexec python -m http.server --bind 127.0.0.1 "$PORT"\n'
    objects[("b", "app.zip")] = make_bundle(
        {"Procfile": "web: ./serve.sh\n", "serve.sh": script}, modes={"serve.sh": 0o755}
    )
    port = AppHost.allocate_port()

    host.deploy("e-1", port, "v1", ("b", "app.zip"), {})

    assert host.is_running("e-1")


def test_exiting_process_raises_with_log_path(host, objects, tmp_path):
    objects[("b", "app.zip")] = make_bundle({"Procfile": "web: echo boom >&2; exit 4\n"})

    with pytest.raises(AppStartError, match="exited with code 4") as raised:
        host.deploy("e-1", AppHost.allocate_port(), "v1", ("b", "app.zip"), {})

    stderr_log = tmp_path / "logs" / "e-1" / "web.stderr.log"
    assert str(stderr_log) in str(raised.value)
    assert stderr_log.read_text() == "boom\n"
    assert not host.has_process("e-1")


def test_port_taken_by_other_process_raises(host, objects):
    objects[("b", "app.zip")] = make_bundle({"application.py": REPORT_PREFIX_APP})
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]

        with pytest.raises(AppStartError, match="in use"):
            host.deploy("e-1", port, "v1", ("b", "app.zip"), {})


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"README.md": "docs only"}, "neither a Procfile nor an application.py"),
        ({"Procfile": "worker: run\n"}, "no 'web:' process"),
    ],
)
def test_bundle_without_web_process_raises(host, objects, files, message):
    objects[("b", "app.zip")] = make_bundle(files)

    with pytest.raises(AppStartError, match=message):
        host.deploy("e-1", AppHost.allocate_port(), "v1", ("b", "app.zip"), {})


def test_missing_object_raises_fetch_error(host):
    with pytest.raises(AppStartError, match=re.escape("fetching s3://b/missing.zip failed")):
        host.deploy("e-1", AppHost.allocate_port(), "v1", ("b", "missing.zip"), {})


def test_redeploy_replaces_process_and_old_bundle(host, objects, tmp_path):
    objects[("b", "app.zip")] = make_bundle({"application.py": REPORT_PREFIX_APP})
    port = AppHost.allocate_port()
    host.deploy("e-1", port, "v1", ("b", "app.zip"), {})

    host.deploy("e-1", port, "v2", ("b", "app.zip"), {})

    app_dirs = [path.name for path in (tmp_path / "apps" / "e-1").iterdir()]
    assert app_dirs == ["0002-v2"]
    assert "prefix" in get_json(port)
