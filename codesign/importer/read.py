"""Reading a QONNX file: load and hash it, check every op is supported, clean it up with
qonnx (shape inference, constant folding, unique names)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .common import SUPPORTED, ImportError_, qonnx_api


def read_model(path: Path):
    """The ONNX model in ``path`` and the SHA-256 of its bytes; an :class:`ImportError_`
    naming the file when it is missing, unreadable or not an ONNX model."""
    label = str(path)
    try:
        import onnx
    except ImportError as e:  # pragma: no cover
        raise ImportError_(f"QONNX import needs the 'onnx' package ({e})") from None
    _quiet_onnxruntime()
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


def _quiet_onnxruntime() -> None:
    """Keep onnxruntime's native logger (which writes to file descriptor 2 itself, past
    ``sys.stderr``) to fatal messages: a kernel that fails on a malformed graph raises an
    exception too, which the importer reports on one line."""
    try:
        import onnxruntime
    except ImportError:  # pragma: no cover - a declared dependency of qonnx
        return
    onnxruntime.set_default_logger_severity(4)


def check_supported(proto, label: str) -> None:
    """Every node that computes on the input (not only on constants, which cleanup folds
    whatever their op) must be of a supported op type; one error lists all others."""
    dynamic = {i.name for i in proto.graph.input} - {t.name for t in proto.graph.initializer}
    bad = []
    for i, n in enumerate(proto.graph.node):
        if not any(x in dynamic for x in n.input) or n.op_type == "Shape":
            continue  # constants only (a static shape included): cleanup folds it
        dynamic.update(n.output)
        if n.op_type not in SUPPORTED:
            bad.append((n.name or f"#{i}", n.op_type))
    if bad:
        listed = ", ".join(f"{name} ({op})" for name, op in bad)
        raise ImportError_(
            f"{label}: {len(bad)} unsupported node(s): {listed}; supported op types are "
            f"{', '.join(sorted(SUPPORTED))}"
        )


#: Op types that make a graph quantized; a graph with none of them is a float model.
QUANTIZERS = frozenset({"Quant", "IntQuant", "BipolarQuant", "MultiThreshold", "Trunc"})


def check_quantized(proto, label: str) -> None:
    """A float (unquantized) ONNX model has no integer meaning to import: say so, and what
    to do, instead of importing float weights as wide integers."""
    if not any(n.op_type in QUANTIZERS for n in proto.graph.node):
        raise ImportError_(
            f"{label}: has no quantizers (no {', '.join(sorted(QUANTIZERS))} node): it is a "
            "float model; quantize it (Brevitas, QKeras + qonnx, or HAWQ) and export QONNX"
        )


def clean_model(proto, label: str):
    """qonnx's ``cleanup_model`` (shape inference, constant folding with quantizers kept,
    unique names), run step by step so that every remaining node's name in the user's file
    is known: returns ``(model, original)`` with ``original[cleaned node name]`` the node's
    name in the source file (qonnx renames every node ``<OpType>_<k>``)."""
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import (
        GiveReadableTensorNames,
        GiveUniqueNodeNames,
        GiveUniqueParameterTensors,
        RemoveStaticGraphInputs,
        RemoveUnusedTensors,
    )
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    ModelWrapper, _ = qonnx_api()
    for i, n in enumerate(proto.graph.node):
        if not n.name:
            n.name = f"#{i}"
        if n.op_type in ("Quant", "Trunc", "BipolarQuant"):  # as qonnx's cleanup does
            n.domain = "qonnx.custom_op.general"
    steps = [
        InferShapes(),
        GiveUniqueParameterTensors(),
        FoldConstants(exclude_op_types=["Quant", "BipolarQuant"]),
        FoldTransposeIntoQuantInit(),
        RemoveUnusedTensors(),
        RemoveStaticGraphInputs(),
    ]
    try:
        model = ModelWrapper(proto)
        for t in steps:
            model = model.transform(t)
        before = [n.name for n in model.graph.node]
        model = model.transform(GiveUniqueNodeNames()).transform(GiveReadableTensorNames())
    except Exception as e:  # qonnx raises assorted errors on malformed graphs
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImportError_(f"{label}: qonnx cannot clean up the graph: {first}") from None
    after = [n.name for n in model.graph.node]
    return model, dict(zip(after, before, strict=True))
