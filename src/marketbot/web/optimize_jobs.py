"""The optimisation job: a grid search of one strategy, saved as an optimisation run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marketbot.web.worker import JobRun


def run_optimize_job(run: JobRun) -> Mapping[str, Any]:
    """Placeholder until the optimiser page lands."""
    raise NotImplementedError
