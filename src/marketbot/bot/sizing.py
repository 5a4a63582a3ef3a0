"""The quote amount of an entry: the run's sizing and the risk caps, as the step core sizes.

An entry goes to the exchange as a quote-amount market buy: ``cost`` quote units, fee
included, so the venue buys ``cost / (fill x (1 + fee))`` units at its fill. That is
``risk.sizing_nb.position_units_nb`` at the fill for an allotment of ``cost``, and the kernel's
cap on the notional (``cap_entry_notional_nb``) is a cap of ``notional x (1 + fee)`` on the
cost, so the bot and the backtest buy the same units from the same allotment.
"""

from __future__ import annotations

from marketbot.backtest.step_nb import KernelSettings, limits_on_nb
from marketbot.risk.limits_nb import cap_entry_notional_nb
from marketbot.risk.sizing_nb import position_units_nb


def entry_allotment(cash: float, size_fraction: float, settings: KernelSettings) -> float:
    """Quote units the run's sizing allots to an entry from a flat account holding ``cash``.

    ``position_units_nb`` at a fill of 1 without fees is the allotment itself: all-in the
    whole equity, a fraction of it, or a fixed amount (at most the equity); a finite
    ``size_fraction`` from the strategy overrides the mode.
    """
    return float(
        position_units_nb(
            cash, 1.0, 0.0, settings.sizing_mode, settings.sizing_value, size_fraction
        )
    )


def entry_cost(cash: float, size_fraction: float, settings: KernelSettings) -> tuple[float, float]:
    """The entry's quote amount (fee included) and its notional, caps applied.

    A long never spends more than the cash there is; with risk limits on, the notional is
    shrunk to the position-size and exposure limits as the kernel shrinks it.

    Returns:
        (cost, notional): the quote amount to send and the notional it buys (cost / (1 +
        fee)). Both 0 when nothing fits.
    """
    fee_factor = 1.0 + settings.fee_rate
    cost = min(entry_allotment(cash, size_fraction, settings), max(cash, 0.0))
    notional = cost / fee_factor
    if limits_on_nb(settings):
        capped = float(
            cap_entry_notional_nb(
                notional, 0.0, settings.max_position_size, settings.max_total_exposure
            )
        )
        if capped < notional:
            notional = capped
            cost = capped * fee_factor
    return (cost, notional) if cost > 0.0 else (0.0, 0.0)
