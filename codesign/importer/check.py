"""Proof of equivalence: :func:`check_import` runs seeded random inputs through the
imported network and through the source graph in float32 and float64."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np

from codesign.models.ir import Network

from .bounds import enclose_graph
from .common import affine_value
from .floateval import evaluate_graph
from .lower import ImportInfo


def check_import(net: Network, vectors: int, seed: int = 0) -> dict:
    """Run ``vectors`` seeded random inputs (on the input type's grid) through the imported
    network and two references: qonnx's ``execute_onnx`` (float32) and the same graph in
    float64 (:func:`evaluate_graph`).

    Each sample's output (before host-side ops) is classified:

    - ``exact``: equal to the float32 executor's, bit for bit;
    - ``float32_explained``: different, but ours and the executor's both lie in the proven
      enclosure of the exact value under float32 rounding (:mod:`.bounds`): the executor's
      float32 arithmetic moved a value across a quantizer boundary or rounded the output;
    - ``float64_explained``: not so, but ours and the float64 evaluation lie in the float64
      enclosure (or agree exactly);
    - ``unexplained``: none of these: must be 0. The first differing layer of the first such
      sample is named (quantizer outputs are compared as integers).
    """
    from codesign.models.golden import random_inputs

    info: ImportInfo = net.imported
    x_int = random_inputs(net, vectors, seed)
    biggest = max(int(np.prod(t.shape, dtype=np.int64)) for t in net.tensors.values())
    batch = max(1, min(vectors, 2_000_000 // max(biggest, 1)))
    counts = dict.fromkeys(("exact", "float32_explained", "float64_explained", "unexplained"), 0)
    doc: dict = {"vectors": int(vectors), "seed": int(seed)}
    agree64 = levels = 0
    host_equal = host_argmax = 0
    host_diff = 0.0
    widest = 0.0
    for start in range(0, vectors, batch):
        part = _check_batch(net, info, x_int[start : start + batch])
        for k in counts:
            counts[k] += int(part[k].sum())
            if k != "exact" and part[k].any() and f"first_{k}" not in doc:
                i = int(np.argmax(part[k]))
                doc[f"first_{k}"] = {"sample": start + i, "layer": part["first_layer"](i)}
        agree64 += int(part["same64"].sum())
        levels += part["levels_differ"]
        widest = max(widest, part["widest"])
        host_equal += part.get("host_equal", 0)
        host_argmax += part.get("host_argmax", 0)
        host_diff = max(host_diff, part.get("host_diff", 0.0))
    doc = {
        "vectors": int(vectors),
        "seed": int(seed),
        "compared_tensor": info.output_tensor,
        **counts,
        "float64_agrees": agree64,
        "quantizer_levels_differ": levels,
        "enclosure_rel_width": widest,
        "host_ops": info.host_ops,
        **{k: v for k, v in doc.items() if k.startswith("first_")},
    }
    if info.host_nodes:
        if info.host_nodes[-1].op_type in ("ArgMax", "TopK"):
            doc["host_output_equal"] = host_equal
        else:
            doc["host_argmax_equal"] = host_argmax
            doc["host_max_abs_diff"] = host_diff
    return doc


def _check_batch(net: Network, info: ImportInfo, x_int: np.ndarray) -> dict:
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    from codesign.models.golden import trace

    n = len(x_int)
    x = affine_value(
        x_int.reshape(n, 1, -1), np.array([info.input_real_scale]), np.array([Fraction(0)])
    ).reshape(n, *info.onnx_input_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = info.model.transform(ChangeBatchSize(n)).transform(InferShapes())
        ref32 = execute_onnx(
            model, {info.input_name: x.astype(np.float32)}, return_full_exec_context=True
        )
    ref64 = evaluate_graph(model, x, np.float64)
    host = {o for nd in info.host_nodes for o in nd.output}
    enc32 = enclose_graph(model, x, 2.0**-24, stop=host)
    ours = trace(net, x_int)
    q = np.asarray(ours[net.output])
    o32 = info.dequantize(q, np.float32)
    o64 = info.dequantize(q, np.float64)
    r32 = np.asarray(ref32[info.output_tensor], dtype=np.float32).reshape(o32.shape)
    r64 = np.asarray(ref64[info.output_tensor], dtype=np.float64).reshape(o64.shape)
    axes = tuple(range(1, o32.ndim))
    same32 = np.all(o32 == r32, axis=axes)
    same64 = np.all(o64 == r64, axis=axes)

    def inside(enc: dict, ref: np.ndarray) -> np.ndarray:
        e = enc.get(info.output_tensor)
        if e is None:  # an op without an enclosure rule: nothing is proven
            return np.zeros(n, dtype=bool)
        lo, hi = (v.reshape(o64.shape) for v in (e.lo, e.hi))
        ok = (o64 >= lo) & (o64 <= hi) & (ref >= lo) & (ref <= hi)
        return np.all(ok, axis=axes)

    in32 = inside(enc32, r32.astype(np.float64))
    in64 = np.zeros(n, dtype=bool)
    if np.any(~same32 & ~in32 & ~same64):  # only then is the float64 enclosure needed
        in64 = inside(enclose_graph(model, x, 2.0**-53, stop=host), r64)
    out = {
        "exact": same32,
        "float32_explained": ~same32 & in32,
        "float64_explained": ~same32 & ~in32 & (same64 | in64),
        "same64": same64,
    }
    out["unexplained"] = ~(out["exact"] | out["float32_explained"] | out["float64_explained"])
    e = enc32.get(info.output_tensor)
    if e is not None:
        # the widest enclosure relative to the output's largest magnitude
        mag = float(np.max(np.maximum(np.abs(e.lo), np.abs(e.hi)), initial=0.0))
        out["widest"] = float(np.max(e.hi - e.lo, initial=0.0)) / mag if mag else 0.0
    else:
        out["widest"] = float("nan")

    # every quantizer's integer output against the executor's, in the integer domain
    differ = {}
    for layer in net.layers:
        if layer.name not in info.layer_tensors:
            continue
        tensor, scale, offset = info.layer_tensors[layer.name]
        v = np.asarray(ours[layer.name])
        ref = np.asarray(ref32[tensor], np.float64).reshape(v.shape)
        shape = (1, -1) + (1,) * (v.ndim - 2)
        s = np.array([float(k) for k in scale]).reshape(shape)
        o = np.array([float(k) for k in offset]).reshape(shape)
        differ[layer.name] = (v != np.round((ref - o) / s)).reshape(n, -1).sum(axis=1)
    out["levels_differ"] = int(sum(int(d.sum()) for d in differ.values()))

    def first_layer(i: int) -> str | None:
        """The first quantizer whose integer output differs from the reference's (the
        float32 executor's), else the output layer."""
        return next((name for name, d in differ.items() if d[i]), net.output)

    out["first_layer"] = first_layer
    if info.host_nodes:
        final = info.host_nodes[-1].output[0]
        host = info.postprocess(q, np.float32)
        ref = np.asarray(ref32[final]).reshape(host.shape)
        if info.host_nodes[-1].op_type in ("ArgMax", "TopK"):
            out["host_equal"] = int(np.all(host == ref, axis=axes).sum())
        else:
            top = np.argmax(host.reshape(n, -1), axis=1)
            out["host_argmax"] = int((top == np.argmax(ref.reshape(n, -1), 1)).sum())
            out["host_diff"] = float(np.max(np.abs(host - ref)))
    return out
