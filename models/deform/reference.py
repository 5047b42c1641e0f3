"""Deformable 2-D convolution in float64, with torchvision's ``deform_conv2d`` semantics.

The semantics (torchvision ``ops/deform_conv2d``, DCNv1/v2):

- ``offset`` has shape ``(N, 2·G·kh·kw, Ho, Wo)``: for offset group ``g`` and tap
  ``k = i·kw + j`` the row offset Δy sits at channel ``2·(g·kh·kw + k)`` and the column offset
  Δx at the next channel;
- tap ``(i, j)`` of output pixel ``(oy, ox)`` samples
  ``y = oy·sh − ph + i·dh + Δy`` and ``x = ox·sw − pw + j·dw + Δx``;
- a sample is 0 unless ``−1 < y < H`` and ``−1 < x < W``; otherwise it is the bilinear
  interpolation of the four corners ``(⌊y⌋ + {0, 1}, ⌊x⌋ + {0, 1})``, where a corner outside the
  image contributes 0;
- the optional ``mask`` ``(N, G·kh·kw, Ho, Wo)`` (DCNv2 modulation) multiplies each sample;
- input channel ``c`` uses offset group ``c // (C / G)``; convolution groups and offset groups
  are inferred from the shapes, as torchvision infers them.

Nothing here imports torch: ``tests/models/test_deform.py`` compares this function with vectors
that torchvision computed (``tests/fixtures/deform``).
"""

from __future__ import annotations

import numpy as np

from ..dataflow import conv_out_size

__all__ = ["bilinear", "deform_conv2d", "pair", "tap_grid"]


def pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, as torchvision takes ``stride``, ``padding`` and ``dilation``."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(f"{name} must be an int or a pair of ints, not {value!r}")
    if min(value) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")
    return (int(value[0]), int(value[1]))


def tap_grid(out_size: int, kernel: int, stride: int, padding: int, dilation: int) -> np.ndarray:
    """Base sample positions along one axis: ``base[k, o] = o·stride − padding + k·dilation``
    (shape ``(kernel, out_size)``, int64)."""
    o = np.arange(out_size, dtype=np.int64) * stride - padding
    return o[None, :] + np.arange(kernel, dtype=np.int64)[:, None] * dilation


def bilinear(x: np.ndarray, y: np.ndarray, xx: np.ndarray, group_of: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``x`` (N, C, H, W) at real positions ``y``, ``xx`` of shape
    (N, G, K, Ho, Wo); channel ``c`` reads offset group ``group_of[c]``. Returns
    (N, C, K, Ho, Wo)."""
    n, _, h, w = x.shape
    valid = (y > -1) & (y < h) & (xx > -1) & (xx < w)
    y0 = np.floor(y)
    x0 = np.floor(xx)
    ly, lx = y - y0, xx - x0
    hy, hx = 1.0 - ly, 1.0 - lx
    y0 = y0.astype(np.int64)
    x0 = x0.astype(np.int64)
    out = np.zeros((n, len(group_of), *y.shape[2:]), dtype=np.float64)
    bidx = np.arange(n)[:, None, None, None, None]
    cidx = np.arange(len(group_of))[None, :, None, None, None]
    for dy, dx, wgt in ((0, 0, hy * hx), (0, 1, hy * lx), (1, 0, ly * hx), (1, 1, ly * lx)):
        yc, xc = y0 + dy, x0 + dx
        ok = valid & (yc >= 0) & (yc < h) & (xc >= 0) & (xc < w)
        v = x[bidx, cidx, np.clip(yc, 0, h - 1)[:, group_of], np.clip(xc, 0, w - 1)[:, group_of]]
        out += np.where(ok[:, group_of], wgt[:, group_of] * v, 0.0)
    return out


def _shapes(x, offset, weight, mask, stride, padding, dilation):
    if x.ndim != 4 or weight.ndim != 4 or offset.ndim != 4:
        raise ValueError(
            "input, offset and weight must be 4-D (NCHW, N 2GK Ho Wo, OC C/groups kh kw), not "
            f"{x.shape}, {offset.shape}, {weight.shape}"
        )
    n, c, h, w = x.shape
    oc, cg, kh, kw = weight.shape
    if cg < 1 or c % cg:
        raise ValueError(f"weight's channels {cg} must divide the input's {c}")
    groups = c // cg
    if oc % groups:
        raise ValueError(f"output channels {oc} must be a multiple of groups {groups}")
    ho = conv_out_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_out_size(w, kw, stride[1], padding[1], dilation[1])
    k = kh * kw
    if offset.shape[1] % (2 * k) or offset.shape[1] == 0:
        raise ValueError(
            f"offset must have 2*G*kh*kw = a multiple of {2 * k} channels, not {offset.shape[1]}"
        )
    g = offset.shape[1] // (2 * k)
    if c % g:
        raise ValueError(f"offset groups {g} must divide the input channels {c}")
    if offset.shape != (n, 2 * g * k, ho, wo):
        raise ValueError(f"offset must have shape {(n, 2 * g * k, ho, wo)}, not {offset.shape}")
    if mask is not None and mask.shape != (n, g * k, ho, wo):
        raise ValueError(f"mask must have shape {(n, g * k, ho, wo)}, not {mask.shape}")
    return groups, g, ho, wo


def deform_conv2d(
    input,
    offset,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    mask=None,
) -> np.ndarray:
    """Deformable convolution in float64, as ``torchvision.ops.deform_conv2d``.

    Parameters
    ----------
    input
        ``(N, C, H, W)``.
    offset
        ``(N, 2·G·kh·kw, Ho, Wo)``: Δy at channel ``2k``, Δx at ``2k + 1`` of each group.
    weight
        ``(OC, C / groups, kh, kw)``; ``groups`` is ``C / weight.shape[1]``.
    bias
        ``(OC,)`` or None.
    stride, padding, dilation
        An int or a pair ``(h, w)``.
    mask
        ``(N, G·kh·kw, Ho, Wo)`` modulation (DCNv2) or None.

    Returns
    -------
    numpy.ndarray
        ``(N, OC, Ho, Wo)`` float64.
    """
    x = np.asarray(input, dtype=np.float64)
    off = np.asarray(offset, dtype=np.float64)
    wt = np.asarray(weight, dtype=np.float64)
    m = None if mask is None else np.asarray(mask, dtype=np.float64)
    stride, padding, dilation = (
        pair(stride, "stride", 1),
        pair(padding, "padding", 0),
        pair(dilation, "dilation", 1),
    )
    groups, g, ho, wo = _shapes(x, off, wt, m, stride, padding, dilation)
    n, c = x.shape[:2]
    oc, cg, kh, kw = wt.shape
    k = kh * kw
    off = off.reshape(n, g, k, 2, ho, wo)
    by = tap_grid(ho, kh, stride[0], padding[0], dilation[0])  # (kh, Ho)
    bx = tap_grid(wo, kw, stride[1], padding[1], dilation[1])  # (kw, Wo)
    base_y = np.repeat(by, kw, axis=0)[:, :, None]  # (K, Ho, 1): tap k = i*kw + j
    base_x = np.tile(bx, (kh, 1))[:, None, :]  # (K, 1, Wo)
    y = base_y + off[:, :, :, 0]
    xx = base_x + off[:, :, :, 1]
    group_of = np.arange(c) // (c // g)
    cols = bilinear(x, y, xx, group_of)  # (N, C, K, Ho, Wo)
    if m is not None:
        cols = cols * m.reshape(n, g, k, ho, wo)[:, group_of]
    cols = cols.reshape(n, groups, cg * k, ho * wo)
    wmat = wt.reshape(groups, oc // groups, cg * k)
    out = np.einsum("gok,ngkp->ngop", wmat, cols).reshape(n, oc, ho, wo)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)[None, :, None, None]
    return out
