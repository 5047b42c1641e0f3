"""The explorer's validation tier on Dask: one sweep on a LocalCluster of 1 worker, then of 2.

The sweep: ``--tasks`` foldings of ``tfc_w1a1`` (PE and SIMD of ``fc0`` and ``fc1`` varied,
the other stages folded automatically around them), each measured by
:func:`codesign.explore.validate.measure` with the event simulator and Yosys synthesis for
ECP5 without place and route (``checks=("sim", "synth")``, ``pnr=False``): several seconds
of Yosys a task. Each run uses a synthesis cache of its own, empty at the start, so both
runs synthesize every design; the Yosys WebAssembly module is compiled (cached by YoWASP)
before the first run.

Printed per run: the wall time of :func:`~codesign.explore.validate.run_tasks` (the
LocalCluster's start and close included), the sum of the tasks' own seconds, and at the end
the speed-up (wall time on 1 worker / wall time on 2, the fastest run of each when
``--workers`` repeats them, such as ``1,2,1,2``). The runs' figures must agree.

Run from the project root::

    .venv/bin/python benchmarks/explore_workers.py [--tasks 8] [--workers 1,2] [--json out.json]

(``--workers 1,2,1,2`` interleaves repeated runs, for a machine whose load moves).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from codesign.explore.validate import run_tasks

#: Foldings of tfc_w1a1: fc0 (PE, SIMD), fc1 (PE, SIMD).
FOLDINGS = [
    ((1, 8), (1, 8)),
    ((2, 8), (2, 8)),
    ((1, 16), (2, 4)),
    ((2, 16), (1, 16)),
    ((4, 8), (2, 8)),
    ((1, 28), (4, 4)),
    ((2, 4), (1, 32)),
    ((4, 4), (4, 8)),
    ((1, 49), (2, 16)),
    ((2, 28), (1, 8)),
]


def tasks(n: int, cache_dir: str) -> list[dict]:
    out = []
    for i, ((pe0, simd0), (pe1, simd1)) in enumerate(FOLDINGS[:n]):
        config = {"stages": {"fc0": {"pe": pe0, "simd": simd0}, "fc1": {"pe": pe1, "simd": simd1}}}
        out.append(
            {
                "key": f"tfc_w1a1-{i}",
                "network": "tfc_w1a1",
                "config": config,
                "checks": ("sim", "synth"),
                "pnr": False,
                "cache_dir": cache_dir,
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=8, help=f"at most {len(FOLDINGS)}")
    ap.add_argument("--workers", default="1,2", help="worker counts, one run each")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    if not 1 <= args.tasks <= len(FOLDINGS):
        ap.error(f"--tasks must be in [1, {len(FOLDINGS)}], not {args.tasks}")
    counts = [int(w) for w in args.workers.split(",")]

    print(f"# {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"# {args.tasks} tasks: tfc_w1a1 foldings, checks sim + synth (ECP5, no pnr)")
    runs = []
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="explore-workers-") as cache:
            start = time.perf_counter()
            rows = run_tasks(tasks(args.tasks, cache), n_workers=n, progress=False)
            wall = time.perf_counter() - start
        errors = [r for r in rows if "error" in r]
        if errors:
            raise SystemExit(f"{len(errors)} task(s) failed, first: {errors[0]['error']}")
        busy = sum(r["seconds"] for r in rows)
        runs.append({"workers": n, "wall_s": round(wall, 2), "task_s": round(busy, 2)})
        runs[-1]["rows"] = rows
        print(
            f"{n} worker(s): {wall:7.1f} s wall, {busy:7.1f} s in tasks "
            f"(load average {os.getloadavg()[0]:.2f})"
        )
    figures = [{k: v for k, v in r.items() if k != "seconds"} for r in runs[0]["rows"]]
    for run in runs[1:]:
        if [{k: v for k, v in r.items() if k != "seconds"} for r in run["rows"]] != figures:
            raise SystemExit("the runs measured different figures")
    for i, r in enumerate(figures):
        secs = " ".join(f"{run['rows'][i]['seconds']:.1f}" for run in runs)
        print(
            f"  {r['key']}: II {r['sim_ii']:g}, latency {r['sim_latency']}, LUT {r['lut']}, "
            f"FF {r['ff']}, DSP {r['dsp']}, BRAM {r['bram']}; seconds per run: {secs}"
        )
    best = {n: min(r["wall_s"] for r in runs if r["workers"] == n) for n in counts}
    first = counts[0]
    for n in dict.fromkeys(counts[1:]):
        if n != first:
            print(
                f"speed-up {first} -> {n} workers (fastest run of each): "
                f"{best[first] / best[n]:.2f}x ({best[first]:.1f} s / {best[n]:.1f} s)"
            )
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1) + "\n")


if __name__ == "__main__":  # the LocalCluster's worker processes import this file
    main()
