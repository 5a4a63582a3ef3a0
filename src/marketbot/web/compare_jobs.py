"""The comparison job: backtest each named strategy on one symbol and period, save the runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketbot.web.worker import JobRun


def run_compare_job(run: JobRun) -> Mapping[str, Any]:
    """Placeholder until the comparison lands."""
    raise NotImplementedError
