"""Searching a space: exhaustive sweeps, NSGA-II (pymoo) and FINN-style greedy folding.

Every strategy evaluates points through the store (:class:`~codesign.explore.store.Store`):
a point already stored is read back, never evaluated again, and new points are written in
one transaction per chunk or generation, so any sweep resumes after a kill.

Why pymoo's NSGA-II rather than optuna's multi-objective samplers: the evaluator is
vectorised, so the search must hand it a whole population at once. pymoo's problems are
evaluated a population per call (``elementwise=False``) and its integer operators work on
the folding indices directly; optuna asks for one trial at a time through Python
callbacks, which would cost more than the evaluation itself at a few microseconds a point.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from .evaluate import Evaluator
from .pareto import minimization
from .store import Store

__all__ = ["exhaustive", "greedy", "nsga2", "point_rows"]


def point_rows(ev: Evaluator, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Everything the store keeps of points ``ids``: the values, the knobs, the context."""
    ids = np.asarray(ids, dtype=np.int64)
    rows = ev.evaluate(ids)
    ctx, _, folding = ev.split(ids)
    pe, simd = ev.folding(ev.digits(folding))
    for k, s in enumerate(ev.stages):
        rows[f"pe__{s}"] = pe[:, k]
        rows[f"simd__{s}"] = simd[:, k]
    rows["context"] = ctx
    rows["id"] = ids
    return rows


def _bar(total: int, progress: bool, what: str, unit: str = "pt"):
    from tqdm import tqdm

    return tqdm(total=total, disable=not progress, delay=1.0, file=sys.stderr, unit=unit, desc=what)


def exhaustive(
    ev: Evaluator, store: Store, *, progress: bool = True, chunk: int | None = None
) -> int:
    """Every point of the space, ``chunk`` ids a transaction, skipping the chunks a
    previous run committed. Returns the number of points evaluated by this call."""
    total = ev.space.size
    chunk = chunk or ev.space.chunk
    n_chunks = math.ceil(total / chunk)
    done = store.done_chunks()
    evaluated = 0
    with _bar(total, progress, "explore") as bar:
        bar.update(sum(min(chunk, total - c * chunk) for c in done))
        for c in range(n_chunks):
            if c in done:
                continue
            ids = np.arange(c * chunk, min((c + 1) * chunk, total), dtype=np.int64)
            store.add_chunk(c, point_rows(ev, ids))
            evaluated += len(ids)
            bar.update(len(ids))
    return evaluated


class _Cache:
    """Values of points by id: from the store when stored, else evaluated and stored."""

    def __init__(self, ev: Evaluator, store: Store) -> None:
        self.ev, self.store = ev, store
        self.evaluated = 0

    def values(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        known = self.store.known(ids)
        new = ids[~known]
        if len(new):
            self.store.add(point_rows(self.ev, new))
            self.evaluated += len(new)
        return self.store.values(ids)


def nsga2(
    ev: Evaluator,
    store: Store,
    *,
    progress: bool = True,
    generations: int | None = None,
    population: int | None = None,
    seed: int | None = None,
) -> int:
    """pymoo's NSGA-II over the per-stage folding digits (and the context and clock), the
    space's objectives minimised, its constraints as pymoo constraints. Deterministic for
    a seed; a rerun after a kill replays the same generations and reads the points it had
    stored. Returns the number of points evaluated by this call."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize

    space = ev.space
    groups = len(space.contexts) * len(space.clocks)
    upper = np.concatenate([ev.radix - 1, [groups - 1]]).astype(float)
    cache = _Cache(ev, store)
    generations = generations or space.generations
    bar = _bar(generations, progress, "nsga2", unit="gen")

    def to_ids(x: np.ndarray) -> np.ndarray:
        x = np.rint(x).astype(np.int64)
        return x[:, -1] * ev.foldings + ev.number(x[:, :-1])

    class _Problem(Problem):
        def __init__(self) -> None:
            super().__init__(
                n_var=len(upper),
                n_obj=len(space.objectives),
                n_ieq_constr=1,
                xl=np.zeros(len(upper)),
                xu=upper,
                vtype=int,
            )

        def _evaluate(self, x, out, *args, **kwargs):
            ids = to_ids(x)
            vals = cache.values(ids)
            order = np.searchsorted(vals["id"], ids)
            f = minimization(vals, space.objectives)[order]
            out["F"] = f
            out["G"] = np.where(vals["feasible"][order], -1.0, 1.0)
            bar.update(1)

    algorithm = NSGA2(
        pop_size=population or space.population,
        sampling=IntegerRandomSampling(),
        crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
        mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
        eliminate_duplicates=True,
    )
    with bar:
        minimize(
            _Problem(),
            algorithm,
            ("n_gen", generations),
            seed=space.seed if seed is None else seed,
            verbose=False,
        )
    return cache.evaluated


def finn_folding(stage, target: int) -> tuple[int, int]:
    """FINN's ``SetFolding`` for one stage: raise SIMD through its valid values first, then
    PE, until the stage's cycles per frame are at most ``target`` (the largest folding when
    none is)."""
    from codesign.models.hwconfig import StageConfig, stage_cycles
    from codesign.models.plan import MATRIX

    matrix = stage.kind in MATRIX and not stage.depthwise
    simds = stage.simd_choices() if matrix else [1]
    order = [(1, q) for q in simds] + [(p, simds[-1]) for p in stage.pe_choices()[1:]]
    for p, q in order:
        if stage_cycles(stage, StageConfig(pe=p, simd=q)) <= target:
            return p, q
    return order[-1]


def greedy(
    ev: Evaluator, store: Store, *, progress: bool = True, targets: int = 64
) -> tuple[int, np.ndarray]:
    """The FINN-style baseline: for ``targets`` cycles-per-frame targets spaced
    geometrically from the slowest folding's II down to 1, every stage folded by
    :func:`finn_folding` (restricted to the space's values: the next valid value at or
    above), in every context and clock. Returns (points evaluated, the ids it chose)."""
    from codesign.models.hwconfig import StageConfig, stage_cycles

    space = ev.space
    design = ev.design(space.contexts[0])
    stages = [design.stage(s) for s in ev.stages]
    slowest = max(
        stage_cycles(s, StageConfig(pe=space.pe[s.name][0], simd=space.simd[s.name][0]))
        for s in stages
    )
    chosen = set()
    for t in np.unique(np.geomspace(slowest, 1, targets).astype(np.int64)):
        digits = []
        for s in stages:
            p, q = finn_folding(s, int(t))
            pes, simds = space.pe[s.name], space.simd[s.name]
            i = min(np.searchsorted(pes, p), len(pes) - 1)
            j = min(np.searchsorted(simds, q), len(simds) - 1)
            digits.append(i * len(simds) + j)
        chosen.add(int(ev.number(np.array([digits]))[0]))
    groups = len(space.contexts) * len(space.clocks)
    folds = np.array(sorted(chosen), dtype=np.int64)
    ids = (np.arange(groups)[:, None] * ev.foldings + folds[None, :]).reshape(-1)
    cache = _Cache(ev, store)
    cache.values(ids)
    return cache.evaluated, ids
