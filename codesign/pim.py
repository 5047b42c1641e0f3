"""``codesign pim``: a network's dense layers on a processing-in-memory accelerator — digital
bit-serial (SOT-MRAM-style or the NOR-only baseline, integers or floating point, inference or a
training step) or an analog crossbar — with cycles, latency, energy and area from the cycle
model (``sim/pim``), and with ``--verify`` the golden models' proof on seeded frames: the
digital micro-op programs executed bit by bit against the network's golden model (every
output must match), the analog crossbar's error against the exact product."""

from __future__ import annotations

import numpy as np

from codesign.models.errors import ConfigError
from codesign.models.ir import Network

from .summary import aligned

__all__ = ["add_parser", "cmd_pim", "pim_report", "pim_text", "pim_verify"]


def dense_layer_names(net: Network) -> list[str]:
    """The network's dense layers, in order."""
    return [la.name for la in net.layers if la.op == "dense"]


def pim_report(net: Network, config, *, training: bool = False, batch: int = 1) -> dict:
    """The cycle model's report of ``net`` on ``config`` as plain data."""
    from codesign.sim.pim import evaluate

    return evaluate(net, config, training=training, batch=batch).as_dict()


def pim_verify(net: Network, config, frames: int, *, seed: int = 0) -> dict:
    """Prove the PIM golden models on ``frames`` seeded inputs, layer by layer.

    Digital: each dense layer's column program (:mod:`codesign.models.pim.layer`) runs in the
    bit-level executor with one column per (frame, output), on the layer's real inputs from
    the network's golden trace; ``mismatches`` counts outputs that differ from the trace.
    Analog: the crossbar's error on the same inputs (:func:`~codesign.models.pim.analog.
    layer_error`): relative RMS, the largest error and its bound, the exact fraction.
    """
    from codesign.models.golden import random_inputs, trace
    from codesign.sim.pim import Mode

    layers = dense_layer_names(net)
    if not layers:
        raise ConfigError(f"{net.name}: must have a dense layer to map onto PIM arrays, not none")
    x = random_inputs(net, frames, seed)
    rows = []
    if config.mode is Mode.ANALOG:
        from codesign.models.pim.analog import layer_error

        for name in layers:
            e = layer_error(net, name, config.crossbar, x)
            rows.append(
                {
                    "layer": name,
                    "outputs": int(e.outputs),
                    "rel_rms": float(e.rel_rms),
                    "max_abs": int(e.max_abs),
                    "bound": int(e.bound),
                    "exact_fraction": float(e.exact_fraction),
                }
            )
        return {"mode": "analog", "frames": frames, "seed": seed, "layers": rows}
    from codesign.models.pim.layer import dense_mapping
    from codesign.models.pim.program import execute

    t = trace(net, x)
    for name in layers:
        m = dense_mapping(net, name, config.tech, rows=config.rows)
        (src,) = net[name].inputs
        inputs = np.concatenate([m.input_rows(t[src][f]) for f in range(frames)], axis=1)
        got = m.decode(execute(m.program, inputs, seed=seed)).reshape(frames, m.n)
        want = np.asarray(t[name]).reshape(frames, m.n)
        bad = np.argwhere(got != want)
        rows.append(
            {
                "layer": name,
                "outputs": int(want.size),
                "mismatches": len(bad),
                "first_mismatch": None if not len(bad) else [int(v) for v in bad[0]],
                "program_cycles": m.program.cycles,
                "rows_used": m.program.rows_used,
            }
        )
    return {
        "mode": "digital",
        "tech": config.tech,
        "frames": frames,
        "seed": seed,
        "layers": rows,
        "passed": all(r["mismatches"] == 0 for r in rows),
    }


def _si(v: float, unit: str) -> str:
    """``v`` with an SI prefix: 3 significant digits (``1.72 µs``, ``114 nJ``)."""
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {prefix}{unit}"
    return f"{v / 1e-15:.3g} f{unit}"


def pim_text(doc: dict) -> str:
    """The report (and the verification, if any) as aligned text."""
    c = doc["config"]
    if c["mode"] == "digital":
        what = f"digital {c['tech']}, {c['fmt']}"
    else:
        what = (
            f"analog crossbar, ADC {c['adc_bits']} b (1 per {c['adc_share']} columns), "
            f"{c['cell_bits']} b/cell, DAC {c['dac_bits']} b"
        )
    step = "training step" if doc["training"] else "inference"
    lines = [
        f"{doc['network']} on PIM: {what}, {c['rows']}x{c['cols']} arrays, "
        f"{step}, batch {doc['batch']}"
    ]
    table = [("layer", "phase", "k", "outputs", "arrays", "util", "cycles", "latency", "energy")]
    for la in doc["layers"]:
        table.append(
            (
                la["layer"],
                la["phase"],
                str(la["k"]),
                str(la["jobs"]),
                str(la["arrays"]),
                f"{la['utilisation']:.2f}",
                str(la["cycles"]),
                _si(la["latency_ns"] * 1e-9, "s"),
                _si(la["energy_pj"] * 1e-12, "J"),
            )
        )
    t = doc["totals"]
    table.append(
        (
            "total",
            "",
            "",
            "",
            str(t["arrays"]),
            f"{t['utilisation']:.2f}",
            str(t["cycles"]),
            _si(t["latency_ns"] * 1e-9, "s"),
            _si(t["energy_pj"] * 1e-12, "J"),
        )
    )
    lines += aligned(table, (0, 1))
    lines.append(f"  area {t['area_mm2']:.4g} mm²")
    v = doc.get("verify")
    if v:
        lines.append("")
        if v["mode"] == "digital":
            lines.append(
                f"verify: {v['frames']} seeded frames (seed {v['seed']}), every dense layer's "
                f"{v['tech']} program executed bit by bit against the golden model"
            )
            rows = [("layer", "outputs", "mismatches", "program cycles", "rows")]
            for r in v["layers"]:
                rows.append(
                    (
                        r["layer"],
                        str(r["outputs"]),
                        str(r["mismatches"]),
                        str(r["program_cycles"]),
                        str(r["rows_used"]),
                    )
                )
            lines += aligned(rows, (0,))
            lines.append("  passed" if v["passed"] else "  FAILED")
        else:
            lines.append(
                f"verify: {v['frames']} seeded frames (seed {v['seed']}), the crossbar's "
                "outputs against the exact product"
            )
            rows = [("layer", "outputs", "rel. RMS", "max |err|", "bound", "exact")]
            for r in v["layers"]:
                rows.append(
                    (
                        r["layer"],
                        str(r["outputs"]),
                        f"{r['rel_rms']:.3g}",
                        str(r["max_abs"]),
                        str(r["bound"]),
                        f"{r['exact_fraction']:.1%}",
                    )
                )
            lines += aligned(rows, (0,))
    return "\n".join(lines)


def cmd_pim(args) -> None:
    from codesign.models.loader import load
    from codesign.sim.pim import PimConfig

    from .cli import VerificationFailed, emit

    net = load(args.net)
    fmt = args.fmt or ("fp32" if args.training and args.mode == "digital" else "int")
    config = PimConfig(
        mode=args.mode,
        tech=args.tech,
        rows=args.rows,
        cols=args.cols,
        fmt=fmt,
        adc_bits=args.adc_bits,
        cell_bits=args.cell_bits,
        dac_bits=args.dac_bits,
        adc_share=args.adc_share,
    )
    doc = pim_report(net, config, training=args.training, batch=args.batch)
    if args.verify is not None:
        doc["verify"] = pim_verify(net, config, args.verify, seed=args.seed)
    emit(args, doc, pim_text(doc))
    if doc.get("verify", {}).get("passed") is False:
        raise VerificationFailed(
            f"{net.name}: a PIM program disagrees with the golden model (see the report above)"
        )


def add_parser(sub, common, positive_int) -> None:
    """Register ``pim`` on the ``codesign`` subparsers ``sub``."""
    s = sub.add_parser(
        "pim",
        parents=[common],
        help="dense layers on processing-in-memory arrays: cycles, energy, area; --verify",
    )
    s.add_argument("net", metavar="NET", help="zoo name or description path")
    s.add_argument("--mode", choices=("digital", "analog"), default="digital")
    s.add_argument("--tech", choices=("sot-mram", "nor"), default="sot-mram", help="digital cells")
    s.add_argument("--rows", type=positive_int, default=256, help="array rows (256)")
    s.add_argument("--cols", type=positive_int, default=256, help="array columns (256)")
    s.add_argument(
        "--fmt",
        choices=("int", "bf16", "fp32"),
        help="digital arithmetic: the layers' integers, or floating point (fp32 with "
        "--training, else int)",
    )
    s.add_argument("--adc-bits", type=positive_int, default=8, help="analog ADC bits (8)")
    s.add_argument("--cell-bits", type=positive_int, default=2, help="analog bits/cell (2)")
    s.add_argument("--dac-bits", type=positive_int, default=1, help="analog DAC bits (1)")
    s.add_argument(
        "--adc-share", type=positive_int, default=128, help="analog columns per ADC (128)"
    )
    s.add_argument(
        "--training",
        action="store_true",
        help="a training step: forward, input gradient and weight gradient (digital)",
    )
    s.add_argument("--batch", type=positive_int, default=1, help="vectors per step (1)")
    s.add_argument(
        "--verify",
        metavar="N",
        type=positive_int,
        help="run N seeded frames through the golden models: digital programs bit by bit "
        "against the network's golden model, the analog crossbar's error",
    )
    s.add_argument("--seed", type=int, default=0, help="seed for --verify (default 0)")
    s.set_defaults(func=cmd_pim)
