"""Golden kernels of the dataflow family: exact integer dense, convolution and pooling.

Products go through BLAS in float64 whenever the exact bound of every partial sum is below
2**53 (then every partial sum, in any summation order, is an exactly representable integer),
and through int64 otherwise. Both paths are exact; :func:`float_path_ok` decides.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .arith import check_int64, round_div
from .qtype import Rounding

__all__ = [
    "FLOAT_EXACT_LIMIT",
    "avgpool2d",
    "conv2d",
    "conv_out_size",
    "dense",
    "float_path_ok",
    "im2col",
    "matmul_exact",
    "maxpool2d",
]

#: Partial sums strictly below this magnitude are exact in float64.
FLOAT_EXACT_LIMIT = 1 << 53


def float_path_ok(bound: int) -> bool:
    """Whether a product whose partial sums are bounded by ``bound`` may use float64."""
    return bound < FLOAT_EXACT_LIMIT


def matmul_exact(a: np.ndarray, b: np.ndarray, bound: int) -> np.ndarray:
    """``a @ b`` for integer arrays, exact, given a bound on every partial sum's magnitude.

    Raises ``OverflowError`` if ``bound`` does not fit int64.
    """
    check_int64(bound, "matrix product")
    if float_path_ok(bound):
        out = np.matmul(a.astype(np.float64), b.astype(np.float64))
        return out.astype(np.int64)
    return np.matmul(a.astype(np.int64), b.astype(np.int64))


def dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, bound: int) -> np.ndarray:
    """``x @ weight.T + bias`` for ``x`` of shape (N, in), ``weight`` (out, in)."""
    y = matmul_exact(x, weight.T, bound)
    if bias is not None:
        y = y + bias
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


def conv2d(x, weight, bias, stride, padding, dilation, groups, bound) -> np.ndarray:
    """Grouped 2-D convolution (cross-correlation, NCHW), exact.

    ``weight`` has shape (OC, C/groups, KH, KW); ``bound`` bounds every partial sum.
    """
    n = x.shape[0]
    oc, cg, kh, kw = weight.shape
    win = im2col(x, (kh, kw), stride, padding, dilation)
    oh, ow = win.shape[2:4]
    # (N, OH, OW, G, Cg*KH*KW) -> (G, N*OH*OW, Cg*KH*KW)
    cols = win.reshape(n, groups, cg, oh, ow, kh, kw).transpose(1, 0, 3, 4, 2, 5, 6)
    cols = cols.reshape(groups, n * oh * ow, cg * kh * kw)
    w = weight.reshape(groups, oc // groups, cg * kh * kw).transpose(0, 2, 1)
    y = matmul_exact(cols, w, bound)  # (G, N*OH*OW, OC/G)
    y = y.reshape(groups, n, oh, ow, oc // groups).transpose(1, 0, 4, 2, 3)
    y = y.reshape(n, oc, oh, ow)
    if bias is not None:
        y = y + bias.reshape(1, oc, 1, 1)
    return y


def maxpool2d(x, kernel, stride, padding) -> np.ndarray:
    """Max over each window; padding never wins (PyTorch semantics)."""
    pad = np.iinfo(np.int64).min
    win = im2col(x, kernel, stride, padding, (1, 1), pad_value=pad)
    return win.max(axis=(4, 5))


def avgpool2d(x, kernel, stride, rounding: Rounding) -> np.ndarray:
    """Window sum divided by the window size with ``rounding`` (no padding)."""
    win = im2col(x, kernel, stride, (0, 0), (1, 1))
    total = win.sum(axis=(4, 5), dtype=np.int64)
    return round_div(total, kernel[0] * kernel[1], rounding)
