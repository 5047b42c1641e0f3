"""docs/pim.md stays true: its Python examples run, and its cycle tables are the programs'."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from codesign.models.pim.fp import fp_program
from codesign.models.pim.integer import int_program

DOC = Path(__file__).resolve().parent.parent / "docs" / "pim.md"


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _rows(heading_start: str, first_cell: str) -> list[list[str]]:
    """The cells of the markdown table under the first heading starting ``heading_start``,
    rows whose first cell is ``first_cell`` or any when it is empty."""
    text = _text()
    at = text.index(heading_start)
    rows = []
    for line in text[at:].splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not first_cell or cells[0] == first_cell:
                rows.append(cells)
    return rows


@pytest.mark.parametrize("index", range(2))
def test_python_examples_run(index, monkeypatch, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", _text(), re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[index], f"docs/pim.md example {index}", "exec"), {})


def test_integer_cycle_table_is_the_programs():
    rows = _rows("### Integer programs", "")
    table = {r[0].split()[0]: r[1:] for r in rows[1:]}
    assert set(table) == {"add", "sub", "mul", "lt", "relu"}
    for op, cells in table.items():
        for bits, cell in zip((4, 8, 16), cells, strict=True):
            sot, nor = (int(v) for v in cell.split(" / "))
            assert int_program(op, bits, "sot-mram", signed=True).compute_cycles == sot, op
            assert int_program(op, bits, "nor", signed=True).compute_cycles == nor, op


def test_floating_point_cycle_table_is_the_programs():
    rows = _rows("### Floating point", "")[1:]
    assert len(rows) == 4
    for op, fmt, sot, nor, sot_ftz, nor_ftz, used in rows:
        want = [
            fp_program(op, fmt, "sot-mram").compute_cycles,
            fp_program(op, fmt, "nor").compute_cycles,
            fp_program(op, fmt, "sot-mram", ftz=True).compute_cycles,
            fp_program(op, fmt, "nor", ftz=True).compute_cycles,
        ]
        got = [int(v.replace(",", "")) for v in (sot, nor, sot_ftz, nor_ftz)]
        assert got == want, (op, fmt)
        rows_used = [fp_program(op, fmt, t).rows_used for t in ("sot-mram", "nor")]
        assert [int(v) for v in used.split(" / ")] == rows_used, (op, fmt)
