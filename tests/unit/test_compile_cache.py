"""A warm numba cache never runs an inlined helper's old code after the helper's file changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import marketbot
from marketbot._compile_cache import compiled_sources_digest, configure_numba_cache

PACKAGE = Path(marketbot.__file__).resolve().parent

# The kernel inlines fee_nb from core/costs_nb.py: a cross-file helper, the case numba's own
# cache misses. One all-in entry at 100 with a 1 % fee, still open at the end (no exit fill):
# total fees = the entry's fee = 10,000 / 1.01 x 0.01.
PROBE = """
import numpy as np
from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.kernel import KernelSignals, simulate
n = 4
price = np.full(n, 100.0)
entries = np.array([True, False, False, False])
never = np.zeros(n, dtype=bool)
signals = KernelSignals(entries, never, never, never, np.full(n, np.nan), np.full(n, -1))
settings = BacktestConfig(fee_rate=0.01, slippage_rate=0.0).kernel_settings(allow_short=False)
times = np.arange(n, dtype=np.int64) * 86_400_000_000_000
output = simulate(price, price, price, price, times, signals, settings)
print(repr(float(output.total_fees)))
"""


def copy_package(target: Path) -> Path:
    copied = target / "marketbot"
    shutil.copytree(PACKAGE, copied, ignore=shutil.ignore_patterns("__pycache__"))
    return copied


def run_probe(site: Path, cache_root: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("MARKETBOT_NUMBA_CACHE_ROOT",)}
    env |= {"PYTHONPATH": str(site), "NUMBA_CACHE_DIR": str(cache_root)}
    finished = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        cwd=site,
        timeout=300,
        check=True,
    )
    return float(finished.stdout.strip().splitlines()[-1])


def test_compiled_sources_digest_when_an_nb_file_changes_differs(tmp_path: Path) -> None:
    copied = copy_package(tmp_path)
    before = compiled_sources_digest(copied)
    assert compiled_sources_digest(copied) == before
    costs = copied / "core" / "costs_nb.py"
    costs.write_text(costs.read_text() + "\n# an edit\n")
    assert compiled_sources_digest(copied) != before


def test_compiled_sources_digest_when_a_plain_module_changes_stays(tmp_path: Path) -> None:
    copied = copy_package(tmp_path)
    before = compiled_sources_digest(copied)
    errors = copied / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\n# an edit\n")
    assert compiled_sources_digest(copied) == before


def test_compiled_sources_digest_when_a_module_compiled_code_imports_changes_differs(
    tmp_path: Path,
) -> None:
    # core/codes.py has no njit, but its constants (LONG, the EXIT_* codes) are compiled in.
    copied = copy_package(tmp_path)
    before = compiled_sources_digest(copied)
    codes = copied / "core" / "codes.py"
    codes.write_text(
        codes.read_text().replace("EXIT_STOP_LOSS: Final = 1", "EXIT_STOP_LOSS: Final = 11")
    )
    assert "EXIT_STOP_LOSS: Final = 11" in codes.read_text()
    assert compiled_sources_digest(copied) != before


def test_configure_numba_cache_when_called_names_a_folder_by_digest() -> None:
    folder = configure_numba_cache()
    assert folder.name == compiled_sources_digest()
    assert os.environ["NUMBA_CACHE_DIR"] == str(folder)


@pytest.mark.slow
def test_kernel_when_inlined_helper_edited_on_a_warm_cache_runs_the_new_rule(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    copied = copy_package(site)
    cache_root = tmp_path / "numba-cache"
    entry_fee = 10_000 / 1.01 * 0.01
    assert run_probe(site, cache_root) == pytest.approx(entry_fee)
    assert run_probe(site, cache_root) == pytest.approx(entry_fee)  # warm: loaded, same rule

    costs = copied / "core" / "costs_nb.py"
    source = costs.read_text()
    edited = source.replace(
        "return units * fill_price * fee_rate", "return 2.0 * units * fill_price * fee_rate"
    )
    assert edited != source, "fee_nb's body changed: update this test's edit"
    costs.write_text(edited)
    assert run_probe(site, cache_root) == pytest.approx(2 * entry_fee)
    assert len(list(cache_root.iterdir())) == 2
