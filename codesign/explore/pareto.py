"""Exact Pareto fronts and hypervolume (moocore's non-dominated filter and hypervolume).

A point is on the front when no other point dominates it: at least as good in every
objective and better in one. Points with equal objectives do not dominate each other, so
all of them stay (two foldings with the same cost and speed are both answers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .space import OBJECTIVES

__all__ = ["hypervolume", "minimization", "pareto_mask", "pareto_mask_brute"]


def minimization(values: Mapping[str, np.ndarray], objectives: Sequence[str]) -> np.ndarray:
    """The (N, M) matrix of ``objectives`` (names of :data:`~codesign.explore.space.OBJECTIVES`)
    from columns ``values``, every objective turned into one to minimise (maximised ones
    negated)."""
    cols = []
    for name in objectives:
        o = OBJECTIVES[name]
        v = np.asarray(values[o.column], dtype=np.float64)
        cols.append(-v if o.maximize else v)
    return np.stack(cols, axis=1) if cols else np.zeros((0, 0))


def pareto_mask(f: np.ndarray) -> np.ndarray:
    """Which rows of ``f`` (N, M; minimised) no other row dominates, exactly
    (moocore's ``is_nondominated``: O(n log n) for M ≤ 3, O(n log^(M-2) n) above)."""
    import moocore

    f = np.asarray(f, dtype=np.float64)
    if len(f) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(moocore.is_nondominated(f, keep_weakly=True), dtype=bool)


def pareto_mask_brute(f: np.ndarray) -> np.ndarray:
    """:func:`pareto_mask` by definition, O(N²): the reference of its test."""
    f = np.asarray(f, dtype=np.float64)
    keep = np.ones(len(f), dtype=bool)
    for i in range(len(f)):
        dominated = np.all(f <= f[i], axis=1) & np.any(f < f[i], axis=1)
        keep[i] = not dominated.any()
    return keep


def hypervolume(f: np.ndarray, ideal: np.ndarray, nadir: np.ndarray) -> float:
    """Hypervolume of the points ``f`` (minimised), each objective normalised to [0, 1]
    between ``ideal`` and ``nadir``, against the reference point 1.1 in every objective
    (points beyond it contribute nothing). Comparable between strategies only under the
    same ``ideal`` and ``nadir``."""
    import moocore

    f = np.asarray(f, dtype=np.float64)
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    g = (f - ideal) / span
    g = g[np.all(g < 1.1, axis=1)]
    if len(g) == 0:
        return 0.0
    g = g[pareto_mask(g)]
    return float(moocore.hypervolume(g, ref=np.full(f.shape[1], 1.1)))
