"""The top-level package: every public name imports, lazily, and `import marketbot` is light."""

from __future__ import annotations

import subprocess
import sys

import marketbot


def test_public_api_when_each_name_is_accessed_resolves_to_an_object() -> None:
    for name in marketbot.__all__:
        assert getattr(marketbot, name) is not None, name


def test_import_marketbot_when_fresh_does_not_load_numba_pandas_or_sqlalchemy() -> None:
    code = (
        "import sys, marketbot; "
        "print(sorted(m for m in ('numba', 'pandas', 'sqlalchemy') if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == "[]"
