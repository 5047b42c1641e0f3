"""The Network IR: an immutable DAG of layers whose every tensor has a shape, a
:class:`~codesign.models.qtype.QType` and an exact integer value range.

Layers themselves live in :mod:`codesign.models.layers`; this module holds what every layer shares.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .arith import INT64_MAX
from .errors import DescriptionError
from .names import check_names, network_name_problem
from .qtype import Kind, QType

__all__ = [
    "LAYER_OPTIONS",
    "Layer",
    "Network",
    "Tensor",
    "abs_max_of",
    "cache",
    "check_bound",
    "frozen_array",
    "int_pair",
    "retype",
    "signed_sums",
    "weight_and_bias",
]


@dataclass(frozen=True)
class Tensor:
    """A tensor of one sample (no batch axis).

    ``lo``/``hi`` bound every value the tensor can take, exactly: for a layer's output they
    are attained by some value of that layer's inputs within *their* ranges.
    """

    shape: tuple[int, ...]
    qtype: QType
    lo: int
    hi: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def magnitude(self) -> int:
        """Largest absolute value the tensor can take."""
        return max(abs(self.lo), abs(self.hi))

    @classmethod
    def of_range(cls, shape, lo: int, hi: int) -> Tensor:
        """A plain integer tensor typed by the narrowest type covering ``[lo, hi]``."""
        lo, hi = int(lo), int(hi)
        return cls(tuple(shape), QType.covering(lo, hi), lo, hi)


def frozen_array(value, *, layer: str, field: str, dtype=np.int64, ndim=None) -> np.ndarray:
    """A read-only integer copy of ``value``; rejects non-integers with a located error."""
    arr = np.asarray(value)
    if arr.dtype.kind == "f" and arr.dtype.itemsize < 8:  # compare exactly, without overflow
        arr = arr.astype(np.float64)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise DescriptionError(
                f"must hold integers, not {arr.dtype} values such as {_first_bad(arr)!r}",
                layer=layer,
                field=field,
            )
    elif arr.dtype.kind not in "iub":
        raise DescriptionError(
            f"must be an integer array, not {arr.dtype}", layer=layer, field=field
        )
    # before the cast, which would wrap a uint64 or turn a huge float into garbage (with a
    # numpy warning)
    if arr.dtype.kind == "i" and arr.size and arr.min() == -(2**63):  # abs() would wrap
        raise DescriptionError(
            f"must not hold {-(2**63)} (-2**63, whose magnitude does not fit int64)",
            layer=layer,
            field=field,
        )
    if arr.dtype.kind in "fu" and arr.size and not (-(2**63) < arr.min() and arr.max() < 2**63):
        big = arr.max() if arr.max() >= 2**63 else arr.min()
        raise DescriptionError(
            f"must hold integers that fit int64, not {big.item()!r}", layer=layer, field=field
        )
    if ndim is not None and arr.ndim not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        raise DescriptionError(
            f"must have {ndim} dimensions, not shape {arr.shape}", layer=layer, field=field
        )
    out = arr.astype(dtype, copy=True)
    out.setflags(write=False)
    return out


def _first_bad(arr: np.ndarray):
    flat = arr.ravel()
    bad = ~np.isfinite(flat) | (flat != np.round(flat))
    return float(flat[np.argmax(bad)])


@dataclass(frozen=True, eq=False)
class Layer:
    """Base of every layer: a name and the names of the layers it reads.

    Subclasses define ``op`` (the description's name of the layer), :meth:`infer` and
    :meth:`evaluate`.
    """

    name: str
    inputs: tuple[str, ...]

    op: ClassVar[str] = ""
    arity: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise DescriptionError(f"name must be a non-empty string, not {self.name!r}")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if len(self.inputs) != self.arity:
            raise DescriptionError(
                f"must have {self.arity} input(s), not {len(self.inputs)}",
                layer=self.name,
                field="inputs",
            )

    def error(self, message: str, field: str | None = None) -> DescriptionError:
        return DescriptionError(message, layer=self.name, field=field)

    def infer(self, ins: Sequence[Tensor]) -> Tensor:
        """The output tensor for inputs ``ins``; raises :class:`DescriptionError`."""
        raise NotImplementedError

    def evaluate(
        self,
        xs: Sequence[np.ndarray],
        ins: Sequence[Tensor],
        reuse: bool = False,
        work: dict | None = None,
    ) -> np.ndarray:
        """Integer outputs for a batch of integer inputs (batch axis first).

        Values are int64, or integer-valued float64 where ``ins`` (the inputs' tensors)
        bound them below 2**53 (see :mod:`codesign.models.dataflow`). ``reuse`` says ``xs[0]`` is
        dead after this call, so an element-wise layer may write its result into it;
        ``work`` is scratch space the caller keeps across the calls of one run.
        """
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """The layer's integer arrays (weights, biases, thresholds) by field name."""
        return {}

    def attributes(self) -> dict:
        """The layer's scalar parameters, as the description writes them."""
        return {}

    def macs(self, ins: Sequence[Tensor], out: Tensor) -> int:
        """Multiply-accumulates per sample (0 for layers without a product)."""
        return 0


class Network:
    """An immutable DAG of layers with every tensor inferred.

    Parameters
    ----------
    name
        The network's name: it names the Verilog top module, so it must be a Verilog
        identifier that is not a keyword (:mod:`codesign.models.names`).
    layers
        Layers in any order; exactly one :class:`~codesign.models.layers.Input`. They are sorted
        topologically; a cycle or an unknown input name is an error. Their names must follow
        the rules of :mod:`codesign.models.names` (Verilog-safe, no ``__``, unique ignoring
        case).
    output
        Name of the output layer; by default the only layer nobody reads.
    """

    def __init__(self, name: str, layers: Iterable[Layer], output: str | None = None) -> None:
        from .layers import Input

        layers = list(layers)
        by_name: dict[str, Layer] = {}
        for layer in layers:
            if not isinstance(layer, Layer):
                raise TypeError(f"layers must be Layer objects, not {layer!r}")
            if layer.name in by_name:
                raise DescriptionError(
                    "is defined twice; names must be unique", layer=layer.name, field="name"
                )
            by_name[layer.name] = layer
        check_names(name, layers)
        self._name = name
        for layer in layers:
            for src in layer.inputs:
                if src not in by_name:
                    raise DescriptionError(
                        f"names no layer {src!r}; expected one of {sorted(by_name)}",
                        layer=layer.name,
                        field="inputs",
                    )
        inputs = [la for la in layers if isinstance(la, Input)]
        if len(inputs) != 1:
            raise DescriptionError(f"a network needs exactly one input, not {len(inputs)}")
        self.layers: tuple[Layer, ...] = tuple(_toposort(layers, by_name))
        readers = {src for la in layers for src in la.inputs}
        if output is None:
            ends = [la.name for la in self.layers if la.name not in readers]
            if len(ends) != 1:
                raise DescriptionError(
                    f"output must be given when several layers are unread: {ends}",
                    field="output",
                )
            output = ends[0]
        if output not in by_name:
            raise DescriptionError(f"names no layer {output!r}", field="output")
        self.output = output
        self.input = inputs[0].name
        self._by_name = by_name
        tensors: dict[str, Tensor] = {}
        for layer in self.layers:
            out = layer.infer([tensors[s] for s in layer.inputs])
            tensors[layer.name] = out
        self.tensors: dict[str, Tensor] = tensors
        #: BatchNorm layers folded away at load time, mapped to the layer that absorbed them.
        self.folded: dict[str, str] = {}

    @property
    def name(self) -> str:
        """The network's name (a Verilog identifier that is not a keyword)."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        problem = network_name_problem(value)
        if problem is not None:
            raise DescriptionError(problem, field="name")
        self._name = value

    def __getitem__(self, name: str) -> Layer:
        return self._by_name[name]

    def __iter__(self):
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __repr__(self) -> str:
        return f"<Network {self.name!r}: {len(self.layers)} layers>"

    @property
    def input_tensor(self) -> Tensor:
        return self.tensors[self.input]

    @property
    def output_tensor(self) -> Tensor:
        return self.tensors[self.output]

    def inputs_of(self, layer: Layer) -> list[Tensor]:
        return [self.tensors[s] for s in layer.inputs]

    def consumers(self) -> dict[str, int]:
        """How many layers read each layer's output (the output counts as one reader)."""
        count = {la.name: 0 for la in self.layers}
        for la in self.layers:
            for s in la.inputs:
                count[s] += 1
        count[self.output] += 1
        return count


def _toposort(layers: list[Layer], by_name: dict[str, Layer]) -> list[Layer]:
    order: list[Layer] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for root in layers:
        stack = [(root, 0)]
        while stack:
            layer, i = stack.pop()
            if i == 0:
                if state.get(layer.name) == 2:
                    continue
                state[layer.name] = 1
            if i < len(layer.inputs):
                stack.append((layer, i + 1))
                src = by_name[layer.inputs[i]]
                if state.get(src.name) == 1:
                    raise DescriptionError(
                        f"is part of a cycle through {src.name!r}",
                        layer=layer.name,
                        field="inputs",
                    )
                if state.get(src.name) != 2:
                    stack.append((src, 0))
            else:
                state[layer.name] = 2
                order.append(layer)
    return order


# -- helpers shared by the layer modules (layers, activations, binary) ----------------

LAYER_OPTIONS = dict(frozen=True, eq=False, kw_only=True)


def int_pair(value, layer: str, name: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        value = (int(value), int(value))
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)
    ):
        raise DescriptionError(
            f"must be an int or a pair of ints, not {value!r}", layer=layer, field=name
        )
    if min(value) < minimum:
        raise DescriptionError(
            f"must be at least {minimum}, not {value!r}", layer=layer, field=name
        )
    return (int(value[0]), int(value[1]))


def retype(qtype: QType, lo: int, hi: int) -> QType:
    """A type of ``qtype``'s kind and scale, as narrow as ``[lo, hi]`` allows."""
    if qtype.kind is Kind.BIPOLAR and lo >= -1 and hi <= 1 and (lo, hi) != (0, 0):
        return qtype
    base = QType.covering(lo, hi)
    if qtype.kind is Kind.FIXED:
        return QType.fixed(base.bits, qtype.frac, base.signed)
    if qtype.kind is Kind.SCALED and qtype.zero_point == 0:
        return QType.scaled(base.bits, qtype.scale, 0, base.signed)
    return base


def weight_and_bias(layer: Layer, ndim: int) -> np.ndarray:
    """Validate and freeze ``layer.weight`` (``ndim`` dimensions, output channels first) and
    ``layer.bias`` (one per output channel, or None); returns the weight."""
    w = frozen_array(layer.weight, layer=layer.name, field="weight", ndim=ndim)
    object.__setattr__(layer, "weight", w)
    if layer.bias is not None:
        b = frozen_array(layer.bias, layer=layer.name, field="bias", ndim=1)
        if b.shape != (w.shape[0],):
            raise layer.error(f"must have shape ({w.shape[0]},), not {b.shape}", "bias")
        object.__setattr__(layer, "bias", b)
    return w


def cache(layer: Layer, **values) -> None:
    """Derived, read-only evaluation data kept on a frozen layer."""
    for name, value in values.items():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
        object.__setattr__(layer, name, value)


def abs_max_of(arr: np.ndarray | None) -> int:
    return int(np.max(np.abs(arr))) if arr is not None and arr.size else 0


def check_bound(layer: Layer, bound: int, what: str = "accumulator") -> None:
    if bound > INT64_MAX:
        raise layer.error(f"{what} bound {bound} does not fit int64; narrow the types")


def signed_sums(w2d: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Per row: sum of positive weights, sum of negative weights (object ints), max Σ|w|."""
    wo = w2d.astype(object)
    pos = np.where(w2d > 0, wo, 0).sum(axis=1)
    neg = np.where(w2d < 0, wo, 0).sum(axis=1)
    return pos, neg, int(max((p - n for p, n in zip(pos, neg, strict=True)), default=0))
