"""Plain integer codes shared by the compiled kernel and the Python front ends.

Numba kernels pass directions, exit reasons and sizing modes as ints; these names keep them
readable, and ``EXIT_REASON_NAMES`` turns a stored code into the label used in reports.
"""

from __future__ import annotations

from typing import Final

FLAT: Final = 0
LONG: Final = 1
SHORT: Final = -1

# Exit reasons, as stored in the kernel's trade records. Order matters nowhere but here.
EXIT_NONE: Final = -1
EXIT_SIGNAL: Final = 0
EXIT_STOP_LOSS: Final = 1
EXIT_TAKE_PROFIT: Final = 2
EXIT_TRAILING_STOP: Final = 3
EXIT_MAX_HOLD: Final = 4
EXIT_END_OF_DATA: Final = 5
EXIT_PORTFOLIO_STOP: Final = 6
EXIT_REASON_NAMES: Final = (
    "signal",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "max_hold",
    "end_of_data",
    "portfolio_stop",
)

SIZING_ALL_IN: Final = 0
SIZING_FRACTION: Final = 1
SIZING_FIXED_CASH: Final = 2
