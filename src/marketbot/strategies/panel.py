"""The optional panel hook: a strategy's signals for every symbol of a portfolio run at once.

A portfolio run calls :meth:`Strategy.signals` once per symbol. A strategy may also implement
:meth:`Strategy.panel_signals`, which gets the bars of all the symbols as (bars x symbols)
grids (:class:`~marketbot.core.bar_panel.PanelBars`, each column a symbol's own bars) and
returns :class:`PanelSignals` of the same shape, computed in one pass instead of one Python
call per symbol. It must give exactly what :meth:`Strategy.signals` gives for each column.

:func:`checked_panel_signals` holds that output to the same contract as ``compute_signals``:
the common case (bool flags, float sizes and ranks) is checked on the whole panel at once;
anything else is checked symbol by symbol with ``compute_signals``'s own checks, so that a
bad value is named as ``compute_signals`` names it, with the symbol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

from marketbot.core.bar_panel import PanelBars
from marketbot.core.errors import StrategyError
from marketbot.strategies.base import Signals, _checked_signals
from marketbot.strategies.checks import describe_value, one_line

__all__ = ["PanelBars", "PanelSignals", "checked_panel_signals"]

METHOD: Final = "panel_signals()"
REQUIRED_FIELDS: Final = ("entries_long", "exits_long")
FLAG_FIELDS: Final = ("entries_long", "exits_long", "entries_short", "exits_short")
ARRAY_FIELDS: Final = (*FLAG_FIELDS, "size_fraction", "tag", "rank")
_NUMBER_KINDS: Final = "biuf"
_LARGEST_TAG: Final = 2.0**62  # as OutputCheck.tags: beyond this a float tag is not whole


@dataclass(frozen=True)
class PanelSignals:
    """:class:`~marketbot.strategies.base.Signals` of several symbols, as (bars x symbols) arrays.

    Every array has the shape of the :class:`PanelBars` grids it was computed from: column
    ``s`` is symbol ``s``, row ``r`` its ``r``-th bar. Values in the NaN padding below a
    shorter symbol's last bar are ignored. The fields mean what they mean in ``Signals``.
    """

    entries_long: np.ndarray
    exits_long: np.ndarray
    entries_short: np.ndarray | None = None
    exits_short: np.ndarray | None = None
    size_fraction: np.ndarray | None = None
    tag: np.ndarray | None = None
    tag_names: tuple[str, ...] = field(default_factory=tuple)
    rank: np.ndarray | None = None


def checked_panel_signals(label: str, result: object, bars: PanelBars) -> PanelSignals:
    """``result`` held to the ``Signals`` contract, every output a numpy array of one dtype.

    Returns:
        Entries and exits bool, ``size_fraction`` and ``rank`` float64, ``tag`` int64; the
        optional outputs stay None when not given.

    Raises:
        StrategyError: not a PanelSignals, an array of the wrong shape, or a value
            ``compute_signals`` refuses (named by symbol, bar and time).
    """
    if not isinstance(result, PanelSignals):
        raise StrategyError(
            f"{label}: {METHOD} returned {describe_value(result)}, expected "
            "PanelSignals(entries_long, exits_long, ...)"
        )
    shape = (bars.rows, len(bars.symbols))
    arrays = {
        name: _panel_array(label, name, getattr(result, name), shape)
        for name in ARRAY_FIELDS
        if name in REQUIRED_FIELDS or getattr(result, name) is not None
    }
    names = result.tag_names
    if isinstance(names, tuple | list) and not isinstance(names, str):
        checked = _checked_at_once(arrays, tuple(str(name) for name in names), bars)
        if checked is not None:
            return checked
    return _checked_by_symbol(label, arrays, names, bars)


def _panel_array(label: str, name: str, values: object, shape: tuple[int, int]) -> np.ndarray:
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise StrategyError(
            f"{label}: {METHOD} returned {name} as {describe_value(values)} that numpy cannot "
            f"read as an array ({one_line(str(exc), 120)})"
        ) from exc
    if array.shape != shape:
        raise StrategyError(
            f"{label}: {METHOD} returned {name} of shape {array.shape}, expected {shape} "
            "(bars x symbols)"
        )
    return array


def _checked_at_once(
    arrays: dict[str, np.ndarray], tag_names: tuple[str, ...], bars: PanelBars
) -> PanelSignals | None:
    """The whole panel checked and converted at once, or None to check it symbol by symbol.

    Element by element the same tests and conversions as ``OutputCheck``; padding is
    skipped. None whenever a value fails or a dtype needs ``OutputCheck``'s own message.
    """
    padding = None if bool((bars.lengths == bars.rows).all()) else ~bars.valid
    flags: dict[str, np.ndarray | None] = {}
    for name in FLAG_FIELDS:
        array = arrays.get(name)
        if array is not None and array.dtype.kind != "b":
            if array.dtype.kind not in "iuf" or _any_bad(~((array == 0) | (array == 1)), padding):
                return None
            array = np.asarray(array != 0, dtype=np.bool_)
        flags[name] = array
    entries = _entries(flags)
    outputs: dict[str, np.ndarray | None] = dict.fromkeys(("size_fraction", "tag", "rank"))
    if (size := arrays.get("size_fraction")) is not None:
        outputs["size_fraction"] = size = _float_or_none(size)
        in_range = np.isnan(size) | ((size >= 0.0) & (size <= 1.0)) if size is not None else None
        if in_range is None or _any_bad(entries & ~in_range, padding):
            return None
    if (rank := arrays.get("rank")) is not None:
        outputs["rank"] = rank = _float_or_none(rank)
        if rank is None or _any_bad(entries & np.isinf(rank), padding):
            return None
    if (tag := arrays.get("tag")) is not None:
        outputs["tag"] = tag = _tags_or_none(tag, entries, padding)
        if tag is None:
            return None
    return PanelSignals(**flags, **outputs, tag_names=tag_names)  # type: ignore[arg-type]


def _entries(flags: dict[str, np.ndarray | None]) -> np.ndarray:
    """Where an entry fires, long or short: where size, tag and rank are read."""
    entries_long, entries_short = flags["entries_long"], flags["entries_short"]
    if entries_long is None:  # a required field: always given here
        raise TypeError("entries_long is required")
    return entries_long if entries_short is None else entries_long | entries_short


def _any_bad(bad: np.ndarray, padding: np.ndarray | None) -> bool:
    return bool((bad if padding is None else bad & ~padding).any())


def _float_or_none(array: np.ndarray) -> np.ndarray | None:
    if array.dtype.kind not in _NUMBER_KINDS:
        return None
    return np.asarray(array, dtype=np.float64)


def _tags_or_none(
    array: np.ndarray, entries: np.ndarray, padding: np.ndarray | None
) -> np.ndarray | None:
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    numbers = _float_or_none(array)
    if numbers is None:
        return None
    whole = (np.abs(numbers) < _LARGEST_TAG) & (numbers == np.round(numbers))
    if _any_bad(entries & ~np.isnan(numbers) & ~whole, padding):
        return None
    return np.where(whole, numbers, -1.0).astype(np.int64)


def _checked_by_symbol(
    label: str, arrays: dict[str, np.ndarray], tag_names: object, bars: PanelBars
) -> PanelSignals:
    """Each symbol's column through ``compute_signals``' checks: the first bad one raises."""
    lengths = bars.lengths
    for column, symbol in enumerate(bars.symbols):
        outputs = {name: array[: lengths[column], column] for name, array in arrays.items()}
        _checked_signals(
            label,
            Signals(**outputs, tag_names=tag_names),  # type: ignore[arg-type]  # checked there
            bars.indexes[column],
            method=METHOD,
            column=symbol,
        )
    # The panel check refuses only what some symbol's check refuses (a test holds them to it).
    raise RuntimeError(f"{label}: {METHOD}: the panel and per-symbol checks disagree (a bug)")
