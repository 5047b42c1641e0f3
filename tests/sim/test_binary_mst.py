"""Cycle model of the MST-reuse binary MVAU (sim/binary/mst.py): step counts, the per-frame
recurrence's latency and interval, and the per-layer summary."""

from __future__ import annotations

import numpy as np
import pytest
from codesign.models.binary.mst import ReuseTree, network_reuse
from codesign.models.hwconfig import ConfigError
from codesign.sim.binary.mst import (
    chain_timing,
    compute_steps,
    default_simd,
    layer_simd,
    mst_summary,
    mst_timing,
    steady_ii,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import codesign


@pytest.fixture(scope="module")
def tfc():
    return codesign.load("tfc_w1a1")


def test_compute_steps_counts_roots_and_difference_lists():
    # root 0 (K = 10), 1 <- 0 at distance 3, 2 <- 1 at distance 0, 3 root
    tree = ReuseTree(
        parent=[-1, 0, 1, -1],
        order=[0, 3, 1, 2],
        depth=[0, 1, 2, 0],
        distance=[10, 3, 0, 10],
        fan_in=10,
    )
    assert compute_steps(tree, 1) == 10 + 3 + 1 + 10
    assert compute_steps(tree, 4) == 3 + 1 + 1 + 3
    assert compute_steps(tree, 16) == 1 + 1 + 1 + 1
    with pytest.raises(ValueError, match=r"^simd must be a positive int, not 0$"):
        compute_steps(tree, 0)


def test_single_unit_closed_form():
    # beats on cycles 0..B-1, start on B, steps on B+1..B+T, hand-over on B+T+1, output on
    # B+T+2
    t = chain_timing([3], [9], 3, frames=5)
    assert t.latency == 3 + 9 + 2
    assert t.first_out == (14, 25, 36, 47, 58)
    assert t.last_out == tuple(f + 2 for f in t.first_out)
    assert t.ii == 11 == steady_ii([3], [9], 3)


def test_chain_latency_is_the_sum_of_units():
    t = chain_timing([49, 4, 4, 4], [455, 130, 130, 22], 10, frames=1)
    assert t.latency == sum(
        b + s + 2 for b, s in zip([49, 4, 4, 4], [455, 130, 130, 22], strict=True)
    )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 30), st.integers(1, 30)), min_size=1, max_size=4),
    st.integers(1, 30),
)
def test_steady_interval_is_the_slowest_stage(units, out_beats):
    in_beats, steps = zip(*units, strict=True)
    t = chain_timing(in_beats, steps, out_beats, frames=40)
    assert t.ii == steady_ii(in_beats, steps, out_beats)
    ends = np.diff(t.last_out[20:])
    assert np.all(ends == t.ii)  # periodic: every frame, not only on average


def test_default_simd():
    assert [default_simd(k) for k in (784, 64, 10, 7, 1)] == [16, 16, 10, 7, 1]


def test_layer_simd_errors(tfc):
    assert layer_simd(tfc, {"fc0": 56}) == {"fc0": 56, "fc1": 16, "fc2": 16, "fc3": 16}
    with pytest.raises(ConfigError, match=r"^layer 'fc0': simd must divide the fan-in 784, not 5$"):
        layer_simd(tfc, 5)
    with pytest.raises(ConfigError, match=r"^simd names no MST layer 'act0'"):
        layer_simd(tfc, {"act0": 4})


def test_mst_timing_of_tfc(tfc):
    trees = network_reuse(tfc)
    t = mst_timing(tfc, simd={"fc0": 56}, trees=trees)
    steps = [compute_steps(trees[n], s) for n, s in zip(trees, (56, 16, 16, 16), strict=True)]
    assert t.latency == sum(b + s + 2 for b, s in zip((14, 4, 4, 4), steps, strict=True))
    assert t.ii == steps[0] + 2  # fc0 is the slowest stage
    with pytest.raises(ConfigError, match=r"^out_per_beat must divide the 10 outputs"):
        mst_timing(tfc, out_per_beat=3)


def test_mst_summary_of_tfc(tfc):
    rows = mst_summary(tfc, max_depth=3)
    assert [r["name"] for r in rows] == ["fc0", "fc1", "fc2", "fc3"]
    for r in rows:
        assert r["direct_ops"] == r["channels"] * r["fan_in"]
        assert r["ops_saved"] == r["direct_ops"] - r["ops"] > 0
        assert r["saved_fraction"] == pytest.approx(r["ops_saved"] / r["direct_ops"])
        assert r["max_depth"] <= 3 and r["plain_depth"] >= r["max_depth"]
        assert r["plain_ops"] <= r["ops"]
        assert r["cycles"] < r["direct_cycles"]
    assert rows[0]["channels"] == 64 and rows[0]["fan_in"] == 784
