"""The deflated Sharpe ratio: is the best of N trials better than the luck of N trials?

:func:`deflated_sharpe_ratio` (Bailey and Lopez de Prado 2014) is the probability that the
best combination's true Sharpe ratio beats the best of N skill-less trials. Per-period units
(mean / std, ddof 1, of per-bar returns); degenerate input gives ``valid=False`` and DSR 0.0.
docs/overfitting.md explains how to read it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Final

import numpy as np
import numpy.typing as npt

from marketbot.core.errors import ConfigError

FloatArray = npt.NDArray[np.float64]

EULER_MASCHERONI: Final = 0.5772156649015329
"""The Euler-Mascheroni constant gamma, in the expected maximum of N normal draws."""

_NORMAL: Final = NormalDist()


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    """The deflated Sharpe ratio of the best of N trials, with its inputs (per-period units).

    Attributes:
        deflated_sharpe: DSR in [0, 1], the PSR against ``expected_max_sharpe``; 0.0 if invalid.
        observed_sharpe: SR, the best trial's Sharpe ratio.
        expected_max_sharpe: SR0, the expected best Sharpe ratio of N skill-less trials.
        sharpe_variance_across_trials: V[SR], the variance of the trials' Sharpe ratios.
        num_trials: N, the number of trials the best was selected from.
        num_returns: T, the number of returns behind SR.
        skewness: The returns' skewness (0 for normal).
        kurtosis: The returns' Pearson (non-excess) kurtosis (3 for normal).
        valid: False when the DSR is undefined for these inputs.
        note: Why it is invalid, or a remark on a special case; "" otherwise. Non-finite
            inputs are echoed as 0.0 and named here.
    """

    deflated_sharpe: float
    observed_sharpe: float
    expected_max_sharpe: float
    sharpe_variance_across_trials: float
    num_trials: int
    num_returns: int
    skewness: float
    kurtosis: float
    valid: bool
    note: str

    def to_dict(self) -> dict[str, float | int | bool | str]:
        """The fields as a JSON-safe dict (every float is finite)."""
        return asdict(self)


def expected_maximum_sharpe(sharpe_variance_across_trials: float, num_trials: int) -> float:
    """Expected maximum per-period Sharpe ratio of N skill-less trials, SR0.

    Bailey and Lopez de Prado (2014), from the false strategy theorem (Bailey, Borwein, Lopez
    de Prado and Zhu 2014, "Pseudo-Mathematics and Financial Charlatanism")::

        SR0 = sqrt(V[SR]) * ((1 - gamma) * Z^-1(1 - 1/N) + gamma * Z^-1(1 - 1/(N e)))

    with gamma the Euler-Mascheroni constant, Z^-1 the standard normal quantile and e Euler's
    number. One trial selects nothing, so SR0 = 0 when N == 1 (the formula's Z^-1(0) is -inf).

    Args:
        sharpe_variance_across_trials: V[SR] of the trials' per-period Sharpe ratios, >= 0.
        num_trials: N >= 1, ideally the number of independent trials.

    Returns:
        SR0, per period, >= 0.

    Raises:
        ConfigError: When N < 1 or V[SR] is negative or not finite.
    """
    if num_trials < 1:
        raise ConfigError(f"num_trials must be at least 1, got {num_trials}")
    variance = sharpe_variance_across_trials
    if not math.isfinite(variance) or variance < 0:
        raise ConfigError(f"sharpe_variance_across_trials must be finite and >= 0, got {variance}")
    if num_trials == 1 or variance == 0:
        return 0.0
    quantile_n = _NORMAL.inv_cdf(1.0 - 1.0 / num_trials)
    quantile_ne = _NORMAL.inv_cdf(1.0 - 1.0 / (num_trials * math.e))
    spread = (1.0 - EULER_MASCHERONI) * quantile_n + EULER_MASCHERONI * quantile_ne
    return math.sqrt(variance) * spread


def probabilistic_sharpe_ratio(
    observed_sharpe: float,
    benchmark_sharpe: float,
    num_returns: int,
    skewness: float,
    kurtosis: float,
) -> float:
    """Probability that the true Sharpe ratio exceeds a benchmark, PSR(SR*).

    Bailey and Lopez de Prado (2012), "The Sharpe Ratio Efficient Frontier", J. Risk 15(2),
    restated in the 2014 DSR paper; all Sharpe ratios per period::

        PSR(SR*) = Z( (SR - SR*) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2) )

    with Z the standard normal CDF, g3 the skewness and g4 the Pearson kurtosis (3 for
    normal). For normal returns (g3 = 0, g4 = 3) the denominator is sqrt(1 + SR^2 / 2).

    Args:
        observed_sharpe: SR, the per-period Sharpe ratio of T returns.
        benchmark_sharpe: SR*, the per-period Sharpe ratio to beat.
        num_returns: T, the number of returns behind SR.
        skewness: g3 of the returns.
        kurtosis: g4 of the returns, non-excess.

    Returns:
        PSR in [0, 1]; 0.0 (no evidence) when T < 2, an input is not finite, or the moment
        term is not positive (impossible moments: g4 >= 1 + g3^2 for every distribution,
        which makes the term >= (1 - g3 * SR / 2)^2 >= 0).
    """
    value, _ = _psr(observed_sharpe, benchmark_sharpe, num_returns, skewness, kurtosis)
    return value


def _psr(
    observed: float, benchmark: float, num_returns: int, skewness: float, kurtosis: float
) -> tuple[float, str]:
    """PSR and '' when defined; 0.0 and the reason when not."""
    if num_returns < 2:
        return 0.0, f"PSR needs at least 2 returns, got {num_returns}"
    if not all(map(math.isfinite, (observed, benchmark, skewness, kurtosis))):
        return 0.0, "a Sharpe ratio, the skewness or the kurtosis is not finite"
    moment_term = 1.0 - skewness * observed + (kurtosis - 1.0) / 4.0 * (observed * observed)
    if not moment_term > 0:
        return 0.0, (
            f"moment term 1 - skew*SR + (kurt-1)/4*SR^2 = {moment_term:.6g} is not positive "
            "(kurtosis must be non-excess and at least 1 + skewness^2)"
        )
    z = (observed - benchmark) * math.sqrt(num_returns - 1) / math.sqrt(moment_term)
    if math.isnan(z):  # inf / inf: inputs so extreme that the products overflow
        return 0.0, "the PSR's z-score overflows: the inputs are too extreme"
    return min(1.0, max(0.0, _NORMAL.cdf(z))), ""


def deflated_sharpe_ratio(
    observed_sharpe: float,
    sharpe_variance_across_trials: float,
    num_trials: int,
    num_returns: int,
    skewness: float,
    kurtosis: float,
) -> DeflatedSharpe:
    """Deflated Sharpe ratio: PSR of the best trial against the best expected by luck.

    Bailey and Lopez de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection
    Bias, Backtest Overfitting and Non-Normality", J. Portfolio Management 40(5)::

        DSR = PSR(SR0) = Z( (SR - SR0) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR^2) )

    with SR0 from :func:`expected_maximum_sharpe`. Everything is per period; the paper's
    example (annualised SR 2.5, V[SR] 0.5, 250 days a year) passes SR = 2.5 / sqrt(250) and
    V[SR] = 0.5 / 250. A DSR of 0.95 or more is the usual bar for a real discovery.

    Special cases (documented results, never NaN): N == 1 gives SR0 = 0, so DSR is PSR against
    0 (nothing was selected); V[SR] == 0 also gives SR0 = 0; T < 2, a non-finite input or an
    impossible skewness/kurtosis pair give ``valid=False`` and DSR 0.0.

    Args:
        observed_sharpe: SR, the best trial's per-period Sharpe ratio.
        sharpe_variance_across_trials: V[SR] of the trials' per-period Sharpe ratios, >= 0.
        num_trials: N >= 1, the number of trials (the optimiser's combinations; correlated
            trials make this an upper bound on the independent ones, so the DSR errs low).
        num_returns: T >= 0, the number of per-period returns behind SR.
        skewness: g3 of the best trial's returns.
        kurtosis: g4 of the best trial's returns, Pearson (non-excess, 3 for normal).

    Returns:
        The DSR with its inputs and SR0.

    Raises:
        ConfigError: When N < 1, T < 0, or V[SR] is negative (NaN is a result, not an error).
    """
    if num_trials < 1:
        raise ConfigError(f"num_trials must be at least 1, got {num_trials}")
    if num_returns < 0:
        raise ConfigError(f"num_returns must be >= 0, got {num_returns}")
    variance = sharpe_variance_across_trials
    if variance < 0:
        raise ConfigError(f"sharpe_variance_across_trials must be >= 0, got {variance}")
    echoed = {"observed_sharpe": observed_sharpe, "sharpe_variance_across_trials": variance}
    echoed |= {"skewness": skewness, "kurtosis": kurtosis}
    bad = [name for name, value in echoed.items() if not math.isfinite(value)]
    finite = {name: 0.0 if name in bad else float(value) for name, value in echoed.items()}
    value, expected_max, note = 0.0, 0.0, f"not finite: {', '.join(bad)}"
    if not bad:
        expected_max = expected_maximum_sharpe(variance, num_trials)
        value, note = _psr(observed_sharpe, expected_max, num_returns, skewness, kurtosis)
    valid = not note
    if valid and num_trials == 1:
        note = "one trial: no selection, so the DSR is the PSR against a Sharpe ratio of 0"
    elif valid and variance == 0:
        note = "the trials' Sharpe ratios do not vary, so SR0 = 0: DSR is the PSR against 0"
    return DeflatedSharpe(
        deflated_sharpe=value,
        expected_max_sharpe=expected_max,
        num_trials=num_trials,
        num_returns=num_returns,
        valid=valid,
        note=note,
        **finite,
    )


@dataclass(frozen=True, slots=True)
class ReturnMoments:
    """What the DSR reads of the best combination's returns: T and the sample moments.

    The moments may be those of the returns times any positive constant (the DSR's Sharpe
    ratio, skewness and kurtosis are ratios that do not see the scale), which keeps sums of
    fourth powers of large returns finite.

    Attributes:
        count: T, the number of returns.
        mean: Their mean.
        m2: mean((r - mean)^2), the population (ddof 0) variance.
        m3: mean((r - mean)^3).
        m4: mean((r - mean)^4).
        constant: Every return is the same (no Sharpe ratio).
        finite: Every return is finite.
    """

    count: int
    mean: float
    m2: float
    m3: float
    m4: float
    constant: bool
    finite: bool


def return_moments(returns: npt.ArrayLike) -> ReturnMoments:
    """The moments of a 1-D series of returns (of the returns over their largest magnitude)."""
    values = np.asarray(returns, dtype=np.float64)
    if values.ndim != 1:
        raise ConfigError("best_returns and trial_sharpes must be 1-D arrays")
    size = int(values.size)
    finite = bool(np.all(np.isfinite(values)))
    with np.errstate(all="ignore"):  # an overflow gives inf, which the checks catch
        scaled = values / np.max(np.abs(values)) if size else values  # ratios are scale-free
        mean = np.mean(scaled) if size else np.float64(0)
        deviations = scaled - mean
        m2, m3, m4 = (np.mean(deviations**power) if size else np.float64(0) for power in (2, 3, 4))
    constant = bool(size > 0 and np.ptp(values) == 0)
    return ReturnMoments(size, float(mean), float(m2), float(m3), float(m4), constant, finite)


def deflated_sharpe_from_returns(
    best_returns: npt.ArrayLike, trial_sharpes: npt.ArrayLike, *, num_trials: int | None = None
) -> DeflatedSharpe:
    """DSR of the best combination, from its returns and every trial's Sharpe ratio.

    From the best combination's per-period returns r (length T): SR = mean(r) / std(r, ddof=1)
    (as ``marketbot.core.metrics``, before annualising), skewness m3 / m2^1.5 and Pearson
    kurtosis m4 / m2^2 with m_k = mean((r - mean(r))^k) (the paper's sample moments). From
    the trials' per-period Sharpe ratios: V[SR] = var(trial_sharpes, ddof=1) (0 for one trial).

    Args:
        best_returns: The selected combination's per-period returns, 1-D.
        trial_sharpes: Per-period Sharpe ratios of all N trials, the best one included, 1-D.
        num_trials: N, when it differs from ``len(trial_sharpes)`` (e.g. an estimate of the
            number of independent trials); defaults to that length.

    Returns:
        The DSR; ``valid=False`` and 0.0 when the returns are constant, fewer than 2, or
        any value is not finite.

    Raises:
        ConfigError: When an input is not 1-D, ``trial_sharpes`` is empty, or N < 1.
    """
    if np.ndim(best_returns) != 1 or np.ndim(trial_sharpes) != 1:
        raise ConfigError("best_returns and trial_sharpes must be 1-D arrays")
    return deflated_sharpe_from_moments(
        return_moments(best_returns), trial_sharpes, num_trials=num_trials
    )


def deflated_sharpe_from_moments(
    moments: ReturnMoments, trial_sharpes: npt.ArrayLike, *, num_trials: int | None = None
) -> DeflatedSharpe:
    """DSR of the best combination, from its returns' moments and every trial's Sharpe ratio.

    :func:`deflated_sharpe_from_returns` without the returns: SR = mean / sqrt(m2 T / (T - 1)),
    skewness m3 / m2^1.5, kurtosis m4 / m2^2. The optimiser's fast grid keeps the sums
    these come from while it simulates, instead of each combination's returns.

    Args:
        moments: The best combination's return moments (:func:`return_moments`).
        trial_sharpes: Per-period Sharpe ratios of all N trials, the best one included, 1-D.
        num_trials: N, when it differs from ``len(trial_sharpes)``.

    Returns:
        The DSR, invalid as :func:`deflated_sharpe_from_returns` says.

    Raises:
        ConfigError: When ``trial_sharpes`` is not 1-D or empty, or N < 1.
    """
    sharpes = np.asarray(trial_sharpes, dtype=np.float64)
    if sharpes.ndim != 1:
        raise ConfigError("best_returns and trial_sharpes must be 1-D arrays")
    if sharpes.size == 0:
        raise ConfigError("trial_sharpes must hold at least one Sharpe ratio (the best one's)")
    trials = int(sharpes.size) if num_trials is None else num_trials
    if trials < 1:
        raise ConfigError(f"num_trials must be at least 1, got {trials}")
    size = moments.count
    finite = moments.finite and bool(np.all(np.isfinite(sharpes)))
    m2, m3, m4 = np.float64(moments.m2), np.float64(moments.m3), np.float64(moments.m4)
    with np.errstate(all="ignore"):  # an overflow gives inf, which the checks below catch
        variance = np.var(sharpes, ddof=1) if sharpes.size > 1 and finite else np.float64(0)
        observed = np.float64(moments.mean) / np.sqrt(m2 * size / (size - 1)) if size > 1 else 0.0
        skewness, kurtosis = m3 / m2**1.5, m4 / m2**2
    reason = ""
    if not finite:
        reason = "best_returns or trial_sharpes hold a value that is not finite"
    elif size < 2:
        reason = f"PSR needs at least 2 returns, got {size}"
    elif moments.constant or not m2**2 > 0:
        reason = "the best combination's returns are constant: Sharpe ratio undefined"
    if reason:
        return DeflatedSharpe(0.0, 0.0, 0.0, float(variance), trials, size, 0.0, 0.0, False, reason)
    return deflated_sharpe_ratio(
        float(observed), float(variance), trials, size, float(skewness), float(kurtosis)
    )
