"""A network's dense layer on one digital PIM subarray: one output neuron per column.

Column ``j`` computes ``Σ_k x_k · W[j, k] + b_j`` with the dot-product program of
:func:`~codesign.models.pim.integer.dot_program`: for each input ``k`` the host streams in
``x_k`` (the same bits in every column: a broadcast row write) and the weights ``W[:, k]``
(one per column), and the array multiplies and accumulates; the bias is streamed in last.
Both operands are widened to one signed width (an unsigned activation gains a sign bit), and
the accumulator has the layer's output width: its arithmetic is modulo 2^acc_bits, exact
because the IR's output range fits that width.

The RTL (``hdl/pim``), the cycle model (``sim/pim``) and the golden model read the same
:class:`DenseMapping`, so the rows streamed in, the program and its cycle count cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import DescriptionError
from .integer import dot_program
from .isa import Technology, technology
from .program import Program, execute, from_rows, to_rows

__all__ = ["DenseMapping", "dense_mapping", "signed_width"]


def signed_width(lo: int, hi: int) -> int:
    """The smallest two's-complement width holding every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    return max((-lo - 1).bit_length() + 1 if lo < 0 else 1, hi.bit_length() + 1)


@dataclass(frozen=True)
class DenseMapping:
    """A dense layer mapped onto one subarray (``n`` ≤ its columns).

    Attributes
    ----------
    layer
        The layer's name.
    weight, bias
        The integer weights (out, in) and bias (out,) or None.
    bits
        The common signed operand width of activations and weights.
    acc_bits
        The accumulator width (the layer's output type, signed).
    tech, rows
        The technology and the subarray height.
    """

    layer: str
    weight: np.ndarray
    bias: np.ndarray | None
    bits: int
    acc_bits: int
    tech: Technology
    rows: int = 256

    @property
    def k(self) -> int:
        """Inputs summed per column."""
        return int(self.weight.shape[1])

    @property
    def n(self) -> int:
        """Columns used (outputs of the layer)."""
        return int(self.weight.shape[0])

    @cached_property
    def program(self) -> Program:
        """The column program (LOAD x_k, W[:, k] for each k, then the bias; STORE the acc)."""
        return dot_program(
            self.k,
            self.bits,
            self.acc_bits,
            self.tech,
            signed=True,
            bias=self.bias is not None,
            rows=self.rows,
        )

    def input_rows(self, x: np.ndarray) -> np.ndarray:
        """The rows the host streams in for one input vector ``x`` (k,): (loads, n) bool."""
        x = np.asarray(x, dtype=np.int64)
        if x.shape != (self.k,):
            raise ValueError(f"input must have shape ({self.k},), not {x.shape}")
        parts = []
        for k in range(self.k):
            parts.append(to_rows(np.full(self.n, x[k], dtype=np.int64), self.bits))
            parts.append(to_rows(self.weight[:, k], self.bits))
        if self.bias is not None:
            parts.append(to_rows(self.bias, self.acc_bits))
        return np.concatenate(parts)

    def decode(self, rows: np.ndarray) -> np.ndarray:
        """The accumulators (n,) int64 from the ``acc_bits`` rows the program stores."""
        v = from_rows(rows).astype(np.int64)
        top = 1 << (self.acc_bits - 1)
        return np.where(v >= top, v - (1 << self.acc_bits), v)

    def run(self, x: np.ndarray, *, seed: int = 0) -> np.ndarray:
        """The layer's outputs for one input vector, by executing the program bit by bit."""
        return self.decode(execute(self.program, self.input_rows(x), seed=seed))


def dense_mapping(net, layer: str, tech: str | Technology = "sot-mram", *, rows: int = 256):
    """Map ``net``'s dense layer ``layer`` onto one subarray of ``rows`` rows.

    Raises
    ------
    DescriptionError
        When the layer is not a dense layer.
    """
    try:
        lay = net[layer]
    except KeyError:
        names = ", ".join(x.name for x in net.layers if x.op == "dense")
        raise DescriptionError(
            f"must be one of the dense layers ({names}), not {layer!r}", field="layer"
        ) from None
    if lay.op != "dense":
        raise DescriptionError(f"must be a dense layer, not {lay.op!r}", layer=layer)
    (src,) = lay.inputs
    x = net.tensors[src]
    w = np.asarray(lay.weight, dtype=np.int64)
    out = net.tensors[layer]
    bits = max(signed_width(x.lo, x.hi), signed_width(w.min(), w.max()))
    acc_bits = signed_width(out.lo, out.hi)
    bias = None if lay.bias is None else np.asarray(lay.bias, dtype=np.int64)
    return DenseMapping(layer, w, bias, bits, acc_bits, technology(tech), rows)
