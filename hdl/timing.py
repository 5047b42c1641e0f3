"""The critical path of a nextpnr timing report (``--report``): where it starts and ends, and
how its delay splits into logic and routing.

nextpnr's JSON report lists, under ``critical_paths``, the worst path of each clock pair:
``from``/``to`` name the launching and capturing clock edges (``posedge clk``), and ``path``
is its segments in order, each with a ``type`` (``clk-to-q``, ``source``, ``logic``,
``routing``, ``setup``), the ``from``/``to`` ends (``cell``, ``port``, ``loc``), the ``net``
of a routing segment and its ``delay`` in ns. The cells are named by their instance path in
the flattened netlist (``core.stage_fc3.u0_mvau.acc_TRELLIS_FF_Q_3``).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["CELL_DELAY", "critical_path"]

#: Segment types that are delay through a cell (the rest, ``routing``, is delay in wires).
CELL_DELAY = ("clk-to-q", "source", "logic", "setup")


def _edge_clock(edge: str) -> str:
    """``posedge clk`` → ``clk``."""
    return edge.split()[-1] if edge else edge


def critical_path(report: Mapping) -> dict | None:
    """The critical path of a nextpnr JSON report: of the report's ``critical_paths``, the
    one of the slowest clock (least achieved Fmax in ``fmax``) that starts and ends on that
    clock, else the longest.

    Returns
    -------
    dict or None
        None when the report lists no path. Otherwise ``clock`` (the clock's name),
        ``from_cell`` and ``to_cell`` (the first segment's source cell, where the path
        starts, and the last segment's sink cell, where it ends), ``from_port`` and
        ``to_port``, ``delay_ns`` (the path's total), ``logic_ns`` (delay through cells:
        clock-to-output, logic, setup) and ``routing_ns`` (delay in wires), each rounded to
        a picosecond, ``logic_levels`` (the ``logic`` segments: cells between the two
        registers, each cell of a carry chain counted) and ``segments`` (their number).

    Raises
    ------
    ValueError
        When a path in the report has no segments or a segment lacks a field named above
        (the report is not nextpnr's).
    """
    paths = list(report.get("critical_paths") or ())
    if not paths:
        return None
    fmax = report.get("fmax") or {}
    chosen = None
    if fmax:
        slowest = min(fmax, key=lambda c: fmax[c]["achieved"])
        same = [
            p
            for p in paths
            if _edge_clock(p.get("from", "")) == slowest == _edge_clock(p.get("to", ""))
        ]
        if same:
            chosen = same[0]
    if chosen is None:
        chosen = max(paths, key=lambda p: sum(s.get("delay", 0.0) for s in p.get("path", ())))
    segments = chosen.get("path") or []
    if not segments:
        raise ValueError("nextpnr report: a critical path must have segments, not none")
    try:
        total = sum(float(s["delay"]) for s in segments)
        routing = sum(float(s["delay"]) for s in segments if s["type"] == "routing")
        first, last = segments[0]["from"], segments[-1]["to"]
        doc = {
            "clock": _edge_clock(chosen.get("from", "")),
            "from_cell": str(first["cell"]),
            "from_port": str(first["port"]),
            "to_cell": str(last["cell"]),
            "to_port": str(last["port"]),
            "delay_ns": round(total, 3),
            "logic_ns": round(total - routing, 3),
            "routing_ns": round(routing, 3),
            "logic_levels": sum(1 for s in segments if s["type"] == "logic"),
            "segments": len(segments),
        }
    except (KeyError, TypeError) as e:
        raise ValueError(f"nextpnr report: a critical-path segment lacks {e}") from None
    return doc
