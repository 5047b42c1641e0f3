"""Golden-model throughput against the bare float64 arithmetic of the same network.

For every zoo network (or those named on the command line) this measures, in one run:

- **golden**: ``codesign.models.golden.golden(net, x)`` on a batch of ``--batch`` random integer
inputs,
  i.e. the bit-exact model with its input check, exactness bookkeeping, requantization,
  thresholds and pooling;
- **baseline**: only the network's matrix products, in plain float64 numpy on arrays converted
  beforehand: ``x @ W.T`` for each dense/binary_dense layer, and for each conv2d/binary_conv2d
  a ``(N*OH*OW, C*KH*KW) @ (C*KH*KW, OC)`` product (per group), with no im2col, no
  conversion and no rounding.

Golden and baseline repetitions are interleaved and the median of ``--repeat`` timings
(``time.perf_counter``) is kept for each, so that a noisy shared machine slows both alike;
the ratio golden_time / baseline_time within one run is the figure that matters (target:
within 3x). The ratio of the fastest repetitions is printed too, as a check on noise.
Nothing here changes the BLAS configuration (``OPENBLAS_*`` is left as the environment
sets it); the header records it.

Each network is measured in a fresh interpreter (``--same-process`` to measure them all in
this one): a network measured after a larger one inherits the allocator state it left
behind, which changes the figures of small networks severalfold. ``--layers`` adds, per
network, the median time of every golden step next to its baseline product, to see where
the time goes.

Run from the project root::

    .venv/bin/python benchmarks/golden.py [NETWORK ...] [--batch 1024] [--repeat 20]
        [--layers] [--json out.json] [--same-process]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codesign.models.golden import check_input, golden
from codesign.models.ir import Network
from codesign.models.layers import BinaryConv2d, BinaryDense, Conv2d, Dense
from codesign.models.loader import load, zoo_names
from codesign.models.qtype import Kind

#: golden_time / baseline_time at or below this meets the target.
TARGET_RATIO = 3.0


_POOL_KEYS = ("internal_api", "version", "num_threads", "architecture", "threading_layer")


def blas_info() -> dict:
    """What BLAS numpy uses: threadpoolctl's runtime view if installed, else the build
    configuration from ``numpy.show_config``; plus the OpenBLAS/OpenMP environment."""
    info: dict = {"numpy": np.__version__}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        try:
            blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        except (TypeError, KeyError):  # numpy without mode="dicts"
            blas = {}
        info["source"] = "numpy.show_config"
        info["blas"] = {
            k: blas[k] for k in ("name", "version", "openblas configuration") if k in blas
        }
    else:
        info["source"] = "threadpoolctl"
        info["blas"] = [
            {k: pool.get(k) for k in _POOL_KEYS}
            for pool in threadpool_info()
            if pool.get("user_api") == "blas"
        ]
    info["env"] = {
        k: os.environ[k]
        for k in sorted(os.environ)
        if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "GOTO_"))
    }
    return info


def make_inputs(net: Network, n: int, seed: int) -> np.ndarray:
    """``n`` inputs drawn uniformly over the network's input type."""
    t = net.input_tensor
    rng = np.random.default_rng(seed)
    if t.qtype.kind is Kind.BIPOLAR:
        return rng.choice(np.array([-1, 1], dtype=np.int64), size=(n, *t.shape))
    return rng.integers(t.lo, t.hi, size=(n, *t.shape), endpoint=True, dtype=np.int64)


def baseline_operands(net: Network, n: int, seed: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Per product layer, float64 operands ``(a, b)`` of the product ``a @ b`` it computes
    for a batch of ``n`` (values drawn from the layer input's exact range)."""
    rng = np.random.default_rng(seed)
    ops = []
    for layer in net.layers:
        if not isinstance(layer, Dense | BinaryDense | Conv2d | BinaryConv2d):
            continue
        (x,) = net.inputs_of(layer)
        w = layer.weight.astype(np.float64)
        if isinstance(layer, Dense | BinaryDense):
            a = rng.integers(x.lo, x.hi, size=(n, w.shape[1]), endpoint=True).astype(np.float64)
            ops.append((layer.name, a, w.T))  # x @ W.T, W.T a view as in the golden kernel
            continue
        oc, cg, kh, kw = w.shape
        _, oh, ow = net.tensors[layer.name].shape
        g = getattr(layer, "groups", 1)
        k = cg * kh * kw
        a = rng.integers(x.lo, x.hi, size=(g, n * oh * ow, k), endpoint=True).astype(np.float64)
        b = np.ascontiguousarray(w.reshape(g, oc // g, k).transpose(0, 2, 1))
        ops.append((layer.name, a[0], b[0]) if g == 1 else (layer.name, a, b))
    return ops


def run_baseline(ops) -> None:
    for _, a, b in ops:
        np.matmul(a, b)


def layer_times(net: Network, x: np.ndarray, ops, repeat: int) -> list[dict]:
    """Median time of each step of a golden run (the input check, then every layer, freeing
    values as ``golden`` does), and of each layer's baseline product, over ``repeat`` runs.

    A diagnostic copy of ``golden``'s loop: its total tracks ``golden_s`` closely."""
    steps: dict[str, list[float]] = {"(check_input)": []}
    products: dict[str, list[float]] = {lname: [] for lname, _, _ in ops}
    for _ in range(repeat):
        t0 = time.perf_counter()
        values = {net.input: check_input(net, x)}
        steps["(check_input)"].append(time.perf_counter() - t0)
        readers = net.consumers()
        for layer in net.layers:
            if layer.name == net.input:
                continue
            t0 = time.perf_counter()
            values[layer.name] = layer.evaluate(
                [values[s] for s in layer.inputs], net.inputs_of(layer)
            )
            steps.setdefault(layer.name, []).append(time.perf_counter() - t0)
            for s in layer.inputs:
                readers[s] -= 1
                if readers[s] == 0:
                    del values[s]
        for lname, a, b in ops:
            t0 = time.perf_counter()
            np.matmul(a, b)
            products[lname].append(time.perf_counter() - t0)
    ops_of = {layer.name: layer.op for layer in net.layers}
    return [
        {
            "layer": lname,
            "op": ops_of.get(lname, ""),
            "golden_s": statistics.median(times),
            "baseline_s": statistics.median(products[lname]) if lname in products else None,
        }
        for lname, times in steps.items()
    ]


def bench_network(name: str, batch: int, repeat: int, seed: int, layers: bool = False) -> dict:
    net = load(name)
    x = make_inputs(net, batch, seed)
    ops = baseline_operands(net, batch, seed + 1)
    expected = (batch, *net.output_tensor.shape)
    out = golden(net, x)  # warm-up, and a check that the run is real
    if out.shape != expected:
        raise AssertionError(f"{name}: golden output shape {out.shape}, expected {expected}")
    run_baseline(ops)
    g_times, b_times = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        golden(net, x)
        t1 = time.perf_counter()
        run_baseline(ops)
        t2 = time.perf_counter()
        g_times.append(t1 - t0)
        b_times.append(t2 - t1)
    g, b = statistics.median(g_times), statistics.median(b_times)
    result = {
        "network": name,
        "batch": batch,
        "repeat": repeat,
        "products": [
            {"layer": lname, "a": list(a.shape), "b": list(b.shape)} for lname, a, b in ops
        ],
        "golden_s": g,
        "baseline_s": b,
        "golden_inf_per_s": batch / g,
        "baseline_inf_per_s": batch / b,
        "ratio": g / b,
        "within_target": g / b <= TARGET_RATIO,
        "golden_min_s": min(g_times),
        "baseline_min_s": min(b_times),
        "ratio_of_minima": min(g_times) / min(b_times),
    }
    if layers:
        result["layers"] = layer_times(net, x, ops, repeat)
    return result


def markdown(results: list[dict]) -> str:
    lines = [
        "| network | golden ms/batch | golden inf/s | baseline ms/batch | baseline inf/s "
        f"| ratio | within {TARGET_RATIO:g}x | ratio of minima |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['network']} | {r['golden_s'] * 1e3:.2f} | {r['golden_inf_per_s']:,.0f} "
            f"| {r['baseline_s'] * 1e3:.3f} | {r['baseline_inf_per_s']:,.0f} "
            f"| {r['ratio']:.1f} | {'yes' if r['within_target'] else 'NO'} "
            f"| {r['ratio_of_minima']:.1f} |"
        )
    return "\n".join(lines)


def markdown_layers(result: dict) -> str:
    lines = [
        f"{result['network']}: median ms per step",
        "",
        "| step | op | golden ms | baseline product ms |",
        "| --- | --- | ---: | ---: |",
    ]
    for row in result["layers"]:
        base = "" if row["baseline_s"] is None else f"{row['baseline_s'] * 1e3:.3f}"
        lines.append(f"| {row['layer']} | {row['op']} | {row['golden_s'] * 1e3:.3f} | {base} |")
    total_g = sum(row["golden_s"] for row in result["layers"])
    total_b = sum(row["baseline_s"] or 0.0 for row in result["layers"])
    lines.append(f"| total | | {total_g * 1e3:.3f} | {total_b * 1e3:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("networks", nargs="*", help="zoo networks (default: all)")
    parser.add_argument("--batch", type=int, default=1024, help="inputs per inference batch")
    parser.add_argument("--repeat", type=int, default=20, help="timed repetitions (median)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="measure every network in this process (by default each runs in a fresh one)",
    )
    parser.add_argument(
        "--layers",
        action="store_true",
        help="also time every layer of the golden run (where the time goes)",
    )
    parser.add_argument("--child", metavar="NAME", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeat < 1:
        parser.error("--batch and --repeat must be positive")
    if args.child:
        result = bench_network(args.child, args.batch, args.repeat, args.seed, args.layers)
        print(json.dumps(result))
        return 0
    names = args.networks or zoo_names()
    unknown = [n for n in names if n not in zoo_names()]
    if unknown:
        parser.error(f"not zoo networks: {', '.join(unknown)} (zoo: {', '.join(zoo_names())})")

    header = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "git": _git_state(),
        "blas": blas_info(),
        "loadavg_start": _loadavg(),
        "batch": args.batch,
        "repeat": args.repeat,
        "isolation": "same process" if args.same_process else "one fresh process per network",
    }
    print(f"# golden model vs float64 matmul baseline ({header['date']})")
    print()
    print(f"- python {header['python']}, numpy {header['blas']['numpy']}, {header['machine']}")
    print(f"- code: {header['git']}")
    print(f"- cpu: {header['processor']}, {header['cpus']} cpus ({header['cpus_usable']} usable)")
    print(f"- BLAS ({header['blas']['source']}): {json.dumps(header['blas']['blas'])}")
    print(f"- BLAS env: {json.dumps(header['blas']['env'])}")
    print(
        f"- batch {args.batch}, median of {args.repeat} interleaved repetitions, "
        f"{header['isolation']}"
    )
    print(f"- load average (1, 5, 15 min) at start: {header['loadavg_start']}")
    print()
    results = []
    for name in names:
        if args.same_process:
            results.append(bench_network(name, args.batch, args.repeat, args.seed, args.layers))
        else:
            results.append(_bench_in_child(name, args))
    header["loadavg_end"] = _loadavg()
    print(markdown(results))
    print()
    print(f"Load average at end: {header['loadavg_end']}")
    for r in results:
        if "layers" in r:
            print()
            print(markdown_layers(r))
    missed = [r["network"] for r in results if not r["within_target"]]
    if missed:
        print()
        print(f"Missed the {TARGET_RATIO:g}x target: {', '.join(missed)}")
    if args.json:
        Path(args.json).write_text(json.dumps({**header, "results": results}, indent=2) + "\n")
    return 0


def _bench_in_child(name: str, args) -> dict:
    """``bench_network`` in a fresh interpreter, so that no network's figures depend on
    what an earlier one left behind (the allocator's thresholds, caches, BLAS threads)."""
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        name,
        f"--batch={args.batch}",
        f"--repeat={args.repeat}",
        f"--seed={args.seed}",
        *(["--layers"] if args.layers else []),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: benchmark child failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _git_state() -> str:
    """The commit measured, and whether models/ had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "models"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown (no git)"
    if not head:
        return "unknown (not a git checkout)"
    return f"commit {head}" + (" with uncommitted changes in models/" if dirty else "")


def _loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not available on this platform
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
