"""``codesign bnn``: a binary network on the TULIP array (schedule, cycles, energy against a
MAC baseline) and, with ``--mst``, its MST channel reuse; and the binary-layer statistics
``codesign info`` shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codesign.models.binary import BinaryConv2d, BinaryDense
from codesign.models.binary.tulip import TulipArray, map_network
from codesign.models.ir import Network

__all__ = ["binary_stats", "binary_stats_text", "bnn_report", "bnn_text", "bnn_verify"]


def binary_stats(net: Network) -> list[dict]:
    """Per binary layer: channels, fan-in, the fraction of weight bits that are 1, and the
    Hamming distance from each channel to its nearest other channel (mean and minimum, as
    a fraction of the fan-in): the room MST reuse has."""
    from codesign.models.binary.mst import hamming_matrix

    rows = []
    for la in net.layers:
        if not isinstance(la, BinaryDense | BinaryConv2d):
            continue
        w = la.weight.reshape(la.weight.shape[0], -1)
        w = (w > 0).astype(np.int64)  # bipolar −1/+1 and binary 0/1 alike
        m, k = w.shape
        row = {
            "layer": la.name,
            "op": la.op,
            "encoding": la.encoding.value,
            "channels": int(m),
            "fan_in": int(k),
            "ones": round(float(w.mean()), 4),
        }
        if m > 1:
            d = hamming_matrix(w).astype(np.float64)
            np.fill_diagonal(d, np.inf)
            near = d.min(axis=1) / k
            row["nearest_mean"] = round(float(near.mean()), 4)
            row["nearest_min"] = round(float(near.min()), 4)
        rows.append(row)
    return rows


def binary_stats_text(rows: list[dict]) -> str:
    if not rows:
        return ""
    lines = ["binary layers (nearest: Hamming distance to the closest other channel / fan-in):"]
    for r in rows:
        near = (
            f"nearest mean {r['nearest_mean']:.3f} min {r['nearest_min']:.3f}"
            if "nearest_mean" in r
            else "one channel"
        )
        lines.append(
            f"  {r['layer']:10s} {r['op']:14s} {r['channels']:5d} x {r['fan_in']:5d}  "
            f"ones {r['ones']:.3f}  {near}"
        )
    return "\n".join(lines)


def bnn_report(
    net: Network,
    *,
    pes: int = 16,
    tlns: int = 4,
    in_width: int = 16,
    mst: bool = False,
    max_depth: int | None = None,
) -> dict:
    """The ``codesign bnn`` document of ``net``. Raises ``ConfigError`` (one line, naming
    the layer) for a network TULIP cannot run."""
    from codesign.sim.binary.energy import energy_table
    from codesign.sim.binary.tulip import timing

    array = TulipArray(pes=pes, tlns=tlns)
    program = map_network(net, array)
    t = timing(program, in_width)
    doc = {
        "network": net.name,
        "array": {
            "pes": pes,
            "tlns_per_pe": tlns,
            "cell_fan_in": array.cell.fan_in,
            "cell_max_weight": array.cell.max_weight,
            "registers_per_bank": program.registers,
            "in_width": in_width,
        },
        "schedule": [s.summary() for s in program.layers],
        "cycles": t.to_dict(),
        "energy": energy_table(program),
    }
    from codesign.sim.binary.mst import mst_summary, mst_timing

    rows = mst_summary(net, max_depth=max_depth)
    direct = sum(r["direct_ops"] for r in rows)
    ops = sum(r["ops"] for r in rows)
    doc["ops_saved"] = {
        "method": "MST channel reuse"
        + (f", depth <= {max_depth}" if max_depth is not None else " (plain MST)"),
        "direct_xnors": direct,
        "xnors": ops,
        "saved": direct - ops,
        "saved_fraction": round((direct - ops) / direct, 4),
        "max_depth": max(r["max_depth"] for r in rows),
        "layers": {r["name"]: r["ops_saved"] for r in rows},
    }
    if mst:
        doc["mst"] = rows
        t = mst_timing(net, max_depth=max_depth)
        doc["mst_cycles"] = {"latency": t.latency, "ii": t.ii}
    return doc


def bnn_text(doc: dict) -> str:
    a = doc["array"]
    lines = [
        f"{doc['network']} on TULIP: {a['pes']} PEs x {a['tlns_per_pe']} TLN cells "
        f"(fan-in {a['cell_fan_in']}, |w| <= {a['cell_max_weight']}), "
        f"{a['registers_per_bank']} registers per bank",
        "",
        f"{'layer':8s} {'neurons':>7s} {'fan-in':>6s} {'rounds':>6s} {'ops/n':>6s} "
        f"{'cycles':>7s} {'bound':>7s} {'util':>6s}",
    ]
    for s in doc["schedule"]:
        lines.append(
            f"{s['layer']:8s} {s['neurons']:7d} {s['fan_in']:6d} {s['rounds']:6d} "
            f"{s['ops_per_neuron']:6d} {s['cycles']:7d} {s['lower_bound']:7d} "
            f"{s['utilisation']:6.1%}"
        )
    c = doc["cycles"]
    lines += [
        "",
        f"per classification: {c['in_beats']} input beats + {c['compute_cycles']} compute "
        f"+ {c['out_beats']} output beats = {c['ii']} cycles (latency {c['latency']})",
        "",
        f"energy per classification (pJ, after node scaling x{doc['energy']['scale']:.3f}):",
    ]
    for r in doc["energy"]["rows"]:
        lines.append(
            f"  {r['design']:5s} {r['component']:52s} {r['count']:8d} x "
            f"{r['unit_pj']:9.5f} = {r['energy_pj']:10.2f}"
        )
    e = doc["energy"]
    lines.append(
        f"  total: TULIP {e['tulip_pj']:.1f} pJ, MAC {e['mac_pj']:.1f} pJ, MAC / TULIP = "
        f"{e['ratio']:.2f} (with TULIP's control ROM: {e['ratio_with_control_rom']:.3f})"
    )
    lines.append("  parameters and their sources: sim/energy.csv (--json lists them)")
    o = doc["ops_saved"]
    lines += [
        "",
        f"ops saved by {o['method']}: {o['saved']} of {o['direct_xnors']} XNORs per "
        f"classification ({o['saved_fraction']:.1%}), dependency depth {o['max_depth']}",
    ]
    if "mst" in doc:
        lines += [
            "",
            "MST channel reuse (ops: XNORs per input vector; cycles of the MST MVAU at simd "
            "lanes against a direct MVAU):",
            f"  {'layer':8s} {'M x K':>10s} {'direct':>7s} {'ops':>7s} {'saved':>6s} "
            f"{'depth':>5s} {'plain MST ops/depth':>19s} {'simd':>4s} {'cycles':>7s} "
            f"{'direct':>7s}",
        ]
        for r in doc["mst"]:
            mk = f"{r['channels']}x{r['fan_in']}"
            plain = f"{r['plain_ops']}/{r['plain_depth']}"
            lines.append(
                f"  {r['name']:8s} {mk:>10s} {r['direct_ops']:7d} {r['ops']:7d} "
                f"{r['saved_fraction']:6.1%} {r['max_depth']:5d} {plain:>19s} {r['simd']:4d} "
                f"{r['cycles']:7d} {r['direct_cycles']:7d}"
            )
        c = doc["mst_cycles"]
        lines.append(
            f"  the MST MVAU chain (hdl/binary/mst.py): latency {c['latency']}, "
            f"II {c['ii']:g} cycles per frame"
        )
    return "\n".join(lines)


def _designs(
    out_dir: Path,
    *,
    net: Network,
    pes: int,
    tlns: int,
    in_width: int,
    mst: bool,
    max_depth: int | None,
    vectors: int,
    seed: int,
):
    """``vectors`` seeded random inputs of ``net``, their golden outputs, the frames of a
    free-running run (``perf``), and the designs: the TULIP array of ``net`` generated into
    ``out_dir/tulip`` (and with ``mst`` its MST MVAU chain into ``out_dir/mst``), each as
    ``(name, folder, predicted latency, predicted II)``, the cycle models' prediction of a
    free-running run of ``perf`` frames."""
    from codesign.hdl.binary.tulip import write_design
    from codesign.models.golden import golden, random_inputs
    from codesign.sim.binary.tulip import timing

    x = random_inputs(net, vectors, seed)
    y = golden(net, x)
    perf = min(vectors, 32)

    program = map_network(net, TulipArray(pes=pes, tlns=tlns))
    t = timing(program, in_width)
    designs = [("tulip", out_dir / "tulip", t.latency, t.ii)]
    write_design(program, designs[0][1], in_width=in_width)
    if mst:
        from codesign.hdl.binary.mst import generate
        from codesign.models.binary.mst import network_reuse
        from codesign.sim.binary.mst import mst_timing

        trees = network_reuse(net, max_depth)
        generate(net, out_dir / "mst", trees=trees)
        m = mst_timing(net, trees=trees, frames=perf)
        designs.append(("mst", out_dir / "mst", m.latency, m.ii))
    return x, y, perf, designs


def bnn_verify(
    net: Network,
    out_dir: str | Path,
    *,
    pes: int = 16,
    tlns: int = 4,
    in_width: int = 16,
    mst: bool = False,
    max_depth: int | None = None,
    vectors: int = 200,
    seed: int = 0,
    sim: str = "verilator",
) -> dict:
    """Generate the TULIP array of ``net`` (and with ``mst`` its MST MVAU chain) into
    ``out_dir/tulip`` (``out_dir/mst``) and prove each against the golden model in cocotb:
    ``vectors`` random frames with random back-pressure, then a free-running run whose
    latency and initiation interval are reported beside the cycle model's."""
    from codesign.hdl.verify import run_cocotb

    hw = dict(pes=pes, tlns=tlns, in_width=in_width, mst=mst, max_depth=max_depth)
    x, y, perf, designs = _designs(Path(out_dir), net=net, vectors=vectors, seed=seed, **hw)
    doc = {"network": net.name, "sim": sim, "frames": vectors}
    for name, folder, latency, ii in designs:
        r = run_cocotb(folder, x, y, {}, sim=sim, seed=seed, perf_frames=perf)
        doc[name] = {
            "design": str(folder),
            "passed": bool(r["passed"]),
            "mismatches": int(r["mismatches"]),
            "timed_out": r["timed_out"],
            "latency": r["latency"],
            "ii": r["ii"],
            "predicted_latency": latency,
            "predicted_ii": ii,
        }
    return doc


def bnn_testbench(
    net: Network,
    out_dir: str | Path,
    *,
    pes: int = 16,
    tlns: int = 4,
    in_width: int = 16,
    mst: bool = False,
    max_depth: int | None = None,
    vectors: int = 32,
    seed: int = 0,
) -> dict:
    """Generate the TULIP array of ``net`` (and with ``mst`` its MST chain) as
    :func:`bnn_verify` does, each with its regression kit (:mod:`codesign.hdl.kit`):
    ``vectors`` seeded random frames and their golden outputs, checked with random
    back-pressure, and the cycle models' latency and II checked on a free-running run,
    without codesign. Returns ``{name: kit folder}``."""
    from codesign.hdl.kit import write_kit
    from codesign.hdl.manifest import read_manifest

    hw = dict(pes=pes, tlns=tlns, in_width=in_width, mst=mst, max_depth=max_depth)
    x, y, perf, designs = _designs(Path(out_dir), net=net, vectors=vectors, seed=seed, **hw)
    out = {}
    for name, folder, latency, ii in designs:
        m = read_manifest(folder / "manifest.json")
        write_kit(
            folder,
            m,
            m.input.to_stream(x),
            m.output.to_stream(y),
            {},
            library="binary",
            seed=seed,
            perf_frames=perf,
            expect_latency=latency,
            expect_ii=ii,
        )
        out[name] = str(folder)
    return out


def bnn_verify_text(doc: dict) -> str:
    lines = []
    for name, what in (("tulip", "TULIP array"), ("mst", "MST MVAU chain")):
        if name in doc:
            r = doc[name]
            lines.append(
                f"{what} RTL ({doc['sim']}, {r['design']}): {doc['frames']} frames, "
                f"{r['mismatches']} mismatches; latency {r['latency']} (predicted "
                f"{r['predicted_latency']}), II {r['ii']:g} (predicted {r['predicted_ii']:g})"
                + (f"; {r['timed_out']}" if r["timed_out"] else "")
            )
    return "\n".join(lines)
