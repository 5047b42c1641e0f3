"""Exploring the TULIP array of a binary network: its size (PEs × threshold-logic cells per
PE) against cycles and energy.

A space with a ``tulip`` field (``tulip: {pes: [4, 8, 16, 32], tlns: [2, 4, 8]}``)
explores the binary family's array instead of a dataflow folding: each point is mapped by
the TULIP scheduler (:func:`codesign.models.binary.tulip.map_network`), timed
(:func:`codesign.sim.binary.tulip.timing`) and costed (:func:`codesign.sim.binary.energy.
energy_table`), exactly as ``codesign bnn --pes P --tlns T`` reports it. The space is small
(tens of points) and each point a schedule, so the points are evaluated one by one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TULIP_COLUMNS", "TULIP_KNOBS", "evaluate_tulip"]

#: The value columns of a TULIP point.
TULIP_COLUMNS = (
    "ii",
    "latency_cycles",
    "throughput_fps",
    "latency_ns",
    "energy_nj",
    "tln_cells",
)
#: Its knob columns.
TULIP_KNOBS = ("pes", "tlns")


def evaluate_tulip(space) -> dict[str, np.ndarray]:
    """Every point of a TULIP space: ``id``, ``context`` (0), ``clock_mhz``, the knobs,
    :data:`TULIP_COLUMNS` and ``feasible`` (at least the space's minimum throughput), ids
    numbered ``(clock * len(pes) + pes index) * len(tlns) + tlns index``."""
    from codesign.models.binary.tulip import TulipArray, map_network
    from codesign.sim.binary.energy import energy_table
    from codesign.sim.binary.tulip import timing

    t = space.tulip
    rows: dict[str, list] = {k: [] for k in ("id", "clock_mhz", *TULIP_KNOBS, *TULIP_COLUMNS)}
    net = space.net
    cache = {}
    i = 0
    for clock in space.clocks:
        for pes in t.pes:
            for tlns in t.tlns:
                if (pes, tlns) not in cache:
                    program = map_network(net, TulipArray(pes=pes, tlns=tlns))
                    tm = timing(program, t.in_width)
                    cache[pes, tlns] = (tm.ii, tm.latency, energy_table(program)["tulip_pj"])
                ii, latency, pj = cache[pes, tlns]
                for k, v in (
                    ("id", i),
                    ("clock_mhz", clock),
                    ("pes", pes),
                    ("tlns", tlns),
                    ("ii", ii),
                    ("latency_cycles", latency),
                    ("throughput_fps", clock * 1e6 / ii),
                    ("latency_ns", latency * 1e3 / clock),
                    ("energy_nj", pj / 1e3),
                    ("tln_cells", pes * tlns),
                ):
                    rows[k].append(v)
                i += 1
    out = {k: np.asarray(v) for k, v in rows.items()}
    out["context"] = np.zeros(i, dtype=np.int64)
    out["feasible"] = out["throughput_fps"] >= space.min_throughput
    return out
