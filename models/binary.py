"""Golden kernels of the binary-neuron family: XNOR-popcount products.

Two encodings of a binary value:

- ``bipolar``: values are -1 and +1; a layer outputs the dot product ``Σ w·x`` in [-K, K].
- ``binary`` (FINN's): values are bits 0 and 1 standing for -1 and +1; a layer outputs the
  popcount ``P`` of ``XNOR(w, x)`` in [0, K]. The two agree through ``dot = 2P − K``.
"""

from __future__ import annotations

import enum

import numpy as np

from .dataflow import im2col, matmul_exact

__all__ = ["Encoding", "binary_conv2d", "binary_dense", "dot_from_popcount", "xnor_popcount"]


class Encoding(enum.Enum):
    """How a binary tensor stores -1/+1."""

    BIPOLAR = "bipolar"  #: -1 and +1 themselves
    BINARY = "binary"  #: bits 0 (for -1) and 1 (for +1)


def _to_bipolar(v: np.ndarray, encoding: Encoding) -> np.ndarray:
    return v if encoding is Encoding.BIPOLAR else 2 * v - 1


def dot_from_popcount(p, fan_in: int):
    """FINN's ``2P − K``: the bipolar dot product from an XNOR popcount."""
    return 2 * np.asarray(p) - fan_in


def xnor_popcount(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Reference XNOR-popcount of bit matrices, the way hardware computes it:
    ``x`` (N, K) and ``w`` (M, K) of {0, 1}; returns (N, M) counts of equal bits."""
    return (x[:, None, :] == w[None, :, :]).sum(axis=2, dtype=np.int64)


def binary_dense(x: np.ndarray, weight: np.ndarray, encoding: Encoding) -> np.ndarray:
    """Dot products (bipolar) or XNOR popcounts (binary) of ``x`` (N, K), ``weight`` (M, K).

    For bits, ``XNOR(x, w) = 2xw - x - w + 1``, so the popcount is
    ``2 x·w - Σx - Σw + K``: one exact product and two row sums.
    """
    k = weight.shape[1]
    if encoding is Encoding.BIPOLAR:
        return matmul_exact(x, weight.T, k)
    xf = x.astype(np.float64, copy=False)
    y = matmul_exact(xf, weight.T, k)
    y *= 2
    y -= xf.sum(axis=1, keepdims=True)
    y -= weight.sum(axis=1)
    y += k
    return y


def binary_conv2d(x, weight, stride, dilation, encoding: Encoding) -> np.ndarray:
    """Binary convolution without padding (a pad value would not be binary)."""
    n = x.shape[0]
    oc, c, kh, kw = weight.shape
    win = im2col(x.astype(np.float64, copy=False), (kh, kw), stride, (0, 0), dilation)
    oh, ow = win.shape[2:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    y = binary_dense(cols, weight.reshape(oc, -1), encoding)
    return y.reshape(n, oh, ow, oc).transpose(0, 3, 1, 2)
