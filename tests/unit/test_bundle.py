"""Bundles: reproducible zips, local checks before upload, and links that leave the folder."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from control_plane.bundle import BundleError, build_bundle


def make_app(root: Path) -> Path:
    app = root / "app"
    (app / "static").mkdir(parents=True)
    (app / "application.py").write_text("application = None\n")
    (app / "static" / "index.html").write_text("<p>hello</p>\n")
    return app


def names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


def test_same_folder_gives_same_bytes(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    first = build_bundle(app)
    os.utime(app / "application.py", (1_700_000_000, 1_700_000_000))

    second = build_bundle(app)

    assert first == second


def test_caches_and_tool_folders_are_left_out(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "application.cpython-311.pyc").write_bytes(b"\0")
    (app / ".git").mkdir()
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (app / "stale.pyc").write_bytes(b"\0")

    assert names(build_bundle(app)) == ["application.py", "static/index.html"]


def test_missing_folder_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="does not exist"):
        build_bundle(tmp_path / "absent")


def test_file_is_not_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "app.zip"
    path.write_bytes(b"PK")

    with pytest.raises(BundleError, match="is not a folder"):
        build_bundle(path)


def test_link_leaving_the_folder_is_rejected(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = do-not-ship\n")
    (app / "static" / "config").symlink_to(secret)

    with pytest.raises(BundleError) as raised:
        build_bundle(app)

    message = str(raised.value)
    assert "static/config is a symbolic link" in message
    assert "outside the app folder" in message


def test_folder_link_leaving_the_folder_is_rejected(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "lib.py").write_text("x = 1\n")
    (app / "shared").symlink_to(tmp_path / "shared")

    with pytest.raises(BundleError, match="shared is a symbolic link"):
        build_bundle(app)


def test_link_inside_folder_is_bundled(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / "index.html").symlink_to(Path("static") / "index.html")

    data = build_bundle(app)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read("index.html") == b"<p>hello</p>\n"


def test_broken_link_is_rejected(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / "missing.py").symlink_to(app / "nowhere.py")

    with pytest.raises(BundleError, match=r"missing\.py is a broken symbolic link"):
        build_bundle(app)


def test_link_loop_is_rejected(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / "static" / "again").symlink_to(app)

    with pytest.raises(BundleError, match="static/again is a symbolic link"):
        build_bundle(app)


def test_oversized_bundle_names_size_and_limit(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / "data.bin").write_bytes(os.urandom(4096))

    with pytest.raises(BundleError) as raised:
        build_bundle(app, max_bytes=1024)

    message = str(raised.value)
    assert "more than the 1024 bytes" in message
    assert "Elastic Beanstalk accepts" in message


def test_ebignore_excludes_and_reincludes(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "docs").mkdir(parents=True)
    (app / "static").mkdir()
    (app / "application.py").write_text("application = None\n")
    (app / "notes.md").write_text("x")
    (app / "docs" / "guide.txt").write_text("x")
    (app / "static" / "big.bin").write_text("x")
    (app / "static" / "keep.bin").write_text("x")
    (app / ".ebignore").write_text("# comment\n*.md\ndocs/\n/static/*.bin\n!static/keep.bin\n")

    names = zipfile.ZipFile(io.BytesIO(build_bundle(app))).namelist()

    assert "application.py" in names
    assert "notes.md" not in names
    assert "docs/guide.txt" not in names
    assert "static/big.bin" not in names
    assert "static/keep.bin" in names
