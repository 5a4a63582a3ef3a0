"""How fast is the paper bot: one iteration of a replay, and a restart after kill -9?

Run by hand (not a test), from the repository root:

    .venv/bin/python benchmarks/bench_bot.py --json /tmp/bot.json     # everything, 4-15 min
    .venv/bin/python benchmarks/bench_bot.py --start 2019-01-01 --end 2019-03-01   # quick look
    .venv/bin/python benchmarks/bench_bot.py --start 2020-10-01 --end 2020-12-31 \
        --no-recovery --profile /tmp/bot.prof     # where the time goes (cProfile slows it)

(4 minutes when the shared disk is quiet, 15 or more in a busy spell. To measure a commit
without the work tree's edits: ``git worktree add --detach DIR COMMIT`` and run DIR's copy
with ``PYTHONPATH=DIR/src``; the children inherit it.)

What it measures (docs/performance.md, "Paper bot", has the figures):

- **iterations**: ``marketbot run --replay START END --speed 0`` on the bundled hourly BTC
  (``data/sample/btc_usd_1h_bitstamp.csv``), the acceptance configuration (fixed cash $1,000,
  stop 5 %, trailing 10 %), ``sma_crossover`` fast 10, slow 50, in a fresh process started as
  the console script starts (``marketbot.cli.main``) with timers around the loop: an
  iteration is ``BotLoop.run_bar`` (commands, the bar at the paper exchange, fills recorded,
  the mark, signals, an order) plus the run's progress (``save_progress``) plus the state file
  (``save_state``), i.e. from the start of one bar's work to the end of its saves. Also each
  part alone, and the iteration's CPU time (``time.process_time``), so that what is left is
  waiting (mostly for ``fsync``);
- **recovery**: a second data directory whose run has stored 1,000 orders or more (hourly BTC
  from 2019-01-01, fast 2, slow 4, which trades every few bars; END grown a month at a time
  until the ``orders`` table holds 1,000), then ``--restarts`` times: the console script is
  started with END a few days later, SIGKILLed once it has saved a bar or two, and started
  again (instrumented): the time from the lock taken to the first iteration started (the
  state file, the run, the exchange's orders resolved by client id, the round trips) and to
  the first iteration saved. That restart kills itself with SIGKILL after its first
  iteration, so each cycle starts from a kill.

Also the machine: CPU count, load average, and the disk's fsync latency before and after
(the bot's floor: about four fsyncs a bar: the ledger's commit, the database's commit, the
state file and its folder; the disk is shared, and its latency swings between 0.1 and 8 ms).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

ROOT: Final = Path(__file__).resolve().parents[1]
HOURLY_CSV: Final = ROOT / "data" / "sample" / "btc_usd_1h_bitstamp.csv"
MARKETBOT: Final = Path(sys.executable).parent / "marketbot"
ACCEPTANCE_CONFIG: Final = (
    'sizing = "fixed_cash"\nsize = 1000\nstop_loss = 0.05\ntrailing_stop = 0.1\n'
    "take_profit = false\nmax_hold = false\n"
)
STRATEGY: Final = ("--strategy", "sma_crossover", "--symbol", "bitcoin", "--timeframe", "1h")
SLOW_PARAMS: Final = ("--param", "fast=10", "--param", "slow=50")
BUSY_PARAMS: Final = ("--param", "fast=2", "--param", "slow=4")
RECOVERY_START: Final = "2019-01-01"
ORDERS_WANTED: Final = 1_000


# -- the instrumented child -----------------------------------------------------------------


class LoopTimers:
    """Timers around the bot's loop, installed on its classes in this (child) process."""

    def __init__(self, timings_path: Path, stop_after_first: bool) -> None:
        self.began = time.perf_counter()
        self.timings_path = timings_path
        self.stop_after_first = stop_after_first
        self.marks: dict[str, float] = {}
        self.series: dict[str, list[float]] = {
            name: [] for name in ("iteration", "run_bar", "progress", "state_file",
                                  "iteration_cpu")
        }  # fmt: skip
        self._wall = self._cpu = 0.0

    def dump(self) -> None:
        self.timings_path.write_text(json.dumps({"marks": self.marks, "series": self.series}))

    def mark(self, name: str, moment: float | None = None) -> None:
        self.marks.setdefault(name, (moment or time.perf_counter()) - self.began)

    def install(self) -> None:
        from marketbot.bot import runner
        from marketbot.bot.lock import BotLock
        from marketbot.bot.loop import BotLoop
        from marketbot.store.bot import BotRunRepository

        self.mark("imported")
        acquire, run_bar = BotLock.acquire, BotLoop.run_bar
        save_progress, save_state = BotRunRepository.save_progress, runner.save_state
        timers = self

        def timed_acquire(lock: Any) -> None:
            acquire(lock)
            timers.mark("lock")

        def timed_run_bar(loop: Any, row: int, **kwargs: Any) -> None:
            timers._wall, timers._cpu = time.perf_counter(), time.process_time()
            timers.mark("first_iteration_start", timers._wall)
            run_bar(loop, row, **kwargs)
            timers.series["run_bar"].append(time.perf_counter() - timers._wall)

        def timed_progress(runs: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = save_progress(runs, *args, **kwargs)
            timers.series["progress"].append(time.perf_counter() - start)
            return result

        def timed_state(state_dir: Path, state: Any) -> Path:
            start = time.perf_counter()
            result = save_state(state_dir, state)
            timers.iteration_saved(start)
            return result

        BotLock.acquire = timed_acquire  # type: ignore[method-assign]
        BotLoop.run_bar = timed_run_bar  # type: ignore[method-assign]
        BotRunRepository.save_progress = timed_progress  # type: ignore[method-assign]
        runner.save_state = timed_state  # type: ignore[attr-defined]

    def iteration_saved(self, state_file_start: float) -> None:
        end = time.perf_counter()
        self.series["state_file"].append(end - state_file_start)
        self.series["iteration"].append(end - self._wall)
        self.series["iteration_cpu"].append(time.process_time() - self._cpu)
        self.mark("first_iteration_end", end)
        if self.stop_after_first:
            self.dump()
            os.kill(os.getpid(), signal.SIGKILL)


def child_main(timings_path: Path, stop_after_first: bool, profile: Path | None) -> None:
    """Run ``marketbot ARGS`` (after ``--``) with timers around the bot's loop."""
    args = sys.argv[sys.argv.index("--") + 1 :]
    timers = LoopTimers(timings_path, stop_after_first)
    timers.install()
    from marketbot.cli import main

    profiler = cProfile.Profile() if profile else None
    try:
        if profiler:
            profiler.enable()
        main(args)
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise
    finally:
        if profiler and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        timers.mark("end")
        timers.dump()


# -- the driver -------------------------------------------------------------------------------


def environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETBOT_")}
    env["MARKETBOT_DATA_DIR"] = str(data_dir)
    return env


def console(data_dir: Path, *args: str) -> None:
    """The console script, to its end."""
    subprocess.run(
        [str(MARKETBOT), *args], env=environment(data_dir), check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def instrumented(
    data_dir: Path, args: list[str], *, stop_after_first: bool = False,
    profile: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """``marketbot ARGS`` in a fresh, instrumented process; its timings."""
    timings = data_dir.parent / "timings.json"
    timings.unlink(missing_ok=True)
    command = [sys.executable, __file__, "_child", "--timings", str(timings)]
    if stop_after_first:
        command.append("--stop-after-first")
    if profile:
        command += ["--profile", str(profile)]
    completed = subprocess.run(
        [*command, "--", *args], env=environment(data_dir),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
    )  # fmt: skip
    expected = -signal.SIGKILL if stop_after_first else 0
    if completed.returncode != expected:
        raise SystemExit(f"marketbot {' '.join(args)}: exit {completed.returncode}\n"
                         + completed.stderr.decode(errors="replace")[-2000:])  # fmt: skip
    return dict(json.loads(timings.read_text()))


def run_args(config: Path, params: tuple[str, ...], start: str, end: str) -> list[str]:
    return ["run", *STRATEGY, *params, "--config", str(config), "--replay", start, end,
            "--speed", "0"]  # fmt: skip


def count(path: Path, query: str) -> int:
    connection = sqlite3.connect(path, timeout=30)
    try:
        return int(connection.execute(query).fetchone()[0])
    finally:
        connection.close()


def last_bar(data_dir: Path) -> str | None:
    connection = sqlite3.connect(data_dir / "marketbot.db", timeout=30)
    try:
        row = connection.execute(
            "SELECT last_bar_time FROM bot_runs WHERE archived_at IS NULL"
        ).fetchone()
    finally:
        connection.close()
    return None if row is None else row[0]


def ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "n": len(ordered), "median": 1000 * statistics.median(ordered), "p90": pick(0.90),
        "p99": pick(0.99), "max": 1000 * ordered[-1], "mean": 1000 * statistics.fmean(ordered),
    }  # fmt: skip


def fsync_latency(folder: Path, writes: int = 200) -> dict[str, float]:
    """The disk's fsync: 400-byte appends, each made durable (the bot's kind of write)."""
    probe = folder / "fsync.probe"
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    times = []
    try:
        for _ in range(writes):
            os.write(fd, b"x" * 400)
            start = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        probe.unlink()
    return ms(times)


def data_dir_with_hourly_btc(work: Path, name: str) -> Path:
    """``work/NAME/var`` holding the bundled hourly BTC (imported once, then copied)."""
    base = work / "base" / "var"
    if not base.exists():
        base.mkdir(parents=True)
        console(base, "data", "import", str(HOURLY_CSV), "--symbol", "bitcoin")
    data_dir = work / name / "var"
    data_dir.mkdir(parents=True)
    source = sqlite3.connect(base / "marketbot.db")
    target = sqlite3.connect(data_dir / "marketbot.db")
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return data_dir


def bench_iterations(work: Path, start: str, end: str, profile: Path | None) -> dict[str, Any]:
    data_dir = data_dir_with_hourly_btc(work, "iterations")
    config = work / "bot.toml"
    began = time.perf_counter()
    timings = instrumented(data_dir, run_args(config, SLOW_PARAMS, start, end), profile=profile)
    wall = time.perf_counter() - began
    series = timings["series"]
    return {
        "window": [start, end], "wall_seconds": wall, "marks": timings["marks"],
        **{name: ms(values) for name, values in series.items()},
        "orders": count(data_dir / "marketbot.db", "SELECT count(*) FROM orders"),
        "trades": count(data_dir / "marketbot.db", "SELECT count(*) FROM trades"),
    }  # fmt: skip


def grow_until_orders(data_dir: Path, config: Path) -> str:
    """Replay the busy run a month at a time until it has stored ORDERS_WANTED orders."""
    import pandas as pd

    end = pd.Timestamp(RECOVERY_START)
    while True:
        end += pd.DateOffset(months=1)
        console(data_dir, *run_args(config, BUSY_PARAMS, RECOVERY_START, f"{end:%Y-%m-%d}"))
        orders = count(data_dir / "marketbot.db", "SELECT count(*) FROM orders")
        print(f"  recovery set-up: {orders} orders by {end:%Y-%m-%d}", flush=True)
        if orders >= ORDERS_WANTED:
            return f"{end:%Y-%m-%d}"


def bench_recovery(work: Path, restarts: int) -> dict[str, Any]:
    import pandas as pd

    data_dir = data_dir_with_hourly_btc(work, "recovery")
    config = work / "bot.toml"
    end = pd.Timestamp(grow_until_orders(data_dir, config))
    cycles = []
    for _ in range(restarts):
        end += pd.Timedelta(days=3)
        args = run_args(config, BUSY_PARAMS, RECOVERY_START, f"{end:%Y-%m-%d}")
        before = last_bar(data_dir)
        child = subprocess.Popen(
            [str(MARKETBOT), *args], env=environment(data_dir),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        while last_bar(data_dir) == before and child.poll() is None:
            time.sleep(0.005)
        time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        database, ledger = data_dir / "marketbot.db", data_dir / "paper" / "ledger.db"
        stored = count(database, "SELECT count(*) FROM orders")
        venue = count(ledger, "SELECT count(*) FROM paper_orders")
        marks = instrumented(data_dir, args, stop_after_first=True)["marks"]
        cycles.append({
            "orders": stored, "paper_orders": venue, "killed_at": child.returncode,
            "start_to_lock": marks["lock"],
            "lock_to_first_iteration_start": marks["first_iteration_start"] - marks["lock"],
            "lock_to_first_iteration_saved": marks["first_iteration_end"] - marks["lock"],
        })  # fmt: skip
        print(f"  restart: {cycles[-1]}", flush=True)
    keys = ("start_to_lock", "lock_to_first_iteration_start", "lock_to_first_iteration_saved")
    return {
        "cycles": cycles,
        **{key: {"median": statistics.median(c[key] for c in cycles),
                 "max": max(c[key] for c in cycles)} for key in keys},
    }  # fmt: skip


def print_profile(profile: Path, lines: int = 18) -> None:
    stats = pstats.Stats(str(profile))
    stats.sort_stats("tottime").print_stats(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2019-01-01", help="START of the timed replay")
    parser.add_argument("--end", default="2020-12-31", help="END of the timed replay")
    parser.add_argument("--restarts", type=int, default=5, help="kill -9 and restart cycles")
    parser.add_argument("--no-recovery", action="store_true", help="skip the restarts")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--profile", type=Path, help="cProfile the timed replay into FILE")
    parser.add_argument("--keep", type=Path, help="work in this (empty) folder and keep it")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_bot_") as scratch:
        work = options.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        (work / "bot.toml").write_text(ACCEPTANCE_CONFIG)
        results: dict[str, Any] = {
            "cpus": os.cpu_count(), "load_before": os.getloadavg(),
            "fsync": fsync_latency(work),
        }  # fmt: skip
        print(f"fsync: {results['fsync']}", flush=True)
        results["iterations"] = bench_iterations(work, options.start, options.end, options.profile)
        print(json.dumps(results["iterations"], indent=1), flush=True)
        if not options.no_recovery:
            results["recovery"] = bench_recovery(work, options.restarts)
        results["load_after"] = os.getloadavg()
        results["fsync_after"] = fsync_latency(work)
        summary = {k: v for k, v in results.items() if k != "recovery"}
        print(json.dumps(summary | {"recovery": {k: v for k, v in results.get(
            "recovery", {}).items() if k != "cycles"}}, indent=1))  # fmt: skip
        if options.json:
            options.json.write_text(json.dumps(results, indent=1))
        if options.profile:
            print_profile(options.profile)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child = argparse.ArgumentParser()
        child.add_argument("_child")
        child.add_argument("--timings", type=Path, required=True)
        child.add_argument("--stop-after-first", action="store_true")
        child.add_argument("--profile", type=Path)
        known, _ = child.parse_known_args(sys.argv[1 : sys.argv.index("--")])
        child_main(known.timings, known.stop_after_first, known.profile)
    else:
        main()
