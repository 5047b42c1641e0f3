"""The fast tier: every objective of N design points at once, as numpy arrays.

A point is a folding (PE and SIMD per stage) of one context's base design
(:meth:`Space.base_design <codesign.explore.space.Space.base_design>`) at one clock target.
Its values come from the same functions as one design's, vectorised and equal to them point
by point (tests/codesign/test_explore.py):

- ``ii`` (cycles per frame): :func:`codesign.sim.dataflow.analytic.analytic`, the ideal II
  that :func:`codesign.simulate` reports; ``latency_cycles`` its closed-form latency (the
  event simulator measures the exact one; ``--validate`` reports the difference);
- ``lut``, ``ff``, ``dsp``, ``bram``, ``lutram``: :func:`codesign.sim.batch.estimate_batch`,
  equal to :func:`codesign.sim.cost.estimate`;
- ``fmax_mhz``: :func:`codesign.sim.fmax.predict_fmax_batch`;
- ``energy_nj`` per inference (ASIC view, at the clock target):
  :func:`codesign.sim.energy.dataflow_energy_batch`;
- ``throughput_fps`` at the clock target or the predicted Fmax, whichever is lower, and
  ``latency_ns`` at that clock.

Points are numbered: a folding's number is mixed-radix over the stages (stage ``k``'s digit
``pe_index * len(simd_k) + simd_index``), and a point's id is
``(context * clocks + clock) * foldings + folding``, so a sweep is a range of ids and a
resumed sweep knows exactly which points it has.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .space import Context, Space

__all__ = ["COLUMNS", "Evaluator", "model_version"]

#: The value columns of an evaluated point, in the store's order.
COLUMNS = (
    "ii",
    "latency_cycles",
    "throughput_fps",
    "latency_ns",
    "lut",
    "ff",
    "dsp",
    "bram",
    "lutram",
    "fmax_mhz",
    "energy_nj",
)


#: What the fast tier's values are computed from, besides the network: the fitted tables and
#: the code that reads them (and the models/ facts under it).
_MODEL_FILES = (
    "sim/cost_data.json",
    "sim/fmax_data.json",
    "sim/energy.csv",
    "sim/batch.py",
    "sim/cost.py",
    "sim/cost_rules.py",
    "sim/fmax.py",
    "sim/energy.py",
    "sim/dataflow/analytic.py",
    "models/hwconfig.py",
    "models/pipelining.py",
    "models/plan.py",
    "models/device.py",
    "models/linebuffer.py",
    "models/joins.py",
    "codesign/explore/evaluate.py",
)


def model_version() -> str:
    """A hash of the fitted model data and the code that evaluates points: a store written
    by another version of either is not resumed (its values could differ)."""
    import codesign.models as models
    import codesign.sim as sim

    roots = {"sim": Path(sim.__file__).parent, "models": Path(models.__file__).parent}
    roots["codesign"] = Path(__file__).parent.parent
    h = hashlib.sha256()
    for name in _MODEL_FILES:
        top, _, rest = name.partition("/")
        p = roots[top] / rest
        h.update(name.encode())
        h.update(p.read_bytes() if p.exists() else b"")
    return h.hexdigest()[:16]


class Evaluator:
    """Evaluates points of one :class:`Space` (all its contexts and clocks)."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.stages = space.stages
        self.radix = np.array(
            [len(space.pe[s]) * len(space.simd[s]) for s in self.stages], dtype=np.int64
        )
        self.foldings = space.foldings
        self._pe = [np.asarray(space.pe[s], dtype=np.int64) for s in self.stages]
        self._simd = [np.asarray(space.simd[s], dtype=np.int64) for s in self.stages]
        self._designs: dict[tuple, object] = {}

    def design(self, ctx: Context, clock_mhz: float | None = None):
        """The context's base design at a clock target (default the first; built once)."""
        clock = self.space.clocks[0] if clock_mhz is None else clock_mhz
        if (ctx, clock) not in self._designs:
            self._designs[ctx, clock] = self.space.base_design(ctx, clock)
        return self._designs[ctx, clock]

    # -- numbering ---------------------------------------------------------------------------

    def split(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Point ids → (context index, clock index, folding number)."""
        ids = np.asarray(ids, dtype=np.int64)
        group, folding = np.divmod(ids, self.foldings)
        ctx, clock = np.divmod(group, len(self.space.clocks))
        return ctx, clock, folding

    def digits(self, folding: np.ndarray) -> np.ndarray:
        """Folding numbers → (N, S) per-stage digits (mixed radix, last stage fastest)."""
        folding = np.asarray(folding, dtype=np.int64)
        out = np.empty((len(folding), len(self.stages)), dtype=np.int64)
        rest = folding
        for k in range(len(self.stages) - 1, -1, -1):
            rest, out[:, k] = np.divmod(rest, self.radix[k])
        return out

    def number(self, digits: np.ndarray) -> np.ndarray:
        """(N, S) per-stage digits → folding numbers."""
        out = np.zeros(len(digits), dtype=np.int64)
        for k in range(len(self.stages)):
            out = out * self.radix[k] + digits[:, k]
        return out

    def folding(self, digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, S) digits → PE and SIMD values, each (N, S)."""
        pe = np.empty(digits.shape, dtype=np.int64)
        simd = np.empty(digits.shape, dtype=np.int64)
        for k in range(len(self.stages)):
            i, j = np.divmod(digits[:, k], len(self._simd[k]))
            pe[:, k] = self._pe[k][i]
            simd[:, k] = self._simd[k][j]
        return pe, simd

    def digits_of(self, pe: np.ndarray, simd: np.ndarray) -> np.ndarray:
        """PE and SIMD values (N, S) → digits; every value must be in the space."""
        out = np.empty(pe.shape, dtype=np.int64)
        for k in range(len(self.stages)):
            i = np.searchsorted(self._pe[k], pe[:, k])
            j = np.searchsorted(self._simd[k], simd[:, k])
            out[:, k] = i * len(self._simd[k]) + j
        return out

    # -- values ----------------------------------------------------------------------------

    def evaluate_foldings(self, ctx: Context, pe: np.ndarray, simd: np.ndarray) -> dict:
        """Clock-independent values of N foldings of context ``ctx``'s design: ``ii``,
        ``latency_cycles``, the resources, ``fmax_mhz`` and the dynamic and static parts of
        the energy (at the first clock target: :meth:`evaluate` recomputes it per clock)."""
        from codesign.sim.batch import estimate_batch
        from codesign.sim.dataflow.analytic import analytic
        from codesign.sim.fmax import predict_fmax_batch

        d = self.design(ctx)
        names = self.stages
        pe_map = {s: pe[:, k] for k, s in enumerate(names)}
        simd_map = {s: simd[:, k] for k, s in enumerate(names)}
        a = analytic(d, pe_map, simd_map)
        out = {"ii": a["ii"], "latency_cycles": a["latency"]}
        out.update(estimate_batch(d, pe, simd))
        out["fmax_mhz"] = predict_fmax_batch(d, pe, simd)
        out["energy_nj"] = self._energy(d, pe, simd)
        return out

    @staticmethod
    def _energy(d, pe, simd) -> np.ndarray:
        from codesign.sim.energy import dataflow_energy_batch

        return np.asarray(dataflow_energy_batch(d, pe, simd), dtype=np.float64)

    def evaluate(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """Every column of :data:`COLUMNS`, and ``feasible``, for point ids ``ids``."""
        ids = np.asarray(ids, dtype=np.int64)
        ctx_i, clock_i, folding = self.split(ids)
        n = len(ids)
        out = {c: np.zeros(n) for c in COLUMNS}
        for c in np.unique(ctx_i).tolist():
            sel = np.flatnonzero(ctx_i == c)
            # a folding evaluated once per context, whatever the number of clocks
            if len(self.space.clocks) > 1:
                uniq, inv = np.unique(folding[sel], return_inverse=True)
                inv = inv.reshape(-1)
            else:
                uniq, inv = folding[sel], np.arange(len(sel))
            pe, simd = self.folding(self.digits(uniq))
            ctx = self.space.contexts[c]
            vals = self.evaluate_foldings(ctx, pe, simd)
            for k, v in vals.items():
                out[k][sel] = v[inv]
            for j, clock in enumerate(self.space.clocks[1:], start=1):
                at = clock_i[sel] == j  # energy counts static power over the time per frame
                if at.any():
                    e = self._energy(self.design(ctx, clock), pe, simd)
                    out["energy_nj"][sel[at]] = e[inv[at]]
        self.finish(out, np.asarray(self.space.clocks)[clock_i])
        return out

    def finish(self, out: dict, clock: np.ndarray) -> None:
        """The clock-dependent columns and ``feasible``, in place."""
        f = np.minimum(clock, out["fmax_mhz"])
        out["clock_mhz"] = clock.astype(np.float64)
        out["throughput_fps"] = f * 1e6 / out["ii"]
        out["latency_ns"] = out["latency_cycles"] * 1e3 / f
        ok = out["throughput_fps"] >= self.space.min_throughput
        dev = self.space.device
        if dev is not None:
            ok &= out["lut"] + 2 * out["lutram"] <= dev.lut
            ok &= out["dsp"] <= dev.dsp
            ok &= out["bram"] <= dev.bram
        out["feasible"] = ok

    def config(self, point_id: int) -> dict:
        """The hardware config (a :meth:`HardwareConfig.to_dict` mapping) of one point: what
        ``codesign hdl --config`` and the validation tasks take."""
        ctx_i, clock_i, folding = (int(x[0]) for x in self.split(np.array([point_id])))
        ctx = self.space.contexts[ctx_i]
        pe, simd = self.folding(self.digits(np.array([folding])))
        d = self.design(ctx).with_folding(pe[0].tolist(), simd[0].tolist())
        doc = d.given.to_dict()
        doc["clock_mhz"] = self.space.clocks[clock_i]
        return doc
