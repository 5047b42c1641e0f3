"""QONNX import: lower a quantized ONNX graph to the integer Network IR, exactly.

The graph is read with ``qonnx`` (cleanup: shape inference, constant folding, unique names),
then walked in topological order. Every activation is carried as an integer tensor of the IR
together with an exact affine map to the real value it stands for
(``real = scale * int + offset``, per channel, as :class:`fractions.Fraction`) and a chain of
pending element-wise ONNX nodes. A quantizer (``Quant``, ``IntQuant``, ``BipolarQuant``,
``MultiThreshold``) ends the chain: it becomes a :class:`~models.activations.MultiThreshold`
whose integer thresholds are found by bisection on the source's own function, so the integer
comparison agrees with it at every integer accumulator value. A chain of only ``Add``/``Sub``/
``Mul``/``Div``/``Relu``/``Clip`` is evaluated exactly (rationals); a chain holding float-only
work (``BatchNormalization``) is evaluated in float32 by onnxruntime and qonnx's own quantizer
code, since that float32 computation is what the model means. See ``docs/import.md``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from models.arith import round_fraction, round_real, search_thresholds
from models.errors import DescriptionError, UserError
from models.ir import Layer, Network, Tensor
from models.layers import (
    BinaryConv2d,
    BinaryDense,
    Clip,
    Conv2d,
    Dense,
    Flatten,
    Input,
    MaxPool2d,
    MultiThreshold,
    Reshape,
)
from models.qtype import Kind, QType, parse_qtype, parse_rounding

__all__ = ["ImportError_", "ImportInfo", "import_qonnx", "save_import"]

#: ONNX/QONNX op types the importer lowers.
SUPPORTED = frozenset(
    {
        "Quant",
        "IntQuant",
        "BipolarQuant",
        "MultiThreshold",
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


def _qonnx():
    try:
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.util.cleanup import cleanup_model
    except ImportError as e:  # pragma: no cover - qonnx is a declared dependency
        raise ImportError_(
            f"QONNX import needs the 'qonnx' package ({e}); install it with "
            "pip install qonnx onnx onnxruntime"
        ) from None
    return ModelWrapper, cleanup_model


def _f(x) -> Fraction:
    return Fraction(float(x))


def _fracs(arr) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64)
    out = np.empty(a.shape, dtype=object)
    for i, v in np.ndenumerate(a):
        out[i] = Fraction(float(v))
    return out


@dataclass
class _Act:
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


@dataclass
class ImportInfo:
    """What an imported network needs beside its integers.

    The network's integer output ``q`` stands for ``host(scale * q + offset)``: ``scale``
    and ``offset`` are exact per output channel; ``host_nodes`` are the trailing element-wise
    nodes and host-side ops (``Softmax``, ``ArgMax``, ``TopK``), computed in float.
    """

    source: str
    sha256: str
    input_name: str
    onnx_input_shape: tuple  # per sample; the network's input holds the same data, C order
    input_real_scale: Fraction
    output_tensor: str  # ONNX tensor the network's integer output stands for (before host ops)
    scale: np.ndarray
    offset: np.ndarray
    chain: list
    host_nodes: list
    consts: dict
    layer_tensors: dict  # IR layer -> (ONNX tensor, scale, offset) for exactly-mapped layers
    model: object = None  # the cleaned qonnx ModelWrapper

    @property
    def host_ops(self) -> list[str]:
        return [n.op_type for n in self.host_nodes]

    def dequantize(self, q: np.ndarray, dtype=np.float32) -> np.ndarray:
        """The real output tensor before the host ops, in ``dtype`` (the trailing chain is
        evaluated step by step in that precision, as an executor of that precision does)."""
        x = _affine_value(q, self.scale, self.offset)
        x = x.astype(dtype)
        for node in self.chain:
            x = _eval_node(node, [x, *(self.consts[n] for n in node.input[1:])], dtype)[0]
        return x

    def postprocess(self, q: np.ndarray, dtype=np.float32) -> np.ndarray:
        """The source graph's final output (host ops applied) from integer outputs ``q``."""
        x = self.dequantize(q, dtype)
        for node in self.host_nodes:
            x = _eval_node(node, [x, *(self.consts[n] for n in node.input[1:] if n)], dtype)[0]
        return x


def _affine_value(q, scale, offset) -> np.ndarray:
    """``scale * q + offset`` in float64 (exact while it fits 53 bits), channel on axis 1."""
    q = np.asarray(q, dtype=np.float64)
    shape = (1, -1) + (1,) * (q.ndim - 2)
    s = np.array([float(v) for v in scale.ravel()]).reshape(shape)
    o = np.array([float(v) for v in offset.ravel()]).reshape(shape)
    return q * s + o


# -- reading -------------------------------------------------------------------------------


def _read(path: Path):
    label = str(path)
    try:
        import onnx
    except ImportError as e:  # pragma: no cover
        raise ImportError_(f"QONNX import needs the 'onnx' package ({e})") from None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImportError_(f"{label}: no such file") from None
    except OSError as e:
        raise ImportError_(f"{label}: cannot be read: {e.strerror or e}") from None
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf raises its own DecodeError family
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImportError_(f"{label}: is not an ONNX model ({first})") from None
    if not proto.graph.node or not proto.graph.input:
        raise ImportError_(f"{label}: is not an ONNX model (no graph nodes or inputs)")
    return proto, hashlib.sha256(data).hexdigest()


def _check_supported(proto, label: str) -> None:
    bad = [(n.name or f"#{i}", n.op_type) for i, n in enumerate(proto.graph.node)]
    bad = [
        (name, op)
        for name, op in bad
        if op
        not in SUPPORTED
        | {"Shape", "Gather", "Unsqueeze", "Concat", "Constant", "Pow", "Sqrt", "Squeeze", "Cast"}
    ]
    if bad:
        listed = ", ".join(f"{name} ({op})" for name, op in bad)
        raise ImportError_(
            f"{label}: {len(bad)} unsupported node(s): {listed}; supported op types are "
            f"{', '.join(sorted(SUPPORTED))}"
        )


def _clean(proto, label: str):
    ModelWrapper, cleanup_model = _qonnx()
    try:
        model = cleanup_model(ModelWrapper(proto))
    except Exception as e:  # qonnx raises assorted errors on malformed graphs
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImportError_(f"{label}: qonnx cannot clean up the graph: {first}") from None
    return model


# -- float evaluation of single nodes (constants, chains, the float64 reference) -------------


def _attrs(node) -> dict:
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _eval_node(node, ins: list, dtype) -> list[np.ndarray]:
    """Evaluate one node in numpy with every value in ``dtype`` (float32 or float64)."""
    from qonnx.custom_op.general.bipolar_quant import binary_quant
    from qonnx.custom_op.general.intquant import int_quant
    from qonnx.custom_op.general.multithreshold import multithreshold

    op = node.op_type
    at = _attrs(node)

    def f(i):
        return np.asarray(ins[i], dtype=dtype)

    if op in ("Quant", "IntQuant"):
        out = int_quant(
            f(0),
            f(1),
            f(2),
            f(3),
            at.get("signed", 1),
            at.get("narrow", 0),
            at.get("rounding_mode", "ROUND"),
        )
        return [np.asarray(out, dtype=dtype)]
    if op == "BipolarQuant":
        return [np.asarray(binary_quant(f(0), f(1)), dtype=dtype)]
    if op == "MultiThreshold":
        layout = at.get("data_layout", "")
        if layout not in ("", "NCHW", "NC"):
            raise ImportError_(f"node {node.name!r}: data_layout {layout!r} is not supported")
        out = multithreshold(f(0), f(1))
        return [(out * at.get("out_scale", 1.0) + at.get("out_bias", 0.0)).astype(dtype)]
    if op == "Add":
        return [f(0) + f(1)]
    if op == "Sub":
        return [f(0) - f(1)]
    if op == "Mul":
        return [f(0) * f(1)]
    if op == "Div":
        return [f(0) / f(1)]
    if op == "Pow":
        return [np.power(f(0), f(1))]
    if op == "Sqrt":
        return [np.sqrt(f(0))]
    if op == "Relu":
        return [np.maximum(f(0), dtype(0))]
    if op == "Clip":
        lo = f(1) if len(ins) > 1 and ins[1] is not None else -np.inf
        hi = f(2) if len(ins) > 2 and ins[2] is not None else np.inf
        return [np.clip(f(0), lo, hi).astype(dtype)]
    if op in ("Identity", "Cast"):
        return [np.asarray(ins[0])]
    if op == "MatMul":
        return [f(0) @ f(1)]
    if op == "Gemm":
        a, b = f(0), f(1)
        if at.get("transA", 0):
            a = a.T
        if at.get("transB", 0):
            b = b.T
        y = dtype(at.get("alpha", 1.0)) * (a @ b)
        if len(ins) > 2 and ins[2] is not None:
            y = y + dtype(at.get("beta", 1.0)) * f(2)
        return [y]
    if op == "BatchNormalization":
        x, g, b, m, v = (f(i) for i in range(5))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        eps = dtype(at.get("epsilon", 1e-5))
        y = (x - m.reshape(shape)) / np.sqrt(v.reshape(shape) + eps)
        return [y * g.reshape(shape) + b.reshape(shape)]
    if op == "Reshape":
        shape = [int(s) for s in np.asarray(ins[1]).ravel()]
        x = np.asarray(ins[0])
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
        return [x.reshape(shape)]
    if op == "Flatten":
        x = np.asarray(ins[0])
        axis = at.get("axis", 1)
        return [x.reshape(int(np.prod(x.shape[:axis])), -1)]
    if op == "Transpose":
        x = np.asarray(ins[0])
        return [np.transpose(x, at.get("perm", list(range(x.ndim))[::-1]))]
    if op == "Softmax":
        x = f(0)
        axis = at.get("axis", -1)
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return [e / e.sum(axis=axis, keepdims=True)]
    if op == "LogSoftmax":
        x = f(0)
        axis = at.get("axis", -1)
        s = x - x.max(axis=axis, keepdims=True)
        return [s - np.log(np.exp(s).sum(axis=axis, keepdims=True))]
    if op == "ArgMax":
        x = f(0)
        y = np.argmax(x, axis=at.get("axis", 0))
        return [np.expand_dims(y, at.get("axis", 0)) if at.get("keepdims", 1) else y]
    if op == "TopK":
        x = f(0)
        k = int(np.asarray(ins[1]).ravel()[0])
        axis = at.get("axis", -1)
        idx = np.argsort(-x, axis=axis, kind="stable")
        idx = np.take(idx, np.arange(k), axis=axis)
        return [np.take_along_axis(x, idx, axis=axis), idx]
    if op == "Conv":
        return [_conv_float(node, at, ins, dtype)]
    if op == "MaxPool":
        return [_maxpool_float(at, f(0))]
    raise ImportError_(f"node {node.name!r}: cannot evaluate op type {op!r}")


def _conv_float(node, at, ins, dtype):
    from models.dataflow import im2col

    x = np.asarray(ins[0], dtype=dtype)
    w = np.asarray(ins[1], dtype=dtype)
    pads = at.get("pads", [0] * 4)
    stride = tuple(at.get("strides", [1, 1]))
    dil = tuple(at.get("dilations", [1, 1]))
    g = at.get("group", 1)
    oc, cg, kh, kw = w.shape
    win = im2col(x.astype(np.float64), (kh, kw), stride, (pads[0], pads[1]), dil).astype(dtype)
    n, _, oh, ow = win.shape[:4]
    out = np.empty((n, oc, oh, ow), dtype=dtype)
    per = oc // g
    for gi in range(g):
        cols = win[:, gi * cg : (gi + 1) * cg].transpose(0, 2, 3, 1, 4, 5).reshape(n, oh, ow, -1)
        wm = w[gi * per : (gi + 1) * per].reshape(per, -1)
        out[:, gi * per : (gi + 1) * per] = (cols @ wm.T).transpose(0, 3, 1, 2)
    if len(ins) > 2 and ins[2] is not None:
        out = out + np.asarray(ins[2], dtype=dtype).reshape(1, -1, 1, 1)
    return out


def _maxpool_float(at, x):
    from models.dataflow import im2col

    k = tuple(at["kernel_shape"])
    stride = tuple(at.get("strides", k))
    pads = at.get("pads", [0] * 4)
    xp = np.pad(
        x,
        ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])),
        constant_values=-np.inf,
    )
    win = im2col(xp.astype(np.float64), k, stride, (0, 0), (1, 1)).astype(x.dtype)
    return win.max(axis=(4, 5))


def evaluate_graph(model, x: np.ndarray, dtype=np.float64) -> dict[str, np.ndarray]:
    """Every tensor of the (cleaned) graph for the input batch ``x``, evaluated node by node
    in numpy with all values in ``dtype``: the float64 reference of ``--check``."""
    g = model.graph
    values: dict[str, np.ndarray] = {}
    for init in g.initializer:
        values[init.name] = np.asarray(model.get_initializer(init.name))
    values[g.input[0].name] = np.asarray(x, dtype=dtype)
    for node in g.node:
        ins = [values[n] if n else None for n in node.input]
        outs = _eval_node(node, ins, dtype)
        for name, v in zip(node.output, outs, strict=False):
            values[name] = v
    return values


# -- lowering ------------------------------------------------------------------------------


class _Lowering:
    def __init__(self, model, label: str, input_type: QType) -> None:
        self.model = model
        self.label = label
        self.g = model.graph
        self.consts: dict[str, np.ndarray] = {
            i.name: np.asarray(model.get_initializer(i.name)) for i in self.g.initializer
        }
        self.quant_scale: dict[str, np.ndarray] = {}  # constant tensor -> its Quant scale
        self.acts: dict[str, _Act] = {}
        self.layers: list[Layer] = []
        self.tensors: dict[str, Tensor] = {}
        self.readers: dict[str, int] = {}
        self.consumers: dict[str, int] = {}
        for n in self.g.node:
            for i in n.input:
                self.consumers[i] = self.consumers.get(i, 0) + 1
        self.layer_tensors: dict[str, tuple] = {}
        self.host_nodes: list = []
        self.input_type = input_type

    # errors and names
    def err(self, node, message: str) -> ImportError_:
        return ImportError_(f"{self.label}: node {node.name!r} ({node.op_type}): {message}")

    def add(self, layer: Layer) -> str:
        try:
            self.tensors[layer.name] = layer.infer([self.tensors[s] for s in layer.inputs])
        except DescriptionError as e:
            raise ImportError_(f"{self.label}: {e}") from None
        for s in layer.inputs:
            self.readers[s] = self.readers.get(s, 0) + 1
        self.layers.append(layer)
        return layer.name

    def replace(self, name: str, layer: Layer) -> None:
        i = next(i for i, la in enumerate(self.layers) if la.name == name)
        self.layers[i] = layer
        self.tensors[name] = layer.infer([self.tensors[s] for s in layer.inputs])

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    # the walk
    def run(self) -> tuple[Network, ImportInfo]:
        g = self.g
        if len(g.input) != 1:
            raise ImportError_(
                f"{self.label}: must have exactly one graph input, not {len(g.input)}"
            )
        if len(g.output) != 1:
            raise ImportError_(
                f"{self.label}: must have exactly one graph output, not {len(g.output)}"
            )
        inp = g.input[0]
        shape = self.model.get_tensor_shape(inp.name)
        if not shape or any(not isinstance(s, int) or s < 1 for s in shape):
            raise ImportError_(f"{self.label}: input {inp.name!r} needs a static shape")
        name = self.add(
            Input(name="input", inputs=(), shape=tuple(shape[1:]), qtype=self.input_type)
        )
        one = np.array([Fraction(1)], dtype=object)
        self.acts[inp.name] = _Act(
            name,
            one * self.input_type.real_scale,
            np.array([Fraction(0)], dtype=object),
            tuple(shape[1:]),
            len(shape),
        )
        for node in g.node:
            self.lower(node)
        out_name = g.output[0].name
        # the tensor the IR output stands for: before trailing host ops
        final = out_name
        for node in reversed(self.host_nodes):
            final = node.input[0]
        if final not in self.acts:
            raise ImportError_(f"{self.label}: output {out_name!r} is not computed from the input")
        act = self.acts[final]
        net = Network(self.g.name or "imported", self.layers, output=act.src)
        info = ImportInfo(
            source=self.label,
            sha256="",
            input_name=inp.name,
            onnx_input_shape=tuple(shape[1:]),
            input_real_scale=self.input_type.real_scale,
            output_tensor=final,
            scale=act.scale,
            offset=act.offset,
            chain=list(act.chain),
            host_nodes=list(self.host_nodes),
            consts=self.consts,
            layer_tensors=self.layer_tensors,
            model=self.model,
        )
        return net, info

    def lower(self, node) -> None:
        op = node.op_type
        ins = list(node.input)
        # a node of constants only is folded (weights' Quant, Transpose, shape arithmetic)
        if all((not i) or i in self.consts for i in ins):
            vals = [self.consts.get(i) if i else None for i in ins]
            outs = _eval_node(node, vals, np.float32)
            for name, v in zip(node.output, outs, strict=False):
                self.consts[name] = np.asarray(v)
            if op in ("Quant", "IntQuant", "BipolarQuant"):
                self.quant_scale[node.output[0]] = np.asarray(self.consts[ins[1]], np.float64)
            return
        if self.host_nodes and op not in HOST_OPS:
            raise self.err(node, "only host-side ops (Softmax, ArgMax, TopK) may follow one")
        act_inputs = [i for i in ins if i in self.acts]
        if len(act_inputs) != 1 or (ins[0] not in self.acts and op not in ("Add", "Mul")):
            raise self.err(
                node, "must read exactly one activation (first input) and constants otherwise"
            )
        if op in HOST_OPS:
            if self.consumers.get(node.output[0], 0) > 0 and op != "TopK":
                nxt = [n for n in self.g.node if node.output[0] in n.input]
                if any(n.op_type not in HOST_OPS for n in nxt):
                    raise self.err(node, "must be at the end of the graph (a host-side op)")
            self.host_nodes.append(node)
            return
        act = self.acts[act_inputs[0]]
        handler: Callable = getattr(self, f"op_{op}", None)
        if handler is None:
            raise self.err(node, "is not supported here")
        out = handler(node, act)
        self.acts[node.output[0]] = out

    # -- element-wise: extend the chain --------------------------------------------------

    def _chain(self, node, act: _Act) -> _Act:
        x_name = next(i for i in node.input if i in self.acts)
        if node.input[0] != x_name:
            if node.op_type not in ("Add", "Mul"):
                raise self.err(node, "the activation must be the first input")
            node = _swap_inputs(node)
        for c in node.input[1:]:
            if c and c not in self.consts:
                raise self.err(node, f"input {c!r} must be a constant")
            if c:
                self._per_channel(node, self.consts[c], act)
        flippable = act.flippable and self.consumers.get(x_name, 0) == 1
        return _Act(
            act.src, act.scale, act.offset, act.shape, act.rank, [*act.chain, node], flippable
        )

    def _per_channel(self, node, c: np.ndarray, act: _Act) -> np.ndarray:
        """A constant operand as a (C,) or (1,) array; it may vary only along channels."""
        c = np.asarray(c, dtype=np.float64)
        if c.size == 1:
            return c.reshape(1)
        full = np.broadcast_to(c, (1, *act.shape)).reshape(act.shape)
        ch = full.reshape(act.shape[0], -1)
        if not np.all(ch == ch[:, :1]):
            raise self.err(node, "constant operands may vary along the channel axis only")
        return ch[:, 0].copy()

    op_Sub = op_Mul = op_Div = op_Relu = op_Clip = _chain

    def op_Add(self, node, act):
        """A bias right after a product folds into it (exactly); otherwise a chain op."""
        x_name = next(i for i in node.input if i in self.acts)
        other = [i for i in node.input if i != x_name]
        if (
            not act.chain
            and act.flippable
            and self.consumers.get(x_name, 0) == 1
            and len(other) == 1
            and other[0] in self.consts
        ):
            full = self._per_channel(node, self.consts[other[0]], act)
            return self._fold_bias(node, act, _fracs(np.broadcast_to(full, (act.shape[0],))))
        return self._chain(node, act)

    def op_Identity(self, node, act):
        return act

    def op_BatchNormalization(self, node, act):
        for c in node.input[1:5]:
            if c not in self.consts:
                raise self.err(node, f"parameter {c!r} must be a constant")
        return self._chain(node, act)

    # -- quantizers: end the chain in a MultiThreshold -------------------------------------

    def op_Quant(self, node, act):
        at = _attrs(node)
        try:
            scale, zp, bits = (self.consts[i] for i in node.input[1:4])
        except KeyError:
            raise self.err(node, "scale, zero point and bit width must be constants") from None
        bits = np.asarray(bits, dtype=np.float64)
        if bits.size != 1 or bits.item() != round(bits.item()) or not 1 <= bits.item() <= 32:
            raise self.err(node, f"bit width must be one integer in [1, 32], not {bits.tolist()}")
        b = int(bits.item())
        signed, narrow = bool(at.get("signed", 1)), bool(at.get("narrow", 0))
        mode = at.get("rounding_mode", "ROUND")
        try:
            rounding = parse_rounding(mode, dialect="qonnx")
        except ValueError as e:
            raise self.err(node, str(e)) from None
        s = self._per_channel(node, scale, act)
        z = self._per_channel(node, zp, act)
        if np.any(s <= 0) or not np.all(np.isfinite(s)):
            raise self.err(node, "scale must be positive and finite")
        if np.any(z != np.round(z)):
            raise self.err(node, f"zero point must hold integers, not {z.tolist()}")
        if b == 1 and signed:  # qonnx executes a 1-bit signed Quant as bipolar
            return self._threshold(
                node, act, "bipolar", dict(s=s, z=z), 2 * _fracs(s), _fracs(s) * (_fracs(-1 - z))
            )
        qt = QType.int(b, signed, narrow)
        if qt.max - qt.min > MAX_LEVELS:
            raise self.err(
                node,
                f"a {b}-bit activation quantizer needs more than "
                f"{MAX_LEVELS} thresholds; at most 12 bits are supported",
            )
        spec = dict(s=s, z=z, lo=qt.min, hi=qt.max, rounding=rounding, mode=mode)
        return self._threshold(node, act, "quant", spec, _fracs(s), np.array([Fraction(0)]))

    op_IntQuant = op_Quant

    def op_BipolarQuant(self, node, act):
        if node.input[1] not in self.consts:
            raise self.err(node, "scale must be a constant")
        s = self._per_channel(node, self.consts[node.input[1]], act)
        if np.any(s <= 0):
            raise self.err(node, "scale must be positive")
        z = np.zeros_like(s)
        return self._threshold(node, act, "bipolar", dict(s=s, z=z), 2 * _fracs(s), -_fracs(s))

    def op_MultiThreshold(self, node, act):
        at = _attrs(node)
        if at.get("data_layout", "") not in ("", "NCHW", "NC"):
            raise self.err(node, f"data_layout {at['data_layout']!r} is not supported")
        if node.input[1] not in self.consts:
            raise self.err(node, "thresholds must be a constant")
        t = np.asarray(self.consts[node.input[1]], dtype=np.float64)
        if t.ndim != 2 or t.shape[0] not in (1, act.shape[0]):
            raise self.err(node, f"thresholds must be (C, T) or (1, T), not {t.shape}")
        spec = dict(t=np.sort(t, axis=1))
        return self._threshold(
            node,
            act,
            "mt",
            spec,
            np.array([_f(at.get("out_scale", 1.0))]),
            np.array([_f(at.get("out_bias", 0.0))]),
        )

    def _threshold(self, node, act: _Act, kind, spec, out_scale, out_offset) -> _Act:
        c = act.shape[0]
        direction = self._direction(act)
        if np.any(direction < 0):
            act = self._flip(node, act, direction < 0)
        src = self.tensors[act.src]
        if kind in ("bipolar",):
            targets = np.array([1.0])
        elif kind == "quant":
            targets = np.arange(spec["lo"] + 1, spec["hi"] + 1, dtype=np.float64)
        else:
            targets = np.arange(1, spec["t"].shape[1] + 1, dtype=np.float64)
        exact = all(n.op_type in EXACT_CHAIN for n in act.chain)
        if exact:
            approx = self._level_fn(node, act, kind, spec, np.float64)
            thr = search_thresholds(approx, targets, src.lo, src.hi, c)
            thr = self._verify_exact(node, act, kind, spec, targets, thr, src.lo, src.hi)
        else:
            thr = search_thresholds(
                self._level_fn(node, act, kind, spec, np.float32), targets, src.lo, src.hi, c
            )
        if np.all(thr == thr[:1]):
            thr = thr[:1]
        name = node.output[0]
        if kind == "bipolar":
            layer = MultiThreshold(
                name=name, inputs=(act.src,), thresholds=thr, out_type=QType.int(1, False)
            )
        elif kind == "quant":
            zs = spec["z"].astype(np.int64)
            if np.any(zs != zs[0]):
                raise self.err(node, "per-channel zero points are not supported")
            layer = MultiThreshold(
                name=name, inputs=(act.src,), thresholds=thr, out_bias=int(spec["lo"] - zs[0])
            )
        else:
            layer = MultiThreshold(name=name, inputs=(act.src,), thresholds=thr)
        self.add(_unique(layer, self.tensors))
        lname = self.layers[-1].name
        self.layer_tensors[lname] = (node.output[0], out_scale, out_offset)
        return _Act(lname, out_scale, out_offset, act.shape, act.rank)

    def _direction(self, act: _Act) -> np.ndarray:
        """+1/-1 per channel: whether the chain rises or falls with the integer."""
        d = np.array([1 if v >= 0 else -1 for v in act.scale], dtype=np.int64)
        for n in act.chain:
            if n.op_type in ("Mul", "Div"):
                d = d * np.sign(self._per_channel(n, self.consts[n.input[1]], act)).astype(int)
            elif n.op_type == "BatchNormalization":
                d = d * np.sign(self._per_channel(n, self.consts[n.input[1]], act)).astype(int)
        return np.where(d == 0, 1, d)

    def _flip(self, node, act: _Act, flip: np.ndarray) -> _Act:
        """Negate the producer's channels in ``flip`` so every channel rises; exact."""
        src = next(la for la in self.layers if la.name == act.src)
        if (
            not act.flippable
            or self.readers.get(act.src)
            or not isinstance(src, Dense | Conv2d | BinaryDense | BinaryConv2d)
        ):
            raise self.err(
                node,
                "falls with its input on some channel (negative scale), "
                "which needs a product layer right before it, read by nothing else",
            )
        flip = np.broadcast_to(flip, (src.weight.shape[0],))
        f = flip.reshape((-1,) + (1,) * (src.weight.ndim - 1))
        scale = np.broadcast_to(act.scale, flip.shape).copy()
        offset = np.broadcast_to(act.offset, flip.shape).copy()
        if isinstance(src, BinaryDense | BinaryConv2d):
            weight = np.where(f, 1 - src.weight, src.weight)  # P becomes K - P
            k = int(src.weight[0].size)
            offset = np.where(flip, offset + scale * k, offset)
        else:
            weight = np.where(f, -src.weight, src.weight)
        scale = np.where(flip, -scale, scale)
        import dataclasses

        fields = {fl.name: getattr(src, fl.name) for fl in dataclasses.fields(src)}
        changes = {"weight": weight}
        if getattr(src, "bias", None) is not None:
            changes["bias"] = np.where(flip, -src.bias, src.bias)
        self.replace(src.name, type(src)(**(fields | changes)))
        return _Act(act.src, scale, offset, act.shape, act.rank, act.chain, False)

    def _level_fn(self, node, act, kind, spec, dtype):
        """Vectorised quantizer level of integer candidates (C, L), in ``dtype``."""
        c = act.shape[0]
        sc = np.array([float(v) for v in act.scale], dtype=np.float64).reshape(-1, 1)
        of = np.array([float(v) for v in act.offset], dtype=np.float64).reshape(-1, 1)
        chain_fn = self._chain_fn(act, dtype)

        def level(acc):
            x = (acc * sc + of).astype(dtype)  # (C, L)
            x = chain_fn(np.broadcast_to(x, (c, acc.shape[1])))
            return self._quant_level(kind, spec, x, dtype)

        return level

    def _chain_fn(self, act: _Act, dtype):
        """The chain as a function of (C, L) arrays; float32 chains with float-only work run
        through onnxruntime, the executor's own kernels."""
        if not act.chain:
            return lambda x: x
        if dtype == np.float64 or all(n.op_type in EXACT_CHAIN for n in act.chain):

            def run(x):
                y = x.T.reshape((x.shape[1], x.shape[0]) + (1,) * (act.rank - 2))
                for n in act.chain:
                    y = _eval_node(
                        n, [y, *(self.consts[i] if i else None for i in n.input[1:])], dtype
                    )[0]
                return y.reshape(x.shape[1], x.shape[0]).T

            return run
        return _ort_chain(act, self.consts)

    def _quant_level(self, kind, spec, x, dtype):
        """Quantizer output level (q, bit or count) of chain values ``x`` (C, L), as the
        qonnx executor computes it in ``dtype``."""
        if kind == "bipolar":
            s = spec["s"].astype(dtype).reshape(-1, 1)
            z = spec["z"].astype(dtype).reshape(-1, 1)
            return ((x / s + z) >= 0).astype(np.float64)
        if kind == "quant":
            s = spec["s"].astype(dtype).reshape(-1, 1)
            z = spec["z"].astype(dtype).reshape(-1, 1)
            y = np.clip(x / s + z, spec["lo"], spec["hi"])
            if dtype == np.float32:  # the executor's own rounding functions, in float32
                from qonnx.custom_op.general.intquant import resolve_rounding_mode

                return resolve_rounding_mode(spec["mode"])(y).astype(np.float64)
            return round_real(y.astype(np.float64), spec["rounding"])
        t = spec["t"]
        t = t.astype(dtype)[:, None, :]
        return (x[..., None] >= t).sum(axis=2).astype(np.float64)

    def _verify_exact(self, node, act, kind, spec, targets, thr, lo, hi) -> np.ndarray:
        """Check each threshold with exact rational arithmetic; step it where the float64
        bisection was off (within its rounding error of a boundary)."""

        def level(c, a):
            return self._exact_level(node, act, kind, spec, c, a)

        out = thr.copy()
        done: dict = {}
        for c in range(thr.shape[0]):
            key = self._channel_key(act, kind, spec, c)
            if key in done and np.array_equal(thr[c], thr[done[key]]):
                out[c] = out[done[key]]
                continue
            done[key] = c
            for k, target in enumerate(targets):
                t = int(out[c, k])
                steps = 0
                while t <= hi and level(c, t) < target:
                    t += 1
                    steps += 1
                while t > lo and level(c, t - 1) >= target:
                    t -= 1
                    steps += 1
                if steps > 64:  # pragma: no cover - float64 bisection is never this far off
                    raise self.err(node, "threshold search did not converge")
                out[c, k] = t
        return out

    def _channel_key(self, act, kind, spec, c: int) -> tuple:
        """Every parameter the exact level function of channel ``c`` depends on."""

        def pick(arr):
            arr = np.asarray(arr).reshape(-1)
            return arr[c if len(arr) > 1 else 0]

        key = [pick(act.scale), pick(act.offset)]
        for n in act.chain:
            key += [n.op_type] + [pick(self.consts[i]) for i in n.input[1:] if i]
        if kind == "mt":
            key.append(tuple(spec["t"][c if spec["t"].shape[0] > 1 else 0]))
        else:
            key += [float(pick(spec["s"])), float(pick(spec["z"]))]
        return tuple(key)

    def _exact_level(self, node, act, kind, spec, c: int, a: int):
        def pick(arr):
            return arr[c if len(arr) > 1 else 0]

        x = pick(act.scale) * a + pick(act.offset)
        for n in act.chain:
            op = n.op_type
            k = None
            if len(n.input) > 1 and n.input[1]:
                k = _f(pick(self._per_channel(n, self.consts[n.input[1]], act)))
            if op == "Add":
                x = x + k
            elif op == "Sub":
                x = x - k
            elif op == "Mul":
                x = x * k
            elif op == "Div":
                x = x / k
            elif op == "Relu":
                x = max(x, Fraction(0))
            elif op == "Clip":
                lo_ = n.input[1] if len(n.input) > 1 else ""
                hi_ = n.input[2] if len(n.input) > 2 else ""
                if lo_:
                    x = max(x, _f(np.asarray(self.consts[lo_]).ravel()[0]))
                if hi_:
                    x = min(x, _f(np.asarray(self.consts[hi_]).ravel()[0]))
        if kind == "bipolar":
            return 1.0 if x / _f(pick(spec["s"])) + _f(pick(spec["z"])) >= 0 else 0.0
        if kind == "quant":
            v = x / _f(pick(spec["s"])) + _f(pick(spec["z"]))
            v = min(max(v, Fraction(spec["lo"])), Fraction(spec["hi"]))
            return float(round_fraction(v, spec["rounding"]))
        row = spec["t"][c if spec["t"].shape[0] > 1 else 0]
        return float(sum(1 for t in row if x >= _f(t)))

    # -- products --------------------------------------------------------------------------

    def _affine_input(self, node, act: _Act) -> _Act:
        """Fold an exact chain of constant Add/Sub/Mul/Div into the affine map, and a Relu or
        Clip on an integer grid into a Clip layer, so a product can read the integers."""
        scale, offset, src = act.scale, act.offset, act.src
        for n in act.chain:
            op = n.op_type
            if op in ("Add", "Sub", "Mul", "Div"):
                k = _fracs(self._per_channel(n, self.consts[n.input[1]], act))
                if op == "Add":
                    offset = offset + k
                elif op == "Sub":
                    offset = offset - k
                elif op == "Mul":
                    scale, offset = scale * k, offset * k
                elif 0 in k:
                    raise self.err(n, "divides by zero")
                else:
                    scale, offset = scale / k, offset / k
            elif op in ("Relu", "Clip") and len(scale) == 1 and len(offset) == 1:
                if op == "Clip" and len(n.input) > 1 and n.input[1:] and any(n.input[1:]):
                    raise self.err(n, "a Clip with bounds must be followed by a quantizer")
                s, o = scale[0], offset[0]
                z = -o / s
                if s <= 0 or z.denominator != 1:
                    raise self.err(n, "a Relu off the integer grid must feed a quantizer")
                lname = self.add(
                    _unique(Clip(name=n.output[0], inputs=(src,), min=int(z)), self.tensors)
                )
                src = lname
            elif op == "Identity":
                continue
            else:
                raise self.err(n, "must feed a quantizer before any product layer")
        return _Act(src, scale, offset, act.shape, act.rank)

    def _weight(self, node, name: str, axis: int):
        """Integer weights and exact per-output-channel scales of a constant along ``axis``
        (the output-channel axis): the Quant grid when the constant is a Quant's output,
        otherwise each channel's float32 values as integers times a power of two."""
        w = np.asarray(self.consts[name], dtype=np.float64)
        wm = np.moveaxis(w, axis, 0)
        n = wm.shape[0]
        flat = wm.reshape(n, -1)
        scales = np.empty(n, dtype=object)
        ints = np.empty(flat.shape, dtype=np.int64)
        qs = self.quant_scale.get(name)
        for c in range(n):
            row = flat[c]
            s = None
            if qs is not None:
                sm = np.moveaxis(np.broadcast_to(qs, w.shape), axis, 0).reshape(n, -1)[c]
                if np.all(sm == sm[0]):
                    q = row / sm[0]
                    if np.all(q == np.round(q)) and np.all(np.round(q) * sm[0] == row):
                        s = _f(sm[0])
                        ints[c] = np.round(q).astype(np.int64)
            if s is None:  # exact dyadic decomposition of float values
                e = 0
                while np.any(np.ldexp(row, e) != np.round(np.ldexp(row, e))):
                    e += 1
                    if e > 160:
                        raise self.err(node, f"constant {name!r} is not finite")
                big = np.max(np.abs(np.ldexp(row, e)), initial=0)
                if big >= 2.0**40:
                    raise self.err(
                        node,
                        f"float weights of {name!r} need more than 40 bits "
                        "as integers; quantize them",
                    )
                ints[c] = np.ldexp(row, e).astype(np.int64)
                s = Fraction(1, 2**e) if e >= 0 else Fraction(2 ** (-e))
            scales[c] = s
        wint = np.moveaxis(ints.reshape(wm.shape), 0, axis)
        return wint, scales

    def op_MatMul(self, node, act):
        if node.input[1] not in self.consts or len(act.shape) != 1:
            raise self.err(node, "needs a (N, K) activation times a constant (K, M) matrix")
        return self._dense(node, act, node.input[1], transposed=False, alpha=Fraction(1), bias=None)

    def op_Gemm(self, node, act):
        at = _attrs(node)
        if at.get("transA", 0) or node.input[1] not in self.consts or len(act.shape) != 1:
            raise self.err(node, "needs transA=0, a (N, K) activation and a constant B")
        bias = None
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in self.consts:
                raise self.err(node, "C must be a constant")
            bias = np.asarray(self.consts[node.input[2]], np.float64) * float(
                np.float32(at.get("beta", 1.0))
            )
        return self._dense(
            node,
            act,
            node.input[1],
            bool(at.get("transB", 0)),
            _f(np.float32(at.get("alpha", 1.0))),
            bias,
        )

    def _dense(self, node, act, wname, transposed, alpha, bias):
        act = self._affine_input(node, act)
        if len(set(act.scale)) != 1 or act.scale[0] == 0:
            raise self.err(node, "needs one nonzero input scale for every input feature")
        a = act.scale[0] * alpha
        wint, ws = self._weight(node, wname, axis=0 if transposed else 1)
        wk = wint if transposed else wint.T  # (M, K)
        m, k = wk.shape
        if act.shape != (k,):
            raise self.err(node, f"weight needs {act.shape[0]} inputs, not {k}")
        src_t = self.tensors[act.src]
        off_in = np.broadcast_to(act.offset, (k,))
        binary = (
            src_t.lo >= 0
            and src_t.hi <= 1
            and np.all(np.isin(wk, (-1, 1)))
            and all(o == -act.scale[0] / 2 for o in off_in)
            and bias is None
        )
        name = node.output[0]
        if binary:  # bits b stand for 2b - 1: XNOR-popcount P, dot = 2P - K
            layer = BinaryDense(name=name, inputs=(act.src,), weight=(wk + 1) // 2)
            scale = np.array([a / 2 * s * 2 for s in ws], dtype=object)
            offset = np.array([-(a / 2) * s * k for s in ws], dtype=object)
        else:
            layer = Dense(name=name, inputs=(act.src,), weight=wk)
            scale = np.array([a * s for s in ws], dtype=object)
            rows = wk.astype(object)
            offset = (
                np.array(
                    [
                        sum(off_in[j] * rows[i, j] for j in range(k)) * ws[i] * alpha
                        for i in range(m)
                    ],
                    dtype=object,
                )
                if any(o != 0 for o in off_in)
                else np.array([Fraction(0)] * m, dtype=object)
            )
        self.add(_unique(layer, self.tensors))
        out = _Act(self.layers[-1].name, scale, offset, (m,), 2, flippable=True)
        if bias is not None:
            out = self._fold_bias(node, out, _fracs(np.broadcast_to(bias, (m,))))
        return out

    def _fold_bias(self, node, act: _Act, bias: np.ndarray) -> _Act:
        """Add a per-channel real bias: into the layer's integer bias where it is a whole
        number of accumulator steps, else into the exact offset."""
        layer = next(la for la in self.layers if la.name == act.src)
        steps = [
            (b - o) / s if s != 0 else None
            for b, o, s in zip(
                bias,
                np.broadcast_to(act.offset, bias.shape),
                np.broadcast_to(act.scale, bias.shape),
                strict=True,
            )
        ]
        if (
            isinstance(layer, Dense | Conv2d)
            and all(st is not None and st.denominator == 1 for st in steps)
            and all(o == 0 for o in act.offset)
        ):
            old = layer.bias if layer.bias is not None else 0
            import dataclasses

            fields = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer)}
            newb = np.array([int(st) for st in steps], dtype=np.int64) + old
            self.replace(layer.name, type(layer)(**(fields | {"bias": newb})))
            return _Act(
                act.src,
                act.scale,
                np.array([Fraction(0)] * len(bias), dtype=object),
                act.shape,
                act.rank,
                flippable=act.flippable,
            )
        return _Act(
            act.src,
            act.scale,
            np.broadcast_to(act.offset, bias.shape) + bias,
            act.shape,
            act.rank,
            flippable=act.flippable,
        )

    def op_Conv(self, node, act):
        at = _attrs(node)
        if node.input[1] not in self.consts or len(act.shape) != 3:
            raise self.err(node, "needs a 2-D (N, C, H, W) activation and constant weights")
        if at.get("auto_pad", "NOTSET") != "NOTSET":
            raise self.err(node, "auto_pad is not supported; give pads")
        pads = list(at.get("pads", [0, 0, 0, 0]))
        if pads[0] != pads[2] or pads[1] != pads[3]:
            raise self.err(node, f"pads must be symmetric, not {pads}")
        act = self._affine_input(node, act)
        if len(set(act.scale)) != 1 or act.scale[0] == 0:
            raise self.err(node, "needs one nonzero input scale for every input channel")
        g = int(at.get("group", 1))
        wint, ws = self._weight(node, node.input[1], axis=0)
        a = act.scale[0]
        src_t = self.tensors[act.src]
        off_in = np.broadcast_to(act.offset, (act.shape[0],))
        stride = tuple(at.get("strides", [1, 1]))
        dil = tuple(at.get("dilations", [1, 1]))
        oc, cg = wint.shape[:2]
        binary = (
            src_t.lo >= 0
            and src_t.hi <= 1
            and np.all(np.isin(wint, (-1, 1)))
            and all(o == -a / 2 for o in off_in)
            and g == 1
            and not any(pads)
        )
        if not binary and any(o != 0 for o in off_in) and any(pads):
            raise self.err(node, "zero padding needs an input whose real zero is an integer")
        name = node.output[0]
        if binary:
            layer = BinaryConv2d(
                name=name, inputs=(act.src,), weight=(wint + 1) // 2, stride=stride, dilation=dil
            )
            k = int(wint[0].size)
            scale = np.array([a * s for s in ws], dtype=object)
            offset = np.array([-(a / 2) * s * k for s in ws], dtype=object)
        else:
            layer = Conv2d(
                name=name,
                inputs=(act.src,),
                weight=wint,
                stride=stride,
                padding=(pads[0], pads[1]),
                dilation=dil,
                groups=g,
            )
            scale = np.array([a * s for s in ws], dtype=object)
            sums = wint.reshape(oc, cg, -1).sum(axis=2).astype(object)  # (OC, C/g)
            per = oc // g
            offset = np.array(
                [
                    ws[o] * sum(off_in[(o // per) * cg + j] * sums[o, j] for j in range(cg))
                    for o in range(oc)
                ],
                dtype=object,
            )
        self.add(_unique(layer, self.tensors))
        t = self.tensors[self.layers[-1].name]
        out = _Act(self.layers[-1].name, scale, offset, t.shape, 4, flippable=True)
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in self.consts:
                raise self.err(node, "bias must be a constant")
            out = self._fold_bias(node, out, _fracs(self.consts[node.input[2]].reshape(-1)))
        return out

    # -- data movement ---------------------------------------------------------------------

    def _moved(self, node, act: _Act, layer: Layer, new_shape, rank) -> _Act:
        if (
            act.src == "input"
            and not act.chain
            and len(self.layers) == 1
            and self.consumers.get(self.g.input[0].name) == 1
        ):
            # a reshape of the raw input only: the network reads the reshaped input directly
            # (same C-order data), which keeps the hardware's input stream flat
            inp = self.layers[0]
            self.layers = []
            self.tensors = {}
            self.add(Input(name="input", inputs=(), shape=tuple(new_shape), qtype=inp.qtype))
            return _Act("input", act.scale, act.offset, tuple(new_shape), rank)
        if any(
            not np.asarray(self.consts[i]).size == 1 for n in act.chain for i in n.input[1:] if i
        ):
            raise self.err(node, "cannot move data between per-channel element-wise ops")

        def regroup(arr):
            if len(arr) == 1:
                return arr
            full = np.broadcast_to(arr.reshape((-1,) + (1,) * (len(act.shape) - 1)), act.shape)
            full = full.reshape(new_shape)
            ch = full.reshape(new_shape[0], -1)
            if not all(np.all(ch[i] == ch[i, 0]) for i in range(len(ch))):
                raise self.err(node, "per-channel scales do not survive this reshape")
            return ch[:, 0].copy()

        self.add(_unique(layer, self.tensors))
        return _Act(
            self.layers[-1].name,
            regroup(act.scale),
            regroup(act.offset),
            tuple(new_shape),
            rank,
            list(act.chain),
        )

    def op_Reshape(self, node, act):
        if node.input[1] not in self.consts:
            raise self.err(node, "shape must be a constant")
        shape = [int(s) for s in np.asarray(self.consts[node.input[1]]).ravel()]
        full = (1, *act.shape)
        shape = [full[i] if s == 0 else s for i, s in enumerate(shape)]
        out = np.empty(full).reshape(shape).shape
        if out[0] != 1:
            raise self.err(node, "must keep the batch axis first")
        new = tuple(out[1:])
        if new == act.shape:
            return act
        layer = (
            Flatten(name=node.output[0], inputs=(act.src,))
            if len(new) == 1
            else Reshape(name=node.output[0], inputs=(act.src,), shape=new)
        )
        return self._moved(node, act, layer, new, len(out))

    def op_Flatten(self, node, act):
        if _attrs(node).get("axis", 1) != 1:
            raise self.err(node, "axis must be 1")
        new = (int(np.prod(act.shape)),)
        if new == act.shape:
            return act
        return self._moved(node, act, Flatten(name=node.output[0], inputs=(act.src,)), new, 2)

    def op_Transpose(self, node, act):
        perm = list(_attrs(node).get("perm", list(range(act.rank))[::-1]))
        full = (1, *act.shape)
        moved = [p for p in perm if full[p] != 1]
        if perm[0] != 0 or moved != sorted(moved):
            raise self.err(
                node,
                f"perm {perm} moves data; only transposes of size-1 axes (reshapes) are supported",
            )
        new = tuple(full[p] for p in perm)[1:]
        return self._moved(
            node, act, Reshape(name=node.output[0], inputs=(act.src,), shape=new), new, len(perm)
        )

    def op_MaxPool(self, node, act):
        at = _attrs(node)
        if (
            len(act.shape) != 3
            or at.get("ceil_mode", 0)
            or any(d != 1 for d in at.get("dilations", [1, 1]))
            or at.get("auto_pad", "NOTSET") != "NOTSET"
        ):
            raise self.err(node, "needs a (N, C, H, W) input, ceil_mode 0, no dilation")
        pads = list(at.get("pads", [0, 0, 0, 0]))
        if pads[0] != pads[2] or pads[1] != pads[3]:
            raise self.err(node, f"pads must be symmetric, not {pads}")
        if act.chain or any(s <= 0 for s in act.scale):
            raise self.err(node, "must read a quantized (integer, rising) activation")
        k = tuple(at["kernel_shape"])
        layer = MaxPool2d(
            name=node.output[0],
            inputs=(act.src,),
            kernel=k,
            stride=tuple(at.get("strides", k)),
            padding=(pads[0], pads[1]),
        )
        self.add(_unique(layer, self.tensors))
        t = self.tensors[self.layers[-1].name]
        return _Act(self.layers[-1].name, act.scale, act.offset, t.shape, 4)


def _unique(layer: Layer, taken: dict) -> Layer:
    """``layer`` renamed if its (ONNX tensor) name is taken."""
    if layer.name not in taken and layer.name != "input":
        return layer
    import dataclasses

    i = 1
    while f"{layer.name}_{i}" in taken:
        i += 1
    return dataclasses.replace(layer, name=f"{layer.name}_{i}")


def _swap_inputs(node):
    import onnx

    new = onnx.NodeProto()
    new.CopyFrom(node)
    new.input[0], new.input[1] = node.input[1], node.input[0]
    return new


def _ort_chain(act: _Act, consts: dict):
    """The float32 chain as an onnxruntime session over (L, C, 1...) inputs."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper

    x_name = "chain_in"
    nodes, inits, cur = [], {}, x_name
    for n in act.chain:
        new = onnx.NodeProto()
        new.CopyFrom(n)
        new.input[0] = cur
        for i in n.input[1:]:
            if i:
                inits[i] = numpy_helper.from_array(np.asarray(consts[i]), i)
        nodes.append(new)
        cur = n.output[0]
    shape = [None, act.shape[0]] + [1] * (act.rank - 2)
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info(x_name, onnx.TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(cur, onnx.TensorProto.FLOAT, None)],
        list(inits.values()),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def run(x):  # x: (C, L) float32
        lx = np.ascontiguousarray(x.T).reshape([x.shape[1], x.shape[0]] + [1] * (act.rank - 2))
        y = sess.run(None, {x_name: lx.astype(np.float32)})[0]
        return y.reshape(x.shape[1], x.shape[0]).T

    return run


# -- public API ----------------------------------------------------------------------------


def import_qonnx(path: str | Path, *, input_type: str | QType = "fixed<16,6>") -> Network:
    """Import a QONNX model as an integer :class:`~models.ir.Network`.

    Parameters
    ----------
    path
        The ``.onnx`` file.
    input_type
        Type of the network input (the ONNX input is float; its values are taken on this
        type's grid), default ``fixed<16,6>``.

    Returns
    -------
    Network
        With attribute ``imported`` (:class:`ImportInfo`): the exact output scale and offset,
        trailing element-wise nodes and host-side ops.

    Raises
    ------
    ImportError_
        One line: a malformed file, or every unsupported node at once.
    """
    path = Path(path)
    label = str(path)
    if isinstance(input_type, str):
        try:
            input_type = parse_qtype(input_type)
        except (TypeError, ValueError) as e:
            raise ImportError_(f"--input-type: {e}") from None
    if input_type.kind is Kind.BIPOLAR:
        raise ImportError_(f"input type must be an integer or fixed-point type, not {input_type}")
    proto, digest = _read(path)
    _check_supported(proto, label)
    with warnings.catch_warnings():
        # qonnx warns when it renames old-style (finn) op domains; that is expected here
        warnings.simplefilter("ignore")
        model = _clean(proto, label)
    _check_supported(model.model, label)
    net, info = _Lowering(model, label, input_type).run()
    net.name = path.stem
    info.sha256 = digest
    net.imported = info
    return net


def save_import(net: Network, outdir: str | Path) -> dict:
    """Write ``net`` as ``outdir/<name>.yaml`` + ``.npz`` and ``outdir/import.json`` (the
    exact output scale/offset and host-side ops). Returns the paths written."""
    from models.loader import save_description

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    yaml_path, npz_path = save_description(net, outdir / f"{net.name}.yaml")
    info: ImportInfo = net.imported
    doc = {
        "source": info.source,
        "sha256": info.sha256,
        "input": {
            "onnx_name": info.input_name,
            "onnx_shape": list(info.onnx_input_shape),
            "real_scale": str(info.input_real_scale),
        },
        "output": {
            "onnx_tensor": info.output_tensor,
            "scale": [str(v) for v in info.scale],
            "offset": [str(v) for v in info.offset],
            "elementwise_after": [n.op_type for n in info.chain],
            "host_ops": info.host_ops,
        },
    }
    from models.fileio import atomic_write

    meta = outdir / "import.json"
    atomic_write(meta, json.dumps(doc, indent=1) + "\n")
    return {"description": str(yaml_path), "weights": str(npz_path), "import": str(meta)}


# -- proof of equivalence --------------------------------------------------------------------


def check_import(net: Network, vectors: int, seed: int = 0) -> dict:
    """Run ``vectors`` seeded random inputs (on the input type's grid) through the imported
    network and two references: qonnx's ``execute_onnx`` (float32) and the same graph in
    float64 (:func:`evaluate_graph`).

    Returns counts of samples whose output (before host-side ops) matches the float32
    executor bit for bit (``exact``), differs from it but matches the float64 run
    (``float32_explained``: the executor's float32 rounded an exact value), or neither
    (``unexplained``), with the first differing layer of the first such sample.
    """
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    from models.golden import random_inputs, trace

    info: ImportInfo = net.imported
    x_int = random_inputs(net, vectors, seed)
    x = _affine_value(
        x_int.reshape(vectors, 1, -1), np.array([info.input_real_scale]), np.array([Fraction(0)])
    ).reshape(vectors, *info.onnx_input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = info.model.transform(ChangeBatchSize(vectors)).transform(InferShapes())
        ref32 = execute_onnx(
            model, {info.input_name: x.astype(np.float32)}, return_full_exec_context=True
        )
    ref64 = evaluate_graph(model, x, np.float64)
    ours = trace(net, x_int)
    q = np.asarray(ours[net.output])
    o32 = info.dequantize(q, np.float32)
    o64 = info.dequantize(q, np.float64)
    r32 = np.asarray(ref32[info.output_tensor], dtype=np.float32).reshape(o32.shape)
    r64 = np.asarray(ref64[info.output_tensor], dtype=np.float64).reshape(o64.shape)
    axes = tuple(range(1, o32.ndim))
    same32 = np.all(o32 == r32, axis=axes)
    same64 = np.all(o64 == r64, axis=axes)
    explained = ~same32 & same64
    unexplained = ~same32 & ~same64

    def first_layer(i: int, ref: dict) -> str | None:
        for layer in net.layers:
            if layer.name not in info.layer_tensors:
                continue
            tensor, scale, offset = info.layer_tensors[layer.name]
            v = np.asarray(ours[layer.name])[i : i + 1]
            mine = _affine_value(v.reshape(1, v.shape[1], -1), scale, offset).reshape(v.shape)
            if not np.array_equal(
                mine, np.asarray(ref[tensor], np.float64)[i : i + 1].reshape(v.shape)
            ):
                return layer.name
        return net.output

    doc = {
        "vectors": int(vectors),
        "seed": int(seed),
        "compared_tensor": info.output_tensor,
        "exact": int(same32.sum()),
        "float32_explained": int(explained.sum()),
        "unexplained": int(unexplained.sum()),
        "float64_agrees": int(same64.sum()),
        "host_ops": info.host_ops,
    }
    if explained.any():
        i = int(np.argmax(explained))
        doc["first_float32_explained"] = {"sample": i, "layer": first_layer(i, ref32)}
    if unexplained.any():
        i = int(np.argmax(unexplained))
        doc["first_unexplained"] = {"sample": i, "layer": first_layer(i, ref64)}
    if info.host_nodes:
        final = info.host_nodes[-1].output[0]
        host = info.postprocess(q, np.float32)
        ref = np.asarray(ref32[final]).reshape(host.shape)
        if info.host_nodes[-1].op_type in ("ArgMax", "TopK"):
            doc["host_output_equal"] = int(np.all(host == ref, axis=axes).sum())
        else:
            top = np.argmax(host.reshape(vectors, -1), axis=1)
            doc["host_argmax_equal"] = int((top == np.argmax(ref.reshape(vectors, -1), 1)).sum())
            doc["host_max_abs_diff"] = float(np.max(np.abs(host - ref)))
    return doc
