"""Calibrate the Fmax model of :mod:`codesign.sim.fmax` on nextpnr: ``python -m
codesign.fmax_fit``.

Each sample is one stage of a zoo network, at its default folding or at a seeded random
one, placed and routed *in context of its streams*: the stage's :class:`StageUnit` with the
FIFO in front of each of its inputs (the depth the design gives it) and a FIFO behind its
output (the depth of its reader's FIFO), so that the paths a whole design times between a
stage and its neighbours' FIFOs (a FIFO's ``ready`` into the stage's credit count, a
FIFO's read into the stage's first register) are timed here too. The harness is exported
for ECP5 (MULT18X18D instances with their registers), synthesized hierarchically as ``codesign
synth`` does and placed and routed out of context (ports unconstrained) by nextpnr-ecp5 on
the LFE5U-85F at speed 6, seed 1, one thread, ``--freq 150``.

Every measurement (the sample's spec, the achieved Fmax, the critical path's ends and its
logic/routing split, the resources) goes to ``sim/fmax_data.json`` with the commit and the
generator-source hash (``rtl``) it was measured at; a rerun skips samples already measured
at the same ``rtl`` (``--force`` remeasures), so a killed sweep resumes. The fit
(:func:`codesign.sim.fmax.fit`) then reads the samples' structural features from models/
facts and writes the coefficients into the same file. ``--refit`` only refits (seconds).

Whole-network results (``networks`` in the data file: network → Fmax at speed 6, the
commit measured at and where the figure comes from) are not measured here (a zoo network
takes 5-30 minutes); ``--network NET FMAX --commit C`` records one, e.g. from ``codesign
synth NET --speed 6``. They calibrate the one whole-design term of the model (the delay a
full placement adds over the worst stage) and are the held-out check of
tests/sim/test_fmax.py.

This lives in ``codesign/`` because it drives ``hdl/``, which ``sim/`` may not import.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from codesign.models.fileio import atomic_write
from codesign.sim import fmax as model

__all__ = ["harness", "main", "measure", "sweep_specs"]

#: Zoo networks whose stages are sampled.
ZOO = ("jet_tagger", "tfc_w2a2", "cnv_tiny", "resnet_tiny")
#: The binary network whose XNOR stages are sampled too (not its 3,584-lane first stage).
XNOR = "tfc_w1a1"
SPEED = 6
SEED = 1
FREQ = 150.0


def sweep_specs(random_per_net: int = 4, seed: int = 2026, logic_per_net: int = 3) -> list[dict]:
    """The samples: every stage of each :data:`ZOO` network at its default folding; the
    stages of :data:`XNOR` at their default folding (at most 512 lanes) and one random
    folding each (but the first); then
    ``random_per_net`` matrix stages per network at a seeded random folding (PE, SIMD among
    the values the stage allows, at most 32 each); then ``logic_per_net`` more (seed + 1)
    with their weight ROM forced into logic (``mem_style: distributed``) where it has at
    most 1024 words, else at a random folding again."""
    from codesign.models.hwconfig import StageKind
    from codesign.models.loader import load

    from .flows import design

    out = []
    for net in ZOO:
        d = design(load(net), None)
        for s in d.stages:
            c = d.config[s.name]
            out.append({"net": net, "stage": s.name, "pe": c.pe, "simd": c.simd})
    # binary (XNOR) stages: tfc_w1a1's, but for fc0 (3,584 lanes: minutes of Yosys alone)
    rng = np.random.default_rng(seed - 1)
    d = design(load(XNOR), None)
    for s in d.stages:
        c = d.config[s.name]
        if c.pe * c.simd <= 512:
            out.append({"net": XNOR, "stage": s.name, "pe": c.pe, "simd": c.simd})
        pe = int(rng.choice([p for p in s.pe_choices() if p <= 16]))
        simd = int(rng.choice([q for q in s.simd_choices() if q <= 32]))
        if s.name != "fc0" and (pe, simd) != (c.pe, c.simd):
            out.append({"net": XNOR, "stage": s.name, "pe": pe, "simd": simd})
    for batch, (n, logic) in enumerate(((random_per_net, False), (logic_per_net, True))):
        rng = np.random.default_rng(seed + batch)
        for net in ZOO:
            d = design(load(net), None)
            cands = [s for s in d.stages if s.kind in (StageKind.MVAU, StageKind.CONV)]
            picks = rng.choice(len(cands), size=min(n, len(cands)), replace=False)
            for k in sorted(int(p) for p in picks):
                s = cands[k]
                c = d.config[s.name]
                pe = int(rng.choice([p for p in s.pe_choices() if p <= 32]))
                simd = int(rng.choice([q for q in s.simd_choices() if q <= 32]))
                spec = {"net": net, "stage": s.name, "pe": pe, "simd": simd}
                if logic and (s.mw // simd) * (s.mh // pe) <= 1024:
                    spec["mem_style"] = "distributed"
                elif (pe, simd) == (c.pe, c.simd):
                    continue
                out.append(spec)
    return out


def spec_id(spec: dict) -> str:
    style = f":{spec['mem_style']}" if spec.get("mem_style", "auto") != "auto" else ""
    return f"{spec['net']}:{spec['stage']}:pe{spec['pe']}:simd{spec['simd']}{style}"


def harness(spec: dict):
    """The stage of ``spec`` between its FIFOs: ``(component, design)``. The component has
    the stage's stream ports; each input passes the FIFO the design puts in front of it, the
    output a FIFO as deep as its reader's (:func:`codesign.sim.fmax.reader_fifo_depth`)."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring

    from codesign.hdl.dataflow.pipeline import StageUnit
    from codesign.hdl.dataflow.stream import StreamFIFO

    d = model.spec_design(spec)
    s = d.stage(spec["stage"])
    unit = StageUnit(stage=s, config=d.config[s.name], pipeline=d.config.pipeline, target="ecp5")
    out_depth = model.reader_fifo_depth(d, s)
    members = dict(unit.signature.members)

    class Harness(wiring.Component):
        def __init__(self) -> None:
            super().__init__(members)

        def elaborate(self, platform):
            m = Module()
            m.submodules.stage = unit
            for k, port in enumerate(p for p in ("i", "i_b") if p in members):
                inner = getattr(unit, port)
                q = StreamFIFO(
                    layout=members[port].signature.members["payload"].shape,
                    depth=d.fifo_depth(s, k),
                    target="ecp5",  # as the design's (a BlockFIFO of DP16KD where block RAM)
                )
                m.submodules[f"fifo_{port}"] = q
                wiring.connect(m, wiring.flipped(getattr(self, port)), q.i)
                wiring.connect(m, q.o, inner)
            q = StreamFIFO(
                layout=members["o"].signature.members["payload"].shape,
                depth=out_depth,
                target="ecp5",
            )
            m.submodules.fifo_o = q
            wiring.connect(m, unit.o, q.i)
            wiring.connect(m, q.o, wiring.flipped(self.o))
            return m

    return Harness(), d


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def measure(spec: dict, *, keep: Path | None = None) -> dict:
    """Place and route the harness of ``spec``; the measurement as stored."""
    from amaranth.back import verilog

    from codesign.hdl import tools

    top, _ = harness(spec)
    with tempfile.TemporaryDirectory(prefix="codesign-fmax-fit-") as tmp:
        work = Path(tmp) if keep is None else keep / spec_id(spec).replace(":", "_")
        work.mkdir(parents=True, exist_ok=True)
        src = work / "unit.v"
        src.write_text(verilog.convert(top, name="unit", emit_src=False))
        t0 = time.perf_counter()
        syn = tools.synthesize(src, "unit", "ecp5", hierarchy=True, netlist=work / "unit.json")
        t1 = time.perf_counter()
        p = tools.place_and_route(work / "unit.json", "ecp5", seed=SEED, freq_mhz=FREQ, speed=SPEED)
    cp = p["critical_path"] or {}
    return {
        "fmax_mhz": p["fmax_mhz"],
        "critical_path": {
            k: cp.get(k)
            for k in ("from_cell", "to_cell", "delay_ns", "logic_ns", "routing_ns", "logic_levels")
        },
        **{c: syn[c] for c in ("lut", "ff", "carry", "dsp", "bram", "lutram")},
        "seconds": {"yosys": round(t1 - t0, 1), "nextpnr": p["seconds"]},
    }


def _load(path: Path) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"about": "", "samples": {}, "networks": {}, "coefficients": {}}


def _save(path: Path, doc: dict) -> None:
    atomic_write(path, json.dumps(doc, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=model.DATA)
    p.add_argument("--refit", action="store_true", help="fit the stored samples only")
    p.add_argument("--force", action="store_true", help="remeasure stored samples")
    p.add_argument("--random", type=int, default=4, help="random foldings per network")
    p.add_argument("--logic", type=int, default=3, help="ROM-in-logic samples per network")
    p.add_argument("--only", nargs="*", help="measure only these sample ids")
    p.add_argument("--budget", type=float, default=None, help="stop measuring after N s")
    p.add_argument("--keep", type=Path, help="keep each sample's files here")
    p.add_argument(
        "--network",
        nargs=2,
        metavar=("NET", "FMAX"),
        help="record a whole-network nextpnr Fmax (speed 6) and refit",
    )
    p.add_argument("--commit", help="the commit the --network figure was measured at")
    p.add_argument("--source", default="codesign synth NET --speed 6", help="for --network")
    args = p.parse_args(argv)
    from codesign.hdl.tools import ToolError

    from .synth import hdl_source_hash

    doc = _load(args.data)
    doc["about"] = (
        "Fmax model of sim/fmax.py: per-stage nextpnr samples (codesign/fmax_fit.py, "
        "python -m codesign.fmax_fit; --refit refits), whole-network figures (networks) "
        "and the fitted coefficients"
    )
    doc["pnr"] = {"device": "LFE5U-85F", "speed": SPEED, "seed": SEED, "freq_mhz": FREQ}
    if args.network:
        net, f = args.network
        doc["networks"][net] = {
            "fmax_mhz": float(f),
            "commit": args.commit or _commit(),
            "source": args.source,
        }
    elif not args.refit:
        rtl = hdl_source_hash()[:16]
        start = time.perf_counter()
        for spec in sweep_specs(args.random, logic_per_net=args.logic):
            sid = spec_id(spec)
            if args.only and sid not in args.only:
                continue
            old = doc["samples"].get(sid)
            if old and old.get("rtl") == rtl and not args.force:
                continue
            if args.budget and time.perf_counter() - start > args.budget:
                print("budget spent; stopping", flush=True)
                break
            try:
                r = measure(spec, keep=args.keep)
            except (ToolError, ValueError, OSError) as e:  # recorded; the others still run
                print(f"{sid}: failed: {str(e).splitlines()[0][:200]}", flush=True)
                continue
            doc["samples"][sid] = {"spec": spec, "rtl": rtl, "commit": _commit(), **r}
            cp = r["critical_path"]
            print(
                f"{sid}: {r['fmax_mhz']} MHz  {cp['from_cell']} -> {cp['to_cell']}  "
                f"({r['seconds']['nextpnr']} s)",
                flush=True,
            )
            _save(args.data, doc)
    doc["coefficients"] = model.fit(doc)
    _save(args.data, doc)
    for line in model.fit_report(doc):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
