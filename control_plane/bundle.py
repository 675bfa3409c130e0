"""Build a deployable Elastic Beanstalk source bundle from an app folder.

The zip is reproducible: entries are sorted and carry a fixed timestamp and mode, so the same
source gives byte-identical bundles and the same checksum.

Symbolic links are followed only while they stay inside the app folder, so a bundle never
contains files from elsewhere on the machine. A link that resolves outside the folder, a
broken link and a link loop each raise BundleError naming the link.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import zipfile
from pathlib import Path

EXCLUDED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".pytest_cache", ".tox"}
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
# Elastic Beanstalk rejects source bundles larger than 500 MB; Preflight checks the same limit
# (lambdas/preflight.py) for bundles that were not built here.
MAX_BUNDLE_BYTES = 500 * 1024 * 1024


class BundleError(ValueError):
    """The app folder cannot become a valid bundle."""


def _files(source: Path) -> list[tuple[str, Path]]:
    """Return (archive name, file to read) for every file to bundle, sorted by archive name."""
    root = source.resolve()
    found: list[tuple[str, Path]] = []
    try:
        _collect(source, root, "", frozenset({root}), found)
    except OSError as error:
        raise BundleError(f"cannot read the app folder {source}: {error}") from None
    ignore = read_ebignore(source)
    return sorted(item for item in found if not is_ignored(item[0], ignore))


def read_ebignore(source: Path) -> list[str]:
    """Return the patterns of the folder's .ebignore, which the EB CLI reads as .gitignore does."""
    path = source / ".ebignore"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def is_ignored(name: str, patterns: list[str]) -> bool:
    """Apply .gitignore-style patterns to an archive name; the last matching pattern wins.

    Supported: `*`, `?` and `[...]` wildcards, a leading `/` anchoring to the folder root, a
    trailing `/` matching folders, and `!` re-including. `**` is treated like `*`.
    """
    ignored = False
    parts = name.split("/")
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        directory_only = pattern.endswith("/")
        pattern = pattern.strip("/") if pattern.startswith("/") else pattern.rstrip("/")
        anchored = raw.lstrip("!").startswith("/") or "/" in pattern
        pattern = pattern.replace("**", "*")
        if anchored:
            # Matches the path itself or any folder that contains it.
            candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
        else:
            candidates = parts
        if directory_only:
            candidates = candidates[:-1] if anchored else parts[:-1]
        if any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates):
            ignored = not negate
    return ignored


def _collect(
    directory: Path,
    root: Path,
    prefix: str,
    visiting: frozenset[Path],
    found: list[tuple[str, Path]],
) -> None:
    """Add the files under `directory` to `found`.

    `visiting` contains the real paths of the folders being walked, to detect link loops.
    """
    for entry in sorted(os.scandir(directory), key=lambda item: item.name):
        if entry.name in EXCLUDED_DIRS:
            continue
        name = f"{prefix}{entry.name}"
        path = Path(entry.path)
        real = path.resolve()
        if entry.is_symlink():
            _check_link(path, name, real, root)
        if real.is_dir():
            if real in visiting:
                raise BundleError(
                    f"{name} is a symbolic link to {real}, which contains it; remove the loop"
                )
            _collect(path, root, f"{name}/", visiting | {real}, found)
        elif real.is_file() and path.suffix != ".pyc":
            found.append((name, real))


def _check_link(path: Path, name: str, real: Path, root: Path) -> None:
    if not real.is_relative_to(root):
        raise BundleError(
            f"{name} is a symbolic link to {real}, outside the app folder {root}; "
            "replace it with a copy of what it points to"
        )
    if not real.exists():
        raise BundleError(f"{name} is a broken symbolic link (to {os.readlink(path)})")


def check_structure(source: Path) -> None:
    """Raise BundleError unless the folder has an entry point at its root, as EB requires."""
    if not source.exists():
        raise BundleError(f"bundle source {source} does not exist")
    if not source.is_dir():
        raise BundleError(f"bundle source {source} is not a folder; pass the app's folder")
    if not (source / "Procfile").is_file() and not (source / "application.py").is_file():
        nested = [path.parent for path in source.glob("*/application.py")]
        hint = f"; found one in {nested[0].name}/, zip that folder instead" if nested else ""
        raise BundleError(f"{source} has neither a Procfile nor application.py at its root{hint}")


def build_bundle(source: Path, max_bytes: int = MAX_BUNDLE_BYTES) -> bytes:
    """Return the zip bytes of the app folder.

    Raises BundleError when the folder is not a valid app, contains a link that leaves it, or
    the zip grows beyond `max_bytes`. The size is checked after each file, so an oversized
    folder fails without being compressed in full.
    """
    check_structure(source)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in _files(source):
            info = zipfile.ZipInfo(name, FIXED_TIMESTAMP)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            try:
                content = path.read_bytes()
            except OSError as error:
                raise BundleError(f"cannot read {name} in {source}: {error}") from None
            archive.writestr(info, content)
            _check_size(buffer.tell(), max_bytes, source)
    data = buffer.getvalue()
    _check_size(len(data), max_bytes, source)
    return data


def _check_size(size: int, max_bytes: int, source: Path) -> None:
    if size > max_bytes:
        raise BundleError(
            f"the bundle of {source} is at least {size} bytes, more than the {max_bytes} bytes "
            f"({max_bytes / 1024 / 1024:.0f} MB) that Elastic Beanstalk accepts; leave build "
            "output and data files out of the app folder"
        )


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
