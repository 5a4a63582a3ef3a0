"""The smart search: Optuna's TPE sampler on a budget of trials, over a search space.

The search space (ranges per parameter, validated up front) is :mod:`search_space`'s, the
same the grid expands; its names are re-exported here.

:func:`run_study` asks Optuna for one trial at a time, backtests it here and tells Optuna the
metric. Combinations the strategy rejects (``fast >= slow``) and those with fewer than
``min_trades`` trades are told as pruned, so the sampler steers away from them and they never
win. Every finished trial keeps its parameters and metrics as user attributes, so a study in
an RDB storage (``sqlite:///...``, ``postgresql://...``) can be shared by several processes
and its results table rebuilt from any of them. Optuna is imported only when a study runs.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from marketbot.core.errors import ConfigError
from marketbot.optimize.grid import is_minimised
from marketbot.optimize.search_space import (
    MAX_GRID_POINTS,
    Dimension,
    ParamRange,
    RangeSpec,
    grid_axes,
    search_space,
)
from marketbot.strategies.base import Strategy

if TYPE_CHECKING:
    import optuna

__all__ = [
    "MAX_GRID_POINTS",
    "Dimension",
    "ParamRange",
    "RangeSpec",
    "StudyOutcome",
    "StudySettings",
    "TrialRunner",
    "grid_axes",
    "run_study",
    "search_space",
]

Metrics = dict[str, float | int]
ProgressCallback = Callable[[int, int], None]

_SETUP_ATTR = "marketbot_setup"


@dataclass(frozen=True)
class StudySettings:
    """How an Optuna study runs.

    Attributes:
        trials: Trials this call adds to the study (its budget of backtests).
        seed: Seed of the TPE sampler: the same seed gives the same trials (in one process).
        storage: An RDB storage URL to keep and share the study (``sqlite:///study.db``);
            None keeps it in memory.
        study_name: The study's name in the storage (default: derived from the strategy,
            the data and the metric, so the same command resumes the same study).
    """

    trials: int = 100
    seed: int | None = None
    storage: str | None = None
    study_name: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or self.trials < 1:
            raise ConfigError(f"trials={self.trials!r}: must be a whole number >= 1")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ConfigError(f"seed={self.seed!r}: must be a whole number or None")
        if self.storage is not None and (not isinstance(self.storage, str) or not self.storage):
            raise ConfigError("storage= must be a database URL such as sqlite:///study.db")


@dataclass(frozen=True)
class StudyOutcome:
    """Every finished trial of a study that has metrics, in trial order.

    Attributes:
        names: The searched parameters, in the order given.
        numbers: Each row's trial number.
        combinations: Each row's full parameters (defaults filled in).
        rows: Each row's metrics.
        skipped: Trials whose combination the strategy rejected.
        skip_reasons: A few examples of why.
        study_name: The study's name.
    """

    names: tuple[str, ...]
    numbers: tuple[int, ...]
    combinations: tuple[dict[str, Any], ...]
    rows: tuple[Metrics, ...]
    skipped: int
    skip_reasons: tuple[str, ...]
    study_name: str


@dataclass
class TrialRunner:
    """What a study optimises, and how a trial runs: cached metrics per combination.

    TPE repeats itself on small spaces, hence the cache.

    Attributes:
        strategy: The strategy (its constraints decide which trials are skipped).
        space: The validated search space.
        evaluate: Backtests one full parameter dict and returns its metrics.
        metric: The metric to optimise (drawdowns minimised, the rest maximised).
        min_trades: Trials with fewer trades are told as pruned (ineligible).
    """

    strategy: Strategy
    space: tuple[Dimension, ...]
    evaluate: Callable[[Mapping[str, Any]], Metrics]
    metric: str
    min_trades: int
    cache: dict[tuple[tuple[str, Any], ...], Metrics] = field(default_factory=dict)

    def run(self, study: optuna.Study) -> None:
        """Ask the study for one trial, backtest it (or reuse its metrics), tell the result."""
        from optuna.trial import TrialState

        trial = study.ask()
        try:
            overrides = {dimension.name: dimension.suggest(trial) for dimension in self.space}
            try:
                params = self.strategy.resolve_params(overrides)
            except ConfigError as exc:
                trial.set_user_attr("skip_reason", str(exc))
                study.tell(trial, state=TrialState.PRUNED)
                return
            key = tuple(sorted(params.items()))
            if key not in self.cache:
                self.cache[key] = _plain(self.evaluate(params))
            metrics = self.cache[key]
        except BaseException:
            study.tell(trial, state=TrialState.FAIL)  # not left running in a shared storage
            raise
        trial.set_user_attr("params", params)
        trial.set_user_attr("metrics", metrics)
        value = float(metrics[self.metric])
        if metrics["num_trades"] < self.min_trades:
            study.tell(trial, state=TrialState.PRUNED)  # ineligible: steer the sampler away
        elif math.isnan(value):
            study.tell(trial, state=TrialState.FAIL)
        else:
            study.tell(trial, value)


def _plain(metrics: Mapping[str, Any]) -> Metrics:
    # Plain Python numbers: user attributes are stored as JSON.
    return {key: int(v) if isinstance(v, int) else float(v) for key, v in metrics.items()}


def run_study(
    runner: TrialRunner,
    settings: StudySettings,
    *,
    setup: Mapping[str, object],
    progress: ProgressCallback | None = None,
) -> StudyOutcome:
    """Run ``settings.trials`` Optuna trials one after another and collect the study's rows.

    Args:
        runner: The strategy, search space, evaluation, metric and minimum trades.
        settings: Trials, seed and storage.
        setup: What the trials depend on (strategy, data, costs...); a stored study made
            with a different setup or space is refused rather than mixed in.
        progress: Called as ``progress(done, total)`` after each trial.

    Raises:
        ConfigError: optuna is not installed, the storage cannot be opened, or the stored
            study was made for a different setup.
    """
    try:
        import optuna
    except ImportError as exc:
        raise ConfigError("method='optuna' needs optuna: pip install optuna") from exc
    space = runner.space
    full_setup = {**setup, "space": {d.name: d.describe() for d in space}}
    storage = _open_storage(optuna, settings.storage)
    try:
        with _quiet(optuna):
            study = _study(optuna, storage, settings, full_setup, is_minimised(runner.metric))
        for done in range(1, settings.trials + 1):
            runner.run(study)
            if progress is not None:
                progress(done, settings.trials)
        return _outcome(study, tuple(d.name for d in space))
    finally:
        engine = getattr(storage, "engine", None)
        if engine is not None:
            engine.dispose()


def _open_storage(optuna_module: Any, url: str | None) -> Any:
    if url is None:
        return None
    try:
        return optuna_module.storages.RDBStorage(url)
    except Exception as exc:  # sqlalchemy and optuna raise several kinds here
        raise ConfigError(
            f"cannot open the Optuna storage {_masked(url)}: {type(exc).__name__}: "
            f"{str(exc).replace(url, _masked(url))}"
        ) from exc


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an invalid URL)"


def _study(
    optuna_module: Any,
    storage: Any,
    settings: StudySettings,
    setup: dict[str, Any],
    minimise: bool,
) -> optuna.Study:
    name = settings.study_name
    if name is None and storage is not None:
        name = f"marketbot:{setup['strategy']}:{setup['data']}:{setup['metric']}"
    study: optuna.Study = optuna_module.create_study(
        storage=storage,
        sampler=optuna_module.samplers.TPESampler(seed=settings.seed),
        study_name=name,
        direction="minimize" if minimise else "maximize",
        load_if_exists=True,
    )
    stored = study.user_attrs.get(_SETUP_ATTR)
    if stored is None:
        study.set_user_attr(_SETUP_ATTR, setup)
    elif stored != json.loads(json.dumps(setup)):  # as the storage gives it back
        differ = sorted(k for k in setup.keys() | stored.keys() if setup.get(k) != stored.get(k))
        raise ConfigError(
            f"study {study.study_name!r} in the storage was made with a different "
            f"{', '.join(differ)}: give another study_name to start a new study"
        )
    return study


def _outcome(study: optuna.Study, names: tuple[str, ...]) -> StudyOutcome:
    numbers: list[int] = []
    combinations: list[dict[str, Any]] = []
    rows: list[Metrics] = []
    skipped, reasons = 0, list[str]()
    for trial in study.get_trials(deepcopy=False):
        if not trial.state.is_finished():
            continue  # still running in another process that shares the storage
        attrs = trial.user_attrs
        if "metrics" in attrs:
            numbers.append(trial.number)
            combinations.append(dict(attrs["params"]))
            rows.append(dict(attrs["metrics"]))
        elif "skip_reason" in attrs:
            skipped += 1
            if len(reasons) < 5:
                reasons.append(str(attrs["skip_reason"]))
    return StudyOutcome(
        names, tuple(numbers), tuple(combinations), tuple(rows), skipped, tuple(reasons),
        study.study_name,
    )  # fmt: skip


@contextlib.contextmanager
def _quiet(optuna_module: Any) -> Iterator[None]:
    """Silence Optuna's INFO lines ("A new study created...") for the call only."""
    before = optuna_module.logging.get_verbosity()
    optuna_module.logging.set_verbosity(optuna_module.logging.WARNING)
    try:
        yield
    finally:
        optuna_module.logging.set_verbosity(before)
