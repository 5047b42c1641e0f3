"""Lowering of product layers (``MatMul``, ``Gemm``, ``Conv``) and data movement
(``Reshape``, ``Flatten``, ``Transpose``, ``MaxPool``) (a mixin of ``Lowering``)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from codesign.models.ir import Layer
from codesign.models.layers import (
    BinaryConv2d,
    BinaryDense,
    Clip,
    Conv2d,
    Dense,
    Flatten,
    Input,
    MaxPool2d,
    Reshape,
)

from .common import Act, to_fraction, to_fractions, unique_layer
from .floateval import node_attrs


class ProductOps:
    """Products and data movement of :class:`~codesign.importer.lower._Lowering`."""

    # -- products --------------------------------------------------------------------------

    def _affine_input(self, node, act: Act) -> Act:
        """Fold an exact chain of constant Add/Sub/Mul/Div into the affine map, and a Relu or
        Clip on an integer grid into a Clip layer, so a product can read the integers."""
        scale, offset, src = act.scale, act.offset, act.src
        for n in act.chain:
            op = n.op_type
            if op in ("Add", "Sub", "Mul", "Div"):
                k = to_fractions(self._operand(n, 1, act))
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
                    unique_layer(Clip(name=n.output[0], inputs=(src,), min=int(z)), self.tensors)
                )
                src = lname
            elif op == "Identity":
                continue
            else:
                raise self.err(n, "must feed a quantizer before any product layer")
        return Act(src, scale, offset, act.shape, act.rank)

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
        quant = self.quant_int.get(name)
        if quant is not None:
            qm = np.moveaxis(quant[0], axis, 0).reshape(n, -1)
            sm = np.moveaxis(quant[1], axis, 0).reshape(n, -1)
        for c in range(n):
            row = flat[c]
            s = None
            if quant is not None and np.all(sm[c] == sm[c, 0]):
                # the Quant's own integers and scale, exactly (per tensor or per channel)
                s = to_fraction(sm[c, 0])
                ints[c] = qm[c]
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
        at = node_attrs(node)
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
            to_fraction(np.float32(at.get("alpha", 1.0))),
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
        self.add(unique_layer(layer, self.tensors))
        out = Act(self.layers[-1].name, scale, offset, (m,), 2, flippable=True)
        if bias is not None:
            out = self._fold_bias(node, out, to_fractions(np.broadcast_to(bias, (m,))))
        return out

    def _fold_bias(self, node, act: Act, bias: np.ndarray) -> Act:
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
            return Act(
                act.src,
                act.scale,
                np.array([Fraction(0)] * len(bias), dtype=object),
                act.shape,
                act.rank,
                flippable=act.flippable,
            )
        return Act(
            act.src,
            act.scale,
            np.broadcast_to(act.offset, bias.shape) + bias,
            act.shape,
            act.rank,
            flippable=act.flippable,
        )

    def op_Conv(self, node, act):
        at = node_attrs(node)
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
        self.add(unique_layer(layer, self.tensors))
        t = self.tensors[self.layers[-1].name]
        out = Act(self.layers[-1].name, scale, offset, t.shape, 4, flippable=True)
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in self.consts:
                raise self.err(node, "bias must be a constant")
            out = self._fold_bias(node, out, to_fractions(self.consts[node.input[2]].reshape(-1)))
        return out

    # -- data movement ---------------------------------------------------------------------

    def _moved(self, node, act: Act, layer: Layer, new_shape, rank) -> Act:
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
            return Act("input", act.scale, act.offset, tuple(new_shape), rank)
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

        self.add(unique_layer(layer, self.tensors))
        return Act(
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
        if node_attrs(node).get("axis", 1) != 1:
            raise self.err(node, "axis must be 1")
        new = (int(np.prod(act.shape)),)
        if new == act.shape:
            return act
        return self._moved(node, act, Flatten(name=node.output[0], inputs=(act.src,)), new, 2)

    def op_Transpose(self, node, act):
        perm = list(node_attrs(node).get("perm", list(range(act.rank))[::-1]))
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
        at = node_attrs(node)
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
        self.add(unique_layer(layer, self.tensors))
        t = self.tensors[self.layers[-1].name]
        return Act(self.layers[-1].name, act.scale, act.offset, t.shape, 4)
