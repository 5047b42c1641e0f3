"""TULIP mapper and MST reuse-tree construction on a CNV-sized binary layer.

The layer: 256 output channels of fan-in 2304 (a 3×3 convolution over 256 channels, as the
last convolutions of FINN's CNV), random weight bits and thresholds (seeded). In one run,
each repetition interleaved with the others:

- **map_layer (P PEs)**: ``codesign.models.binary.tulip.map_layer`` onto 16 and 64 PEs of 4 cells
  (the full mapping: graph, list schedule of every round, registers, local memories), and
  onto 1 PE (the longest schedule: every neuron on one PE);
- **hamming**: ``codesign.models.binary.mst.hamming_matrix`` (the 256×256 distances);
- **plain_mst**: ``codesign.models.binary.mst.plain_mst`` from the weights (distances included);
- **reuse_tree (depth ≤ D)**: ``codesign.models.binary.mst.reuse_tree`` with a depth bound.

Target: each under 1 s. Reported: median and minimum of ``--repeat`` runs (``time.perf_counter``).

Run from the project root::

    .venv/bin/python benchmarks/binary.py [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codesign.models.binary import mst, tulip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    rng = np.random.default_rng(2304)
    w = rng.integers(0, 2, (256, 2304))
    t = rng.integers(0, 2305, 256)
    cases = {
        "map_layer (16 PEs)": lambda: tulip.map_layer("l", w, t, tulip.TulipArray(pes=16)),
        "map_layer (64 PEs)": lambda: tulip.map_layer("l", w, t, tulip.TulipArray(pes=64)),
        "map_layer (1 PE)": lambda: tulip.map_layer("l", w, t, tulip.TulipArray(pes=1)),
        "hamming": lambda: mst.hamming_matrix(w),
        "plain_mst": lambda: mst.plain_mst(w),
        "reuse_tree (depth <= 8)": lambda: mst.reuse_tree(w, max_depth=8),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    results = {}
    for _ in range(args.repeat):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    print(f"# python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    print(f"# 256 x 2304 binary layer, {args.repeat} repetitions")
    rows = []
    for name, ts in times.items():
        r = results[name]
        if isinstance(r, tulip.LayerSchedule):
            what = f"{r.steps} cycles (bound {r.lower_bound}), {r.registers} regs/bank"
        elif isinstance(r, mst.ReuseTree):
            what = f"ops {r.ops} of {r.direct_ops}, depth {r.max_depth}"
        else:
            what = f"shape {tuple(r.shape)}"
        rows.append({"case": name, "median_s": statistics.median(ts), "min_s": min(ts)})
        print(f"{name:26s} median {statistics.median(ts):7.3f} s  min {min(ts):7.3f} s  {what}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
