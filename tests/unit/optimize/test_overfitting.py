"""Known-answer and invariant tests for the deflated Sharpe ratio and the PBO.

Every expected figure is worked out by hand in the comments (normal quantiles from standard
tables), never copied from running the code under test.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marketbot.core.errors import ConfigError
from marketbot.optimize import overfitting
from marketbot.optimize.overfitting import (
    BlockSums,
    DeflatedSharpe,
    PBOResult,
    block_sums,
    deflated_sharpe_from_moments,
    deflated_sharpe_from_returns,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    mean_return,
    pbo_from_block_sums,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    return_moments,
    sharpe,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "overfitting.md"
GAMMA = 0.5772157  # Euler-Mascheroni constant, to 7 places
LN2 = math.log(2.0)


def normal_cdf(x: float) -> float:
    """Standard normal CDF from math.erf, independent of the module's NormalDist."""
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


# --- the DSR paper's numerical example ----------------------------------------------------
# Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio", numerical example: annualised
# SR 2.5 from T = 1250 daily returns (5 years x 250 days), N = 100 trials whose annualised
# Sharpe ratios have variance V = 0.5, skewness -3, kurtosis 10. The paper reports
# SR0 ~= 0.1132 (per period) and DSR ~= 0.9004. By hand, per period:
#   SR       = 2.5 / sqrt(250) = 2.5 / 15.811388 = 0.158114
#   V[SR]    = 0.5 / 250 = 0.002, sqrt = 0.0447214
#   Z^-1(1 - 1/100)       = Z^-1(0.99)       = 2.326348 (table)
#   1 / (100 e) = 1 / 271.8282 = 0.0036788
#   Z^-1(1 - 1/(100 e))   = Z^-1(0.9963212)  = 2.680210 (table)
#   (1 - gamma) * 2.326348 = 0.4227843 * 2.326348 = 0.983543
#   gamma * 2.680210       = 0.5772157 * 2.680210 = 1.547059
#   SR0 = 0.0447214 * (0.983543 + 1.547059) = 0.0447214 * 2.530602 = 0.113172
#   moment term = 1 - (-3)(0.158114) + (10 - 1)/4 * 0.158114^2
#               = 1 + 0.474342 + 2.25 * 0.025000 = 1.530592, sqrt = 1.237171
#   z = (0.158114 - 0.113172) * sqrt(1249) / 1.237171 = 0.044942 * 35.341194 / 1.237171
#     = 1.588293 / 1.237171 = 1.283813
#   DSR = Z(1.2838) = 0.89973 + 0.3813 * (0.90147 - 0.89973) = 0.90039   (table, Z(1.28..1.29))
PAPER_SR = 2.5 / math.sqrt(250)
PAPER_VARIANCE = 0.5 / 250


def test_expected_maximum_sharpe_when_paper_example_is_0_1132() -> None:
    by_hand = math.sqrt(0.002) * ((1 - GAMMA) * 2.326348 + GAMMA * 2.680210)

    sr0 = expected_maximum_sharpe(PAPER_VARIANCE, 100)

    assert sr0 == pytest.approx(by_hand, abs=1e-6)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)  # the paper's figure


def test_deflated_sharpe_ratio_when_paper_example_is_0_9004() -> None:
    result = deflated_sharpe_ratio(PAPER_SR, PAPER_VARIANCE, 100, 1250, -3.0, 10.0)

    assert result.expected_max_sharpe == pytest.approx(0.113172, abs=1e-6)
    assert result.deflated_sharpe == pytest.approx(normal_cdf(1.283813), abs=1e-6)
    assert result.deflated_sharpe == pytest.approx(0.9004, abs=5e-5)  # the paper's figure
    assert result.valid
    assert result.note == ""


def test_deflated_sharpe_ratio_when_fewer_trials_passes_the_95_percent_bar() -> None:
    # Same example with N = 46 (the paper notes, as we recall it, that about 46 trials
    # would have passed at 95 %; the figures here are by hand either way):
    #   Z^-1(1 - 1/46) = Z^-1(0.978261) = 2.019086; Z^-1(1 - 1/(46 e)) = Z^-1(0.992003) = 2.409035
    #   SR0 = 0.0447214 * (0.4227843 * 2.019086 + 0.5772157 * 2.409035) = 0.0447214 * 2.244171
    #       = 0.100362
    #   z = (0.158114 - 0.100362) * 35.341194 / 1.237171 = 1.649737; Z(1.6497) = 0.95050
    by_hand_sr0 = math.sqrt(0.002) * ((1 - GAMMA) * 2.019086 + GAMMA * 2.409035)
    result = deflated_sharpe_ratio(PAPER_SR, PAPER_VARIANCE, 46, 1250, -3.0, 10.0)

    assert result.expected_max_sharpe == pytest.approx(by_hand_sr0, abs=1e-6)
    assert result.deflated_sharpe == pytest.approx(normal_cdf(1.649737), abs=1e-5)
    assert result.deflated_sharpe > 0.95


def test_deflated_sharpe_ratio_when_trials_grow_never_rises() -> None:
    values = [
        deflated_sharpe_ratio(PAPER_SR, PAPER_VARIANCE, n, 1250, -3.0, 10.0).deflated_sharpe
        for n in (1, 2, 5, 10, 100, 1_000, 100_000)
    ]

    assert values == sorted(values, reverse=True)


# --- PSR ----------------------------------------------------------------------------------


@given(
    sr=st.floats(-1.0, 1.0),
    benchmark=st.floats(-1.0, 1.0),
    num_returns=st.integers(2, 10_000),
)
def test_probabilistic_sharpe_ratio_when_skew_0_kurt_3_is_the_normal_cdf(
    sr: float, benchmark: float, num_returns: int
) -> None:
    # With g3 = 0 and g4 = 3 the moment term is 1 + (3 - 1)/4 SR^2 = 1 + SR^2 / 2.
    z = (sr - benchmark) * math.sqrt(num_returns - 1) / math.sqrt(1 + sr * sr / 2)

    psr = probabilistic_sharpe_ratio(sr, benchmark, num_returns, 0.0, 3.0)

    assert psr == pytest.approx(normal_cdf(z), abs=1e-12)


def test_probabilistic_sharpe_ratio_when_sharpe_equals_benchmark_is_one_half() -> None:
    assert probabilistic_sharpe_ratio(0.1, 0.1, 500, -1.0, 6.0) == pytest.approx(0.5)


def test_probabilistic_sharpe_ratio_when_worked_by_hand_matches() -> None:
    # SR 0.1, SR* 0, T 101, skew -1, kurt 5: moment term 1 + 0.1 + 1 * 0.01 = 1.11;
    # z = 0.1 * 10 / sqrt(1.11) = 1 / 1.053565 = 0.949158.
    psr = probabilistic_sharpe_ratio(0.1, 0.0, 101, -1.0, 5.0)

    assert psr == pytest.approx(normal_cdf(0.949158), abs=1e-6)


@pytest.mark.parametrize(
    ("sr", "benchmark", "num_returns", "skew", "kurt"),
    [
        (0.1, 0.0, 1, 0.0, 3.0),  # T < 2
        (0.1, 0.0, 0, 0.0, 3.0),
        (math.nan, 0.0, 100, 0.0, 3.0),
        (0.1, math.inf, 100, 0.0, 3.0),
        (0.1, 0.0, 100, math.nan, 3.0),
        (2.0, 0.0, 100, 3.0, 1.0),  # impossible moments: 1 - 6 + 0 < 0
    ],
)
def test_probabilistic_sharpe_ratio_when_undefined_is_zero(
    sr: float, benchmark: float, num_returns: int, skew: float, kurt: float
) -> None:
    assert probabilistic_sharpe_ratio(sr, benchmark, num_returns, skew, kurt) == 0.0


# --- DSR special cases --------------------------------------------------------------------


def test_deflated_sharpe_ratio_when_one_trial_is_the_psr_against_zero() -> None:
    result = deflated_sharpe_ratio(0.1, 0.5, 1, 101, -1.0, 5.0)

    assert result.expected_max_sharpe == 0.0
    assert result.deflated_sharpe == pytest.approx(normal_cdf(0.949158), abs=1e-6)
    assert result.valid
    assert "one trial" in result.note


def test_deflated_sharpe_ratio_when_trials_do_not_vary_is_the_psr_against_zero() -> None:
    result = deflated_sharpe_ratio(0.1, 0.0, 50, 101, -1.0, 5.0)

    assert result.expected_max_sharpe == 0.0
    assert result.deflated_sharpe == pytest.approx(normal_cdf(0.949158), abs=1e-6)
    assert result.valid


@pytest.mark.parametrize(
    ("sr", "variance", "num_returns", "skew", "kurt"),
    [
        (0.1, 0.01, 1, 0.0, 3.0),
        (math.nan, 0.01, 100, 0.0, 3.0),
        (0.1, math.nan, 100, 0.0, 3.0),
        (0.1, math.inf, 100, 0.0, 3.0),
        (0.1, 0.01, 100, -math.inf, 3.0),
        (0.1, 0.01, 100, 0.0, math.nan),
        (2.0, 0.01, 100, 3.0, 1.0),
    ],
)
def test_deflated_sharpe_ratio_when_degenerate_is_invalid_zero_and_json_safe(
    sr: float, variance: float, num_returns: int, skew: float, kurt: float
) -> None:
    result = deflated_sharpe_ratio(sr, variance, 10, num_returns, skew, kurt)

    assert result.deflated_sharpe == 0.0
    assert not result.valid
    assert result.note
    json.dumps(result.to_dict(), allow_nan=False)


@pytest.mark.parametrize(
    ("num_trials", "num_returns", "variance"), [(0, 100, 0.01), (10, -1, 0.01), (10, 100, -0.1)]
)
def test_deflated_sharpe_ratio_when_arguments_are_impossible_raises_config_error(
    num_trials: int, num_returns: int, variance: float
) -> None:
    with pytest.raises(ConfigError):
        deflated_sharpe_ratio(0.1, variance, num_trials, num_returns, 0.0, 3.0)


@given(
    sr=st.floats(allow_nan=True, allow_infinity=True),
    variance=st.floats(min_value=0.0) | st.just(math.nan),
    num_trials=st.integers(1, 10**6),
    num_returns=st.integers(0, 10**6),
    skew=st.floats(allow_nan=True, allow_infinity=True),
    kurt=st.floats(allow_nan=True, allow_infinity=True),
)
def test_deflated_sharpe_ratio_when_inputs_are_arbitrary_is_a_probability(
    sr: float, variance: float, num_trials: int, num_returns: int, skew: float, kurt: float
) -> None:
    result = deflated_sharpe_ratio(sr, variance, num_trials, num_returns, skew, kurt)

    assert 0.0 <= result.deflated_sharpe <= 1.0
    assert result.valid or result.deflated_sharpe == 0.0
    json.dumps(result.to_dict(), allow_nan=False)


def test_deflated_sharpe_when_to_dict_has_every_field() -> None:
    result = deflated_sharpe_ratio(PAPER_SR, PAPER_VARIANCE, 100, 1250, -3.0, 10.0)

    assert list(result.to_dict()) == [field.name for field in fields(DeflatedSharpe)]


# --- DSR from returns ---------------------------------------------------------------------


def test_deflated_sharpe_from_returns_when_worked_by_hand_matches() -> None:
    # Returns 0, 2, 0, 2: mean 1, deviations +-1, so m2 = 1, m3 = 0, m4 = 1: skewness 0,
    # kurtosis 1; std (ddof 1) = sqrt(4 / 3), SR = 1 / sqrt(4/3) = sqrt(3)/2 = 0.866025.
    # Trials' Sharpes 0.1 and 0.3: V = ((-0.1)^2 + 0.1^2) / 1 = 0.02, N = 2.
    # SR0 = sqrt(0.02) * ((1 - gamma) * Z^-1(1/2) + gamma * Z^-1(1 - 1/(2e)))
    #     = 0.141421 * (0 + 0.5772157 * Z^-1(0.816060)) = 0.141421 * 0.5772157 * 0.900453
    #     = 0.073505
    # moment term = 1 - 0 + (1 - 1)/4 * SR^2 = 1; z = (0.866025 - 0.073505) * sqrt(3) = 1.372687
    by_hand_sr0 = math.sqrt(0.02) * GAMMA * 0.900453
    result = deflated_sharpe_from_returns(np.array([0.0, 2.0, 0.0, 2.0]), np.array([0.1, 0.3]))

    assert result.observed_sharpe == pytest.approx(math.sqrt(3) / 2, abs=1e-12)
    assert result.skewness == pytest.approx(0.0, abs=1e-12)
    assert result.kurtosis == pytest.approx(1.0, abs=1e-12)
    assert result.sharpe_variance_across_trials == pytest.approx(0.02, abs=1e-12)
    assert (result.num_trials, result.num_returns) == (2, 4)
    assert result.expected_max_sharpe == pytest.approx(by_hand_sr0, abs=1e-6)
    assert result.deflated_sharpe == pytest.approx(normal_cdf(1.372687), abs=1e-6)


def test_deflated_sharpe_from_returns_when_num_trials_given_uses_it() -> None:
    returns = np.array([0.0, 2.0, 0.0, 2.0])
    result = deflated_sharpe_from_returns(returns, np.array([0.1, 0.3]), num_trials=100)

    assert result.num_trials == 100
    assert result.expected_max_sharpe == pytest.approx(expected_maximum_sharpe(0.02, 100))


@given(scale=st.floats(1e-150, 1e150), seed=st.integers(0, 1000))
def test_deflated_sharpe_from_returns_when_returns_are_rescaled_is_unchanged(
    scale: float, seed: int
) -> None:
    returns = np.random.default_rng(seed).normal(0.001, 0.01, 250)
    trials = np.array([0.0, 0.05, 0.1])

    base = deflated_sharpe_from_returns(returns, trials)
    scaled = deflated_sharpe_from_returns(returns * scale, trials)

    assert scaled.valid
    assert scaled.deflated_sharpe == pytest.approx(base.deflated_sharpe, abs=1e-9)
    assert scaled.kurtosis == pytest.approx(base.kurtosis, rel=1e-9)


@pytest.mark.parametrize(
    ("returns", "trials"),
    [
        ([0.01, 0.01, 0.01], [0.1, 0.2]),  # constant: no Sharpe ratio
        ([0.01], [0.1, 0.2]),  # T < 2
        ([], [0.1]),
        ([0.01, math.nan, 0.02], [0.1, 0.2]),
        ([0.01, 0.03, 0.02], [0.1, math.inf]),
    ],
)
def test_deflated_sharpe_from_returns_when_degenerate_is_invalid_zero(
    returns: list[float], trials: list[float]
) -> None:
    result = deflated_sharpe_from_returns(np.array(returns), np.array(trials))

    assert result.deflated_sharpe == 0.0
    assert not result.valid
    json.dumps(result.to_dict(), allow_nan=False)


def test_deflated_sharpe_from_returns_when_inputs_are_malformed_raises_config_error() -> None:
    with pytest.raises(ConfigError):
        deflated_sharpe_from_returns(np.zeros((3, 2)), np.array([0.1]))
    with pytest.raises(ConfigError):
        deflated_sharpe_from_returns(np.array([0.1, 0.2]), np.array([]))
    with pytest.raises(ConfigError):
        deflated_sharpe_from_returns(np.array([0.1, 0.2]), np.array([0.1]), num_trials=0)


# --- PBO: hand-enumerated examples --------------------------------------------------------


def test_pbo_when_four_blocks_two_columns_matches_hand_enumeration() -> None:
    # One row per block, metric = mean return. Blocks 0..3: A = 5, 1, 2, 4 and B = 1, 4, 1, 0.
    # In-sample blocks (lexicographic) -> in-sample means A/B, winner -> out-of-sample means
    # A/B -> winner's rank of 2, omega = rank / 3, logit:
    #   {0,1}: 3.0/2.5 A -> {2,3}: 3.0/0.5 A best, rank 2, omega 2/3, logit +ln 2
    #   {0,2}: 3.5/1.0 A -> {1,3}: 2.5/2.0 A best, rank 2, logit +ln 2
    #   {0,3}: 4.5/0.5 A -> {1,2}: 1.5/2.5 A worst, rank 1, omega 1/3, logit -ln 2
    #   {1,2}: 1.5/2.5 B -> {0,3}: 4.5/0.5 B worst, rank 1, logit -ln 2
    #   {1,3}: 2.5/2.0 A -> {0,2}: 3.5/1.0 A best, logit +ln 2
    #   {2,3}: 3.0/0.5 A -> {0,1}: 3.0/2.5 A best, logit +ln 2
    # PBO = 2 / 6 = 1/3. Probability of loss = 0 (no out-of-sample mean is negative).
    # Degradation line of OOS on IS, with IS = 3, 3.5, 4.5, 2.5, 2.5, 3 (mean 19/6) and
    # OOS = 3, 2.5, 1.5, 0.5, 3.5, 3 (mean 14/6): in sixths, dx = -1, 2, 8, -4, -4, -1 and
    # dy = 4, 1, -5, -11, 7, 4; sum dx*dy = -4 + 2 - 40 + 44 - 28 - 4 = -30, sum dx^2 = 102:
    # slope = -30/102 = -5/17; intercept = 14/6 + 5/17 * 19/6 = 7/3 + 95/102 = 333/102.
    returns = np.array([[5.0, 1.0], [1.0, 4.0], [2.0, 1.0], [4.0, 0.0]])

    result = probability_of_backtest_overfitting(returns, num_splits=4, metric=mean_return)

    assert result.pbo == pytest.approx(1 / 3)
    assert (result.num_overfit, result.num_combinations, result.total_combinations) == (2, 6, 6)
    np.testing.assert_allclose(result.logits, [LN2, LN2, -LN2, -LN2, LN2, LN2], atol=1e-15)
    np.testing.assert_allclose(
        result.out_of_sample_relative_ranks, [2 / 3, 2 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3]
    )
    assert result.best_in_sample_columns.tolist() == [0, 0, 0, 1, 0, 0]
    assert result.in_sample_performance.tolist() == [3.0, 3.5, 4.5, 2.5, 2.5, 3.0]
    assert result.out_of_sample_performance.tolist() == [3.0, 2.5, 1.5, 0.5, 3.5, 3.0]
    assert result.degradation_slope == pytest.approx(-5 / 17)
    assert result.degradation_intercept == pytest.approx(333 / 102)
    assert result.probability_of_loss == 0.0
    assert result.valid
    assert not result.sampled


def test_pbo_when_sharpe_metric_uses_ddof_1_per_block_set() -> None:
    # S = 2, two rows per block. A = 1, 3 | 0, 4 and B = 0, 2 | 1, 2.
    # Block 0: A mean 2, std sqrt(2) -> SR sqrt(2);  B mean 1, std sqrt(2) -> SR 1/sqrt(2).
    # Block 1: A mean 2, std sqrt(8) -> SR 1/sqrt(2); B mean 1.5, std sqrt(0.5) -> SR 3/sqrt(2).
    # In-sample {0}: A wins (sqrt 2), out-of-sample A 1/sqrt(2) < B: rank 1, overfit.
    # In-sample {1}: B wins (3/sqrt 2), out-of-sample B 1/sqrt(2) < A sqrt 2: overfit. PBO 1.
    returns = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 1.0], [4.0, 2.0]])

    result = probability_of_backtest_overfitting(returns, num_splits=2, metric=sharpe)

    assert result.pbo == 1.0
    assert result.best_in_sample_columns.tolist() == [0, 1]
    root2 = math.sqrt(2)
    np.testing.assert_allclose(result.in_sample_performance, [root2, 3 / root2], rtol=1e-12)
    np.testing.assert_allclose(result.out_of_sample_performance, [1 / root2, 1 / root2])


def test_pbo_when_in_sample_tie_picks_the_column_worse_out_of_sample() -> None:
    # S = 2, one row per block, mean return. A = 1 | 0, B = 1 | 2.
    # In-sample {0}: A and B tie at 1; the tie goes to the one worse out-of-sample, A (0 < 2):
    # rank 1 of 2, omega 1/3, overfit. In-sample {1}: B wins (2 > 0); out-of-sample A = B = 1
    # tie: average rank 1.5, omega 1.5 / 3 = 1/2, logit 0, which counts as overfit. PBO 1.
    result = probability_of_backtest_overfitting(
        np.array([[1.0, 1.0], [0.0, 2.0]]), num_splits=2, metric=mean_return
    )

    assert result.best_in_sample_columns.tolist() == [0, 1]
    np.testing.assert_allclose(result.out_of_sample_relative_ranks, [1 / 3, 1 / 2])
    assert result.pbo == 1.0


def test_pbo_when_a_column_is_constant_in_sample_gives_it_sharpe_zero() -> None:
    # Column A is 0.1 on block 0 and 0.3 on block 1 (constant within each block; about its
    # median the values are +-0.1, so the in-sample variance is pure rounding); column B is
    # always negative. A's in-sample Sharpe must be exactly 0 (undefined -> 0), not 1e15.
    noise = np.random.default_rng(7).normal(0.0, 0.01, 100)
    returns = np.column_stack([np.repeat([0.1, 0.3], 50), -1.0 + noise])

    result = probability_of_backtest_overfitting(returns, num_splits=2)

    assert result.best_in_sample_columns.tolist() == [0, 0]
    assert result.in_sample_performance.tolist() == [0.0, 0.0]
    assert result.pbo == 0.0


# --- PBO: statistical behaviour -----------------------------------------------------------


def test_pbo_when_one_column_dominates_every_block_is_zero() -> None:
    # Column 7 has a drift of 5 standard deviations: in any 800-row half its Sharpe is about 5,
    # while a driftless column's is within +-0.2 with overwhelming probability.
    returns = np.random.default_rng(11).normal(0.0, 0.01, (1600, 20))
    returns[:, 7] += 0.05

    result = probability_of_backtest_overfitting(returns, num_splits=16)

    assert result.pbo == 0.0
    assert set(result.best_in_sample_columns.tolist()) == {7}
    # Always the best of 20 out-of-sample: omega = 20/21, logit = ln 20.
    np.testing.assert_allclose(result.logits, math.log(20.0))
    assert result.probability_of_loss == 0.0


def test_pbo_when_columns_are_iid_noise_is_near_one_half() -> None:
    # For i.i.d. columns the in-sample winner is picked from rows independent of the
    # out-of-sample rows, and the columns are exchangeable, so its out-of-sample rank is
    # uniform on 1..N: with N = 20 (even, no ties) P(rank <= 10) = 1/2 exactly, so E[PBO] =
    # 1/2. One matrix's PBO is very noisy (its 70 splits share rows): its standard deviation
    # measured over such matrices is about 0.2. The mean over 100 independent matrices then
    # has a standard deviation of about 0.02; the tolerance 0.07 is about 3.5 of them.
    rng = np.random.default_rng(20240601)
    pbos = [
        probability_of_backtest_overfitting(rng.normal(0.0, 0.01, (400, 20)), 8).pbo
        for _ in range(100)
    ]

    assert float(np.mean(pbos)) == pytest.approx(0.5, abs=0.07)


@pytest.mark.parametrize("num_splits", [2, 4, 6, 8, 10, 16])
def test_pbo_when_s_blocks_evaluates_c_s_over_2_splits(num_splits: int) -> None:
    returns = np.random.default_rng(num_splits).normal(0.0, 0.01, (64, 5))

    result = probability_of_backtest_overfitting(returns, num_splits)

    expected = math.comb(num_splits, num_splits // 2)  # 2, 6, 20, 70, 252, 12870
    assert result.num_combinations == result.total_combinations == expected
    assert len(result.logits) == len(result.in_sample_performance) == expected
    assert not result.sampled


@given(permutation=st.permutations(list(range(12))))
def test_pbo_when_columns_are_permuted_is_unchanged(permutation: list[int]) -> None:
    returns = np.random.default_rng(3).normal(0.0005, 0.01, (240, 12))
    order = np.array(permutation)

    base = probability_of_backtest_overfitting(returns, 8)
    permuted = probability_of_backtest_overfitting(returns[:, order], 8)

    assert permuted.pbo == base.pbo
    np.testing.assert_array_equal(permuted.logits, base.logits)
    np.testing.assert_allclose(permuted.in_sample_performance, base.in_sample_performance)
    np.testing.assert_allclose(permuted.out_of_sample_performance, base.out_of_sample_performance)
    np.testing.assert_array_equal(
        order[permuted.best_in_sample_columns], base.best_in_sample_columns
    )


def test_pbo_when_splits_exceed_the_cap_samples_complementary_pairs_reproducibly() -> None:
    # S = 20, one row per block; column 0 returns 2^b on block b, column 1 returns 0, so with
    # the mean-return metric column 0 always wins and 10 x its in-sample mean is the bit mask
    # of the in-sample blocks (and 10 x its out-of-sample mean that of the complement).
    returns = np.column_stack([2.0 ** np.arange(20), np.zeros(20)])

    first = probability_of_backtest_overfitting(
        returns, 20, mean_return, max_combinations=1001, seed=9
    )
    again = probability_of_backtest_overfitting(
        returns, 20, mean_return, max_combinations=1001, seed=9
    )

    assert first.sampled
    assert first.total_combinations == math.comb(20, 10)  # 184,756
    assert first.num_combinations == 1000  # 500 in-sample sets and their complements
    np.testing.assert_array_equal(first.in_sample_performance, again.in_sample_performance)
    in_sample = np.rint(first.in_sample_performance * 10).astype(np.int64).tolist()
    out_of_sample = np.rint(first.out_of_sample_performance * 10).astype(np.int64).tolist()
    assert len(set(in_sample)) == 1000
    assert all(bin(bits).count("1") == 10 for bits in in_sample)
    assert all(bits & 1 for bits in in_sample[0::2])  # the drawn sets hold block 0
    assert in_sample[1::2] == out_of_sample[0::2]  # each followed by its complement
    assert all(a + b == 2**20 - 1 for a, b in zip(in_sample, out_of_sample, strict=True))


def test_pbo_when_split_count_fits_the_cap_enumerates_all() -> None:
    returns = np.random.default_rng(5).normal(0.0, 0.01, (160, 10))

    result = probability_of_backtest_overfitting(returns, 16, max_combinations=12_870)

    assert not result.sampled
    assert result.num_combinations == 12_870


def test_pbo_when_12870_splits_and_200_columns_runs_fast() -> None:
    # The compiled splits take about 10 ms here (numpy's path 0.15 s); a per-split loop over
    # the rows would take tens of seconds. The bound leaves room for a loaded test machine.
    returns = np.random.default_rng(1).normal(0.0, 0.01, (2000, 200))
    probability_of_backtest_overfitting(returns[:160], 16)  # compiles or loads the kernels

    started = time.perf_counter()
    result = probability_of_backtest_overfitting(returns, 16)
    elapsed = time.perf_counter() - started

    assert result.num_combinations == 12_870
    assert elapsed < 2.0


@given(
    returns=hnp.arrays(
        np.float64,
        st.tuples(st.integers(4, 40), st.integers(2, 6)),
        elements=st.floats(-1.0, 1.0) | st.sampled_from([0.0, 0.01, -0.01]),
    ),
    num_splits=st.sampled_from([2, 4]),
    use_sharpe=st.booleans(),
)
def test_pbo_when_returns_are_arbitrary_is_a_probability_with_finite_logits(
    returns: np.ndarray, num_splits: int, use_sharpe: bool
) -> None:
    metric = sharpe if use_sharpe else mean_return

    result = probability_of_backtest_overfitting(returns, num_splits, metric)

    assert result.valid
    assert 0.0 <= result.pbo <= 1.0
    assert result.num_combinations == math.comb(num_splits, num_splits // 2)
    assert np.all(np.isfinite(result.logits))
    assert np.all(
        (result.out_of_sample_relative_ranks > 0) & (result.out_of_sample_relative_ranks < 1)
    )
    json.dumps(result.to_dict(), allow_nan=False)


# --- PBO: degenerate input ----------------------------------------------------------------


def _numpy_sharpe(mean: np.ndarray, variance: np.ndarray, count: np.ndarray) -> np.ndarray:
    """``sharpe`` by another name: a metric the PBO runs with numpy, not compiled."""
    return sharpe(mean, variance, count)


def _numpy_mean(mean: np.ndarray, variance: np.ndarray, count: np.ndarray) -> np.ndarray:
    return mean_return(mean, variance, count)


@given(
    returns=hnp.arrays(
        np.float64,
        st.tuples(st.integers(20, 80), st.integers(2, 9)),
        elements=st.floats(-0.05, 0.05) | st.sampled_from([0.0, 0.01, -0.01]),
    ),
    num_splits=st.sampled_from([2, 4, 10, 18]),
    use_sharpe=st.booleans(),
    max_combinations=st.sampled_from([20_000, 40]),
    identical=st.booleans(),
)
def test_pbo_when_compiled_gives_the_numpy_paths_numbers(
    returns: np.ndarray,
    num_splits: int,
    use_sharpe: bool,
    max_combinations: int,
    identical: bool,
) -> None:
    # 18 blocks: three groups of subset tables; 40 splits: sampled complementary pairs.
    if identical:
        returns[:, 1] = returns[:, 0]
    compiled, numpy_metric = (sharpe, _numpy_sharpe) if use_sharpe else (mean_return, _numpy_mean)
    ours = probability_of_backtest_overfitting(
        returns, num_splits, compiled, max_combinations=max_combinations
    )
    theirs = probability_of_backtest_overfitting(
        returns, num_splits, numpy_metric, max_combinations=max_combinations
    )
    for name, value in ours.to_dict().items():
        assert value == theirs.to_dict()[name], name


@given(
    returns=hnp.arrays(
        np.float64,
        st.tuples(st.integers(16, 60), st.integers(2, 6)),
        elements=st.floats(-0.05, 0.05, allow_subnormal=False),
    ),
    num_splits=st.sampled_from([2, 4, 8]),
    offsets=st.lists(st.floats(-0.01, 0.01), min_size=6, max_size=6),
)
def test_pbo_from_block_sums_when_shifted_otherwise_gives_the_matrix_result(
    returns: np.ndarray, num_splits: int, offsets: list[float]
) -> None:
    # The same rows summed about another shift: the same picks and ranks, values to rounding.
    columns = returns.shape[1]
    returns = returns + np.linspace(-0.02, 0.02, columns)  # columns apart: no near-ties
    shift = np.median(returns, axis=0) + np.array(offsets[:columns])
    starts = (np.arange(num_splits) * len(returns)) // num_splits
    shifted = returns - shift
    blocks = BlockSums(
        sums=np.add.reduceat(shifted, starts, axis=0),
        squares=np.add.reduceat(shifted * shifted, starts, axis=0),
        counts=np.diff(np.append(starts, len(returns))).astype(np.float64),
        shift=shift,
    )
    ours = pbo_from_block_sums(blocks, mean_return)
    theirs = probability_of_backtest_overfitting(returns, num_splits, mean_return)
    assert ours.num_rows == theirs.num_rows and ours.num_columns == columns
    np.testing.assert_array_equal(ours.best_in_sample_columns, theirs.best_in_sample_columns)
    np.testing.assert_allclose(ours.in_sample_performance, theirs.in_sample_performance, 1e-9)
    assert ours.pbo == theirs.pbo
    exact = pbo_from_block_sums(block_sums(returns, num_splits), mean_return)
    assert exact.to_dict() == theirs.to_dict()


def test_pbo_from_block_sums_when_malformed_raises_or_is_invalid() -> None:
    good = block_sums(np.random.default_rng(0).normal(size=(40, 3)), 4)
    with pytest.raises(ConfigError, match="do not match"):
        pbo_from_block_sums(BlockSums(good.sums, good.squares[:2], good.counts, good.shift))
    with pytest.raises(ConfigError, match="num_splits must be even"):
        pbo_from_block_sums(BlockSums(good.sums[:3], good.squares[:3], good.counts[:3], good.shift))
    empty_block = BlockSums(good.sums, good.squares, np.array([10.0, 0.0, 15.0, 15.0]), good.shift)
    assert pbo_from_block_sums(empty_block).note == "40 rows cannot fill 4 blocks"
    nan = BlockSums(good.sums, good.squares, good.counts, np.array([0.0, np.nan, 0.0]))
    assert pbo_from_block_sums(nan).note == "returns hold a value that is not finite"


@given(
    returns=hnp.arrays(
        np.float64, st.integers(0, 40), elements=st.floats(-0.5, 0.5) | st.just(0.01)
    ),
    sharpes=st.lists(st.floats(-0.2, 0.2), min_size=1, max_size=5),
)
def test_deflated_sharpe_from_moments_when_of_the_returns_is_from_returns(
    returns: np.ndarray, sharpes: list[float]
) -> None:
    assert deflated_sharpe_from_moments(
        return_moments(returns), sharpes, num_trials=7
    ) == deflated_sharpe_from_returns(returns, sharpes, num_trials=7)


@pytest.mark.parametrize(
    ("returns", "reason"),
    [
        (np.zeros((100, 1)), "2 columns"),
        (np.zeros((100, 0)), "2 columns"),
        (np.zeros((15, 3)), "rows"),
        (np.array([[0.1, math.nan]] * 32), "finite"),
        (np.array([[0.1, math.inf]] * 32), "finite"),
    ],
)
def test_pbo_when_degenerate_is_invalid_one(returns: np.ndarray, reason: str) -> None:
    result = probability_of_backtest_overfitting(returns, 16)

    assert result.pbo == 1.0
    assert not result.valid
    assert reason in result.note
    assert result.num_combinations == 0
    assert len(result.logits) == 0
    json.dumps(result.to_dict(), allow_nan=False)


def test_pbo_when_columns_are_identical_is_one() -> None:
    # Every split ties in- and out-of-sample: omega = ((N + 1) / 2) / (N + 1) = 1/2, logit 0.
    column = np.random.default_rng(2).normal(0.0, 0.01, 80)

    result = probability_of_backtest_overfitting(np.column_stack([column] * 4), 8)

    assert result.pbo == 1.0
    assert result.valid
    np.testing.assert_array_equal(result.logits, 0.0)


@pytest.mark.parametrize(
    ("shape", "num_splits", "max_combinations"),
    [
        ((100,), 4, 100),  # not 2-D
        ((100, 3), 3, 100),  # odd S
        ((100, 3), 0, 100),
        ((100, 3), 64, 100),  # S above 62
        ((100, 3), 4, 1),  # cap below 2
    ],
)
def test_pbo_when_arguments_are_malformed_raises_config_error(
    shape: tuple[int, ...], num_splits: int, max_combinations: int
) -> None:
    with pytest.raises(ConfigError):
        probability_of_backtest_overfitting(
            np.zeros(shape), num_splits, max_combinations=max_combinations
        )


def test_pbo_when_metric_misbehaves_raises_config_error() -> None:
    returns = np.random.default_rng(0).normal(0.0, 0.01, (40, 3))

    def wrong_shape(mean: np.ndarray, variance: np.ndarray, count: np.ndarray) -> np.ndarray:
        return mean[:, :1]

    def not_finite(mean: np.ndarray, variance: np.ndarray, count: np.ndarray) -> np.ndarray:
        return mean / 0.0

    with pytest.raises(ConfigError):
        probability_of_backtest_overfitting(returns, 4, wrong_shape)
    with np.errstate(divide="ignore"), pytest.raises(ConfigError):
        probability_of_backtest_overfitting(returns, 4, not_finite)


def test_pbo_result_when_built_is_read_only_and_serialisable() -> None:
    result = probability_of_backtest_overfitting(
        np.array([[5.0, 1.0], [1.0, 4.0], [2.0, 1.0], [4.0, 0.0]]), 4, mean_return
    )

    with pytest.raises(ValueError, match="read-only"):
        result.logits[0] = 0.0
    as_dict = result.to_dict()
    assert list(as_dict) == [field.name for field in fields(PBOResult)]
    assert as_dict["best_in_sample_columns"] == [0, 0, 0, 1, 0, 0]
    json.dumps(as_dict, allow_nan=False)


# --- docs ---------------------------------------------------------------------------------


def test_docs_when_read_mention_every_public_name_and_the_worked_figures() -> None:
    text = DOCS.read_text(encoding="utf-8")

    for name in overfitting.__all__:
        assert name in text, name
    for figure in ("0.1132", "0.9004", "1/3"):
        assert figure in text, figure
