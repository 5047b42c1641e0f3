"""Weight memories in $readmemh files (codesign.hdl.memfiles): the files hold exactly the words the
MVAU's ROM holds, the Verilog shrinks, the output is deterministic, and the manifest and the
FuseSoC core list the files. (The zoo RTL proofs in test_zoo_rtl.py run the files on
Verilator and Icarus, and test_cost.py's Yosys runs read them.)"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from codesign.hdl.dataflow.pipeline import build
from codesign.hdl.dataflow.top import to_verilog
from codesign.hdl.memfiles import MIN_BITS, externalize, memory_files
from codesign.models.loader import load

from codesign.flows import design, generate


@pytest.fixture(scope="module")
def tfc_w2a2(tmp_path_factory):
    d = design(load("tfc_w2a2"))
    out = tmp_path_factory.mktemp("tfc_w2a2")
    return d, out, generate(d, out)


def test_files_hold_the_rom_words_and_the_verilog_shrinks(tfc_w2a2):
    d, out, doc = tfc_w2a2
    top = doc["top"]
    inline = to_verilog(build(d), top)
    small, files = externalize(inline, top)
    # fc0-fc2's ROMs move out; fc3's (320 words of 4 bits) is under MIN_BITS and stays
    assert sorted(files) == [f"{top}_fc{i}_weights.hex" for i in range(3)]
    assert "reg [3:0] weights [319:0];\n  initial begin" in small
    assert len(small) < len(inline) - sum(len(t) for t in files.values())
    assert (out / f"{top}.v").read_text() == small
    for name, text in files.items():
        assert (out / name).read_text() == text
        assert doc["memory_files"][name] == hashlib.sha256(text.encode()).hexdigest()
    # the words are the inline initialisers' values, in address order
    block = re.search(
        r"reg \[(\d+):0\] weights \[(\d+):0\];\n  initial begin\n((?:    weights.*\n)+)  end",
        inline.split("stage_fc1.u0_mvau", 1)[1],
    )
    width, depth = int(block.group(1)) + 1, int(block.group(2)) + 1
    words = re.findall(r"weights\[(\d+)\] = \d+'([hbd])(\w+);", block.group(3))
    base = {"h": 16, "b": 2, "d": 10}
    values = [int(v, base[b]) for _, b, v in words]
    assert [int(a) for a, _, _ in words] == list(range(depth))
    hexed = [int(x, 16) for x in files[f"{top}_fc1_weights.hex"].split()]
    assert hexed == values and all(
        len(x) == (width + 3) // 4 for x in files[f"{top}_fc1_weights.hex"].split()
    )
    assert memory_files(out / f"{top}.v") == [out / n for n in sorted(files)]


def test_small_memories_stay_inline():
    v = (
        "module \\t.core.stage_a.u0_mvau (clk);\n"
        "  reg [3:0] weights [1:0];\n  initial begin\n"
        "    weights[0] = 4'h3;\n    weights[1] = 4'hc;\n  end\nendmodule\n"
    )
    assert externalize(v, "t") == (v, {})
    out, files = externalize(v, "t", min_bits=8)
    assert files == {"t_a_weights.hex": "3\nc\n"}
    assert 'initial $readmemh("t_a_weights.hex", weights);' in out and "4'h3" not in out


def test_manifest_core_and_bytes_are_deterministic(tfc_w2a2, tmp_path):
    d, out, doc = tfc_w2a2
    again = generate(d, tmp_path)
    assert again == doc
    for f in [f"{doc['top']}.v", f"{doc['top']}.core", *doc["memory_files"]]:
        assert (out / f).read_bytes() == (tmp_path / f).read_bytes(), f
    core = (out / f"{doc['top']}.core").read_text()
    for name in doc["memory_files"]:
        assert f"- {name}: {{copyto: {name}}}" in core
    assert "filesets: [rtl, memories]" in core
    assert json.loads((out / "manifest.json").read_text())["memory_files"] == doc["memory_files"]
    assert MIN_BITS == 4096
