"""Fmax, resources, II and latency of every zoo network at its default configuration, on
ECP5 (LFE5U-85F, nextpnr, seed 1) at speed grades 6 and 8: the table in benchmarks/README.md.

    .venv/bin/python benchmarks/fmax.py [NETWORK ...] [--pipeline auto|off] [--json FILE]

Each network is synthesized once (Yosys, hierarchical, the ECP5 Verilog with MULT18X18D
instances) and placed and routed once per speed grade; results come from, and go to,
``codesign synth``'s cache (a rerun with unchanged sources is immediate). Latency and II
are the simulator's (equal to the RTL's in cocotb: tests/hdl/test_zoo_rtl.py), converted to
ns and frames/s at the achieved Fmax of speed 6.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from codesign.models.hwconfig import HardwareConfig
from codesign.models.loader import load, zoo_names
from codesign.sim.dataflow import simulate

from codesign.flows import design
from codesign.synth import synthesize


def measure(name: str, pipeline: str) -> dict:
    d = design(load(name), HardwareConfig(pipeline=pipeline))
    start = time.perf_counter()
    r = synthesize(d, "ecp5", speed=(6, 8))
    p = simulate(d, frames=8)
    by_speed = {t["speed"]: t for t in r.get("timing", [])}
    row = {
        "network": name,
        "pipeline": pipeline,
        "clock_mhz": d.config.clock_mhz,
        "ii": p.ii,
        "latency": p.latency,
        **{c: r[c] for c in ("lut", "ff", "dsp", "bram", "lutram", "carry")},
        "seconds": round(time.perf_counter() - start, 1),
    }
    for s in (6, 8):
        t = by_speed.get(s, {})
        row[f"fmax_{s}"] = t.get("fmax_mhz")
        cp = t.get("critical_path") or {}
        row[f"critical_{s}"] = f"{cp['from']} → {cp['to']}" if cp else None
    f6 = row["fmax_6"]
    if f6:
        row["latency_ns"] = round(p.latency * 1000 / f6, 1)
        row["frames_per_s"] = round(f6 * 1e6 / p.ii)
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("networks", nargs="*", default=None)
    ap.add_argument("--pipeline", default="auto", choices=("auto", "off"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rows = []
    for name in args.networks or zoo_names():
        row = measure(name, args.pipeline)
        rows.append(row)
        print(json.dumps(row), flush=True)
    head = (
        "| network | Fmax s6 (MHz) | Fmax s8 (MHz) | II (cycles) | latency (cycles) | "
        "latency (ns @ s6) | frames/s @ s6 | LUT | FF | DSP | BRAM | critical path (s6) |"
    )
    print(head)
    print("|" + " --- |" * 12)
    for r in rows:
        print(
            f"| {r['network']} | {r['fmax_6']} | {r['fmax_8']} | {r['ii']:g} | {r['latency']} | "
            f"{r.get('latency_ns')} | {r.get('frames_per_s')} | {r['lut']} | {r['ff']} | "
            f"{r['dsp']} | {r['bram']} | {r['critical_6']} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
