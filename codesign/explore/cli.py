"""``codesign explore (NET | SPACE.yaml)``: the command line of the explorer."""

from __future__ import annotations

import io
import json
from pathlib import Path

from .evaluate import COLUMNS
from .tulip import TULIP_COLUMNS

__all__ = ["add_parser", "cmd_explore"]

#: Front columns shown by the text report (beside the knobs): the values of a point but the
#: cycle counts and LUT RAM, in the evaluators' order (those a space has).
SHOWN = tuple(
    dict.fromkeys(
        c
        for c in (*COLUMNS, *TULIP_COLUMNS)
        if c not in ("ii", "latency_cycles", "lutram", "clock_mhz")
    )
)


def _table(frame, top: int, what: str = "front points") -> list[str]:
    """The first ``top`` rows of ``frame`` as text lines, and a line saying how many more."""
    lines = frame.head(top).to_string(index=False, float_format=lambda v: f"{v:.4g}").splitlines()
    if len(frame) > top:
        lines.append(f"... {len(frame) - top} more {what} (--json, --export)")
    return lines


def add_parser(sub, common, positive_int) -> None:
    """Register ``explore`` on the ``codesign`` subparsers ``sub``."""
    s = sub.add_parser(
        "explore", parents=[common], help="design-space exploration: Pareto front of foldings"
    )
    s.add_argument("space", metavar="NET|SPACE.yaml", help="zoo name, description or space file")
    s.add_argument("--out", metavar="DIR", help="stores' folder (build/explore)")
    s.add_argument(
        "--strategy",
        choices=("auto", "exhaustive", "nsga2", "greedy"),
        help="search (default: the space's; auto: exhaustive up to max_points, else nsga2)",
    )
    s.add_argument(
        "--validate",
        metavar="K",
        type=positive_int,
        default=0,
        help="re-measure K front points: event simulator, cocotb (Verilator), Yosys+nextpnr",
    )
    s.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler (tcp://host:port)")
    s.add_argument("--workers", metavar="N", type=positive_int, help="local Dask workers (2)")
    s.add_argument("--plot", metavar="FILE.svg", help="write the front (throughput vs LUT, DSP)")
    s.add_argument("--export", metavar="FILE", help="every point as .parquet or .csv")
    s.add_argument("--top", metavar="N", type=positive_int, default=10, help="front rows shown")
    s.add_argument(
        "--pim",
        action="store_true",
        help="the network's processing-in-memory space (technology, array size, ADC/cell bits)",
    )
    s.add_argument(
        "--compress",
        action="store_true",
        help="the network's compression space (per-layer SVD/CPD ranks, N:M sparsity)",
    )
    s.add_argument(
        "--bound",
        type=float,
        default=0.3,
        help="--compress: the accuracy-proxy bound, relative output error (0.3)",
    )
    s.set_defaults(func=cmd_explore)


def _check_path(option: str, value: str | None, suffixes: tuple[str, ...]) -> None:
    from codesign.cli import CliError

    if value is not None and Path(value).suffix.lower() not in suffixes:
        raise CliError(
            f"codesign explore: argument {option}: must be a {' or '.join(suffixes)} file, "
            f"not {value!r}"
        )


def _export(df, path: str) -> None:
    from codesign.models.fileio import atomic_write

    out = df.copy()
    out["context"] = out["context"].astype(str)
    if path.lower().endswith(".csv"):
        atomic_write(path, out.to_csv(index=False))
    else:
        buf = io.BytesIO()
        out.to_parquet(buf, index=False)
        atomic_write(path, buf.getvalue())


def _emit_deform(args, df) -> None:
    """The deformable space's report: every point's knobs and values, the front first."""

    a = df.attrs
    front = df[df["pareto"]].sort_values(["cycles", "lut"])
    doc = {
        "network": a["network"],
        "space": "deformable",
        "points": a["points"],
        "front_size": a["front"],
        "objectives": a["objectives"],
        "seconds": a["seconds"],
        "front": json.loads(front.to_json(orient="records")),
    }
    lines = [
        f"{a['network']}: deformable space, {a['points']} points (variant x banks x ports x PE "
        f"of the deformable stage, cycles and error on seeded frames) in {a['seconds']:.1f} s",
        f"Pareto front over {', '.join(a['objectives'])}: {a['front']} points",
        "",
        *_table(front.drop(columns=["pareto"]), args.top),
    ]
    groups = [(str(v), g["cycles"], g["lut"]) for v, g in df.groupby("variant")]
    axes = ("cycles per frame (deformable stage)", "LUT", False)
    _plot_export_emit(args, df, doc, lines, groups, axes)


def _plot_export_emit(args, df, doc: dict, lines: list[str], groups, axes) -> None:
    """The end of a whole-space report: ``--plot`` a scatter of ``groups`` (label, x, y) on
    ``axes`` (x label, y label, log scales), ``--export`` every point, then emit."""
    from codesign.cli import emit

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for label, x, y in groups:
            ax.scatter(x, y, label=label, s=10)
        xlabel, ylabel, log = axes
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, metadata={"Date": None})
        plt.close(fig)
        doc["plot"] = args.plot
        lines.append(f"wrote {args.plot}")
    if args.export:
        out = df.copy()
        out["context"] = doc["space"]
        _export(out, args.export)
        doc["export"] = args.export
        lines.append(f"wrote {args.export}")
    emit(args, doc, "\n".join(lines))


def _emit_pim(args, df) -> None:
    """The PIM space's report: the front's knobs and values, fastest first."""

    a = df.attrs
    front = df[df["pareto"]].sort_values(["latency_ns", "energy_pj"])
    shown = [
        "mode", "tech", "rows", "cols", "adc_bits", "cell_bits", "dac_bits", "adc_share",
        "arrays_used", "latency_ns", "energy_pj", "area_mm2", "error",
    ]  # fmt: skip
    doc = {
        "network": a["network"],
        "space": "pim",
        "points": a["points"],
        "feasible": int(df["feasible"].sum()),
        "front_size": a["front"],
        "objectives": a["objectives"],
        "seconds": a["seconds"],
        "front": json.loads(front[shown].to_json(orient="records")),
    }
    lines = [
        f"{a['network']}: PIM space, {a['points']} points ({doc['feasible']} feasible: digital "
        "technology x array size, analog array size x ADC/cell/DAC bits x columns per ADC) in "
        f"{a['seconds']:.1f} s",
        f"Pareto front over {', '.join(a['objectives'])}: {a['front']} points "
        "(error: the analog crossbar's worst layer, relative RMS on seeded frames)",
        "",
        *_table(front[shown], args.top),
    ]
    ok = df[df["feasible"]]
    groups = [
        (f"{mode} {tech}", g["energy_pj"], g["latency_ns"])
        for (mode, tech), g in ok.groupby(["mode", "tech"])
    ]
    axes = ("energy per inference (pJ)", "latency per inference (ns)", True)
    _plot_export_emit(args, df, doc, lines, groups, axes)


def _emit_compress(args, df) -> None:
    """The compression space's report: every point, the best gains first."""
    import numpy as np

    a = df.attrs
    shown = ["plan", "nm", "step", "ii", "dsp", "lut", "bram", "gain", "error", "top1"]
    table = df.sort_values(["feasible", "gain"], ascending=[False, False])
    best = df[df["feasible"]].sort_values("gain", ascending=False).head(1)
    doc = {
        "network": a["network"],
        "space": "compress",
        "points": a["points"],
        "bound": a["bound"],
        "baseline": a["baseline"],
        "front_size": a["front"],
        "objectives": a["objectives"],
        "seconds": a["seconds"],
        "points_table": json.loads(table[[*shown, "feasible", "pareto"]].to_json(orient="records")),
    }
    lines = [
        f"{a['network']}: compression space, {a['points']} networks evaluated (greedy, "
        f"Mixed-TD style) in {a['seconds']:.1f} s; accuracy-proxy bound: relative output error "
        f"<= {a['bound']}",
    ]
    if len(best):
        b = best.iloc[0]
        lines.append(
            f"best within the bound: {b['plan'] or 'none'}{' + ' + b['nm'] if b['nm'] else ''}: "
            f"{b['gain']:.2f}x the uncompressed throughput per DSP (error {b['error']:.3f})"
        )
    lines += ["", *_table(table[shown], args.top, "points")]
    groups = [
        (label, g["error"], g["gain"])
        for label, g in df.assign(kind=np.where(df["nm"] == "", "dense", "N:M")).groupby("kind")
    ]
    axes = ("accuracy proxy (relative output error)", "throughput per DSP (x uncompressed)", False)
    _plot_export_emit(args, df, doc, lines, groups, axes)


def cmd_explore(args) -> None:
    from codesign.cli import emit

    from . import explore
    from .plot import front_figure

    _check_path("--plot", args.plot, (".svg",))
    _check_path("--export", args.export, (".parquet", ".csv"))
    df = explore(
        args.space,
        out=args.out,
        strategy=args.strategy,
        validate=args.validate,
        scheduler=args.scheduler,
        workers=args.workers,
        pim=args.pim,
        compress=args.compress,
        bound=args.bound,
    )
    a = df.attrs
    if a.get("space") == "deformable":
        return _emit_deform(args, df)
    if a.get("space") == "pim":
        return _emit_pim(args, df)
    if a.get("space") == "compress":
        return _emit_compress(args, df)
    front = df[df["pareto"]].sort_values(["throughput_fps", "id"], ascending=[False, True])
    knobs = [c for c in df.columns if c.startswith(("pe__", "simd__")) or c in ("pes", "tlns")]
    shown_cols = [c for c in SHOWN if c in df.columns]
    doc = {
        "network": a["network"],
        "space_hash": a["space_hash"],
        "store": a["store"],
        "strategy": a["strategy"],
        "points": a["points"],
        "evaluated": a["evaluated"],
        "stored": len(df),
        "feasible": int(df["feasible"].sum()),
        "front_size": a["front"],
        "objectives": a["objectives"],
        "seconds": a["seconds"],
        "front": json.loads(
            front[["id", "context", "clock_mhz", *knobs, *shown_cols]]
            .astype({"context": str})
            .to_json(orient="records")
        ),
    }
    lines = [
        f"{a['network']}: {a['points']:,} points in the space, {a['evaluated']:,} evaluated now "
        f"({len(df):,} stored, {doc['feasible']:,} feasible) by {a['strategy']} in "
        f"{a['seconds']:.1f} s",
        f"Pareto front over {', '.join(a['objectives'])}: {a['front']:,} points "
        f"(store {a['store']})",
    ]
    varying = [c for c in ("context", "clock_mhz") if df[c].nunique() > 1]
    lines += ["", *_table(front[["id", *varying, *knobs, *shown_cols]], args.top)]
    if "validation" in a:
        import pandas as pd

        v = pd.DataFrame(a["validation"])
        doc["validation"] = json.loads(v.to_json(orient="records"))
        lines += ["", "validation (model vs measured):"]
        lines += v.to_string(index=False, float_format=lambda x: f"{x:.4g}").splitlines()
    if args.plot:
        x = ("lut", "dsp") if "lut" in df.columns else ("tln_cells", "energy_nj")
        front_figure(df, x, path=args.plot)
        doc["plot"] = args.plot
        lines.append(f"wrote {args.plot}")
    if args.export:
        _export(df, args.export)
        doc["export"] = args.export
        lines.append(f"wrote {args.export}")
    emit(args, doc, "\n".join(lines))
