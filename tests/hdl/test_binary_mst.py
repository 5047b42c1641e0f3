# amaranth: UnusedElaboratable=no
"""The MST-reuse binary MVAU (hdl/binary/mst.py): amaranth.sim against the golden model and
the exact cycles of sim/binary/mst.py, and the tfc_w1a1 network on Verilator under cocotb."""

from __future__ import annotations

import numpy as np
import pytest
from codesign.hdl.binary.mst import MstMVAU, MstNetwork, generate
from codesign.hdl.manifest import read_manifest
from codesign.hdl.tools import lint
from codesign.models.activations import MultiThreshold
from codesign.models.binary import BinaryDense, xnor_popcount
from codesign.models.binary.mst import network_reuse, reuse_tree
from codesign.models.golden import golden, random_inputs
from codesign.models.hwconfig import ConfigError
from codesign.models.ir import Network
from codesign.models.layers import Input
from codesign.models.qtype import parse_qtype
from codesign.sim.binary.mst import chain_timing, compute_steps, mst_timing

import codesign


def _pack(rows: np.ndarray, per_beat: int, bits: int) -> list[int]:
    """Frames (N, elements) → beat words of ``per_beat`` elements of ``bits``."""
    words = []
    for row in rows:
        for b in range(0, len(row), per_beat):
            words.append(sum(int(v) << (j * bits) for j, v in enumerate(row[b : b + per_beat])))
    return words


def _unpack(words: list[int], per_beat: int, bits: int, elements: int) -> np.ndarray:
    vals = [(w >> (j * bits)) & ((1 << bits) - 1) for w in words for j in range(per_beat)]
    return np.array(vals, dtype=np.int64).reshape(-1, elements)


# (M, K, simd, out_per_beat, thresholds, depth bound, seed)
UNITS = [
    (6, 12, 4, 2, False, 2, 0),
    (6, 12, 4, 2, True, None, 1),
    (1, 5, 5, 1, True, None, 2),
    (9, 16, 1, 3, False, 1, 3),
    (16, 24, 8, 16, True, 3, 4),
    (5, 7, 7, 5, False, 0, 5),
]


def _layer(m, k, with_thresholds, seed):
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 2, (2, k))
    w = protos[rng.integers(0, 2, m)] ^ (rng.random((m, k)) < 0.2)
    if m > 2:
        w[m - 1] = w[0]  # a duplicate channel: an empty difference list
    t = rng.integers(-1, k + 3, m) if with_thresholds else None
    return w.astype(np.int64), t, rng


@pytest.mark.parametrize(("m", "k", "simd", "opb", "thr", "bound", "seed"), UNITS)
def test_unit_matches_golden_with_exact_cycles(stream_sim, m, k, simd, opb, thr, bound, seed):
    w, t, rng = _layer(m, k, thr, seed)
    tree = reuse_tree(w, bound)
    dut = MstMVAU(weights=w, tree=tree, thresholds=t, simd=simd, out_per_beat=opb)
    assert dut.steps == compute_steps(tree, simd)
    n = 6
    x = rng.integers(0, 2, (n, k))
    run = stream_sim(dut, _pack(x, simd, 1), n * m // opb)
    want = xnor_popcount(x, w)
    if t is not None:
        want = (want >= t).astype(np.int64)
    assert np.array_equal(_unpack(run.words, opb, dut.out_bits, m), want)
    timing = chain_timing([k // simd], [dut.steps], m // opb, frames=n)
    beats = m // opb
    expected = [f + j for f in timing.first_out for j in range(beats)]
    assert run.cycles == expected
    assert [run.cycles[(f + 1) * beats - 1] for f in range(n)] == list(timing.last_out)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unit_under_back_pressure(stream_sim, seed):
    m, k, simd, opb = 8, 12, 3, 2
    w, t, rng = _layer(m, k, True, 10 + seed)
    dut = MstMVAU(weights=w, tree=reuse_tree(w, 2), thresholds=t, simd=simd, out_per_beat=opb)
    x = rng.integers(0, 2, (7, k))
    run = stream_sim(
        dut, _pack(x, simd, 1), 7 * m // opb, valid_prob=0.4, ready_prob=0.3, seed=seed
    )
    want = (xnor_popcount(x, w) >= t).astype(np.int64)
    assert np.array_equal(_unpack(run.words, opb, 1, m), want)


def _small_net(seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    w0 = rng.integers(0, 2, (8, 12))
    w0[5] = w0[2] ^ (rng.random(12) < 0.1)
    return Network(
        "small_net",  # "small" is a Verilog keyword (a charge strength)
        [
            Input(name="input", inputs=(), shape=(12,), qtype=parse_qtype("uint1")),
            BinaryDense(name="fc0", inputs=("input",), weight=w0),
            MultiThreshold(name="act0", inputs=("fc0",), thresholds=rng.integers(4, 9, (8, 1))),
            BinaryDense(name="fc1", inputs=("act0",), weight=rng.integers(0, 2, (6, 8))),
        ],
    )


def test_network_matches_golden_with_exact_cycles(stream_sim):
    net = _small_net()
    simd = {"fc0": 4, "fc1": 2}
    dut = MstNetwork(net=net, max_depth=2, simd=simd, out_per_beat=3)
    x = random_inputs(net, 5, seed=1)
    run = stream_sim(dut, _pack(x, 4, 1), 5 * 2)
    bits = dut.units[-1].out_bits
    assert np.array_equal(_unpack(run.words, 3, bits, 6), golden(net, x))
    timing = mst_timing(net, max_depth=2, simd=simd, out_per_beat=3, frames=5)
    assert run.cycles == [f + j for f in timing.first_out for j in range(2)]


def test_errors():
    w = np.zeros((4, 6), dtype=np.int64)
    tree = reuse_tree(w)
    with pytest.raises(ValueError, match=r"^simd must be a positive divisor of K=6, not 4$"):
        MstMVAU(weights=w, tree=tree, simd=4)
    with pytest.raises(
        ValueError, match=r"^out_per_beat must be a positive divisor of M=4, not 3$"
    ):
        MstMVAU(weights=w, tree=tree, simd=2, out_per_beat=3)
    with pytest.raises(ValueError, match=r"^tree must cover 3 channels of fan-in 6, not 4 of"):
        MstMVAU(weights=w[:3], tree=tree, simd=2)
    with pytest.raises(TypeError, match=r"^tree must be a ReuseTree, not None$"):
        MstMVAU(weights=w, tree=None, simd=2)
    with pytest.raises(ValueError, match=r"^thresholds must be None or 4 integers"):
        MstMVAU(weights=w, tree=tree, simd=2, thresholds=[1, 2])
    with pytest.raises(ConfigError, match=r"^layer 'fc0': simd must divide the fan-in 12, not 5$"):
        MstNetwork(net=_small_net(), simd=5)


def test_generate_is_deterministic_and_readable(tmp_path):
    net = _small_net(3)
    docs = [generate(net, tmp_path / d, max_depth=1, simd=4) for d in ("a", "b")]
    assert docs[0] == docs[1]
    for name in ("small_net_mst.v", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    man = read_manifest(tmp_path / "a")
    assert man.top == "small_net_mst" and man.stages == ()
    assert (man.input.per_beat, man.input.beats) == (4, 3)
    assert (man.output.type, man.output.per_beat, man.output.beats) == ("uint4", 1, 6)
    assert docs[0]["ideal_ii"] == docs[0]["mst"]["ii"] == mst_timing(net, max_depth=1, simd=4).ii


@pytest.mark.simulator
def test_verilog_lints_clean(tmp_path):
    generate(_small_net(), tmp_path, simd=2)
    assert lint(tmp_path / "small_net_mst.v", "small_net_mst") == []


@pytest.fixture(scope="module")
def tfc_design(tmp_path_factory):
    """tfc_w1a1 as an MST network at the default lanes (16 on every layer), generated once."""
    net = codesign.load("tfc_w1a1")
    trees = network_reuse(net)
    folder = tmp_path_factory.mktemp("mst_tfc")
    doc = generate(net, folder, trees=trees)
    return net, trees, folder, doc


@pytest.mark.simulator
def test_tfc_on_verilator_matches_golden_and_cycle_model(tfc_design):
    from codesign.hdl.verify import run_cocotb

    net, trees, folder, doc = tfc_design
    frames = 200
    x = random_inputs(net, frames, seed=7)
    r = run_cocotb(folder, x, golden(net, x), taps={}, sim="verilator", seed=3, perf_frames=32)
    assert r["passed"] and r["mismatches"] == 0, r["output"]
    timing = mst_timing(net, trees=trees, frames=32)
    assert doc["ideal_ii"] == doc["mst"]["ii"] == timing.ii
    assert r["latency"] == timing.latency
    assert r["ii"] == timing.ii
