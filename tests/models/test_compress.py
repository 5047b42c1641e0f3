"""Per-layer tensor decomposition (codesign.models.compress): the float factorisations, the
quantised chains against an independent integer computation, the accuracy proxy on
cnv_small, the plan's errors, and the decomposed networks through every view (description
round trip, info, planner, simulator, RTL)."""

from __future__ import annotations

import numpy as np
import pytest
from codesign.models.activations import Requant
from codesign.models.arith import requantize
from codesign.models.compress import (
    INTERMEDIATE,
    CompressionAccuracy,
    compression_error,
    cp_als,
    cp_tensor,
    cpd,
    decompose,
    factor_type,
    full_rank,
    layer_errors,
    svd,
    svd_factors,
)
from codesign.models.errors import DescriptionError
from codesign.models.golden import golden, random_inputs, trace
from codesign.models.ir import Network
from codesign.models.layers import Clip, Conv2d, Dense, Flatten, Input
from codesign.models.loader import load, save_description
from codesign.models.qtype import Overflow, QType, Rounding

import codesign

# -- helpers --------------------------------------------------------------------------------


def small_dense(seed: int = 0, n_in: int = 12, n_hidden: int = 8) -> Network:
    """int8 (n_in,) -> dense (bias) -> relu -> requant uint8 -> dense 3."""
    rng = np.random.default_rng(seed)
    layers = [
        Input(name="input", inputs=(), shape=(n_in,), qtype=QType.int(8)),
        Dense(
            name="fc1",
            inputs=("input",),
            weight=rng.integers(-8, 8, (n_hidden, n_in)),
            bias=rng.integers(-500, 500, n_hidden),
        ),
        Clip(name="relu1", inputs=("fc1",), min=0),
        Requant(name="act1", inputs=("relu1",), multiplier=1, shift=5, qtype=QType.int(8, False)),
        Dense(name="fc2", inputs=("act1",), weight=rng.integers(-8, 8, (3, n_hidden))),
    ]
    return Network("small_dense", layers)


def conv_net(weight, *, bias=None, stride=1, padding=1, shape=(3, 9, 9), tail=True) -> Network:
    """uint8 image -> conv2d (the given weights) [-> relu -> requant -> flatten -> dense 4]."""
    layers = [
        Input(name="input", inputs=(), shape=shape, qtype=QType.int(8, False)),
        Conv2d(
            name="conv", inputs=("input",), weight=weight, bias=bias, stride=stride,
            padding=padding,
        ),
    ]  # fmt: skip
    if tail:
        rng = np.random.default_rng(1)
        layers += [
            Clip(name="relu", inputs=("conv",), min=0),
            Requant(name="act", inputs=("relu",), multiplier=1, shift=4, qtype=QType.int(8, False)),
            Flatten(name="flatten", inputs=("act",)),
        ]
        probe = Network("probe", layers)
        n = probe.tensors["flatten"].size
        layers.append(Dense(name="fc", inputs=("flatten",), weight=rng.integers(-3, 4, (4, n))))
    return Network("conv_net", layers)


def rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


@pytest.fixture(scope="module")
def cnv_small():
    return load("cnv_small")


# -- float factorisations ---------------------------------------------------------------------


def test_svd_factors_are_exact_at_full_rank_and_balanced():
    rng = np.random.default_rng(3)
    w = rng.integers(-8, 8, (7, 12)).astype(np.float64)
    u, v = svd_factors(w, 7)
    assert u.shape == (7, 7) and v.shape == (7, 12)
    assert np.allclose(u @ v, w, rtol=0, atol=1e-11)
    # balanced: the k-th column of u and the k-th row of v both have norm sqrt(sigma_k)
    s = np.linalg.svd(w, compute_uv=False)
    assert np.allclose(np.linalg.norm(u, axis=0) ** 2, s)
    assert np.allclose(np.linalg.norm(v, axis=1) ** 2, s)
    # truncated: the Eckart-Young error
    u3, v3 = svd_factors(w, 3)
    assert np.isclose(np.linalg.norm(w - u3 @ v3), np.sqrt(np.sum(s[3:] ** 2)))


def test_cp_als_recovers_a_tensor_of_known_rank():
    rng = np.random.default_rng(11)
    true = [rng.standard_normal((d, 3)) for d in (6, 5, 3, 3)]
    t = cp_tensor(true)
    for seed in (0, 1):
        f = cp_als(t, 3, seed=seed, iters=2000)
        assert [x.shape for x in f] == [(6, 3), (5, 3), (3, 3), (3, 3)]
        assert rel(t, cp_tensor(f)) < 1e-6
        assert np.allclose(np.linalg.norm(f[1], axis=0), 1)  # weights in the first mode
    # seeded: the same arguments give the same factors
    a, b = cp_als(t, 4, seed=5, iters=50), cp_als(t, 4, seed=5, iters=50)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_cp_als_error_falls_with_rank():
    w = np.random.default_rng(2).integers(-8, 8, (8, 6, 3, 3)).astype(np.float64)
    errors = [rel(w, cp_tensor(cp_als(w, r, ridge=1e-2))) for r in (1, 4, 16, 40)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.05, errors


# -- the quantised chains -----------------------------------------------------------------------


def test_svd_chain_equals_an_independent_integer_computation():
    """The decomposed network's golden output, recomputed here from its integer layers with
    numpy products and models.arith.requantize, step by step."""
    net = small_dense()
    dec = svd(net, "fc1", 3)
    assert [la.name for la in dec.layers] == [
        "input", "fc1_v", "fc1_v_q", "fc1_u", "fc1", "relu1", "act1", "fc2",
    ]  # fmt: skip
    v, vq, u, final = (dec[n] for n in ("fc1_v", "fc1_v_q", "fc1_u", "fc1"))
    assert v.bias is None and u.bias is not None
    x = random_inputs(net, 300, seed=4)
    x = np.concatenate([x, np.full((1, 12), -128), np.full((1, 12), 127)])

    def rq(a, layer):
        return requantize(a, layer.multiplier, layer.shift, layer.qtype, Rounding.HALF_EVEN,
                          Overflow.SAT)  # fmt: skip

    h = rq(x @ v.weight.T, vq)
    y = rq(h @ u.weight.T + u.bias, final)
    y = rq(np.maximum(y, 0), dec["act1"])
    y = y @ dec["fc2"].weight.T
    assert np.array_equal(golden(dec, x), y)
    assert vq.qtype == INTERMEDIATE and final.qtype == net.tensors["fc1"].qtype
    # the requantization between the factors never saturates: its exact range fits
    acc = dec.tensors["fc1_v"]
    top = INTERMEDIATE.max
    assert rq(np.array([acc.lo, acc.hi]), vq).tolist() == [dec.tensors["fc1_v_q"].lo,
                                                           dec.tensors["fc1_v_q"].hi]  # fmt: skip
    assert -top <= dec.tensors["fc1_v_q"].lo and dec.tensors["fc1_v_q"].hi <= top
    assert max(abs(acc.lo), abs(acc.hi)) * int(vq.multiplier) / 2 ** int(vq.shift) <= top


def test_factors_are_in_the_weight_type_and_names_follow_the_rule(cnv_small):
    dec = decompose(cnv_small, {"conv2": ("cpd", 4), "fc": ("svd", 3)})
    wt = factor_type(cnv_small["conv2"])
    assert wt == QType.int(4) == factor_type(cnv_small["fc"])
    new = [la for la in dec.layers if la.name not in {x.name for x in cnv_small.layers}]
    assert [la.name for la in new] == [
        "conv2_pw", "conv2_pw_q", "conv2_kh", "conv2_kh_q", "conv2_kw", "conv2_kw_q", "conv2_mix",
        "fc_v", "fc_v_q", "fc_u",
    ]  # fmt: skip
    for la in new:
        if isinstance(la, Dense | Conv2d):
            assert wt.min <= la.weight.min() and la.weight.max() <= wt.max, la.name
            assert np.abs(la.weight).max() == wt.max, la.name  # the range is used
        else:
            assert la.qtype == INTERMEDIATE
    kh, kw = dec["conv2_kh"], dec["conv2_kw"]
    assert kh.weight.shape == (4, 1, 3, 1) and kh.groups == 4 and kh.padding == (1, 0)
    assert kw.weight.shape == (4, 1, 1, 3) and kw.groups == 4 and kw.padding == (0, 1)
    assert dec["conv2_pw"].weight.shape == (4, 16, 1, 1)
    assert dec["conv2_mix"].weight.shape == (16, 4, 1, 1)
    for name in ("conv2", "fc"):  # the final rescale keeps the name, type and shape
        assert isinstance(dec[name], Requant)
        assert dec.tensors[name].qtype == cnv_small.tensors[name].qtype
        assert dec.tensors[name].shape == cnv_small.tensors[name].shape
    # the original network is untouched
    assert isinstance(cnv_small["conv2"], Conv2d)


def test_svd_of_a_1x1_convolution_keeps_its_geometry():
    """A strided, padded 1x1 convolution of exact rank 2: the chain is a 1x1 with the
    stride and padding, then a plain 1x1 with the bias; the padded border holds the bias."""
    rng = np.random.default_rng(5)
    w = (rng.integers(-2, 3, (6, 2)) @ rng.integers(-2, 3, (2, 5))).reshape(6, 5, 1, 1)
    bias = rng.integers(-300, 300, 6)
    net = conv_net(w, bias=bias, stride=2, padding=1, shape=(5, 8, 8), tail=False)
    dec = svd(net, "conv", 2)
    v, u = dec["conv_v"], dec["conv_u"]
    assert (v.stride, v.padding, v.weight.shape) == ((2, 2), (1, 1), (2, 5, 1, 1))
    assert (u.stride, u.padding, u.weight.shape) == ((1, 1), (0, 0), (6, 2, 1, 1))
    x = random_inputs(net, 16, seed=2)
    ref, got = golden(net, x), golden(dec, x)
    assert got.shape == ref.shape == (16, 6, 5, 5)
    assert rel(ref, got) < 0.08  # 4-bit factors; a wrong geometry is off by ~100%
    assert np.all(np.abs(got[:, :, 0, :] - bias[None, :, None]) <= 2)  # the padded top row


def test_cpd_of_a_strided_convolution_of_exact_cp_rank():
    """A 3x3, stride 2, padding 1 convolution whose weights have CP rank 2: the chain
    (depthwise 3x1 with stride (2, 1), 1x3 with stride (1, 2)) computes it within the
    rounding of its 4-bit factors."""
    rng = np.random.default_rng(8)
    fs = [rng.integers(1, 4, (d, 2)) * rng.choice([-1, 1], (d, 2)) for d in (6, 3, 3, 3)]
    w = cp_tensor(fs)
    net = conv_net(w, bias=rng.integers(-50, 50, 6), stride=2, padding=1)
    dec = cpd(net, "conv", 2)
    assert dec["conv_kh"].stride == (2, 1) and dec["conv_kw"].stride == (1, 2)
    x = random_inputs(net, 16, seed=3)
    t0, t1 = trace(net, x), trace(dec, x)
    assert t1["conv"].shape == t0["conv"].shape == (16, 6, 5, 5)
    assert rel(t0["conv"], t1["conv"]) < 0.05
    assert compression_error(net, dec).rel_error < 0.05


def test_error_falls_with_rank_on_cnv_small(cnv_small):
    """The accuracy proxy on the zoo's VGG-like network: more rank, less error. At the
    decomposed layer's output for CPD of a convolution; at the network's output from rank 2
    to near the full rank (27 for conv1), and for SVD of the classifier (the output layer)."""
    nets = {r: cpd(cnv_small, "conv1", r) for r in (2, 4, 8, 16, 26)}
    errs = [layer_errors(cnv_small, nets[r], frames=32)["conv1"] for r in (2, 4, 8, 16)]
    assert errs == sorted(errs, reverse=True) and len(set(errs)) == 4, errs
    assert errs[-1] < 0.25, errs
    far, near = (compression_error(cnv_small, nets[r], frames=32) for r in (2, 26))
    assert near.rel_error < far.rel_error and near.top1 > far.top1, (far, near)
    fc = [compression_error(cnv_small, svd(cnv_small, "fc", r), frames=32) for r in (2, 4, 8)]
    assert [e.rel_error for e in fc] == sorted((e.rel_error for e in fc), reverse=True), fc
    assert len({e.rel_error for e in fc}) == 3


def test_compression_error_of_a_network_against_itself():
    net = small_dense()
    r = compression_error(net, net, frames=8, seed=1)
    assert r == CompressionAccuracy(rel_error=0.0, top1=1.0, frames=8)
    other = conv_net(np.ones((2, 3, 3, 3), dtype=np.int64))
    with pytest.raises(ValueError, match=r"^compressed input must be int8 of shape \(12,\)"):
        compression_error(net, other)


# -- plans ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"fc9": ("svd", 2)}, r"^field 'plan': names no layer 'fc9'; expected one of \["),
        ({"fc1": ("tucker", 2)}, r"^layer 'fc1': field 'method': must be one of 'svd', 'cpd', "),
        ({"fc1": ("svd", 8)}, r"^layer 'fc1': field 'rank': must be an int in \[1, 7\], not 8$"),
        ({"fc1": ("svd", 0)}, r"^layer 'fc1': field 'rank': must be an int in \[1, 7\], not 0$"),
        ({"fc1": ("svd", True)}, r"^layer 'fc1': field 'rank': must be an int in \[1, 7\], "),
        ({"fc1": ("cpd", 2)}, r"^layer 'fc1': field 'method': cpd needs a conv2d with a kernel "),
        ({"act1": ("svd", 2)}, r"^layer 'act1': field 'method': svd needs a dense layer or a "),
        ({"fc1": "svd"}, r"^layer 'fc1': field 'plan': must be a \(method, rank\) pair"),
    ],
)
def test_bad_plans_are_refused(plan, message):
    with pytest.raises(DescriptionError, match=message):
        decompose(small_dense(), plan)


def test_bad_convolution_plans_are_refused(cnv_small):
    with pytest.raises(
        DescriptionError, match=r"^layer 'conv2': field 'method': svd needs a dense layer or a "
        r"1x1 conv2d, not a conv2d 3x3 layer$"
    ):  # fmt: skip
        svd(cnv_small, "conv2", 4)
    full = full_rank(cnv_small["conv1"], "cpd")
    assert full == 27  # 3 * 16 * 3 * 3 / 16
    with pytest.raises(
        DescriptionError, match=r"^layer 'conv1': field 'rank': .*\[1, 26\], not 27"
    ):
        cpd(cnv_small, "conv1", 27)
    dw = Network(
        "dw",
        [
            Input(name="input", inputs=(), shape=(3, 9, 9), qtype=QType.int(8)),
            Conv2d(name="conv", inputs=("input",), weight=np.ones((3, 1, 3, 3)), groups=3),
        ],
    )
    with pytest.raises(DescriptionError, match=r"^layer 'conv': field 'groups': must be 1 to "):
        cpd(dw, "conv", 2)
    with pytest.raises(TypeError, match=r"^plan must be a mapping"):
        decompose(cnv_small, [("conv1", ("cpd", 2))])


def test_a_taken_derived_name_is_refused():
    net = small_dense()
    layers = [*net.layers]
    layers[3] = Requant(
        name="fc1_u", inputs=("relu1",), multiplier=1, shift=5, qtype=QType.int(8, False)
    )
    layers[4] = Dense(name="fc2", inputs=("fc1_u",), weight=net["fc2"].weight)
    clash = Network("clash", layers)
    with pytest.raises(
        DescriptionError, match=r"^layer 'fc1': field 'name': its svd layer 'fc1_u' would take"
    ):
        svd(clash, "fc1", 2)


# -- the decomposed network through every view --------------------------------------------------


def test_decomposed_network_round_trips_and_has_info(tmp_path, cnv_small, capsys):
    from codesign.cli import main

    dec = decompose(cnv_small, {"conv3": ("cpd", 4), "fc": ("svd", 4)})
    path, _ = save_description(dec, tmp_path / "dec.yaml")
    assert main(["info", str(path)]) == 0
    assert "conv3_kh" in capsys.readouterr().out
    again = load(path)
    x = random_inputs(dec, 8, seed=9)
    assert np.array_equal(golden(again, x), golden(dec, x))
    assert codesign.network_hash(again) == codesign.network_hash(dec)
    info = codesign.summary(dec)["totals"]
    assert info["macs"] < codesign.summary(cnv_small)["totals"]["macs"]
    by_name = {la["name"]: la for la in codesign.summary(dec)["layers"]}
    assert by_name["conv3_kh"]["macs"] == 4 * 16 * 16 * 3


def test_decomposed_network_plans_and_simulates():
    net = load("cnv_tiny")
    dec = decompose(net, {"conv2": ("cpd", 4), "fc": ("svd", 4)})
    d = codesign.design(dec)
    kinds = {s.name: (s.kind.value, s.depthwise) for s in d.stages}
    assert kinds["conv2_pw"] == ("conv", False) and kinds["conv2_mix"] == ("conv", False)
    assert kinds["conv2_kh"] == kinds["conv2_kw"] == ("conv", True)
    assert kinds["fc_v"] == kinds["fc_u"] == ("mvau", False)
    p = codesign.simulate(d, frames=2)
    assert p.ii == d.ideal_ii


@pytest.mark.simulator
def test_decomposed_network_rtl_matches_golden(tmp_path):
    """A small CNN with its convolution CP-decomposed and its classifier SVD-decomposed, on
    Verilator: every frame bit-exact (int16 streams between factors, depthwise 3x1 and 1x3
    windows, the final rescales), and latency and II the simulator's."""
    rng = np.random.default_rng(6)
    net = conv_net(rng.integers(-8, 8, (4, 2, 3, 3)), bias=rng.integers(-99, 99, 4),
                   shape=(2, 6, 6))  # fmt: skip
    dec = decompose(net, {"conv": ("cpd", 3), "fc": ("svd", 2)})
    r = codesign.verify(codesign.design(dec), tmp_path, vectors=24, sim="verilator", seed=2)
    assert r["frames"] == 24 and r["mismatches"] == 0
    assert r["passed"], (r["first_bad_stage"], r["first_bad_layer"])
    assert (r["latency"], r["ii"]) == (r["predicted_latency"], r["predicted_ii"])
