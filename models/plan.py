"""Planning: a :class:`~codesign.models.ir.Network` becomes a graph of dataflow *stages*.

One stage per compute layer (as in FINN and fpgaConvNet): a dense or binary-dense layer with
the activation layers that follow it (clip, requant or multithreshold) is one
matrix-vector-activation unit (MVAU); a convolution is a sliding-window generator feeding an
MVAU; a pooling layer is a pool unit; an ``add`` of two tensors is an add unit, with the
activation chain that follows it fused as an MVAU fuses its own; an activation on its own
is a threshold unit; flatten and reshape need no hardware.

Stages form a directed acyclic graph in topological order: each stage names the producers of
its inputs (:attr:`Stage.sources`, ``None`` for the network input). A tensor read by two
stages is copied by a *fork*; an add stage *joins* two streams. :func:`readers` lists, per
producer, the (stage, input port) pairs that read it, in the order the forks serve them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .binary import Encoding
from .dataflow import conv_weight_matrix
from .errors import ConfigError
from .ir import Layer, Network, Tensor
from .layers import (
    Add,
    AvgPool2d,
    BinaryConv2d,
    BinaryDense,
    Clip,
    Conv2d,
    DeformConv2d,
    Dense,
    Flatten,
    Input,
    MaxPool2d,
    MultiThreshold,
    Requant,
    Reshape,
    SumPool2d,
)
from .qtype import Kind

__all__ = [
    "MATRIX",
    "Stage",
    "StageKind",
    "StageMatrix",
    "plan",
    "readers",
    "stage_matrix",
    "stream_order",
]


class StageKind(enum.Enum):
    MVAU = "mvau"  #: dense / binary dense (+ activation)
    CONV = "conv"  #: sliding-window generator + MVAU (+ activation)
    POOL = "pool"  #: max, average or sum pooling
    ACT = "act"  #: standalone clip / requant / multithreshold
    ADD = "add"  #: element-wise sum of two streams (+ activation)
    #: deformable gather (image on port 0, offsets on port 1) + MVAU/VVAU (+ activation)
    DEFORM = "deform"


@dataclass(frozen=True, eq=False)
class Stage:
    """One hardware stage: the IR layers it computes and its shape facts."""

    name: str
    kind: StageKind
    layers: tuple[Layer, ...]  #: the main layer first, then fused activations
    input: Tensor  #: what the stage reads (IR tensor; an add stage's first input)
    output: Tensor  #: what it writes (IR tensor of its last layer)
    acc: Tensor  #: the main layer's output (an MVAU's accumulators, before activation)
    #: for an MVAU after a flatten: stream position j holds the flattened (C·H·W) element
    #: ``in_order[j]``; the weight columns are permuted to match. None when identity.
    in_order: np.ndarray | None = None
    #: the stage producing each input (port 0, and port 1 of an add stage); None: the
    #: network input
    sources: tuple[str | None, ...] = (None,)
    #: each input's IR tensor (``inputs[0] is input``)
    inputs: tuple[Tensor, ...] = ()

    def __post_init__(self) -> None:
        if not self.inputs:
            object.__setattr__(self, "inputs", (self.input,))

    @property
    def main(self) -> Layer:
        return self.layers[0]

    @property
    def tap(self) -> str:
        """The IR layer whose output this stage's output equals (compare with trace)."""
        return self.layers[-1].name

    @property
    def mh(self) -> int:
        """Output channels (MVAU rows)."""
        return int(self.main.weight.shape[0]) if self.kind in MATRIX else self.channels

    @property
    def mw(self) -> int:
        """Elements of one input vector (MVAU columns)."""
        return int(self.main.weight[0].size) if self.kind in MATRIX else self.channels

    @property
    def channels(self) -> int:
        return int(self.input.shape[0]) if len(self.input.shape) == 3 else self.input.size

    @property
    def depthwise(self) -> bool:
        """A depthwise convolution (a vector-vector unit instead of an MVAU)."""
        m = self.main
        if self.kind is StageKind.DEFORM:
            return m.groups_for(self.input) == self.channels == m.weight.shape[0] > 1
        return (
            self.kind is StageKind.CONV
            and isinstance(m, Conv2d)
            and m.groups > 1
            and m.groups == self.channels == m.weight.shape[0]
        )

    @property
    def global_pool(self) -> bool:
        """A pool whose window is the whole (unpadded) image: an accumulator per channel
        instead of a line buffer (:class:`codesign.hdl.dataflow.pool.Pool2d` builds it)."""
        if self.kind is not StageKind.POOL:
            return False
        _, h, w = self.input.shape
        return tuple(self.main.kernel) == (h, w) and tuple(
            getattr(self.main, "padding", (0, 0))
        ) == (0, 0)

    @property
    def vectors(self) -> int:
        """Input vectors per frame: output pixels of a convolution, 1 for a dense layer."""
        if self.kind in (StageKind.CONV, StageKind.DEFORM):
            return int(self.output.shape[1] * self.output.shape[2])
        return 1

    def pe_choices(self) -> list[int]:
        """Valid PE values (divisors of the output channels; a depthwise deformable stage's
        gather emits all channels of a tap per beat, so its PE is the channel count)."""
        if self.kind is StageKind.DEFORM and self.depthwise:
            return [self.channels]
        return divisors(self.mh) if self.kind in MATRIX else divisors(self.channels)

    def simd_choices(self) -> list[int]:
        """Valid SIMD values: divisors of the vector length; for a convolution also of the
        input channels (each beat carries channels of one window position). A depthwise
        convolution reads PE channels per beat, so its SIMD is 1."""
        if self.depthwise:
            return [1]
        if self.kind is StageKind.DEFORM:  # the gather emits a tap's channels per beat
            return [int(self.input.shape[0])]
        if self.kind is StageKind.CONV:
            return divisors(int(self.input.shape[0]))
        if self.kind is StageKind.MVAU:
            return divisors(self.mw)
        return [1]


#: Stage kinds built around a weight matrix (MVAU or VVAU).
MATRIX = (StageKind.MVAU, StageKind.CONV, StageKind.DEFORM)


def stream_order(shape: tuple[int, ...]) -> np.ndarray:
    """The order in which a tensor of ``shape`` streams: stream position ``j`` carries
    element ``order[j]`` of the tensor flattened in C·H·W order. A (C, H, W) tensor streams
    channels last (pixels in raster order, each pixel's channels together: position
    ``(h·W + w)·C + c`` holds index ``c·H·W + h·W + w``); any other shape in index order.

    A flatten of a (C, H, W) tensor keeps this order on the wire, so the dense layer after
    it reads its weight columns permuted by it (:attr:`Stage.in_order`), and the RTL's
    stream description (its manifest) states it.
    """
    n = int(np.prod(shape, dtype=np.int64))
    if len(shape) != 3:
        return np.arange(n)
    c, h, w = shape
    return np.arange(n).reshape(c, h, w).transpose(1, 2, 0).ravel()


class StageMatrix(NamedTuple):
    """A matrix stage's weights as its unit reads them (see :func:`stage_matrix`)."""

    #: (rows, columns): an MVAU's (output channels, window or vector elements in stream
    #: order); a depthwise convolution's (channels, KH·KW taps)
    weights: np.ndarray
    #: an XNOR-popcount unit (a binary dense or binary convolution)
    xnor: bool
    #: the binary layer's weights are ±1 (:data:`Encoding.BIPOLAR`), here as bits 0/1
    bipolar: bool


def stage_matrix(stage: Stage) -> StageMatrix:
    """The weight matrix of an MVAU or VVAU stage (kind in :data:`MATRIX`) with its columns
    in the order its input streams, as the RTL lays it out and the cost model reads it.

    A convolution's (OC, C, KH, KW) weights become (OC, KH·KW·C), the sliding window's
    order (each window position's channels together); a dense layer after a flatten has
    its columns permuted by :attr:`Stage.in_order`; a depthwise convolution's (C, 1, KH,
    KW) become (C, KH·KW). Bipolar binary weights (±1) become bits, ``(w + 1) / 2``.
    The values are integers (int64); the array may share memory with the layer's.
    """
    if stage.kind not in MATRIX:
        raise ValueError(f"stage {stage.name!r}: a {stage.kind.value} stage has no weights")
    la = stage.main
    w = np.asarray(la.weight, dtype=np.int64)
    if stage.depthwise:
        return StageMatrix(w.reshape(w.shape[0], -1), False, False)
    if w.ndim == 4:  # the golden convolution's window order is the sliding window's
        w = np.ascontiguousarray(conv_weight_matrix(w, 1)[0].T)
    if stage.in_order is not None:
        w = w[:, stage.in_order]
    xnor = isinstance(la, BinaryDense | BinaryConv2d)
    bipolar = xnor and la.encoding is Encoding.BIPOLAR
    if bipolar:
        w = (w + 1) // 2
    return StageMatrix(w, xnor, bipolar)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _is_depthwise(layer: Layer, net: Network) -> bool:
    """A convolution with one filter per input channel (groups = C = OC)."""
    if not isinstance(layer, Conv2d):
        return False
    c = net.tensors[layer.inputs[0]].shape[0]
    return layer.groups == c == layer.weight.shape[0] and c > 1


def _check_deform(la: DeformConv2d, net: Network) -> None:
    x, off = (net.tensors[s] for s in la.inputs)
    c = int(x.shape[0])
    groups = la.groups_for(x)
    if groups != 1 and not groups == c == la.weight.shape[0]:
        raise ConfigError(
            f"layer {la.name!r}: a grouped deformable convolution (groups={groups}) has no "
            "hardware; the full (groups = 1) and depthwise (groups = C = OC) forms do"
        )
    if la.offset_groups(off) != 1:
        raise ConfigError(
            f"layer {la.name!r}: {la.offset_groups(off)} offset groups have no hardware yet; "
            "the gather engine reads one offset group"
        )


_ACTIVATION_CHAIN = ((Clip,), (Requant, MultiThreshold))


def plan(net: Network) -> list[Stage]:
    """The pipeline's stages for ``net``, in topological order (the stage producing the
    network's output last). Raises :class:`ConfigError` for a layer the dataflow hardware
    cannot build, naming it."""
    layer_readers: dict[str, list[str]] = {la.name: [] for la in net.layers}
    for la in net.layers:
        for s in la.inputs:
            layer_readers[s].append(la.name)
    # tensor → (stage producing its stream or None for the network input, pending flatten
    # permutation)
    producer: dict[str, tuple[str | None, np.ndarray | None]] = {}
    stages: list[Stage] = []
    fused: set[str] = set()
    for la in net.layers:
        if la.name in fused:
            continue
        if isinstance(la, Input):
            producer[la.name] = (None, None)
            continue
        if isinstance(la, Flatten | Reshape):
            src = net.tensors[la.inputs[0]]
            stage, order = producer[la.inputs[0]]
            if len(src.shape) == 3 and isinstance(la, Flatten):
                order = stream_order(src.shape)
            elif len(src.shape) != 1 or isinstance(la, Reshape):
                raise ConfigError(
                    f"layer {la.name!r}: {la.op} of shape {src.shape} has no dataflow "
                    "hardware; only flatten of (C, H, W) or of a vector is supported"
                )
            producer[la.name] = (stage, order)
            continue
        group = [la]
        fuse = False
        if isinstance(la, Dense | BinaryDense | Conv2d | BinaryConv2d):
            kind = StageKind.CONV if isinstance(la, Conv2d | BinaryConv2d) else StageKind.MVAU
            if isinstance(la, Conv2d) and la.groups != 1 and not _is_depthwise(la, net):
                raise ConfigError(
                    f"layer {la.name!r}: grouped conv2d (groups={la.groups}) has no dataflow "
                    "hardware yet; plain and depthwise (groups = channels) convolutions do"
                )
            src = net.tensors[la.inputs[0]]
            if isinstance(la, Conv2d) and any(la.padding) and src.qtype.kind is Kind.BIPOLAR:
                raise ConfigError(
                    f"layer {la.name!r}: a padded convolution of a bipolar input has no "
                    "hardware: bipolar streams cannot carry the zero padding"
                )
            fuse = True
        elif isinstance(la, MaxPool2d | AvgPool2d | SumPool2d):
            kind = StageKind.POOL
        elif isinstance(la, Clip | Requant | MultiThreshold):
            kind = StageKind.ACT
        elif isinstance(la, Add):
            kind = StageKind.ADD
            fuse = True
        elif isinstance(la, DeformConv2d):
            kind = StageKind.DEFORM
            fuse = True
            _check_deform(la, net)
        else:
            raise ConfigError(f"layer {la.name!r}: {la.op} has no dataflow hardware yet")
        if fuse:  # the activation chain that alone reads the main layer: [clip] [requant|mt]
            for wanted in _ACTIVATION_CHAIN:
                rs = layer_readers[group[-1].name]
                if len(rs) == 1 and group[-1].name != net.output:
                    nxt = net[rs[0]]
                    if isinstance(nxt, wanted) and nxt.inputs == (group[-1].name,):
                        group.append(nxt)
                        fused.add(nxt.name)
        sources, orders = zip(*(producer[s] for s in la.inputs), strict=True)
        order = orders[0]
        if any(o is not None for o in orders) and kind is not StageKind.MVAU:
            raise ConfigError(
                f"layer {la.name!r}: after a flatten of a (C, H, W) tensor only a dense "
                "layer is supported"
            )
        inputs = tuple(net.tensors[s] for s in la.inputs)
        stages.append(
            Stage(
                name=la.name,
                kind=kind,
                layers=tuple(group),
                input=inputs[0],
                output=net.tensors[group[-1].name],
                acc=net.tensors[la.name],
                in_order=order,
                sources=tuple(sources),
                inputs=inputs,
            )
        )
        producer[group[-1].name] = (la.name, None)
    if not stages:
        raise ConfigError("the network has no layer that needs hardware")
    last, order = producer[net.output]
    if order is not None:
        raise ConfigError("a flatten of a (C, H, W) tensor must be followed by a dense layer")
    if last is None:
        raise ConfigError("the network's output is its input: nothing needs hardware")
    if last != stages[-1].name:  # the output's stage last; stages after it are unread
        raise ConfigError(
            f"layer {stages[-1].tap!r}: its output is never read (the network's output is "
            f"{net.output!r}); a dataflow pipeline has one output stream"
        )
    read = readers(stages)
    for s in stages[:-1]:
        if not read.get(s.name):
            raise ConfigError(
                f"layer {s.tap!r}: its output is never read (the network's output is "
                f"{net.output!r}); a dataflow pipeline has one output stream"
            )
    if read.get(stages[-1].name):
        raise ConfigError(
            f"layer {stages[-1].tap!r}: the network's output must not also feed other layers"
        )
    return stages


def readers(stages: list[Stage]) -> dict[str | None, list[tuple[str, int]]]:
    """For each producer (a stage name, or None for the network input), the ``(stage,
    input port)`` pairs that read its stream, in stage order: one reader is a plain
    connection, two or more are served by a fork."""
    out: dict[str | None, list[tuple[str, int]]] = {}
    for s in stages:
        for port, src in enumerate(s.sources):
            out.setdefault(src, []).append((s.name, port))
    return out
