"""The cost model over many foldings at once: :func:`estimate_batch`.

:func:`codesign.sim.cost.estimate` predicts one design block by block; every block depends
on few stages' foldings: a stage's own block (its units and credit queue) and the FIFO in
front of it on that stage alone, a width converter on its stage and the producer, a fork on
the producer, the top level on the last stage. So the block totals are computed once per
distinct folding of those stages (a few dozen per stage) and gathered for N design points:
point by point the totals equal :func:`~codesign.sim.cost.estimate` of
:meth:`Design.with_folding <codesign.models.hwconfig.Design.with_folding>`, rounding
included (each block is rounded before the sum, as ``estimate`` reports it).

The one block that depends on more: the FIFO of an add stage's input, whose automatic depth
is at least the deadlock-free bound of the paths from the fork
(:func:`codesign.models.joins.join_bound`). It is computed per distinct folding of the
whole pipeline (a full :class:`~codesign.models.hwconfig.Design` each, about a millisecond):
fast for a sampled search, slow for an exhaustive sweep of a residual network.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
from codesign.models.hwconfig import (
    Design,
    StageKind,
    fifo_depth,
    port_width,
    readers,
    stage_io,
)
from codesign.models.joins import link_stages
from codesign.models.plan import MATRIX

from .cost import (
    block_totals,
    coefficients,
    element_bits,
    fork_unit,
    input_units,
    stage_units,
    top_unit,
)
from .fmax import fold_columns

__all__ = ["CLASSES", "estimate_batch"]

#: The totals :func:`estimate_batch` returns, as :func:`~codesign.sim.cost.estimate` names them.
CLASSES = ("lut", "ff", "dsp", "bram", "lutram")

#: Per design and coefficient set: block totals already computed, by what they depend on.
_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _sum(us, coef) -> np.ndarray:
    blocks = block_totals(us, coef).values()
    return np.array([sum(b[k] for b in blocks) for k in CLASSES], dtype=np.int64)


def _gather(key: np.ndarray, known: dict, make) -> np.ndarray:
    """(N, 5) totals: ``make(u)`` for each distinct small integer ``u`` of ``key``
    (memoised in ``known``), gathered point by point."""
    present = np.flatnonzero(np.bincount(key))
    table = np.zeros((int(present[-1]) + 1, len(CLASSES)), dtype=np.int64)
    for u in present.tolist():
        if u not in known:
            known[u] = make(u)
        table[u] = known[u]
    return table[key]


def estimate_batch(
    design: Design, pe, simd, target: str = "ecp5", data: str | Path | None = None
) -> dict[str, np.ndarray]:
    """Predicted resource totals of N foldings of ``design``'s network, vectorised.

    Parameters
    ----------
    design
        Any design of the network: the memory styles, FIFO depths and pipeline mode its
        config gives are kept (an automatic memory style resolves at each folding, as in a
        :class:`~codesign.models.hwconfig.Design`); only PE and SIMD vary.
    pe, simd
        Integer arrays of shape (N, S), one column per stage of ``design.stages``, or
        mappings of stage name → N values (see :func:`codesign.sim.fmax.fold_columns`);
        every value one of the stage's valid choices.
    target, data
        As :func:`~codesign.sim.cost.estimate`.

    Returns
    -------
    dict
        ``lut``, ``ff``, ``dsp``, ``bram``, ``lutram``: integer arrays of N values, each
        equal to :func:`~codesign.sim.cost.estimate`'s total for that folding.
    """
    coef = coefficients(target, data)
    pe, simd = fold_columns(design, pe, "pe"), fold_columns(design, simd, "simd")
    n = pe.shape[0]
    stages = design.stages
    index = {s.name: k for k, s in enumerate(stages)}
    memo = _TABLES.setdefault(design, {}).setdefault(id(coef), {})
    mode = design.config.pipeline
    matrix = [s.kind in MATRIX and not s.depthwise for s in stages]
    # elements per beat at each stage's input and output, per point
    n_in = np.stack([simd[:, k] if m else pe[:, k] for k, m in enumerate(matrix)], axis=1)
    n_out = pe
    # keys of the memo tables: value * width + value, one width per design (not per call)
    width = 1 + max(max(s.pe_choices()[-1], s.simd_choices()[-1]) for s in stages)
    if pe.size and int(max(pe.max(), simd.max())) >= width:
        raise ValueError(f"pe and simd must be valid choices of {design.network.name}'s stages")
    total = np.zeros((n, len(CLASSES)), dtype=np.int64)
    first = readers(stages)[None][0][0]

    def in_width(k: int, port: int) -> np.ndarray:
        src = stages[k].sources[port]
        return n_in[:, index[first]] if src is None else n_out[:, index[src]]

    joins = []
    for k, s in enumerate(stages):
        given = design.given[s.name]

        def own(u: int, k=k, s=s, given=given) -> np.ndarray:
            p, q = divmod(u, width)
            cfg = design.point_config(s, p, q if matrix[k] else None)
            us = stage_units(s, cfg, mode)
            if design.has_fifo(s, 0) and s.kind is not StageKind.ADD:
                n0 = stage_io(s, cfg)[0]
                us += input_units(s, 0, n0, n0, fifo_depth(s, cfg, 0))
            if s.kind is StageKind.DEFORM and design.has_fifo(s, 1):
                # the offsets' FIFO: a pixel's offsets a beat, whatever the folding
                n1 = port_width(s, cfg, 1)
                us += input_units(s, 1, n1, n1, fifo_depth(s, cfg, 1))
            return _sum(us, coef)

        key = pe[:, k] * width + (simd[:, k] if matrix[k] else 0)
        total += _gather(key, memo.setdefault(("own", k), {}), own)
        for port in range(len(s.inputs)):
            prev = in_width(k, port)

            def link(u: int, k=k, s=s, port=port) -> np.ndarray:
                a, b = divmod(u, width)
                return _sum(input_units(s, port, a, b, None), coef)

            # a deformable stage's offsets (port 1) arrive a pixel's offsets a beat
            to = n_in[:, k]
            if port and s.kind is StageKind.DEFORM:
                to = np.full(n, port_width(s, design.config[s.name], 1))
            total += _gather(prev * width + to, memo.setdefault(("dwc", k, port), {}), link)
            if s.kind is StageKind.ADD and design.has_fifo(s, port):
                joins.append((k, port))
    for src, rs in readers(stages).items():
        if len(rs) < 2:
            continue
        k0, p0 = index[rs[0][0]], rs[0][1]
        bits = element_bits(stages[k0].inputs[p0].qtype)
        count = len(rs) - 1

        def fork(u: int, src=src, bits=bits, count=count) -> np.ndarray:
            return _sum([fork_unit(src, j, u * bits) for j in range(count)], coef)

        total += _gather(in_width(k0, p0), memo.setdefault(("fork", src), {}), fork)
    last = stages[-1]
    total += _gather(
        n_out[:, -1], memo.setdefault(("top",), {}), lambda u: _sum([top_unit(last, u)], coef)
    )
    for k, port in joins:  # an add's FIFO: per distinct folding of the stages its depth reads
        s = stages[k]
        deps = link_stages(design, s, port)
        cols = np.concatenate([pe[:, deps], simd[:, deps]], axis=1)
        rows, inverse = np.unique(cols, axis=0, return_inverse=True)
        known = memo.setdefault(("join", k, port), {})
        extra = np.empty((len(rows), len(CLASSES)), dtype=np.int64)
        for i, row in enumerate(rows.tolist()):
            key = tuple(row)
            if key not in known:
                p_ = {stages[j].name: v for j, v in zip(deps, row[: len(deps)], strict=True)}
                q_ = {stages[j].name: v for j, v in zip(deps, row[len(deps) :], strict=True)}
                d = design.refold(p_, q_)
                n0 = stage_io(s, d.config[s.name])[0]
                known[key] = _sum(input_units(s, port, n0, n0, d.fifo_depth(s, port)), coef)
            extra[i] = known[key]
        total += extra[inverse.reshape(-1)]
    return {c: total[:, i] for i, c in enumerate(CLASSES)}
