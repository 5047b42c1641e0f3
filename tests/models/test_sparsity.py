"""N:M sparsity (models/compress/sparsity.py): the pruning transform against a reference written
here (loops over rows and groups), the golden model of a pruned network against numpy on the
pruned weights (dense, convolution in window order, dense after a flatten in stream order),
the compressed pattern and ROM layout, the hardware facts, and the configuration field: its
validation messages and its YAML round trip."""

from __future__ import annotations

import re

import numpy as np
import pytest
import yaml
from codesign.models.compress.sparsity import (
    index_bits,
    is_nm,
    nm_pattern,
    prune_matrix,
    prune_nm,
    stage_multipliers,
    weight_memory,
    weight_rom,
)
from codesign.models.errors import ConfigError, DescriptionError
from codesign.models.golden import golden, trace
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
from codesign.models.loader import load
from codesign.models.plan import stage_matrix
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view


def reference_prune(w: np.ndarray, n: int, m: int) -> np.ndarray:
    """N:M pruning by the rule, one group at a time: keep the ``n`` largest magnitudes, the
    lowest position first among equal ones."""
    out = np.zeros_like(w)
    for r in range(w.shape[0]):
        for g in range(w.shape[1] // m):
            pos = sorted(range(m), key=lambda j: (-abs(int(w[r, g * m + j])), j))[:n]
            for j in pos:
                out[r, g * m + j] = w[r, g * m + j]
    return out


@st.composite
def matrices(draw):
    m = draw(st.integers(2, 9))
    n = draw(st.integers(1, m - 1))
    rows, groups = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    values = st.integers(-4, 4)  # few values: many ties
    flat = draw(st.lists(values, min_size=rows * groups * m, max_size=rows * groups * m))
    return np.array(flat, dtype=np.int64).reshape(rows, groups * m), n, m


@settings(max_examples=300, deadline=None)
@given(matrices())
def test_pruning_keeps_the_largest_n_of_every_m(case):
    w, n, m = case
    p = prune_matrix(w, n, m)
    assert p.tolist() == reference_prune(w, n, m).tolist()
    groups, kept = w.reshape(-1, m), p.reshape(-1, m)
    assert (np.count_nonzero(kept, axis=1) <= n).all() and is_nm(p, n, m)
    assert ((kept == 0) | (kept == groups)).all()  # kept weights unchanged
    for g, k in zip(groups, kept, strict=True):  # no dropped weight outweighs a kept one
        dropped = np.abs(g[k == 0])
        if np.count_nonzero(k) and dropped.size:
            assert np.abs(k[k != 0]).min() >= dropped.max()
    assert prune_matrix(p, n, m).tolist() == p.tolist()  # idempotent
    # the compressed pattern: indices ascending in [0, M), expanding back to the matrix
    vals, idx = nm_pattern(p, n, m)
    assert vals.shape == idx.shape == (w.shape[0], w.shape[1] * n // m)
    assert ((idx >= 0) & (idx < m)).all()
    assert (np.diff(idx.reshape(-1, n), axis=1) > 0).all()
    back = np.zeros_like(p)
    for r in range(p.shape[0]):
        for q in range(vals.shape[1]):
            back[r, (q // n) * m + idx[r, q]] = vals[r, q]
    assert back.tolist() == p.tolist()


def test_ties_go_to_the_lowest_position():
    w = np.array([[3, -3, 3, 1, 0, 0, -2, 2]])
    assert prune_matrix(w, 2, 4).tolist() == [[3, -3, 0, 0, 0, 0, -2, 2]]
    assert prune_matrix(w, 1, 4).tolist() == [[3, 0, 0, 0, 0, 0, -2, 0]]
    vals, idx = nm_pattern(prune_matrix(w, 1, 4), 2, 4)  # fewer nonzeros than N: zeros kept
    assert vals.tolist() == [[3, 0, 0, -2]] and idx.tolist() == [[0, 1, 0, 2]]


def test_is_nm_and_pattern_errors():
    w = np.array([[1, 1, 1, 0]])
    assert not is_nm(w, 2, 4) and is_nm(w, 3, 4) and not is_nm(w, 1, 3)  # 3 does not divide 4
    with pytest.raises(
        ValueError,
        match=r"^matrix must be 2:4 sparse, not with 3 nonzeros in a group of 4 at row 0, "
        r"columns 0-3, not at most 2$",
    ):
        nm_pattern(w, 2, 4)
    with pytest.raises(ValueError, match=r"^n:m must be integers with 1 <= n < m, not 4:4$"):
        is_nm(w, 4, 4)


def test_weight_rom_layout():
    """Word nf·SF + sf, lane p·K + q: the q-th kept weight of row nf·PE + p in the word's
    columns, value in the low bits (two's complement), index above."""
    rng = np.random.default_rng(5)
    pe, simd, n, m, vb = 2, 8, 2, 4, 4
    w = prune_matrix(rng.integers(-8, 8, (4, 16)), n, m)
    bits = weight_rom(w, pe, simd, (n, m), vb)
    k, ib = simd * n // m, index_bits(m)
    assert bits.shape == (2 * 2, pe * k * (vb + ib)) and ib == 2
    for word in range(4):
        nf, sf = divmod(word, 2)
        for p in range(pe):
            row = w[nf * pe + p, sf * simd : (sf + 1) * simd]
            got = np.zeros(simd, dtype=np.int64)
            for q in range(k):
                lane = bits[word, (p * k + q) * (vb + ib) : (p * k + q + 1) * (vb + ib)]
                value = int(sum(int(b) << i for i, b in enumerate(lane[:vb])))
                value -= (value >> (vb - 1)) << vb  # two's complement
                index = int(sum(int(b) << i for i, b in enumerate(lane[vb:])))
                got[(q // n) * m + index] += value
            assert got.tolist() == row.tolist()


# -- the transform on networks ---------------------------------------------------------


@pytest.fixture(scope="module")
def jet():
    return load("jet_tagger")


@pytest.fixture(scope="module")
def cnv():
    return load("cnv_tiny")


def test_pruned_dense_network_is_the_dense_computation_with_pruned_weights(jet):
    pruned = prune_nm(jet, 2, 8)
    x = np.random.default_rng(0).integers(jet.input_tensor.lo, jet.input_tensor.hi + 1, (20, 16))
    t = trace(pruned, x)
    for name in ("fc1", "fc2", "fc3", "fc4"):
        w = reference_prune(np.asarray(jet[name].weight), 2, 8)
        assert np.asarray(pruned[name].weight).tolist() == w.tolist()
        assert np.asarray(pruned[name].bias).tolist() == np.asarray(jet[name].bias).tolist()
        src = pruned[name].inputs[0]
        inputs = x if src == pruned.input else np.asarray(t[src], dtype=np.int64)
        want = inputs @ w.T + np.asarray(jet[name].bias)
        assert np.asarray(t[name], dtype=np.int64).tolist() == want.tolist()
        # the ranges are inferred again: pruning can only narrow them
        old, new = jet.tensors[name], pruned.tensors[name]
        assert old.lo <= new.lo <= new.hi <= old.hi
    assert np.asarray(golden(pruned, x)).tolist() == np.asarray(t["fc4"]).tolist()
    assert pruned.name == jet.name and len(pruned.layers) == len(jet.layers)


def test_pruned_convolutions_group_in_window_and_stream_order(cnv):
    """conv2's groups of 8 are its 8 input channels of one tap, (kh, kw, c) order; the fc
    after the flatten groups in stream order (pixels raster, channels together); conv1 (9
    columns) stays dense."""
    pruned = prune_nm(cnv, 2, 8)
    assert np.array_equal(pruned["conv1"].weight, cnv["conv1"].weight)
    w2 = np.asarray(cnv["conv2"].weight)  # (16, 8, 3, 3)
    oc, c, kh, kw = w2.shape
    taps = reference_prune(w2.transpose(0, 2, 3, 1).reshape(oc, -1), 2, 8)
    w2p = taps.reshape(oc, kh, kw, c).transpose(0, 3, 1, 2)
    assert np.asarray(pruned["conv2"].weight).tolist() == w2p.tolist()
    wf = np.asarray(cnv["fc"].weight)  # (10, 16·5·5), columns in C·H·W order
    stream = reference_prune(wf.reshape(10, 16, 5, 5).transpose(0, 2, 3, 1).reshape(10, -1), 2, 8)
    wfp = stream.reshape(10, 5, 5, 16).transpose(0, 3, 1, 2).reshape(10, -1)
    assert np.asarray(pruned["fc"].weight).tolist() == wfp.tolist()
    x = np.random.default_rng(1).integers(0, 256, (3, 1, 28, 28))
    t = trace(pruned, x)
    xin = np.asarray(t["pool1"], dtype=np.int64)  # (3, 8, 13, 13), no padding
    win = sliding_window_view(xin, (kh, kw), axis=(2, 3))  # (3, 8, 11, 11, 3, 3)
    conv = np.einsum("ncijkl,ockl->noij", win, w2p) + np.asarray(cnv["conv2"].bias)[:, None, None]
    assert np.asarray(t["conv2"], dtype=np.int64).tolist() == conv.tolist()
    flat = np.asarray(t["flatten"], dtype=np.int64)
    fc = flat @ wfp.T + (0 if cnv["fc"].bias is None else np.asarray(cnv["fc"].bias))
    assert np.asarray(t["fc"], dtype=np.int64).tolist() == fc.tolist()
    # and the MVAU's matrices, as the RTL reads them, are 2:8 sparse
    d = Design(pruned)
    for name in ("conv2", "fc"):
        assert is_nm(stage_matrix(d.stage(name)).weights, 2, 8)


def test_prune_nm_layers_and_errors(jet, cnv):
    only = prune_nm(jet, 1, 4, layers=["fc2"])
    assert np.array_equal(only["fc1"].weight, jet["fc1"].weight)
    assert is_nm(np.asarray(only["fc2"].weight), 1, 4)
    with pytest.raises(ValueError, match=r"^layers must name layers of jet_tagger, not 'fc9'$"):
        prune_nm(jet, 2, 8, layers=["fc9"])
    with pytest.raises(
        ValueError, match=r"^layer 'fc1': m must divide its 16 weight columns, not 3$"
    ):
        prune_nm(jet, 1, 3, layers=["fc1"])
    with pytest.raises(
        ValueError,
        match=r"^layer 'pool1': only a dense or \(non-depthwise\) conv2d layer can be pruned to "
        r"2:8, not a maxpool2d layer$",
    ):
        prune_nm(cnv, 2, 8, layers=["pool1"])
    with pytest.raises(
        ValueError, match=r"^layer 'fc0': only a dense .* not a binary_dense layer$"
    ):
        prune_nm(load("tfc_w1a1"), 2, 8, layers=["fc0"])
    with pytest.raises(ValueError, match=r"^n:m must be integers with 1 <= n < m, not 8:2$"):
        prune_nm(jet, 8, 2)


# -- hardware facts and the configuration ---------------------------------------------------


def test_sparse_design_facts(jet):
    """Cycles and II are the dense design's at the same folding; multipliers PE·SIMD·N/M; the
    weight memory as deep, its words N/M as many values plus log2(M)-bit indices; the
    pipeline one ``select`` stage deeper and two tree levels (of 3) shorter at SIMD 8."""
    pruned = prune_nm(jet, 2, 8)
    fold = {"fc1": (4, 8), "fc2": (8, 8), "fc3": (4, 8), "fc4": (5, 8)}
    dense = Design(
        pruned, HardwareConfig({k: StageConfig(pe=p, simd=q) for k, (p, q) in fold.items()})
    )
    sparse = Design(
        pruned,
        HardwareConfig(
            {k: StageConfig(pe=p, simd=q, sparsity=(2, 8)) for k, (p, q) in fold.items()}
        ),
    )
    assert sparse.ideal_ii == dense.ideal_ii
    for s in sparse.stages:
        cs, cd = sparse.config[s.name], dense.config[s.name]
        assert sparse.cycles(s) == dense.cycles(s)
        assert stage_multipliers(s, cs) == cs.pe * cs.simd // 4 == stage_multipliers(s, cd) // 4
        ms, md = weight_memory(s, cs), weight_memory(s, cd)
        assert ms.depth == md.depth == (s.mw // cs.simd) * (s.mh // cs.pe)
        assert ms.width == md.width // 4 + (cs.pe * cs.simd // 4) * 3
        hs, hd = sparse.pipeline(s).head, dense.pipeline(s).head
        assert hs.count("select") == 1 and "select" not in hd
        assert hd.count("tree") - hs.count("tree") == 2
        assert len(hs) == len(hd) - 1


def test_automatic_simd_is_a_multiple_of_m(jet):
    pruned = prune_nm(jet, 2, 8)
    d = Design(pruned, HardwareConfig({n: StageConfig(sparsity="2:8") for n in ("fc3", "fc4")}))
    assert d.config["fc4"].simd % 8 == 0 and d.config["fc3"].simd % 8 == 0
    assert d.config["fc4"].sparsity == (2, 8) and d.config["fc1"].sparsity is None
    assert d.origin["fc4"].simd.value == "auto"


def _first_group_count(net, layer: str) -> int:
    return int(np.count_nonzero(np.asarray(net[layer].weight)[0, :8]))


def test_config_messages(jet, cnv):
    count = _first_group_count(jet, "fc2")
    assert count > 2
    with pytest.raises(
        ConfigError,
        match=rf"^stage 'fc2': sparsity must match the weights: layer 'fc2' has {count} nonzeros "
        r"in a group of 8 at row 0, columns 0-7, not at most 2$",
    ):
        Design(jet, HardwareConfig({"fc2": StageConfig(sparsity=(2, 8))}))
    pruned = prune_nm(jet, 2, 8)
    with pytest.raises(
        ConfigError,
        match=r"^stage 'fc2': simd must be a multiple of M=8 for sparsity 2:8 \(a SIMD word holds "
        r"whole groups; valid: \[8, 16, 32, 64\]\), not 4$",
    ):
        Design(pruned, HardwareConfig({"fc2": StageConfig(simd=4, sparsity=(2, 8))}))
    with pytest.raises(
        ConfigError,
        match=r"^stage 'conv1': sparsity 1:2 needs a SIMD that is a multiple of 2, and none of "
        r"\[1\] is$",
    ):
        Design(cnv, HardwareConfig({"conv1": StageConfig(sparsity=(1, 2))}))
    with pytest.raises(
        ConfigError,
        match=r"^stage 'pool1': sparsity needs a dense or conv2d stage's MVAU \(binary, depthwise "
        r"and deformable layers have no sparse unit\), not a maxpool2d stage$",
    ):
        Design(cnv, HardwareConfig({"pool1": StageConfig(sparsity=(1, 2))}))
    with pytest.raises(
        ConfigError, match=r"^stage 'fc0': sparsity needs .* not a binary_dense stage$"
    ):
        Design(load("tfc_w1a1"), HardwareConfig({"fc0": StageConfig(sparsity=(1, 2))}))


@pytest.mark.parametrize("bad", ["2-8", "8:2", "4:4", "0:4", (2,), (2, 8, 1), 3, "a:b"])
def test_sparsity_field_must_be_n_m(bad):
    with pytest.raises(
        ConfigError, match=rf"^sparsity must be 'N:M' with 1 <= N < M, not {re.escape(repr(bad))}$"
    ):
        StageConfig(sparsity=bad)


def test_sparsity_yaml_round_trip(jet):
    text = (
        "clock_mhz: 120\nstages:\n"
        "  fc2: {pe: 8, simd: 16, sparsity: '2:8'}\n"
        "  fc3: {sparsity: '1:4'}\n"
    )
    cfg = HardwareConfig.from_dict(yaml.safe_load(text))
    assert cfg["fc2"].sparsity == (2, 8) and cfg["fc3"].sparsity == (1, 4)
    assert cfg.to_dict()["stages"] == {
        "fc2": {"pe": 8, "simd": 16, "sparsity": "2:8"},
        "fc3": {"sparsity": "1:4"},
    }
    again = HardwareConfig.from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg
    pruned = prune_nm(prune_nm(jet, 2, 8, layers=["fc2"]), 1, 4, layers=["fc3"])
    d = Design(pruned, cfg)
    assert HardwareConfig.from_dict(yaml.safe_load(yaml.safe_dump(d.config.to_dict()))) == d.config
    with pytest.raises(
        DescriptionError,
        match=r"^hw\.yaml: layer 'fc1': sparsity must be 'N:M' with 1 <= N < M, not '4:4'$",
    ):
        HardwareConfig.from_dict({"stages": {"fc1": {"sparsity": "4:4"}}}, source="hw.yaml")
    # YAML 1.1 reads an unquoted 2:8 as the base-60 integer 128: the message says so
    doc = yaml.safe_load("stages:\n  fc2: {sparsity: 2:8}\n")
    assert doc["stages"]["fc2"]["sparsity"] == 128
    with pytest.raises(
        DescriptionError,
        match=r"^hw\.yaml: layer 'fc2': sparsity must be 'N:M' with 1 <= N < M, not 128 \(quote "
        r"it in YAML: an unquoted 2:8 is read as 128\)$",
    ):
        HardwareConfig.from_dict(doc, source="hw.yaml")


def test_multiplexer_inputs_follow_the_known_index_bits():
    """A kept weight's multiplexer can select the positions that agree with its index's bits
    that are the same in every word: row 0 keeps positions 0 then 2 (bit 1 varies: {0, 2}),
    row 1 keeps 3 then 1 (bit 0 is always 1: {1, 3}); one word is padded with a zero word
    (bit 0 of index 1 unknown: {0, 1})."""
    from codesign.models.compress.sparsity import mux_inputs, read_inputs

    w = np.array([[5, 0, 0, 0, 0, 0, 7, 0], [0, 0, 0, 2, 0, 3, 0, 0]])
    reach = mux_inputs(w, 1, 4, (1, 4))  # PE 1, SIMD 4: 4 words (2 rows x 2 folds), 1 lane
    assert reach.tolist() == [[True, True, True, True]]  # over both rows: bits 0 and 1 vary
    row0 = mux_inputs(w[:1], 1, 4, (1, 4))
    row1 = mux_inputs(w[1:], 1, 4, (1, 4))
    assert np.flatnonzero(row0[0]).tolist() == [0, 2]
    assert np.flatnonzero(row1[0]).tolist() == [1, 3]
    assert read_inputs(w[1:], 1, 4, (1, 4)) == 2
    one = mux_inputs(np.array([[0, 4, 0, 0]]), 1, 4, (1, 4))
    assert np.flatnonzero(one[0]).tolist() == [0, 1]
