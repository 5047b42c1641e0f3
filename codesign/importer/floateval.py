"""Float evaluation of single ONNX nodes in numpy (constants, chains, the float64
reference) and of a whole graph (:func:`evaluate_graph`)."""

from __future__ import annotations

import numpy as np

from .common import ImportError_


def node_attrs(node) -> dict:
    """An ONNX node's attributes by name, as Python values (strings decoded)."""
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def eval_node(node, ins: list, dtype) -> list[np.ndarray]:
    """Evaluate one node in numpy with every value in ``dtype`` (float32 or float64)."""
    from qonnx.custom_op.general.bipolar_quant import binary_quant
    from qonnx.custom_op.general.intquant import int_quant
    from qonnx.custom_op.general.multithreshold import multithreshold

    op = node.op_type
    at = node_attrs(node)

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
    if op == "Trunc":
        from qonnx.custom_op.general.trunc import trunc_v1, trunc_v2

        if len(ins) == 5:
            out = trunc_v1(*(f(i) for i in range(5)), at.get("rounding_mode", "FLOOR"))
        else:
            out = trunc_v2(
                f(0),
                f(1),
                f(2),
                f(3),
                at.get("narrow", 0),
                at.get("signed", 1),
                f(4),
                f(5),
                at.get("rounding_mode", "FLOOR"),
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
    if op == "GlobalAveragePool":
        x = f(0)
        return [x.sum(axis=(2, 3), keepdims=True, dtype=dtype) / dtype(x.shape[2] * x.shape[3])]
    if op == "AveragePool":
        return [_avgpool_float(node, at, f(0))]
    raise ImportError_(f"node {node.name!r}: cannot evaluate op type {op!r}")


def _conv_float(node, at, ins, dtype):
    from codesign.models.dataflow import im2col

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
    from codesign.models.dataflow import im2col

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


def _avgpool_float(node, at, x):
    from codesign.models.dataflow import im2col

    k = tuple(at["kernel_shape"])
    if any(at.get("pads", [0] * 4)) or at.get("ceil_mode", 0):
        raise ImportError_(f"node {node.name!r}: AveragePool needs no padding and ceil_mode 0")
    stride = tuple(at.get("strides", [1, 1]))
    win = im2col(x.astype(np.float64), k, stride, (0, 0), (1, 1)).astype(x.dtype)
    return win.sum(axis=(4, 5), dtype=x.dtype) / x.dtype.type(k[0] * k[1])


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
        outs = eval_node(node, ins, dtype)
        for name, v in zip(node.output, outs, strict=False):
            values[name] = v
    return values
