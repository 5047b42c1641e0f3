"""Shared pieces of the QONNX importer: supported op sets, the error type, exact-fraction
helpers, the activation record carried through the lowering, and the affine map."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from codesign.models.errors import UserError
from codesign.models.ir import Layer

#: ONNX/QONNX op types the importer lowers.
SUPPORTED = frozenset(
    {
        "Quant",
        "IntQuant",
        "BipolarQuant",
        "MultiThreshold",
        "Trunc",
        "MatMul",
        "Gemm",
        "Conv",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Relu",
        "Clip",
        "BatchNormalization",
        "Reshape",
        "Flatten",
        "Transpose",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "Identity",
        "Softmax",
        "LogSoftmax",
        "ArgMax",
        "TopK",
    }
)
#: Ops computed on the host after the network (never hardware), only at the end of the graph.
HOST_OPS = frozenset({"Softmax", "LogSoftmax", "ArgMax", "TopK"})
#: Element-wise ops the pending chain evaluates exactly (as rationals).
EXACT_CHAIN = frozenset({"Add", "Sub", "Mul", "Div", "Relu", "Clip", "Identity"})
#: Most thresholds one quantizer may become (a 12-bit quantizer).
MAX_LEVELS = 4096


class ImportError_(UserError, ValueError):
    """A QONNX file cannot be imported (one line: file, node, what was expected)."""


def qonnx_api():
    """qonnx's ``(ModelWrapper, cleanup_model)``, or an :class:`ImportError_` saying how to
    install it."""
    try:
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.util.cleanup import cleanup_model
    except ImportError as e:  # pragma: no cover - qonnx is a declared dependency
        raise ImportError_(
            f"QONNX import needs the 'qonnx' package ({e}); install it with "
            "pip install qonnx onnx onnxruntime"
        ) from None
    return ModelWrapper, cleanup_model


def to_fraction(x) -> Fraction:
    """The exact value of ``x`` as a float64 (an ONNX constant's scale, a bound)."""
    return Fraction(float(x))


def to_fractions(arr) -> np.ndarray:
    """:func:`to_fraction` of every element: an object array of the same shape."""
    a = np.asarray(arr, dtype=np.float64)
    out = np.empty(a.shape, dtype=object)
    for i, v in np.ndenumerate(a):
        out[i] = Fraction(float(v))
    return out


@dataclass
class Act:
    """An activation during lowering: IR layer ``src`` holds integers ``q``; the value is
    ``chain(scale * q + offset)`` with ``scale``/``offset`` object arrays of shape (C,) or (1,)
    on the per-sample channel axis 0."""

    src: str
    scale: np.ndarray
    offset: np.ndarray
    shape: tuple[int, ...]  # per sample
    rank: int  # rank of the ONNX tensor, batch axis included
    chain: list = field(default_factory=list)  # ONNX nodes, element-wise, activation first
    flippable: bool = False  # src is a product layer read by nothing else yet
    sign: np.ndarray | None = None  # monotone direction of the chain per channel (+1/-1)


def affine_value(q, scale, offset) -> np.ndarray:
    """``scale * q + offset`` in float64 (exact while it fits 53 bits), channel on axis 1."""
    q = np.asarray(q, dtype=np.float64)
    shape = (1, -1) + (1,) * (q.ndim - 2)
    s = np.array([float(v) for v in scale.ravel()]).reshape(shape)
    o = np.array([float(v) for v in offset.ravel()]).reshape(shape)
    return q * s + o


def unique_layer(layer: Layer, taken: dict) -> Layer:
    """``layer`` renamed if its (ONNX tensor) name is taken."""
    if layer.name not in taken and layer.name != "input":
        return layer
    import dataclasses

    i = 1
    while f"{layer.name}_{i}" in taken:
        i += 1
    return dataclasses.replace(layer, name=f"{layer.name}_{i}")
