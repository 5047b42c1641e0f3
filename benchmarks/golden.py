"""Golden-model throughput against the bare float64 arithmetic of the same network.

For every zoo network (or those named on the command line) this measures, in one run:

- **golden**: ``models.golden.golden(net, x)`` on a batch of ``--batch`` random integer inputs,
  i.e. the bit-exact model with its input check, exactness bookkeeping, requantization,
  thresholds and pooling;
- **baseline**: only the network's matrix products, in plain float64 numpy on arrays converted
  beforehand: ``x @ W.T`` for each dense/binary_dense layer, and for each conv2d/binary_conv2d
  a ``(N*OH*OW, C*KH*KW) @ (C*KH*KW, OC)`` product (per group), with no im2col, no
  conversion and no rounding.

Golden and baseline repetitions are interleaved and the median of ``--repeat`` timings
(``time.perf_counter``) is kept for each, so that a noisy shared machine slows both alike;
the ratio golden_time / baseline_time within one run is the figure that matters (target:
within 3x).

Run from the project root::

    .venv/bin/python benchmarks/golden.py [--batch 1024] [--repeat 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.golden import golden
from models.ir import Network
from models.layers import BinaryConv2d, BinaryDense, Conv2d, Dense
from models.loader import load, zoo_names
from models.qtype import Kind

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


def bench_network(name: str, batch: int, repeat: int, seed: int) -> dict:
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
    return {
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
    }


def markdown(results: list[dict]) -> str:
    lines = [
        "| network | golden ms/batch | golden inf/s | baseline ms/batch | baseline inf/s "
        f"| ratio | within {TARGET_RATIO:g}x |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['network']} | {r['golden_s'] * 1e3:.2f} | {r['golden_inf_per_s']:,.0f} "
            f"| {r['baseline_s'] * 1e3:.3f} | {r['baseline_inf_per_s']:,.0f} "
            f"| {r['ratio']:.1f} | {'yes' if r['within_target'] else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("networks", nargs="*", help="zoo networks (default: all)")
    parser.add_argument("--batch", type=int, default=1024, help="inputs per inference batch")
    parser.add_argument("--repeat", type=int, default=20, help="timed repetitions (median)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeat < 1:
        parser.error("--batch and --repeat must be positive")
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
        "blas": blas_info(),
        "batch": args.batch,
        "repeat": args.repeat,
    }
    print(f"# golden model vs float64 matmul baseline ({header['date']})")
    print()
    print(f"- python {header['python']}, numpy {header['blas']['numpy']}, {header['machine']}")
    print(f"- cpu: {header['processor']}, {header['cpus']} cpus ({header['cpus_usable']} usable)")
    print(f"- BLAS ({header['blas']['source']}): {json.dumps(header['blas']['blas'])}")
    print(f"- BLAS env: {json.dumps(header['blas']['env'])}")
    print(f"- batch {args.batch}, median of {args.repeat} interleaved repetitions")
    print()
    results = []
    for name in names:
        results.append(bench_network(name, args.batch, args.repeat, args.seed))
    print(markdown(results))
    missed = [r["network"] for r in results if not r["within_target"]]
    if missed:
        print()
        print(f"Missed the {TARGET_RATIO:g}x target: {', '.join(missed)}")
    if args.json:
        Path(args.json).write_text(json.dumps({**header, "results": results}, indent=2) + "\n")
    return 0


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
