"""Simulator speed against RTL simulation, and analytic-mode design points per second.

For ``tfc_w1a1`` and ``cnv_tiny`` (default designs) this measures, in one run:

- **sim**: :func:`codesign.sim.dataflow.simulate` of ``--frames`` frames (input always valid), as a
  user calls it (periodic extension on): simulated cycles per second of wall time;
- **sim, beat by beat**: the same with ``extend=False`` on ``--beat-frames`` frames: the
  event engine's own speed, every beat of every frame an event;
- **cocotb + Verilator**: ``codesign.hdl.verify.run_cocotb`` on ``--rtl-frames`` frames (phase 1
  with random back-pressure and phase 2 free-running; the build is cached and not timed):
  the bench's simulated cycles per second of its run time.

The figure that matters is the ratio of cycles per second (sim / cocotb), within one run.
Then **analytic**: :func:`codesign.sim.dataflow.analytic` over ``--points`` random foldings of each
network: design points per second (the draw of the foldings not timed).

Run from the project root::

    .venv/bin/python benchmarks/sim.py [--frames 10000] [--beat-frames 20]
        [--rtl-frames tfc_w1a1=2000,cnv_tiny=20] [--points 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codesign.hdl.verify import verify
from codesign.sim.dataflow import analytic, random_foldings, simulate

import codesign


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--beat-frames", type=int, default=20)
    ap.add_argument("--rtl-frames", default="tfc_w1a1=2000,cnv_tiny=20")
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rtl_frames = {k: int(v) for k, v in (p.split("=") for p in args.rtl_frames.split(","))}
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}, "
        f"Python {platform.python_version()}, {platform.machine()}"
    )
    doc: dict = {"commit": commit, "networks": {}}
    for name in ("tfc_w1a1", "cnv_tiny"):
        d = codesign.design(codesign.load(name))
        p, t_sim = _timed(lambda d=d: simulate(d, frames=args.frames))
        q, t_beat = _timed(lambda d=d: simulate(d, frames=args.beat_frames, extend=False))
        with tempfile.TemporaryDirectory() as tmp:
            codesign.generate(d, tmp)
            n = rtl_frames[name]
            verify(d, tmp, vectors=2, sim="verilator")  # build (cached), not timed
            r = verify(d, tmp, vectors=n, sim="verilator", perf_frames=n)
        rtl_rate = r["cycles"] / r["run_seconds"]
        row = {
            "frames": args.frames,
            "sim_cycles": p.cycles,
            "sim_seconds": round(t_sim, 3),
            "sim_cycles_per_s": p.cycles / t_sim,
            "frames_simulated_beat_by_beat": p.frames_simulated,
            "beat_frames": args.beat_frames,
            "beat_cycles_per_s": q.cycles / t_beat,
            "rtl_frames": 2 * n,
            "rtl_cycles": r["cycles"],
            "rtl_seconds": r["run_seconds"],
            "rtl_cycles_per_s": rtl_rate,
            "ratio": (p.cycles / t_sim) / rtl_rate,
            "ratio_beat_by_beat": (q.cycles / t_beat) / rtl_rate,
        }
        doc["networks"][name] = row
        print(
            f"{name}: sim {args.frames} frames = {p.cycles} cycles in {t_sim:.3f} s "
            f"({row['sim_cycles_per_s']:.3g} cycles/s, {p.frames_simulated} frames beat by "
            f"beat); beat by beat {row['beat_cycles_per_s']:.3g} cycles/s; cocotb+Verilator "
            f"{2 * n} frames = {r['cycles']} cycles in {r['run_seconds']:.1f} s "
            f"({rtl_rate:.3g} cycles/s); ratio {row['ratio']:.0f}x "
            f"(beat by beat {row['ratio_beat_by_beat']:.1f}x)",
            flush=True,
        )
    for name in codesign.zoo_names():
        d = codesign.design(codesign.load(name))
        pe, simd = random_foldings(d, args.points, seed=0)
        best = min(_timed(lambda d=d, pe=pe, simd=simd: analytic(d, pe, simd))[1] for _ in range(3))
        doc.setdefault("analytic", {})[name] = args.points / best
        print(
            f"analytic {name}: {args.points} points in {best:.3f} s "
            f"({args.points / best:.3g} points/s, best of 3)"
        )
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
