"""Hardware facts of the MST-reuse binary MVAU (:mod:`codesign.hdl.binary.mst`) that its RTL and its
cycle model (:mod:`codesign.sim.binary.mst`) share: the lanes of every layer, the compute steps of a
reuse tree, the network's chain of units, and the chain's steady-state interval.

A unit computes a frame in three stages (load ``K / simd`` beats, compute ``T`` steps,
output), each holding one frame and handing it over in one cycle; see :mod:`codesign.sim.binary.mst`
for the per-frame recurrence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..hwconfig import ConfigError
from ..ir import Network
from .mst import ReuseTree, mst_layers, network_reuse

__all__ = [
    "DEFAULT_SIMD",
    "chain_plan",
    "compute_steps",
    "default_simd",
    "layer_simd",
    "steady_ii",
]

#: Lanes of the default folding (largest divisor of K not above it).
DEFAULT_SIMD = 16


def default_simd(fan_in: int) -> int:
    """The largest divisor of ``fan_in`` not above :data:`DEFAULT_SIMD`."""
    if not isinstance(fan_in, int) or isinstance(fan_in, bool) or fan_in < 1:
        raise ValueError(f"fan_in must be a positive int, not {fan_in!r}")
    return max(d for d in range(1, min(fan_in, DEFAULT_SIMD) + 1) if fan_in % d == 0)


def layer_simd(net: Network, simd: int | Mapping[str, int] | None = None) -> dict[str, int]:
    """SIMD lanes of every MST layer of ``net``, by name.

    Parameters
    ----------
    simd
        One value for every layer, a mapping from layer name (layers left out get the
        default), or None for :func:`default_simd` of each fan-in.

    Raises
    ------
    ConfigError
        Naming a layer whose fan-in the value does not divide (it is also the width of the
        layer's input beats).
    """
    if isinstance(simd, Mapping):
        names = {la.name for la, _ in mst_layers(net)}
        unknown = sorted(set(simd) - names)
        if unknown:
            raise ConfigError(f"simd names no MST layer {unknown[0]!r}; layers: {sorted(names)}")
    out = {}
    for la, _ in mst_layers(net):
        k = la.weight.shape[1]
        v = simd.get(la.name) if isinstance(simd, Mapping) else simd
        if v is None:
            v = default_simd(k)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1 or k % v:
            raise ConfigError(f"layer {la.name!r}: simd must divide the fan-in {k}, not {v!r}")
        out[la.name] = v
    return out


def compute_steps(tree: ReuseTree, simd: int) -> int:
    """Compute cycles ``T`` of one frame: ``ceil(K / simd)`` per root, ``max(1, ceil(|D| /
    simd))`` per other channel."""
    if not isinstance(simd, int) or isinstance(simd, bool) or simd < 1:
        raise ValueError(f"simd must be a positive int, not {simd!r}")
    steps = [
        max(1, -(-int(d) // simd)) if p >= 0 else -(-tree.fan_in // simd)
        for p, d in zip(tree.parent.tolist(), tree.distance.tolist(), strict=True)
    ]
    return sum(steps)


def steady_ii(in_beats: Sequence[int], steps: Sequence[int], out_beats: int) -> int:
    """The steady-state initiation interval of :func:`codesign.sim.binary.mst.chain_timing`, in
    closed form: the slowest stage, ``max(B + 1, T + 2)`` over the units and
    ``out_beats + 1`` (each stage spends one cycle handing its frame over)."""
    return max([b + 1 for b in (*in_beats, out_beats)] + [t + 2 for t in steps])


def chain_plan(
    net: Network,
    max_depth: int | None,
    simd: int | Mapping[str, int] | None,
    out_per_beat: int,
    trees: Mapping[str, ReuseTree] | None,
):
    """The MST network's layers (``mst_layers``), lanes per layer and reuse trees, with
    ``out_per_beat`` checked; what :func:`codesign.sim.binary.mst.mst_timing` and
    :class:`codesign.hdl.binary.mst.MstNetwork` both build from."""
    pairs = mst_layers(net)
    lanes = layer_simd(net, simd)
    trees = network_reuse(net, max_depth) if trees is None else trees
    m_last = pairs[-1][0].weight.shape[0]
    if not isinstance(out_per_beat, int) or out_per_beat < 1 or m_last % out_per_beat:
        raise ConfigError(
            f"out_per_beat must divide the {m_last} outputs of layer {pairs[-1][0].name!r}, "
            f"not {out_per_beat!r}"
        )
    return pairs, lanes, trees
