"""Cycle model of the MST-reuse binary MVAU (:mod:`codesign.hdl.binary.mst`) and of a chain of them.

One unit computes a frame in three stages, each holding one frame, handing over through
registered flags (every hand-over costs one cycle):

- *load*: ``K / simd`` input beats shift into the input register;
- *compute*: the cycle after the input is complete (and the previous frame handed over),
  the input is copied and ``T`` steps run, one per cycle, in reuse order
  (:func:`compute_steps`): ``ceil(K / simd)`` for a root, ``max(1, ceil(|D| / simd))``
  for a channel computed from its parent over the difference list ``D``;
- *output*: the cycle after the last step (once the output register is free), the M
  results are copied to the output register and leave in channel order, ``out_per_beat``
  per beat.

With cycle 0 the first input beat of frame 0, for frame ``f`` of unit ``l`` (``B`` beats
in, ``T`` steps):

- first input beat ``b = max(ready of the producer, s[l, f-1] + 1)``; the source is ready
  the cycle after its previous frame's last beat, a unit the cycle after its hand-over;
- last input beat ``L[l, f] = b + B − 1``;
- compute start ``s[l, f] = max(L[l, f] + 1, h[l, f-1] + 1)``;
- hand-over ``h[l, f] = max(s[l, f] + T + 1, L[l+1, f-1] + 1)`` (its output register is
  free the cycle after its previous frame's last beat left);
- the sink is always ready, so the network's output frame ``f`` leaves on cycles
  ``h[last, f] + 1 …``.

:func:`chain_timing` runs this recurrence; its ``latency`` and ``ii`` are what the cocotb
bench (:func:`codesign.hdl.verify.run_cocotb`, phase 2) measures, exactly; in steady state the
interval is :func:`steady_ii`, the slowest stage's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from codesign.models.binary.mst import ReuseTree, mst_layers, network_reuse, plain_mst
from codesign.models.binary.mst_hw import (
    DEFAULT_SIMD,
    chain_plan,
    compute_steps,
    default_simd,
    layer_simd,
    steady_ii,
)
from codesign.models.ir import Network

__all__ = [
    "DEFAULT_SIMD",
    "ChainTiming",
    "chain_plan",
    "chain_timing",
    "compute_steps",
    "default_simd",
    "layer_simd",
    "mst_summary",
    "mst_timing",
    "steady_ii",
]


@dataclass(frozen=True)
class ChainTiming:
    """Cycles of a chain of MST units with the input always valid and the output always
    ready, from cycle 0 = the first input beat."""

    latency: int  #: first input beat → first output beat
    ii: float  #: cycles per frame between output frame ends, as the bench measures it
    first_out: tuple[int, ...]  #: cycle of each output frame's first beat
    last_out: tuple[int, ...]  #: cycle of each output frame's last beat


def chain_timing(
    in_beats: Sequence[int], steps: Sequence[int], out_beats: int, frames: int = 32
) -> ChainTiming:
    """Run the per-frame recurrence of the module docstring.

    Parameters
    ----------
    in_beats
        Input beats per frame of each unit (``K / simd``); unit ``l``'s output beats are
        unit ``l+1``'s input beats.
    steps
        Compute cycles ``T`` of each unit (:func:`compute_steps`).
    out_beats
        Output beats per frame of the last unit.
    frames
        Frames sent back to back; ``ii`` is measured over the last half of their ends.
    """
    n = len(steps)
    if n < 1 or len(in_beats) != n:
        raise ValueError("in_beats and steps must have one entry per unit, at least one")
    if not isinstance(frames, int) or frames < 1:
        raise ValueError(f"frames must be a positive int, not {frames!r}")
    beats = [*in_beats, out_beats]
    last_in = [-1] * (n + 1)  # L[l] of the previous frame; L[n] = last beat into the sink
    start = [None] * n  # s[l] of the previous frame
    hand = [None] * n  # h[l] of the previous frame
    first_out, last_out = [], []
    for _ in range(frames):
        ready = last_in[0] + 1  # the source presents the frame after its previous one
        for lv in range(n):
            b = ready if start[lv] is None else max(ready, start[lv] + 1)
            last_in[lv] = b + beats[lv] - 1
            s = last_in[lv] + 1 if hand[lv] is None else max(last_in[lv] + 1, hand[lv] + 1)
            # the output register is free after the previous frame left (L[l+1] of it)
            h = (
                s + steps[lv] + 1
                if hand[lv] is None
                else max(s + steps[lv] + 1, last_in[lv + 1] + 1)
            )
            start[lv], hand[lv] = s, h
            ready = h + 1
        first_out.append(ready)
        last_in[n] = ready + out_beats - 1
        last_out.append(last_in[n])
    k = max(1, (frames - 1) // 2)
    ii = (last_out[-1] - last_out[-1 - k]) / k if frames >= 2 else float("nan")
    return ChainTiming(first_out[0], ii, tuple(first_out), tuple(last_out))


def mst_timing(
    net: Network,
    max_depth: int | None = None,
    simd: int | Mapping[str, int] | None = None,
    out_per_beat: int = 1,
    frames: int = 32,
    trees: Mapping[str, ReuseTree] | None = None,
) -> ChainTiming:
    """:func:`chain_timing` of the MST network of ``net``
    (:class:`codesign.hdl.binary.mst.MstNetwork`
    with the same arguments)."""
    pairs, lanes, trees = chain_plan(net, max_depth, simd, out_per_beat, trees)
    m_last = pairs[-1][0].weight.shape[0]
    in_beats = [la.weight.shape[1] // lanes[la.name] for la, _ in pairs]
    steps = [compute_steps(trees[la.name], lanes[la.name]) for la, _ in pairs]
    return chain_timing(in_beats, steps, m_last // out_per_beat, frames)


def mst_summary(
    net: Network, max_depth: int | None = None, simd: int | Mapping[str, int] | None = None
) -> list[dict]:
    """Per MST layer of ``net``: the reuse tree's savings next to the plain MST's, and the
    unit's cycles.

    Returns
    -------
    list of dict
        One per layer, in order: ``name``, ``channels`` (M), ``fan_in`` (K),
        ``direct_ops`` (M·K), ``ops``, ``ops_saved``, ``saved_fraction``, ``max_depth``,
        ``roots``, ``plain_ops``, ``plain_depth`` (of
        :func:`~codesign.models.binary.mst.plain_mst`),
        ``simd``, ``direct_cycles`` (M·K / simd) and ``cycles`` (compute steps ``T``).
    """
    lanes = layer_simd(net, simd)
    trees = network_reuse(net, max_depth)
    rows = []
    for la, _ in mst_layers(net):
        tree, plain = trees[la.name], plain_mst(la.weight)
        rows.append(
            {
                "name": la.name,
                "channels": tree.channels,
                "fan_in": tree.fan_in,
                "direct_ops": tree.direct_ops,
                "ops": tree.ops,
                "ops_saved": tree.ops_saved,
                "saved_fraction": tree.ops_saved / tree.direct_ops,
                "max_depth": tree.max_depth,
                "roots": len(tree.roots),
                "plain_ops": plain.ops,
                "plain_depth": plain.max_depth,
                "simd": lanes[la.name],
                "direct_cycles": tree.direct_ops // lanes[la.name],
                "cycles": compute_steps(tree, lanes[la.name]),
            }
        )
    return rows
