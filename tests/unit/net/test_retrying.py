"""RetryPolicy: the patience settings both network clients share, checked when built."""

from __future__ import annotations

import dataclasses
import math
import time

import pytest

from marketbot.config import Settings
from marketbot.core.errors import ConfigError
from marketbot.net import RetryPolicy


def test_retry_policy_when_defaults_are_the_documented_ones() -> None:
    policy = RetryPolicy()

    assert policy.timeout_seconds == 30.0
    assert policy.max_attempts == 4
    assert policy.backoff_seconds == 1.0
    assert policy.max_retry_after_seconds == 120.0
    assert policy.sleep is time.sleep


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"max_attempts": 0}, r"^`max_attempts` must be at least 1, got 0$"),
        ({"timeout_seconds": 0}, r"^`timeout_seconds` must be positive, got 0$"),
        ({"timeout_seconds": math.nan}, r"^`timeout_seconds` must be positive, got nan$"),
        ({"backoff_seconds": -1.0}, r"^`backoff_seconds` must not be negative, got -1.0$"),
        (
            {"max_retry_after_seconds": -5},
            r"^`max_retry_after_seconds` must not be negative, got -5$",
        ),
    ],
)
def test_retry_policy_when_setting_out_of_range_raises_config_error_naming_it(
    setting: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        RetryPolicy(**setting)  # type: ignore[arg-type]


def test_retry_policy_when_zero_backoff_and_retry_after_cap_accepts_them() -> None:
    policy = RetryPolicy(backoff_seconds=0, max_retry_after_seconds=0)

    assert (policy.backoff_seconds, policy.max_retry_after_seconds) == (0, 0)


def test_retry_policy_when_assigned_to_raises_frozen_error() -> None:
    policy = RetryPolicy()

    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 1  # type: ignore[misc]


def test_retry_policy_when_given_positionally_raises_type_error() -> None:
    with pytest.raises(TypeError):
        RetryPolicy(4, 1.0)  # type: ignore[call-arg, arg-type]


def test_retry_policy_from_settings_when_timeout_set_uses_it_and_the_sleep() -> None:
    waits: list[float] = []

    policy = RetryPolicy.from_settings(Settings(http_timeout_seconds=5), sleep=waits.append)

    assert policy == RetryPolicy(timeout_seconds=5, sleep=waits.append)


def test_retry_policy_from_settings_when_no_sleep_waits_for_real() -> None:
    assert RetryPolicy.from_settings(Settings()).sleep is time.sleep
