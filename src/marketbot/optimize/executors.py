"""Executors: where chunks of a grid are evaluated (threads, local processes or a Dask cluster).

The optimiser cuts the grid's combinations into contiguous chunks and hands them to an
:class:`Executor`, which returns each chunk's metrics in chunk order, so the results table is
the same whichever executor ran it. What to evaluate on (strategy, bars, settings) is one
:class:`ChunkEvaluator` object, sent to each worker once rather than with every chunk:

- :class:`ThreadExecutor` (the default): worker threads in this process; the kernel and the
  indicators release the GIL, so the cores work in parallel without copying anything.
- :class:`ProcessExecutor`: local worker processes; the evaluator is pickled once per process.
- :class:`DaskExecutor`: a Dask distributed cluster (``tcp://host:8786``); the evaluator is
  scattered to the workers once and chunks are submitted as tasks. Workers need marketbot
  (same version) installed; a strategy loaded from a file needs that file at the same path.

Dask is imported only when a DaskExecutor first connects.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from marketbot.core.errors import ConfigError
from marketbot.strategies.base import Strategy
from marketbot.strategies.loader import load_strategy

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "CHUNKS_PER_WORKER",
    "MAX_CHUNK_SIZE",
    "ChunkEvaluator",
    "DaskExecutor",
    "Executor",
    "FileStrategyReference",
    "ProcessExecutor",
    "ThreadExecutor",
    "evaluate_in_chunks",
    "make_executor",
    "portable_strategy",
    "split_chunks",
]

Params = Mapping[str, Any]
Metrics = dict[str, float | int]
ProgressCallback = Callable[[int, int], None]

CHUNKS_PER_WORKER = 4
"""Chunks per worker: enough to balance uneven chunks, few enough to keep overhead low."""
MAX_CHUNK_SIZE = 1_000
"""Largest chunk, so progress keeps moving on huge grids."""


class ChunkEvaluator(Protocol):
    """What executors evaluate chunks with (the optimiser's ``Evaluation``); must pickle."""

    def chunk_metrics(self, combinations: Sequence[Params]) -> list[Metrics]:
        """Backtest each combination; metrics in the order given."""
        ...


class Executor(Protocol):
    """Evaluates chunks of combinations somewhere, returning their metrics in chunk order."""

    @property
    def workers(self) -> int:
        """How many chunks can run at once (sizes the chunks)."""
        ...

    def map_chunks(
        self, evaluator: ChunkEvaluator, chunks: Sequence[Sequence[Params]]
    ) -> Iterator[list[Metrics]]:
        """Yield each chunk's metrics, in the order of ``chunks``, as soon as it is ready."""
        ...


def split_chunks(combinations: Sequence[Params], workers: int) -> list[list[Params]]:
    """Cut ``combinations`` into contiguous chunks (in order) for ``workers`` workers."""
    total = len(combinations)
    size = max(1, min(MAX_CHUNK_SIZE, math.ceil(total / (max(1, workers) * CHUNKS_PER_WORKER))))
    return [list(combinations[i : i + size]) for i in range(0, total, size)]


def evaluate_in_chunks(
    executor: Executor,
    evaluator: ChunkEvaluator,
    combinations: Sequence[Params],
    *,
    progress: ProgressCallback | None = None,
) -> list[Metrics]:
    """Metrics of every combination, in the order given, computed by ``executor``.

    Args:
        executor: Where the chunks run.
        evaluator: What each combination is evaluated with.
        combinations: Full parameter dicts.
        progress: Called as ``progress(done, total)`` after each chunk.
    """
    total = len(combinations)
    if total == 0:
        return []
    results: list[Metrics] = []
    for metrics in executor.map_chunks(evaluator, split_chunks(combinations, executor.workers)):
        results.extend(metrics)
        if progress is not None:
            progress(len(results), total)
    if len(results) != total:
        raise RuntimeError(f"executor returned {len(results)} results for {total} combinations")
    return results


def _evaluate_chunk(evaluator: ChunkEvaluator, chunk: Sequence[Params]) -> list[Metrics]:
    return evaluator.chunk_metrics(chunk)


class ThreadExecutor:
    """Chunks on worker threads in this process (nothing is copied).

    Args:
        threads: Worker threads (default: the machine's cores).
    """

    def __init__(self, threads: int | None = None) -> None:
        self.threads = _count("threads", threads)

    @property
    def workers(self) -> int:
        """The number of threads."""
        return self.threads

    def map_chunks(
        self, evaluator: ChunkEvaluator, chunks: Sequence[Sequence[Params]]
    ) -> Iterator[list[Metrics]]:
        """Yield each chunk's metrics in order."""
        pool = ThreadPoolExecutor(max_workers=self.threads)
        try:
            yield from pool.map(evaluator.chunk_metrics, chunks)
        finally:  # after an error, chunks not yet started are dropped rather than run
            pool.shutdown(wait=True, cancel_futures=True)


# The evaluator a worker process loaded when it started (set by the pool's initializer),
# so that it crosses the process boundary once per process instead of once per chunk.
_PROCESS_EVALUATOR: list[ChunkEvaluator] = []


def _install_evaluator(path: str) -> None:
    with open(path, "rb") as file:
        _PROCESS_EVALUATOR[:] = [pickle.load(file)]


def _evaluate_installed(chunk: Sequence[Params]) -> list[Metrics]:
    return _PROCESS_EVALUATOR[0].chunk_metrics(chunk)


StartMethod = Literal["spawn", "forkserver", "fork"]


class ProcessExecutor:
    """Chunks in local worker processes, started for each grid and stopped after it.

    The evaluator is pickled once, to a private temporary file each worker loads when it
    starts: built-in strategies pickle by reference to their class, a strategy loaded from
    ``file.py:Class`` by reference to its file (which the worker imports again). Worker
    processes start with ``spawn`` by default: a fresh interpreter that inherits no threads
    or locks (forking a process that runs threads can deadlock), at the cost of importing
    marketbot in each worker (about a second). As with any spawned process, a script that
    uses this executor must guard its entry point (``if __name__ == "__main__":``);
    otherwise the workers die at start and the grid raises ``BrokenProcessPool``.

    Args:
        processes: Worker processes (default: the machine's cores).
        start_method: ``spawn``, ``forkserver`` or ``fork`` (see ``multiprocessing``).
    """

    def __init__(self, processes: int | None = None, *, start_method: StartMethod = "spawn"):
        self.processes = _count("processes", processes)
        if start_method not in multiprocessing.get_all_start_methods():
            methods = ", ".join(multiprocessing.get_all_start_methods())
            raise ConfigError(f"start_method={start_method!r}: use one of {methods}")
        self.start_method = start_method

    @property
    def workers(self) -> int:
        """The number of processes."""
        return self.processes

    def map_chunks(
        self, evaluator: ChunkEvaluator, chunks: Sequence[Sequence[Params]]
    ) -> Iterator[list[Metrics]]:
        """Yield each chunk's metrics in order."""
        if not chunks:
            return
        # The evaluator goes through a private file, not the start-up pipe: a worker that
        # dies before reading a large start-up message leaves the parent blocked for good.
        with tempfile.TemporaryDirectory(prefix="marketbot-") as directory:
            path = os.path.join(directory, "evaluation.pickle")
            with open(path, "wb") as file:
                pickle.dump(evaluator, file, protocol=pickle.HIGHEST_PROTOCOL)
            pool = ProcessPoolExecutor(
                max_workers=min(self.processes, len(chunks)),
                mp_context=multiprocessing.get_context(self.start_method),
                initializer=_install_evaluator,
                initargs=(path,),
            )
            try:
                yield from pool.map(_evaluate_installed, chunks)
            finally:  # after an error, chunks not yet started are dropped rather than run
                pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Chunks as tasks on a Dask distributed cluster.

    The evaluator is scattered to every worker once per grid; chunks are submitted as tasks
    and their results gathered in order. Give a scheduler address to let the executor open
    (and, on :meth:`close` or leaving a ``with`` block, close) its own client, or a
    ``distributed.Client`` you manage.

    Args:
        scheduler: ``tcp://host:8786`` or a ``distributed.Client``.
        connect_timeout_seconds: How long to wait for the scheduler.

    Raises:
        ConfigError: an empty address or a bad timeout.
    """

    def __init__(self, scheduler: str | Client, *, connect_timeout_seconds: float = 10.0):
        if isinstance(scheduler, str) and not scheduler.strip():
            raise ConfigError("scheduler is empty: give a Dask address such as tcp://host:8786")
        if not connect_timeout_seconds > 0:
            raise ConfigError(f"connect_timeout_seconds={connect_timeout_seconds}: must be > 0")
        self._address = scheduler if isinstance(scheduler, str) else None
        self._client: Client | None = None if isinstance(scheduler, str) else scheduler
        self._timeout = connect_timeout_seconds

    @property
    def workers(self) -> int:
        """Threads across the cluster's workers (at least 1)."""
        client: Any = self.client()  # distributed's methods are not annotated
        return max(1, int(sum(client.nthreads().values())))

    def client(self) -> Client:
        """The Dask client, connecting on first use.

        Raises:
            ConfigError: dask.distributed is not installed, or the scheduler is unreachable.
        """
        if self._client is None:
            try:
                from distributed import Client
            except ImportError as exc:
                raise ConfigError(
                    "the Dask executor needs dask.distributed: pip install 'marketbot[dask]'"
                ) from exc
            connect: Any = Client  # distributed's methods are not annotated
            try:
                self._client = connect(self._address, timeout=self._timeout, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"cannot reach the Dask scheduler at {self._address}: {exc}"
                ) from exc
        return self._client

    def map_chunks(
        self, evaluator: ChunkEvaluator, chunks: Sequence[Sequence[Params]]
    ) -> Iterator[list[Metrics]]:
        """Yield each chunk's metrics in order; pending tasks are cancelled on an error."""
        if not chunks:
            return
        client: Any = self.client()  # distributed's methods are not annotated
        [shared] = client.scatter([evaluator], broadcast=True, hash=False)
        futures = [
            client.submit(_evaluate_chunk, shared, list(chunk), pure=False) for chunk in chunks
        ]
        try:
            for future in futures:
                yield future.result()
        finally:
            client.cancel([*futures, shared])

    def close(self) -> None:
        """Close the client if this executor opened it."""
        client: Any = self._client  # distributed's methods are not annotated
        if self._address is not None and client is not None:
            client.close()
            self._client = None

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


@dataclass(frozen=True)
class FileStrategyReference:
    """A strategy from ``file.py:Class``, pickled as its file, class name and attributes.

    Attributes:
        path: The strategy's file (the same path must exist where it is loaded).
        class_name: The class in that file.
        state: The instance's attributes, restored after loading.
    """

    path: str
    class_name: str
    state: dict[str, Any]

    def load(self) -> Strategy:
        """Import the file again and rebuild the instance."""
        strategy = load_strategy(f"{self.path}:{self.class_name}")
        strategy.__dict__.update(self.state)
        return strategy


def portable_strategy(strategy: Strategy) -> Strategy | FileStrategyReference:
    """The strategy, or a reference to its file when its module cannot be imported by name.

    The loader imports ``file.py:Class`` under a private module name that only this process
    knows; pickle would refer to that name and fail in a worker. A worker re-imports the
    file instead (the same path must exist there).
    """
    cls = type(strategy)
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if path is None or cls.__module__ == "__main__" or _importable_by_name(cls.__module__):
        return strategy
    return FileStrategyReference(str(path), cls.__qualname__, dict(vars(strategy)))


def _importable_by_name(module_name: str) -> bool:
    # Ask the import system's finders, not sys.modules (where the loader registered it).
    top = module_name.partition(".")[0]
    for finder in sys.meta_path:  # instances, and classes with class-level find_spec
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is not None and find_spec(top, None) is not None:
            return True
    return False


def make_executor(
    kind: str = "thread", *, jobs: int | None = None, scheduler: str | None = None
) -> Executor:
    """The executor the CLI's ``--executor KIND [--jobs N] [--scheduler ADDRESS]`` names.

    Args:
        kind: ``thread``, ``process`` or ``dask``.
        jobs: Threads or processes (default: the machine's cores); not used by ``dask``.
        scheduler: The Dask scheduler's address; required by ``dask`` and only by it.

    Raises:
        ConfigError: an unknown kind, or a scheduler missing or given where it is not used.
    """
    if kind == "dask":
        if scheduler is None:
            raise ConfigError("the dask executor needs a scheduler address (tcp://host:8786)")
        return DaskExecutor(scheduler)
    if scheduler is not None:
        raise ConfigError(f"a scheduler address is only used by the dask executor, not {kind!r}")
    if kind == "thread":
        return ThreadExecutor(jobs)
    if kind == "process":
        return ProcessExecutor(jobs)
    raise ConfigError(f"unknown executor {kind!r}: use thread, process or dask")


def _count(label: str, value: int | None) -> int:
    if value is None:
        return os.cpu_count() or 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{label}={value!r}: must be a whole number >= 1")
    return value
