"""Build a deployable Elastic Beanstalk source bundle from an app folder.

The zip is reproducible: entries are sorted and carry a fixed timestamp and mode, so the same
source gives byte-identical bundles and the same checksum.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

EXCLUDED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".pytest_cache", ".tox"}
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


class BundleError(ValueError):
    """The app folder cannot become a valid bundle."""


def _files(source: Path) -> list[Path]:
    return sorted(
        path
        for path in source.rglob("*")
        if path.is_file()
        and not EXCLUDED_DIRS.intersection(path.relative_to(source).parts)
        and path.suffix != ".pyc"
    )


def check_structure(source: Path) -> None:
    """Raise BundleError unless the folder has an entry point at its root, as EB requires."""
    if not source.is_dir():
        raise BundleError(f"bundle source {source} is not a folder")
    if not (source / "Procfile").is_file() and not (source / "application.py").is_file():
        nested = [path.parent for path in source.glob("*/application.py")]
        hint = f"; found one in {nested[0].name}/, zip that folder instead" if nested else ""
        raise BundleError(f"{source} has neither a Procfile nor application.py at its root{hint}")


def build_bundle(source: Path) -> bytes:
    """Return the zip bytes of the app folder."""
    check_structure(source)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in _files(source):
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), FIXED_TIMESTAMP)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
