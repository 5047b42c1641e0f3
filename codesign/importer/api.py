"""The importer's entry points: :func:`import_qonnx` and :func:`save_import`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from codesign.models.ir import Network
from codesign.models.names import safe_name
from codesign.models.qtype import Kind, QType, parse_qtype

from .common import ImportError_
from .lower import ImportInfo, Lowering
from .read import check_quantized, check_supported, clean_model, read_model


def import_qonnx(path: str | Path, *, input_type: str | QType = "fixed<16,6>") -> Network:
    """Import a QONNX model as an integer :class:`~codesign.models.ir.Network`.

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
    proto, digest = read_model(path)
    check_supported(proto, label)
    check_quantized(proto, label)
    with warnings.catch_warnings():
        # qonnx warns when it renames old-style (finn) op domains; that is expected here
        warnings.simplefilter("ignore")
        model, original = clean_model(proto, label)
    net, info = Lowering(model, label, input_type, original).run()
    net.name = safe_name(path.stem, network=True)  # a Verilog top module's name
    info.sha256 = digest
    net.imported = info
    return net


def save_import(net: Network, outdir: str | Path) -> dict:
    """Write ``net`` as ``outdir/<name>.yaml`` + ``.npz`` and ``outdir/import.json`` (the
    exact output scale/offset and host-side ops). Returns the paths written."""
    from codesign.models.loader import save_description

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
    from codesign.models.fileio import atomic_write

    meta = outdir / "import.json"
    atomic_write(meta, json.dumps(doc, indent=1) + "\n")
    return {"description": str(yaml_path), "weights": str(npz_path), "import": str(meta)}
