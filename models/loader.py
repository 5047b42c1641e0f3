"""Network descriptions: YAML (or JSON) plus an ``.npz`` of integer arrays, ``format: 1``.

The format is documented in ``docs/description-format.md``. Every problem is reported as a
:class:`~codesign.models.errors.DescriptionError` naming the file, layer and field and what was
expected. BatchNorm layers are folded at load time into multi-thresholds.
"""

from __future__ import annotations

import dataclasses
import math
import re
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from .arith import round_real, search_thresholds
from .dataflow import conv_out_size
from .deform import Variant
from .errors import DescriptionError
from .fileio import atomic_write, read_document, read_npz, write_npz
from .ir import Layer, Network, Tensor
from .layers import (
    LAYER_TYPES,
    BinaryConv2d,
    BinaryDense,
    Clip,
    Conv2d,
    DeformConv2d,
    Dense,
    Input,
    MultiThreshold,
)
from .names import layer_name_problem, network_name_problem, safe_name
from .qtype import Kind, QType, Rounding, parse_overflow, parse_qtype, parse_rounding

__all__ = [
    "FORMAT_VERSION",
    "MAX_TENSOR_ELEMENTS",
    "check_tensor_size",
    "load",
    "load_description",
    "save_description",
    "zoo_names",
]

FORMAT_VERSION = 1
#: Widest type a description may declare.
MAX_DESCRIPTION_BITS = 32
#: Most elements of one tensor (per frame): far beyond a dataflow design on any FPGA, and
#: small enough that the exact range analysis of a layer stays fast.
MAX_TENSOR_ELEMENTS = 1 << 24

# Fields each op accepts (beyond name, op, inputs); arrays may be npz keys or inline lists.
_FIELDS: dict[str, dict[str, str]] = {
    "dense": {"weight": "array", "bias": "array?"},
    "conv2d": {
        "weight": "array",
        "bias": "array?",
        "stride": "pair?",
        "padding": "pair?",
        "dilation": "pair?",
        "groups": "int?",
    },
    "maxpool2d": {"kernel": "pair", "stride": "pair?", "padding": "pair?"},
    "avgpool2d": {"kernel": "pair", "stride": "pair?", "rounding": "rounding?"},
    "sumpool2d": {"kernel": "pair", "stride": "pair?"},
    "relu": {"max": "int?"},
    "clip": {"min": "int?", "max": "int?"},
    "requant": {
        "multiplier": "array",
        "shift": "array",
        "type": "type",
        "rounding": "rounding?",
        "overflow": "overflow?",
    },
    "multithreshold": {
        "thresholds": "array",
        "out_scale": "int?",
        "out_bias": "int?",
        "out_type": "type?",
    },
    "flatten": {},
    "reshape": {"shape": "shape"},
    "add": {},
    "binary_dense": {"weight": "array", "encoding": "str?"},
    "binary_conv2d": {
        "weight": "array",
        "encoding": "str?",
        "stride": "pair?",
        "dilation": "pair?",
    },
    "deform_conv2d": {
        "weight": "array",
        "bias": "array?",
        "stride": "pair?",
        "padding": "pair?",
        "dilation": "pair?",
        "variant": "str?",
        "bound": "int?",
    },
    "batchnorm": {
        "gamma": "array",
        "beta": "array",
        "mean": "array",
        "var": "array",
        "eps": "float?",
        "acc_scale": "float?",
    },
    "sign": {"encoding": "str?"},
    "quant": {"type": "type", "scale": "float", "rounding": "rounding?"},
}
#: Required field kinds that the layer builders do not check themselves, and what they hold.
_REQUIRED = {"pair": "an int or a list of two ints", "shape": "a list of ints"}
_TOP_FIELDS = {"format", "name", "weights", "input", "layers", "output", "description"}


def zoo_names() -> list[str]:
    """Names of the networks shipped in the zoo."""
    root = resources.files("codesign.models") / "zoo"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load(source: str | Path) -> Network:
    """A network from a zoo name, a ``.yaml``/``.yml``/``.json`` description path, or a
    directory holding exactly one description (as ``codesign import -o DIR`` writes)."""
    text = str(source)
    if text in zoo_names():
        with resources.as_file(resources.files("codesign.models") / "zoo" / f"{text}.yaml") as p:
            return load_description(p, label=f"zoo:{text}")
    path = Path(text)
    if path.is_dir():  # e.g. what `codesign import -o DIR` wrote: its one description
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in (".yaml", ".yml", ".json"))
        found = [p for p in found if p.name != "import.json"]
        if len(found) != 1:
            listed = ", ".join(p.name for p in found) or "none"
            raise DescriptionError(
                f"is a directory; it must hold exactly one .yaml/.yml/.json description, "
                f"not {len(found)} ({listed})",
                file=text,
            )
        return load_description(found[0])
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise DescriptionError(
            f"must be a zoo name ({', '.join(zoo_names())}) or a .yaml/.yml/.json description",
            file=text,
        )
    return load_description(path)


def _read_document(path: Path, label: str) -> dict:
    doc = read_document(path, label)  # guarded: size, aliases, duplicate keys
    if not isinstance(doc, dict):
        raise DescriptionError(
            f"must be a mapping with 'format', 'input' and 'layers', not {type(doc).__name__}",
            file=label,
        )
    return doc


class _Context:
    """What the loader knows while building: file label, arrays, layers and tensors so far."""

    def __init__(self, label: str, arrays, arrays_label: str) -> None:
        self.label = label
        self.arrays = arrays
        self.arrays_label = arrays_label
        self.layers: list[Layer] = []
        self.tensors: dict[str, Tensor] = {}
        self.folded: dict[str, str] = {}

    def add(self, layer: Layer) -> None:
        ins = [self.tensors[s] for s in layer.inputs]
        if isinstance(layer, Conv2d) and len(ins[0].shape) == 3:  # before its range analysis,
            _, h, w = ins[0].shape  # which convolves a mask of the output's size
            size = [
                conv_out_size(n, k, s, p, d)
                for n, k, s, p, d in zip(
                    (h, w), layer.kernel, layer.stride, layer.padding, layer.dilation, strict=True
                )
            ]
            check_tensor_size((layer.weight.shape[0], *size), layer.name)
        try:
            tensor = layer.infer(ins)
        except OverflowError as e:  # a range wider than any type (QType.covering)
            raise DescriptionError(str(e), layer=layer.name) from None
        check_tensor_size(tensor.shape, layer.name)
        self.tensors[layer.name] = tensor
        self.layers.append(layer)

    def replace(self, name: str, layer: Layer) -> None:
        i = next(i for i, la in enumerate(self.layers) if la.name == name)
        self.layers[i] = layer
        self.tensors[name] = layer.infer([self.tensors[s] for s in layer.inputs])


def check_tensor_size(shape: tuple[int, ...], layer: str) -> None:
    """Refuse a tensor of more than :data:`MAX_TENSOR_ELEMENTS` elements per frame."""
    size = math.prod(shape)
    if size > MAX_TENSOR_ELEMENTS:
        raise DescriptionError(
            f"has shape {shape}, {size} elements per frame; a tensor may have at most "
            f"{MAX_TENSOR_ELEMENTS}",
            layer=layer,
        )


def load_description(path: str | Path, label: str | None = None) -> Network:
    """Load a YAML/JSON description and its weights file.

    ``label`` is how errors name the file (default: the path as given).
    """
    path = Path(path)
    label = label or str(path)
    doc = _read_document(path, label)
    try:
        return _build(doc, path, label)
    except DescriptionError as e:
        raise e.at(file=label) from None


def _build(doc: dict, path: Path, label: str) -> Network:
    unknown = sorted(set(doc) - _TOP_FIELDS)
    if unknown:
        raise DescriptionError(
            f"unknown top-level field {unknown[0]!r}; expected one of {sorted(_TOP_FIELDS)}"
        )
    if doc.get("format") != FORMAT_VERSION:
        raise DescriptionError(
            f"must be {FORMAT_VERSION}, not {doc.get('format')!r}", field="format"
        )
    name = _network_name(doc, path)
    arrays, arrays_label = _open_arrays(doc, path)
    ctx = _Context(label, arrays, arrays_label)
    inp = doc.get("input")
    if not isinstance(inp, dict):
        raise DescriptionError(
            f"must be a mapping with 'shape' and 'type', not {inp!r}", field="input"
        )
    _check_keys(inp, {"name", "shape", "type"}, "input", None)
    in_name = inp.get("name", "input")
    _check_layer_name(in_name)
    shape = inp.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape)
    ):
        raise DescriptionError(
            f"must be a list of positive ints, not {shape!r}", layer=in_name, field="shape"
        )
    check_tensor_size(tuple(shape), str(in_name))
    ctx.add(
        Input(
            name=in_name,
            inputs=(),
            shape=tuple(shape),
            qtype=_type(inp.get("type"), in_name, "type", required=True),
        )
    )
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise DescriptionError(
            f"must be a non-empty list of layers, not {layers!r}", field="layers"
        )
    pending_bn: dict | None = None
    for i, entry in enumerate(layers):
        if not isinstance(entry, dict):
            raise DescriptionError(f"must be a mapping, not {entry!r}", field=f"layers[{i}]")
        lname = entry.get("name")
        if not isinstance(lname, str) or not lname:
            raise DescriptionError(
                f"must be a non-empty string, not {lname!r}", field=f"layers[{i}].name"
            )
        _check_layer_name(lname)
        if lname in ctx.tensors or (pending_bn and pending_bn["name"] == lname):
            raise DescriptionError(
                "is defined twice; names must be unique", layer=lname, field="name"
            )
        op = entry.get("op")
        if not isinstance(op, str) or op not in _FIELDS:
            raise DescriptionError(
                f"must be one of {', '.join(sorted(_FIELDS))}, not {op!r}", layer=lname, field="op"
            )
        _check_keys(entry, {"name", "op", "inputs", *_FIELDS[op]}, lname, op)
        for key, kind in _FIELDS[op].items():
            if kind in _REQUIRED and key not in entry:
                raise DescriptionError(
                    f"is missing: a {op} layer needs {_REQUIRED[kind]}", layer=lname, field=key
                )
        prev = pending_bn["name"] if pending_bn else ctx.layers[-1].name
        inputs = _inputs(entry, lname, prev, ctx, pending_bn)
        if pending_bn is not None:
            if op not in ("sign", "quant") or inputs != (pending_bn["name"],):
                raise DescriptionError(
                    "must be followed by a 'sign' or 'quant' layer reading it (it is folded "
                    f"into their thresholds), not by {op!r} layer {lname!r}",
                    layer=pending_bn["name"],
                    field="op",
                )
            _fold_batchnorm(ctx, pending_bn, entry, lname)
            pending_bn = None
            continue
        if op == "batchnorm":
            pending_bn = _batchnorm_params(entry, lname, inputs, ctx)
            continue
        if op == "quant":
            raise DescriptionError(
                "must follow a 'batchnorm' layer (quantize integers with "
                "'requant' or 'multithreshold')",
                layer=lname,
                field="op",
            )
        ctx.add(_make_layer(op, entry, lname, inputs, ctx))
    if pending_bn is not None:
        raise DescriptionError(
            "must be followed by a 'sign' or 'quant' layer", layer=pending_bn["name"], field="op"
        )
    output = doc.get("output")
    if output is not None and (not isinstance(output, str) or output not in ctx.tensors):
        raise DescriptionError(f"names no layer {output!r}", field="output")
    net = Network(name, ctx.layers, output=output)
    net.folded = dict(ctx.folded)
    return net


def _open_arrays(doc: dict, path: Path):
    wfile = doc.get("weights")
    if wfile is None:
        default = path.with_suffix(".npz")
        if not default.exists():
            return {}, default.name
        wfile = default.name
    if not isinstance(wfile, str):
        raise DescriptionError(f"must be a file name, not {wfile!r}", field="weights")
    wpath = path.parent / wfile
    if not wpath.exists():
        raise DescriptionError(
            f"names {wfile!r}, which does not exist next to the description", field="weights"
        )
    try:
        return read_npz(wpath, label=wfile), wfile
    except DescriptionError as e:
        raise DescriptionError(f"{e}", field="weights") from None


def _check_keys(entry: dict, allowed: set, layer: str, op: str | None) -> None:
    for key in entry:
        if key not in allowed:
            what = f"a {op} layer" if op else "the input"
            hint = ""
            if re.fullmatch(r"\s*-?\d+>\s*", str(key)):
                hint = " (quote fixed-point types in YAML flow style: type: 'fixed<16,6>')"
            raise DescriptionError(
                f"is not a field of {what}; expected one of {sorted(allowed)}{hint}",
                layer=layer,
                field=str(key),
            )


# -- names (the rules are codesign.models.names') ------------------------------------------


def _network_name(doc: dict, path: Path) -> str:
    """The description's ``name``, refused when it breaks the rule; without one, the file's
    stem made into a valid name (``my-net.yaml`` is ``my_net``)."""
    if "name" not in doc:
        return safe_name(path.stem, network=True)
    name = doc["name"]
    if not isinstance(name, str) or not name:
        raise DescriptionError(f"must be a non-empty string, not {name!r}", field="name")
    problem = network_name_problem(name)
    if problem is not None:
        raise DescriptionError(problem, field="name")
    return name


def _check_layer_name(name) -> None:
    """Refuse a layer name that is not Verilog-safe (checked where the description gives it,
    so the error names the first bad layer; the network checks the rest)."""
    if not isinstance(name, str):
        return  # the caller's type check says so
    problem = layer_name_problem(name)
    if problem is not None:
        raise DescriptionError(problem, layer=name, field="name")


def _inputs(entry, lname, prev, ctx, pending_bn) -> tuple[str, ...]:
    raw = entry.get("inputs", [prev])
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise DescriptionError(
            f"must be a layer name or a list of them, not {raw!r}", layer=lname, field="inputs"
        )
    known = set(ctx.tensors) | ({pending_bn["name"]} if pending_bn else set())
    for s in raw:
        if s in ctx.folded:
            raise DescriptionError(
                f"cannot read {s!r}: it is folded into {ctx.folded[s]!r}; read that instead",
                layer=lname,
                field="inputs",
            )
        if s not in known:
            raise DescriptionError(
                f"names no earlier layer {s!r} (layers read only layers listed before them)",
                layer=lname,
                field="inputs",
            )
    if pending_bn is None and any(s in ctx.folded for s in raw):
        bad = next(s for s in raw if s in ctx.folded)
        raise DescriptionError(
            f"cannot read {bad!r}: it is folded into {ctx.folded[bad]!r}",
            layer=lname,
            field="inputs",
        )
    return tuple(raw)


def _array(entry, key, lname, ctx, required=True):
    arr = _array_value(entry, key, lname, ctx, required)
    if arr is not None and arr.size == 0:
        raise DescriptionError(
            f"must not be empty, not an array of shape {arr.shape}", layer=lname, field=key
        )
    return arr


def _array_value(entry, key, lname, ctx, required):
    value = entry.get(key)
    if value is None:
        default = f"{lname}.{key}"
        if default in ctx.arrays:
            return ctx.arrays[default]
        if required:
            raise DescriptionError(
                f"is missing: give an npz key or an inline list, or store the array as "
                f"{default!r} in {ctx.arrays_label}",
                layer=lname,
                field=key,
            )
        return None
    if isinstance(value, str):
        if value not in ctx.arrays:
            raise DescriptionError(
                f"names array {value!r}, which {ctx.arrays_label} does not hold",
                layer=lname,
                field=key,
            )
        return ctx.arrays[value]
    if isinstance(value, int | float | list) and not isinstance(value, bool):
        try:
            arr = np.array(value)
        except (ValueError, OverflowError):
            arr = None
        if arr is not None and arr.dtype.kind in "iuf":
            return arr
        big = _first_huge_int(value)
        if big is not None:
            raise DescriptionError(
                f"must hold integers that fit int64, not {big}", layer=lname, field=key
            )
    raise DescriptionError(
        f"must be an npz key or a (nested) list of numbers, not {value!r}", layer=lname, field=key
    )


def _first_huge_int(value) -> int | None:
    """The first int in a nested list that does not fit int64 (numpy makes such a list an
    object array), or None."""
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, list):
            todo.extend(reversed(v))
        elif isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
            return v
    return None


def _type(value, lname, key, required=False):
    if value is None:
        if required:
            raise DescriptionError(
                "is missing: expected a type such as 'int8'", layer=lname, field=key
            )
        return None
    try:
        q = parse_qtype(value)
    except (TypeError, ValueError) as e:
        raise DescriptionError(str(e), layer=lname, field=key) from None
    if q.bits > MAX_DESCRIPTION_BITS:
        raise DescriptionError(
            f"bits must be between 1 and {MAX_DESCRIPTION_BITS}, not {q.bits}",
            layer=lname,
            field=key,
        )
    if q.bits == 0:
        raise DescriptionError("bits must be at least 1", layer=lname, field=key)
    return q


def _scalar(entry, key, kind, lname, default=None):
    value = entry.get(key)
    if value is None:  # absent, or given as null: the default
        value = default
    if value is None:
        return None
    if kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
        raise DescriptionError(f"must be an int, not {value!r}", layer=lname, field=key)
    if kind == "float":
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise DescriptionError(
                f"must be a finite number, not {value!r}", layer=lname, field=key
            )
        value = float(value)
    return value


def _mode(entry, key, lname, parse):
    if key not in entry:
        return {}
    try:
        return {key: parse(entry[key])}
    except (TypeError, ValueError) as e:
        raise DescriptionError(str(e), layer=lname, field=key) from None


def _make_layer(op, entry, lname, inputs, ctx) -> Layer:
    common = {"name": lname, "inputs": inputs}
    pairs = {k: entry[k] for k in ("stride", "padding", "dilation", "kernel") if k in entry}
    if op in ("dense", "conv2d"):
        cls = Dense if op == "dense" else Conv2d
        extra = {**pairs, "groups": entry["groups"]} if "groups" in entry else pairs
        weight = _array(entry, "weight", lname, ctx)
        try:
            return cls(
                **common, weight=weight, bias=_array(entry, "bias", lname, ctx, False), **extra
            )
        except DescriptionError as e:
            if e.field != "bias":
                raise
            # a bias that does not fit the weight: when the weight does not fit the layer's
            # input either (e.g. it is transposed), the weight is what is wrong
            unbiased = cls(**common, weight=weight, **extra)
            unbiased.infer([ctx.tensors[s] for s in inputs])
            raise
    if op in ("maxpool2d", "avgpool2d", "sumpool2d"):
        return LAYER_TYPES[op](**common, **pairs, **_mode(entry, "rounding", lname, parse_rounding))
    if op == "relu":
        return Clip(**common, min=0, max=_scalar(entry, "max", "int", lname))
    if op == "clip":
        return Clip(
            **common,
            min=_scalar(entry, "min", "int", lname),
            max=_scalar(entry, "max", "int", lname),
        )
    if op == "requant":
        return LAYER_TYPES[op](
            **common,
            multiplier=_array(entry, "multiplier", lname, ctx),
            shift=_array(entry, "shift", lname, ctx),
            qtype=_type(entry.get("type"), lname, "type", required=True),
            **_mode(entry, "rounding", lname, parse_rounding),
            **_mode(entry, "overflow", lname, parse_overflow),
        )
    if op == "multithreshold":
        return MultiThreshold(
            **common,
            thresholds=_array(entry, "thresholds", lname, ctx),
            out_scale=_scalar(entry, "out_scale", "int", lname, 1),
            out_bias=_scalar(entry, "out_bias", "int", lname, 0),
            out_type=_type(entry.get("out_type"), lname, "out_type"),
        )
    if op in ("flatten", "add"):
        return LAYER_TYPES[op](**common)
    if op == "reshape":
        return LAYER_TYPES[op](**common, shape=entry.get("shape"))
    if op in ("binary_dense", "binary_conv2d"):
        extra = {"encoding": entry["encoding"]} if "encoding" in entry else {}
        return LAYER_TYPES[op](
            **common, weight=_array(entry, "weight", lname, ctx), **extra, **pairs
        )
    if op == "deform_conv2d":
        return _deform_layer(entry, lname, common, pairs, ctx)
    if op == "sign":
        return _sign_threshold(common, entry, np.zeros((1, 1), dtype=np.int64))
    raise AssertionError(op)  # every op of _FIELDS is handled above


def _deform_layer(entry, lname, common, pairs, ctx) -> Layer:
    name = entry.get("variant", "free")
    bound = _scalar(entry, "bound", "int", lname)
    try:
        variant = Variant.parse(name, bound)
    except (TypeError, ValueError) as e:  # "<field> must ...": bound or variant
        field, _, message = str(e).partition(" ")
        raise DescriptionError(message, layer=lname, field=field) from None
    return DeformConv2d(
        **common,
        weight=_array(entry, "weight", lname, ctx),
        bias=_array(entry, "bias", lname, ctx, False),
        variant=variant,
        **pairs,
    )


def _sign_threshold(common, entry, thresholds) -> MultiThreshold:
    """``x >= t`` → +1/-1 (bipolar) or 1/0 (binary encoding)."""
    enc = entry.get("encoding", "bipolar")
    if enc == "bipolar":
        return MultiThreshold(
            **common, thresholds=thresholds, out_scale=2, out_bias=-1, out_type=QType.bipolar()
        )
    if enc == "binary":
        return MultiThreshold(**common, thresholds=thresholds, out_type=QType.int(1, False))
    raise DescriptionError(
        f"must be 'bipolar' or 'binary', not {enc!r}", layer=common["name"], field="encoding"
    )


# -- BatchNorm folding ---------------------------------------------------------------------


def _batchnorm_params(entry, lname, inputs, ctx) -> dict:
    if len(inputs) != 1:
        raise DescriptionError("must have 1 input", layer=lname, field="inputs")
    src = ctx.tensors[inputs[0]]
    c = src.shape[0]
    bn = {"name": lname, "input": inputs[0]}
    for key in ("gamma", "beta", "mean", "var"):
        arr = np.asarray(_array(entry, key, lname, ctx), dtype=np.float64)
        if arr.shape != (c,):
            raise DescriptionError(
                f"must have shape ({c},) (channels of {inputs[0]!r}), not {arr.shape}",
                layer=lname,
                field=key,
            )
        if not np.all(np.isfinite(arr)):
            raise DescriptionError("must hold finite numbers", layer=lname, field=key)
        bn[key] = arr
    if np.any(bn["var"] < 0):
        raise DescriptionError("must not be negative", layer=lname, field="var")
    bn["eps"] = _scalar(entry, "eps", "float", lname, 1e-5)
    bn["acc_scale"] = _scalar(entry, "acc_scale", "float", lname, 1.0)
    if bn["acc_scale"] <= 0:
        raise DescriptionError(
            f"must be positive, not {bn['acc_scale']}", layer=lname, field="acc_scale"
        )
    if np.any(bn["var"] + bn["eps"] <= 0):
        raise DescriptionError("var + eps must be positive", layer=lname, field="eps")
    return bn


def _bn_real(bn: dict, acc: np.ndarray) -> np.ndarray:
    """The description's meaning of BatchNorm, in float64, channel on axis 0 of ``acc``."""
    g, b, m, v = (bn[k][:, None] for k in ("gamma", "beta", "mean", "var"))
    return g * (acc * bn["acc_scale"] - m) / np.sqrt(v + bn["eps"]) + b


def _fold_batchnorm(ctx: _Context, bn: dict, entry: dict, lname: str) -> None:
    """Replace BatchNorm + sign/quant by a MultiThreshold whose integer comparisons agree
    with the float64 BatchNorm-then-quantize at every integer accumulator value."""
    src_name = bn["input"]
    slope = bn["gamma"] * bn["acc_scale"]
    flip = slope < 0
    offset = 0
    if np.any(flip):
        offset = _flip_channels(ctx, src_name, flip, bn["name"])
    acc = ctx.tensors[src_name]
    sign = np.where(flip, -1, 1)[:, None]
    op = entry["op"]
    if op == "sign":
        levels = np.array([0.5])  # output level 1 when BN(acc) >= 0

        def level_of(a):
            return (_bn_real(bn, offset * (sign < 0) + sign * a) >= 0).astype(np.float64)

    else:
        qt = _type(entry.get("type"), lname, "type", required=True)
        if qt.kind not in (Kind.INT,):
            raise DescriptionError(
                f"must be a plain integer type, not {qt}", layer=lname, field="type"
            )
        scale = _scalar(entry, "scale", "float", lname)
        if scale is None or scale <= 0:
            raise DescriptionError(
                f"must be a positive number, not {scale!r}", layer=lname, field="scale"
            )
        rounding = _mode(entry, "rounding", lname, parse_rounding).get("rounding")
        rounding = rounding or Rounding.HALF_EVEN
        levels = np.arange(qt.min + 1, qt.max + 1, dtype=np.float64)

        def level_of(a):
            y = _bn_real(bn, offset * (sign < 0) + sign * a) / scale
            with np.errstate(invalid="ignore"):
                return np.clip(round_real(y, rounding), qt.min, qt.max)

    thresholds = search_thresholds(level_of, levels, acc.lo, acc.hi, acc.shape[0])
    common = {"name": lname, "inputs": (src_name,)}
    if op == "sign":
        layer = _sign_threshold(common, entry, thresholds)
    else:
        layer = MultiThreshold(**common, thresholds=thresholds, out_bias=qt.min, out_type=qt)
    ctx.folded[bn["name"]] = lname
    ctx.add(layer)


def _flip_channels(ctx: _Context, src_name: str, flip: np.ndarray, bn_name: str) -> int:
    """Negate the channels in ``flip`` of the layer ``src_name`` so a negative BatchNorm
    slope becomes positive. Returns ``c`` such that the old accumulator is ``c - new``."""
    src = next(la for la in ctx.layers if la.name == src_name)
    readers = [la.name for la in ctx.layers if src_name in la.inputs]
    if readers or not isinstance(src, Dense | Conv2d | BinaryDense | BinaryConv2d):
        raise DescriptionError(
            f"has a negative scale on channel {int(np.argmax(flip))}, so it must directly "
            "follow a dense, conv2d, binary_dense or binary_conv2d layer read by nothing else",
            layer=bn_name,
            field="gamma",
        )
    shape = (-1,) + (1,) * (src.weight.ndim - 1)
    f = flip.reshape(shape)
    if isinstance(src, BinaryDense | BinaryConv2d) and src.encoding.value == "binary":
        weight = np.where(f, 1 - src.weight, src.weight)  # popcount P becomes K - P
        offset = int(src.weight[0].size)
    else:
        weight = np.where(f, -src.weight, src.weight)
        offset = 0
    changes = {"weight": weight}
    if getattr(src, "bias", None) is not None:
        changes["bias"] = np.where(flip, -src.bias, src.bias)
    fields = {f.name: getattr(src, f.name) for f in dataclasses.fields(src)}
    ctx.replace(src_name, type(src)(**(fields | changes)))
    return offset


# -- writing -------------------------------------------------------------------------------


def save_description(net: Network, path: str | Path) -> tuple[Path, Path]:
    """Write ``net`` as ``path`` (YAML) and a ``.npz`` beside it, atomically and
    byte-deterministically. BatchNorms are saved folded."""
    path = Path(path)
    npz = path.with_suffix(".npz")
    arrays: dict[str, np.ndarray] = {}
    layers = []
    inp = net[net.input]
    for layer in net.layers:
        if layer is inp:
            continue
        entry = {"name": layer.name, "op": layer.op}
        if isinstance(layer, Clip) and layer.min == 0:
            entry["op"] = "relu"
            if layer.max is not None:
                entry["max"] = layer.max
        else:
            entry.update(layer.attributes())
        entry["inputs"] = list(layer.inputs)
        for key, arr in layer.arrays().items():
            arrays[f"{layer.name}.{key}"] = arr
            entry[key] = f"{layer.name}.{key}"
        layers.append(entry)
    doc = {
        "format": FORMAT_VERSION,
        "name": net.name,
        "weights": npz.name,
        "input": {"name": inp.name, **inp.attributes()},
        "output": net.output,
        "layers": layers,
    }
    write_npz(npz, arrays)
    atomic_write(path, yaml.safe_dump(doc, sort_keys=False, default_flow_style=None))
    return path, npz
