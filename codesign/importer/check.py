"""Proof of equivalence: :func:`check_import` runs seeded random inputs through the
imported network and through the source graph in float32 and float64."""

from __future__ import annotations

import warnings
from fractions import Fraction

import numpy as np

from models.ir import Network

from .common import _affine_value
from .floateval import evaluate_graph
from .lower import ImportInfo


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
