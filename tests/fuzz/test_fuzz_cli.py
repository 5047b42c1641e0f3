"""Fuzzing the CLI's file readers with hypothesis: structurally plausible mutations of valid
network descriptions (YAML/JSON + npz), hardware configs, input arrays and QONNX graphs.

Each mutated file goes through ``codesign.cli.main`` in-process. The contract: exit 0 with
every output file complete, or exit 2 with exactly one stderr line and no output file (and
no temporary file) left behind; never an exception escaping ``main`` (a traceback), never a
warning (warnings are errors in the test run).

Mutations are plain data (lists of JSON values), so every finding is kept in
``tests/fuzz/corpus/<target>.json`` and run every time (:func:`test_corpus`). They name
values by index into the tables below (``WEIRD``, ``DTYPES``...) and fields by index into
the sorted paths of the base file, so the tables are append-only and a corpus entry is
rechecked (it reproduces its finding on the code before the fix) when a base file changes.

The default run is bounded (:data:`DEFAULT_EXAMPLES` per target, derandomized: the same
examples every run); ``pytest tests/fuzz --fuzz-examples N`` runs N examples per target.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import re
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from codesign.cli import main

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "models" / "zoo"
QONNX = ROOT / "tests" / "fixtures" / "qonnx"
CORPUS = Path(__file__).with_name("corpus")

#: Examples per target in the default test run (about 25 s in all on one idle core).
DEFAULT_EXAMPLES = {"description": 200, "config": 60, "input": 150, "onnx": 60}
#: Seconds one CLI call may take before the example counts as a hang.
CALL_TIMEOUT = 60

DESCRIPTIONS = ["jet_tagger", "cnv_tiny", "resnet_tiny", "tfc_w1a1"]
CONFIG_NETS = ["jet_tagger", "res_small"]
RES_SMALL = Path(__file__).resolve().parent.parent / "fixtures" / "res_small.yaml"
INPUT_NETS = ["jet_tagger", "tfc_w1a1", "cnv_tiny"]
ONNX_MODELS = ["mlp_w4a4_pt", "cnn_bn_cw", "mlp_bn_opset", "dws_avgpool"]


# -- running the CLI -------------------------------------------------------------------------


class Hang(BaseException):  # not an Exception: main must not catch it
    """A CLI call ran longer than :data:`CALL_TIMEOUT`."""


def _alarm(signum, frame):
    raise Hang(f"a CLI call ran longer than {CALL_TIMEOUT} s")


def run_cli(argv: list, outputs: list[Path]) -> tuple[int, str]:
    """Run ``main(argv)`` in-process and check the contract; returns (status, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CALL_TIMEOUT)
    saved = os.dup(2)  # native libraries (onnxruntime's logger) write to fd 2 directly
    with tempfile.TemporaryFile() as native:
        os.dup2(native.fileno(), 2)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = main([str(a) for a in argv])
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
            os.dup2(saved, 2)
            os.close(saved)
        native.seek(0)
        text = native.read().decode(errors="replace") + err.getvalue()
    assert "Traceback" not in text, text
    if status == 0:
        assert text == "", text
        for path in outputs:
            assert path.exists(), f"exit 0 but {path} was not written"
    else:
        assert status == 2, (status, text)
        lines = text.splitlines()
        assert len(lines) == 1 and text.endswith("\n"), text
        assert lines[0].startswith("codesign: error: "), text
        assert len(lines[0]) > len("codesign: error: "), text
        for path in outputs:
            assert not path.exists(), f"exit 2 but {path} exists: {text}"
    for path in outputs:  # no temporary file of atomic_write left behind
        if path.parent.is_dir():
            left = [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
            assert not left, left
    return status, text


# -- mutating JSON-like documents --------------------------------------------------------------

#: Values a field may be replaced with: wrong types, absurd and non-finite numbers, unicode
#: (append only: the corpus names them by index).
WEIRD = [
    None, True, False, 0, -1, 1, 2, 3, 7, 64, 255, 2**31, 2**63, -(2**63) - 1, 10**30,
    0.5, -2.5, 1e300, -1e300, math.inf, -math.inf, math.nan, "", "x", "int8", "uint0",
    "int65", "fixed<16,6>", "fixed<100,2>", "fixed<4,9>", "bipolar", "binary", "dense",
    "conv2d", "relu", "sat", "wrap", "half_up", "block", "auto", "fc1", "input", "ünï",
    "名前", "a b", "a\nb", "\x00", "../../x", [], {}, [1], [1, 2], [[1, 2], [3, 4]], [0, 0],
    [-1], [10**30], ["a"], {"a": 1}, [[[1]]], [1.5, 2], [None], 1e-300, 2**53 + 1,
]  # fmt: skip


def paths(doc) -> list[tuple]:
    """Every path (keys and indices) into ``doc``, the root excluded, sorted."""
    found = []
    todo = [((), doc)]
    while todo:
        path, node = todo.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        if not isinstance(node, dict | list):
            continue
        for k, v in items:
            found.append((*path, k))
            if isinstance(v, dict | list):
                todo.append(((*path, k), v))
    found.sort(key=lambda p: [str(x) for x in p])
    return found


def _parent(doc, path):
    node = doc
    for k in path[:-1]:
        node = node[k]
    return node, path[-1]


def mutate_doc(doc, m: list):
    """Apply one document mutation ``m`` (kind first) to ``doc`` in place; unknown kinds
    are left for the caller."""
    ps = paths(doc)
    if not ps:
        return
    kind = m[0]
    if kind == "drop":
        parent, key = _parent(doc, ps[m[1] % len(ps)])
        del parent[key]
    elif kind == "set":
        parent, key = _parent(doc, ps[m[1] % len(ps)])
        parent[key] = copy.deepcopy(WEIRD[m[2] % len(WEIRD)])
    elif kind == "dup":  # a list element twice, or a mapping field under a second name
        parent, key = _parent(doc, ps[m[1] % len(ps)])
        if isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        else:
            parent[f"{key}_2"] = copy.deepcopy(parent[key])
    elif kind == "swap":
        pa, ka = _parent(doc, ps[m[1] % len(ps)])
        pb, kb = _parent(doc, ps[m[2] % len(ps)])
        try:
            pa[ka], pb[kb] = pb[kb], pa[ka]
        except (KeyError, IndexError):  # one path inside the other
            pass
    elif kind == "rename":
        parent, key = _parent(doc, ps[m[1] % len(ps)])
        if isinstance(parent, dict):
            new = WEIRD[m[2] % len(WEIRD)]
            new = new if isinstance(new, str) else str(new)
            parent[new] = parent.pop(key)
    elif kind == "copy":  # a value copied over another (a layer's name onto another...)
        pa, ka = _parent(doc, ps[m[1] % len(ps)])
        pb, kb = _parent(doc, ps[m[2] % len(ps)])
        pb[kb] = copy.deepcopy(pa[ka])


DOC_MUTATIONS = st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 500)),
    st.tuples(st.just("set"), st.integers(0, 500), st.integers(0, len(WEIRD) - 1)),
    st.tuples(st.just("dup"), st.integers(0, 500)),
    st.tuples(st.just("swap"), st.integers(0, 500), st.integers(0, 500)),
    st.tuples(st.just("rename"), st.integers(0, 500), st.integers(0, len(WEIRD) - 1)),
    st.tuples(st.just("copy"), st.integers(0, 500), st.integers(0, 500)),
).map(list)

#: Text mutations of a YAML file: cut it, change a character, duplicate a line (a key given
#: twice), prepend an alias bomb, or write the document as JSON instead.
TEXT_MUTATIONS = st.one_of(
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("char"), st.floats(0, 1), st.sampled_from(list(":-[]{}&*!|>'\"#%@ \n\t0"))),
    st.tuples(st.just("dupline"), st.integers(0, 500)),
    st.tuples(st.just("bomb"), st.integers(2, 12)),
    st.tuples(st.just("json")),
).map(list)


def dump(doc, text_muts: list) -> tuple[str, str]:
    """``doc`` as YAML (or JSON) text with the text mutations applied; returns (text, suffix)."""
    as_json = any(m[0] == "json" for m in text_muts)
    if as_json:
        text = json.dumps(doc, indent=1)
    else:
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
    for m in text_muts:
        if m[0] == "cut":
            text = text[: int(len(text) * m[1])]
        elif m[0] == "char" and text:
            i = min(int(len(text) * m[1]), len(text) - 1)
            text = text[:i] + m[2] + text[i + 1 :]
        elif m[0] == "dupline":
            lines = text.split("\n")
            keyed = [i for i, ln in enumerate(lines) if re.match(r"^\s*(- )?[\w\"]+: \S", ln)]
            if keyed:
                i = keyed[m[1] % len(keyed)]
                indent = re.match(r"^(\s*)(- )?", lines[i])
                line = lines[i]
                if indent.group(2):  # the first key of a list item: repeat it without "- "
                    line = indent.group(1) + "  " + line[len(indent.group(0)) :]
                lines.insert(i + 1, line)
                text = "\n".join(lines)
        elif m[0] == "bomb" and not as_json:
            levels = m[1]
            bomb = ["b0: &b0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
            for k in range(1, levels):
                bomb.append(f"b{k}: &b{k} [" + ", ".join([f"*b{k - 1}"] * 10) + "]")
            text = "\n".join(bomb) + "\n" + text
    return text, ".json" if as_json else ".yaml"


def cut_bytes(data: bytes, muts: list) -> bytes:
    for m in muts:
        if m[0] == "cut":
            data = data[: int(len(data) * m[1])]
        elif m[0] == "byte" and data:
            i = min(int(len(data) * m[1]), len(data) - 1)
            data = data[:i] + bytes([m[2]]) + data[i + 1 :]
    return data


BYTE_MUTATIONS = st.one_of(
    st.tuples(st.just("cut"), st.floats(0, 1)),
    st.tuples(st.just("byte"), st.floats(0, 1), st.integers(0, 255)),
).map(list)


# -- arrays ----------------------------------------------------------------------------------

DTYPES = ["float64", "float32", "float16", "uint64", "uint8", "int8", "int16", "int32", ">i8",
          "bool", "complex128", "U3", "object", "V8"]  # fmt: skip
ARRAY_VALUES = [1e300, -1e300, math.nan, math.inf, -math.inf, 0.5, -0.5, 2**62, -(2**63),
                2**40, 2**31, -(2**31) - 1, 255, -1, 10**20]  # fmt: skip
SHAPES = ["T", "flat", "lead", "cut0", "cut1", "empty", "scalar", "double"]


def reshape(a: np.ndarray, how: str) -> np.ndarray:
    if how == "T":
        return np.ascontiguousarray(a.T)
    if how == "flat":
        return a.reshape(-1)
    if how == "lead":
        return a[None]
    if how == "cut0":
        return a[:-1] if a.ndim else a
    if how == "cut1":
        return a[:, :-1] if a.ndim > 1 else a
    if how == "empty":
        return a[:0] if a.ndim else a.reshape(1)[:0]
    if how == "scalar":
        return a.reshape(-1)[:1].reshape(()) if a.size else np.zeros(())
    return np.concatenate([a, a]) if a.ndim else a


def retype(a: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "object":
        return a.astype(object)
    if dtype == "V8":
        return np.zeros(a.shape, dtype="V8")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # complex to real: the mutation wants just that
        try:
            return a.astype(dtype)
        except (TypeError, ValueError, OverflowError):  # e.g. raw bytes (V8): keep it
            return a


def set_value(a: np.ndarray, frac: float, value) -> np.ndarray:
    if not a.size or a.dtype.kind not in "biufc":
        return a
    flat = a.reshape(-1).copy()
    i = min(int(flat.size * frac), flat.size - 1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1e300 into float16 is inf: the mutation wants it
        try:
            flat[i] = value
        except (OverflowError, ValueError, TypeError):  # does not fit: widen first
            flat = flat.astype(np.float64)
            flat[i] = value
    return flat.reshape(a.shape)


ARRAY_MUTATIONS = st.one_of(
    st.tuples(st.just("adrop"), st.integers(0, 99)),
    st.tuples(st.just("aswap"), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("ashape"), st.integers(0, 99), st.sampled_from(SHAPES)),
    st.tuples(st.just("adtype"), st.integers(0, 99), st.sampled_from(DTYPES)),
    st.tuples(
        st.just("avalue"), st.integers(0, 99), st.floats(0, 1), st.sampled_from(ARRAY_VALUES)
    ),
).map(list)


def mutate_arrays(arrays: dict, m: list) -> None:
    keys = sorted(arrays)
    if not keys:
        return
    k = keys[m[1] % len(keys)]
    if m[0] == "adrop":
        del arrays[k]
    elif m[0] == "aswap":
        k2 = keys[m[2] % len(keys)]
        arrays[k], arrays[k2] = arrays[k2], arrays[k]
    elif m[0] == "ashape":
        arrays[k] = reshape(arrays[k], m[2])
    elif m[0] == "adtype":
        arrays[k] = retype(arrays[k], m[2])
    elif m[0] == "avalue":
        arrays[k] = set_value(arrays[k], m[2], m[3])


def npz_blob(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # pickles object arrays, as a hostile file would
    return buf.getvalue()


def npy_blob(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


# -- the targets -----------------------------------------------------------------------------


def _zoo(name: str) -> tuple[dict, dict]:
    doc = yaml.safe_load((ZOO / f"{name}.yaml").read_text())
    with np.load(ZOO / f"{name}.npz") as z:
        arrays = {k: z[k] for k in z.files}
    return doc, arrays


def run_description(case: dict) -> None:
    """Mutate a zoo description (its document, its arrays, then its bytes) and run
    ``codesign info`` and ``codesign golden --random 3 --output --trace``."""
    doc, arrays = _zoo(case["base"])
    for m in case.get("doc", []):
        mutate_doc(doc, m)
    for m in case.get("arrays", []):
        mutate_arrays(arrays, m)
    text, suffix = dump(doc, case.get("text", []))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        desc = tmp / f"net{suffix}"
        desc.write_text(text, encoding="utf-8")
        npz_name = doc.get("weights") if isinstance(doc, dict) else None
        ok = isinstance(npz_name, str) and not {"/", "\x00"} & set(npz_name)
        npz_name = npz_name if ok else "net.npz"
        if npz_name and not npz_name.startswith("."):
            (tmp / npz_name).write_bytes(cut_bytes(npz_blob(arrays), case.get("npz", [])))
        before = set(tmp.iterdir())
        run_cli(["info", desc], [])
        out = tmp / "out" / "y.npy"
        traced = tmp / "out" / "trace"
        status, _ = run_cli(
            ["golden", desc, "--random", 3, "--output", out, "--trace", traced], [out, traced]
        )
        if status == 0:
            assert np.load(out).shape[0] == 3
            for p in traced.iterdir():  # one file per layer, each a complete array
                assert np.load(p).shape[0] == 3
        # nothing written outside the output folder (a layer named '../x' once was)
        assert set(tmp.iterdir()) - before <= {tmp / "out"}


def res_small() -> dict:
    """A small residual network (inline arrays, ``tests/fixtures/res_small.yaml``): its add
    stage has a skip FIFO, and even fully folded (PE = SIMD = 1) it simulates in well under
    a second."""
    return yaml.safe_load(RES_SMALL.read_text())


def _net_path(base: str, tmp: Path) -> str:
    """A zoo name as is; ``res_small`` written to ``tmp``."""
    if base != "res_small":
        return base
    path = tmp / "res_small.yaml"
    path.write_text(yaml.safe_dump(res_small()))
    return str(path)


def _config_base(net: str) -> dict:
    from codesign.models.hwconfig import Design
    from codesign.models.loader import load

    with tempfile.TemporaryDirectory() as tmp:
        d = Design(load(_net_path(net, Path(tmp))))
    doc = d.config.to_dict()
    doc["clock_mhz"] = 150.0
    return doc


def run_config(case: dict) -> None:
    """Mutate a hardware config (document, then text) and run ``codesign sim --config``
    with ``--size-fifos``, then simulate the config that wrote."""
    doc = _config_base(case["base"])
    for m in case.get("doc", []):
        mutate_doc(doc, m)
    text, _ = dump(doc, [m for m in case.get("text", []) if m[0] != "json"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        hw = tmp / "hw.yaml"
        hw.write_text(text, encoding="utf-8")
        out = tmp / "sized" / "hw_sized.yaml"
        net = _net_path(case["base"], tmp)
        status, _ = run_cli(["sim", net, "--config", hw, "--frames", 2, "--size-fifos", out], [out])
        if status == 0:  # the sized config it wrote is a valid config
            assert run_cli(["sim", net, "--config", out, "--frames", 2], [])[0] == 0


INPUT_SHAPES = ["none", "flat", "lead", "wide", "narrow", "empty", "scalar", "fortran"]


def run_input(case: dict) -> None:
    """Mutate a batch of valid inputs (dtype, shape, values, bytes) and run ``codesign
    golden --input --output``."""
    from codesign.models.golden import random_inputs
    from codesign.models.loader import load

    net = load(case["base"])
    x = random_inputs(net, 3, seed=0)
    for m in case.get("x", []):
        if m[0] == "dtype":
            x = retype(x, m[1])
        elif m[0] == "value":
            x = set_value(x, m[1], m[2])
        elif m[0] == "shape":
            how = m[1]
            if how in SHAPES:
                x = reshape(x, how)
            elif how == "wide" and x.ndim:
                x = np.concatenate([x, x[..., :1]], axis=-1)
            elif how == "narrow" and x.ndim:
                x = x[..., :-1]
            elif how == "fortran":
                x = np.asfortranarray(x)
    blob = npz_blob({"x": x}) if case.get("npz") else npy_blob(x)
    blob = cut_bytes(blob, case.get("bytes", []))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "x.npy").write_bytes(blob)
        out = tmp / "out" / "y.npy"
        status, _ = run_cli(
            ["golden", case["base"], "--input", tmp / "x.npy", "--output", out], [out]
        )
        if status == 0:
            assert np.load(out).shape[0] == x.shape[0]


ONNX_TYPES = [0, 1, 2, 3, 6, 7, 9, 10, 11, 16, 99]


def mutate_onnx(proto, m: list) -> None:
    g = proto.graph
    kind = m[0]
    if kind == "drop_init" and g.initializer:
        del g.initializer[m[1] % len(g.initializer)]
    elif kind == "drop_node" and g.node:
        del g.node[m[1] % len(g.node)]
    elif kind == "attr" and g.node:
        from onnx import helper

        node = g.node[m[1] % len(g.node)]
        if node.attribute:
            a = node.attribute[m[2] % len(node.attribute)]
            value = m[3]
            new = helper.make_attribute(a.name, value)
            node.attribute.remove(a)
            node.attribute.append(new)
    elif kind == "rewire" and g.node:
        node = g.node[m[1] % len(g.node)]
        names = sorted(
            {i.name for i in g.input}
            | {t.name for t in g.initializer}
            | {o for n in g.node for o in n.output}
            | {"no_such_tensor", ""}
        )
        if node.input:
            node.input[m[2] % len(node.input)] = names[m[3] % len(names)]
    elif kind == "dtype":
        tensors = list(g.initializer)
        vis = [*g.input, *g.output, *g.value_info]
        if m[1] % 2 and tensors:
            tensors[m[2] % len(tensors)].data_type = ONNX_TYPES[m[3] % len(ONNX_TYPES)]
        elif vis:
            vis[m[2] % len(vis)].type.tensor_type.elem_type = ONNX_TYPES[m[3] % len(ONNX_TYPES)]
    elif kind == "dims" and g.initializer:
        t = g.initializer[m[1] % len(g.initializer)]
        dims = list(t.dims)
        how = m[2] % 4
        if how == 0 and dims:
            dims = dims[::-1]
        elif how == 1:
            dims = [*dims, 1]
        elif how == 2 and dims:
            dims = dims[:-1]
        else:
            dims = [d * 2 for d in dims]
        del t.dims[:]
        t.dims.extend(dims)
    elif kind == "input_shape" and g.input:
        dims = g.input[0].type.tensor_type.shape.dim
        if dims:
            d = dims[m[1] % len(dims)]
            d.dim_value = [0, 1, 3, 1000, 2**40][m[2] % 5]  # (10**6: see the report)


ATTR_VALUES = [0, 1, -1, 2, 3, 100, 2**40, 0.5, -1.0, 1e300, "x", "NOTSET", b"", [0], [1, 1],
               [2, 2, 2, 2], [-1, 0], [0.5, 2.0]]  # fmt: skip

ONNX_MUTATIONS = st.one_of(
    st.tuples(st.just("drop_init"), st.integers(0, 99)),
    st.tuples(st.just("drop_node"), st.integers(0, 99)),
    st.tuples(st.just("attr"), st.integers(0, 99), st.integers(0, 9), st.sampled_from(ATTR_VALUES)),
    st.tuples(st.just("rewire"), st.integers(0, 99), st.integers(0, 9), st.integers(0, 999)),
    st.tuples(st.just("dtype"), st.integers(0, 1), st.integers(0, 99), st.integers(0, 99)),
    st.tuples(st.just("dims"), st.integers(0, 99), st.integers(0, 3)),
    st.tuples(st.just("input_shape"), st.integers(0, 9), st.integers(0, 4)),
).map(list)


def run_onnx(case: dict) -> None:
    """Mutate a QONNX fixture (its graph, then its bytes) and run ``codesign import``."""
    import onnx

    proto = onnx.load(QONNX / f"{case['base']}.onnx")
    for m in case.get("graph", []):
        mutate_onnx(proto, m)
    data = cut_bytes(proto.SerializeToString(), case.get("bytes", []))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = tmp / "m.onnx"
        model.write_bytes(data)
        out = tmp / "imported"
        status, _ = run_cli(["import", model, "-o", out], [out])
        if status == 0:
            run_cli(["info", out], [])


RUNNERS = {
    "description": run_description,
    "config": run_config,
    "input": run_input,
    "onnx": run_onnx,
}

CASES = {
    "description": st.fixed_dictionaries(
        {"base": st.sampled_from(DESCRIPTIONS)},
        optional={
            "doc": st.lists(DOC_MUTATIONS, min_size=1, max_size=3),
            "arrays": st.lists(ARRAY_MUTATIONS, min_size=1, max_size=2),
            # often empty: a file cut or garbled fails early, before the deeper checks
            "text": st.lists(TEXT_MUTATIONS, max_size=2),
            "npz": st.lists(BYTE_MUTATIONS, max_size=2),
        },
    ),
    "config": st.fixed_dictionaries(
        {"base": st.sampled_from(CONFIG_NETS)},
        optional={
            "doc": st.lists(DOC_MUTATIONS, min_size=1, max_size=3),
            "text": st.lists(TEXT_MUTATIONS, min_size=1, max_size=2),
        },
    ),
    "input": st.fixed_dictionaries(
        {"base": st.sampled_from(INPUT_NETS)},
        optional={
            "x": st.lists(
                st.one_of(
                    st.tuples(st.just("dtype"), st.sampled_from(DTYPES)),
                    st.tuples(st.just("value"), st.floats(0, 1), st.sampled_from(ARRAY_VALUES)),
                    st.tuples(st.just("shape"), st.sampled_from(SHAPES + INPUT_SHAPES)),
                ).map(list),
                min_size=1,
                max_size=3,
            ),
            "npz": st.booleans(),
            "bytes": st.lists(BYTE_MUTATIONS, max_size=2),
        },
    ),
    "onnx": st.fixed_dictionaries(
        {"base": st.sampled_from(ONNX_MODELS)},
        optional={
            "graph": st.lists(ONNX_MUTATIONS, min_size=1, max_size=3),
            "bytes": st.lists(BYTE_MUTATIONS, max_size=1),
        },
    ),
}


@pytest.fixture
def fuzz_examples(request, target) -> int:
    n = request.config.getoption("--fuzz-examples")
    return DEFAULT_EXAMPLES[target] if n is None else n


@pytest.mark.parametrize("target", sorted(RUNNERS))
def test_fuzz(target, fuzz_examples, request):
    """Random mutations of valid files: exit 0, or one stderr line and exit 2; never a
    traceback, never a partial output file. The default run's examples are fixed
    (derandomized); ``--fuzz-seed S`` explores from seed S instead."""
    fuzz_seed = request.config.getoption("--fuzz-seed")

    @seed(fuzz_seed if fuzz_seed is not None else 0)
    @settings(
        max_examples=fuzz_examples,
        deadline=None,
        derandomize=fuzz_seed is None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(case=CASES[target])
    def fuzz(case):
        try:
            RUNNERS[target](case)
        except BaseException:
            # the case as a corpus entry, to keep once fixed
            print(f"failing {target} case: {json.dumps(case)}")
            raise

    fuzz()


def corpus() -> list:
    cases = []
    for path in sorted(CORPUS.glob("*.json")):
        for i, entry in enumerate(json.loads(path.read_text())):
            cases.append(pytest.param(path.stem, entry, id=f"{path.stem}-{i}"))
    return cases


@pytest.mark.parametrize(("target", "entry"), corpus())
def test_corpus(target, entry):
    """Past findings of the fuzzer (``tests/fuzz/corpus/<target>.json``), each with what it
    found, run every time."""
    assert entry["found"]
    RUNNERS[target](entry["case"])
