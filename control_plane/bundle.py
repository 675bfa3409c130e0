"""Build a deployable Elastic Beanstalk source bundle from an app folder.

The zip is reproducible: entries are sorted and carry a fixed timestamp and mode, so the same
source gives byte-identical bundles and the same checksum.

Symbolic links are followed only while they stay inside the app folder, so a bundle never
contains files from elsewhere on the machine. A link that resolves outside the folder, a
broken link and a link loop each raise BundleError naming the link.

EB's Python platform runs `pip install -r requirements.txt` from the root of the extracted
bundle, so a requirement that names a local path only works when that path is inside the
bundle. The bundle vendors such packages (see `_Vendoring`).
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import posixpath
import re
import shlex
import tomllib
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path

EXCLUDED_DIRS = {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".pytest_cache", ".tox"}
FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
# Elastic Beanstalk rejects source bundles larger than 500 MB; Preflight checks the same limit
# (lambdas/preflight.py) for bundles that were not built here.
MAX_BUNDLE_BYTES = 500 * 1024 * 1024


class BundleError(ValueError):
    """The app folder cannot become a valid bundle."""


@dataclass(frozen=True)
class VendoredPackage:
    """A local requirement copied into the bundle."""

    requirement: str  # the requirements file, line number and line, as error messages name it
    source: Path  # the resolved local path
    bundle_path: str  # where the copy sits in the bundle


@dataclass(frozen=True)
class Bundle:
    """The zip bytes of an app folder and the local packages vendored into it."""

    data: bytes
    vendored: tuple[VendoredPackage, ...]


def _files(source: Path) -> list[tuple[str, Path]]:
    """Return (archive name, file to read) for every file to bundle, sorted by archive name."""
    found = _walk(source, "app")
    ignore = read_ebignore(source)
    return sorted(item for item in found if not is_ignored(item[0], ignore))


def _walk(folder: Path, kind: str) -> list[tuple[str, Path]]:
    """Return (relative name, real path) for the files under `folder`, an app or package."""
    root = folder.resolve()
    found: list[tuple[str, Path]] = []
    try:
        _collect(folder, root, "", frozenset({root}), found, kind)
    except OSError as error:
        raise BundleError(f"cannot read the {kind} folder {folder}: {error}") from None
    return found


def read_ebignore(source: Path) -> list[str]:
    """Return the patterns of the folder's .ebignore, which the EB CLI reads as .gitignore does."""
    path = source / ".ebignore"
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise BundleError(f"{path} is not UTF-8 text ({error}); save it as UTF-8") from None
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
    kind: str = "app",
) -> None:
    """Add the files under `directory` to `found`.

    `visiting` contains the real paths of the folders being walked, to detect link loops.
    `kind` names the folder being bundled ("app" or "package") in error messages.
    """
    for entry in sorted(os.scandir(directory), key=lambda item: item.name):
        if entry.name in EXCLUDED_DIRS:
            continue
        name = f"{prefix}{entry.name}"
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise BundleError(
                f"{name!r} has a name that is not valid UTF-8, which zip archives and EB need; "
                "rename it"
            ) from None
        path = Path(entry.path)
        try:
            real = path.resolve()
        except RuntimeError:
            # Python raises RuntimeError for a symbolic link that leads back to itself.
            raise BundleError(f"{name} is a symbolic link loop; remove it") from None
        if entry.is_symlink():
            _check_link(path, name, real, root, kind)
        if real.is_dir():
            if real in visiting:
                raise BundleError(
                    f"{name} is a symbolic link to {real}, which contains it; remove the loop"
                )
            _collect(path, root, f"{name}/", visiting | {real}, found, kind)
        elif real.is_file() and path.suffix != ".pyc":
            found.append((name, real))


def _check_link(path: Path, name: str, real: Path, root: Path, kind: str = "app") -> None:
    if not real.is_relative_to(root):
        raise BundleError(
            f"{name} is a symbolic link to {real}, outside the {kind} folder {root}; "
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
    """Return the zip bytes of the app folder, with its local packages vendored.

    Raises BundleError as `assemble_bundle` does.
    """
    return assemble_bundle(source, max_bytes).data


def assemble_bundle(source: Path, max_bytes: int = MAX_BUNDLE_BYTES) -> Bundle:
    """Zip the app folder, vendoring the local packages its requirements.txt refers to.

    Raises BundleError when the folder is not a valid app, contains a link that leaves it,
    refers to a local path that is missing or cannot be vendored, or the zip grows beyond
    `max_bytes`. The size is checked after each file, so an oversized folder fails without
    being compressed in full.
    """
    check_structure(source)
    entries: dict[str, Path | bytes] = dict(_files(source))
    if "Procfile" not in entries and "application.py" not in entries:
        raise BundleError(
            f".ebignore in {source} leaves out the app's entry point (Procfile and "
            "application.py), so EB would find no app in the bundle; remove the pattern that "
            "matches it"
        )
    vendoring = _Vendoring(source, entries)
    vendoring.run()
    entries.update(vendoring.rewritten)
    entries.update(vendoring.added)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, FIXED_TIMESTAMP)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, _read(entries[name], name, source))
            _check_size(buffer.tell(), max_bytes, source)
    data = buffer.getvalue()
    _check_size(len(data), max_bytes, source)
    return Bundle(data=data, vendored=tuple(vendoring.vendored))


def _read(content: Path | bytes, name: str, source: Path) -> bytes:
    if isinstance(content, bytes):
        return content
    try:
        return content.read_bytes()
    except OSError as error:
        raise BundleError(f"cannot read {name} in {source}: {error}") from None


def _check_size(size: int, max_bytes: int, source: Path) -> None:
    if size > max_bytes:
        raise BundleError(
            f"the bundle of {source} is at least {size} bytes, more than the {max_bytes} bytes "
            f"({max_bytes / 1024 / 1024:.0f} MB) that Elastic Beanstalk accepts; leave build "
            "output and data files out of the app folder"
        )


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Local packages in requirements.txt.
#
# EB's Python platform installs the requirements.txt at the top of the bundle with
# `pip install -r requirements.txt`, run in the extracted bundle (the application staging
# folder) before the app moves to its runtime folder. Sources: the AWS Elastic Beanstalk
# Developer Guide pages "Specifying dependencies using a requirements file" and "Extending
# Elastic Beanstalk Linux platforms", and the command as eb-engine.log prints it. pip resolves
# a relative requirement path from its working folder. So a path works on EB only when it
# points into the bundle, and an editable install would keep pointing at the staging folder.
#
# Each local package is therefore copied as source into vendor/<name>-<digest>/, and its line
# becomes a plain `./vendor/...` path. It is not built into a wheel because pip reinstalls a
# local folder on every install but skips a local wheel whose version is already installed
# (pip 26, resolution/resolvelib/resolver.py). A changed package with an unchanged version
# would then stay old on an instance that keeps its virtualenv. The digest in the folder name
# changes requirements.txt whenever the package changes, for caches keyed by that file.

VENDOR_DIR = "vendor"
REQUIREMENTS_FILE = "requirements.txt"
DIGEST_LENGTH = 12
PROJECT_FILES = ("pyproject.toml", "setup.py")
# Build output in a package folder, left out because pip builds the package again on EB.
PACKAGE_BUILD_OUTPUT = ("build", "dist")
# Archive suffixes pip installs from, as in pip/_internal/utils/filetypes.py.
ARCHIVE_SUFFIXES = (
    ".whl",
    ".zip",
    ".tar.gz",
    ".tgz",
    ".tar",
    ".tar.bz2",
    ".tbz",
    ".tar.xz",
    ".txz",
    ".tlz",
    ".tar.lz",
    ".tar.lzma",
)
REMOTE_SCHEMES = ("http", "https", "ftp")
VCS_SCHEMES = ("git", "hg", "svn", "bzr")
# The patterns of pip's requirements file parser (pip/_internal/req/req_file.py).
COMMENT_RE = re.compile(r"(^|\s+)#.*$")
ENV_VAR_RE = re.compile(r"\$\{([A-Z0-9_]+)\}")
NAMED_URL_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S.*)$")
EXTRAS_RE = re.compile(r"^(.+?)(\[[^\]]+\])$")
EDITABLE_OPTIONS = ("-e", "--editable")
INCLUDE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")
FIND_LINKS_OPTIONS = ("-f", "--find-links")
INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url")
VALUE_OPTIONS = EDITABLE_OPTIONS + INCLUDE_OPTIONS + FIND_LINKS_OPTIONS + INDEX_OPTIONS


@dataclass(frozen=True)
class _Line:
    """One logical line of a requirements file: continuations joined, comment removed."""

    number: int  # 1-based number of its first physical line
    first: int  # index of its first physical line
    last: int  # index of its last physical line
    text: str


@dataclass(frozen=True)
class _Reference:
    """A requirement that names a local path."""

    path: str  # environment variables expanded; relative to pip's working folder or absolute
    extras: str  # "[a,b]" or ""
    markers: str  # environment markers or ""
    plain: bool  # a relative path without "..", which pip reads the same way in the bundle


class _Vendoring:
    """Rewrites requirements.txt and the files it includes so each local path is in the bundle.

    `entries` maps the app's bundle names to their files. After `run`, `rewritten` contains the
    new content of changed requirement files, `added` the vendored files by bundle name, and
    `vendored` one record per vendored path.
    """

    def __init__(self, source: Path, entries: dict[str, Path | bytes]) -> None:
        self.root = source.resolve()
        # pip resolves relative paths from its working folder, which on EB is the bundle root.
        self.base = Path(os.path.abspath(source))
        self.entries = entries
        self.rewritten: dict[str, bytes] = {}
        self.added: dict[str, Path | bytes] = {}
        self.vendored: list[VendoredPackage] = []
        self._copies: dict[Path, str] = {}
        self._including: list[Path] = []

    def run(self) -> None:
        if REQUIREMENTS_FILE in self.entries:
            self._rewrite_inside_file(REQUIREMENTS_FILE)

    def _rewrite_inside_file(self, name: str) -> None:
        content, changed = self._rewrite_file(self.base / name, name, posixpath.dirname(name))
        if changed:
            self.rewritten[name] = content

    def _rewrite_file(self, location: Path, label: str, bundle_dir: str) -> tuple[bytes, bool]:
        """Return the file's content with local paths rewritten, and whether it changed.

        `bundle_dir` is the file's folder in the bundle, which relative -r, -c and
        --find-links values in the rewritten file start from.
        """
        real = location.resolve()
        if real in self._including:
            raise BundleError(f"{label} includes itself through -r or -c; remove the cycle")
        original = _read(location, label, location.parent)
        try:
            physical = original.decode("utf-8-sig").splitlines(keepends=True)
        except UnicodeDecodeError as error:
            raise BundleError(f"{label} is not UTF-8 text ({error}); save it as UTF-8") from None
        self._including.append(real)
        try:
            replacements = {}
            for line in _logical_lines(physical):
                where = f"{label} line {line.number}: {line.text}"
                new = self._rewrite_line(line.text, where, location.parent, bundle_dir)
                if new is not None:
                    replacements[line.first] = (line.last, new)
        finally:
            self._including.pop()
        if not replacements:
            return original, False
        output: list[str] = []
        index = 0
        while index < len(physical):
            if index in replacements:
                last, new = replacements[index]
                ending = physical[last][len(physical[last].rstrip("\r\n")) :]
                output.append(new + ending)
                index = last + 1
            else:
                output.append(physical[index])
                index += 1
        return "".join(output).encode(), True

    def _rewrite_line(self, text: str, where: str, folder: Path, bundle_dir: str) -> str | None:
        """Return the replacement of one logical line, or None to keep it as it is."""
        if not text.startswith("-"):
            requirement, options = _split_options(text)
            return self._rewrite_requirement(requirement, options, False, where)
        try:
            tokens = shlex.split(text)
        except ValueError as error:
            raise BundleError(
                f"{where}: cannot parse the line ({error}); fix its quoting"
            ) from None
        option, value, rest = _option_value(tokens)
        if not value:
            return None
        if option in EDITABLE_OPTIONS:
            return self._rewrite_requirement(value, shlex.join(rest), True, where)
        if option in INCLUDE_OPTIONS:
            return self._rewrite_include(option, value, rest, where, folder, bundle_dir)
        if option in FIND_LINKS_OPTIONS:
            return self._rewrite_find_links(option, value, rest, where, folder, bundle_dir)
        if option in INDEX_OPTIONS and _expand_env(value).lower().startswith("file:"):
            raise BundleError(
                f"{where}: this is a local package index, which EB instances cannot read; "
                "publish the packages to an index the instances can reach, or require each "
                "package by its folder"
            )
        return None

    def _rewrite_requirement(
        self, requirement: str, options: str, editable: bool, where: str
    ) -> str | None:
        reference = _local_reference(requirement, where)
        if reference is None:
            return None
        location = Path(os.path.normpath(self.base / reference.path))
        if not location.exists():
            raise BundleError(
                f"{where}: {location} does not exist. Relative paths are resolved from the app "
                f"folder {self.base}, where EB runs pip; fix the path, or publish the package "
                "to a package index and require it by name"
            )
        real = location.resolve()
        if real.is_dir():
            _check_project(real, where)
        if real.is_relative_to(self.root):
            target = real.relative_to(self.root).as_posix()
            self._check_bundled(target, real, where)
            if reference.plain and not editable:
                return None
        else:
            target = self._vendor(real, where)
        line = "." if target == "." else f"./{target}"
        line += reference.extras
        if reference.markers:
            line += f" ; {reference.markers}"
        return f"{line} {options}" if options else line

    def _rewrite_include(
        self,
        option: str,
        value: str,
        rest: list[str],
        where: str,
        folder: Path,
        bundle_dir: str,
    ) -> str | None:
        path = _local_path(value)
        if path is None:
            return None
        # pip resolves an included file from the folder of the file that includes it.
        location = Path(os.path.normpath(folder / path))
        if not location.is_file():
            raise BundleError(
                f"{where}: {location} does not exist; fix the path, which is relative to the "
                "folder of the file that includes it"
            )
        real = location.resolve()
        if real.is_relative_to(self.root):
            target = real.relative_to(self.root).as_posix()
            self._check_bundled(target, real, where)
            self._rewrite_inside_file(target)
        else:
            content, _ = self._rewrite_file(location, str(location), VENDOR_DIR)
            digest = _digest({location.name: content})
            target = f"{VENDOR_DIR}/{_safe_name(location.stem)}-{digest}{location.suffix}"
            self._add(target, content, where)
        return _relative_option(option, value, target, rest, bundle_dir)

    def _rewrite_find_links(
        self,
        option: str,
        value: str,
        rest: list[str],
        where: str,
        folder: Path,
        bundle_dir: str,
    ) -> str | None:
        path = _local_path(value)
        if path is None:
            return None
        # pip looks next to the requirements file first, then in its working folder.
        candidates = [Path(os.path.normpath(base / path)) for base in (folder, self.base)]
        location = next((candidate for candidate in candidates if candidate.exists()), None)
        if location is None:
            raise BundleError(
                f"{where}: {candidates[0]} does not exist; fix the path or remove the option"
            )
        real = location.resolve()
        if real.is_relative_to(self.root):
            target = real.relative_to(self.root).as_posix()
            self._check_bundled(target, real, where)
        else:
            target = self._vendor(real, where, links=True)
        return _relative_option(option, value, target, rest, bundle_dir)

    def _check_bundled(self, name: str, real: Path, where: str) -> None:
        if name == ".":
            return
        if real.is_dir():
            present = any(entry.startswith(f"{name}/") for entry in self.entries)
        else:
            present = name in self.entries
        if not present:
            raise BundleError(
                f"{where}: {name} is left out of the bundle by .ebignore or as a cache or VCS "
                "folder, so pip on EB cannot find it; stop ignoring it in .ebignore"
            )

    def _vendor(self, real: Path, where: str, links: bool = False) -> str:
        """Copy a local folder or archive into the bundle and return its bundle path."""
        if real in self._copies:
            return self._copies[real]
        if links and real.is_dir():
            path = self._vendor_links(real, where)
        elif real.is_dir():
            path = self._vendor_folder(real, where)
        else:
            path = self._vendor_archive(real, where)
        self._copies[real] = path
        self.vendored.append(VendoredPackage(requirement=where, source=real, bundle_path=path))
        return path

    def _vendor_folder(self, real: Path, where: str) -> str:
        files = {
            name: _read(path, name, real)
            for name, path in _walk(real, "package")
            if not _is_build_output(name)
        }
        folder = f"{VENDOR_DIR}/{_safe_name(real.name)}-{_digest(files)}"
        for name, content in files.items():
            self._add(f"{folder}/{name}", content, where)
        return folder

    def _vendor_archive(self, real: Path, where: str) -> str:
        if not real.name.lower().endswith(ARCHIVE_SUFFIXES):
            raise BundleError(
                f"{where}: {real} is neither a package folder nor a package archive (.whl, "
                ".tar.gz, .zip); point the requirement at one of them"
            )
        content = _read(real, real.name, real.parent)
        path = f"{VENDOR_DIR}/{_digest({real.name: content})}/{real.name}"
        self._add(path, content, where)
        return path

    def _vendor_links(self, real: Path, where: str) -> str:
        """Copy the package archives of a --find-links folder; pip does not look deeper."""
        files = {
            entry.name: _read(entry, entry.name, real)
            for entry in sorted(real.iterdir())
            if entry.is_file() and entry.name.lower().endswith(ARCHIVE_SUFFIXES)
        }
        if not files:
            raise BundleError(
                f"{where}: {real} contains no package archives; remove the option or add them"
            )
        folder = f"{VENDOR_DIR}/{_safe_name(real.name)}-{_digest(files)}"
        for name, content in files.items():
            self._add(f"{folder}/{name}", content, where)
        return folder

    def _add(self, name: str, content: Path | bytes, where: str) -> None:
        if name in self.entries:
            raise BundleError(
                f"{where}: the app folder already contains {name}, where the bundle vendors "
                f"this package; rename the app's {VENDOR_DIR}/ folder"
            )
        self.added[name] = content


def _logical_lines(physical: list[str]) -> list[_Line]:
    """Join continued lines and drop comments and blank lines, as pip's parser does."""
    lines: list[_Line] = []
    start: int | None = None
    parts: list[str] = []
    for index, raw in enumerate(physical):
        line = raw.rstrip("\r\n")
        if line.endswith("\\") and not COMMENT_RE.match(line):
            start = index if start is None else start
            parts.append(line[:-1])
            if index < len(physical) - 1:
                continue
            line = ""
        parts.append(" " + line if COMMENT_RE.match(line) else line)
        first = index if start is None else start
        text = COMMENT_RE.sub("", "".join(parts)).strip()
        if text:
            lines.append(_Line(number=first + 1, first=first, last=index, text=text))
        start, parts = None, []
    return lines


def _split_options(line: str) -> tuple[str, str]:
    """Split a requirement line into the requirement and its options, as pip does."""
    tokens = line.split(" ")
    for index, token in enumerate(tokens):
        if token.startswith("-"):
            return " ".join(tokens[:index]), " ".join(tokens[index:])
    return line, ""


def _option_value(tokens: list[str]) -> tuple[str, str, list[str]]:
    """Return the option of an option line, its value ("" when it takes none) and the rest."""
    first = tokens[0]
    if first.startswith("--") and "=" in first:
        option, value = first.split("=", 1)
        return option, value, tokens[1:]
    if first in VALUE_OPTIONS:
        return first, tokens[1] if len(tokens) > 1 else "", tokens[2:]
    if not first.startswith("--") and first[:2] in VALUE_OPTIONS:
        return first[:2], first[2:], tokens[1:]
    return first, "", tokens[1:]


def _expand_env(text: str) -> str:
    """Expand ${NAME} from the environment where it is set, as pip does."""
    return ENV_VAR_RE.sub(lambda match: os.environ.get(match.group(1)) or match.group(0), text)


def _scheme(text: str) -> str:
    try:
        return urllib.parse.urlsplit(text).scheme.lower()
    except ValueError:
        return ""


def _is_url(text: str) -> bool:
    """Tell whether pip reads `text` as a URL (pip/_internal/vcs/versioncontrol.py)."""
    scheme = _scheme(text)
    vcs = scheme.split("+", 1)[0]
    return scheme in (*REMOTE_SCHEMES, "file") or vcs in VCS_SCHEMES


def _looks_like_path(text: str) -> bool:
    """Apply pip's test for a requirement that names a path (pip/_internal/req/constructors.py)."""
    return "/" in text or os.sep in text or text.startswith(".")


def _local_reference(requirement: str, where: str) -> _Reference | None:
    """Return the local path a requirement names, or None when pip fetches it from elsewhere."""
    spec = _expand_env(requirement)
    spec, _, markers = spec.partition("; " if _is_url(spec) else ";")
    spec, markers = spec.strip(), markers.strip()
    if _is_url(spec):
        return _url_reference(spec, "", markers, where)
    named = NAMED_URL_RE.match(spec)
    if named and not _looks_like_path(named.group(1)):
        return _url_reference(named.group(3).strip(), named.group(2) or "", markers, where)
    match = EXTRAS_RE.match(spec)
    path, extras = (match.group(1), match.group(2)) if match else (spec, "")
    if not (_looks_like_path(path) or path.lower().endswith(ARCHIVE_SUFFIXES)):
        return None
    plain = not os.path.isabs(path) and ".." not in Path(path).parts
    return _Reference(path=path, extras=extras, markers=markers, plain=plain)


def _url_reference(url: str, extras: str, markers: str, where: str) -> _Reference | None:
    scheme = _scheme(url)
    if scheme.endswith("+file"):
        raise BundleError(
            f"{where}: this is a local repository, which EB instances cannot clone; require "
            "the folder of a checkout of it instead"
        )
    parts = urllib.parse.urlsplit(url)
    if scheme != "file" or parts.netloc not in ("", "localhost"):
        return None
    path = urllib.parse.unquote(parts.path)
    subdirectory = urllib.parse.parse_qs(parts.fragment).get("subdirectory")
    if subdirectory:
        path = posixpath.join(path, subdirectory[0])
    return _Reference(path=path, extras=extras, markers=markers, plain=False)


def _local_path(value: str) -> str | None:
    """Return the path of an option value that names a file or folder, None for a remote URL."""
    expanded = _expand_env(value)
    scheme = _scheme(expanded)
    if scheme == "file":
        return urllib.parse.unquote(urllib.parse.urlsplit(expanded).path)
    if scheme in REMOTE_SCHEMES:
        return None
    return expanded


def _relative_option(
    option: str, value: str, target: str, rest: list[str], bundle_dir: str
) -> str | None:
    relative = posixpath.relpath(target, bundle_dir or ".")
    if relative == value:
        return None
    return shlex.join([option, relative, *rest])


def _check_project(folder: Path, where: str) -> None:
    """Raise BundleError unless pip can install the folder on EB."""
    if not any((folder / name).is_file() for name in PROJECT_FILES):
        raise BundleError(
            f"{where}: {folder} has neither pyproject.toml nor setup.py, so pip cannot install "
            "it; point the requirement at the package's project folder"
        )
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise BundleError(f"{where}: cannot read {pyproject}: {error}; fix the file") from None
    if not isinstance(project, dict):
        return
    declared = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        declared.extend(group)
    for dependency in declared:
        if isinstance(dependency, str) and re.search(r"@\s*file:", dependency):
            raise BundleError(
                f"{where}: {pyproject} declares the dependency {dependency!r} by a local file "
                "URL, which pip cannot follow on EB; declare it by name there and add its "
                "folder to requirements.txt"
            )


def _is_build_output(name: str) -> bool:
    top = name.split("/", 1)[0]
    return top in PACKAGE_BUILD_OUTPUT or top.endswith(".egg-info")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "package"


def _digest(files: dict[str, bytes]) -> str:
    """Return a short digest of file names and contents, independent of where they are."""
    digest = hashlib.sha256()
    for name in sorted(files):
        content = files[name]
        digest.update(f"{name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:DIGEST_LENGTH]
