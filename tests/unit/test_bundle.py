"""Bundles: reproducible zips, local checks before upload, and links that leave the folder."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from control_plane.bundle import BundleError, assemble_bundle, build_bundle


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


# Local packages in requirements.txt. EB runs `pip install -r requirements.txt` in the
# extracted bundle, so each local path must point into the bundle.

# A PEP 517 backend kept inside each test package (`backend-path`), so pip builds the package
# offline even with build isolation, as it would build a setuptools package on EB.
WHEEL_BACKEND = """
import base64
import hashlib
import pathlib
import zipfile

NAME = "{name}"
VERSION = "{version}"


def _digest(data):
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    root = pathlib.Path.cwd()
    info = f"{{NAME}}-{{VERSION}}.dist-info"
    files = {{f"{{NAME}}/{{p.name}}": p.read_bytes() for p in sorted((root / NAME).glob("*.py"))}}
    metadata = f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n"
    files[f"{{info}}/METADATA"] = metadata.encode()
    files[f"{{info}}/WHEEL"] = b"Wheel-Version: 1.0\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    record = [f"{{name}},sha256={{_digest(data)}},{{len(data)}}" for name, data in files.items()]
    files[f"{{info}}/RECORD"] = ("\\n".join([*record, f"{{info}}/RECORD,,"]) + "\\n").encode()
    wheel = f"{{NAME}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return wheel
"""


def make_package(folder: Path, name: str, value: str = "1", dependencies: str = "") -> Path:
    """Create an installable package `name` whose module sets VALUE."""
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text(f"VALUE = {value!r}\n")
    (folder / "_backend").mkdir()
    (folder / "_backend" / "wheel_backend.py").write_text(
        WHEEL_BACKEND.format(name=name, version="1.0")
    )
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "wheel_backend"\n'
        'backend-path = ["_backend"]\n\n'
        f'[project]\nname = "{name}"\nversion = "1.0"\ndependencies = [{dependencies}]\n'
    )
    return folder


def make_app_with_requirements(root: Path, requirements: str) -> Path:
    app = make_app(root)
    (app / "requirements.txt").write_text(requirements)
    return app


def read_entry(data: bytes, name: str) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(name).decode()


def vendored_folders(data: bytes) -> list[str]:
    """Return the folders directly under vendor/ in the bundle."""
    parts = [name.split("/") for name in names(data)]
    return sorted({part[1] for part in parts if part[0] == "vendor" and len(part) > 2})


def test_local_package_outside_app_is_vendored(tmp_path: Path) -> None:
    make_package(tmp_path / "shared", "shared")
    app = make_app_with_requirements(tmp_path, "requests==2.32.3\n../shared\nclick>=8\n")

    bundle = assemble_bundle(app)

    [folder] = vendored_folders(bundle.data)
    assert re.fullmatch(r"shared-[0-9a-f]{12}", folder)
    assert f"vendor/{folder}/shared/__init__.py" in names(bundle.data)
    assert f"vendor/{folder}/pyproject.toml" in names(bundle.data)
    assert read_entry(bundle.data, "requirements.txt") == (
        f"requests==2.32.3\n./vendor/{folder}\nclick>=8\n"
    )
    assert (app / "requirements.txt").read_text() == "requests==2.32.3\n../shared\nclick>=8\n"
    [vendored] = bundle.vendored
    assert vendored.requirement == "requirements.txt line 2: ../shared"
    assert vendored.source == (tmp_path / "shared").resolve()
    assert vendored.bundle_path == f"vendor/{folder}"


def test_editable_and_url_forms_become_plain_paths(tmp_path: Path) -> None:
    make_package(tmp_path / "common", "common")
    make_package(tmp_path / "pkg", "pkg")
    make_package(tmp_path / "tools", "tools")
    absolute = (tmp_path / "tools").as_posix()
    app = make_app_with_requirements(
        tmp_path,
        f"-e ../common\nfile:../pkg ; python_version >= '3.8'\ntools[cli] @ file://{absolute}\n",
    )

    data = build_bundle(app)

    common, pkg, tools = vendored_folders(data)
    assert read_entry(data, "requirements.txt") == (
        f"./vendor/{common}\n./vendor/{pkg} ; python_version >= '3.8'\n./vendor/{tools}[cli]\n"
    )


def test_index_requirements_are_kept_byte_for_byte(tmp_path: Path) -> None:
    text = (
        "# pinned\n"
        "--index-url https://${PIP_USER}:${PIP_TOKEN}@pypi.example.com/simple\n"
        "requests==2.32.3 \\\n"
        "    --hash=sha256:0000\n"
        "name @ https://example.com/name-1.0.tar.gz\n"
        "git+https://example.com/repo.git#egg=repo\r\n"
    )
    app = make_app_with_requirements(tmp_path, text)

    bundle = assemble_bundle(app)

    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        assert archive.read("requirements.txt") == text.encode()
    assert bundle.vendored == ()


def test_rewritten_line_keeps_line_ending(tmp_path: Path) -> None:
    make_package(tmp_path / "shared", "shared")
    app = make_app_with_requirements(tmp_path, "click>=8\r\n-e ../shared \\\r\n\r\nflask")

    data = build_bundle(app)

    [folder] = vendored_folders(data)
    assert read_entry(data, "requirements.txt") == f"click>=8\r\n./vendor/{folder}\r\nflask"


def test_path_inside_app_stays_in_place(tmp_path: Path) -> None:
    app = make_app_with_requirements(tmp_path, "-e ./libs/inner\nlibs/inner\n./libs/inner\n")
    make_package(app / "libs" / "inner", "inner")

    data = build_bundle(app)

    assert vendored_folders(data) == []
    # Only the editable line changes: EB moves the app after pip ran, so an editable install
    # would point at a folder that is gone.
    assert read_entry(data, "requirements.txt") == "./libs/inner\nlibs/inner\n./libs/inner\n"


def test_vendored_requirements_install_offline(tmp_path: Path) -> None:
    make_package(tmp_path / "shared", "shared", value="outside")
    app = make_app_with_requirements(tmp_path, "-e ../shared\n./libs/inner\n")
    make_package(app / "libs" / "inner", "inner", value="inside")
    extracted = tmp_path / "extracted"
    target = tmp_path / "site-packages"
    with zipfile.ZipFile(io.BytesIO(build_bundle(app))) as archive:
        archive.extractall(extracted)

    # Like EB: plain `pip install -r requirements.txt` from the extracted bundle's root.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--isolated",
            "--no-index",
            "--no-cache-dir",
            "--quiet",
            "--target",
            str(target),
            "-r",
            "requirements.txt",
        ],
        cwd=extracted,
        check=True,
        timeout=120,
    )

    assert (target / "shared" / "__init__.py").read_text() == "VALUE = 'outside'\n"
    assert (target / "inner" / "__init__.py").read_text() == "VALUE = 'inside'\n"
    assert (target / "shared-1.0.dist-info").is_dir()


def test_missing_local_path_names_line_and_fix(tmp_path: Path) -> None:
    app = make_app_with_requirements(tmp_path, "requests==2.32.3\n-e ../missing\n")

    with pytest.raises(BundleError) as raised:
        build_bundle(app)

    message = str(raised.value)
    assert "requirements.txt line 2: -e ../missing" in message
    assert "does not exist" in message
    assert "resolved from the app folder" in message


def test_missing_file_url_is_rejected(tmp_path: Path) -> None:
    app = make_app_with_requirements(tmp_path, "pkg @ file:../nowhere\n")

    with pytest.raises(BundleError, match=r"requirements\.txt line 1: .*does not exist"):
        build_bundle(app)


def test_vendored_builds_are_byte_identical(tmp_path: Path) -> None:
    make_package(tmp_path / "work" / "shared", "shared")
    app = make_app_with_requirements(tmp_path / "work", "../shared\n")
    first = build_bundle(app)
    os.utime(tmp_path / "work" / "shared" / "shared" / "__init__.py", (1_700_000_000,) * 2)
    second = build_bundle(app)
    # The same sources elsewhere on disk: no absolute path reaches the bundle.
    moved = tmp_path / "elsewhere"
    (tmp_path / "work").rename(moved)
    third = build_bundle(moved / "app")

    assert first == second
    assert first == third


def test_vendored_folder_name_follows_content(tmp_path: Path) -> None:
    package = make_package(tmp_path / "shared", "shared")
    app = make_app_with_requirements(tmp_path, "../shared\n")
    before = vendored_folders(build_bundle(app))
    (package / "shared" / "__init__.py").write_text("VALUE = '2'\n")

    after = vendored_folders(build_bundle(app))

    assert before != after


def test_build_output_of_local_package_is_left_out(tmp_path: Path) -> None:
    package = make_package(tmp_path / "shared", "shared")
    for folder in ("build", "dist", "shared.egg-info", ".git"):
        (package / folder).mkdir()
        (package / folder / "stale.txt").write_text("x")
    app = make_app_with_requirements(tmp_path, "../shared\n")

    data = build_bundle(app)

    vendored = [name for name in names(data) if name.startswith("vendor/")]
    assert all("stale.txt" not in name for name in vendored)


def test_local_archive_is_copied(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    archive_bytes = b"not really a tarball, copied as is"
    (tmp_path / "dist" / "shared-1.0.tar.gz").write_bytes(archive_bytes)
    app = make_app_with_requirements(tmp_path, "../dist/shared-1.0.tar.gz\n")

    data = build_bundle(app)

    [line] = read_entry(data, "requirements.txt").splitlines()
    assert re.fullmatch(r"\./vendor/[0-9a-f]{12}/shared-1\.0\.tar\.gz", line)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.read(line.removeprefix("./")) == archive_bytes


def test_folder_without_project_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "module.py").write_text("x = 1\n")
    app = make_app_with_requirements(tmp_path, "../plain\n")

    with pytest.raises(BundleError) as raised:
        build_bundle(app)

    message = str(raised.value)
    assert "requirements.txt line 1: ../plain" in message
    assert "neither pyproject.toml nor setup.py" in message


def test_package_link_leaving_package_is_rejected(tmp_path: Path) -> None:
    package = make_package(tmp_path / "shared", "shared")
    (tmp_path / "secret.txt").write_text("do-not-ship\n")
    (package / "shared" / "config.txt").symlink_to(tmp_path / "secret.txt")
    app = make_app_with_requirements(tmp_path, "../shared\n")

    with pytest.raises(BundleError, match="outside the package folder"):
        build_bundle(app)


def test_local_file_dependency_of_package_is_rejected(tmp_path: Path) -> None:
    make_package(tmp_path / "shared", "shared", dependencies='"common @ file:../common"')
    app = make_app_with_requirements(tmp_path, "../shared\n")

    with pytest.raises(BundleError) as raised:
        build_bundle(app)

    message = str(raised.value)
    assert "common @ file:../common" in message
    assert "declare it by name" in message


def test_ebignored_local_package_is_rejected(tmp_path: Path) -> None:
    app = make_app_with_requirements(tmp_path, "./libs/inner\n")
    make_package(app / "libs" / "inner", "inner")
    (app / ".ebignore").write_text("libs/\n")

    with pytest.raises(BundleError, match=r"line 1: \./libs/inner: .*left out of the bundle"):
        build_bundle(app)


def test_nested_requirements_outside_app_are_copied(tmp_path: Path) -> None:
    make_package(tmp_path / "shared", "shared")
    # pip resolves requirement paths from its working folder, the app folder, even in a file
    # that sits elsewhere.
    (tmp_path / "common.txt").write_text("requests==2.32.3\n./../shared\n")
    app = make_app_with_requirements(tmp_path, "-r ../common.txt\n-r extra.txt\n")
    (app / "extra.txt").write_text("-e ../shared\n")

    data = build_bundle(app)

    [folder] = vendored_folders(data)
    top = read_entry(data, "requirements.txt").splitlines()
    assert re.fullmatch(r"-r vendor/common-[0-9a-f]{12}\.txt", top[0])
    assert top[1] == "-r extra.txt"
    assert read_entry(data, top[0].removeprefix("-r ")) == (
        f"requests==2.32.3\n./vendor/{folder}\n"
    )
    assert read_entry(data, "extra.txt") == f"./vendor/{folder}\n"


def test_requirements_cycle_is_rejected(tmp_path: Path) -> None:
    app = make_app_with_requirements(tmp_path, "-r other.txt\n")
    (app / "other.txt").write_text("-r requirements.txt\n")

    with pytest.raises(BundleError, match="includes itself"):
        build_bundle(app)


def test_find_links_outside_app_are_copied(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "shared-1.0-py3-none-any.whl").write_bytes(b"wheel")
    (tmp_path / "wheels" / "notes.txt").write_text("not an archive")
    app = make_app_with_requirements(tmp_path, "--find-links ../wheels\nshared==1.0\n")

    data = build_bundle(app)

    first, second = read_entry(data, "requirements.txt").splitlines()
    assert re.fullmatch(r"--find-links vendor/wheels-[0-9a-f]{12}", first)
    assert second == "shared==1.0"
    folder = first.removeprefix("--find-links ")
    assert [name for name in names(data) if name.startswith(folder)] == [
        f"{folder}/shared-1.0-py3-none-any.whl"
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("--index-url file:///srv/simple", "local package index"),
        ("--extra-index-url=file:///srv/simple", "local package index"),
        ("git+file:///srv/repo#egg=repo", "local repository"),
    ],
)
def test_unreachable_local_sources_are_rejected(tmp_path: Path, line: str, expected: str) -> None:
    app = make_app_with_requirements(tmp_path, f"{line}\n")

    with pytest.raises(BundleError, match=expected):
        build_bundle(app)


def test_vendor_path_taken_by_app_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "shared-1.0.tar.gz").write_bytes(b"archive")
    app = make_app_with_requirements(tmp_path, "../dist/shared-1.0.tar.gz\n")
    digest = assemble_bundle(app).vendored[0].bundle_path.split("/")[1]
    (app / "vendor" / digest).mkdir(parents=True)
    (app / "vendor" / digest / "shared-1.0.tar.gz").write_bytes(b"other")

    with pytest.raises(BundleError, match="already contains"):
        build_bundle(app)


@pytest.mark.parametrize("patterns", ["*\n", "application.py\nProcfile\n", "/*\n"])
def test_ebignore_of_the_entry_point_is_rejected(tmp_path: Path, patterns: str) -> None:
    app = make_app(tmp_path)
    (app / ".ebignore").write_text(patterns)

    with pytest.raises(BundleError, match=r"\.ebignore in .* leaves out the app's entry point"):
        build_bundle(app)


def test_self_link_is_rejected(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / "loop").symlink_to("loop")

    with pytest.raises(BundleError, match="loop is a symbolic link loop; remove it"):
        build_bundle(app)


def test_non_utf8_ebignore_is_rejected(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / ".ebignore").write_bytes(b"caf\xe9/\n")

    with pytest.raises(BundleError, match=r"\.ebignore is not UTF-8 text .*save it as UTF-8"):
        build_bundle(app)


def test_non_utf8_file_name_is_rejected(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    (app / os.fsdecode(b"caf\xe9.txt")).write_text("x")

    with pytest.raises(BundleError, match="has a name that is not valid UTF-8"):
        build_bundle(app)
