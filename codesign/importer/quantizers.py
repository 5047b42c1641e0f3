"""Lowering of quantizers (``Quant``, ``IntQuant``, ``BipolarQuant``, ``MultiThreshold``,
``Trunc``):
each ends the pending chain in a :class:`~codesign.models.activations.MultiThreshold` whose integer
thresholds are found on the source's own function (a mixin of ``Lowering``)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from codesign.models.arith import round_fraction, round_real, search_thresholds
from codesign.models.layers import BinaryConv2d, BinaryDense, Conv2d, Dense, MultiThreshold
from codesign.models.qtype import QType, Rounding, parse_rounding

from . import surd
from .common import EXACT_CHAIN, MAX_LEVELS, Act, to_fraction, to_fractions, unique_layer
from .floateval import eval_node, node_attrs


def exact_quant_ints(node, ins: list, attrs: dict) -> tuple[np.ndarray, np.ndarray]:
    """Integers and scale of a quantizer applied to a constant (a weight), exactly as the
    node defines them: ``q = clamp(round(w / s + z)) - z`` with ``w``, ``s``, ``z`` the stored
    float values taken as exact rationals (a 1-bit signed ``Quant`` and ``BipolarQuant``
    give ``+-1``). Returns ``(q, s)``, ``s`` broadcast to ``q``'s shape, so that the real
    value is ``q * s`` exactly: no float product ever becomes a wide integer."""
    op = node.op_type
    w = np.asarray(ins[0], dtype=np.float64)
    s = np.broadcast_to(np.asarray(ins[1], dtype=np.float64), w.shape)
    if op == "BipolarQuant":
        z = np.zeros_like(w)
        bipolar, qt, rounding = True, None, None
    else:
        z = np.broadcast_to(np.asarray(ins[2], dtype=np.float64), w.shape)
        bits = int(np.asarray(ins[3]).ravel()[0])
        signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
        bipolar = bits == 1 and signed
        qt = None if bipolar else QType.int(bits, signed, narrow)
        rounding = (
            None
            if bipolar
            else parse_rounding(attrs.get("rounding_mode", "ROUND"), dialect="qonnx")
        )
    t = w / s + z  # float64: off the exact value by far less than 1e-9 relative
    if bipolar:
        q = np.where(t >= 0, 1.0, -1.0)
        near = np.abs(t) <= 1e-9 * (np.abs(w / s) + np.abs(z) + 1)
    else:
        c = np.clip(t, qt.min, qt.max)
        q = round_real(c, rounding)
        frac = np.abs(c - np.floor(c))
        near = np.minimum(np.minimum(frac, 1 - frac), np.abs(frac - 0.5)) <= 1e-9 * (np.abs(c) + 1)
    for i in zip(*np.nonzero(near), strict=True):  # a tie or an integer: decide exactly
        v = Fraction(float(w[i])) / Fraction(float(s[i])) + Fraction(float(z[i]))
        if bipolar:
            q[i] = 1.0 if v >= 0 else -1.0
        else:
            v = min(max(v, Fraction(qt.min)), Fraction(qt.max))
            q[i] = float(round_fraction(v, rounding))
    return (q - z).astype(np.int64), np.array(s)


class QuantizerOps:
    """Quantizers of :class:`~codesign.importer.lower._Lowering`: end the chain in a
    MultiThreshold."""

    def _rounding_scale_zero(self, node, act, mode, scale, zp):
        """A quantizer's rounding mode, per-channel scale and zero point, checked (positive
        finite scale, integer zero point); one-line errors naming the node."""
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
        return rounding, s, z

    def op_Quant(self, node, act):
        at = node_attrs(node)
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
        rounding, s, z = self._rounding_scale_zero(node, act, mode, scale, zp)
        if b == 1 and signed:  # qonnx executes a 1-bit signed Quant as bipolar
            return self._threshold(
                node,
                act,
                "bipolar",
                dict(s=s, z=z),
                2 * to_fractions(s),
                to_fractions(s) * (to_fractions(-1 - z)),
            )
        qt = QType.int(b, signed, narrow)
        if qt.max - qt.min > MAX_LEVELS:
            raise self.err(
                node,
                f"a {b}-bit activation quantizer needs more than "
                f"{MAX_LEVELS} thresholds; at most 12 bits are supported",
            )
        spec = dict(s=s, z=z, lo=qt.min, hi=qt.max, rounding=rounding, mode=mode)
        return self._threshold(node, act, "quant", spec, to_fractions(s), np.array([Fraction(0)]))

    op_IntQuant = op_Quant

    def op_BipolarQuant(self, node, act):
        if node.input[1] not in self.consts:
            raise self.err(node, "scale must be a constant")
        s = self._per_channel(node, self.consts[node.input[1]], act)
        if np.any(s <= 0):
            raise self.err(node, "scale must be positive")
        z = np.zeros_like(s)
        return self._threshold(
            node, act, "bipolar", dict(s=s, z=z), 2 * to_fractions(s), -to_fractions(s)
        )

    def op_Trunc(self, node, act):
        """QONNX ``Trunc``, as qonnx computes it.

        v1 (X, scale, zeropt, input_bit_width, output_bit_width), ``trunc_v1``:
        ``q = round(x / s + z)`` (ties to even), ``t = rounding(q / 2**(in - out))``,
        ``y = (t - z) * s``; no clamp, and the output keeps the input's scale ``s``.

        v2 (X, scale, zeropt, input_bit_width, output_scale, output_bit_width; Brevitas's
        ``TruncAvgPool2d``), ``trunc_v2``: ``q = round(x / s + z)``,
        ``t = rounding(clamp(q / d))`` with ``d = 2**round(log2(output_scale / s))`` and the
        clamp of the output bit width (attributes ``signed``, ``narrow``),
        ``y = (t - z / d) * output_scale``.

        Either is a monotone step function of the integer input: a MultiThreshold whose
        output int is ``t`` less the output zero point."""
        at = node_attrs(node)
        if len(node.input) not in (5, 6):
            raise self.err(node, f"has {len(node.input)} inputs; Trunc v1 has 5, v2 has 6")
        try:
            consts = [self.consts[i] for i in node.input[1:]]
        except KeyError:
            raise self.err(node, "scale, zero point and bit widths must be constants") from None

        def width(v) -> int:
            v = np.asarray(v, dtype=np.float64)
            if v.size != 1 or v.item() != round(v.item()):
                raise self.err(node, f"bit widths must be single integers, not {v.tolist()}")
            return int(v.item())

        mode = at.get("rounding_mode", "FLOOR")
        rounding, s, z = self._rounding_scale_zero(node, act, mode, consts[0], consts[1])
        if len(node.input) == 5:
            k = width(consts[2]) - width(consts[3])
            if not 0 <= k <= 32:
                raise self.err(
                    node, f"input_bit_width - output_bit_width must be in [0, 32], not {k}"
                )
            div, clamp, zout, out_s = Fraction(2**k), None, z, to_fractions(s)
        else:
            width(consts[2])
            bits = width(consts[4])
            o = np.asarray(consts[3], dtype=np.float32)
            if o.size != 1 or not np.isfinite(o).all() or o.item() <= 0 or s.size != 1:
                raise self.err(node, "needs one positive scale and one output scale")
            e = float(np.round(np.log2(o / np.float32(s[0]))))  # as trunc_v2, in float32
            div = Fraction(2) ** int(e)
            qt = QType.int(bits, bool(at.get("signed", 1)), bool(at.get("narrow", 0)))
            clamp = (qt.min, qt.max)
            zout = np.array([float(Fraction(float(v)) / div) for v in z])
            if np.any(zout != np.round(zout)):
                raise self.err(node, "zero point / truncation must be an integer")
            out_s = np.array([to_fraction(o.item())], dtype=object)
        spec = dict(s=s, z=z, div=div, clamp=clamp, zout=zout, rounding=rounding, mode=mode)
        return self._threshold(node, act, "trunc", spec, out_s, np.array([Fraction(0)]))

    def op_MultiThreshold(self, node, act):
        at = node_attrs(node)
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
            np.array([to_fraction(at.get("out_scale", 1.0))]),
            np.array([to_fraction(at.get("out_bias", 0.0))]),
        )

    def _threshold(self, node, act: Act, kind, spec, out_scale, out_offset) -> Act:
        c = act.shape[0]
        direction = self._direction(act)
        if np.any(direction < 0):
            act = self._flip(node, act, direction < 0)
        src = self.tensors[act.src]
        exact = _exact_chain(act)
        if kind == "trunc":  # output levels: the function at the ends of the input range
            self._trunc_range(node, act, spec, src.lo, src.hi, exact)
        if kind in ("bipolar",):
            targets = np.array([1.0])
        elif kind in ("quant", "trunc"):
            targets = np.arange(spec["lo"] + 1, spec["hi"] + 1, dtype=np.float64)
        else:
            targets = np.arange(1, spec["t"].shape[1] + 1, dtype=np.float64)
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
        elif kind in ("quant", "trunc"):
            zs = spec.get("zout", spec["z"]).astype(np.int64)
            if np.any(zs != zs[0]):
                raise self.err(node, "per-channel zero points are not supported")
            layer = MultiThreshold(
                name=name, inputs=(act.src,), thresholds=thr, out_bias=int(spec["lo"] - zs[0])
            )
        else:
            layer = MultiThreshold(name=name, inputs=(act.src,), thresholds=thr)
        self.add(unique_layer(layer, self.tensors))
        lname = self.layers[-1].name
        self.layer_tensors[lname] = (node.output[0], out_scale, out_offset)
        return Act(lname, out_scale, out_offset, act.shape, act.rank)

    def _trunc_range(self, node, act, spec, lo: int, hi: int, exact: bool) -> None:
        """Set ``spec['lo']``/``['hi']``: the lowest and highest Trunc level over the integer
        input range (the function rises with the input)."""
        if exact:
            levels = [
                self._exact_level(node, act, "trunc", spec, c, a)
                for c in range(act.shape[0])
                for a in (lo, hi)
            ]
        else:
            fn = self._level_fn(node, act, "trunc", spec, np.float32)
            acc = np.broadcast_to(np.array([[lo, hi]], dtype=np.float64), (act.shape[0], 2))
            levels = fn(acc).ravel().tolist()
        spec["lo"], spec["hi"] = int(min(levels)), int(max(levels))
        if spec["hi"] - spec["lo"] > MAX_LEVELS:
            raise self.err(
                node,
                f"its output spans {spec['hi'] - spec['lo'] + 1} levels over the input's "
                f"range; at most {MAX_LEVELS + 1} (12 bits) are supported",
            )

    def _direction(self, act: Act) -> np.ndarray:
        """+1/-1 per channel: whether the chain rises or falls with the integer."""
        d = np.array([1 if v >= 0 else -1 for v in act.scale], dtype=np.int64)
        for n in act.chain:
            if n.op_type in ("Mul", "Div", "BatchNormalization"):
                d = d * np.sign(self._operand(n, 1, act)).astype(int)
        return np.where(d == 0, 1, d)

    def _flip(self, node, act: Act, flip: np.ndarray) -> Act:
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
        return Act(act.src, scale, offset, act.shape, act.rank, act.chain, False)

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

    def _chain_fn(self, act: Act, dtype):
        """The chain as a function of (C, L) arrays; float32 chains with float-only work run
        through onnxruntime, the executor's own kernels."""
        if not act.chain:
            return lambda x: x
        if dtype == np.float64 or all(n.op_type in EXACT_CHAIN for n in act.chain):

            def run(x):
                y = x.T.reshape((x.shape[1], x.shape[0]) + (1,) * (act.rank - 2))
                for n in act.chain:
                    y = eval_node(
                        n, [y, *(self.consts[i] if i else None for i in n.input[1:])], dtype
                    )[0]
                return y.reshape(x.shape[1], x.shape[0]).T

            return run
        return _ort_chain(act, self.consts, _onnx_opset(self.model.model))

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
        if kind == "trunc":  # qonnx's trunc_v1 / trunc_v2, in dtype
            s = spec["s"].astype(dtype).reshape(-1, 1)
            z = spec["z"].astype(dtype).reshape(-1, 1)
            y = np.round(x / s + z) / dtype(spec["div"])
            if spec["clamp"] is not None:
                y = np.clip(y, *spec["clamp"])
            if dtype == np.float32:
                from qonnx.custom_op.general.quant import resolve_rounding_mode

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
                k = to_fraction(pick(self._operand(n, 1, act)))
            if op == "Add":
                x = x + k
            elif op == "Sub":
                x = x - k
            elif op == "Mul":
                x = x * k
            elif op == "Div":
                x = x / k
            elif op == "Relu":
                x = surd.clamp(x, Fraction(0), None)
            elif op == "Clip":
                lo_ = n.input[1] if len(n.input) > 1 else ""
                hi_ = n.input[2] if len(n.input) > 2 else ""
                x = surd.clamp(
                    x,
                    to_fraction(np.asarray(self.consts[lo_]).ravel()[0]) if lo_ else None,
                    to_fraction(np.asarray(self.consts[hi_]).ravel()[0]) if hi_ else None,
                )
            elif op == "BatchNormalization":  # one per chain (_exact_chain): x is rational
                mean, var = (to_fraction(pick(self._operand(n, i, act))) for i in (3, 4))
                beta = to_fraction(pick(self._operand(n, 2, act)))
                eps = to_fraction(np.float32(node_attrs(n).get("epsilon", 1e-5)))
                x = surd.batchnorm(x, mean, var + eps, k, beta)
        if kind == "bipolar":
            v = x / to_fraction(pick(spec["s"])) + to_fraction(pick(spec["z"]))
            return 1.0 if surd.cmp(v, Fraction(0)) >= 0 else 0.0
        if kind == "quant":
            v = x / to_fraction(pick(spec["s"])) + to_fraction(pick(spec["z"]))
            v = surd.clamp(v, Fraction(spec["lo"]), Fraction(spec["hi"]))
            return float(surd.round_exact(v, spec["rounding"]))
        if kind == "trunc":
            v = x / to_fraction(pick(spec["s"])) + to_fraction(pick(spec["z"]))
            y = surd.round_exact(v, Rounding.HALF_EVEN) / spec["div"]  # np.round
            if spec["clamp"] is not None:
                y = surd.clamp(y, *(Fraction(c) for c in spec["clamp"]))
            return float(round_fraction(y, spec["rounding"]))
        row = spec["t"][c if spec["t"].shape[0] > 1 else 0]
        return float(sum(1 for t in row if surd.cmp(x, to_fraction(t)) >= 0))


def _exact_chain(act: Act) -> bool:
    """Whether the chain is evaluated exactly: constant arithmetic, Relu, Clip and at most
    one BatchNormalization (:mod:`.surd`); anything else means its float32 computation."""
    ops = [n.op_type for n in act.chain]
    return all(op in EXACT_CHAIN or op == "BatchNormalization" for op in ops) and (
        ops.count("BatchNormalization") <= 1
    )


def _onnx_opset(proto) -> int:
    """The default-domain opset the source graph was exported at (13 when unstated)."""
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    return int(versions[0]) if versions else 13


def _ort_chain(act: Act, consts: dict, opset: int = 13):
    """The float32 chain as an onnxruntime session over (L, C, 1...) inputs, at the source's
    own opset (a node's attributes, e.g. BatchNormalization's ``training_mode``, are valid
    at the opset that wrote them)."""
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
    opset = max(opset, 7)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset <= 17 else 9 if opset <= 20 else 10
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    def run(x):  # x: (C, L) float32
        lx = np.ascontiguousarray(x.T).reshape([x.shape[1], x.shape[0]] + [1] * (act.rank - 2))
        y = sess.run(None, {x_name: lx.astype(np.float32)})[0]
        return y.reshape(x.shape[1], x.shape[0]).T

    return run
