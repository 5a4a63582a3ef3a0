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

    A file counts when its text mentions ``njit``; files are taken in path order, each with its
    relative path, so a renamed or moved file changes the digest too.
    """
    digest = hashlib.sha256()
    for path in sorted(package_root.rglob("*.py")):
        content = path.read_bytes()
        if COMPILED_MARKER in content:
            digest.update(path.relative_to(package_root).as_posix().encode())
            digest.update(b"\0")
            digest.update(content)
            digest.update(b"\0")
    return digest.hexdigest()[:16]


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
