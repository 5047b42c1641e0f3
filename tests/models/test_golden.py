"""The golden model against slow, naive, independent references.

Every reference below is written with plain Python loops over Python ints (and
``fractions.Fraction`` for division): no numpy products, and no call into the library's
kernels or arithmetic. The library is used only to build networks and to run them.

Cases are generated from seeded ``random.Random`` instances, so every failure names the seed
that reproduces it.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from codesign.models import dataflow
from codesign.models.binary import Encoding
from codesign.models.errors import DescriptionError, UserError
from codesign.models.golden import InputError, golden, random_inputs, trace
from codesign.models.ir import Network
from codesign.models.layers import (
    Add,
    AvgPool2d,
    BinaryConv2d,
    BinaryDense,
    Clip,
    Conv2d,
    Dense,
    Flatten,
    Input,
    MaxPool2d,
    MultiThreshold,
    Requant,
    Reshape,
    SumPool2d,
)
from codesign.models.loader import load, zoo_names
from codesign.models.qtype import Kind, Overflow, QType, Rounding

P53 = 1 << 53
INT64_MAX = (1 << 63) - 1


# --------------------------------------------------------------------------------------------
# Naive references (Python ints only)
# --------------------------------------------------------------------------------------------


def type_range(q: QType) -> tuple[int, int]:
    """Range of a type's integer representation, computed from its fields."""
    if q.kind is Kind.BIPOLAR:
        return -1, 1
    if q.signed:
        lo, hi = -(1 << (q.bits - 1)), (1 << (q.bits - 1)) - 1
        return (lo + 1 if q.narrow else lo), hi
    hi = (1 << q.bits) - 1
    return 0, (hi - 1 if q.narrow else hi)


def ref_covering(lo: int, hi: int) -> QType:
    """Narrowest plain integer type holding [lo, hi], by search."""
    if lo >= 0:
        bits = 1
        while hi > (1 << bits) - 1:
            bits += 1
        return QType.int(bits, signed=False)
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return QType.int(bits, signed=True)


def ref_round(v: Fraction, mode: Rounding) -> int:
    """Round a rational to an integer as ``mode`` says."""
    fl = math.floor(v)
    rem = v - fl
    if rem == 0:
        return fl
    ce = fl + 1
    neg = v < 0
    if mode is Rounding.FLOOR:
        return fl
    if mode is Rounding.CEIL:
        return ce
    if mode is Rounding.TOWARD_ZERO:
        return ce if neg else fl
    if mode is Rounding.AWAY_FROM_ZERO:
        return fl if neg else ce
    half = Fraction(1, 2)
    if rem < half:
        return fl
    if rem > half:
        return ce
    tie = {
        Rounding.HALF_EVEN: fl if fl % 2 == 0 else ce,
        Rounding.HALF_UP: ce,
        Rounding.HALF_DOWN: fl,
        Rounding.HALF_AWAY: fl if neg else ce,
        Rounding.HALF_TOWARD_ZERO: ce if neg else fl,
    }
    return tie[mode]


def ref_overflow(v: int, q: QType, mode: Overflow) -> int:
    lo, hi = type_range(q)
    if mode is Overflow.SAT_SYM and q.signed:
        lo = -hi
    if lo <= v <= hi:
        return v
    if mode in (Overflow.SAT, Overflow.SAT_SYM):
        return min(max(v, lo), hi)
    if mode is Overflow.SAT_ZERO:
        return 0
    assert mode is Overflow.WRAP
    m = v % (1 << q.bits)
    if q.signed and m >= 1 << (q.bits - 1):
        m -= 1 << q.bits
    return m


def ref_requant(v: int, mult: int, shift: int, q, rounding, overflow) -> int:
    prod = v * mult
    exact = Fraction(prod, 1 << shift) if shift >= 0 else Fraction(prod * (1 << -shift))
    return ref_overflow(ref_round(exact, rounding), q, overflow)


def ref_dense(x, w, b):
    """x (N, K), w (M, K), b (M,) or None, as nested lists."""
    out = []
    for row in x:
        o = []
        for j, wrow in enumerate(w):
            acc = 0 if b is None else b[j]
            for i in range(len(wrow)):
                acc += row[i] * wrow[i]
            o.append(acc)
        out.append(o)
    return out


def out_positions(size: int, kernel: int, stride: int, pad: int, dil: int) -> int:
    """How many windows fit along one axis, by counting them."""
    n = 0
    while n * stride + dil * (kernel - 1) <= size + 2 * pad - 1:
        n += 1
    return n


def window_taps(oy, ox, kh, kw, stride, pad, dil, h, w):
    """(ky, kx, iy, ix) of every tap of window (oy, ox) that falls inside the input."""
    taps = []
    for ky in range(kh):
        iy = oy * stride[0] + ky * dil[0] - pad[0]
        if not 0 <= iy < h:
            continue
        for kx in range(kw):
            ix = ox * stride[1] + kx * dil[1] - pad[1]
            if 0 <= ix < w:
                taps.append((ky, kx, iy, ix))
    return taps


def ref_conv2d(x, w, b, stride, pad, dil, groups):
    """x (N, C, H, W), w (OC, C/groups, KH, KW): zero padding, a 7-deep loop."""
    n_, c_, h, wd = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    oc_, cg, kh, kw = len(w), len(w[0]), len(w[0][0]), len(w[0][0][0])
    assert cg * groups == c_
    ocg = oc_ // groups
    oh = out_positions(h, kh, stride[0], pad[0], dil[0])
    ow = out_positions(wd, kw, stride[1], pad[1], dil[1])
    out = []
    for n in range(n_):
        planes = []
        for oc in range(oc_):
            g = oc // ocg
            plane = []
            for oy in range(oh):
                row = []
                for ox in range(ow):
                    acc = 0 if b is None else b[oc]
                    for ci in range(cg):
                        for ky in range(kh):
                            iy = oy * stride[0] + ky * dil[0] - pad[0]
                            for kx in range(kw):
                                ix = ox * stride[1] + kx * dil[1] - pad[1]
                                if 0 <= iy < h and 0 <= ix < wd:
                                    acc += x[n][g * cg + ci][iy][ix] * w[oc][ci][ky][kx]
                    row.append(acc)
                plane.append(row)
            planes.append(plane)
        out.append(planes)
    return out


def ref_conv_range_maps(w, b, lo, hi, stride, pad, dil, groups, h, wd):
    """Per (oc, oy, ox): the smallest and largest output over inputs in [lo, hi]."""
    oc_, cg, kh, kw = len(w), len(w[0]), len(w[0][0]), len(w[0][0][0])
    oh = out_positions(h, kh, stride[0], pad[0], dil[0])
    ow = out_positions(wd, kw, stride[1], pad[1], dil[1])
    mins, maxs = [], []
    for oc in range(oc_):
        pmin, pmax = [], []
        for oy in range(oh):
            rmin, rmax = [], []
            for ox in range(ow):
                a = z = 0 if b is None else b[oc]
                for ky, kx, _, _ in window_taps(oy, ox, kh, kw, stride, pad, dil, h, wd):
                    for ci in range(cg):
                        wv = w[oc][ci][ky][kx]
                        a += min(wv * lo, wv * hi)
                        z += max(wv * lo, wv * hi)
                rmin.append(a)
                rmax.append(z)
            pmin.append(rmin)
            pmax.append(rmax)
        mins.append(pmin)
        maxs.append(pmax)
    return mins, maxs


def ref_maxpool2d(x, kernel, stride, pad):
    """Max over the in-bounds part of each window (padding never wins)."""
    out = []
    for sample in x:
        planes = []
        for ch in sample:
            h, wd = len(ch), len(ch[0])
            oh = out_positions(h, kernel[0], stride[0], pad[0], 1)
            ow = out_positions(wd, kernel[1], stride[1], pad[1], 1)
            plane = []
            for oy in range(oh):
                row = []
                for ox in range(ow):
                    taps = window_taps(oy, ox, *kernel, stride, pad, (1, 1), h, wd)
                    row.append(max(ch[iy][ix] for _, _, iy, ix in taps))
                plane.append(row)
            planes.append(plane)
        out.append(planes)
    return out


def ref_avgpool2d(x, kernel, stride, rounding):
    area = kernel[0] * kernel[1]
    out = []
    for sample in x:
        planes = []
        for ch in sample:
            h, wd = len(ch), len(ch[0])
            oh = out_positions(h, kernel[0], stride[0], 0, 1)
            ow = out_positions(wd, kernel[1], stride[1], 0, 1)
            plane = []
            for oy in range(oh):
                row = []
                for ox in range(ow):
                    total = 0
                    for _, _, iy, ix in window_taps(oy, ox, *kernel, stride, (0, 0), (1, 1), h, wd):
                        total += ch[iy][ix]
                    row.append(ref_round(Fraction(total, area), rounding))
                plane.append(row)
            planes.append(plane)
        out.append(planes)
    return out


def ref_bipolar_dot(xs, ws):
    total = 0
    for a, c in zip(xs, ws, strict=True):
        assert a in (-1, 1) and c in (-1, 1)
        total += a * c
    return total


def ref_xnor_popcount(xs, ws):
    count = 0
    for a, c in zip(xs, ws, strict=True):
        assert a in (0, 1) and c in (0, 1)
        count += 1 if a == c else 0
    return count


def ref_binary(xs, ws, encoding: Encoding) -> int:
    if encoding is Encoding.BIPOLAR:
        return ref_bipolar_dot(xs, ws)
    return ref_xnor_popcount(xs, ws)


def ref_binary_dense(x, w, encoding):
    return [[ref_binary(row, wrow, encoding) for wrow in w] for row in x]


def ref_binary_conv2d(x, w, stride, dil, encoding):
    """No padding; each window's taps in (C, KH, KW) order against the flattened kernel."""
    oc_, c_, kh, kw = len(w), len(w[0]), len(w[0][0]), len(w[0][0][0])
    out = []
    for sample in x:
        h, wd = len(sample[0]), len(sample[0][0])
        oh = out_positions(h, kh, stride[0], 0, dil[0])
        ow = out_positions(wd, kw, stride[1], 0, dil[1])
        planes = []
        for oc in range(oc_):
            plane = []
            for oy in range(oh):
                row = []
                for ox in range(ow):
                    xs, ws = [], []
                    for c in range(c_):
                        for ky in range(kh):
                            for kx in range(kw):
                                iy = oy * stride[0] + ky * dil[0]
                                ix = ox * stride[1] + kx * dil[1]
                                xs.append(sample[c][iy][ix])
                                ws.append(w[oc][c][ky][kx])
                    row.append(ref_binary(xs, ws, encoding))
                plane.append(row)
            planes.append(plane)
        out.append(planes)
    return out


def ref_flatten(v) -> list[int]:
    if isinstance(v, list):
        return [e for item in v for e in ref_flatten(item)]
    return [v]


def ref_reshape(flat: list[int], shape) -> list:
    if len(shape) == 1:
        assert len(flat) == shape[0]
        return list(flat)
    step = len(flat) // shape[0]
    return [ref_reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def ref_map(fn, v):
    """Apply ``fn`` to every int of a nested list, keeping the shape."""
    return [ref_map(fn, e) for e in v] if isinstance(v, list) else fn(v)


def ref_channelwise(fn, sample):
    """``fn(channel, value)`` on a (C, ...) sample."""
    return [ref_map(lambda v, c=c: fn(c, v), ch) for c, ch in enumerate(sample)]


def ref_multithreshold(v: int, row, scale: int, bias: int) -> int:
    count = 0
    for t in row:
        if v >= t:
            count += 1
    return scale * count + bias


def ref_add(a, b):
    if isinstance(a, list):
        return [ref_add(p, q) for p, q in zip(a, b, strict=True)]
    return a + b


def ref_dense_rows_range(w, b, lo: int, hi: int) -> tuple[list[int], list[int]]:
    """Per row: the smallest and largest output over inputs in [lo, hi]."""
    mins, maxs = [], []
    for j, wrow in enumerate(w):
        a = z = 0 if b is None else b[j]
        for wv in wrow:
            a += min(wv * lo, wv * hi)
            z += max(wv * lo, wv * hi)
        mins.append(a)
        maxs.append(z)
    return mins, maxs


def ref_dense_range(w, b, lo: int, hi: int) -> tuple[int, int]:
    mins, maxs = ref_dense_rows_range(w, b, lo, hi)
    return min(mins), max(maxs)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def build(shape, qtype: QType, *layers, output=None) -> Network:
    """A network with the input ``in`` and the given layers."""
    inp = Input(name="in", inputs=(), shape=tuple(shape), qtype=qtype)
    return Network("t", [inp, *layers], output=output)


def arr(v) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def sample_inputs(qtype: QType, shape, n: int, seed: int, lo=None, hi=None) -> np.ndarray:
    """``n`` random vectors over [lo, hi] (the type's range by default), then one all-lo
    and one all-hi vector."""
    tlo, thi = type_range(qtype)
    lo = tlo if lo is None else lo
    hi = thi if hi is None else hi
    rng = np.random.default_rng(seed)
    if qtype.kind is Kind.BIPOLAR and (lo, hi) == (-1, 1):
        body = rng.choice(arr([-1, 1]), size=(n, *shape))
    else:
        body = rng.integers(lo, hi, size=(n, *shape), endpoint=True, dtype=np.int64)
    ends = np.stack([np.full(shape, lo, dtype=np.int64), np.full(shape, hi, dtype=np.int64)])
    return np.concatenate([body, ends])


def rand_weights(r: random.Random, shape, bits: int, sign: str = "mixed"):
    """Nested list of random ints of ``bits`` signed bits; ``sign`` restricts their sign."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if sign == "negative":
        lo, hi = lo, -1
    elif sign == "positive":
        lo, hi = 1, max(hi, 1)
    if len(shape) == 1:
        return [r.randint(lo, hi) for _ in range(shape[0])]
    return [rand_weights(r, shape[1:], bits, sign) for _ in range(shape[0])]


def assert_in_range(net: Network, values: dict[str, np.ndarray]) -> None:
    """Every layer's values lie in its inferred range and type."""
    for name, v in values.items():
        t = net.tensors[name]
        assert v.shape[1:] == t.shape, name
        assert v.dtype == np.int64, name
        assert t.lo <= int(v.min()) and int(v.max()) <= t.hi, (name, t, v.min(), v.max())
        qlo, qhi = type_range(t.qtype)
        assert qlo <= t.lo and t.hi <= qhi, (name, t)
        if t.qtype.kind is Kind.BIPOLAR:
            assert np.all((v == 1) | (v == -1)), name


INPUT_TYPES = [
    *(QType.int(b, s) for b in (1, 2, 3, 4, 8, 12, 16) for s in (True, False)),
    QType.int(8, narrow=True),
    QType.fixed(8, 3),
    QType.fixed(10, 6, signed=False),
    QType.bipolar(),
]


# --------------------------------------------------------------------------------------------
# 1. Dense
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(60))
def test_dense_matches_reference(seed):
    r = random.Random(seed)
    k, m = r.randint(1, 24), r.randint(1, 8)
    qtype = INPUT_TYPES[seed % len(INPUT_TYPES)]
    wbits = r.choice([1, 2, 3, 8, 16, 24])
    w = rand_weights(r, (m, k), wbits)
    b = None if seed % 3 == 0 else rand_weights(r, (m,), r.choice([4, 16, 32]))
    dense = Dense(name="d", inputs=("in",), weight=arr(w), bias=None if b is None else arr(b))
    net = build((k,), qtype, dense)
    x = sample_inputs(qtype, (k,), 8, seed)
    got = golden(net, x)
    assert got.dtype == np.int64
    assert got.shape == (len(x), m)
    assert got.tolist() == ref_dense(x.tolist(), w, b)
    assert_in_range(net, {"d": got})


def test_dense_by_hand():
    w = [[1, -2, 3], [0, 0, 0], [-4, 5, -6]]
    net = build(
        (3,), QType.int(8), Dense(name="d", inputs=("in",), weight=arr(w), bias=arr([7, -1, 0]))
    )
    x = arr([[1, 2, 3], [-128, 127, -1], [0, 0, 0]])
    assert golden(net, x).tolist() == [[13, -1, -12], [-378, -1, 1153], [7, -1, 0]]


# --------------------------------------------------------------------------------------------
# 2. Conv2d
# --------------------------------------------------------------------------------------------


def random_conv(r: random.Random, kind: str, min_pad: int = 0):
    if kind == "depthwise":
        groups = c = oc = r.randint(1, 4)
    elif kind == "grouped":
        groups = r.randint(2, 3)
        c, oc = groups * r.randint(1, 2), groups * r.randint(1, 2)
    else:
        groups, c, oc = 1, r.randint(1, 3), r.randint(1, 4)
    kernel = (r.randint(1, 5), r.randint(1, 5))
    stride = (r.randint(1, 3), r.randint(1, 3))
    dil = (r.randint(1, 3), r.randint(1, 3))
    pad = (r.randint(min_pad, 3), r.randint(min_pad, 3))
    hw = []
    for ax in range(2):
        need = max(1, dil[ax] * (kernel[ax] - 1) + 1 - 2 * pad[ax])
        hw.append(r.randint(need, need + 5))
    return dict(groups=groups, c=c, oc=oc, kernel=kernel, stride=stride, dil=dil, pad=pad, hw=hw)


CONV_KINDS = ["dense", "grouped", "depthwise"]


@pytest.mark.parametrize("seed", range(60))
def test_conv2d_matches_reference(seed):
    r = random.Random(1000 + seed)
    p = random_conv(r, CONV_KINDS[seed % 3])
    qtype = r.choice([QType.int(4), QType.int(8, False), QType.int(6), QType.bipolar()])
    cg = p["c"] // p["groups"]
    w = rand_weights(r, (p["oc"], cg, *p["kernel"]), r.choice([2, 4, 8]))
    b = rand_weights(r, (p["oc"],), 10) if seed % 2 else None
    conv = Conv2d(
        name="conv",
        inputs=("in",),
        weight=arr(w),
        bias=None if b is None else arr(b),
        stride=p["stride"],
        padding=p["pad"],
        dilation=p["dil"],
        groups=p["groups"],
    )
    net = build((p["c"], *p["hw"]), qtype, conv)
    x = sample_inputs(qtype, (p["c"], *p["hw"]), 2, seed)
    got = golden(net, x)
    want = ref_conv2d(x.tolist(), w, b, p["stride"], p["pad"], p["dil"], p["groups"])
    assert got.shape == (len(x), *net.output_tensor.shape)
    assert list(got.shape) == [len(want), len(want[0]), len(want[0][0]), len(want[0][0][0])]
    assert got.tolist() == want, p
    assert_in_range(net, {"conv": got})


@pytest.mark.parametrize(
    ("c", "oc", "groups", "kernel", "stride", "pad", "dil", "hw"),
    [
        (3, 3, 3, (3, 3), (2, 2), (1, 1), (1, 1), (7, 8)),  # depthwise, strided, padded
        (2, 4, 1, (1, 5), (1, 2), (0, 2), (1, 1), (3, 9)),  # non-square kernel
        (4, 4, 4, (5, 1), (1, 1), (2, 0), (2, 1), (9, 4)),  # depthwise, dilated, tall
        (4, 6, 2, (2, 3), (3, 1), (3, 1), (1, 2), (4, 6)),  # padding beyond the kernel
        (1, 1, 1, (4, 4), (1, 1), (0, 0), (1, 1), (4, 4)),  # single window
    ],
)
def test_conv2d_named_cases(c, oc, groups, kernel, stride, pad, dil, hw):
    r = random.Random(str((c, oc, kernel, hw)))
    w = rand_weights(r, (oc, c // groups, *kernel), 8)
    b = rand_weights(r, (oc,), 8)
    conv = Conv2d(
        name="conv",
        inputs=("in",),
        weight=arr(w),
        bias=arr(b),
        stride=stride,
        padding=pad,
        dilation=dil,
        groups=groups,
    )
    net = build((c, *hw), QType.int(8), conv)
    x = sample_inputs(QType.int(8), (c, *hw), 2, 7)
    assert golden(net, x).tolist() == ref_conv2d(x.tolist(), w, b, stride, pad, dil, groups)


# --------------------------------------------------------------------------------------------
# 3. Pooling
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(30))
def test_maxpool2d_matches_reference(seed):
    r = random.Random(2000 + seed)
    kernel = (r.randint(1, 4), r.randint(1, 4))
    stride = None if seed % 4 == 0 else (r.randint(1, 3), r.randint(1, 3))
    pad = (r.randint(0, kernel[0] // 2), r.randint(0, kernel[1] // 2))
    c = r.randint(1, 3)
    hw = (r.randint(kernel[0], kernel[0] + 6), r.randint(kernel[1], kernel[1] + 6))
    qtype = QType.int(8) if seed % 2 else QType.int(3)
    pool = MaxPool2d(name="p", inputs=("in",), kernel=kernel, stride=stride, padding=pad)
    net = build((c, *hw), qtype, pool)
    x = sample_inputs(qtype, (c, *hw), 3, seed)
    got = golden(net, x)
    want = ref_maxpool2d(x.tolist(), kernel, stride or kernel, pad)
    assert got.tolist() == want
    assert_in_range(net, {"p": got})


def test_maxpool2d_padding_never_wins():
    # all-negative input: a zero pad value would win every border window
    net = build(
        (1, 3, 3),
        QType.int(8),
        MaxPool2d(name="p", inputs=("in",), kernel=3, stride=1, padding=1),
    )
    x = arr([[[[-9, -8, -7], [-6, -5, -4], [-3, -2, -1]]]])
    assert golden(net, x).tolist() == [[[[-5, -4, -4], [-2, -1, -1], [-2, -1, -1]]]]
    assert golden(net, x).tolist() == ref_maxpool2d(x.tolist(), (3, 3), (1, 1), (1, 1))


def test_maxpool2d_padding_over_half_kernel_is_rejected():
    with pytest.raises(DescriptionError, match=r"^layer 'p': field 'padding': must be at most"):
        MaxPool2d(name="p", inputs=("in",), kernel=(3, 2), padding=(1, 2))


@pytest.mark.parametrize("rounding", list(Rounding), ids=lambda m: m.value)
@pytest.mark.parametrize("seed", range(3))
def test_avgpool2d_matches_reference(rounding, seed):
    r = random.Random(f"avg{seed}")
    kernel = r.choice([(2, 1), (1, 2), (2, 2), (3, 1), (2, 3), (3, 3)])
    stride = None if seed == 0 else (r.randint(1, 2), r.randint(1, 2))
    c = r.randint(1, 3)
    hw = (r.randint(kernel[0], kernel[0] + 4), r.randint(kernel[1], kernel[1] + 4))
    pool = AvgPool2d(name="p", inputs=("in",), kernel=kernel, stride=stride, rounding=rounding)
    net = build((c, *hw), QType.int(5), pool)
    x = sample_inputs(QType.int(5), (c, *hw), 6, seed)
    got = golden(net, x)
    assert got.tolist() == ref_avgpool2d(x.tolist(), kernel, stride or kernel, rounding)
    assert_in_range(net, {"p": got})


def test_avgpool2d_ties_by_hand():
    x = arr([[[[5, -5, -6, 3]]]])  # pairs: 0, -3/2 ... (5-5)/2=0, (-6+3)/2=-3/2
    want = {
        Rounding.HALF_EVEN: -2,
        Rounding.HALF_UP: -1,
        Rounding.HALF_DOWN: -2,
        Rounding.HALF_AWAY: -2,
        Rounding.HALF_TOWARD_ZERO: -1,
        Rounding.FLOOR: -2,
        Rounding.CEIL: -1,
        Rounding.TOWARD_ZERO: -1,
        Rounding.AWAY_FROM_ZERO: -2,
    }
    for mode, value in want.items():
        pool = AvgPool2d(name="p", inputs=("in",), kernel=(1, 2), rounding=mode)
        net = build((1, 1, 4), QType.int(8), pool)
        assert golden(net, x).tolist() == [[[[0, value]]]], mode


def ref_sumpool2d(x, kernel, stride):
    out = []
    for sample in x:
        planes = []
        for ch in sample:
            h, wd = len(ch), len(ch[0])
            oh = out_positions(h, kernel[0], stride[0], 0, 1)
            ow = out_positions(wd, kernel[1], stride[1], 0, 1)
            planes.append(
                [
                    [
                        sum(
                            ch[iy][ix]
                            for _, _, iy, ix in window_taps(
                                oy, ox, *kernel, stride, (0, 0), (1, 1), h, wd
                            )
                        )
                        for ox in range(ow)
                    ]
                    for oy in range(oh)
                ]
            )
        out.append(planes)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_sumpool2d_matches_reference(seed):
    r = random.Random(f"sum{seed}")
    kernel = r.choice([(2, 1), (1, 2), (2, 2), (3, 1), (2, 3), (3, 3)])
    stride = None if seed % 2 == 0 else (r.randint(1, 2), r.randint(1, 2))
    c = r.randint(1, 3)
    hw = (r.randint(kernel[0], kernel[0] + 4), r.randint(kernel[1], kernel[1] + 4))
    qtype = r.choice([QType.int(5), QType.int(3, signed=False)])
    pool = SumPool2d(name="p", inputs=("in",), kernel=kernel, stride=stride)
    net = build((c, *hw), qtype, pool)
    x = sample_inputs(qtype, (c, *hw), 6, seed)
    got = golden(net, x)
    assert got.tolist() == ref_sumpool2d(x.tolist(), kernel, stride or kernel)
    assert_in_range(net, {"p": got})
    # the range is the area times the input's, and the all-lo / all-hi inputs attain it
    t, area = net.tensors["p"], kernel[0] * kernel[1]
    lo, hi = type_range(qtype)
    assert (t.lo, t.hi) == (lo * area, hi * area)
    assert (int(got.min()), int(got.max())) == (t.lo, t.hi)
    assert t.qtype == ref_covering(t.lo, t.hi)


def test_sumpool2d_global_is_the_sum_of_each_channel():
    pool = SumPool2d(name="p", inputs=("in",), kernel=(8, 8))
    net = build((4, 8, 8), QType.int(4, signed=False), pool)
    x = sample_inputs(QType.int(4, signed=False), (4, 8, 8), 5, 7)
    got = golden(net, x)
    assert got.shape == (7, 4, 1, 1)
    assert got[:, :, 0, 0].tolist() == x.sum(axis=(2, 3)).tolist()
    assert str(net.tensors["p"].qtype) == "uint10"  # 64 * 15 = 960


def test_sumpool2d_keeps_a_fixed_point_scale():
    pool = SumPool2d(name="p", inputs=("in",), kernel=(2, 2))
    net = build((1, 2, 2), QType.fixed(4, 2), pool)
    t = net.tensors["p"]
    assert (t.qtype.kind, t.qtype.frac, t.lo, t.hi) == (Kind.FIXED, 2, -32, 28)


def test_sumpool2d_rejects_bipolar_and_a_kernel_too_big():
    with pytest.raises(DescriptionError, match=r"^layer 'p': field 'inputs': cannot sum a bipolar"):
        build((1, 2, 2), QType.bipolar(), SumPool2d(name="p", inputs=("in",), kernel=(2, 2)))
    with pytest.raises(DescriptionError, match=r"^layer 'p': field 'kernel': \(3, 3\) does not"):
        build((1, 2, 2), QType.int(4), SumPool2d(name="p", inputs=("in",), kernel=(3, 3)))


# --------------------------------------------------------------------------------------------
# 4. Binary layers
# --------------------------------------------------------------------------------------------

UINT1 = QType.int(1, signed=False)


def binary_values(r: random.Random, shape, encoding: Encoding):
    vals = (-1, 1) if encoding is Encoding.BIPOLAR else (0, 1)
    if len(shape) == 1:
        return [r.choice(vals) for _ in range(shape[0])]
    return [binary_values(r, shape[1:], encoding) for _ in range(shape[0])]


def in_type(encoding: Encoding) -> QType:
    return QType.bipolar() if encoding is Encoding.BIPOLAR else UINT1


@pytest.mark.parametrize("encoding", list(Encoding), ids=lambda e: e.value)
@pytest.mark.parametrize("seed", range(8))
def test_binary_dense_matches_reference(encoding, seed):
    r = random.Random(f"bd{seed}")
    k, m = r.randint(1, 70), r.randint(1, 6)
    w = binary_values(r, (m, k), encoding)
    net = build(
        (k,),
        in_type(encoding),
        BinaryDense(name="b", inputs=("in",), weight=arr(w), encoding=encoding),
    )
    x = binary_values(r, (6, k), encoding)
    got = golden(net, arr(x))
    assert got.tolist() == ref_binary_dense(x, w, encoding)
    t = net.output_tensor
    assert (t.lo, t.hi) == ((-k, k) if encoding is Encoding.BIPOLAR else (0, k))
    assert_in_range(net, {"b": got})
    # the bounds are attained: the input equal to a weight row, and its complement
    same = w[0]
    other = [-v for v in same] if encoding is Encoding.BIPOLAR else [1 - v for v in same]
    ends = golden(net, arr([same, other]))[:, 0].tolist()
    assert ends == [t.hi, t.lo]


@pytest.mark.parametrize("encoding", list(Encoding), ids=lambda e: e.value)
@pytest.mark.parametrize("seed", range(6))
def test_binary_conv2d_matches_reference(encoding, seed):
    r = random.Random(f"bc{seed}")
    c, oc = r.randint(1, 3), r.randint(1, 3)
    kernel = (r.randint(1, 4), r.randint(1, 4))
    stride = (r.randint(1, 2), r.randint(1, 2))
    dil = (r.randint(1, 2), r.randint(1, 2))
    hw = tuple(dil[i] * (kernel[i] - 1) + 1 + r.randint(0, 4) for i in range(2))
    w = binary_values(r, (oc, c, *kernel), encoding)
    layer = BinaryConv2d(
        name="b", inputs=("in",), weight=arr(w), encoding=encoding, stride=stride, dilation=dil
    )
    net = build((c, *hw), in_type(encoding), layer)
    x = binary_values(r, (3, c, *hw), encoding)
    got = golden(net, arr(x))
    assert got.tolist() == ref_binary_conv2d(x, w, stride, dil, encoding)
    k = c * kernel[0] * kernel[1]
    t = net.output_tensor
    assert (t.lo, t.hi) == ((-k, k) if encoding is Encoding.BIPOLAR else (0, k))
    assert_in_range(net, {"b": got})


@pytest.mark.parametrize("seed", range(6))
def test_binary_encodings_agree_through_2p_minus_k(seed):
    """One logical ±1 network in both encodings: dot = 2·popcount − K (FINN)."""
    r = random.Random(f"finn{seed}")
    k, m = r.randint(1, 50), r.randint(1, 5)
    wb = binary_values(r, (m, k), Encoding.BIPOLAR)
    xb = binary_values(r, (8, k), Encoding.BIPOLAR)

    def bits(v):
        return ref_map(lambda e: (e + 1) // 2, v)

    bip = build(
        (k,),
        QType.bipolar(),
        BinaryDense(name="b", inputs=("in",), weight=arr(wb), encoding="bipolar"),
    )
    bin_ = build(
        (k,), UINT1, BinaryDense(name="b", inputs=("in",), weight=arr(bits(wb)), encoding="binary")
    )
    dot = golden(bip, arr(xb))
    pop = golden(bin_, arr(bits(xb)))
    assert dot.tolist() == (2 * pop - k).tolist()
    assert dot.tolist() == ref_binary_dense(xb, wb, Encoding.BIPOLAR)
    assert pop.tolist() == ref_binary_dense(bits(xb), bits(wb), Encoding.BINARY)

    # the same for a convolution
    c, kernel, hw = r.randint(1, 3), (r.randint(1, 3), r.randint(1, 3)), (5, 4)
    kc = c * kernel[0] * kernel[1]
    wcb = binary_values(r, (2, c, *kernel), Encoding.BIPOLAR)
    xcb = binary_values(r, (3, c, *hw), Encoding.BIPOLAR)
    cbip = build(
        (c, *hw),
        QType.bipolar(),
        BinaryConv2d(name="b", inputs=("in",), weight=arr(wcb), encoding=Encoding.BIPOLAR),
    )
    cbin = build(
        (c, *hw),
        UINT1,
        BinaryConv2d(name="b", inputs=("in",), weight=arr(bits(wcb)), encoding=Encoding.BINARY),
    )
    cdot = golden(cbip, arr(xcb))
    cpop = golden(cbin, arr(bits(xcb)))
    assert cdot.tolist() == (2 * cpop - kc).tolist()
    assert cdot.tolist() == ref_binary_conv2d(xcb, wcb, (1, 1), (1, 1), Encoding.BIPOLAR)


# --------------------------------------------------------------------------------------------
# 5. Requant, MultiThreshold, Clip, Flatten, Reshape, Add in small networks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("overflow", list(Overflow), ids=lambda m: m.value)
@pytest.mark.parametrize("rounding", list(Rounding), ids=lambda m: m.value)
def test_dense_requant_multithreshold_chain(rounding, overflow):
    r = random.Random(f"{rounding.value}/{overflow.value}")
    k, m = 6, 4
    w = rand_weights(r, (m, k), 4)
    b = rand_weights(r, (m,), 8)
    per_channel = r.random() < 0.5
    mult = [r.randint(-300, 300) or 1 for _ in range(m)] if per_channel else r.randint(1, 300)
    shift = [r.randint(-2, 12) for _ in range(m)] if r.random() < 0.5 else r.randint(0, 12)
    choices = [QType.int(4), QType.int(4, False), QType.fixed(6, 2), QType.int(5, False)]
    if overflow is not Overflow.WRAP:
        choices += [QType.int(5, narrow=True), QType.int(3, False, narrow=True)]
    qtype = r.choice(choices)
    qlo, qhi = type_range(qtype)
    thr = [[r.randint(qlo - 1, qhi + 1) for _ in range(3)] for _ in range(m)]
    scale, bias = r.choice([(1, 0), (2, -1), (-1, 3), (3, -5)])
    layers = [
        Dense(name="d", inputs=("in",), weight=arr(w), bias=arr(b)),
        Requant(
            name="rq",
            inputs=("d",),
            multiplier=arr(mult),
            shift=arr(shift),
            qtype=qtype,
            rounding=rounding,
            overflow=overflow,
        ),
        MultiThreshold(
            name="mt", inputs=("rq",), thresholds=arr(thr), out_scale=scale, out_bias=bias
        ),
    ]
    net = build((k,), QType.int(8), *layers)
    x = sample_inputs(QType.int(8), (k,), 30, 5)
    tr = trace(net, x)
    assert_in_range(net, tr)

    mults = mult if per_channel else [mult] * m
    shifts = shift if isinstance(shift, list) else [shift] * m
    d = ref_dense(x.tolist(), w, b)
    rq = [
        ref_channelwise(
            lambda c, v: ref_requant(v, mults[c], shifts[c], qtype, rounding, overflow), s
        )
        for s in d
    ]
    mt = [ref_channelwise(lambda c, v: ref_multithreshold(v, thr[c], scale, bias), s) for s in rq]
    assert tr["d"].tolist() == d
    assert tr["rq"].tolist() == rq
    assert tr["mt"].tolist() == mt
    assert golden(net, x).tolist() == mt

    t = net.tensors["rq"]
    assert t.qtype == qtype
    if overflow in (Overflow.SAT, Overflow.SAT_SYM):
        # monotone per channel: the range is attained at the input range's ends
        dt = net.tensors["d"]
        ends = [
            ref_requant(v, mults[c], shifts[c], qtype, rounding, overflow)
            for c in range(m)
            for v in (dt.lo, dt.hi)
        ]
        assert (t.lo, t.hi) == (min(ends), max(ends))


@pytest.mark.parametrize("seed", range(6))
def test_conv_residual_network(seed):
    """A 3x3 (padded) and a 1x1 convolution of the input, added, then relu, per-channel
    requant, padded maxpool, reshape, flatten, multithreshold and dense: layer by layer."""
    r = random.Random(f"res{seed}")
    c, oc, hw = 2, 3, (6, 5)
    wa = rand_weights(r, (oc, c, 3, 3), 4)
    wb = rand_weights(r, (oc, c, 1, 1), 4)
    ba = rand_weights(r, (oc,), 6)
    mult, shift = [r.randint(1, 40) for _ in range(oc)], [r.randint(2, 6) for _ in range(oc)]
    rounding = r.choice(list(Rounding))
    thr = [sorted(r.randint(0, 15) for _ in range(3))]
    out_w = rand_weights(r, (4, oc * 4 * 3), 6)
    layers = [
        Conv2d(name="ca", inputs=("in",), weight=arr(wa), bias=arr(ba), padding=1),
        Conv2d(name="cb", inputs=("in",), weight=arr(wb)),
        Add(name="s", inputs=("ca", "cb")),
        Clip(name="relu", inputs=("s",), min=0),
        Requant(
            name="rq",
            inputs=("relu",),
            multiplier=arr(mult),
            shift=arr(shift),
            qtype=QType.int(4, False),
            rounding=rounding,
        ),
        MaxPool2d(name="mp", inputs=("rq",), kernel=2, stride=2, padding=1),
        Reshape(name="rs", inputs=("mp",), shape=(oc, -1)),
        Flatten(name="fl", inputs=("rs",)),
        MultiThreshold(name="mt", inputs=("fl",), thresholds=arr(thr)),
        Dense(name="out", inputs=("mt",), weight=arr(out_w)),
    ]
    net = build((c, *hw), QType.int(4), *layers)
    assert net.tensors["rs"].shape == (oc, 12)
    x = sample_inputs(QType.int(4), (c, *hw), 6, seed)
    tr = trace(net, x)
    assert_in_range(net, tr)

    xs = x.tolist()
    ca = ref_conv2d(xs, wa, ba, (1, 1), (1, 1), (1, 1), 1)
    cb = ref_conv2d(xs, wb, None, (1, 1), (0, 0), (1, 1), 1)
    s = ref_add(ca, cb)
    relu = ref_map(lambda v: max(v, 0), s)
    q4 = QType.int(4, False)
    rq = [
        ref_channelwise(
            lambda ch, v: ref_requant(v, mult[ch], shift[ch], q4, rounding, Overflow.SAT), smp
        )
        for smp in relu
    ]
    mp = ref_maxpool2d(rq, (2, 2), (2, 2), (1, 1))
    rs = [ref_reshape(ref_flatten(smp), (oc, 12)) for smp in mp]
    fl = [ref_flatten(smp) for smp in rs]
    mt = [[ref_multithreshold(v, thr[0], 1, 0) for v in smp] for smp in fl]
    out = ref_dense(mt, out_w, None)
    for name, want in [
        ("ca", ca),
        ("cb", cb),
        ("s", s),
        ("relu", relu),
        ("rq", rq),
        ("mp", mp),
        ("rs", rs),
        ("fl", fl),
        ("mt", mt),
        ("out", out),
    ]:
        assert tr[name].tolist() == want, name
    assert golden(net, x).tolist() == out
    assert list(tr) == [la.name for la in net.layers]


@pytest.mark.parametrize(
    ("bounds", "out_range"),
    [
        ((0, None), (0, 127)),
        ((None, 5), (-128, 5)),
        ((-3, 4), (-3, 4)),
        ((10, 20), (10, 20)),
        ((-20, -10), (-20, -10)),
        ((None, None), (-128, 127)),
    ],
)
def test_clip_matches_reference(bounds, out_range):
    lo, hi = bounds
    net = build((5,), QType.int(8), Clip(name="c", inputs=("in",), min=lo, max=hi))
    t = net.output_tensor
    assert (t.lo, t.hi) == out_range
    assert t.qtype == ref_covering(*out_range)
    x = sample_inputs(QType.int(8), (5,), 40, 3)
    got = golden(net, x)

    def clamp(v):
        if lo is not None and v < lo:
            v = lo
        if hi is not None and v > hi:
            v = hi
        return v

    assert got.tolist() == ref_map(clamp, x.tolist())
    assert_in_range(net, {"c": got})


def test_multithreshold_shared_row_bipolar_output():
    thr = [[3]]
    layers = [
        MultiThreshold(
            name="mt",
            inputs=("in",),
            thresholds=arr(thr),
            out_scale=2,
            out_bias=-1,
            out_type=QType.bipolar(),
        )
    ]
    net = build((4, 2, 2), QType.int(4), *layers)
    assert net.output_tensor.qtype == QType.bipolar()
    x = sample_inputs(QType.int(4), (4, 2, 2), 10, 11)
    got = golden(net, x)
    assert got.tolist() == ref_map(lambda v: ref_multithreshold(v, thr[0], 2, -1), x.tolist())
    assert_in_range(net, {"mt": got})


@pytest.mark.parametrize("seed", range(4))
def test_multithreshold_per_channel_on_nchw(seed):
    r = random.Random(f"mt{seed}")
    c, n_thr = 3, r.randint(1, 12)  # more than 8 thresholds takes another code path
    thr = [[r.randint(-20, 20) for _ in range(n_thr)] for _ in range(c)]
    scale, bias = r.choice([(1, 0), (-2, 5), (3, -7)])
    layers = [
        MultiThreshold(
            name="mt", inputs=("in",), thresholds=arr(thr), out_scale=scale, out_bias=bias
        )
    ]
    net = build((c, 3, 2), QType.int(6), *layers)
    x = sample_inputs(QType.int(6), (c, 3, 2), 20, seed)
    got = golden(net, x)
    want = [
        ref_channelwise(lambda ch, v: ref_multithreshold(v, thr[ch], scale, bias), s)
        for s in x.tolist()
    ]
    assert got.tolist() == want
    assert_in_range(net, {"mt": got})
    counts = [sum(1 for t in row if v >= t) for row in thr for v in (-32, 31)]
    ends = sorted(scale * k + bias for k in (min(counts), max(counts)))
    assert (net.output_tensor.lo, net.output_tensor.hi) == tuple(ends)


def test_add_same_input_twice_and_dead_branch():
    w = [[1, 2], [3, -4]]
    layers = [
        Dense(name="d", inputs=("in",), weight=arr(w)),
        Add(name="twice", inputs=("d", "d")),
        Clip(name="dead", inputs=("in",), max=0),
    ]
    net = build((2,), QType.int(6), *layers, output="twice")
    x = sample_inputs(QType.int(6), (2,), 10, 4)
    tr = trace(net, x)
    want = [[2 * v for v in row] for row in ref_dense(x.tolist(), w, None)]
    assert golden(net, x).tolist() == want
    assert tr["twice"].tolist() == want
    assert set(tr) == {"in", "d", "twice", "dead"}
    assert_in_range(net, tr)


# --------------------------------------------------------------------------------------------
# 6. The float64 / int64 switch at 2**53
# --------------------------------------------------------------------------------------------


@pytest.fixture
def path_spy(monkeypatch):
    """Record every (bound, float path chosen) decision of the dataflow kernels."""
    seen: list[tuple[int, bool]] = []
    original = dataflow.float_path_ok

    def spy(bound):
        ok = original(bound)
        seen.append((int(bound), ok))
        return ok

    monkeypatch.setattr(dataflow, "float_path_ok", spy)
    return seen


def clipped_dense(mag: int, w, b=None) -> Network:
    """int32 input, clipped to [-mag, mag], into a dense layer."""
    layers = [
        Clip(name="clip", inputs=("in",), min=-mag, max=mag),
        Dense(name="d", inputs=("clip",), weight=arr(w), bias=None if b is None else arr(b)),
    ]
    return build((len(w[0]),), QType.int(32), *layers)


def test_float_path_limit():
    assert dataflow.float_path_ok(P53 - 1)
    assert not dataflow.float_path_ok(P53)
    assert dataflow.FLOAT_EXACT_LIMIT == P53


def test_bound_just_below_2_53_takes_float_path(path_spy):
    # 2**53 - 1 = 6361 · 69431 · 20394401: inputs in [-M, M], Σ|w| = S per largest row.
    # The bound includes the bias (it is added in float64 too), so this case has none.
    mag, s = 20394401, 6361 * 69431
    assert s * mag == P53 - 1
    w = [[s, 0, 0], [-(s - 12345), 12344, -1], [3, -(s - 10), 7]]
    net = clipped_dense(mag, w)
    bound = net["d"].partial_bound(net.tensors["clip"])
    assert bound == P53 - 1
    assert dataflow.float_path_ok(bound)
    path_spy.clear()
    x = arr(
        [
            [mag, mag, mag],
            [-mag, -mag, -mag],
            [mag, mag - 2, -mag],
            [-mag, mag, mag],
            [mag - 1, -(mag - 1), 1],
            [2**31 - 1, -(2**31), 5],  # clipped
        ]
    )
    got = golden(net, x)
    clipped = [[min(max(v, -mag), mag) for v in row] for row in x.tolist()]
    want = ref_dense(clipped, w, None)
    assert got.tolist() == want
    assert set(path_spy) == {(P53 - 1, True)}
    # the results are odd numbers just below 2**53 in magnitude
    assert want[0][0] == P53 - 1 and want[1][0] == -(P53 - 1)
    assert want[2][1] % 2 == 1 and abs(want[2][1]) > P53 - 2**40
    t = net.output_tensor
    assert (t.lo, t.hi) == ref_dense_range(w, None, -mag, mag)
    assert t.hi == P53 - 1
    assert_in_range(net, trace(net, x))


def test_bound_exactly_2_53_takes_int64_path(path_spy):
    # int32 input: magnitude 2**31; largest row Σ|w| = 2**22, no bias
    w = [[-(2**22 - 1), -1], [2**22 - 1, 1], [2**21, -(2**21)]]
    net = build((2,), QType.int(32), Dense(name="d", inputs=("in",), weight=arr(w)))
    bound = net["d"].partial_bound(net.input_tensor)
    assert bound == P53
    assert not dataflow.float_path_ok(bound)
    path_spy.clear()
    x = arr([[-(2**31), -(2**31) + 1], [-(2**31), 2**31 - 1], [-(2**31), -(2**31)]])
    got = golden(net, x)
    want = ref_dense(x.tolist(), w, None)
    assert got.tolist() == want
    assert set(path_spy) == {(P53, False)}
    assert want[0][0] == P53 - 1 and want[2][0] == P53 and want[2][1] == -P53


def test_bias_past_2_53_takes_int64_path(path_spy):
    # products bounded by 2**53 - 2**31 ... plus a bias of 2: the bound counts the bias
    w = [[-(2**22 - 1), -1], [2**22 - 1, 1], [2**21, -(2**21)]]
    b = [2, -2, 1]
    net = build((2,), QType.int(32), Dense(name="d", inputs=("in",), weight=arr(w), bias=arr(b)))
    bound = net["d"].partial_bound(net.input_tensor)
    assert bound == P53 + 2
    path_spy.clear()
    x = arr([[-(2**31), -(2**31) + 1], [-(2**31), -(2**31)]])
    got = golden(net, x)
    want = ref_dense(x.tolist(), w, b)
    assert got.tolist() == want
    assert set(path_spy) == {(P53 + 2, False)}
    assert want[0][0] == P53 + 1  # odd, beyond 2**53: float64 could not hold it
    assert want[1][0] == P53 + 2 and want[1][1] == -P53 - 2


@pytest.mark.parametrize(
    ("w", "x", "odd"),
    [
        # bound (2**22 + 1)·2**31, just past 2**53: -2**53 - 1 (float64 gives -2**53)
        ([[2**22, 1]], [[-(2**31), -1], [2**31 - 1, 2**31 - 1]], -(P53 + 1)),
        # bound near 2**63: 2·(2**31 - 1)**2 + 1
        (
            [[2**31 - 1, 2**31 - 1, 1], [-(2**31 - 1), 3, 0]],
            [[2**31 - 1, 2**31 - 1, 1], [2**31 - 1, -(2**31), 7], [12345, -54321, 0]],
            2 * (2**31 - 1) ** 2 + 1,
        ),
    ],
    ids=["just-past-2**53", "near-2**63"],
)
def test_bound_past_2_53_odd_results_exact(path_spy, w, x, odd):
    """Where float64 would round: odd results beyond 2**53 (the int64 path must be taken)."""
    net = build((len(w[0]),), QType.int(32), Dense(name="d", inputs=("in",), weight=arr(w)))
    assert net["d"].partial_bound(net.input_tensor) > P53
    got = golden(net, arr(x))
    want = ref_dense(x, w, None)
    assert got.tolist() == want
    assert got[0, 0] == odd and odd % 2 == 1
    assert path_spy and all(ok is False for _, ok in path_spy)
    # the test is meaningful: float64 arithmetic rounds that result
    fsum = 0.0
    for a, c in zip(x[0], w[0], strict=True):
        fsum += float(a) * float(c)
    assert int(fsum) != odd


def test_bound_at_int64_max_is_accepted_and_exact():
    # 2**63 - 1 = M · S with M = 649657·337, S split into 32-bit weights
    mag = 649657 * 337
    s = INT64_MAX // mag
    assert s * mag == INT64_MAX
    big = 2**31 - 1
    row = [big] * (s // big) + [s % big]
    w = [[v if i % 2 else -v for i, v in enumerate(row)], [1] * len(row)]
    net = clipped_dense(mag, w)
    assert net["d"].partial_bound(net.tensors["clip"]) == INT64_MAX
    t = net.output_tensor
    assert (t.lo, t.hi) == (-INT64_MAX, INT64_MAX)
    assert t.qtype == QType.int(64)
    top = [mag if v > 0 else -mag for v in w[0]]
    x = arr([top, [-v for v in top], [mag - 3] * len(row)])
    got = golden(net, x)
    assert got.tolist() == ref_dense(x.tolist(), w, None)
    assert got[0, 0] == INT64_MAX and got[1, 0] == -INT64_MAX

    # one more unit of weight, or of bias, and the bound passes int64
    with pytest.raises(
        DescriptionError, match=rf"^layer 'd': accumulator bound {INT64_MAX + mag} "
    ):
        clipped_dense(mag, [w[0], [*w[1][:-1], s - len(row) + 2]])
    with pytest.raises(DescriptionError, match=rf"^layer 'd': accumulator bound {INT64_MAX + 1} "):
        clipped_dense(mag, w, [1, 0])


@pytest.mark.parametrize("below", [True, False], ids=["2**53-1", "2**53"])
def test_conv2d_bound_at_2_53(path_spy, below):
    """The same switch in a padded convolution (input magnitude M, Σ|w| = S per channel;
    no bias, since the bound counts it)."""
    mag, s = (20394401, 6361 * 69431) if below else (2**31, 2**22)
    w = [[[[s - 2, 1, -1]]], [[[3, -5, 7]]]]
    b = None
    conv = Conv2d(name="c", inputs=("clip",), weight=arr(w), padding=(0, 1))
    clip = Clip(name="clip", inputs=("in",), min=-mag, max=mag)
    net = build((1, 2, 4), QType.int(32), clip, conv)
    bound = conv.partial_bound(net.tensors["clip"])
    assert bound == (P53 - 1 if below else P53)
    top = min(mag, 2**31 - 1)
    x = [
        [[[top, -mag, top, -mag], [-mag, -mag, top, -mag]]],
        [[[top, top, top, top], [-mag, top, -mag, top]]],
    ]
    path_spy.clear()
    got = golden(net, arr(x))
    assert set(path_spy) == {(bound, below)}
    assert got.tolist() == ref_conv2d(x, w, b, (1, 1), (0, 1), (1, 1), 1)
    # taps (-M, -M, top) at output (1, 1): -(S - 2)·M - M - top, odd, near -2**53
    assert got[0, 0, 1, 1] == -P53 + 1


def test_bound_beyond_int64_is_rejected():
    w = [[2**31 - 1, -(2**31 - 1), 2**31 - 1]]
    with pytest.raises(
        DescriptionError,
        match=r"^layer 'd': accumulator bound \d+ does not fit int64; narrow the types$",
    ):
        build((3,), QType.int(32), Dense(name="d", inputs=("in",), weight=arr(w)))
    cw = np.full((1, 3, 1, 1), 2**31 - 1, dtype=np.int64)
    with pytest.raises(
        DescriptionError, match=r"^layer 'c': accumulator bound \d+ does not fit int64"
    ):
        build((3, 2, 2), QType.int(32), Conv2d(name="c", inputs=("in",), weight=cw))


# --------------------------------------------------------------------------------------------
# 7. Accumulator ranges are exact: attained by some input, never exceeded
# --------------------------------------------------------------------------------------------

RANGE_KINDS = ["int", "uint", "positive", "negative", "around_zero", "single"]


def input_range(r: random.Random, kind: str):
    """An input type, and a clip range inside it (or None for the type's full range)."""
    if kind == "int":
        return QType.int(r.randint(2, 8)), None
    if kind == "uint":
        return QType.int(r.randint(1, 8), signed=False), None
    if kind == "positive":  # unsigned, excluding 0
        lo = r.randint(1, 100)
        return QType.int(8, signed=False), (lo, r.randint(lo, 255))
    if kind == "negative":
        hi = r.randint(-100, -1)
        return QType.int(8), (r.randint(-128, hi), hi)
    if kind == "around_zero":
        return QType.int(8), (r.randint(-50, 0), r.randint(0, 50))
    v = r.randint(-128, 127)
    return QType.int(8), (v, v)


def range_net(qtype, clip, layer_factory) -> tuple[Network, int, int]:
    layers = []
    src = "in"
    if clip is not None:
        layers.append(Clip(name="clip", inputs=("in",), min=clip[0], max=clip[1]))
        src = "clip"
    net = build(layer_factory.shape, qtype, *layers, layer_factory(src))
    lo, hi = clip if clip is not None else type_range(qtype)
    return net, lo, hi


class DenseFactory:
    def __init__(self, w, b):
        self.w, self.b = w, b
        self.shape = (len(w[0]),)

    def __call__(self, src):
        b = None if self.b is None else arr(self.b)
        return Dense(name="acc", inputs=(src,), weight=arr(self.w), bias=b)


@pytest.mark.parametrize("kind", RANGE_KINDS)
@pytest.mark.parametrize("seed", range(6))
def test_dense_range_is_exact(kind, seed):
    r = random.Random(f"dr{kind}{seed}")
    qtype, clip = input_range(r, kind)
    k, m = r.randint(1, 12), r.randint(1, 6)
    sign = r.choice(["mixed", "negative", "positive"]) if kind == "positive" else "mixed"
    w = rand_weights(r, (m, k), r.choice([2, 5, 9]), sign)
    b = rand_weights(r, (m,), 8) if seed % 2 else None
    net, lo, hi = range_net(qtype, clip, DenseFactory(w, b))
    t = net.tensors["acc"]
    mins, maxs = ref_dense_rows_range(w, b, lo, hi)
    assert (t.lo, t.hi) == (min(mins), max(maxs))
    # (c) the narrowest type covering the range
    assert t.qtype == ref_covering(t.lo, t.hi) == QType.covering(t.lo, t.hi)

    # (a) each end is attained: each input at its range end by its weight's sign
    jlo, jhi = mins.index(t.lo), maxs.index(t.hi)
    x_lo = [lo if v > 0 else hi for v in w[jlo]]
    x_hi = [hi if v > 0 else lo for v in w[jhi]]
    got = golden(net, arr([x_lo, x_hi]))
    assert got[0, jlo] == t.lo and got[1, jhi] == t.hi

    # (b) never exceeded, row by row
    x = np.concatenate(
        [sample_inputs(qtype, (k,), 200, seed, lo, hi), random_inputs(net, 50, seed)]
    )
    got = golden(net, x)
    assert np.all(got >= arr(mins)) and np.all(got <= arr(maxs))
    assert_in_range(net, trace(net, x))


class ConvFactory:
    def __init__(self, w, b, c, hw, stride, pad, dil, groups):
        self.w, self.b = w, b
        self.shape = (c, *hw)
        self.kw = dict(stride=stride, padding=pad, dilation=dil, groups=groups)

    def __call__(self, src):
        b = None if self.b is None else arr(self.b)
        return Conv2d(name="acc", inputs=(src,), weight=arr(self.w), bias=b, **self.kw)


def argext(maps, pick):
    """(oc, oy, ox) of the first extreme value of a nested (OC, OH, OW) list."""
    best = pick(v for plane in maps for row in plane for v in row)
    for oc, plane in enumerate(maps):
        for oy, row in enumerate(plane):
            for ox, v in enumerate(row):
                if v == best:
                    return best, (oc, oy, ox)
    raise AssertionError


def extreme_input(w, pos, lo, hi, c, hw, p, want_max: bool):
    """An input attaining output ``pos``'s extreme: every tap at its range end by weight sign
    (taps of one window read distinct pixels), the other pixels anywhere in range."""
    oc, oy, ox = pos
    cg, kh, kw = len(w[0]), len(w[0][0]), len(w[0][0][0])
    g = oc // (len(w) // p["groups"])
    x = [[[lo] * hw[1] for _ in range(hw[0])] for _ in range(c)]
    for ky, kx, iy, ix in window_taps(oy, ox, kh, kw, p["stride"], p["pad"], p["dil"], *hw):
        for ci in range(cg):
            up = (w[oc][ci][ky][kx] > 0) == want_max
            x[g * cg + ci][iy][ix] = hi if up else lo
    return x


@pytest.mark.parametrize("kind", RANGE_KINDS)
@pytest.mark.parametrize("seed", range(6))
def test_conv2d_range_is_exact(kind, seed):
    r = random.Random(f"cr{kind}{seed}")
    qtype, clip = input_range(r, kind)
    p = random_conv(r, CONV_KINDS[seed % 3], min_pad=seed % 2)  # padded: fewer border taps
    c, hw = p["c"], tuple(p["hw"])
    cg = c // p["groups"]
    sign = (
        r.choice(["mixed", "negative", "positive"]) if kind in ("positive", "negative") else "mixed"
    )
    w = rand_weights(r, (p["oc"], cg, *p["kernel"]), r.choice([3, 6]), sign)
    b = rand_weights(r, (p["oc"],), 6) if seed >= 2 else None
    factory = ConvFactory(w, b, c, hw, p["stride"], p["pad"], p["dil"], p["groups"])
    net, lo, hi = range_net(qtype, clip, factory)
    t = net.tensors["acc"]
    mins, maxs = ref_conv_range_maps(
        w, b, lo, hi, p["stride"], p["pad"], p["dil"], p["groups"], *hw
    )
    tlo, plo = argext(mins, min)
    thi, phi = argext(maxs, max)
    assert (t.lo, t.hi) == (tlo, thi), p
    assert t.qtype == ref_covering(t.lo, t.hi) == QType.covering(t.lo, t.hi)

    x = [
        extreme_input(w, plo, lo, hi, c, hw, p, False),
        extreme_input(w, phi, lo, hi, c, hw, p, True),
    ]
    got = golden(net, arr(x))
    assert got[(0, *plo)] == t.lo and got[(1, *phi)] == t.hi

    x = np.concatenate(
        [sample_inputs(qtype, (c, *hw), 40, seed, lo, hi), random_inputs(net, 10, seed)]
    )
    got = golden(net, x)
    assert np.all(got >= arr(mins)[None]) and np.all(got <= arr(maxs)[None])
    assert_in_range(net, trace(net, x))


def test_conv_range_positive_input_negative_weights_by_hand():
    """uint8 clipped to [10, 200], all-negative 3x3 weights, padding 1: the largest output is
    at a corner (4 taps), the smallest in the interior (9 taps)."""
    w = [[[[-1, -2, -3], [-4, -5, -6], [-7, -8, -9]]]]
    layers = [
        Clip(name="clip", inputs=("in",), min=10, max=200),
        Conv2d(name="acc", inputs=("clip",), weight=arr(w), padding=1),
    ]
    net = build((1, 4, 4), QType.int(8, signed=False), *layers)
    t = net.tensors["acc"]
    # bottom-right output reads taps (0..1, 0..1): -1-2-4-5 = -12, at 10 each -> -120
    assert (t.lo, t.hi) == (-45 * 200, -120)
    assert t.qtype == QType.int(15)
    got = golden(net, arr([[[[200] * 4] * 4], [[[10] * 4] * 4]]))
    assert got[0].min() == t.lo and got[1].max() == t.hi
    assert got[1, 0, 3, 3] == -120


# --------------------------------------------------------------------------------------------
# 8. Zoo networks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", zoo_names())
def test_zoo_trace_stays_in_inferred_ranges(name):
    net = load(name)
    x = random_inputs(net, 256, seed=12345)
    t = net.input_tensor
    lo, hi = type_range(t.qtype)
    if t.qtype.kind is not Kind.BIPOLAR:  # also the all-min and all-max vectors
        x = np.concatenate([x, np.full((1, *t.shape), lo), np.full((1, *t.shape), hi)])
    tr = trace(net, x)
    assert list(tr) == [la.name for la in net.layers]
    assert_in_range(net, tr)
    out = golden(net, x)
    assert list(tr)[-1] == net.output
    assert np.array_equal(out, tr[net.output])
    assert np.array_equal(out, list(tr.values())[-1])
    assert out.shape == (len(x), *net.output_tensor.shape)


def test_zoo_is_not_empty():
    assert {"cnv_tiny", "jet_tagger", "tfc_w1a1", "tfc_w2a2"} <= set(zoo_names())


# --------------------------------------------------------------------------------------------
# 9. Input validation
# --------------------------------------------------------------------------------------------


@pytest.fixture
def net8():
    return build((3,), QType.int(8), Clip(name="c", inputs=("in",), min=-5))


@pytest.mark.parametrize(
    ("x", "pattern"),
    [
        ([1, 2, 3], r"^input: must have shape \(N, 3\), not \(3,\)$"),
        ([[1, 2]], r"^input: must have shape \(N, 3\), not \(1, 2\)$"),
        ([[[1, 2, 3]]], r"^input: must have shape \(N, 3\), not \(1, 1, 3\)$"),
        (5, r"^input: must have shape \(N, 3\), not \(\)$"),
        (
            [[0, 1, 2], [0, 128, 0]],
            r"^input: value 128 at index \(1, 1\) is outside the input type int8 \[-128, 127\]$",
        ),
        (
            [[0, 1, -129]],
            r"^input: value -129 at index \(0, 2\) is outside the input type int8 \[-128, 127\]$",
        ),
        (
            [[0.5, 1, 2]],
            r"^input: must hold the integer representation of int8 values, not fractional "
            r"floats; quantize real inputs first \(codesign\.models\.arith\.quantize\)$",
        ),
        ([[np.nan, 1, 2]], r"^input: must hold the integer representation of int8 values"),
        ([[np.inf, 1, 2]], r"^input: must hold the integer representation of int8 values"),
        ([["a", "b", "c"]], r"^input: must be an integer array, not <U1$"),
        ([[1j, 0, 0]], r"^input: must be an integer array, not complex128$"),
    ],
)
def test_input_errors(net8, x, pattern):
    with pytest.raises(InputError, match=pattern):
        golden(net8, x)
    with pytest.raises(InputError, match=pattern):
        trace(net8, x)


def test_input_error_types_and_source(net8):
    assert issubclass(InputError, ValueError) and issubclass(InputError, UserError)
    with pytest.raises(InputError, match=r"^vectors\.npy: value 200 at index \(0, 0\) is outside"):
        golden(net8, [[200, 0, 0]], source="vectors.npy")


def test_input_errors_conv_and_unsigned_and_bipolar():
    conv = build((1, 2, 2), QType.int(4, signed=False), Clip(name="c", inputs=("in",), max=9))
    with pytest.raises(InputError, match=r"^input: must have shape \(N, 1, 2, 2\), not \(2, 2\)$"):
        golden(conv, [[1, 2], [3, 4]])
    with pytest.raises(
        InputError,
        match=r"^input: value -1 at index \(0, 0, 1, 0\) is outside the input type uint4 "
        r"\[0, 15\]$",
    ):
        golden(conv, [[[[1, 2], [-1, 4]]]])
    bip = build((3,), QType.bipolar(), Clip(name="c", inputs=("in",), max=0))
    with pytest.raises(
        InputError,
        match=r"^input: value 0 at index \(0, 1\) is outside the input type bipolar \[-1, 1\]$",
    ):
        golden(bip, [[1, 0, -1]])
    assert golden(bip, [[1, -1, -1]]).tolist() == [[0, -1, -1]]


def test_integral_floats_and_bools_are_accepted(net8):
    assert golden(net8, np.array([[-7.0, 3.0, 127.0]])).tolist() == [[-5, 3, 127]]
    assert golden(net8, np.array([[True, False, True]])).tolist() == [[1, 0, 1]]


def test_random_inputs_count_is_validated(net8):
    with pytest.raises(InputError, match=r"^the number of vectors must be a positive int, not 0$"):
        random_inputs(net8, 0, seed=1)


def test_uint64_input_beyond_int64_is_rejected(net8):
    x = np.array([[2**64 - 1, 0, 0]], dtype=np.uint64)
    with pytest.raises(InputError, match=r"^input: value 18446744073709551615 at index \(0, 0\)"):
        golden(net8, x)


def test_huge_integral_float_input_is_rejected_with_its_value(net8):
    with pytest.raises(InputError, match=r"^input: value \S+ at index \(0, 0\) is outside") as info:
        golden(net8, np.array([[1e30, 0.0, 0.0]]))
    assert "value 1e+30 at" in str(info.value)
