"""The compression space of a network (``codesign explore NET --compress``): per layer none, an
SVD of rank r (dense, 1×1) or a CP decomposition of rank R (k×k convolutions), Mixed-TD
style, and N:M sparsity on top, judged by throughput per DSP against the accuracy proxy.

Every point is a whole compressed network, built by the IR transforms
(:func:`codesign.models.compress.decompose.decompose`,
:func:`codesign.models.compress.sparsity.prune_nm`) and evaluated by the same models the
single-design flow uses:

- ``ii``: the default folding's initiation interval in cycles per frame
  (:class:`codesign.models.hwconfig.Design`: the balancer within the device budget; a pruned
  stage gets an N:M sparse MVAU, ``StageConfig(sparsity=...)``);
- ``dsp``, ``lut``, ``bram``: the cost model's totals (:func:`codesign.sim.cost.estimate`);
- ``throughput_per_dsp``: frames per million cycles per DSP block, ``1e6 / (ii · dsp)``, and
  ``gain``: it over the uncompressed network's;
- ``error``, ``top1``: the accuracy proxy on seeded frames
  (:func:`codesign.models.compress.accuracy.compression_error`);
- ``feasible``: ``error <= bound``; ``pareto``: the exact front of (throughput per DSP,
  error) over every point.

The search is Mixed-TD's greedy shape, not an exhaustive one (a whole network per point):
every single-layer choice is evaluated, then the choices are added one at a time in order of
gain per unit of error while the network stays within the bound; each network on that path
is also pruned to every N:M pattern asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["OBJECTIVES", "compress_space"]

#: The front: throughput per DSP (maximised) and the accuracy proxy (minimised).
OBJECTIVES = ("throughput_per_dsp", "error")


def _candidates(net, cpd_ranks, svd_ranks) -> list[tuple[str, str, int]]:
    from codesign.models.compress.decompose import full_rank

    out = []
    for la in net.layers:
        if la.op == "conv2d" and la.groups == 1:
            kh, kw = la.weight.shape[2:]
            if kh >= 2 and kw >= 2:
                method, ranks = "cpd", cpd_ranks
            elif (kh, kw) == (1, 1):
                method, ranks = "svd", svd_ranks
            else:
                continue
        elif la.op == "dense":
            method, ranks = "svd", svd_ranks
        else:
            continue
        full = full_rank(la, method)
        out += [(la.name, method, r) for r in ranks if 1 <= r < full]
    return out


def compress_space(
    network,
    *,
    cpd_ranks: Sequence[int] = (4, 8, 16),
    svd_ranks: Sequence[int] = (4, 8),
    nm: Sequence[str] = ("2:4",),
    bound: float = 0.3,
    frames: int = 16,
    seed: int = 0,
    target: str = "ecp5",
):
    """The evaluated points of ``network``'s compression space as a DataFrame.

    Parameters
    ----------
    network
        A network or zoo name.
    cpd_ranks, svd_ranks
        Ranks tried for each k×k convolution (CPD) and each dense or 1×1 layer (SVD).
    nm
        N:M patterns each network on the greedy path is also pruned to (``"2:4"``, ...).
    bound
        The accuracy-proxy bound: the relative output error a point may have.
    frames, seed
        Seeded frames of the accuracy proxy (and the CP decompositions' seed).
    target
        The cost model's target.

    Returns
    -------
    pandas.DataFrame
        One row per point: ``plan`` (``"conv2:cpd16 fc:svd8"``, ``""`` uncompressed),
        ``nm`` (``""`` dense), ``step`` (``baseline``, ``single``, ``greedy``), ``macs``,
        ``ii``, ``dsp``, ``lut``, ``bram``, ``throughput_per_dsp``, ``gain``, ``error``,
        ``top1``, ``feasible``, ``pareto``. ``attrs``: ``bound``, ``baseline`` (its row).
    """
    import pandas as pd

    from codesign.models.compress.accuracy import compression_error
    from codesign.models.compress.decompose import decompose
    from codesign.models.compress.sparsity import parse_sparsity, prune_nm
    from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
    from codesign.models.loader import load
    from codesign.sim.cost import estimate

    from ..summary import summary
    from .pareto import pareto_mask

    net = load(network) if isinstance(network, str) else network
    patterns = [parse_sparsity(p) for p in nm]
    rows: list[dict] = []
    seen: dict[tuple, dict] = {}

    def evaluate(plan: tuple[tuple[str, str, int], ...], pattern, step: str) -> dict:
        key = (plan, pattern)
        if key in seen:
            return seen[key]
        out = decompose(net, {n: (m, r) for n, m, r in plan}, seed=seed) if plan else net
        config = None
        if pattern is not None:
            before = {la.name: la for la in out.layers}
            out = prune_nm(out, *pattern)
            pruned = [
                la.name
                for la in out.layers
                if getattr(la, "weight", None) is not None and la is not before[la.name]
            ]
            config = HardwareConfig({n: StageConfig(sparsity=pattern) for n in pruned})
        d = Design(out, config)
        c = estimate(d, target)
        acc = compression_error(net, out, frames=frames, seed=seed)
        row = {
            "plan": " ".join(f"{n}:{m}{r}" for n, m, r in plan),
            "nm": "" if pattern is None else f"{pattern[0]}:{pattern[1]}",
            "step": step,
            "macs": int(summary(out)["totals"]["macs"]),
            "ii": int(d.ideal_ii),
            "dsp": int(c["dsp"]),
            "lut": int(c["lut"]),
            "bram": int(c["bram"]),
            "throughput_per_dsp": 1e6 / (d.ideal_ii * max(int(c["dsp"]), 1)),
            "error": float(acc.rel_error),
            "top1": float(acc.top1),
        }
        seen[key] = row
        rows.append(row)
        return row

    base = evaluate((), None, "baseline")
    singles = [(cand, evaluate((cand,), None, "single")) for cand in _candidates(
        net, cpd_ranks, svd_ranks
    )]  # fmt: skip
    for p in patterns:
        evaluate((), p, "single")

    # greedy path: best gain per unit of error first, one choice per layer
    def merit(row) -> float:
        gain = row["throughput_per_dsp"] / base["throughput_per_dsp"] - 1
        return gain / max(row["error"], 1e-12)

    order = sorted(
        (s for s in singles if s[1]["error"] <= bound and merit(s[1]) > 0),
        key=lambda s: (-merit(s[1]), s[0]),
    )
    path: tuple = ()
    used: set[str] = set()
    current = base
    for cand, _ in order:
        if cand[0] in used:
            continue
        trial = evaluate((*path, cand), None, "greedy")
        if trial["error"] <= bound and trial["throughput_per_dsp"] > current["throughput_per_dsp"]:
            path, current = (*path, cand), trial
            used.add(cand[0])
            for p in patterns:
                evaluate(path, p, "greedy")

    df = pd.DataFrame.from_records(rows)
    df["gain"] = df["throughput_per_dsp"] / base["throughput_per_dsp"]
    df["feasible"] = df["error"] <= bound
    f = np.stack([-df["throughput_per_dsp"].to_numpy(), df["error"].to_numpy()], axis=1)
    df["pareto"] = pareto_mask(f)
    df.attrs.update(bound=bound, baseline=dict(base), network=net.name)
    return df
