"""Fixed-point deformable convolution: every step exact or rounded through :mod:`..arith`.

The arithmetic (``docs/deformable.md`` works an example through it):

1. **Offsets** are integers with ``frac`` fractional bits (units of ``2**-frac`` pixel): the
   offset convolution's accumulators become them in the network's ``requant`` layer, whose
   output type ``fixed<b,frac>`` names ``frac`` (a plain integer type means ``frac = 0``).
2. **Variant** (:class:`Variant`), in this order: a *square* offset (one value ``d`` per output
   pixel and offset group) becomes per-tap offsets ``((i − ci)·dh·d, (j − cj)·dw·d)`` around
   the kernel's centre ``(ci, cj)`` (taps at ``p + k·(1 + d)``: a learned dilation; ``d = 0``
   is the plain convolution); a *bound* ``B`` clamps each offset to ``[−B, B]`` pixels; a
   *rounded* offset is rounded to whole pixels (``arith.round_shift``, ties to even): the
   position is a whole pixel and the sample a single corner.
3. **Positions** ``Y = ((oy·sh − ph + i·dh) << frac) + Δy`` (and ``X``), exact integers.
4. **Sample**: 0 unless ``−2**frac < Y < H·2**frac`` and likewise ``X``; else with
   ``y0 = Y >> frac`` (floor) and ``fy = Y − (y0 << frac)`` (``0 ≤ fy < 2**frac``), the corner
   weights ``(2**frac − fy)·(2**frac − fx)``, ``(2**frac − fy)·fx``, ``fy·(2**frac − fx)``,
   ``fy·fx`` are exact unsigned integers of ``2·frac + 1`` bits that sum to ``2**(2·frac)``;
   corners outside the image contribute 0. The sample is the exact integer
   ``Σ weight·x[corner]`` in units of ``2**-(2·frac)``: no rounding at all. A rounded
   variant's sample is its one corner times ``2**(2·frac)`` (a shift), in the same units, so
   that every variant of a layer feeds the same bias and requantisation.
5. **Modulation** (DCNv2, numpy function only): an unsigned mask with ``mask_frac`` bits
   multiplies the sample exactly (units ``2**-(2·frac + mask_frac)``).
6. **Accumulation** ``acc[o] = bias[o] + Σ_c Σ_k weight[o, c, k]·sample[c, k]`` in exact
   integers (so its order does not matter; the hardware adds channel-major, tap-minor);
   ``bias`` is in accumulator units.
7. **Requantisation** is the next layer's (``requant`` or ``multithreshold``), which folds the
   accumulator's ``2**-(2·frac)`` into its multiplier and shift or thresholds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from ..arith import round_shift
from ..dataflow import conv_out_size
from ..qtype import Rounding
from .reference import pair, tap_grid

__all__ = [
    "VARIANT_NAMES",
    "OffsetShape",
    "Variant",
    "deform_conv2d_fixed",
    "offset_channels",
    "sample_fixed",
    "tap_offsets",
    "tap_positions",
]


class OffsetShape(enum.Enum):
    """How many numbers an output pixel's offsets are."""

    FREE = "free"  #: a (Δy, Δx) per tap and offset group: 2·G·kh·kw channels
    SQUARE = "square"  #: one scalar per offset group (a learned dilation): G channels


#: The names a variant is spelled with, joined by ``+`` (``square+bounded+rounded``).
VARIANT_NAMES = ("free", "bounded", "square", "rounded")


@dataclass(frozen=True)
class Variant:
    """A deformable convolution's offset variant (CoDeNet; the co-design paper).

    Parameters
    ----------
    shape
        :data:`OffsetShape.FREE` or :data:`OffsetShape.SQUARE`.
    bound
        Clamp every tap offset to ``[-bound, bound]`` pixels; None for no clamp.
    rounded
        Round offsets to whole pixels: one fetch per tap, no interpolation.
    """

    shape: OffsetShape = OffsetShape.FREE
    bound: int | None = None
    rounded: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.shape, OffsetShape):
            raise TypeError(f"shape must be an OffsetShape, not {self.shape!r}")
        b = self.bound
        if b is not None and (not isinstance(b, int | np.integer) or isinstance(b, bool)):
            raise TypeError(f"bound must be an int number of pixels or None, not {b!r}")
        if b is not None and b < 0:
            raise ValueError(f"bound must be at least 0, not {b!r}")
        if not isinstance(self.rounded, bool):
            raise TypeError(f"rounded must be a bool, not {self.rounded!r}")

    @classmethod
    def parse(cls, name: str, bound: int | None = None) -> Variant:
        """The variant named ``name``: ``free``, or any of ``bounded``, ``square``, ``rounded``
        joined by ``+``. ``bounded`` needs ``bound`` (pixels); a bound without ``bounded`` is
        an error, so that a typo cannot silently drop the clamp."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"variant must be a name such as 'square+bounded', not {name!r}")
        parts = name.split("+")
        for p in parts:
            if p not in VARIANT_NAMES:
                raise ValueError(
                    f"variant must be 'free' or names from {list(VARIANT_NAMES[1:])} joined by "
                    f"'+', not {name!r} (unknown {p!r})"
                )
        if len(set(parts)) != len(parts) or ("free" in parts and len(parts) > 1):
            raise ValueError(f"variant must name each part once and 'free' alone, not {name!r}")
        if ("bounded" in parts) != (bound is not None):
            raise ValueError(
                f"bound must be given exactly when the variant is bounded, not bound={bound!r} "
                f"with variant {name!r}"
            )
        return cls(
            shape=OffsetShape.SQUARE if "square" in parts else OffsetShape.FREE,
            bound=bound,
            rounded="rounded" in parts,
        )

    @property
    def name(self) -> str:
        parts = [
            p
            for p, on in (
                ("bounded", self.bound is not None),
                ("square", self.shape is OffsetShape.SQUARE),
                ("rounded", self.rounded),
            )
            if on
        ]
        return "+".join(parts) or "free"


def offset_channels(variant: Variant, groups: int, kernel: tuple[int, int]) -> int:
    """Offset channels per output pixel: ``2·G·kh·kw`` (free) or ``G`` (square)."""
    if variant.shape is OffsetShape.SQUARE:
        return groups
    return 2 * groups * kernel[0] * kernel[1]


def tap_offsets(
    offset: np.ndarray,
    kernel: tuple[int, int],
    dilation: tuple[int, int],
    variant: Variant,
    frac: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-tap fixed-point offsets after the variant: ``(dy, dx, frac')``.

    ``offset`` is ``(N, channels, Ho, Wo)`` integers in units ``2**-frac``; ``dy``, ``dx`` are
    ``(N, G, kh·kw, Ho, Wo)`` int64 in units ``2**-frac'`` (``frac' = 0`` when rounded).
    """
    kh, kw = kernel
    k = kh * kw
    off = np.asarray(offset, dtype=np.int64)
    n, ch, ho, wo = off.shape
    if variant.shape is OffsetShape.SQUARE:
        if kh % 2 == 0 or kw % 2 == 0:
            raise ValueError(f"a square offset needs an odd kernel, not {kernel}")
        ii, jj = np.divmod(np.arange(k), kw)
        sy = ((ii - kh // 2) * dilation[0]).astype(np.int64)[None, None, :, None, None]
        sx = ((jj - kw // 2) * dilation[1]).astype(np.int64)[None, None, :, None, None]
        d = off[:, :, None]
        dy, dx = sy * d, sx * d
    else:
        off = off.reshape(n, ch // (2 * k), k, 2, ho, wo)
        dy, dx = off[:, :, :, 0], off[:, :, :, 1]
    if variant.bound is not None:
        lim = np.int64(variant.bound) << frac
        dy, dx = np.clip(dy, -lim, lim), np.clip(dx, -lim, lim)
    if variant.rounded:
        dy = round_shift(dy, frac, Rounding.HALF_EVEN)
        dx = round_shift(dx, frac, Rounding.HALF_EVEN)
        frac = 0
    return np.ascontiguousarray(dy), np.ascontiguousarray(dx), frac


def tap_positions(
    offset,
    kernel,
    stride,
    padding,
    dilation,
    variant: Variant,
    frac: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Sample positions ``(Y, X, frac')``: ``(N, G, kh·kw, Ho, Wo)`` int64 in units
    ``2**-frac'``, the variant applied (see the module's steps 2-3)."""
    dy, dx, frac = tap_offsets(offset, kernel, dilation, variant, frac)
    ho, wo = dy.shape[-2:]
    kh, kw = kernel
    by = tap_grid(ho, kh, stride[0], padding[0], dilation[0])
    bx = tap_grid(wo, kw, stride[1], padding[1], dilation[1])
    base_y = np.repeat(by, kw, axis=0)[:, :, None] << frac
    base_x = np.tile(bx, (kh, 1))[:, None, :] << frac
    return base_y + dy, base_x + dx, frac


def corner_weights(y: np.ndarray, x: np.ndarray, frac: int, h: int, w: int):
    """The four corners of fixed-point positions: a list of ``(row, col, weight)`` with
    ``weight`` 0 where the corner contributes nothing (sample outside, corner outside the
    image, or a zero bilinear weight)."""
    one = np.int64(1) << frac
    valid = (y > -one) & (y < h * one) & (x > -one) & (x < w * one)
    y0, x0 = y >> frac, x >> frac
    fy, fx = y - (y0 << frac), x - (x0 << frac)
    out = []
    for dy, dx, wgt in (
        (0, 0, (one - fy) * (one - fx)),
        (0, 1, (one - fy) * fx),
        (1, 0, fy * (one - fx)),
        (1, 1, fy * fx),
    ):
        yc, xc = y0 + dy, x0 + dx
        ok = valid & (yc >= 0) & (yc < h) & (xc >= 0) & (xc < w)
        out.append((yc, xc, np.where(ok, wgt, 0)))
    return out


def sample_fixed(x: np.ndarray, y: np.ndarray, xx: np.ndarray, frac: int, groups: int):
    """Bilinear samples of integer ``x`` (N, C, H, W) at positions ``y``, ``xx``
    (N, G, K, Ho, Wo) in units ``2**-frac``: exact int64 (N, C, K, Ho, Wo) in units
    ``2**-(2·frac)``."""
    x = np.asarray(x, dtype=np.int64)
    n, c, h, w = x.shape
    group_of = np.arange(c) // (c // groups)
    bidx = np.arange(n)[:, None, None, None, None]
    cidx = np.arange(c)[None, :, None, None, None]
    out = np.zeros((n, c, *y.shape[2:]), dtype=np.int64)
    for yc, xc, wgt in corner_weights(y, xx, frac, h, w):
        v = x[bidx, cidx, np.clip(yc, 0, h - 1)[:, group_of], np.clip(xc, 0, w - 1)[:, group_of]]
        out += wgt[:, group_of] * v
    return out


def deform_conv2d_fixed(
    input,
    offset,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    mask=None,
    *,
    offset_frac: int,
    mask_frac: int = 0,
    variant: Variant | None = None,
) -> np.ndarray:
    """Deformable convolution in exact integers (the module's steps 1-6).

    Arguments are those of :func:`~.reference.deform_conv2d` as integers: ``offset`` in units
    of ``2**-offset_frac`` pixel (``G`` channels per pixel for a square variant), ``mask``
    (unsigned) in units of ``2**-mask_frac``. Returns the int64 accumulators ``(N, OC, Ho,
    Wo)`` in units of ``2**-(S + mask_frac)`` times the weights' and input's, where
    ``S = 2·offset_frac`` (for every variant: a rounded sample is shifted into those units).
    """
    variant = Variant() if variant is None else variant
    x = np.asarray(input, dtype=np.int64)
    off = np.asarray(offset, dtype=np.int64)
    wt = np.asarray(weight, dtype=np.int64)
    stride, padding, dilation = (
        pair(stride, "stride", 1),
        pair(padding, "padding", 0),
        pair(dilation, "dilation", 1),
    )
    if not isinstance(offset_frac, int) or not 0 <= offset_frac <= 12:
        raise ValueError(f"offset_frac must be an int in [0, 12], not {offset_frac!r}")
    n, c, h, w = x.shape
    oc, cg, kh, kw = wt.shape
    groups = c // cg
    k = kh * kw
    ho = conv_out_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_out_size(w, kw, stride[1], padding[1], dilation[1])
    per = offset_channels(variant, 1, (kh, kw))
    if off.ndim != 4 or off.shape[1] % per or off.shape[0] != n or off.shape[2:] != (ho, wo):
        raise ValueError(
            f"offset must have shape ({n}, {per}·G, {ho}, {wo}) for a {variant.name} variant, "
            f"not {off.shape}"
        )
    g = off.shape[1] // per
    y, xx, frac = tap_positions(off, (kh, kw), stride, padding, dilation, variant, offset_frac)
    cols = sample_fixed(x, y, xx, frac, g)
    if variant.rounded:  # whole-pixel samples, in the units of the bilinear ones
        cols = cols << (2 * offset_frac)
    if mask is not None:
        m = np.asarray(mask, dtype=np.int64).reshape(n, g, k, ho, wo)
        cols = cols * m[:, np.arange(c) // (c // g)]
    cols = cols.reshape(n, groups, cg * k, ho * wo)
    wmat = wt.reshape(groups, oc // groups, cg * k)
    out = np.einsum("gok,ngkp->ngop", wmat, cols).reshape(n, oc, ho, wo)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.int64)[None, :, None, None]
    return out
