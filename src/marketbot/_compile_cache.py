"""Where numba caches compiled code: a folder named by a hash of every compiled source.

numba's own cache checks only the source file of the function it loads. A kernel that
inlines a helper from another file (``@njit(inline="always")``, or any call numba compiles
into the caller) keeps running the old helper after the helper's file changes, on a warm
cache. Keying the whole cache folder on the hash of every file that numba compiles makes an
edit to any of them start a fresh folder, so every caller is recompiled.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Final

PACKAGE_ROOT: Final = Path(__file__).resolve().parent
# The folder the hashed cache folders live in; remembered for child processes, which inherit
# NUMBA_CACHE_DIR already pointing at a hashed folder.
ROOT_VARIABLE: Final = "MARKETBOT_NUMBA_CACHE_ROOT"
COMPILED_MARKER: Final = b"njit"


def compiled_sources_digest(package_root: Path = PACKAGE_ROOT) -> str:
    """The sha256 (first 16 hex digits) of every source file under the root that numba compiles.

    A file counts when its text mentions ``njit``, and so does every marketbot module such a
    file takes constants from (``core/codes.py``'s are frozen into the compiled code as much
    as a helper is); files are taken in path order, each with its relative path, so a renamed
    or moved file changes the digest too.
    """
    digest = hashlib.sha256()
    for path in sorted(_compiled_sources(package_root)):
        digest.update(path.relative_to(package_root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _compiled_sources(package_root: Path) -> set[Path]:
    """The files that mention ``njit``, and the modules they take constants from, transitively."""
    found = {p for p in package_root.rglob("*.py") if COMPILED_MARKER in p.read_bytes()}
    pending = list(found)
    while pending:
        for imported in _constant_sources(pending.pop(), package_root):
            if imported not in found:
                found.add(imported)
                pending.append(imported)
    return found


def _constant_sources(path: Path, package_root: Path) -> list[Path]:
    """The files of the ``marketbot.*`` modules ``path`` takes constants from.

    Only UPPER_CASE names count (``LONG``, ``EXIT_STOP_LOSS``): numba freezes a global
    constant's value into the compiled code, while a class or an error type used around it
    is Python's, and a function it calls is compiled itself (so already counted).
    """
    import ast

    package = package_root.name
    files = []
    for node in ast.walk(ast.parse(path.read_bytes())):
        if not isinstance(node, ast.ImportFrom) or node.level != 0 or not node.module:
            continue
        parts = node.module.split(".")
        if parts[0] != package or len(parts) < 2:
            continue
        if not any(alias.name.isupper() for alias in node.names):
            continue
        base = package_root.joinpath(*parts[1:])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                files.append(candidate)
    return files


def default_cache_root() -> Path:
    """``$NUMBA_CACHE_DIR`` as the user set it, else ``$XDG_CACHE_HOME/marketbot/numba``."""
    remembered = os.environ.get(ROOT_VARIABLE)
    if remembered:
        return Path(remembered)
    chosen = os.environ.get("NUMBA_CACHE_DIR")
    if chosen:
        return Path(chosen)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "marketbot" / "numba"


def configure_numba_cache(package_root: Path = PACKAGE_ROOT) -> Path:
    """Point numba's cache at ``<root>/<digest>`` before anything compiles; return that folder.

    Sets ``NUMBA_CACHE_DIR`` for this process and its children; when numba is already
    imported, also its live setting (numba reads the variable only at import).
    """
    root = default_cache_root()
    folder = root / compiled_sources_digest(package_root)
    os.environ[ROOT_VARIABLE] = str(root)
    os.environ["NUMBA_CACHE_DIR"] = str(folder)
    numba_config = sys.modules.get("numba.core.config")
    if numba_config is not None:
        numba_config.CACHE_DIR = str(folder)  # type: ignore[attr-defined]
    return folder
