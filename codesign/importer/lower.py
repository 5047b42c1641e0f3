"""Lowering of a cleaned QONNX graph to the integer Network IR: :class:`ImportInfo` (what
an imported network needs beside its integers) and the walk ``Lowering``, with the
element-wise ops that extend an activation's pending chain."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from codesign.models.errors import DescriptionError, UserError
from codesign.models.ir import Layer, Network, Tensor
from codesign.models.layers import Add as AddLayer
from codesign.models.layers import Input, SumPool2d
from codesign.models.loader import check_tensor_size
from codesign.models.names import layer_name_problem, safe_name
from codesign.models.qtype import QType

from .common import HOST_OPS, Act, ImportError_, affine_value, to_fractions, unique_layer
from .floateval import eval_node, node_attrs
from .products import ProductOps
from .quantizers import QuantizerOps, exact_quant_ints

#: Constant data movement a weight may pass through between its Quant and its product.
MOVES = frozenset({"Transpose", "Reshape", "Identity", "Flatten"})


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
        x = affine_value(q, self.scale, self.offset)
        x = x.astype(dtype)
        for node in self.chain:
            x = eval_node(node, [x, *(self.consts[n] for n in node.input[1:])], dtype)[0]
        return x

    def postprocess(self, q: np.ndarray, dtype=np.float32) -> np.ndarray:
        """The source graph's final output (host ops applied) from integer outputs ``q``."""
        x = self.dequantize(q, dtype)
        for node in self.host_nodes:
            x = eval_node(node, [x, *(self.consts[n] for n in node.input[1:] if n)], dtype)[0]
        return x


class Lowering(QuantizerOps, ProductOps):
    """The walk over the cleaned graph: one activation record per ONNX tensor, element-wise
    nodes extend its chain; quantizers (:class:`QuantizerOps`) and products and data
    movement (:class:`ProductOps`) add IR layers."""

    def __init__(self, model, label: str, input_type: QType, original: dict | None = None):
        self.model = model
        self.original = original or {}  # cleaned node name -> name in the user's file
        self.label = label
        self.g = model.graph
        self.consts: dict[str, np.ndarray] = {
            i.name: np.asarray(model.get_initializer(i.name)) for i in self.g.initializer
        }
        # constant tensor -> (exact integers, scale) of the Quant that made it
        self.quant_int: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.acts: dict[str, Act] = {}
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
        name = self.original.get(node.name, node.name)
        return ImportError_(f"{self.label}: node {name!r} ({node.op_type}): {message}")

    def add(self, layer: Layer) -> str:
        try:
            self.tensors[layer.name] = layer.infer([self.tensors[s] for s in layer.inputs])
            check_tensor_size(self.tensors[layer.name].shape, layer.name)
        except DescriptionError as e:
            raise ImportError_(f"{self.label}: {e}") from None
        for s in layer.inputs:
            self.readers[s] = self.readers.get(s, 0) + 1
        self.layers.append(layer)
        return layer.name

    def _safe_names(self, output: str) -> str:
        """Rename the layers whose (ONNX tensor) names are not valid layer names
        (:mod:`codesign.models.names`: ``/fc1/Gemm_output_0``, ``dense.bias:0`` or two that
        differ only in case) to valid unique ones, in :attr:`layers` and
        :attr:`layer_tensors`; returns ``output``'s new name. qonnx's readable names
        (``MatMul_0_out0``) are kept as they are."""
        new: dict[str, str] = {}
        taken: set[str] = set()
        for la in self.layers:
            name = la.name
            if (
                layer_name_problem(name)
                or name.casefold() in taken
                or (name == "input" and not isinstance(la, Input))
            ):
                name = safe_name(name, taken | {x.name for x in self.layers})
            new[la.name] = name
            taken.add(name.casefold())
        if all(k == v for k, v in new.items()):
            return output
        self.layers = [
            dataclasses.replace(la, name=new[la.name], inputs=tuple(new[s] for s in la.inputs))
            for la in self.layers
        ]
        self.tensors = {new[k]: v for k, v in self.tensors.items() if k in new}
        self.layer_tensors = {new[k]: v for k, v in self.layer_tensors.items()}
        return new[output]

    def replace(self, name: str, layer: Layer) -> None:
        i = next(i for i, la in enumerate(self.layers) if la.name == name)
        self.layers[i] = layer
        self.tensors[name] = layer.infer([self.tensors[s] for s in layer.inputs])

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name)

    # the walk
    def run(self) -> tuple[Network, ImportInfo]:
        """The network and its import record; a malformed graph (an attribute, input or
        initializer of the wrong kind or shape, which qonnx's own ops and the lowering fail
        on with assorted exceptions) is one :class:`ImportError_` naming the node."""
        self.node = None
        try:
            with np.errstate(all="raise"):  # an overflow is an error, not a warning on stderr
                return self._run()
        except UserError:
            raise
        except (ArithmeticError, AssertionError, AttributeError, LookupError, TypeError,
                ValueError) as e:  # fmt: skip
            text = str(e).strip()
            first = text.splitlines()[0] if text else type(e).__name__
            message = f"is malformed: {first}"
            if self.node is None:
                raise ImportError_(f"{self.label}: {message}") from None
            raise self.err(self.node, message) from None

    def _run(self) -> tuple[Network, ImportInfo]:
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
        try:  # before any layer's range analysis
            check_tensor_size(tuple(shape[1:]), inp.name)
        except DescriptionError as e:
            raise ImportError_(f"{self.label}: {e}") from None
        name = self.add(
            Input(name="input", inputs=(), shape=tuple(shape[1:]), qtype=self.input_type)
        )
        one = np.array([Fraction(1)], dtype=object)
        self.acts[inp.name] = Act(
            name,
            one * self.input_type.real_scale,
            np.array([Fraction(0)], dtype=object),
            tuple(shape[1:]),
            len(shape),
        )
        for node in g.node:
            self.node = node
            self.lower(node)
        self.node = None
        out_name = g.output[0].name
        # the tensor the IR output stands for: before trailing host ops
        final = out_name
        for node in reversed(self.host_nodes):
            final = node.input[0]
        if final not in self.acts:
            raise ImportError_(f"{self.label}: output {out_name!r} is not computed from the input")
        act = self.acts[final]
        output = self._safe_names(act.src)
        net = Network(safe_name(self.g.name or "imported", network=True), self.layers, output)
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
            outs = eval_node(node, vals, np.float32)
            for name, v in zip(node.output, outs, strict=False):
                self.consts[name] = np.asarray(v)
            if op in ("Quant", "IntQuant", "BipolarQuant"):
                self.quant_int[node.output[0]] = exact_quant_ints(node, vals, node_attrs(node))
            elif op in MOVES and ins[0] in self.quant_int:  # weights moved after their Quant
                q, sc = self.quant_int[ins[0]]
                moved = [
                    eval_node(node, [a.astype(np.float64), *vals[1:]], np.float64)[0]
                    for a in (q, sc)
                ]
                self.quant_int[node.output[0]] = (moved[0].astype(np.int64), moved[1])
            return
        if self.host_nodes and op not in HOST_OPS:
            raise self.err(node, "only host-side ops (Softmax, ArgMax, TopK) may follow one")
        act_inputs = [i for i in ins if i in self.acts]
        if op == "Add" and len(act_inputs) == 2 and len(ins) == 2:
            self.acts[node.output[0]] = self.residual_add(node, *(self.acts[i] for i in ins))
            return
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

    def _chain(self, node, act: Act) -> Act:
        x_name = next(i for i in node.input if i in self.acts)
        if node.input[0] != x_name:
            if node.op_type not in ("Add", "Mul"):
                raise self.err(node, "the activation must be the first input")
            node = _swap_inputs(node)
        for i, c in enumerate(node.input[1:], start=1):
            if c and c not in self.consts:
                raise self.err(node, f"input {c!r} must be a constant")
            if c:
                self._operand(node, i, act)
        flippable = act.flippable and self.consumers.get(x_name, 0) == 1
        return Act(
            act.src, act.scale, act.offset, act.shape, act.rank, [*act.chain, node], flippable
        )

    def _operand(self, node, i: int, act: Act) -> np.ndarray:
        """Constant input ``i`` of an element-wise ``node`` as a (C,) or (1,) array.
        BatchNormalization's parameters lie along axis 1 (the channels of NC or NCHW), every
        other op's constants broadcast as ONNX broadcasts (aligned to the last axis)."""
        c = np.asarray(self.consts[node.input[i]], dtype=np.float64)
        if node.op_type == "BatchNormalization":
            if c.ndim != 1 or c.size not in (1, act.shape[0]):
                raise self.err(
                    node,
                    f"parameter {node.input[i]!r} must hold one value per channel "
                    f"({act.shape[0]}), not shape {list(c.shape)}",
                )
            return c.copy()
        return self._per_channel(node, c, act)

    def _per_channel(self, node, c: np.ndarray, act: Act) -> np.ndarray:
        """A constant operand as a (C,) or (1,) array; it may vary only along channels."""
        c = np.asarray(c, dtype=np.float64)
        if c.size == 1:
            return c.reshape(1)
        try:
            full = np.broadcast_to(c, (1, *act.shape)).reshape(act.shape)
        except ValueError:
            raise self.err(
                node,
                f"constant of shape {list(c.shape)} does not broadcast to the activation's "
                f"shape {[1, *act.shape]}",
            ) from None
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
            return self._fold_bias(node, act, to_fractions(np.broadcast_to(full, (act.shape[0],))))
        return self._chain(node, act)

    def residual_add(self, node, a: Act, b: Act) -> Act:
        """The sum of two activations (a residual join): an IR ``add`` of their integers,
        exact when both are integers on one grid (the same scale per channel, as two
        branches quantized by one shared quantizer are); the offsets add."""
        for x in (a, b):
            if x.chain:
                pending = ", ".join(n.op_type for n in x.chain)
                raise self.err(
                    node,
                    f"residual Add of two activations needs both quantized right before it, "
                    f"not an input with pending {pending}; quantize each branch",
                )
        if a.shape != b.shape:
            raise self.err(node, f"adds activations of shapes {a.shape} and {b.shape}")
        sa, sb = (np.broadcast_to(x.scale, (a.shape[0],)) for x in (a, b))
        if not all(x == y for x, y in zip(sa, sb, strict=True)):
            raise self.err(
                node,
                "residual Add of two activations on different grids (scales "
                f"{_fmt(sa)} and {_fmt(sb)}) is not supported yet; quantize both branches "
                "with one shared quantizer (in Brevitas, the same QuantIdentity instance)",
            )
        name = self.add(
            unique_layer(AddLayer(name=node.output[0], inputs=(a.src, b.src)), self.tensors)
        )
        scale = a.scale if len(a.scale) >= len(b.scale) else b.scale
        return Act(name, scale, a.offset + b.offset, a.shape, a.rank)

    def op_AveragePool(self, node, act):
        at = node_attrs(node)
        if (
            len(act.shape) != 3
            or at.get("ceil_mode", 0)
            or any(at.get("pads", [0, 0, 0, 0]))
            or at.get("auto_pad", "NOTSET") != "NOTSET"
        ):
            raise self.err(node, "needs a (N, C, H, W) input, no padding and ceil_mode 0")
        k = tuple(at["kernel_shape"])
        return self._sum_pool(node, act, k, tuple(at.get("strides", [1, 1])))

    def op_GlobalAveragePool(self, node, act):
        if len(act.shape) != 3:
            raise self.err(node, "needs a (N, C, H, W) input")
        k = tuple(act.shape[1:])
        return self._sum_pool(node, act, k, k)

    def _sum_pool(self, node, act, kernel, stride):
        """An average as the exact window sum (IR ``sumpool2d``) and the division by the
        window area in the affine map: the next quantizer divides exactly."""
        if act.chain:
            pending = ", ".join(n.op_type for n in act.chain)
            raise self.err(
                node, f"must read a quantized activation, not one with pending {pending}"
            )
        layer = SumPool2d(name=node.output[0], inputs=(act.src,), kernel=kernel, stride=stride)
        name = self.add(unique_layer(layer, self.tensors))
        area = Fraction(kernel[0] * kernel[1])
        t = self.tensors[name]
        return Act(name, act.scale / area, act.offset, t.shape, act.rank)

    def op_Identity(self, node, act):
        return act

    def op_BatchNormalization(self, node, act):
        for c in node.input[1:5]:
            if c not in self.consts:
                raise self.err(node, f"parameter {c!r} must be a constant")
        return self._chain(node, act)


def _fmt(scales) -> str:
    vals = sorted({float(v) for v in scales})
    return f"{vals[0]:.6g}" if len(vals) == 1 else f"[{vals[0]:.6g} .. {vals[-1]:.6g}]"


def _swap_inputs(node):
    import onnx

    new = onnx.NodeProto()
    new.CopyFrom(node)
    new.input[0], new.input[1] = node.input[1], node.input[0]
    return new
