"""The report of a flow run: ``report.md`` with the network, the folding, the simulator's
prediction beside the cocotb measurement and the synthesis results, and its figures.

Everything here is byte-stable: the same inputs give the same ``report.md`` and the same SVG
figures (no timestamps, fixed SVG ids), so a rerun does not show up as a change.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

from codesign.models.fileio import atomic_write
from codesign.models.hwconfig import Design
from codesign.sim.results import STATES, SimResult

from .summary import summary_text

__all__ = [
    "STATE_COLOURS",
    "new_figure",
    "svg_bytes",
    "timeline_figure",
    "utilisation_figure",
    "write_report",
]

#: Colours of the timeline states (busy, starved, blocked), colour-blind safe.
STATE_COLOURS = {"busy": "#4477aa", "starved": "#ccbb44", "blocked": "#ee6677"}

#: Resource rows of the resources table: key in the result dicts, label.
RESOURCES = (("lut", "LUT"), ("ff", "FF"), ("dsp", "DSP"), ("bram", "BRAM"))

_RC = {
    "svg.hashsalt": "codesign",  # fixed ids for clip paths and glyphs: byte-stable SVG
    "svg.fonttype": "path",  # glyphs as paths: the SVG looks the same without the font
    "font.size": 9,
}


def new_figure(width: float, height: float):
    """A bare matplotlib Figure (constrained layout) of ``width`` × ``height`` inches."""
    # a bare Figure, not pyplot: no global state, no GUI backend, safe in threads and tests
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def svg_bytes(fig) -> bytes:
    """``fig`` as byte-stable SVG (fixed ids, no date, glyphs as paths)."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def timeline_figure(result: SimResult, path: str | Path) -> Path:
    """Write the busy/stall timeline of ``result`` as an SVG Gantt chart.

    Stages run down the y axis in pipeline order and cycles along the x axis; each interval
    of :attr:`SimResult.timeline` is a bar coloured by its state (:data:`STATE_COLOURS`).
    Dotted lines mark the end of each output frame within the timeline.

    Parameters
    ----------
    result
        A simulation result with a non-empty timeline.
    path
        The ``.svg`` file to write (atomically).

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    names = [s.name for s in result.stages]
    row = {n: i for i, n in enumerate(names)}
    end = max((t.end for t in result.timeline), default=1)
    with matplotlib.rc_context(_RC):
        fig = new_figure(8.0, 0.9 + 0.38 * len(names))
        ax = fig.add_subplot()
        for state in STATES:
            for name in names:
                spans = [
                    (t.start, t.end - t.start)
                    for t in result.timeline
                    if t.stage == name and t.state == state
                ]
                if spans:
                    ax.broken_barh(
                        spans, (row[name] - 0.4, 0.8), facecolors=STATE_COLOURS[state], lw=0
                    )
        for e in result.output_ends:
            if e <= end:
                ax.axvline(e, color="0.3", lw=0.6, ls=":")
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(len(names) - 0.5, -0.5)  # first stage on top
        ax.set_xlim(0, end)
        ax.set_xlabel("cycle (from the first input beat)")
        ax.set_title(
            f"{result.network}: stage activity, cycles 0–{end} (input rate "
            f"{result.input_rate:g}; dotted: end of an output frame)",
            loc="left",
        )
        handles = [matplotlib.patches.Patch(color=STATE_COLOURS[s], label=s) for s in STATES]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        data = svg_bytes(fig)
    return atomic_write(path, data)


def utilisation_figure(result: SimResult, path: str | Path) -> Path:
    """Write per-stage utilisation and ideal cycles per frame of ``result`` as an SVG.

    The left panel shows each stage's busy/starved/blocked share of the simulated cycles,
    stacked; the right panel each stage's closed-form cycles per frame, with the measured
    steady-state II as a line (the slowest stage sets it when nothing stalls).

    Parameters
    ----------
    result
        A simulation result.
    path
        The ``.svg`` file to write (atomically).

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    names = [s.name for s in result.stages]
    ys = range(len(names))
    with matplotlib.rc_context(_RC):
        fig = new_figure(8.0, 0.9 + 0.38 * len(names))
        ax, bx = fig.subplots(1, 2, sharey=True)
        left = [0.0] * len(names)
        for state in STATES:
            share = [
                100.0 * getattr(s, state) / result.cycles if result.cycles else 0.0
                for s in result.stages
            ]
            ax.barh(ys, share, left=left, color=STATE_COLOURS[state], label=state, height=0.7)
            left = [a + b for a, b in zip(left, share, strict=True)]
        ax.set_yticks(list(ys), names)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.set_xlim(0, 100)
        ax.set_xlabel("share of the simulated cycles (%)")
        ax.set_title(f"{result.network}: utilisation over {result.frames} frames", loc="left")
        fig.legend(loc="outside lower left", ncols=len(STATES), frameon=False)
        ideal = [s.ideal_cycles for s in result.stages]
        bx.barh(ys, ideal, color="0.55", height=0.7)
        bx.axvline(result.ii, color=STATE_COLOURS["blocked"], lw=1.2, label=f"II {result.ii:g}")
        bx.set_xlim(0, 1.1 * max(*ideal, result.ii))
        bx.set_xlabel("cycles per frame")
        bx.set_title("closed-form cycles per frame", loc="left")
        bx.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        data = svg_bytes(fig)
    return atomic_write(path, data)


# -- report.md -------------------------------------------------------------------------------


def _num(v) -> str:
    """An integer-valued number without a fraction, others with two decimals."""
    if v is None:
        return "—"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.2f}"
    return f"{int(v)}"


def _diff(predicted, measured) -> str:
    """``predicted - measured`` as a percentage of ``measured``."""
    if predicted is None or measured is None or measured == 0:
        return "—"
    return f"{100.0 * (predicted - measured) / measured:+.1f} %"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _folding(design: Design) -> str:
    rows = []
    for s in design.stages:
        cfg = design.config[s.name]
        rows.append(
            (
                s.name,
                s.kind.value,
                "+".join(la.name for la in s.layers),
                cfg.pe,
                cfg.simd,
                design.origin[s.name].folding,
                " / ".join(
                    str(design.fifo_depth(s, p))
                    for p in range(len(s.sources))
                    if design.has_fifo(s, p)
                )
                or "—",
                design.cycles(s),
            )
        )
    return (
        "## Folding\n\n"
        + _table(
            ("stage", "kind", "layers", "PE", "SIMD", "folding", "FIFO depth", "cycles/frame"),
            rows,
        )
        + f"\nIdeal II {design.ideal_ii} cycles/frame (the slowest stage) at "
        f"{design.config.clock_mhz:g} MHz. The FIFO depth is that of the FIFO in front of the "
        "stage, in beats (an add stage's two inputs: first / second). Folding: given by the "
        "hardware config, auto (balanced by codesign), or partly given.\n"
    )


def _simulation(r: SimResult, figures: Mapping[str, str]) -> str:
    rows = [
        (
            s.name,
            s.busy,
            s.starved,
            s.blocked,
            f"{100 * s.utilisation:.1f} %",
            _num(s.fifo_depth),
            _num(s.fifo_max),
            _num(s.fifo_full_cycles),
        )
        for s in r.stages
    ]
    text = (
        "## Simulation\n\n"
        f"Cycle-approximate simulation of {r.frames} frames at input rate {r.input_rate:g} "
        f"(beats offered per cycle): latency {r.latency} cycles to the first output beat, "
        f"{r.latency_last} to the last beat of frame 0; II {_num(r.ii)} cycles/frame "
        f"(ideal {r.ideal_ii}); {r.cycles} cycles in all; at {r.clock_mhz:g} MHz a latency "
        f"of {r.latency_ns:,.1f} ns and {r.frames_per_s:,.0f} frames/s.\n\n"
        + _table(
            (
                "stage",
                "busy",
                "starved",
                "blocked",
                "utilisation",
                "FIFO depth",
                "FIFO max",
                "FIFO full cycles",
            ),
            rows,
        )
    )
    for label, name in figures.items():
        text += f"\n![{label}]({name})\n"
    return text


def _comparison(r: SimResult, v: Mapping | None) -> str:
    head = "## Predicted vs measured\n\n"
    if v is None:
        return head + "Hardware verification was skipped, so there is nothing to compare.\n"
    sim = v.get("sim", "RTL")
    rows = [
        ("latency (cycles)", r.latency, v.get("latency"), _diff(r.latency, v.get("latency"))),
        ("II (cycles/frame)", _num(r.ii), _num(v.get("ii")), _diff(r.ii, v.get("ii"))),
    ]
    mism = v.get("mismatches")
    verdict = (
        f"**{mism} mismatches**"
        if mism is None or mism
        else "**0 mismatches** against the golden model"
    )
    text = (
        head
        + _table(("", "simulator", f"cocotb on {sim}", "predicted − measured"), rows)
        + f"\nThe difference is a percentage of the measurement. cocotb on {sim}: "
        f"{v.get('frames', '?')} frames with random back-pressure, {verdict}"
    )
    if mism:
        text += (
            f"; first differing stage {v.get('first_bad_stage')!r} "
            f"(layer {v.get('first_bad_layer')!r})"
        )
    text += ".\n"
    if v.get("verilog"):
        text += f"\nVerilog: `{v['verilog']}`.\n"
    return text


def _resources(
    design: Design, synth: Mapping | None, cost: Mapping | None, target: str | None
) -> str:
    head = "## Resources\n\n"
    if synth is None and cost is None:
        return head + "Synthesis was skipped.\n"
    tool = f"yosys ({synth.get('target', target)})" if synth is not None else "yosys"
    synth_total = _totals(synth)
    cost_total = _totals(cost)
    rows = []
    for key, label in RESOURCES:
        p, m = cost_total.get(key), synth_total.get(key)
        rows.append((label, _num(p), _num(m), _diff(p, m)))
    fmax = synth_total.get("fmax_mhz") if synth is not None else None
    pf = cost_total.get("fmax_mhz")
    rows.append(("Fmax (MHz)", _num(pf), _num(fmax), _diff(pf, fmax)))
    text = head + _table(("resource", "cost model", tool, "predicted − measured"), rows)
    clock = design.config.clock_mhz
    if synth is None:
        text += "\nSynthesis was skipped; the cost model's estimate only.\n"
    else:
        if synth.get("measured"):
            text += f"\nMeasured by {synth['measured']}"
            text += f" for {synth['device']}.\n" if synth.get("device") else ".\n"
        if fmax is not None:
            text += "\n" + _timing(synth, clock)
        elif synth.get("fmax_reason"):
            text += f"\nNo Fmax: {synth['fmax_reason']}.\n"
    blocks = synth.get("blocks") if synth is not None else None
    if blocks:
        keys = [k for k, _ in RESOURCES if any(k in b for b in blocks)]
        text += "\nPer block (yosys):\n\n" + _table(
            ("block", *[dict(RESOURCES)[k] for k in keys]),
            [(b.get("block", b.get("name", "?")), *[_num(b.get(k)) for k in keys]) for b in blocks],
        )
    return text


def _timing(synth: Mapping, clock: float) -> str:
    """The clock-target verdict and the critical path of each speed grade placed and routed."""
    from .synth import clock_verdict

    lines = []
    for t in synth.get("timing") or [synth]:
        verdict = clock_verdict({**t, "clock_mhz": clock})
        if verdict is None:
            continue
        if t["fmax_mhz"] < clock:
            verdict = f"**{verdict}**"
        lines.append(f"- The design {verdict} (nextpnr).")
        cp = t.get("critical_path")
        if cp:
            lines.append(
                f"  Critical path {cp['from']} → {cp['to']}: {cp['delay_ns']:.2f} ns, "
                f"{cp['logic_ns']:.2f} ns in logic and {cp['routing_ns']:.2f} ns in routing, "
                f"{cp['logic_levels']} logic levels, from `{cp['from_cell']}` to "
                f"`{cp['to_cell']}`."
            )
    return "\n".join(lines) + "\n"


def _real_time(r: SimResult, synth: Mapping | None) -> str:
    """Latency and throughput in real units at the clock target and at the achieved Fmax."""
    rows = []
    clocks = [("clock target", r.clock_mhz)]
    for t in (synth.get("timing") or [synth]) if synth is not None else ():
        if t.get("fmax_mhz") is not None:
            grade = f" (speed {t['speed']})" if t.get("speed") is not None else ""
            clocks.append((f"achieved Fmax{grade}", t["fmax_mhz"]))
    for label, mhz in clocks:
        at = r.at(mhz)
        rows.append(
            (
                label,
                f"{mhz:g}",
                f"{at.latency_ns:,.1f}",
                f"{at.latency_last_ns:,.1f}",
                f"{at.frames_per_s:,.0f}",
            )
        )
    return (
        "## Latency and throughput\n\n"
        f"The simulator's latency ({r.latency} cycles to the first output beat, "
        f"{r.latency_last} to the last beat of frame 0) and II ({_num(r.ii)} cycles/frame) "
        "in real units:\n\n"
        + _table(
            ("clock", "MHz", "latency (ns)", "latency to the last beat (ns)", "frames/s"), rows
        )
    )


def _totals(doc: Mapping | None) -> dict:
    """The resource totals of a synthesis or cost-model result (flat, or under ``total``)."""
    if doc is None:
        return {}
    flat = {k: doc[k] for k in (*dict(RESOURCES), "fmax_mhz") if k in doc}
    nested = doc.get("total") or doc.get("totals") or {}
    return {**flat, **{k: v for k, v in nested.items() if k not in flat}}


def write_report(
    out_dir: str | Path,
    *,
    summary: Mapping,
    design: Design,
    sim_result: SimResult,
    verify_result: Mapping | None = None,
    synth_result: Mapping | None = None,
    cost_result: Mapping | None = None,
    golden: Mapping | None = None,
    target: str | None = None,
) -> Path:
    """Write ``report.md`` and its figures (``timeline.svg``, ``utilisation.svg``) in
    ``out_dir``; the same arguments give the same bytes.

    Parameters
    ----------
    out_dir
        The report's folder (``build/<net>`` in ``codesign run``); created if missing.
    summary
        :func:`codesign.summary.summary` of the network.
    design
        The design that was simulated, generated and synthesised.
    sim_result
        The simulator's prediction for ``design``.
    verify_result
        :func:`codesign.verify`'s result (``latency``, ``ii``, ``mismatches``, ``sim``,
        ``frames``...), or None when the hardware was not verified.
    synth_result
        :func:`codesign.synthesize`'s result (``lut``, ``ff``, ``dsp``, ``bram``,
        ``fmax_mhz`` or ``fmax_reason``, ``target``, ``device``, ``measured``; per-block
        rows under ``blocks``, each named by ``block``), or None when synthesis was skipped.
    cost_result
        The cost model's estimate, with the same keys as ``synth_result``, or None.
    golden
        The golden-model run: ``vectors``, ``seed``, ``output_sha256``; or None.
    target
        The synthesis target (``ecp5``...), when ``synth_result`` does not name it.

    Returns
    -------
    Path
        The path of ``report.md``.
    """
    out_dir = Path(out_dir)
    figures = {}
    if sim_result.timeline:
        timeline_figure(sim_result, out_dir / "timeline.svg")
        figures["busy/stall timeline"] = "timeline.svg"
    utilisation_figure(sim_result, out_dir / "utilisation.svg")
    figures["utilisation and cycles per frame"] = "utilisation.svg"
    parts = [f"# {summary['name']}\n\n```\n{summary_text(summary)}\n```\n"]
    if golden is not None:
        parts.append(
            f"\nGolden model: {golden['vectors']} random vectors (seed {golden['seed']}), "
            f"outputs sha256 `{golden['output_sha256']}`.\n"
        )
    parts += [
        "\n" + _folding(design),
        "\n" + _simulation(sim_result, figures),
        "\n" + _comparison(sim_result, verify_result),
        "\n" + _resources(design, synth_result, cost_result, target),
        "\n" + _real_time(sim_result, synth_result),
    ]
    return atomic_write(out_dir / "report.md", "".join(parts))
