"""Golden kernels of the binary-neuron family: XNOR-popcount products.

Two encodings of a binary value:

- ``bipolar``: values are -1 and +1; a layer outputs the dot product ``Σ w·x`` in [-K, K].
- ``binary`` (FINN's): values are bits 0 and 1 standing for -1 and +1; a layer outputs the
  popcount ``P`` of ``XNOR(w, x)`` in [0, K]. The two agree through ``dot = 2P − K``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import dataflow
from ..dataflow import im2col, matmul_exact
from ..ir import LAYER_OPTIONS, Layer, Tensor, cache, frozen_array, int_pair
from ..qtype import Kind

__all__ = [
    "BinaryConv2d",
    "BinaryDense",
    "Encoding",
    "binary_conv2d",
    "binary_dense",
    "dot_from_popcount",
    "xnor_popcount",
]


class Encoding(enum.Enum):
    """How a binary tensor stores -1/+1."""

    BIPOLAR = "bipolar"  #: -1 and +1 themselves
    BINARY = "binary"  #: bits 0 (for -1) and 1 (for +1)


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


# -- the binary layers of the IR -------------------------------------------------------


def _check_binary_input(layer: Layer, x: Tensor) -> None:
    if layer.encoding is Encoding.BIPOLAR and x.qtype.kind is not Kind.BIPOLAR:
        raise layer.error(
            f"needs a bipolar input for the bipolar encoding, not {x.qtype}", "inputs"
        )
    if layer.encoding is Encoding.BINARY and not (x.lo >= 0 and x.hi <= 1):
        raise layer.error(
            f"needs a binary (uint1) input for the binary encoding, not "
            f"{x.qtype} with range [{x.lo}, {x.hi}]",
            "inputs",
        )


def _binary_weight(layer: Layer, ndim: int) -> np.ndarray:
    w = frozen_array(layer.weight, layer=layer.name, field="weight", ndim=ndim)
    allowed = (-1, 1) if layer.encoding is Encoding.BIPOLAR else (0, 1)
    if not np.all(np.isin(w, allowed)):
        bad = w[~np.isin(w, allowed)].ravel()[0]
        raise layer.error(
            f"must hold only {allowed} for the {layer.encoding.value} encoding, not {int(bad)}",
            "weight",
        )
    return w


def _encoding(layer: Layer) -> None:
    try:
        object.__setattr__(
            layer,
            "encoding",
            Encoding(layer.encoding)
            if not isinstance(layer.encoding, Encoding)
            else layer.encoding,
        )
    except ValueError:
        raise layer.error(
            f"must be 'bipolar' or 'binary', not {layer.encoding!r}", "encoding"
        ) from None


@dataclass(**LAYER_OPTIONS)
class BinaryDense(Layer):
    """XNOR-popcount fully connected layer; see :mod:`codesign.models.binary` for the encodings.

    Outputs the dot product in [-K, K] (bipolar) or the popcount in [0, K] (binary)."""

    op: ClassVar[str] = "binary_dense"
    weight: np.ndarray
    encoding: Encoding = Encoding.BINARY

    def __post_init__(self) -> None:
        super().__post_init__()
        _encoding(self)
        object.__setattr__(self, "weight", _binary_weight(self, 2))
        cache(self, _w_f=self.weight.astype(np.float64))

    def infer(self, ins):
        (x,) = ins
        _check_binary_input(self, x)
        m, k = self.weight.shape
        if x.shape != (k,):
            raise self.error(
                f"must have shape (out, {x.size}) to match its input, not {self.weight.shape}",
                "weight",
            )
        lo = -k if self.encoding is Encoding.BIPOLAR else 0
        return Tensor.of_range((m,), lo, k)

    def evaluate(self, xs, ins, reuse=False, work=None):
        return binary_dense(xs[0], self._w_f, self.encoding)

    def arrays(self):
        return {"weight": self.weight}

    def attributes(self):
        return {"encoding": self.encoding.value}

    def macs(self, ins, out):
        return int(self.weight.size)


@dataclass(**LAYER_OPTIONS)
class BinaryConv2d(Layer):
    """XNOR-popcount convolution, no padding; ``weight`` is (OC, C, KH, KW)."""

    op: ClassVar[str] = "binary_conv2d"
    weight: np.ndarray
    encoding: Encoding = Encoding.BINARY
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)

    def __post_init__(self) -> None:
        super().__post_init__()
        _encoding(self)
        object.__setattr__(self, "weight", _binary_weight(self, 4))
        cache(self, _w_f=self.weight.astype(np.float64))
        for name in ("stride", "dilation"):
            object.__setattr__(self, name, int_pair(getattr(self, name), self.name, name, 1))

    def infer(self, ins):
        (x,) = ins
        _check_binary_input(self, x)
        if len(x.shape) != 3 or x.shape[0] != self.weight.shape[1]:
            raise self.error(
                f"must have shape (OC, {x.shape[0]}, KH, KW) for the input "
                f"{x.shape}, not {self.weight.shape}",
                "weight",
            )
        oc, c, kh, kw = self.weight.shape
        oh = dataflow.conv_out_size(x.shape[1], kh, self.stride[0], 0, self.dilation[0])
        ow = dataflow.conv_out_size(x.shape[2], kw, self.stride[1], 0, self.dilation[1])
        if oh < 1 or ow < 1:
            raise self.error(f"kernel {(kh, kw)} does not fit the input {x.shape}", "weight")
        k = c * kh * kw
        lo = -k if self.encoding is Encoding.BIPOLAR else 0
        return Tensor.of_range((oc, oh, ow), lo, k)

    def evaluate(self, xs, ins, reuse=False, work=None):
        return binary_conv2d(xs[0], self._w_f, self.stride, self.dilation, self.encoding)

    def arrays(self):
        return {"weight": self.weight}

    def attributes(self):
        return {
            "encoding": self.encoding.value,
            "stride": list(self.stride),
            "dilation": list(self.dilation),
        }

    def macs(self, ins, out):
        return int(out.size * self.weight[0].size)


#: Every layer class by its description name.
