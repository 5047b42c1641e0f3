"""Golden kernels of the dataflow family: exact integer dense, convolution and pooling.

Values are integers carried in one of two exact representations: float64 while every value
(and, for products, every partial sum) is below 2**53 in magnitude — then every float64
operation used here is exact — and int64 otherwise. Products go through BLAS in float64
whenever :func:`float_path_ok` allows it, and through int64 otherwise. Both are exact.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .arith import check_int64, round_div
from .qtype import Rounding

__all__ = [
    "FLOAT_EXACT_LIMIT",
    "as_exact",
    "avgpool2d",
    "conv2d",
    "conv_out_size",
    "conv_weight_matrix",
    "dense",
    "float_path_ok",
    "im2col",
    "matmul_exact",
    "maxpool2d",
    "sumpool2d",
]

#: Integers strictly below this magnitude are exact in float64, and so are sums of them
#: that stay below it.
FLOAT_EXACT_LIMIT = 1 << 53


def float_path_ok(bound: int) -> bool:
    """Whether values (or partial sums) bounded by ``bound`` may be carried in float64."""
    return bound < FLOAT_EXACT_LIMIT


def as_exact(x: np.ndarray, bound: int) -> np.ndarray:
    """``x`` in float64 if ``bound`` (a bound on its magnitude) allows it, else in int64."""
    dtype = np.float64 if float_path_ok(bound) else np.int64
    return x if x.dtype == dtype else x.astype(dtype)


def matmul_exact(a: np.ndarray, b: np.ndarray, bound: int) -> np.ndarray:
    """``a @ b`` for integer-valued arrays, exact, given a bound on every partial sum.

    Float64 (BLAS) when ``bound < 2**53``, else int64; raises ``OverflowError`` if
    ``bound`` does not fit int64.
    """
    check_int64(bound, "matrix product")
    return np.matmul(as_exact(a, bound), as_exact(b, bound))


def dense(x, weight_t, bias, bound: int) -> np.ndarray:
    """``x @ weight_t + bias`` for ``x`` (N, in) and ``weight_t`` (in, out), exact.

    ``bound`` bounds every partial sum *including* the bias.
    """
    y = matmul_exact(x, weight_t, bound)
    if bias is not None:
        y += as_exact(bias, bound)
    return y


def conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution or pooling window along one axis (floor mode)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def im2col(x, kernel, stride, padding, dilation, pad_value=0) -> np.ndarray:
    """Windows of ``x`` (N, C, H, W) as a view of shape (N, C, OH, OW, KH, KW)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    win = sliding_window_view(x, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))
    return win[:, :, ::sh, ::sw, ::dh, ::dw]


def conv_weight_matrix(weight: np.ndarray, groups: int) -> np.ndarray:
    """(OC, C/G, KH, KW) weights as the (G, KH·KW·C/G, OC/G) matrices :func:`conv2d` takes
    (rows in (kh, kw, c) order, matching its channels-last windows)."""
    oc, cg, kh, kw = weight.shape
    w = weight.reshape(groups, oc // groups, cg, kh, kw).transpose(0, 3, 4, 2, 1)
    return np.ascontiguousarray(w.reshape(groups, kh * kw * cg, oc // groups))


def conv2d(x, wmat, bias, kernel, stride, padding, dilation, bound, work=None) -> np.ndarray:
    """Grouped 2-D convolution (cross-correlation, NCHW, zero padding), exact.

    ``wmat`` is :func:`conv_weight_matrix` of the weights; ``bound`` bounds every partial
    sum including the bias. Windows are gathered channels-last, one kernel tap at a time,
    so every copy moves contiguous runs of channels. ``work``, a dict the caller keeps for
    a run, lends the gather buffer from one call to the next (same shapes, no fresh pages).
    """
    check_int64(bound, "convolution")
    x = as_exact(x, bound)
    n, c, h, w = x.shape
    groups, k, ocg = wmat.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    cg = c // groups
    oh = conv_out_size(h, kh, sh, ph, dh)
    ow = conv_out_size(w, kw, sw, pw, dw)
    xn = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # NHWC
    if ph or pw:
        xn = np.pad(xn, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    cols = _buffer(work, (groups, n, oh, ow, kh, kw, cg), x.dtype)
    for i in range(kh):
        for j in range(kw):
            tap = xn[
                :,
                i * dh : i * dh + sh * (oh - 1) + 1 : sh,
                j * dw : j * dw + sw * (ow - 1) + 1 : sw,
                :,
            ]
            cols[:, :, :, :, i, j, :] = tap.reshape(n, oh, ow, groups, cg).transpose(3, 0, 1, 2, 4)
    y = np.matmul(cols.reshape(groups, n * oh * ow, k), as_exact(wmat, bound))
    if bias is not None:
        y += as_exact(bias, bound).reshape(groups, 1, ocg)
    if groups == 1:  # a view: channels-last memory seen as NCHW
        return y.reshape(n, oh, ow, ocg).transpose(0, 3, 1, 2)
    y = y.reshape(groups, n, oh, ow, ocg).transpose(1, 0, 4, 2, 3)
    return y.reshape(n, groups * ocg, oh, ow)


def _buffer(work: dict | None, shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array, reused from ``work`` when it holds one of that shape."""
    if work is None:
        return np.empty(shape, dtype=dtype)
    key = ("buffer", shape, np.dtype(dtype).str)
    if key not in work:
        work[key] = np.empty(shape, dtype=dtype)
    return work[key]


def _windows(x, kernel, stride, out_hw):
    """Strided views of ``x``, one per kernel offset, each of the output's spatial size."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    for i in range(kh):
        for j in range(kw):
            yield x[:, :, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw]


def maxpool2d(x, kernel, stride, padding) -> np.ndarray:
    """Max over each window; padding never wins (PyTorch semantics)."""
    h, w = x.shape[2:]
    oh = conv_out_size(h, kernel[0], stride[0], padding[0], 1)
    ow = conv_out_size(w, kernel[1], stride[1], padding[1], 1)
    if padding[0] or padding[1]:
        low = -np.inf if x.dtype.kind == "f" else np.iinfo(np.int64).min
        x = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2), constant_values=low)
    out = None
    for view in _windows(x, kernel, stride, (oh, ow)):
        out = view.copy() if out is None else np.maximum(out, view, out=out)
    return out


def sumpool2d(x, kernel, stride) -> np.ndarray:
    """Window sum (no padding, no division), in ``x``'s dtype: exact when the caller's
    representation holds every window sum (see :func:`as_exact`)."""
    h, w = x.shape[2:]
    oh = conv_out_size(h, kernel[0], stride[0], 0, 1)
    ow = conv_out_size(w, kernel[1], stride[1], 0, 1)
    total = None
    for view in _windows(x, kernel, stride, (oh, ow)):
        total = view.copy() if total is None else np.add(total, view, out=total)
    return total


def avgpool2d(x, kernel, stride, rounding: Rounding) -> np.ndarray:
    """Window sum divided by the window size with ``rounding`` (no padding), in int64."""
    total = sumpool2d(x.astype(np.int64), kernel, stride)
    return round_div(total, kernel[0] * kernel[1], rounding)
