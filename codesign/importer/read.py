"""Reading a QONNX file: load and hash it, check every op is supported, clean it up with
qonnx (shape inference, constant folding, unique names)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .common import SUPPORTED, ImportError_, _qonnx


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
