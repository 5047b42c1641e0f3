"""The design-space explorer: evaluator speed against the per-design path, and its strategies.

In one run, on one core (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS`` and ``MKL_NUM_THREADS``
set to 1 before numpy is imported, and threadpoolctl's limit when it is installed):

1. **Evaluator speed.** :meth:`codesign.explore.evaluate.Evaluator.evaluate` on ``--points``
   random point ids of each zoo network's default space (every column: II, latency, the
   cost model's LUT/FF/DSP/BRAM/LUTRAM, Fmax, energy, throughput, feasibility): the first
   call (its memo tables built) and the best of ``--warm`` further calls on the same ids.
   The baseline, in the same run: the per-design path on ``--baseline`` points of the same
   ids (``Design.with_folding`` of the space's base design, then
   :func:`codesign.sim.cost.estimate`, :func:`codesign.sim.fmax.predict_fmax`,
   :func:`codesign.sim.energy.dataflow_energy` and ``ideal_ii``), and the ratio of the
   points per second. A network can take fewer points (``--cap NET=N``, default
   ``resnet_tiny=5000``: its join FIFO depths are computed per distinct folding, a few
   milliseconds each, see benchmarks/README.md).
2. **Strategies.** :func:`codesign.explore.explore` on each zoo network with objectives
   ``[throughput, lut, dsp]`` and the default device constraint, in a fresh temporary
   folder per run (the SQLite store and the timing are real): exhaustive where the space
   has at most ``--exhaustive-max`` points (and on ``--exhaustive-also`` networks whatever
   their size), NSGA-II (``--generations`` x ``--population``, one run per ``--seeds``)
   and FINN-style greedy. Per run: seconds, points evaluated, front size, and the
   hypervolume of the run's feasible points (:func:`codesign.explore.pareto.hypervolume`)
   between one ideal and nadir per network: each objective's minimum and maximum over the
   feasible points of all its runs, so the hypervolumes of one network compare.

The load average (``os.getloadavg``) is printed at the start and at the end.

Run from the project root::

    .venv/bin/python benchmarks/explore.py [--points 1000000] [--json out.json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NETWORKS = ("jet_tagger", "tfc_w2a2", "tfc_w1a1", "cnv_tiny", "resnet_tiny")
OBJECTIVES3 = ["throughput", "lut", "dsp"]
#: MAESTRO's published average speed of its hardware design-space exploration tool
#: (Kwon et al., MICRO 2019 / IEEE Micro 2020): a published figure, not measured here.
MAESTRO_DESIGNS_PER_S = 0.17e6


def _limit_threads():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None, "threadpoolctl not installed; OMP/OPENBLAS/MKL_NUM_THREADS=1 set before numpy"
    return threadpool_limits(1), "threadpoolctl limit 1 (and the *_NUM_THREADS variables)"


def evaluator_speed(net: str, n: int, warm: int, n_base: int, seed: int) -> dict:
    """Points/s of Evaluator.evaluate (first and best warm call) and of the per-design path."""
    from codesign.sim.cost import estimate
    from codesign.sim.energy import dataflow_energy
    from codesign.sim.fmax import predict_fmax

    from codesign.explore.evaluate import Evaluator
    from codesign.explore.space import load_space

    sp = load_space(net)
    ev = Evaluator(sp)
    ids = np.random.default_rng(seed).integers(0, sp.size, n, dtype=np.int64)
    t = time.perf_counter()
    ev.evaluate(ids)
    first = time.perf_counter() - t
    warms = []
    for _ in range(warm):
        t = time.perf_counter()
        ev.evaluate(ids)
        warms.append(time.perf_counter() - t)
    # the per-design path on the first n_base of the same ids
    base_ids = ids[:n_base]
    _, _, folding = ev.split(base_ids)
    pe, simd = ev.folding(ev.digits(folding))
    base = ev.design(sp.contexts[0])
    t = time.perf_counter()
    for k in range(len(base_ids)):
        d = base.with_folding(pe[k].tolist(), simd[k].tolist())
        estimate(d)
        predict_fmax(d)
        dataflow_energy(d)
        _ = d.ideal_ii
    per_design = time.perf_counter() - t
    best = min(warms) if warms else float("nan")
    return {
        "network": net,
        "space": sp.size,
        "points": n,
        "first_s": first,
        "warm_s": warms,
        "first_pts_s": n / first,
        "warm_pts_s": n / best,
        "baseline_points": len(base_ids),
        "baseline_s": per_design,
        "baseline_pts_s": len(base_ids) / per_design,
        "speedup_first": (n / first) / (len(base_ids) / per_design),
        "speedup_warm": (n / best) / (len(base_ids) / per_design),
        "vs_maestro_warm": (n / best) / MAESTRO_DESIGNS_PER_S,
    }


def run_strategy(
    net: str, strategy: str, seed: int, gens: int, pop: int
) -> tuple[dict, np.ndarray]:
    """One explore() run in a fresh folder: its figures and its feasible points' objectives."""
    from codesign.explore import explore
    from codesign.explore.pareto import minimization

    space = {
        "network": net,
        "objectives": OBJECTIVES3,
        "search": {
            "strategy": strategy,
            "generations": gens,
            "population": pop,
            "seed": seed,
            "max_points": 100_000_000,
        },
    }
    with tempfile.TemporaryDirectory(prefix="explore-bench-") as tmp:
        t = time.perf_counter()
        df = explore(space, out=tmp, strategy=strategy, progress=False)
        wall = time.perf_counter() - t
    ok = df["feasible"].to_numpy()
    f = minimization({c: df[c].to_numpy() for c in df.columns}, OBJECTIVES3)[ok]
    row = {
        "network": net,
        "strategy": strategy,
        "seed": seed if strategy == "nsga2" else None,
        "space": int(df.attrs["points"]),
        "seconds": wall,
        "explore_seconds": float(df.attrs["seconds"]),
        "evaluated": int(df.attrs["evaluated"]),
        "feasible": int(ok.sum()),
        "front": int(df.attrs["front"]),
    }
    return row, f


def strategies(args) -> list[dict]:
    from codesign.explore.pareto import hypervolume
    from codesign.explore.space import load_space

    rows = []
    for net in args.networks:
        size = load_space(net).size
        runs = []
        if size <= args.exhaustive_max or net in args.exhaustive_also:
            runs.append(("exhaustive", 0))
        runs += [("nsga2", s) for s in args.seeds]
        runs.append(("greedy", 0))
        results = []
        for strategy, seed in runs:
            row, f = run_strategy(net, strategy, seed, args.generations, args.population)
            results.append((row, f))
            print(
                f"  {net:12s} {strategy:10s} seed={row['seed']!s:4s} {row['seconds']:8.2f} s "
                f"evaluated={row['evaluated']:>9,d} front={row['front']}",
                flush=True,
            )
        every = np.concatenate([f for _, f in results if len(f)], axis=0)
        ideal, nadir = every.min(axis=0), every.max(axis=0)
        for row, f in results:
            row["hypervolume"] = hypervolume(f, ideal, nadir) if len(f) else 0.0
            row["ideal"], row["nadir"] = ideal.tolist(), nadir.tolist()
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--networks", nargs="+", default=list(NETWORKS))
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument(
        "--cap",
        action="append",
        default=None,
        metavar="NET=N",
        help="fewer evaluator points for a network (default resnet_tiny=5000)",
    )
    ap.add_argument("--warm", type=int, default=3, help="warm calls (the best is kept)")
    ap.add_argument("--baseline", type=int, default=200, help="points of the per-design path")
    ap.add_argument("--seed", type=int, default=0, help="of the random point ids")
    ap.add_argument("--exhaustive-max", type=int, default=2_000_000)
    ap.add_argument(
        "--exhaustive-also", nargs="*", default=["tfc_w1a1"], help="exhaustive whatever the size"
    )
    ap.add_argument("--generations", type=int, default=60)
    ap.add_argument("--population", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-strategies", action="store_true")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    caps = {"resnet_tiny": 5000}
    for c in args.cap or []:
        name, _, n = c.partition("=")
        caps[name] = int(n)

    limiter, threads = _limit_threads()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    print(f"# {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"# numpy {np.__version__}; {threads}")
    print(f"# load average at start: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}", flush=True)
    out: dict = {"threads": threads, "load_start": load0}

    if not args.skip_speed:
        print("\n## Evaluator.evaluate vs the per-design path (one core)")
        head = (
            f"{'network':12s} {'space':>10s} {'points':>9s} {'first s':>8s} {'warm s':>8s} "
            f"{'first pt/s':>11s} {'warm pt/s':>11s} {'base pt/s':>9s} "
            f"{'x first':>8s} {'x warm':>8s} {'/MAESTRO':>8s}"
        )
        print(head, flush=True)
        speed = []
        for net in args.networks:
            n = min(args.points, caps.get(net, args.points))
            r = evaluator_speed(net, n, args.warm, min(args.baseline, n), args.seed)
            speed.append(r)
            print(
                f"{net:12s} {r['space']:>10,d} {n:>9,d} {r['first_s']:8.2f} "
                f"{min(r['warm_s']):8.3f} {r['first_pts_s']:11.3g} {r['warm_pts_s']:11.3g} "
                f"{r['baseline_pts_s']:9.1f} {r['speedup_first']:8.0f} {r['speedup_warm']:8.0f} "
                f"{r['vs_maestro_warm']:8.1f}",
                flush=True,
            )
        out["speed"] = speed
        print(f"(MAESTRO's published average: {MAESTRO_DESIGNS_PER_S:.3g} designs/s)")

    if not args.skip_strategies:
        print(
            f"\n## Strategies, objectives {OBJECTIVES3}, NSGA-II {args.generations} x "
            f"{args.population}, seeds {args.seeds}",
            flush=True,
        )
        rows = strategies(args)
        print(
            f"\n{'network':12s} {'strategy':10s} {'seed':>4s} {'seconds':>8s} "
            f"{'evaluated':>10s} {'feasible':>10s} {'front':>6s} {'hypervol':>9s}"
        )
        for r in rows:
            seed = "" if r["seed"] is None else str(r["seed"])
            print(
                f"{r['network']:12s} {r['strategy']:10s} {seed:>4s} {r['seconds']:8.2f} "
                f"{r['evaluated']:>10,d} {r['feasible']:>10,d} {r['front']:>6d} "
                f"{r['hypervolume']:9.5f}"
            )
        out["strategies"] = rows

    load1 = os.getloadavg()
    total = time.perf_counter() - t0
    out.update(load_end=load1, total_s=total)
    print(f"\n# load average at end: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    print(f"# total {total:.1f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float) + "\n")
    del limiter


if __name__ == "__main__":
    main()
