"""Keep docs/description-format.md true to the code.

- Every ```yaml block preceded by the line ``<!-- example -->`` is a full, self-contained
  description: it is written to a temporary folder (with no .npz beside it), loaded with
  ``codesign.models.loader.load`` and run with ``codesign.models.golden.golden`` on random inputs.
- Every op and field the loader accepts has its section and mention in the document.
- The type, rounding and overflow tables (each after a ``<!-- NAME-table -->`` marker) agree
  with ``codesign.models.qtype`` and ``codesign.models.arith``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from codesign.models import loader
from codesign.models.arith import apply_overflow, round_real
from codesign.models.golden import golden
from codesign.models.loader import load
from codesign.models.qtype import Kind, parse_overflow, parse_qtype, parse_rounding

DOC = Path(__file__).resolve().parent.parent / "docs" / "description-format.md"
TEXT = DOC.read_text()
EXAMPLE_MARK = "<!-- example -->"
EXAMPLES = re.findall(
    r"^" + re.escape(EXAMPLE_MARK) + r"[ \t]*\n```yaml[ \t]*\n(.*?)^```[ \t]*$", TEXT, re.M | re.S
)
#: Ops the full example must show (the document promises them).
EXAMPLE_OPS = {"conv2d", "relu", "requant", "maxpool2d", "flatten", "dense", "batchnorm"}


def _inputs(net, n: int, seed: int) -> np.ndarray:
    t = net.input_tensor
    rng = np.random.default_rng(seed)
    if t.qtype.kind is Kind.BIPOLAR:
        return rng.choice(np.array([-1, 1], dtype=np.int64), size=(n, *t.shape))
    return rng.integers(t.lo, t.hi, size=(n, *t.shape), endpoint=True, dtype=np.int64)


def _table(marker: str) -> list[list[str]]:
    """Rows (header first, separator dropped) of the markdown table after ``marker``."""
    lines = TEXT.split(f"<!-- {marker} -->\n", 1)[1].splitlines()
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if not all(set(c) <= {"-", ":"} for c in cells):
            rows.append(cells)
    assert len(rows) > 1, f"no table after <!-- {marker} -->"
    return rows


def test_the_document_has_examples():
    assert EXAMPLES, f"no ```yaml block preceded by {EXAMPLE_MARK} in {DOC}"


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_loads_and_runs(index, tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(EXAMPLES[index])
    net = load(path)
    assert not list(tmp_path.glob("*.npz")), "an example must be self-contained"
    n = 32
    y = golden(net, _inputs(net, n, seed=index))
    out = net.output_tensor
    assert y.shape == (n, *out.shape)
    assert y.dtype == np.int64
    assert out.lo <= int(y.min()) and int(y.max()) <= out.hi


def test_examples_show_the_promised_ops():
    ops = {layer["op"] for block in EXAMPLES for layer in yaml.safe_load(block)["layers"]}
    assert EXAMPLE_OPS <= ops, f"missing from the examples: {sorted(EXAMPLE_OPS - ops)}"
    assert ops & {"sign", "quant"}, "the examples must fold a batchnorm into sign or quant"


def test_the_documents_claims_about_the_full_example(tmp_path):
    """The prose after the full example and the BatchNorm worked example quote these."""
    path = tmp_path / "example.yaml"
    path.write_text(EXAMPLES[0])
    net = load(path)
    assert [layer.name for layer in net.layers] == [
        "image", "conv", "relu", "act", "pool", "flat", "fc1", "act1", "fc2", "out"
    ]  # fmt: skip
    assert net.folded == {"bn1": "act1", "bn2": "out"}
    assert net["act1"].thresholds[0].tolist() == [12, 16, 20]
    assert net["act1"].out_bias == 0
    assert (net.tensors["conv"].lo, net.tensors["conv"].hi) == (-60, 64)
    assert str(net.tensors["relu"].qtype) == "uint7"
    assert net.output_tensor.shape == (3,) and str(net.output_tensor.qtype) == "bipolar"


def test_every_op_and_field_is_documented():
    sections = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^### `(\w+)`\n(.*?)(?=^##)", TEXT + "\n##", re.M | re.S)
    }
    for op, fields in loader._FIELDS.items():
        assert op in sections, f"no '### `{op}`' section"
        for field in fields:
            assert f"`{field}`" in sections[op], f"op {op!r}: field {field!r} undocumented"
    top = TEXT.split("## Top-level fields", 1)[1].split("\n## ", 1)[0]
    for field in loader._TOP_FIELDS:
        assert f"`{field}`" in top, f"top-level field {field!r} undocumented"


def test_type_table():
    header, *rows = _table("type-table")
    assert header[:4] == ["name", "meaning", "min", "max"]
    for name, _, lo, hi, *_ in rows:
        q = parse_qtype(name)
        assert (q.min, q.max) == (int(lo), int(hi)), name


def test_rounding_table():
    header, *rows = _table("rounding-table")
    values = [float(v) for v in header[3:]]
    assert {parse_rounding(r[0]) for r in rows} == set(type(parse_rounding("floor")))
    for name, alias, _, *cells in rows:
        mode = parse_rounding(name)
        if alias != "—":
            assert parse_rounding(alias) is mode, (name, alias)
        got = [int(round_real(v, mode)) for v in values]
        assert got == [int(c) for c in cells], name


def test_overflow_table():
    header, *rows = _table("overflow-table")
    values = np.array([int(v) for v in header[2:]], dtype=np.int64)
    for type_name, mode_name, *cells in rows:
        qtype, mode = parse_qtype(type_name), parse_overflow(mode_name)
        if cells[0] == "error":
            with pytest.raises(ValueError):
                apply_overflow(values, qtype, mode)
        else:
            assert apply_overflow(values, qtype, mode).tolist() == [int(c) for c in cells]


PYTHON_BLOCKS = re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", TEXT, re.M | re.S)


def test_python_examples_run(monkeypatch):
    """The document's Python examples run from docs/, on the files they name
    (``examples/tiny.yaml`` and its ``.npz`` exist)."""
    assert PYTHON_BLOCKS, f"no ```python block in {DOC}"
    monkeypatch.chdir(DOC.parent)
    for block in PYTHON_BLOCKS:
        exec(compile(block, str(DOC), "exec"), {})
