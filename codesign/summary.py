"""What ``codesign info`` and ``codesign zoo`` report about a network."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from codesign.models.ir import Network
from codesign.models.layers import BinaryConv2d, BinaryDense, Conv2d, DeformConv2d, Dense

__all__ = ["aligned", "network_hash", "summary", "summary_text"]


def aligned(rows: list[tuple[str, ...]], left: tuple[int, ...]) -> list[str]:
    """``rows`` of strings as lines of aligned columns, two spaces apart, indented by two:
    the columns numbered in ``left`` flush left, the others flush right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  "
        + "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


def network_hash(net: Network) -> str:
    """SHA-256 of everything that determines what ``net`` computes (names, ops, parameters,
    arrays, types), independent of how the description was written."""
    h = hashlib.sha256()
    for layer in net.layers:
        head = {
            "name": layer.name,
            "op": layer.op,
            "inputs": list(layer.inputs),
            **layer.attributes(),
        }
        h.update(json.dumps(head, sort_keys=True).encode())
        for key, arr in sorted(layer.arrays().items()):
            h.update(key.encode())
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr, dtype="<i8").tobytes())
    h.update(f"output={net.output}".encode())
    return h.hexdigest()


def summary(net: Network) -> dict:
    """A JSON-ready description of ``net``: every layer's output shape, type, exact range,
    accumulator width, parameters and MACs, and the totals."""
    layers = []
    total_macs = total_params = total_weight_bits = 0
    for layer in net.layers:
        out = net.tensors[layer.name]
        ins = net.inputs_of(layer)
        params = sum(int(a.size) for a in layer.arrays().values())
        macs = layer.macs(ins, out)
        entry = {
            "name": layer.name,
            "op": layer.op,
            "inputs": list(layer.inputs),
            "shape": list(out.shape),
            "type": str(out.qtype),
            "range": [out.lo, out.hi],
            "params": params,
            "macs": macs,
        }
        if isinstance(layer, Dense | Conv2d | BinaryDense | BinaryConv2d | DeformConv2d):
            entry["accumulator_bits"] = out.qtype.bits
            w = layer.weight
            wbits = 1 if isinstance(layer, BinaryDense | BinaryConv2d) else _bits(w)
            entry["weight_bits"] = wbits
            total_weight_bits += wbits * int(w.size)
        if isinstance(layer, BinaryDense | BinaryConv2d):
            entry["encoding"] = layer.encoding.value
            entry["fan_in"] = int(layer.weight[0].size)
        if isinstance(layer, DeformConv2d):
            x, off = ins
            groups = layer.groups_for(x)
            entry["deform"] = {
                "image": layer.inputs[0],
                "offset": layer.inputs[1],
                "offset_type": str(off.qtype),
                "offset_frac": layer.offset_frac(off),
                "sample_frac": layer.sample_frac(off),
                "offset_groups": layer.offset_groups(off),
                "groups": groups,
                "form": "full"
                if groups == 1
                else "depthwise"
                if groups == x.shape[0]
                else "grouped",
                "variant": layer.variant.name,
                "bound": layer.variant.bound,
            }
        layers.append(entry)
        total_macs += macs
        total_params += params
    return {
        "name": net.name,
        "hash": network_hash(net),
        "input": {
            "name": net.input,
            "shape": list(net.input_tensor.shape),
            "type": str(net.input_tensor.qtype),
        },
        "output": {
            "name": net.output,
            "shape": list(net.output_tensor.shape),
            "type": str(net.output_tensor.qtype),
            "range": [net.output_tensor.lo, net.output_tensor.hi],
        },
        "layers": layers,
        "folded_batchnorms": dict(net.folded),
        "totals": {
            "layers": len(net.layers),
            "params": total_params,
            "macs": total_macs,
            "weight_bits": total_weight_bits,
        },
    }


def _bits(w: np.ndarray) -> int:
    """Width of the narrowest type holding every value of ``w``."""
    from codesign.models.qtype import QType

    return QType.covering(int(w.min()), int(w.max())).bits if w.size else 0


def summary_text(info: dict) -> str:
    """``summary`` as an aligned table."""
    rows = [("layer", "op", "shape", "type", "range", "acc", "params", "MACs")]
    for la in info["layers"]:
        rows.append(
            (
                la["name"],
                la["op"],
                "x".join(map(str, la["shape"])),
                la["type"],
                f"[{la['range'][0]}, {la['range'][1]}]",
                str(la.get("accumulator_bits", "")),
                str(la["params"]),
                str(la["macs"]),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"{info['name']}: input {info['input']['type']} "
        f"{'x'.join(map(str, info['input']['shape']))}, output {info['output']['type']}"
    ]
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for la in info["layers"]:
        d = la.get("deform")
        if d:
            bound = f" (bound {d['bound']} px)" if d["bound"] is not None else ""
            lines.append(
                f"{la['name']}: {d['form']} deformable conv of {d['image']!r} at offsets from "
                f"{d['offset']!r} ({d['offset_type']}, {d['offset_frac']} fraction bits, "
                f"{d['offset_groups']} offset group(s)); variant {d['variant']}{bound}; "
                f"samples and accumulator in units of 2^-{d['sample_frac']}"
            )
    t = info["totals"]
    lines.append(
        f"{t['layers']} layers, {t['params']} parameters ({t['weight_bits']} weight "
        f"bits), {t['macs']} MACs per inference"
    )
    if info["folded_batchnorms"]:
        folded = ", ".join(f"{k}→{v}" for k, v in info["folded_batchnorms"].items())
        lines.append(f"BatchNorm folded into thresholds: {folded}")
    lines.append(f"hash {info['hash'][:16]}")
    return "\n".join(lines)
