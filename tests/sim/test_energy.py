"""The dataflow energy model: the vectorised form equals the single-design one on random
foldings of every zoo network, a dense layer's MAC energy is its count times the table's
Horowitz figures, node scaling is the stated rule, and every parameter has a source."""

from __future__ import annotations

import csv
import re
from importlib import resources

import numpy as np
import pytest
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
from codesign.models.ir import Network
from codesign.models.layers import Dense, Input
from codesign.models.loader import zoo_names
from codesign.models.qtype import QType
from codesign.sim.dataflow.analytic import analytic, random_foldings
from codesign.sim.energy import KINDS, dataflow_energy, dataflow_energy_batch, load_params
from codesign.sim.fmax import fold_columns

import codesign

ZOO = ("jet_tagger", "tfc_w2a2", "tfc_w1a1", "cnv_tiny", "resnet_tiny")


def _folded(d: Design, pe: dict, simd: dict, i: int) -> Design:
    """``d``'s network with point ``i`` of the foldings, memory styles and FIFO depths as
    ``d`` was given them."""
    stages = {
        s.name: StageConfig(
            pe=int(pe[s.name][i]),
            simd=int(simd[s.name][i]),
            mem_style=d.given[s.name].mem_style,
            fifo_depth=d.given[s.name].fifo_depth,
            fifo_depth_b=d.given[s.name].fifo_depth_b,
        )
        for s in d.stages
    }
    return Design(d.network, HardwareConfig(stages, d.config.clock_mhz, d.config.pipeline))


def test_the_zoo_is_the_one_tested():
    assert set(ZOO) <= set(zoo_names())


@pytest.mark.parametrize("name", ZOO)
def test_batch_equals_the_single_design_on_random_foldings(name):
    d = Design(codesign.load(name))
    pe, simd = random_foldings(d, 16, seed=7)
    got = dataflow_energy_batch(d, pe, simd, node_nm=65)
    assert got.shape == (16,)
    for i in range(16):
        one = _folded(d, pe, simd, i)
        e = dataflow_energy(one, node_nm=65)
        assert got[i] == pytest.approx(e.nj, rel=1e-12)
        assert e.ii == analytic(d, pe=pe, simd=simd)["ii"][i]
    # (N, S) arrays and mappings are the same points; a second call reuses the tables
    arrays = fold_columns(d, pe, "pe"), fold_columns(d, simd, "simd")
    np.testing.assert_array_equal(dataflow_energy_batch(d, *arrays, node_nm=65), got)


@pytest.mark.parametrize("name", ZOO)
def test_energy_is_positive_and_the_breakdown_adds_up(name):
    d = Design(codesign.load(name))
    e = dataflow_energy(d)
    assert e.nj > 0
    assert set(e.breakdown) == {s.name for s in d.stages}
    for row in e.breakdown.values():
        assert tuple(row) == KINDS
        assert all(v >= 0 for v in row.values())
    assert sum(e.by_kind.values()) == pytest.approx(e.nj, rel=1e-12)
    pe, simd = random_foldings(d, 64, seed=1)
    assert (dataflow_energy_batch(d, pe, simd) > 0).all()


def _dense(pe: int, simd: int, **cfg) -> Design:
    """One dense layer: 16 int8 inputs, 4 outputs, int4 weights alternating 7 and -8."""
    w = np.tile([7, -8], (4, 8))
    x = Input(name="input", inputs=(), shape=(16,), qtype=QType.int(8))
    fc = Dense(name="fc", inputs=("input",), weight=w)
    stage = StageConfig(pe=pe, simd=simd, **cfg)
    return Design(Network("one", [x, fc]), HardwareConfig({"fc": stage}))


def test_a_dense_layers_mac_energy_is_its_count_times_the_table():
    """64 products of an int8 input and an int4 weight (8 x 4 bits) and, at SIMD 1, one
    15-bit accumulator add each (partial sums within ±15304); Horowitz: 8x8 multiply 0.2 pJ,
    32x32 3.1 pJ (linear in a·b), 8-bit add 0.03 pJ, 32-bit 0.1 pJ (linear in width)."""
    mul = 0.2 + (8 * 4 - 64) * (3.1 - 0.2) / (1024 - 64)
    add15 = 0.03 + (15 - 8) * (0.1 - 0.03) / 24
    e = dataflow_energy(_dense(1, 1))
    assert e.breakdown["fc"]["mac"] == pytest.approx(64 * (mul + add15) / 1000, rel=1e-12)
    # the products are the network's: more PEs change nothing; a wider SIMD moves adds from
    # the 15-bit accumulator into a narrower adder tree (13, 13 and 14 bits for 4 products)
    assert dataflow_energy(_dense(4, 1)).breakdown["fc"]["mac"] == pytest.approx(
        e.breakdown["fc"]["mac"], rel=1e-12
    )
    add = [0.03 + (b - 8) * (0.1 - 0.03) / 24 for b in (13, 13, 14, 15)]
    wide = dataflow_energy(_dense(1, 4)).breakdown["fc"]["mac"]
    assert wide == pytest.approx((64 * mul + 16 * sum(add)) / 1000, rel=1e-12)
    assert wide < e.breakdown["fc"]["mac"]


def test_fewer_wider_weight_reads_cost_less():
    """The same 64 x 16 x 4 weight bits read from block RAM as 64 words of 4 bits or 4
    words of 64: the shallow memory costs less per bit (energy ∝ √depth below 8 KB)."""
    narrow = dataflow_energy(_dense(1, 1, mem_style="block")).breakdown["fc"]["weights"]
    wide = dataflow_energy(_dense(4, 4, mem_style="block")).breakdown["fc"]["weights"]
    assert wide == pytest.approx(narrow * (4 / 64) ** 0.5, rel=1e-12)


def test_static_energy_is_power_times_the_time_per_inference():
    d = Design(codesign.load("jet_tagger"))
    slow = Design(d.network, HardwareConfig(d.config.stages, d.config.clock_mhz / 2))
    a, b = dataflow_energy(d), dataflow_energy(slow)
    assert b.by_kind["static"] == pytest.approx(2 * a.by_kind["static"], rel=1e-12)
    for k in ("mac", "weights", "activation", "buffers", "registers"):
        assert b.by_kind[k] == pytest.approx(a.by_kind[k], rel=1e-12)


def test_node_scaling(tmp_path):
    d = Design(codesign.load("jet_tagger"))
    ref = dataflow_energy(d)
    assert ref.node_nm == 45
    # same supply at every node: dynamic and static both scale with the feature size
    assert dataflow_energy(d, node_nm=65).nj == pytest.approx(ref.nj * 65 / 45, rel=1e-12)
    pe, simd = random_foldings(d, 8, seed=2)
    np.testing.assert_allclose(
        dataflow_energy_batch(d, pe, simd, node_nm=90),
        2 * dataflow_energy_batch(d, pe, simd),
        rtol=1e-12,
    )
    # twice the supply: dynamic energy x4 (C V²), static power x2 (I V)
    text = resources.files("codesign.sim").joinpath("energy.csv").read_text()
    path = tmp_path / "p.csv"
    path.write_text(re.sub(r"^target_vdd,0\.9,", "target_vdd,1.8,", text, flags=re.M))
    hot = dataflow_energy(d, params=load_params(path))
    for k in KINDS:
        assert hot.by_kind[k] == pytest.approx(
            ref.by_kind[k] * (2 if k == "static" else 4), rel=1e-12
        )


def test_every_parameter_has_a_source():
    text = resources.files("codesign.sim").joinpath("energy.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert rows and {r["name"] for r in rows} == set(load_params().params)
    for r in rows:
        src = r["source"].strip()
        assert src, r["name"]
        assert src.startswith("assumption: ") or re.search(r"ISSCC 2014|ICCD 2020", src), r
        assert float(r["value"]) > 0, r["name"]


def test_bad_arguments_are_refused():
    d = Design(codesign.load("jet_tagger"))
    with pytest.raises(ValueError, match=r"^node_nm must be a positive number \(nm\), not 0$"):
        dataflow_energy(d, node_nm=0)
    with pytest.raises(ValueError, match=r"^pe and simd must be arrays of shape \(N, 4\)"):
        dataflow_energy_batch(d, np.ones((3, 2), dtype=int), np.ones((3, 2), dtype=int))
