"""Deformable-convolution offset variants on the gather engine's cycle model (CoDeNet's table).

For ``dcn_tiny`` (a full 3×3 deformable convolution, 8 → 16 channels on 32×32) and
``dcn_tiny_dw`` (depthwise, 8 channels), the deformable layer's cycles per frame under the
variants free, bounded (±``--bound`` pixels), square, rounded and square+bounded+rounded,
each on the same seeded random frames (:func:`codesign.sim.deform.network_timing`: the golden
trace's offsets, the variant applied by :func:`codesign.models.deform.variants.with_variant`),
with two parameter sets (:mod:`codesign.sim.deform.config`):

- **codenet**: :func:`~codesign.sim.deform.codenet_config` — a 5-row sliding line buffer
  (one single-port bank per row), a whole 3×3 window gathered at once, external bursts
  (30 cycles of latency per window, 16 bytes/cycle, 64-byte bursts) for corners outside the
  buffer, an 8 PE × 9 SIMD MAC array pipelined with the gather;
- **rtl**: :func:`~codesign.sim.deform.rtl_config` (and with 1 read port per bank) — the RTL
  gather unit alone (the frame on
  chip in 4 single-port banks, one tap per fetch group), its frame time the RTL's exact RUN
  phase (``models/deform/engine.run_cycles``).

Also measured: the model's time on one 32×32 frame of ``dcn_tiny`` (``positions_timing``,
median of ``--repeat``), and a whole ``network_timing`` call (trace included).

Run from the project root::

    .venv/bin/python benchmarks/deform_variants.py [--frames 8] [--seed 0] [--bound 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from codesign.models.deform import Variant, tap_positions
from codesign.models.deform.variants import deform_layers
from codesign.models.golden import random_inputs, trace
from codesign.models.loader import load
from codesign.sim.deform import (
    DeformShape,
    codenet_config,
    network_timing,
    positions_timing,
    rtl_config,
)

from codesign.deform import VARIANT_TABLE

NETS = (("full", "dcn_tiny"), ("depthwise", "dcn_tiny_dw"))


def model_speed(repeat: int) -> dict[str, float]:
    """Median seconds of ``positions_timing`` on one 32×32 frame of dcn_tiny per engine."""
    net = load("dcn_tiny")
    (layer,) = deform_layers(net)
    img, off = net.inputs_of(layer)
    offs = trace(net, random_inputs(net, 1, 0))[layer.inputs[1]]
    y, x, f = tap_positions(
        offs, layer.kernel, layer.stride, layer.padding, layer.dilation, layer.variant,
        layer.offset_frac(off),
    )  # fmt: skip
    shape = DeformShape.of_layer(layer, img, off)
    out = {}
    for name, cfg in (("codenet", codenet_config()), ("rtl", rtl_config())):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            positions_timing(y, x, f, shape, cfg)
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bound", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    variants = [Variant.parse(v, args.bound if "bounded" in v else None) for v in VARIANT_TABLE]
    engines = (
        ("codenet", codenet_config()),
        ("rtl (default: 2 banks x 2 ports)", rtl_config()),
        ("rtl, 1 port per bank", rtl_config(ports=1)),
    )
    for engine, cfg in engines:
        print(f"\nengine {engine}: {cfg.to_dict()}")
        print(
            "| variant | full: cycles/frame | full: speedup | full: bursts/frame "
            "| depthwise: cycles/frame | depthwise: speedup | depthwise: bursts/frame |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        cells: dict[str, list[str]] = {v.name: [] for v in variants}
        for _, net_name in NETS:
            net = load(net_name)
            base = None
            for v in variants:
                t0 = time.perf_counter()
                r = network_timing(net, cfg, frames=args.frames, seed=args.seed, variant=v)
                dt = time.perf_counter() - t0
                fc = float(r.frame_cycles.mean())
                base = fc if base is None else base
                bursts = sum(float(t.bursts.mean()) for t in r.layers)
                cells[v.name] += [f"{fc:,.0f}", f"{base / fc:.2f}×", f"{bursts:,.0f}"]
                print(f"  ({net_name} {v.name}: {dt * 1e3:.0f} ms)", file=sys.stderr)
        for name, row in cells.items():
            print(f"| {name} | " + " | ".join(row) + " |")
    speed = model_speed(args.repeat)
    print(
        "\nmodel time on one 32×32 frame of dcn_tiny (median of "
        f"{args.repeat}): " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in speed.items())
    )


if __name__ == "__main__":
    main()
