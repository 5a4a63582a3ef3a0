"""Executors: threads, local processes and a Dask LocalCluster give identical results tables.

The Dask tests start their own LocalCluster on 127.0.0.1 (two worker processes, no
dashboard) once for the module and stop it at the end.
"""

from __future__ import annotations

import pickle
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.engine import TradingWindow
from marketbot.core.bars import normalize_ohlcv
from marketbot.core.errors import ConfigError, StrategyError
from marketbot.optimize.executors import (
    ChunkEvaluator,
    DaskExecutor,
    Executor,
    ProcessExecutor,
    ThreadExecutor,
    make_executor,
    split_chunks,
)
from marketbot.optimize.optimizer import Evaluation, OptimizationResult, StrategyOptimizer
from marketbot.strategies.loader import load_strategy
from tests.support.frames import sample_daily_btc

if TYPE_CHECKING:
    from distributed import LocalCluster

GRID = {"fast": [5, 10, 15, 20], "slow": [30, 50, 100]}
FILE_STRATEGY = '''
from marketbot.strategies.builtin import SmaCrossover


class FileCrossover(SmaCrossover):
    """The SMA crossover under another name, loaded from a file."""

    name = "file_crossover"
'''


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return sample_daily_btc()


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is not installed: pip install 'dask[distributed]'"
    )
    local = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None,
    )  # fmt: skip
    try:
        yield local
    finally:
        local.close()


def optimise(
    btc: pd.DataFrame, executor: Executor, strategy: str = "sma_crossover", **kwargs: Any
) -> OptimizationResult:
    return StrategyOptimizer(executor=executor).optimize_strategy(
        strategy, GRID, data=btc, start_date="2018-01-01", **kwargs
    )


def test_executors_when_the_same_grid_runs_on_threads_processes_and_dask_agree(
    btc: pd.DataFrame, cluster: LocalCluster
) -> None:
    threads = optimise(btc, ThreadExecutor(2))
    processes = optimise(btc, ProcessExecutor(2))
    with DaskExecutor(cluster.scheduler_address) as dask:
        on_dask = optimise(btc, dask)
    for other in (processes, on_dask):
        pd.testing.assert_frame_equal(other.results, threads.results, check_exact=True)
        assert other.best_params == threads.best_params
        assert other.best_metric == threads.best_metric


def test_executors_when_strategy_comes_from_a_file_ship_it_by_path(
    btc: pd.DataFrame, cluster: LocalCluster, tmp_path: Path
) -> None:
    path = tmp_path / "my_strategies.py"
    path.write_text(textwrap.dedent(FILE_STRATEGY))
    spec = f"{path}:FileCrossover"
    threads = optimise(btc, ThreadExecutor(2), spec)
    processes = optimise(btc, ProcessExecutor(2), spec)
    with DaskExecutor(cluster.scheduler_address) as dask:
        on_dask = optimise(btc, dask, spec)
    assert threads.strategy == "file_crossover"
    pd.testing.assert_frame_equal(processes.results, threads.results, check_exact=True)
    pd.testing.assert_frame_equal(on_dask.results, threads.results, check_exact=True)


FAILING_STRATEGY = '''
from marketbot.strategies.builtin import SmaCrossover


class FailingCrossover(SmaCrossover):
    """Fails for fast=15 only."""

    name = "failing_crossover"

    def signals(self, frame, params):
        if params["fast"] == 15:
            raise ValueError("no fifteens")
        return super().signals(frame, params)
'''


@pytest.mark.parametrize("kind", ["thread", "process", "dask"])
def test_executors_when_a_chunk_fails_raise_the_strategy_error(
    btc: pd.DataFrame, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    path = tmp_path / "failing.py"
    path.write_text(textwrap.dedent(FAILING_STRATEGY))
    if kind == "dask":
        cluster = request.getfixturevalue("cluster")
        executor: Executor = DaskExecutor(cluster.scheduler_address)
    else:
        executor = make_executor(kind, jobs=2)
    try:
        with pytest.raises(StrategyError, match="ValueError: no fifteens"):
            optimise(btc, executor, f"{path}:FailingCrossover")
    finally:
        if isinstance(executor, DaskExecutor):
            executor.close()


def test_evaluation_when_strategy_comes_from_a_file_pickles_as_a_reference_to_it(
    btc: pd.DataFrame, tmp_path: Path
) -> None:
    path = tmp_path / "my_strategies.py"
    path.write_text(textwrap.dedent(FILE_STRATEGY))
    window = TradingWindow.of(normalize_ohlcv(btc, where="btc"))
    evaluation = Evaluation(load_strategy(f"{path}:FileCrossover"), BacktestConfig(), window)
    blob = pickle.dumps(evaluation)
    assert str(path).encode() in blob
    restored = pickle.loads(blob)
    assert type(restored.strategy).__name__ == "FileCrossover"
    assert type(restored.strategy) is not type(evaluation.strategy)  # imported again
    params = {"fast": 10, "slow": 50, "short": False}
    assert restored.metrics(params) == evaluation.metrics(params)
    # A built-in strategy pickles by reference to its class, as usual.
    builtin = Evaluation(load_strategy("sma_crossover"), BacktestConfig(), window)
    assert b"FileStrategyReference" not in pickle.dumps(builtin)


def test_dask_executor_when_given_a_client_uses_it_and_leaves_it_open(
    btc: pd.DataFrame, cluster: LocalCluster
) -> None:
    from distributed import Client

    with Client(cluster, set_as_default=False) as client:
        executor = DaskExecutor(client)
        seen: list[tuple[int, int]] = []
        result = StrategyOptimizer(executor=executor).optimize_strategy(
            "sma_crossover", GRID, data=btc, progress=lambda done, total: seen.append((done, total))
        )
        executor.close()
        assert client.status == "running"
        assert executor.workers == 2
        assert len(result.results) == 12
        assert seen[-1] == (12, 12)
        assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_dask_executor_when_scheduler_is_unreachable_raises_config_error(
    btc: pd.DataFrame,
) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    executor = DaskExecutor("tcp://127.0.0.1:9", connect_timeout_seconds=1)
    with pytest.raises(
        ConfigError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9"
    ):
        optimise(btc, executor)


class RecordingExecutor(ThreadExecutor):
    """Threads that record how many chunks each grid sent them."""

    def __init__(self) -> None:
        super().__init__(2)
        self.chunk_counts: list[int] = []

    def map_chunks(
        self, evaluator: ChunkEvaluator, chunks: Sequence[Sequence[Mapping[str, Any]]]
    ) -> Iterator[list[dict[str, float | int]]]:
        self.chunk_counts.append(len(chunks))
        return super().map_chunks(evaluator, chunks)


def test_optimizer_when_executor_given_per_call_uses_it_and_keeps_its_own(
    btc: pd.DataFrame,
) -> None:
    default, per_call = RecordingExecutor(), RecordingExecutor()
    optimizer = StrategyOptimizer(executor=default)
    optimizer.optimize_strategy("sma_crossover", GRID, data=btc, executor=per_call)
    assert (default.chunk_counts, per_call.chunk_counts) == ([], [6])
    assert optimizer.executor is default


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        ("thread", {"jobs": 3}, ThreadExecutor),
        ("process", {"jobs": 2}, ProcessExecutor),
        ("dask", {"scheduler": "tcp://127.0.0.1:8786"}, DaskExecutor),
    ],
)
def test_make_executor_when_kind_named_builds_it(
    kind: str, kwargs: dict[str, Any], expected: type
) -> None:
    assert isinstance(make_executor(kind, **kwargs), expected)


@pytest.mark.parametrize(
    ("kind", "kwargs", "message"),
    [
        ("dask", {}, "needs a scheduler address"),
        ("thread", {"scheduler": "tcp://h:1"}, "only used by the dask executor"),
        ("cloud", {}, "unknown executor 'cloud'"),
        ("thread", {"jobs": 0}, "threads=0: must be a whole number >= 1"),
    ],
)
def test_make_executor_when_options_are_bad_raises_config_error(
    kind: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_executor(kind, **kwargs)


@pytest.mark.parametrize(("total", "workers"), [(1, 4), (12, 2), (1_000, 3), (50_000, 8)])
def test_split_chunks_when_grid_is_cut_keeps_every_combination_in_order(
    total: int, workers: int
) -> None:
    combinations = [{"i": i} for i in range(total)]
    chunks = split_chunks(combinations, workers)
    assert [c for chunk in chunks for c in chunk] == combinations
    assert all(chunks)
