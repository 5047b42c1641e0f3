"""Design-space exploration: ``codesign.explore(space)`` and ``codesign explore``.

A space (:mod:`~codesign.explore.space`) is evaluated in two tiers. The fast tier
(:mod:`~codesign.explore.evaluate`) computes every objective of millions of points with the
vectorised closed forms, equal point by point to the single-design functions; a search
(:mod:`~codesign.explore.search`: exhaustive, NSGA-II or FINN-style greedy) fills the store
(:mod:`~codesign.explore.store`, SQLite, resumable), and the exact Pareto front
(:mod:`~codesign.explore.pareto`) is taken over the feasible points. The slow tier
(:mod:`~codesign.explore.validate`) re-measures chosen front points with the event
simulator, cocotb and Yosys/nextpnr on Dask.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import types
from pathlib import Path

import numpy as np

from .space import OBJECTIVES, Space, Strategy, load_space

__all__ = ["OBJECTIVES", "Space", "explore", "load_space", "pick_front", "validate_front"]

#: Where a space's store goes by default: ``build/explore/<space hash>/points.sqlite``.
DEFAULT_OUT = Path("build") / "explore"


def explore(
    space,
    *,
    out: str | Path | None = None,
    strategy: str | None = None,
    validate: int = 0,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = True,
    pim: bool = False,
    compress: bool = False,
    bound: float = 0.3,
):
    """Explore a design space and return every evaluated point as a pandas DataFrame.

    Parameters
    ----------
    space
        A zoo name, a network description or ``.onnx`` path (all its valid foldings), a
        space ``.yaml`` file or a mapping (``docs/explore.md``).
    out
        Folder of the stores (default ``build/explore``); the space's store is
        ``<out>/<space hash>/points.sqlite``, reused and resumed by a rerun.
    strategy
        ``auto``, ``exhaustive``, ``nsga2`` or ``greedy``; overrides the space's.
    validate
        Re-measure this many points of the front (event simulator, cocotb on Verilator,
        Yosys and nextpnr) on Dask and add the measured values and errors
        (``df.attrs["validation"]``).
    scheduler, workers
        The Dask scheduler address of an existing cluster (default: a ``LocalCluster`` of
        ``workers`` processes).
    progress
        Progress bars on stderr (for anything over a second).
    pim
        Explore the network's processing-in-memory space instead of its dataflow foldings:
        digital technology and array size, analog crossbar ADC, cell and DAC bits
        (:func:`.pim.pim_space`; ``space`` must be a network, exhaustive, no ``validate``).
    compress, bound
        Explore the network's compression space instead: per-layer SVD/CPD ranks and N:M
        sparsity, throughput per DSP against the accuracy proxy, feasible within ``bound``
        (:func:`.compress.compress_space`; ``space`` must be a network).

    Returns
    -------
    pandas.DataFrame
        One row per point: ``id``, ``context``, ``clock_mhz``, ``pe__<stage>`` and
        ``simd__<stage>``, the values (:data:`~codesign.explore.evaluate.COLUMNS`),
        ``feasible`` and ``pareto`` (on the exact front of the feasible points over the
        space's objectives). ``attrs`` holds ``space_hash``, ``store`` (the database),
        ``strategy``, ``points`` (the space's size), ``evaluated`` (by this call),
        ``front`` (its size), ``seconds``, ``objectives`` and, with ``validate``,
        ``validation``: the rows of :func:`validate_front` as records.
    """
    import pandas as pd

    from .evaluate import COLUMNS, Evaluator
    from .pareto import minimization, pareto_mask
    from .search import exhaustive, greedy, nsga2
    from .store import Store

    if pim:
        return _explore_pim(space, strategy, validate, time.perf_counter())
    if compress:
        return _explore_compress(space, strategy, validate, bound, time.perf_counter())
    sp = load_space(space)
    if strategy is not None:
        try:
            sp = dataclasses.replace(sp, strategy=Strategy(strategy))
        except ValueError:
            valid = ", ".join(m.value for m in Strategy)
            raise ValueError(f"strategy must be one of {valid}, not {strategy!r}") from None
    chosen = sp.strategy
    if chosen is Strategy.AUTO:
        chosen = Strategy.EXHAUSTIVE if sp.size <= sp.max_points else Strategy.NSGA2
    start = time.perf_counter()
    ev = Evaluator(sp)
    net = ev.design(sp.contexts[0]).network if sp.tulip is None else None
    if net is not None and _deformable(net):
        return _explore_deform(net, sp, strategy, validate, start)
    h = sp.hash()
    root = Path(out) if out is not None else DEFAULT_OUT
    if sp.tulip is not None:  # the binary family's array: every size, one by one
        from .tulip import TULIP_COLUMNS, TULIP_KNOBS, evaluate_tulip

        chosen = Strategy.EXHAUSTIVE
        store = Store(root / h / "tulip.sqlite", (), TULIP_COLUMNS, knobs=TULIP_KNOBS)
    else:
        store = Store(root / h / f"{chosen.value}.sqlite", sp.stages, COLUMNS)
    try:
        store.set_meta("space", {**sp.doc, "network": sp.network})
        if sp.tulip is not None:
            evaluated = 0
            if 0 not in store.done_chunks():
                rows = evaluate_tulip(sp)
                store.add_chunk(0, rows)
                evaluated = len(rows["id"])
        elif chosen is Strategy.EXHAUSTIVE:
            evaluated = exhaustive(ev, store, progress=progress)
        elif chosen is Strategy.NSGA2:
            evaluated = nsga2(ev, store, progress=progress)
        else:
            evaluated = greedy(ev, store, progress=progress)[0]
        df = store.frame()
        labels = [c.label() for c in sp.contexts] if sp.tulip is None else ["tulip"]
        df["context"] = pd.Categorical.from_codes(df["context"].astype(int), categories=labels)
        df["pareto"] = False
        ok = df["feasible"].to_numpy()
        f = minimization({c: df[c].to_numpy() for c in df.columns}, sp.objectives)
        front = np.zeros(len(df), dtype=bool)
        front[np.flatnonzero(ok)[pareto_mask(f[ok])]] = True
        df["pareto"] = front
        df.attrs.update(
            space_hash=h,
            store=str(store.path),
            strategy=chosen.value,
            points=sp.size,
            evaluated=int(evaluated),
            front=int(front.sum()),
            objectives=list(sp.objectives),
            network=sp.network,
        )
        if validate:  # records, not a DataFrame: pandas compares attrs when it copies a frame
            df.attrs["validation"] = validate_front(
                df,
                sp,
                validate,
                store=store,
                evaluator=ev,
                scheduler=scheduler,
                workers=workers,
                progress=progress,
            ).to_dict("records")
        df.attrs["seconds"] = round(time.perf_counter() - start, 3)
        return df
    finally:
        store.close()


def _deformable(net) -> bool:
    from codesign.models.deform.variants import deform_layers

    return bool(deform_layers(net))


def _explore_deform(net, sp, strategy, validate, start):
    """A network with a deformable layer: its deformable space
    (:func:`.deform.deform_space`: offset variant, frame-store banks and ports, the stage's
    PE), evaluated on seeded frames; the dataflow folding of its other stages stays the
    default's."""
    from codesign.models.errors import ConfigError

    from .deform import OBJECTIVES, deform_space

    if validate or strategy not in (None, "auto", "exhaustive"):
        raise ConfigError(
            f"network {net.name!r} has a deformable layer: its space is swept exhaustively on "
            "seeded frames (strategy exhaustive, no --validate; verify a point with "
            "codesign verify --variant)"
        )
    return _swept_whole(deform_space(net, seed=sp.seed), net, "deformable", OBJECTIVES, start)


def _swept_whole(df, net, space: str, objectives, start: float):
    """``df``, a family's space evaluated point by point, with the attrs :func:`explore`
    gives every result (its strategy exhaustive: every point evaluated now)."""
    df.attrs.update(
        network=net.name,
        space=space,
        strategy="exhaustive",
        points=len(df),
        evaluated=len(df),
        front=int(df["pareto"].sum()),
        objectives=list(objectives),
        seconds=round(time.perf_counter() - start, 3),
    )
    return df


def _explore_pim(space, strategy, validate, start):
    """The PIM space of a network's dense layers (:func:`.pim.pim_space`), swept whole."""
    from codesign.models.errors import ConfigError
    from codesign.models.loader import load

    from .pim import OBJECTIVES, pim_space

    if validate or strategy not in (None, "auto", "exhaustive"):
        raise ConfigError(
            "the PIM space is swept exhaustively in closed form (strategy exhaustive, no "
            "--validate; check a point with codesign pim --verify)"
        )
    net = space if not isinstance(space, str | Path) else load(str(space))
    return _swept_whole(pim_space(net), net, "pim", OBJECTIVES, start)


def _explore_compress(space, strategy, validate, bound, start):
    """The compression space of a network (:func:`.compress.compress_space`)."""
    from codesign.models.errors import ConfigError
    from codesign.models.loader import load

    from .compress import OBJECTIVES, compress_space

    if validate or strategy not in (None, "auto", "greedy"):
        raise ConfigError(
            "the compression space is searched greedily, Mixed-TD style (strategy greedy, no "
            "--validate; prove a point with codesign compress -o then codesign verify)"
        )
    net = space if not isinstance(space, str | Path) else load(str(space))
    df = _swept_whole(compress_space(net, bound=bound), net, "compress", OBJECTIVES, start)
    df.attrs["strategy"] = "greedy"
    return df


def pick_front(df, k: int) -> list[int]:
    """``k`` ids of front points spread along it: the front sorted by throughput, taken at
    evenly spaced ranks (its fastest and its smallest point among them)."""
    front = df[df["pareto"]].sort_values(["throughput_fps", "id"], ascending=[False, True])
    if len(front) <= k:
        return [int(i) for i in front["id"]]
    ranks = np.unique(np.linspace(0, len(front) - 1, k).round().astype(int))
    return [int(i) for i in front["id"].to_numpy()[ranks]]


#: Model column → measured key of :func:`codesign.explore.validate.measure`.
MEASURED = {
    "ii": "sim_ii",
    "latency_cycles": "sim_latency",
    "lut": "lut",
    "ff": "ff",
    "dsp": "dsp",
    "bram": "bram",
    "fmax_mhz": "fmax_mhz",
}


def validate_front(
    df,
    space,
    k: int,
    *,
    store=None,
    evaluator=None,
    scheduler: str | None = None,
    workers: int | None = None,
    checks: tuple[str, ...] = ("sim", "rtl", "synth"),
    pnr: bool = True,
    progress: bool = True,
):
    """Re-measure ``k`` front points (:func:`pick_front`) and compare with the model.

    Returns
    -------
    pandas.DataFrame
        One row per point and objective: ``id``, ``objective``, ``model``, ``measured`` and
        ``error`` (relative, ``(model - measured) / measured``), and per point the RTL's
        ``mismatches`` and cycle counts in the rows ``rtl_ii`` / ``rtl_latency``.
    """
    import pandas as pd

    from .evaluate import Evaluator
    from .validate import run_tasks

    sp = load_space(space)
    ev = evaluator or Evaluator(sp)
    ids = pick_front(df, k)
    done = store.validations() if store is not None else {}
    tasks = [
        {
            "key": f"point-{i}",
            "network": sp.network,
            "config": ev.config(i),
            "checks": checks,
            "pnr": pnr,
        }
        for i in ids
        if i not in done
    ]

    def keep(result: dict) -> None:
        if store is not None:
            store.add_validation(int(result["key"].split("-")[1]), result)

    for r in run_tasks(
        tasks, scheduler=scheduler, n_workers=workers, on_result=keep, progress=progress
    ):
        done[int(r["key"].split("-")[1])] = r
    rows = []
    by_id = df.set_index("id")
    for i in ids:
        m = done.get(i, {})
        for col, key in MEASURED.items():
            if m.get(key) is None:  # not measured (or no Fmax: the design did not fit)
                continue
            model = float(by_id.at[i, col])
            meas = float(m[key])
            err = (model - meas) / meas if meas else (0.0 if model == meas else float("inf"))
            rows.append({"id": i, "objective": col, "model": model, "measured": meas, "error": err})
        for key in ("rtl_ii", "rtl_latency", "mismatches", "error"):
            if key in m:
                rows.append(
                    {"id": i, "objective": key, "model": None, "measured": m[key], "error": None}
                )
    return pd.DataFrame(rows, columns=["id", "objective", "model", "measured", "error"])


class _CallableModule(types.ModuleType):
    """``codesign.explore`` is this package and, called, :func:`explore`: the public API's
    ``codesign.explore("jet_tagger")`` beside ``codesign.explore.plot`` and friends."""

    def __call__(self, *args, **kwargs):
        return explore(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
