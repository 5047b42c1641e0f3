"""Fit the LUT/FF coefficients of :mod:`codesign.sim.cost` to Yosys: ``python -m
codesign.cost_fit``.

A seeded sweep of small generated networks (dense layers of 2–12-bit inputs and 2–8-bit
weights, low-bit dense layers with per-channel thresholds, binary XNOR layers, convolutions
with pooling, one-channel images; random PE/SIMD, memory styles (mostly the default) and
FIFO depths; the default ``pipeline: auto``, and eight of them again with ``pipeline: off``;
random foldings of the dense zoo networks; dense and convolution networks pruned to N:M with
sparse MVAUs, :func:`sparse_specs`)
is generated for ECP5 (``generate(..., target="ecp5")``: MULT18X18D instances with their
registers) and synthesized hierarchically with :func:`codesign.hdl.tools.synthesize`, exactly
as ``codesign synth`` measures, and every unit's measured LUT and FF counts are regressed on
its features by weighted non-negative least squares (weights ``1/max(count, 20)``, so the
fit minimizes relative error; see :func:`fit`).
The four zoo networks in their default configurations are synthesized too and stored beside
the sweep (specs of kind ``zoo``, listed under ``holdout`` in the data file) but are held
out of the fit: tests/sim/test_cost.py compares the model with them as an independent
check. The sweep's parameters, the raw per-unit measurements and the coefficients go to
``sim/cost_data.json``.

``python -m codesign.cost_fit`` runs the sweep and the fit (about 20 minutes on two idle
cores from scratch, 40 with them shared; ``--jobs`` sets the parallel Yosys runs);
measurements already stored for an unchanged spec, the same tools and the same generator
sources (``rtl``, :func:`codesign.synth.hdl_source_hash`) are reused (the data file is
updated after every design, so a killed sweep resumes), and ``--refit`` refits from the
stored measurements without synthesizing (seconds). ``--add`` measures only the specs that
have no stored measurement and keeps the others whatever generator measured them: for new
specs of a new unit when the change leaves the stored designs' Verilog byte for byte as it
was (the sparse MVAU's batch was added so; each measurement records its generator hash).
This lives in ``codesign/`` because it drives ``hdl/``, which ``sim/`` may not import.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from codesign.models.compress.sparsity import (
    parse_sparsity,
    prune_nm,
    sparse_simd_choices,
    sparsity_problem,
)
from codesign.models.fileio import atomic_write
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
from codesign.models.loader import load
from codesign.models.pipelining import PipelineMode
from codesign.sim import cost

from .synth import config_doc, hdl_source_hash

__all__ = ["build", "fit", "main", "measure", "nnls", "sweep_specs"]

#: Version of the sweep: bump when the specs or the measuring change.
SWEEP = 8
#: The most multiply lanes (PE x SIMD) of a sweep design's layer
MAX_LANES = 512

#: Zoo networks whose default designs are measured and stored, but held out of the fit.
ZOO = ("tfc_w1a1", "cnv_tiny", "jet_tagger", "tfc_w2a2")


def zoo_specs() -> list[dict]:
    """The zoo networks with their current default configurations."""
    out = []
    for name in ZOO:
        d = Design(load(name))
        cfg = config_doc(d)["stages"]
        out.append({"kind": "zoo", "id": name, "config": cfg, "pipeline": d.config.pipeline.value})
    return out


def sweep_specs(seed: int = 0) -> list[dict]:
    """The sweep's network specifications (deterministic for ``seed``)."""
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(26):
        specs.append(
            {
                "kind": "dense",
                "id": f"dense{i}",
                "seed": int(rng.integers(1 << 30)),
                "in_bits": int(rng.choice([2, 3, 4, 6, 8, 12])),
                "in_signed": bool(rng.random() < 0.5),
                "w_bits": int(rng.choice([2, 3, 4, 6, 8])),
                "sizes": [
                    int(rng.choice([16, 24, 32, 48, 64, 96])),
                    int(rng.choice([8, 12, 16, 32])),
                    int(rng.choice([4, 8, 10])),
                ],
                "a_bits": int(rng.choice([2, 4, 6, 8])),
                "bias": bool(rng.random() < 0.7),
                "multiplier": str(rng.choice(["one", "const", "channel"])),
                "threshold": bool(rng.random() < 0.25),
            }
        )
    for i in range(8):
        specs.append(
            {
                "kind": "binary",
                "id": f"binary{i}",
                "seed": int(rng.integers(1 << 30)),
                "sizes": [
                    int(rng.choice([64, 128, 256])),
                    int(rng.choice([16, 32, 64])),
                    int(rng.choice([8, 10, 16])),
                ],
            }
        )
    for i in range(8):
        specs.append(
            {
                "kind": "conv",
                "id": f"conv{i}",
                "seed": int(rng.integers(1 << 30)),
                "in_bits": int(rng.choice([4, 8])),
                "w_bits": int(rng.choice([2, 4, 6])),
                "channels": int(rng.choice([1, 2, 4])),
                "size": int(rng.choice([8, 10, 12, 14])),
                "oc": [int(rng.choice([4, 8])), int(rng.choice([4, 8, 16]))],
                "padding": int(rng.choice([0, 1])),
            }
        )
    for s in specs:  # folding and memories
        s["fold_seed"] = int(rng.integers(1 << 30))
    # second batch (its own generator, so the first batch is unchanged): low-bit dense
    # networks with per-channel thresholds and wider first layers, and one-channel images
    rng = np.random.default_rng(seed + 1)
    for i in range(10):
        specs.append(
            {
                "kind": "dense",
                "id": f"lowbit{i}",
                "seed": int(rng.integers(1 << 30)),
                "in_bits": int(rng.choice([2, 3, 4, 8])),
                "in_signed": bool(rng.random() < 0.3),
                "w_bits": int(rng.choice([2, 3])),
                "sizes": [
                    int(rng.choice([64, 128, 256, 384])),
                    int(rng.choice([32, 48, 64])),
                    int(rng.choice([10, 16])),
                ],
                "a_bits": int(rng.choice([1, 2, 3])),
                "bias": bool(rng.random() < 0.3),
                "multiplier": "one",
                "threshold": True,
                "fold_seed": int(rng.integers(1 << 30)),
            }
        )
    for i in range(4):
        specs.append(
            {
                "kind": "conv",
                "id": f"mono{i}",
                "seed": int(rng.integers(1 << 30)),
                "in_bits": 8,
                "w_bits": int(rng.choice([2, 4, 6])),
                "channels": 1,
                "size": int(rng.choice([10, 12, 14])),
                "oc": [int(rng.choice([4, 8])), int(rng.choice([8, 16]))],
                "padding": 0,
                "fold_seed": int(rng.integers(1 << 30)),
            }
        )
    # third batch: input widths with odd divisors (SIMD 7, 14, 49, ...), binary and 8-bit
    # image inputs into 2-bit weights with per-channel thresholds
    rng = np.random.default_rng(seed + 2)
    for i in range(6):
        specs.append(
            {
                "kind": "binary",
                "id": f"binodd{i}",
                "seed": int(rng.integers(1 << 30)),
                "sizes": [
                    int(rng.choice([98, 112, 196, 392])),
                    int(rng.choice([32, 64])),
                    int(rng.choice([10, 16])),
                ],
                "fold_seed": int(rng.integers(1 << 30)),
            }
        )
    for i in range(6):
        specs.append(
            {
                "kind": "dense",
                "id": f"image{i}",
                "seed": int(rng.integers(1 << 30)),
                "in_bits": 8,
                "in_signed": False,
                "w_bits": 2,
                "sizes": [
                    int(rng.choice([98, 112, 196, 392])),
                    int(rng.choice([32, 64])),
                    int(rng.choice([10, 16])),
                ],
                "a_bits": 2,
                "bias": False,
                "multiplier": "one",
                "threshold": True,
                "fold_seed": int(rng.integers(1 << 30)),
            }
        )
    # fourth batch: designs of the first batches again with ``pipeline: off`` (one register
    # after the accumulator and one per activation; multipliers Yosys infers in fabric)
    by_id = {s["id"]: s for s in specs}
    for sid in ("dense0", "dense1", "dense2", "dense3", "binary0", "conv0", "conv1", "lowbit0"):
        specs.append({**by_id[sid], "id": f"{sid}_off", "pipeline": PipelineMode.OFF.value})
    # fifth batch (issue 16): random foldings of the dense zoo networks, the designs a
    # design-space sweep evaluates most (their default designs stay held out); validating
    # jet_tagger's front showed its small-PE MVAUs 20-25 % under the model without them
    rng = np.random.default_rng(seed + 3)
    for i, net in enumerate(["jet_tagger"] * 4 + ["tfc_w2a2"] * 2):
        specs.append(
            {
                "kind": "zoofold",
                "id": f"zoofold{i}",
                "net": net,
                "fold_seed": int(rng.integers(1 << 30)),
            }
        )
    specs += sparse_specs(seed)
    return specs


def sparse_specs(seed: int = 0) -> list[dict]:
    """The sixth batch (issue 19): dense and convolution networks pruned to N:M
    (:func:`~codesign.models.compress.sparsity.prune_nm`, every layer whose columns M
    divides), each stage that can be (M divides one of its SIMD choices) built as the sparse
    MVAU at a SIMD that M divides (:func:`build`)."""
    rng = np.random.default_rng(seed + 4)
    specs = []
    for i, pattern in enumerate(["2:4", "1:4", "2:8", "1:8", "4:8", "2:4", "2:8", "1:2"]):
        specs.append(
            {
                "kind": "dense",
                "id": f"sparse{i}",
                "seed": int(rng.integers(1 << 30)),
                "in_bits": int(rng.choice([2, 3, 4, 6, 8])),
                "in_signed": bool(rng.random() < 0.5),
                "w_bits": int(rng.choice([3, 4, 6, 8])),
                "sizes": [
                    int(rng.choice([32, 48, 64, 96])),
                    int(rng.choice([16, 32, 64])),
                    int(rng.choice([8, 16])),
                ],
                "a_bits": int(rng.choice([2, 4, 8])),
                "bias": bool(rng.random() < 0.7),
                "multiplier": str(rng.choice(["one", "const", "channel"])),
                "threshold": bool(rng.random() < 0.25),
                "sparsity": pattern,
                "fold_seed": int(rng.integers(1 << 30)),
            }
        )
    for i, pattern in enumerate(["2:4", "1:4", "2:8"]):
        specs.append(
            {
                "kind": "conv",
                "id": f"sparseconv{i}",
                "seed": int(rng.integers(1 << 30)),
                "in_bits": int(rng.choice([4, 8])),
                "w_bits": int(rng.choice([4, 6])),
                "channels": 4,
                "size": int(rng.choice([8, 10])),
                "oc": [8, int(rng.choice([8, 16]))],
                "padding": int(rng.choice([0, 1])),
                "sparsity": pattern,
                "fold_seed": int(rng.integers(1 << 30)),
            }
        )
    return specs


def _network(spec: dict, work: Path):
    from codesign.models.loader import load_description
    from codesign.models.zoo.generate import Builder

    r = np.random.default_rng(spec["seed"])
    if spec["kind"] == "binary":
        b = Builder(spec["id"], [spec["sizes"][0]], "binary", spec["seed"], "sweep", work)
        sizes = spec["sizes"]
        for i in range(len(sizes) - 1):
            n_in, n_out = sizes[i], sizes[i + 1]
            b.layer(f"fc{i}", "binary_dense", weight=b.bits01((n_out, n_in)), encoding="binary")
            if i < len(sizes) - 2:
                b.bn_params(f"bn{i}", n_in / 2, np.sqrt(n_in) / 2, n_out)
                b.layer(f"act{i}", "sign", encoding="binary")
    elif spec["kind"] == "dense":
        t = f"{'int' if spec['in_signed'] else 'uint'}{spec['in_bits']}"
        b = Builder(spec["id"], [spec["sizes"][0]], t, spec["seed"], "sweep", work)
        sizes = spec["sizes"]
        for i in range(len(sizes) - 1):
            n_in, n_out = sizes[i], sizes[i + 1]
            bias = b.ints((n_out,), 12, 200) if spec["bias"] else None
            fields = {"weight": b.ints((n_out, n_in), spec["w_bits"], 2.0)}
            if bias is not None:
                fields["bias"] = bias
            b.layer(f"fc{i}", "dense", **fields)
            if i == len(sizes) - 2:
                break
            b.layer(f"relu{i}", "relu")
            if spec["threshold"]:
                levels = (1 << spec["a_bits"]) - 1
                th = np.sort(r.integers(-50, 400, (n_out, levels)), axis=1)
                b.layer(f"act{i}", "multithreshold", thresholds=th)
                continue
            mult = {"one": 1, "const": int(r.choice([3, 5, 7, 11])), "channel": None}[
                spec["multiplier"]
            ]
            if mult is None:
                mult = r.integers(1, 16, n_out).astype(np.int64)
            b.layer(
                f"act{i}",
                "requant",
                multiplier=mult,
                shift=int(r.integers(2, 8)),
                type=f"uint{spec['a_bits']}",
            )
    else:
        c, s = spec["channels"], spec["size"]
        t = f"uint{spec['in_bits']}"
        b = Builder(spec["id"], [c, s, s], t, spec["seed"], "sweep", work)
        oc1, oc2 = spec["oc"]
        pad = spec["padding"]
        wb = spec["w_bits"]
        b.layer(
            "conv1",
            "conv2d",
            weight=b.ints((oc1, c, 3, 3), wb, 2),
            bias=b.ints((oc1,), 10, 50),
            padding=pad,
        )
        b.layer("relu1", "relu")
        b.layer("act1", "requant", multiplier=1, shift=4, type="uint8")
        b.layer("pool1", "maxpool2d", kernel=2)
        b.layer(
            "conv2", "conv2d", weight=b.ints((oc2, oc1, 3, 3), wb, 2), bias=b.ints((oc2,), 12, 100)
        )
        b.layer("relu2", "relu")
        b.layer("act2", "requant", multiplier=1, shift=5, type="uint4")
        b.layer("flatten", "flatten")
        side = (s + 2 * pad - 2) // 2 - 2
        b.layer("fc", "dense", weight=b.ints((10, oc2 * side * side), wb, 2))
    yml, _ = b.write(work)
    return load_description(yml)


def build(spec: dict, work: Path) -> Design:
    """The sweep design of ``spec`` (its network written under ``work``)."""
    pipeline = spec.get("pipeline", PipelineMode.AUTO.value)
    if spec["kind"] == "zoo":
        doc = {"stages": spec["config"], "pipeline": pipeline}
        return Design(load(spec["id"]), HardwareConfig.from_dict(doc))
    net = load(spec["net"]) if spec["kind"] == "zoofold" else _network(spec, work)
    pattern = None
    if "sparsity" in spec:
        pattern = parse_sparsity(spec["sparsity"])
        net = prune_nm(net, *pattern)
    plan = Design(net).stages
    r = np.random.default_rng(spec["fold_seed"])
    stages = {}
    for s in plan:
        sparse = None
        choices = s.simd_choices()
        # a stage whose weights the pruning made N:M and whose SIMD M can divide
        if pattern is not None and sparsity_problem(s, StageConfig(sparsity=pattern)) is None:
            sparse, choices = pattern, sparse_simd_choices(s, pattern)
        pe = int(r.choice(s.pe_choices()[:6]))
        simd = int(r.choice(choices[:8]))
        # at most MAX_LANES multiply lanes: image0's draw (PE 32 x SIMD 98, 3,136 8-bit
        # lanes in fabric) ran Yosys past ten minutes and never finished in a sweep
        while pe * simd > MAX_LANES:
            smaller = [c for c in choices if c < simd]
            simd = max(smaller) if smaller else simd
            if not smaller:
                pe = max(c for c in s.pe_choices() if c < pe)
        # mostly the default (AUTO: logic up to 128 words, block RAM beyond), and some
        # forced either way, as users may
        x = r.random()
        style = "block" if x < 0.1 else "distributed" if x < 0.2 else "auto"
        depth = [None, 1, 2, 3, 8, 32, 100][int(r.integers(7))]
        stages[s.name] = StageConfig(
            pe=pe, simd=simd, mem_style=style, fifo_depth=depth, sparsity=sparse
        )
    return Design(net, HardwareConfig(stages, pipeline=PipelineMode(pipeline)))


def measure(d: Design, work: Path) -> dict[str, dict]:
    """Yosys counts per unit key (``block/unit``, or ``block`` for FIFOs, converters and the
    top) of a design, from one hierarchical synthesis."""
    from codesign.hdl import tools

    from .flows import generate
    from .summary import network_hash
    from .synth import CLASSES, block_of

    doc = generate(d, work, target="ecp5")
    r = tools.synthesize(work / doc["verilog"], doc["top"], "ecp5", hierarchy=True)
    out: dict[str, dict] = {}
    for name, counts in r["modules"].items():
        block, unit = block_of(name, doc["top"])
        key = f"{block}/{unit}" if unit else block
        row = out.setdefault(key, dict.fromkeys(CLASSES, 0))
        for c in CLASSES:
            row[c] += counts[c]
    out["_seconds"] = {"yosys": r["seconds"], "hash": network_hash(d.network)}
    return out


def _rows(specs: list[dict], measured: dict, work: Path):
    """(kind, features, measured counts, unit cost) per measured unit of the sweep."""
    rows = []
    for spec in specs:
        if spec["id"] not in measured:
            continue
        d = build(spec, work / spec["id"])
        feats: dict[str, cost.UnitCost] = {}
        for u in cost.units(d):
            key = f"{u.block}/{u.unit}" if u.unit else u.block
            if key in feats:  # two converters in one block: add their features
                old = feats[key]
                f = dict(old.features)
                for k, v in u.features.items():
                    f[k] = f.get(k, 0.0) + v
                u = cost.UnitCost(u.block, u.unit, u.kind, f, old.dsp + u.dsp, old.bram + u.bram)
            feats[key] = u
        m = measured[spec["id"]]
        for key, u in feats.items():
            if key in m:
                rows.append((spec["id"], key, u, m[key]))
    return rows


def nnls(a: np.ndarray, b: np.ndarray, free: int | None = None) -> np.ndarray:
    """``argmin ||a x - b||`` subject to ``x >= 0`` except ``x[free]`` (Lawson and Hanson's
    active-set method; a free column is split into a positive and a negative part)."""
    if free is not None:
        a = np.hstack([a, -a[:, [free]]])
    n = a.shape[1]
    x = np.zeros(n)
    active = np.zeros(n, dtype=bool)
    grad = a.T @ b
    for _ in range(3 * n):
        if active.all() or np.max(np.where(active, -np.inf, grad)) <= 1e-9:
            break
        active[int(np.argmax(np.where(active, -np.inf, grad)))] = True
        while True:
            z = np.zeros(n)
            z[active] = np.linalg.lstsq(a[:, active], b, rcond=None)[0]
            if np.all(z[active] > 0):
                x = z
                break
            neg = active & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + alpha * (z - x)
            active &= x > 1e-12
        grad = a.T @ (b - a @ x)
    if free is not None:
        x[free] -= x[-1]
        x = x[:-1]
    return x


def fit(specs: list[dict], measured: dict, work: Path) -> tuple[dict, list]:
    """Weighted non-negative least-squares coefficients per unit kind and resource, from
    every spec but the held-out zoo designs (kind ``zoo``); also the rows fitted.

    Every feature counts hardware (bits, cells, table leaves), so its coefficient is
    constrained to be >= 0; only the intercept ``one`` may be negative. The register bits
    of the pipelines (:data:`codesign.sim.cost.REGISTER_FEATURES`) are flip-flops only:
    their LUT coefficient is 0, so that the LUT model keeps to the logic that costs LUTs
    (the registers correlate with it and would otherwise stand in for it). Unconstrained least
    squares traded correlated features against each other (negative LUTs per adder bit)
    and extrapolated badly to designs unlike the sweep's."""
    holdout = {s["id"] for s in specs if s["kind"] == "zoo"}
    rows = [r for r in _rows(specs, measured, work) if r[0] not in holdout]
    coef: dict[str, dict] = {}
    for kind in sorted({u.kind for _, _, u, _ in rows}):
        sel = [(u, m) for _, _, u, m in rows if u.kind == kind]
        names = sorted({k for u, _ in sel for k in u.features})
        x = np.array([[u.features.get(k, 0.0) for k in names] for u, _ in sel])
        coef[kind] = {}
        for res in ("lut", "ff"):
            y = np.array([m[res] for _, m in sel], dtype=float)
            w = 1.0 / np.maximum(y, 20.0)
            keep = [
                j
                for j in range(len(names))
                if np.any(x[:, j]) and not (res == "lut" and names[j] in cost.REGISTER_FEATURES)
            ]
            kept = [names[j] for j in keep]
            free = kept.index("one") if "one" in kept else None
            sol = nnls(x[:, keep] * w[:, None], y * w, free)
            c = dict.fromkeys(names, 0.0)
            for j, v in zip(keep, sol, strict=True):
                c[names[j]] = round(float(v), 6)
            coef[kind][res] = c
    return coef, rows


def _report(rows, coef) -> str:
    lines = []
    for kind in sorted(coef):
        errs = {"lut": [], "ff": []}
        for _, _, u, m in rows:
            if u.kind != kind:
                continue
            lut, ff = cost.predict(u, {kind: coef[kind]})
            for res, p in (("lut", lut), ("ff", ff)):
                errs[res].append(abs(p - m[res]) / max(m[res], 1))
        lines.append(
            f"{kind:10s} n={len(errs['lut']):3d}  LUT median {np.median(errs['lut']):.1%} "
            f"max {max(errs['lut']):.1%}   FF median {np.median(errs['ff']):.1%} "
            f"max {max(errs['ff']):.1%}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m codesign.cost_fit", description=__doc__)
    p.add_argument("--refit", action="store_true", help="fit the stored measurements only")
    p.add_argument(
        "--add",
        action="store_true",
        help=(
            "measure only the specs with no stored measurement and keep the stored ones, "
            "whatever tools and generator sources measured them (for new specs of a new "
            "unit, when the change left the stored designs' Verilog as it was); each new "
            "measurement records its generator hash"
        ),
    )
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel Yosys runs")
    p.add_argument("--output", default=str(cost.DATA), help="coefficients file")
    args = p.parse_args(argv)
    out = Path(args.output)
    start = time.perf_counter()
    old = json.loads(out.read_text()) if out.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="codesign-costfit-") as tmp:
        work = Path(tmp)
        if args.refit:
            doc = old
            specs, measured = doc["specs"], doc["measured"]
        else:
            from codesign.hdl.tools import tool_versions

            specs = sweep_specs() + zoo_specs()
            tools = tool_versions()
            rtl = hdl_source_hash()
            # a measurement is reused only for the same spec, tools and generator sources
            # (with --add, for the same spec)
            same = old.get("sweep") == SWEEP and old.get("tools") == tools
            same = args.add or (same and old.get("rtl") == rtl)
            stored = {s["id"]: s for s in old.get("specs", [])} if same else {}
            measured = {
                s["id"]: old["measured"][s["id"]]
                for s in specs
                if stored.get(s["id"]) == s and s["id"] in old.get("measured", {})
            }

            def one(spec):
                d = build(spec, work / spec["id"])
                m = measure(d, work / spec["id"])
                m["_seconds"]["rtl"] = rtl
                return spec["id"], m

            todo = [s for s in specs if s["id"] not in measured]
            doc = {"sweep": SWEEP, "tools": tools, "rtl": rtl, "specs": specs}
            if args.add:  # the file's tools and sources stay those of the stored sweep
                doc.update({k: old[k] for k in ("tools", "rtl") if k in old})
            with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
                for sid, m in pool.map(one, todo):
                    measured[sid] = m
                    print(f"{sid}: {m['_seconds']['yosys']:.1f} s", file=sys.stderr)
                    # checkpoint: a killed sweep resumes from the measurements stored so far
                    part = {**doc, "measured": measured}
                    part["coefficients"] = old.get("coefficients", {})
                    atomic_write(out, json.dumps(part, indent=1, sort_keys=True) + "\n")
        coef, rows = fit(specs, measured, work)
    doc.update(
        {
            "about": (
                "Coefficients of sim/cost.py fitted by codesign/cost_fit.py (python -m "
                "codesign.cost_fit; --refit to refit the stored measurements); the zoo "
                "designs (holdout) are measured but not fitted"
            ),
            "target": "ecp5",
            "coefficients": {"ecp5": coef},
            "holdout": sorted(s["id"] for s in specs if s["kind"] == "zoo"),
            "measured": measured,
        }
    )
    atomic_write(out, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(_report(rows, coef))
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
