"""Search spaces and the smart search: Optuna's TPE sampler on a budget of trials.

A range per parameter is either a list of values (categorical choices) or a numeric
:class:`ParamRange` (``low``/``high``/``step``, also given as a dict or as the CLI's
``LOW:HIGH[:STEP]`` text). :func:`search_space` validates every range against the strategy's
declared parameters before anything runs; the same space feeds both methods: the grid expands
it (:meth:`Dimension.values`) and Optuna samples it (:meth:`Dimension.suggest`).

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
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any, cast

from marketbot.core.errors import ConfigError
from marketbot.optimize.grid import is_minimised
from marketbot.strategies.base import Parameter, ParamValue, Strategy

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

MAX_GRID_POINTS = 1_000_000
"""Most values one range may expand to on the grid; beyond that, use Optuna."""

Metrics = dict[str, float | int]
ProgressCallback = Callable[[int, int], None]

_SETUP_ATTR = "marketbot_setup"


@dataclass(frozen=True)
class ParamRange:
    """A numeric range: ``low`` to ``high`` inclusive, every ``step`` (None: continuous).

    Integer parameters default to a step of 1; float parameters without a step are
    continuous for Optuna and cannot be expanded into a grid.

    Raises:
        ConfigError: a bound or the step is not a finite number, low > high, or step <= 0.
    """

    low: float
    high: float
    step: float | None = None

    def __post_init__(self) -> None:
        for label, value in (("low", self.low), ("high", self.high), ("step", self.step)):
            if value is None and label == "step":
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError(f"{label}={value!r}: must be a number")
            if not math.isfinite(value):
                raise ConfigError(f"{label}={value!r}: must be a finite number")
        if self.low > self.high:
            raise ConfigError(f"low={self.low!r} > high={self.high!r}: low must be <= high")
        if self.step is not None and self.step <= 0:
            raise ConfigError(f"step={self.step!r}: must be > 0")

    @classmethod
    def parse(cls, text: str) -> ParamRange:
        """Read the CLI's ``LOW:HIGH[:STEP]`` (``5:50:5``, ``0.5:3``).

        Raises:
            ConfigError: not two or three numbers separated by colons, or an invalid range.
        """
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ConfigError(f"range {text!r}: expected LOW:HIGH or LOW:HIGH:STEP")
        numbers = [_parse_number(part, text) for part in parts]
        return cls(numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else None)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object]) -> ParamRange:
        """Build from ``{'low': ..., 'high': ..., 'step': ...}`` (step optional).

        Raises:
            ConfigError: a missing bound, an unknown key, or an invalid range.
        """
        unknown = set(mapping) - {"low", "high", "step"}
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}: use low, high and step")
        if "low" not in mapping or "high" not in mapping:
            raise ConfigError("a range needs both 'low' and 'high'")
        return cls(mapping["low"], mapping["high"], mapping.get("step"))  # type: ignore[arg-type]  # checked in __post_init__


RangeSpec = Sequence[object] | ParamRange | Mapping[str, object]
"""What one parameter's range may be: a list of values, a ParamRange or its dict form."""


def _parse_number(part: str, text: str) -> float:
    try:
        number = float(part)
    except ValueError:
        raise ConfigError(f"range {text!r}: {part!r} is not a number") from None
    return int(number) if number.is_integer() and "." not in part else number


@dataclass(frozen=True)
class Dimension:
    """One validated axis of a search space.

    Attributes:
        name: The parameter's name.
        choices: The values to choose from (a list was given), else None.
        low: Smallest value of a numeric range (converted to the parameter's type).
        high: Largest value actually reachable: ``low`` plus a whole number of steps.
        step: Distance between values; None for a continuous float range.
        integer: True when the parameter is an int.
    """

    name: str
    choices: tuple[ParamValue, ...] | None = None
    low: float = 0
    high: float = 0
    step: float | None = None
    integer: bool = False

    def values(self) -> list[ParamValue]:
        """Every value, in order, for the grid.

        Raises:
            ConfigError: a continuous range, or more than MAX_GRID_POINTS values.
        """
        if self.choices is not None:
            return list(self.choices)
        if self.step is None:
            raise ConfigError(
                f"range of {self.name!r} has no step: the grid needs one "
                "(LOW:HIGH:STEP), or use method='optuna' for a continuous range"
            )
        count = self._steps(self.step) + 1
        if count > MAX_GRID_POINTS:
            raise ConfigError(
                f"range of {self.name!r} has {count:,} values (at most {MAX_GRID_POINTS:,} "
                "on the grid): widen the step or use method='optuna'"
            )
        return [self._value_at(index, self.step) for index in range(count)]

    def suggest(self, trial: optuna.trial.Trial) -> ParamValue:
        """Ask an Optuna trial for this parameter's value (snapped onto the step)."""
        if self.choices is not None:
            return cast(ParamValue, trial.suggest_categorical(self.name, self.choices))
        if self.integer:
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1)
            )
        value = trial.suggest_float(self.name, self.low, self.high, step=self.step)
        if self.step is None:
            return value
        # Optuna's arithmetic leaves float noise (0.7000000000000001); report the grid value.
        steps = (_decimal(value) - _decimal(self.low)) / _decimal(self.step)
        return self._value_at(int(steps.to_integral_value()), self.step)

    def describe(self) -> dict[str, object]:
        """A JSON-ready description, to recognise the same space in a stored study."""
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "step": self.step}

    def _steps(self, step: float) -> int:
        span = (_decimal(self.high) - _decimal(self.low)) / _decimal(step)
        return int(span.to_integral_value(rounding=ROUND_FLOOR))

    def _value_at(self, index: int, step: float) -> ParamValue:
        value = _decimal(self.low) + index * _decimal(step)
        return int(value) if self.integer else float(value)


def _decimal(value: float) -> Decimal:
    # Decimal(str(x)) keeps the number as written (0.1, not 0.1000000000000000055...).
    return Decimal(str(value))


def search_space(
    strategy: Strategy, param_ranges: Mapping[str, RangeSpec]
) -> tuple[Dimension, ...]:
    """Validate ``param_ranges`` against the strategy's parameters, in the order given.

    Raises:
        ConfigError: no ranges, an unknown parameter, an empty list, a value of the wrong
            type or outside the declared range, a numeric range on a bool or str parameter,
            a non-integer bound or step on an int parameter, low > high or step <= 0.
    """
    if not param_ranges:
        raise ConfigError("param_ranges is empty: give at least one parameter and its values")
    declared = {p.name: p for p in strategy.parameters}
    dimensions = []
    for name, spec in param_ranges.items():
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ConfigError(
                f"strategy {strategy.name!r} has no parameter {name!r} (parameters: {known})"
            )
        dimensions.append(_dimension(declared[name], spec))
    return tuple(dimensions)


def _dimension(parameter: Parameter, spec: object) -> Dimension:
    name = parameter.name
    if isinstance(spec, Mapping | ParamRange):
        try:
            numeric = spec if isinstance(spec, ParamRange) else ParamRange.from_mapping(spec)
        except ConfigError as exc:
            raise ConfigError(f"range of {name!r}: {exc}") from exc
        return _numeric_dimension(parameter, numeric)
    if isinstance(spec, str | bytes) or not isinstance(spec, Sequence):
        raise ConfigError(
            f"range of {name!r} must be a list of values or a ParamRange "
            f"({{'low': ..., 'high': ..., 'step': ...}}), got {spec!r}"
        )
    if len(spec) == 0:
        raise ConfigError(f"range of {name!r} is empty")
    choices = tuple(dict.fromkeys(parameter.coerce(value) for value in spec))
    return Dimension(name, choices=choices)


def _numeric_dimension(parameter: Parameter, numeric: ParamRange) -> Dimension:
    name, kind = parameter.name, parameter.kind
    if kind not in (int, float):
        raise ConfigError(
            f"range of {name!r}: the parameter is {kind.__name__}, "
            "so give a list of choices, not low/high"
        )
    integer = kind is int
    if integer and numeric.step is not None and not float(numeric.step).is_integer():
        raise ConfigError(f"range of {name!r}: step={numeric.step!r} must be a whole number")
    low = float(parameter.coerce(numeric.low))
    high = float(parameter.coerce(numeric.high))
    step = int(numeric.step or 1) if integer else numeric.step
    dimension = Dimension(name, low=low, high=high, step=step, integer=integer)
    if step is not None:
        # The last reachable value, so Optuna does not warn and both methods agree.
        last = dimension._value_at(dimension._steps(step), step)
        dimension = Dimension(name, low=low, high=float(last), step=step, integer=integer)
    return dimension


def grid_axes(space: Sequence[Dimension]) -> dict[str, list[ParamValue]]:
    """Expand a space into the lists of values ``expand_grid`` takes."""
    return {dimension.name: dimension.values() for dimension in space}


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
