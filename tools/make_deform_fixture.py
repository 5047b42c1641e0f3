"""Write torchvision's deformable convolution on seeded cases: an outside reference.

Run with a throwaway venv outside the repository (torch and torchvision are never project
dependencies)::

    python3 -m venv /tmp/tvenv
    /tmp/tvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 numpy
    /tmp/tvenv/bin/python tools/make_deform_fixture.py
        [-o tests/fixtures/deform/torchvision_cases.npz] [--no-check] [--list]

It writes one ``.npz`` (a zip of ``.npy`` members, deflated, with fixed time stamps so two
runs give byte-identical files) holding, for case ``i`` (``p = f"case{i:02d}"``):

- ``p.input`` (B, C, H, W), ``p.offset`` (B, 2*G*kh*kw, OH, OW), ``p.weight``
  (OC, C/groups, kh, kw), ``p.bias`` (OC,) when the case has one, ``p.mask``
  (B, G*kh*kw, OH, OW) when it has one, ``p.out`` (B, OC, OH, OW): all float64, ``p.out``
  being ``torchvision.ops.deform_conv2d`` on the others in ``torch.float64`` on the CPU;
- ``p.params``: int64 ``[stride_h, stride_w, pad_h, pad_w, dil_h, dil_w]``;
- ``p.name``: a 0-d unicode array naming the case (for test ids).

``groups`` is ``C // weight.shape[1]`` and the offset groups ``G`` are
``offset.shape[1] // (2*kh*kw)``, as torchvision infers them. Channel layouts (torchvision's,
checked here against an independent numpy loop): offset channel ``g*2*kh*kw + 2*k`` is the
row (y) offset and ``g*2*kh*kw + 2*k + 1`` the column (x) offset of kernel tap
``k = i*kw + j`` for offset group ``g``; mask channel ``g*kh*kw + k``; input channel ``c``
belongs to offset group ``c // (C // G)``. Tap ``(i, j)`` of output ``(oy, ox)`` samples at
``y = (oy*stride_h - pad_h + i*dil_h) + offset_y``, ``x`` likewise; the bilinear sample is 0
when ``y <= -1``, ``y >= H``, ``x <= -1`` or ``x >= W``, and otherwise sums the in-range
corners of the 2x2 neighbourhood ``floor(y), floor(y)+1`` by ``floor(x), floor(x)+1``.

Everything is seeded: case ``i`` draws all its tensors from ``numpy.random.default_rng(1000
+ i)``; torch runs on one thread. Unless ``--no-check``, every case is recomputed by a
numpy loop written from the contract above: an *exact* case (integer data, offsets on the
1/4 grid, mask absent or on the 1/8 grid: every product and partial sum is a multiple of
1/128 far below 2**53, so any summation order gives the same float64) must agree bit for
bit and have ``out * 128`` integral; the others within 1e-12 relative to the output's
magnitude. Cases with zero offsets and no mask are also checked against
``torch.nn.functional.conv2d``.
"""

from __future__ import annotations

import argparse
import enum
import io
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import deform_conv2d

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tests/fixtures/deform/torchvision_cases.npz"
SEED_BASE = 1000
TINY = 1e-3  # distance of the "just inside / just outside" border positions


class Data(enum.Enum):
    """Values of input, weight and bias."""

    INT = "int"  # input 0..255, weight -8..7, bias -256..255 (quantized-like)
    FLOAT = "float"  # input and bias standard normal, weight 0.5 * standard normal


class Mask(enum.Enum):
    """DCNv2 modulation mask."""

    NONE = "none"
    UNIT = "unit"  # uniform in [0, 1)
    EIGHTHS = "eighths"  # k/8 for k in 0..8 (exact)
    WIDE = "wide"  # uniform in [-1, 2): not a sigmoid's range, torchvision takes it anyway


class Offset(enum.Enum):
    """How the offsets (or the sample positions they lead to) are drawn."""

    ZERO = "zero"
    INT = "int"  # integers in [-2, 2]
    HALF = "half"  # k + 0.5 for k in [-3, 2]
    QUARTER = "quarter"  # multiples of 1/4 in [-2.5, 2.5]
    RAND = "rand"  # uniform in [-2.5, 2.5)
    EDGE_Y = "edge_y"  # y on an exact border position, x anywhere in [-1, W] on the 1/4 grid
    EDGE_X = "edge_x"  # the same with x and y swapped
    EDGE_XY = "edge_xy"  # both on exact border positions (corners)
    NEAR_Y = "near_y"  # y on a border position or within TINY of one, x random in range
    NEAR_X = "near_x"
    NEAR_XY = "near_xy"
    FAR = "far"  # both offsets with |offset| >= size + 3: every sample outside
    FAR_MIXED = "far_mixed"  # per tap: one coordinate far, or a quarter-grid offset
    MIXED = "mixed"  # per tap: any of zero, int, half, quarter, rand, edge, near, far
    MIXED_EXACT = "mixed_exact"  # per tap: any of zero, int, half, quarter, edge, far


EXACT_OFFSETS = {
    Offset.ZERO,
    Offset.INT,
    Offset.HALF,
    Offset.QUARTER,
    Offset.EDGE_Y,
    Offset.EDGE_X,
    Offset.EDGE_XY,
    Offset.FAR,
    Offset.FAR_MIXED,
    Offset.MIXED_EXACT,
}
#: what a tap of a MIXED and of a MIXED_EXACT case is drawn as (uniformly)
MIXED_KINDS = [
    *(Offset.ZERO, Offset.INT, Offset.HALF, Offset.QUARTER, Offset.RAND),
    *(Offset.EDGE_XY, Offset.NEAR_Y, Offset.NEAR_X, Offset.FAR),
]
MIXED_EXACT_KINDS = [
    *(Offset.ZERO, Offset.INT, Offset.HALF, Offset.QUARTER),
    *(Offset.EDGE_Y, Offset.EDGE_X, Offset.EDGE_XY, Offset.FAR),
]


@dataclass(frozen=True)
class Case:
    """One deformable convolution: shapes, geometry, and how its tensors are drawn."""

    name: str
    batch: int
    channels: int
    out_channels: int
    size: tuple[int, int]  # H, W
    kernel: tuple[int, int]  # kh, kw
    offset: Offset
    data: Data
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    offset_groups: int = 1
    bias: bool = False
    mask: Mask = Mask.NONE

    def __post_init__(self) -> None:
        c, oc, g, og = self.channels, self.out_channels, self.groups, self.offset_groups
        if c % g or oc % g:
            raise ValueError(f"{self.name}: groups must divide channels, not {g!r}")
        if c % og:
            raise ValueError(f"{self.name}: offset_groups must divide channels, not {og!r}")
        if min(self.out_size) < 1:
            raise ValueError(f"{self.name}: output size must be positive, not {self.out_size}")

    @property
    def out_size(self) -> tuple[int, int]:
        return tuple(
            (n + 2 * p - d * (k - 1) - 1) // s + 1
            for n, p, d, k, s in zip(
                self.size, self.padding, self.dilation, self.kernel, self.stride, strict=True
            )
        )

    @property
    def exact(self) -> bool:
        return (
            self.data is Data.INT
            and self.offset in EXACT_OFFSETS
            and self.mask in (Mask.NONE, Mask.EIGHTHS)
        )

    @property
    def params(self) -> np.ndarray:
        return np.array([*self.stride, *self.padding, *self.dilation], dtype=np.int64)


INT, FLT = Data.INT, Data.FLOAT  # short names for the table below
OF = Offset

CASES: list[Case] = [
    # kernel shapes and offset kinds, stride 1
    Case("zero_3x3_float_pad1", 1, 2, 3, (5, 6), (3, 3), OF.ZERO, FLT, padding=(1, 1)),
    Case("zero_1x1_int_bias", 2, 3, 2, (4, 5), (1, 1), OF.ZERO, INT, bias=True),
    Case("int_3x3_int_bias", 1, 2, 2, (6, 6), (3, 3), OF.INT, INT, padding=(1, 1), bias=True),
    Case("half_3x3_int", 1, 2, 3, (5, 7), (3, 3), OF.HALF, INT, padding=(1, 1)),
    Case("quarter_3x3_int_bias", 1, 3, 2, (6, 5), (3, 3), OF.QUARTER, INT, bias=True),
    Case("rand_3x3_float_bias", 1, 3, 2, (7, 7), (3, 3), OF.RAND, FLT, padding=(1, 1), bias=True),
    Case("rand_2x3_float", 1, 2, 2, (5, 6), (2, 3), OF.RAND, FLT, padding=(1, 1)),
    Case("rand_3x1_float_bias", 2, 2, 3, (6, 4), (3, 1), OF.RAND, FLT, padding=(1, 0), bias=True),
    Case("quarter_2x3_int", 1, 2, 2, (4, 6), (2, 3), OF.QUARTER, INT, padding=(0, 1)),
    Case("quarter_3x1_int_mask8", 1, 3, 2, (6, 5), (3, 1), OF.QUARTER, INT, mask=Mask.EIGHTHS),
    Case("rand_1x1_float_mask", 1, 3, 4, (5, 5), (1, 1), OF.RAND, FLT, mask=Mask.UNIT),
    # stride, padding, dilation
    Case("rand_s2_p1", 1, 2, 2, (7, 8), (3, 3), OF.RAND, FLT, stride=(2, 2), padding=(1, 1)),
    Case(
        "quarter_s21_p02_int", 1, 2, 2, (7, 5), (3, 3), OF.QUARTER, INT,
        stride=(2, 1), padding=(0, 2), bias=True,
    ),
    Case(
        "rand_s12_p20_d21", 1, 2, 3, (6, 8), (3, 3), OF.RAND, FLT,
        stride=(1, 2), padding=(2, 0), dilation=(2, 1),
    ),
    Case(
        "half_d2_p2_int_bias", 1, 2, 2, (6, 6), (3, 3), OF.HALF, INT,
        padding=(2, 2), dilation=(2, 2), bias=True,
    ),
    Case(
        "rand_2x3_s2_d12_mask", 1, 2, 2, (7, 8), (2, 3), OF.RAND, FLT,
        stride=(2, 2), padding=(1, 1), dilation=(1, 2), mask=Mask.UNIT,
    ),
    Case("rand_d2_p0", 1, 2, 2, (9, 8), (3, 3), OF.RAND, FLT, dilation=(2, 2)),
    # groups and depthwise
    Case(
        "rand_groups2_bias", 1, 4, 4, (5, 5), (3, 3), OF.RAND, FLT,
        padding=(1, 1), groups=2, bias=True,
    ),
    Case("quarter_groups2_oc2_int", 1, 4, 2, (5, 6), (3, 3), OF.QUARTER, INT, groups=2),
    Case(
        "half_groups2_c2_oc4_int", 1, 2, 4, (5, 5), (2, 3), OF.HALF, INT,
        padding=(1, 1), groups=2,
    ),
    Case("rand_depthwise3", 1, 3, 3, (6, 6), (3, 3), OF.RAND, FLT, padding=(1, 1), groups=3),
    Case(
        "quarter_depthwise4_int_mask8_bias", 1, 4, 4, (5, 5), (3, 3), OF.QUARTER, INT,
        padding=(1, 1), groups=4, bias=True, mask=Mask.EIGHTHS,
    ),
    # offset groups
    Case("rand_ogroups2", 1, 4, 2, (5, 6), (3, 3), OF.RAND, FLT, padding=(1, 1), offset_groups=2),
    Case(
        "quarter_ogroups4_int_mask8", 1, 4, 3, (5, 5), (3, 3), OF.QUARTER, INT,
        offset_groups=4, mask=Mask.EIGHTHS,
    ),
    Case(
        "rand_groups2_ogroups2_mask_bias", 1, 4, 4, (5, 5), (3, 3), OF.RAND, FLT,
        padding=(1, 1), groups=2, offset_groups=2, bias=True, mask=Mask.UNIT,
    ),
    Case(
        "rand_depthwise2_ogroups2_2x3_s2", 1, 2, 2, (7, 7), (2, 3), OF.RAND, FLT,
        stride=(2, 2), padding=(1, 1), groups=2, offset_groups=2,
    ),
    # borders
    Case("edge_y_int", 1, 2, 2, (5, 5), (3, 3), OF.EDGE_Y, INT, padding=(1, 1)),
    Case("near_y_float", 1, 2, 2, (5, 6), (3, 3), OF.NEAR_Y, FLT, padding=(1, 1)),
    Case("edge_x_int_bias", 1, 2, 2, (5, 5), (3, 3), OF.EDGE_X, INT, padding=(1, 1), bias=True),
    Case("near_x_float", 1, 2, 2, (6, 5), (3, 3), OF.NEAR_X, FLT, padding=(1, 1)),
    Case("near_xy_float_mask", 1, 2, 2, (4, 4), (3, 3), OF.NEAR_XY, FLT, mask=Mask.UNIT),
    Case(
        "edge_xy_groups2_int", 1, 4, 4, (4, 5), (3, 3), OF.EDGE_XY, INT,
        padding=(1, 1), groups=2, bias=True,
    ),
    Case(
        "near_y_s2_p2_d2_float", 1, 2, 2, (7, 7), (3, 3), OF.NEAR_Y, FLT,
        stride=(2, 2), padding=(2, 2), dilation=(2, 2), bias=True,
    ),
    Case("far_bias", 1, 2, 3, (5, 5), (3, 3), OF.FAR, INT, padding=(1, 1), bias=True),
    Case("far_mixed_float", 1, 2, 2, (6, 6), (3, 3), OF.FAR_MIXED, FLT, padding=(1, 1)),
    Case(
        "far_mixed_ogroups2_int", 1, 4, 2, (5, 5), (3, 3), OF.FAR_MIXED, INT,
        padding=(1, 1), offset_groups=2,
    ),
    # batch 2, everything at once
    Case(
        "mixed_b2_float_mask_bias", 2, 3, 3, (6, 6), (3, 3), OF.MIXED, FLT,
        padding=(1, 1), bias=True, mask=Mask.UNIT,
    ),
    Case(
        "mixed_exact_b2_int_g2_og2_mask8", 2, 4, 4, (5, 5), (3, 3), OF.MIXED_EXACT, INT,
        padding=(1, 1), groups=2, offset_groups=2, bias=True, mask=Mask.EIGHTHS,
    ),
    Case("rand_mask_wide", 1, 2, 2, (5, 5), (3, 3), OF.RAND, FLT, padding=(1, 1), mask=Mask.WIDE),
    Case("rand_minimal_c1_3x3", 1, 1, 1, (3, 3), (3, 3), OF.RAND, FLT, padding=(1, 1)),
    Case(
        "mixed_exact_h3_w9_2x3_int", 1, 2, 2, (3, 9), (2, 3), OF.MIXED_EXACT, INT,
        padding=(1, 1), bias=True,
    ),
    Case(
        "mixed_h9_w4_3x1_s2_float_bias", 1, 2, 2, (9, 4), (3, 1), OF.MIXED, FLT,
        stride=(2, 1), padding=(1, 0), bias=True,
    ),
]  # fmt: skip


# -- drawing the tensors -----------------------------------------------------------------------


def _edge_positions(n: int) -> np.ndarray:
    """Exact (1/4 grid) sample positions on and around the border of an axis of size n."""
    return np.array([-1.25, -1, -0.75, -0.5, -0.25, 0, n - 1, n - 0.75, n - 0.5, n - 0.25, n])


def _near_positions(n: int) -> np.ndarray:
    """Border positions and positions within TINY of them (inside and outside)."""
    t = TINY
    return np.array(
        [-1 - t, -1, -1 + t, -0.5, -t, 0, t, n - 1 - t, n - 1, n - 1 + t, n - 0.5, n - t, n, n + t]
    )


def _taps(case: Case, axis: int) -> np.ndarray:
    """Base sample positions ``o*s - p + i*d`` along ``axis`` (0: y, 1: x), broadcastable
    to (1, G, kh, kw, OH, OW)."""
    s, p, d = case.stride[axis], case.padding[axis], case.dilation[axis]
    o = np.arange(case.out_size[axis]) * s - p
    i = np.arange(case.kernel[axis]) * d
    if axis == 0:
        return (i[:, None, None, None] + o[None, None, :, None])[None, None]
    return (i[None, :, None, None] + o[None, None, None, :])[None, None]


def _offsets(case: Case, rng: np.random.Generator) -> np.ndarray:
    """Offsets (B, 2*G*kh*kw, OH, OW) drawn as ``case.offset`` says."""
    b, g = case.batch, case.offset_groups
    kh, kw = case.kernel
    oh, ow = case.out_size
    shape = (b, g, kh, kw, oh, ow)
    h, w = case.size
    base = (_taps(case, 0), _taps(case, 1))
    n = (h, w)

    def plain(kind: Offset) -> np.ndarray:
        if kind is Offset.ZERO:
            return np.zeros(shape)
        if kind is Offset.INT:
            return rng.integers(-2, 3, shape).astype(np.float64)
        if kind is Offset.HALF:
            return rng.integers(-3, 3, shape) + 0.5
        if kind is Offset.QUARTER:
            return rng.integers(-10, 11, shape) / 4
        if kind is Offset.RAND:
            return rng.uniform(-2.5, 2.5, shape)
        raise AssertionError(kind)

    def at(axis: int, positions: np.ndarray) -> np.ndarray:
        # offsets that move every tap to one of ``positions`` along ``axis``
        return rng.choice(positions, shape) - base[axis]

    def anywhere(axis: int, exact: bool) -> np.ndarray:
        # offsets to positions spread over [-1, n] (partly outside, partly on the border)
        if exact:
            pos = rng.integers(-4, 4 * n[axis] + 1, shape) / 4
        else:
            pos = rng.uniform(-1.0, n[axis], shape)
        return pos - base[axis]

    def far(axis: int) -> np.ndarray:
        # |offset| >= n + 3: the position is outside whatever the base (base in [-2, n + 1])
        mag = n[axis] + 3 + rng.integers(0, 4 * n[axis] + 1, shape) / 4
        return np.where(rng.random(shape) < 0.5, -mag, mag)

    def kind_pair(kind: Offset) -> tuple[np.ndarray, np.ndarray]:
        if kind in (Offset.ZERO, Offset.INT, Offset.HALF, Offset.QUARTER, Offset.RAND):
            return plain(kind), plain(kind)
        if kind is Offset.EDGE_Y:
            return at(0, _edge_positions(h)), anywhere(1, True)
        if kind is Offset.EDGE_X:
            return anywhere(0, True), at(1, _edge_positions(w))
        if kind is Offset.EDGE_XY:
            return at(0, _edge_positions(h)), at(1, _edge_positions(w))
        if kind is Offset.NEAR_Y:
            return at(0, _near_positions(h)), anywhere(1, False)
        if kind is Offset.NEAR_X:
            return anywhere(0, False), at(1, _near_positions(w))
        if kind is Offset.NEAR_XY:
            return at(0, _near_positions(h)), at(1, _near_positions(w))
        if kind is Offset.FAR:
            return far(0), far(1)
        raise AssertionError(kind)

    def choose(kinds: list[Offset]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [kind_pair(k) for k in kinds]
        pick = rng.choice(len(kinds), shape)
        dy = np.choose(pick, [p[0] for p in pairs])
        dx = np.choose(pick, [p[1] for p in pairs])
        return dy, dx

    if case.offset is Offset.FAR_MIXED:
        q = plain(Offset.QUARTER)
        fy, fx = far(0), far(1)
        pick = rng.integers(0, 4, shape)  # 0: y far, 1: x far, 2 and 3: quarter offsets
        dy = np.where(pick == 0, fy, q)
        dx = np.where(pick == 1, fx, plain(Offset.QUARTER))
    elif case.offset is Offset.MIXED:
        dy, dx = choose(MIXED_KINDS)
    elif case.offset is Offset.MIXED_EXACT:
        dy, dx = choose(MIXED_EXACT_KINDS)
    else:
        dy, dx = kind_pair(case.offset)
    off = np.stack([dy, dx], axis=4)  # (B, G, kh, kw, 2, OH, OW)
    return np.ascontiguousarray(off.reshape(b, 2 * g * kh * kw, oh, ow), dtype=np.float64)


def _tensors(case: Case, seed: int) -> dict[str, np.ndarray]:
    """The case's inputs, drawn from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    b, c, oc = case.batch, case.channels, case.out_channels
    h, w = case.size
    kh, kw = case.kernel
    oh, ow = case.out_size
    t: dict[str, np.ndarray] = {}
    if case.data is Data.INT:
        t["input"] = rng.integers(0, 256, (b, c, h, w)).astype(np.float64)
        t["weight"] = rng.integers(-8, 8, (oc, c // case.groups, kh, kw)).astype(np.float64)
        bias = rng.integers(-256, 256, oc).astype(np.float64)
    else:
        t["input"] = rng.standard_normal((b, c, h, w))
        t["weight"] = rng.standard_normal((oc, c // case.groups, kh, kw)) * 0.5
        bias = rng.standard_normal(oc)
    t["offset"] = _offsets(case, rng)
    if case.bias:
        t["bias"] = bias
    mshape = (b, case.offset_groups * kh * kw, oh, ow)
    if case.mask is Mask.UNIT:
        t["mask"] = rng.random(mshape)
    elif case.mask is Mask.EIGHTHS:
        t["mask"] = rng.integers(0, 9, mshape) / 8
    elif case.mask is Mask.WIDE:
        t["mask"] = rng.uniform(-1.0, 2.0, mshape)
    return t


# -- torchvision and the independent check -----------------------------------------------------


def _torchvision(case: Case, t: dict[str, np.ndarray]) -> np.ndarray:
    def tensor(key: str) -> torch.Tensor | None:
        return torch.from_numpy(t[key]).to(torch.float64) if key in t else None

    out = deform_conv2d(
        tensor("input"),
        tensor("offset"),
        tensor("weight"),
        bias=tensor("bias"),
        stride=case.stride,
        padding=case.padding,
        dilation=case.dilation,
        mask=tensor("mask"),
    )
    assert out.dtype == torch.float64
    return out.numpy().copy()


def _bilinear(img: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Sample ``img`` (H, W) at (y, x) as torchvision's CPU kernel does."""
    h, w = img.shape
    outside = (y <= -1) | (y >= h) | (x <= -1) | (x >= w)
    y0, x0 = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    total = np.zeros(y.shape)
    for yy, xx, wgt in ((y0, x0, hy * hx), (y0, x0 + 1, hy * lx), (y0 + 1, x0, ly * hx)):
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w) & ~outside
        total = total + wgt * np.where(ok, img[yy.clip(0, h - 1), xx.clip(0, w - 1)], 0.0)
    yy, xx = y0 + 1, x0 + 1
    ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w) & ~outside
    total = total + ly * lx * np.where(ok, img[yy.clip(0, h - 1), xx.clip(0, w - 1)], 0.0)
    return np.where(outside, 0.0, total)


def _reference(case: Case, t: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, int]]:
    """The contract in the module docstring as a plain numpy loop, and counts of the sample
    points by where they fall (inside, on the border ring, outside)."""
    x, off, wt = t["input"], t["offset"], t["weight"]
    b, c, h, w = x.shape
    oc, cg, kh, kw = wt.shape
    groups, g = c // cg, off.shape[1] // (2 * kh * kw)
    oh, ow = off.shape[2:]
    sh, sw, ph, pw, dh, dw = case.params
    oy = np.arange(oh)[:, None] * sh - ph
    ox = np.arange(ow)[None, :] * sw - pw
    out = np.zeros((b, oc, oh, ow))
    where = {"inside": 0, "border": 0, "outside": 0}
    for n in range(b):
        for o in range(oc):
            acc = np.zeros((oh, ow))
            for ci in range(cg):
                ch = (o // (oc // groups)) * cg + ci
                og = ch // (c // g)
                for i in range(kh):
                    for j in range(kw):
                        k = i * kw + j
                        y = (oy + i * dh) + off[n, og * 2 * kh * kw + 2 * k]
                        xx = (ox + j * dw) + off[n, og * 2 * kh * kw + 2 * k + 1]
                        v = _bilinear(x[n, ch], y, xx)
                        if "mask" in t:
                            v = v * t["mask"][n, og * kh * kw + k]
                        acc = acc + wt[o, ci, i, j] * v
                        if n == 0 and o == 0:
                            out_ = (y <= -1) | (y >= h) | (xx <= -1) | (xx >= w)
                            ins = (y >= 0) & (y <= h - 1) & (xx >= 0) & (xx <= w - 1)
                            where["outside"] += int(out_.sum())
                            where["inside"] += int(ins.sum())
                            where["border"] += int((~out_ & ~ins).sum())
            out[n, o] = acc + (t["bias"][o] if "bias" in t else 0.0)
    return out, where


def _check(case: Case, t: dict[str, np.ndarray], out: np.ndarray) -> str:
    ref, where = _reference(case, t)
    if case.exact:
        if not np.array_equal(ref, out):
            raise RuntimeError(f"{case.name}: numpy loop differs from torchvision (exact case)")
        if not np.array_equal(out * 128, np.round(out * 128)):
            raise RuntimeError(f"{case.name}: out * 128 is not integral (exact case)")
        diff = "exact"
    else:
        err = float(np.max(np.abs(ref - out)))
        scale = max(1.0, float(np.max(np.abs(out))))
        if err > 1e-12 * scale:
            raise RuntimeError(f"{case.name}: numpy loop differs from torchvision by {err:.3g}")
        diff = f"{err:.1e}"
    if case.offset is Offset.ZERO and "mask" not in t:
        conv = torch.nn.functional.conv2d(
            torch.from_numpy(t["input"]),
            torch.from_numpy(t["weight"]),
            torch.from_numpy(t["bias"]) if "bias" in t else None,
            stride=case.stride,
            padding=case.padding,
            dilation=case.dilation,
            groups=case.groups,
        ).numpy()
        if not np.allclose(conv, out, rtol=0, atol=1e-12 * max(1.0, np.abs(out).max())):
            raise RuntimeError(f"{case.name}: zero offsets differ from conv2d")
        diff += ", =conv2d"
    return f"{diff} (taps in/border/out {where['inside']}/{where['border']}/{where['outside']})"


# -- writing -----------------------------------------------------------------------------------


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``numpy.savez_compressed`` with fixed member time stamps (byte-reproducible)."""
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())
    os.replace(tmp, path)


def _describe(i: int, case: Case) -> str:
    b, c, oc = case.batch, case.channels, case.out_channels
    h, w = case.size
    kh, kw = case.kernel
    parts = [
        f"case{i:02d}",
        case.name,
        f"x({b},{c},{h},{w})",
        f"k{kh}x{kw}",
        f"oc{oc}",
        f"s{case.stride[0]},{case.stride[1]}",
        f"p{case.padding[0]},{case.padding[1]}",
        f"d{case.dilation[0]},{case.dilation[1]}",
        f"g{case.groups}",
        f"og{case.offset_groups}",
        f"off={case.offset.value}",
        f"data={case.data.value}",
        f"mask={case.mask.value}",
        "bias" if case.bias else "nobias",
        "exact" if case.exact else "float",
    ]
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", type=Path, default=DEFAULT_OUT, help="the .npz to write")
    ap.add_argument("--no-check", action="store_true", help="skip the numpy-loop check")
    ap.add_argument("--list", action="store_true", help="list the cases and stop")
    args = ap.parse_args(argv)
    if args.list:
        for i, case in enumerate(CASES):
            print(_describe(i, case))
        return 0
    torch.set_num_threads(1)
    arrays: dict[str, np.ndarray] = {}
    for i, case in enumerate(CASES):
        t = _tensors(case, SEED_BASE + i)
        out = _torchvision(case, t)
        p = f"case{i:02d}"
        for key in ("input", "offset", "weight", "bias", "mask"):
            if key in t:
                arrays[f"{p}.{key}"] = t[key]
        arrays[f"{p}.out"] = out
        arrays[f"{p}.params"] = case.params
        arrays[f"{p}.name"] = np.array(case.name)
        note = "" if args.no_check else "  " + _check(case, t, out)
        print(_describe(i, case) + note)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _write_npz(args.out, arrays)
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(CASES)} cases); "
        f"torch {torch.__version__}, torchvision "
        f"{sys.modules['torchvision'].__version__}, numpy {np.__version__}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
