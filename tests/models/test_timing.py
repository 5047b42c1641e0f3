"""codesign.models.timing: cycles and a clock frequency to ns and frames per second."""

from __future__ import annotations

import math

import numpy as np
import pytest
from codesign.models.timing import (
    AtClock,
    at_clock,
    cycles_to_ns,
    frames_per_s,
    period_ns,
    slack_ns,
)


def test_conversions():
    assert period_ns(100) == 10.0
    assert period_ns(150) == pytest.approx(6.6667, abs=1e-4)
    assert cycles_to_ns(17, 100) == 170.0
    assert cycles_to_ns(0, 100) == 0.0
    assert cycles_to_ns(3, 250.0) == 12.0
    assert frames_per_s(32, 100) == 3_125_000.0
    assert frames_per_s(32.5, 65) == pytest.approx(2_000_000.0)
    assert frames_per_s(0, 100) == math.inf
    # numpy scalars, as a simulator's counts may be
    assert cycles_to_ns(np.int64(17), np.float64(100.0)) == 170.0


def test_slack_is_the_targets_period_minus_the_critical_paths_delay():
    assert slack_ns(100, 125) == pytest.approx(2.0)  # 10 ns - 8 ns
    assert slack_ns(150, 150) == 0.0
    assert slack_ns(150, 137.7) == pytest.approx(6.6667 - 7.2622, abs=1e-4)  # misses: negative


def test_at_clock():
    at = at_clock(latency=17, latency_last=20, ii=32, clock_mhz=85.5)
    assert at == AtClock(
        clock_mhz=85.5,
        latency_ns=pytest.approx(198.830, abs=1e-3),
        latency_last_ns=pytest.approx(233.918, abs=1e-3),
        frames_per_s=2_671_875.0,
    )
    assert at.to_dict() == {
        "clock_mhz": 85.5,
        "latency_ns": at.latency_ns,
        "latency_last_ns": at.latency_last_ns,
        "frames_per_s": 2_671_875.0,
    }


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: period_ns(0), r"^clock_mhz must be a finite positive number \(MHz\), not 0$"),
        (lambda: period_ns(-5.0), r"^clock_mhz must be .*, not -5\.0$"),
        (lambda: period_ns(float("inf")), r"^clock_mhz must be .*, not inf$"),
        (lambda: period_ns(True), r"^clock_mhz must be .*, not True$"),
        (lambda: period_ns("100"), r"^clock_mhz must be .*, not '100'$"),
        (lambda: cycles_to_ns(-1, 100), r"^cycles must be a finite number of cycles >= 0, not -1$"),
        (lambda: frames_per_s(float("nan"), 100), r"^ii must be a finite number .*, not nan$"),
        (lambda: slack_ns(100, 0), r"^fmax_mhz must be a finite positive number \(MHz\), not 0$"),
    ],
)
def test_bad_values(call, message):
    with pytest.raises(ValueError, match=message):
        call()
