"""The deformable convolution family's numerics (models/deform): the float64 mode against
torchvision's own vectors and an independent scalar implementation, the fixed-point mode
against the float64 mode (exactly on its grid, within the documented bound off it), the
variants, the IR layer and its description errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from codesign.models.deform import (
    OffsetShape,
    Variant,
    deform_conv2d,
    deform_conv2d_fixed,
)
from codesign.models.deform.variants import deform_layers, with_variant
from codesign.models.errors import DescriptionError
from codesign.models.golden import golden, random_inputs, trace
from codesign.models.loader import load, load_description, save_description
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURE = Path(__file__).parents[1] / "fixtures" / "deform" / "torchvision_cases.npz"


# -- an independent float64 implementation: one output element at a time, as torchvision's
# CPU kernel walks it (deformable_im2col then a matrix product), with its bilinear_interpolate


def _bilinear(img, h, w):
    height, width = img.shape
    if h <= -1 or height <= h or w <= -1 or width <= w:
        return 0.0
    h_low, w_low = math.floor(h), math.floor(w)
    h_high, w_high = h_low + 1, w_low + 1
    lh, lw = h - h_low, w - w_low
    hh, hw = 1 - lh, 1 - lw
    v1 = img[h_low, w_low] if h_low >= 0 and w_low >= 0 else 0.0
    v2 = img[h_low, w_high] if h_low >= 0 and w_high <= width - 1 else 0.0
    v3 = img[h_high, w_low] if h_high <= height - 1 and w_low >= 0 else 0.0
    v4 = img[h_high, w_high] if h_high <= height - 1 and w_high <= width - 1 else 0.0
    return hh * hw * v1 + hh * lw * v2 + lh * hw * v3 + lh * lw * v4


def scalar_deform(x, offset, weight, bias, stride, padding, dilation, mask=None):
    n, c = x.shape[:2]
    oc, cg, kh, kw = weight.shape
    groups = c // cg
    _, _, ho, wo = offset.shape
    og = offset.shape[1] // (2 * kh * kw)
    out = np.zeros((n, oc, ho, wo))
    for b in range(n):
        for o in range(oc):
            g = o // (oc // groups)
            for oy in range(ho):
                for ox in range(wo):
                    acc = 0.0 if bias is None else float(bias[o])
                    for ci in range(cg):
                        ch = g * cg + ci
                        grp = ch // (c // og)
                        for i in range(kh):
                            for j in range(kw):
                                k = i * kw + j
                                dy = offset[b, grp * 2 * kh * kw + 2 * k, oy, ox]
                                dx = offset[b, grp * 2 * kh * kw + 2 * k + 1, oy, ox]
                                y = oy * stride[0] - padding[0] + i * dilation[0] + dy
                                xx = ox * stride[1] - padding[1] + j * dilation[1] + dx
                                v = _bilinear(x[b, ch], y, xx)
                                if mask is not None:
                                    v *= mask[b, grp * kh * kw + k, oy, ox]
                                acc += weight[o, ci, i, j] * v
                    out[b, o, oy, ox] = acc
    return out


# -- the float64 mode


def _torchvision_cases():
    if not FIXTURE.exists():
        return []
    data = np.load(FIXTURE, allow_pickle=False)
    names = sorted({k.split(".")[0] for k in data.files})
    return [
        (
            str(data[f"{n}.name"]),
            {k.split(".", 1)[1]: data[k] for k in data.files if k.startswith(n + ".")},
        )
        for n in names
    ]


@pytest.mark.parametrize(
    ("name", "case"),
    _torchvision_cases()
    or [pytest.param("missing", None, marks=pytest.mark.skip(reason=f"{FIXTURE} is absent"))],
)
def test_float_mode_equals_torchvision(name, case):
    sh, sw, ph, pw, dh, dw = (int(v) for v in case["params"])
    got = deform_conv2d(
        case["input"],
        case["offset"],
        case["weight"],
        case.get("bias"),
        stride=(sh, sw),
        padding=(ph, pw),
        dilation=(dh, dw),
        mask=case.get("mask"),
    )
    ref = case["out"]
    assert got.shape == ref.shape
    exact = ("int" in name and "float" not in name and "mask" not in name) or "mask8" in name
    if exact:  # every partial sum a multiple of 1/128: any summation order is exact
        assert np.array_equal(got, ref), np.abs(got - ref).max()
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_the_torchvision_fixture_covers_what_it_claims():
    cases = dict(_torchvision_cases())
    if not cases:
        pytest.skip(f"{FIXTURE} is absent")
    assert len(cases) >= 40
    assert any("mask" in c for c in cases) and any("ogroups" in c for c in cases)
    assert any("depthwise" in c for c in cases) and any("edge" in c for c in cases)


# positions chosen on exact integers, halves and every border, then random floats
BORDERS = [-1.0, -0.5, -1.25, 0.0]


@st.composite
def float_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kh, kw = draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 3]))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho < 1 or wo < 1:
        padding = (kh * dilation[0], kw * dilation[1])
        ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    groups = draw(st.sampled_from([1, 2]))
    og = draw(st.sampled_from([1, 2]))
    c = 2 * groups * og // math.gcd(groups, og)
    oc = groups * draw(st.integers(1, 2))
    x = rng.normal(size=(1, c, h, w))
    weight = rng.normal(size=(oc, c // groups, kh, kw))
    # target positions: a mix of exact integers, halves, the borders -1, -0.5, H-1, H and
    # random reals; the offset is the target minus the tap's base position
    k = kh * kw
    pick = rng.integers(0, 4, (1, og, k, 2, ho, wo))
    rnd = rng.uniform(-2, max(h, w) + 1, pick.shape)
    edges_y = np.array([-1, -0.5, h - 1, h, h - 0.5, 0])
    edges_x = np.array([-1, -0.5, w - 1, w, w - 0.5, 0])
    edge = np.stack(
        [rng.choice(edges_y, pick[:, :, :, 0].shape), rng.choice(edges_x, pick[:, :, :, 1].shape)],
        axis=3,
    )
    target = np.select(
        [pick == 0, pick == 1, pick == 2], [np.round(rnd), np.round(rnd * 2) / 2, edge], rnd
    )
    by = (np.arange(ho) * stride[0] - padding[0])[None, :, None]
    bx = (np.arange(wo) * stride[1] - padding[1])[None, None, :]
    ii, jj = np.divmod(np.arange(k), kw)
    base_y = by + (ii * dilation[0])[:, None, None]
    base_x = bx + (jj * dilation[1])[:, None, None]
    offset = np.empty_like(target)
    offset[:, :, :, 0] = target[:, :, :, 0] - base_y
    offset[:, :, :, 1] = target[:, :, :, 1] - base_x
    offset = offset.reshape(1, og * k * 2, ho, wo)
    mask = rng.uniform(0, 1, (1, og * k, ho, wo)) if draw(st.booleans()) else None
    bias = rng.normal(size=oc) if draw(st.booleans()) else None
    return x, offset, weight, bias, stride, padding, dilation, mask


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(float_cases())
def test_float_mode_equals_an_independent_implementation(case):
    x, offset, weight, bias, stride, padding, dilation, mask = case
    got = deform_conv2d(x, offset, weight, bias, stride, padding, dilation, mask)
    ref = scalar_deform(x, offset, weight, bias, stride, padding, dilation, mask)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_every_border_by_hand():
    """One pixel of value 1 at each corner of a 3x3 image; a 1x1 kernel samples exactly at
    the borders y = -1, -0.5, H-1, H (x in the middle of a row of ones)."""
    x = np.ones((1, 1, 3, 3))
    w = np.ones((1, 1, 1, 1))
    for y, expect in (
        (-1.0, 0.0),
        (-0.5, 0.5),
        (-0.999, 0.001),
        (2.0, 1.0),
        (2.5, 0.5),
        (3.0, 0.0),
        (1.5, 1.0),
        (0.0, 1.0),
    ):
        off = np.zeros((1, 2, 3, 3))
        off[0, 0, 0, 0] = y  # output (0, 0) samples (y, 0 + 1)
        off[0, 1, 0, 0] = 1
        got = deform_conv2d(x, off, w)[0, 0, 0, 0]
        assert got == pytest.approx(expect, abs=1e-12), y


# -- the fixed-point mode


@st.composite
def fixed_cases(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frac = draw(st.integers(0, 4))
    h, w = draw(st.integers(2, 7)), draw(st.integers(2, 7))
    c = draw(st.integers(1, 3))
    depthwise = draw(st.booleans())
    oc = c if depthwise else draw(st.integers(1, 3))
    weight = rng.integers(-8, 8, (oc, 1 if depthwise else c, 3, 3))
    x = (
        rng.integers(0, 256, (2, c, h, w))
        if draw(st.booleans())
        else rng.integers(-128, 128, (2, c, h, w))
    )
    shape = draw(st.sampled_from(list(OffsetShape)))
    bound = draw(st.sampled_from([None, 0, 1, 2]))
    variant = Variant(shape=shape, bound=bound, rounded=draw(st.booleans()))
    ch = 1 if shape is OffsetShape.SQUARE else 18
    lim = (max(h, w) + 2) << frac
    offset = rng.integers(-lim, lim + 1, (2, ch, h, w))
    bias = rng.integers(-1000, 1000, oc) if draw(st.booleans()) else None
    return x, offset, weight, bias, frac, variant


def float_offsets(offset, frac, variant, kernel=(3, 3), dilation=(1, 1)):
    """The per-tap real offsets a variant makes of integer ``offset`` (float64, free layout)."""
    off = offset / 2.0**frac
    n, _, ho, wo = off.shape
    kh, kw = kernel
    if variant.shape is OffsetShape.SQUARE:
        ii, jj = np.divmod(np.arange(kh * kw), kw)
        sy = ((ii - kh // 2) * dilation[0])[None, :, None, None]
        sx = ((jj - kw // 2) * dilation[1])[None, :, None, None]
        dy, dx = sy * off[:, :1], sx * off[:, :1]
        off = np.stack([dy, dx], axis=2).reshape(n, 2 * kh * kw, ho, wo)
    if variant.bound is not None:
        off = np.clip(off, -variant.bound, variant.bound)
    if variant.rounded:
        off = np.round(off)  # ties to even, as numpy and torch round
    return off


@settings(max_examples=80, deadline=None)
@given(fixed_cases())
def test_fixed_mode_is_the_float_mode_on_its_grid(case):
    """With offsets on the 2**-F grid every step is exact, so the fixed-point accumulator is
    the float64 result times 2**(2F), to the last bit."""
    x, offset, weight, bias, frac, variant = case
    s = 2 * frac
    got = deform_conv2d_fixed(x, offset, weight, bias, padding=1, offset_frac=frac, variant=variant)
    ref = deform_conv2d(
        x,
        float_offsets(offset, frac, variant),
        weight,
        None if bias is None else bias / 2.0**s,
        padding=1,
    )
    assert np.array_equal(got, ref * 2.0**s)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 4), st.integers(1, 3))
def test_fixed_mode_error_bound_against_real_offsets(seed, frac, c):
    """docs/deformable.md: offsets rounded to F bits move each coordinate by at most
    2**-(F+1), and a bilinear sample is Lipschitz with constant D = max(x, 0) - min(x, 0)
    per coordinate, so |out - float64| <= Σ|w| · D · 2**-F per output."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (1, c, 6, 6))
    w = rng.integers(-8, 8, (2, c, 3, 3))
    real = rng.uniform(-3, 3, (1, 18, 6, 6))
    q = np.round(real * 2**frac).astype(np.int64)
    got = deform_conv2d_fixed(x, q, w, padding=1, offset_frac=frac) / 2.0 ** (2 * frac)
    ref = deform_conv2d(x, real, w, padding=1)
    d = max(int(x.max()), 0) - min(int(x.min()), 0)
    bound = np.abs(w).reshape(2, -1).sum(axis=1)[None, :, None, None] * d * 2.0**-frac
    assert np.all(np.abs(got - ref) <= bound + 1e-9)


def test_square_with_zero_scale_is_a_convolution():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (2, 3, 6, 7))
    w = rng.integers(-8, 8, (4, 3, 3, 3))
    off = np.zeros((2, 1, 6, 7), dtype=np.int64)
    got = deform_conv2d_fixed(
        x, off, w, padding=1, offset_frac=2, variant=Variant(shape=OffsetShape.SQUARE)
    )
    from codesign.models.dataflow import conv2d, conv_weight_matrix

    ref = conv2d(x, conv_weight_matrix(w, 1), None, (3, 3), (1, 1), (1, 1), (1, 1), 2**40)
    assert np.array_equal(got, ref * 16)
    # d = 1 (in units of 2**-2: four quarters = one pixel) doubles the dilation
    off[:] = 4
    got = deform_conv2d_fixed(
        x, off, w, padding=1, offset_frac=2, variant=Variant(shape=OffsetShape.SQUARE)
    )
    ref = conv2d(x, conv_weight_matrix(w, 1), None, (3, 3), (1, 1), (2, 2), (2, 2), 2**40)
    assert np.array_equal(got, ref * 16)


@pytest.mark.parametrize(
    ("name", "bound", "message"),
    [
        (
            "bounde",
            2,
            r"^variant must be 'free' or names from .* not 'bounde' \(unknown 'bounde'\)$",
        ),
        ("bounded", None, r"^bound must be given exactly when the variant is bounded"),
        ("square", 1, r"^bound must be given exactly when the variant is bounded"),
        ("bounded", -1, r"^bound must be at least 0, not -1$"),
        ("free+square", None, r"^variant must name each part once and 'free' alone"),
    ],
)
def test_variant_names(name, bound, message):
    with pytest.raises(ValueError, match=message):
        Variant.parse(name, bound)


def test_variant_round_trip():
    for name, bound in (
        ("free", None),
        ("bounded", 2),
        ("square+rounded", None),
        ("bounded+square+rounded", 1),
    ):
        v = Variant.parse(name, bound)
        assert Variant.parse(v.name, v.bound) == v


# -- the IR layer, the zoo and descriptions


@pytest.fixture(scope="module")
def dcn():
    return load("dcn_tiny")


def test_zoo_offsets_really_move(dcn):
    x = random_inputs(dcn, 8, seed=0)
    off = trace(dcn, x)["offsets"]
    frac = dcn.tensors["offsets"].qtype.frac
    assert frac == 2
    assert np.mean(off != 0) > 0.5  # not all zero
    assert np.any(off % 4 == 0) and np.any(off % 4 == 2) and np.any(off % 2 == 1)
    layer = dcn["dconv"]
    from codesign.models.deform import tap_positions

    y, xx, f = tap_positions(
        off, layer.kernel, layer.stride, layer.padding, layer.dilation, layer.variant, frac
    )
    beyond = (y <= -(1 << f)) | (y >= 32 << f) | (xx <= -(1 << f)) | (xx >= 32 << f)
    assert 0.01 < beyond.mean() < 0.2  # some samples leave the image


@pytest.mark.parametrize("net_name", ["dcn_tiny", "dcn_tiny_dw"])
@pytest.mark.parametrize(
    "variant",
    [
        Variant(),
        Variant(bound=1),
        Variant(shape=OffsetShape.SQUARE),
        Variant(rounded=True),
        Variant(shape=OffsetShape.SQUARE, bound=1, rounded=True),
    ],
    ids=lambda v: v.name,
)
def test_golden_layer_equals_the_function_and_stays_in_range(net_name, variant):
    net = with_variant(load(net_name), variant)
    (layer,) = deform_layers(net)
    x = random_inputs(net, 6, seed=7)
    t = trace(net, x)
    off_t = net.tensors[layer.inputs[1]]
    ref = deform_conv2d_fixed(
        t[layer.inputs[0]],
        t[layer.inputs[1]],
        layer.weight,
        layer.bias,
        layer.stride,
        layer.padding,
        layer.dilation,
        offset_frac=off_t.qtype.frac,
        variant=variant,
    )
    assert np.array_equal(t[layer.name], ref)
    out = net.tensors[layer.name]
    assert out.lo <= t[layer.name].min() and t[layer.name].max() <= out.hi
    if variant.shape is OffsetShape.SQUARE:
        assert off_t.shape[0] == 1


def test_square_projection_fits_the_free_offsets(dcn):
    """The square network's offset is the least-squares fit of the free offsets (up to the
    requantisation's rounding)."""
    sq = with_variant(dcn, Variant(shape=OffsetShape.SQUARE))
    x = random_inputs(dcn, 4, seed=2)
    free = trace(dcn, x)["offsets"] / 4.0
    got = trace(sq, x)["offsets"][:, 0] / 4.0
    ii, jj = np.divmod(np.arange(9), 3)
    sy, sx = (ii - 1)[None, :, None, None], (jj - 1)[None, :, None, None]
    fit = (sy * free[:, 0::2] + sx * free[:, 1::2]).sum(axis=1) / 12.0
    # requantisation of the free offsets and of the fit each round by at most half a step
    assert np.abs(got - np.clip(fit, -8, 7.75)).max() <= 0.25 + 9 * 2 * 0.125 / 12 + 1e-9


def test_save_and_load_round_trip(tmp_path, dcn):
    for net in (dcn, with_variant(dcn, Variant.parse("bounded+rounded", 2))):
        path, _ = save_description(net, tmp_path / f"{net.name}.yaml")
        again = load_description(path)
        x = random_inputs(net, 3, seed=1)
        assert np.array_equal(golden(again, x), golden(net, x))
        assert again["dconv"].variant == net["dconv"].variant


BASE = """format: 1
name: d
input: {shape: [2, 6, 6], type: uint8}
layers:
- {name: offc, op: conv2d, weight: %s, padding: 1}
- {name: offq, op: requant, multiplier: 1, shift: 4, type: 'fixed<6,4>'}
- {name: dc, op: deform_conv2d, inputs: [input, offq], weight: %s, padding: 1%s}
"""


def _describe(tmp_path, off_ch=18, extra="", inputs=None):
    w_off = np.ones((off_ch, 2, 3, 3), dtype=int).tolist()
    w = np.ones((3, 2, 3, 3), dtype=int).tolist()
    text = BASE % (w_off, w, extra)
    if inputs is not None:
        text = text.replace("inputs: [input, offq]", f"inputs: {inputs}")
    p = tmp_path / "d.yaml"
    p.write_text(text)
    return p


def test_a_good_description_loads(tmp_path):
    net = load_description(_describe(tmp_path, extra=", variant: bounded+rounded, bound: 2"))
    assert net["dc"].variant == Variant(bound=2, rounded=True)
    assert net.tensors["dc"].shape == (3, 6, 6)


@pytest.mark.parametrize(
    ("off_ch", "extra", "inputs", "field", "message"),
    [
        (
            17,
            "",
            None,
            "offset",
            r"must be a \(2·G·kh·kw = 2·G·3·3, 6, 6\) tensor for a free variant .* not shape "
            r"\(17, 6, 6\)",
        ),
        (18, ", variant: square", None, "offset", r"must be a \(G, 6, 6\) tensor"),
        (18, ", variant: bounded, bound: -1", None, "bound", r"must be at least 0, not -1"),
        (
            18,
            ", variant: bounde, bound: 1",
            None,
            "variant",
            r"must be 'free' or names from .* \(unknown 'bounde'\)",
        ),
        (18, ", variant: bounded", None, "bound", r"must be given exactly when"),
        (18, ", bound: 2", None, "bound", r"must be given exactly when"),
        (18, ", variant: 3", None, "variant", r"must be a name such as"),
        (18, "", "[input]", "inputs", r"must have 2 input\(s\), not 1"),
    ],
)
def test_bad_descriptions_name_the_layer_and_field(tmp_path, off_ch, extra, inputs, field, message):
    with pytest.raises(DescriptionError) as info:
        load_description(_describe(tmp_path, off_ch, extra, inputs))
    e = info.value
    assert e.layer == "dc" and e.field == field, str(e)
    assert re.search(message, str(e)), str(e)


def test_bad_description_on_the_command_line(tmp_path):
    import subprocess
    import sys

    p = _describe(tmp_path, 17)
    r = subprocess.run(
        [sys.executable, "-m", "codesign.cli", "info", str(p)], capture_output=True, text=True
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "dc" in lines[0] and "offset" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_the_worked_example_in_the_docs_runs(monkeypatch):
    doc = Path(__file__).parents[2] / "docs" / "deformable.md"
    blocks = re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", doc.read_text(), re.M | re.S)
    assert blocks, f"no python block in {doc}"
    monkeypatch.chdir(doc.parent)
    for block in blocks:
        exec(compile(block, str(doc), "exec"), {})


def test_real_offsets_round_to_the_networks_offsets(dcn):
    from codesign.models.deform.accuracy import real_offsets

    layer = dcn["dconv"]
    values = trace(dcn, random_inputs(dcn, 3, seed=4))
    real = real_offsets(dcn, layer, values)
    t = dcn.tensors["offsets"]
    # the requant rounds half to even and saturates into fixed<6,4>
    again = np.clip(np.round(real * 4), t.qtype.min, t.qtype.max)
    assert np.array_equal(again, values["offsets"])
    assert np.any(real * 4 != np.round(real * 4))  # the reference is not on the grid


@pytest.mark.parametrize("net_name", ["dcn_tiny", "dcn_tiny_dw"])
def test_variant_error_of_the_free_variant_is_within_the_documented_bound(net_name):
    """The free variant's only error is the offsets' rounding (and saturation, which dcn_tiny
    never reaches): docs/deformable.md's bound, Σ|w|·D·2**-F per output."""
    from codesign.models.deform.accuracy import variant_error

    net = load(net_name)
    layer = net["dconv"]
    e = variant_error(net, Variant(), frames=4)
    d = 255  # uint8 image: D = max(x, 0) - min(x, 0)
    bound = np.abs(layer.weight).reshape(layer.weight.shape[0], -1).sum(axis=1).max() * d / 4
    assert 0 < e.layer_max_abs <= bound
    worse = variant_error(net, Variant.parse("square+bounded+rounded", 1), frames=4)
    assert worse.layer_rel_rms > e.layer_rel_rms
