"""Deadlock-free FIFO depths where two streams join.

A fork copies one stream to two paths that meet again at an add stage. The add takes a beat
from each input at once, so the FIFO on the path that runs ahead must hold what that path
delivers while the other one is still working through its input. :func:`stage_lag` bounds
how far each stage's input must run ahead of its output; :func:`join_bound` sums it along
the paths from the fork and gives the least FIFO depth that provably never deadlocks.
:meth:`codesign.models.hwconfig.Design.join_bound` (and so the automatic FIFO depths that the
simulator and the RTL both read) is this function.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import TYPE_CHECKING

from .hwconfig import Stage, StageConfig, StageKind, stage_io
from .plan import readers

if TYPE_CHECKING:
    from .hwconfig import Design

__all__ = ["common_fork", "join_bound", "link_stages", "path_lags", "stage_lag"]


def stage_lag(stage: Stage, cfg: StageConfig) -> Fraction:
    """How far, in frames, a stage's input must run ahead of its output: emitting its
    output element at frame position ``x`` (a fraction of its output frame) never needs
    input beyond frame position ``x + stage_lag`` of its input frame.

    From the data each output needs, rounded up to whole beats and pixels: a dense MVAU and
    a global pool need their whole input before their first output (1 frame); a window
    (convolution, pool) needs the last pixel of its window (the largest lead over all
    output pixels, in raster order), plus a beat at the input and two at the output (MVAU
    and activation registers); a register, width converter or add one beat.
    """
    n_in, n_out = stage_io(stage, cfg)
    s_in, s_out = stage.input.size, stage.output.size
    slack = Fraction(n_in, s_in) + Fraction(2 * n_out, s_out)
    if stage.kind is StageKind.MVAU or stage.global_pool:
        return 1 + slack
    if stage.kind in (StageKind.CONV, StageKind.POOL):
        _, h, w = stage.input.shape
        _, oh, ow = stage.output.shape
        la = stage.main
        kh, kw = la.kernel if stage.kind is StageKind.POOL else la.weight.shape[2:]
        (sh, sw), (ph, pw) = la.stride, getattr(la, "padding", (0, 0))
        dh, dw = getattr(la, "dilation", (1, 1))
        return _window_lead(h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw) + slack
    return slack


@functools.cache
def _window_lead(h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw) -> Fraction:
    """The largest lead (frames) of a window's last input pixel over its output pixel, in
    raster order: a fact of the geometry alone, computed once per geometry."""
    worst, last = Fraction(0), -1
    for o in range(oh * ow):
        y, x = divmod(o, ow)
        iy = min(h - 1, y * sh + (kh - 1) * dh - ph)
        ix = min(w - 1, x * sw + (kw - 1) * dw - pw)
        last = max(last, max(iy, 0) * w + max(ix, 0))  # raster order: a prefix max
        worst = max(worst, Fraction(last + 1, h * w) - Fraction(o, oh * ow))
    return worst


def _link(design: Design, stage: Stage, port: int) -> Fraction:
    """The lag (frames of input ``port``) of the connection into ``stage``: one beat of its
    FIFO and one of its width converter."""
    n_in = stage_io(stage, design.config[stage.name])[0]
    return Fraction(design.in_width(stage, port) + n_in, stage.inputs[port].size)


def path_lags(design: Design, origin: str | None) -> dict[str | None, Fraction]:
    """For every stage reachable from producer ``origin`` (a stage name, None for the
    network input): the lag (frames) of its output behind ``origin``'s output, the largest
    over the paths (see :func:`stage_lag`); each connection adds its FIFO's and width
    converter's beat. ``origin`` itself maps to 0."""
    lags: dict[str | None, Fraction] = {origin: Fraction(0)}
    for s in design.stages:
        best = None
        for port, src in enumerate(s.sources):
            if src not in lags:
                continue
            v = lags[src] + _link(design, s, port)
            best = v if best is None else max(best, v)
        if best is not None:
            lags[s.name] = best + stage_lag(s, design.config[s.name])
    return lags


def common_fork(design: Design, add: Stage) -> tuple[str | None, list[Fraction]] | None:
    """The nearest producer whose stream reaches both inputs of ``add`` (the fork whose
    two paths join there; None for the network input), and the lag of each input's path
    from it, including the connection into the add; None when there is no such producer."""
    index = {s.name: k for k, s in enumerate(design.stages)}

    # candidates: ancestors of both inputs, nearest (latest in topological order) first
    def ancestors(src):
        seen, todo = set(), [src]
        while todo:
            x = todo.pop()
            if x in seen:
                continue
            seen.add(x)
            if x is not None:
                todo.extend(design.stage(x).sources)
        return seen

    a, b = (ancestors(src) for src in add.sources)
    common = a & b
    if not common:
        return None
    fork = max(common, key=lambda x: -1 if x is None else index[x])
    lags = path_lags(design, fork)
    return fork, [lags[src] + _link(design, add, port) for port, src in enumerate(add.sources)]


def _fork_width(design: Design, fork: str | None) -> int:
    """Elements per beat of the stream the fork copies."""
    if fork is None:
        first = readers(design.stages)[None][0][0]
        return stage_io(design.stage(first), design.config[first])[0]
    return stage_io(design.stage(fork), design.config[fork])[1]


def join_bound(design: Design, stage: Stage, port: int) -> int:
    """Least depth of the FIFO on input ``port`` of add stage ``stage`` that provably
    never deadlocks the fork feeding both inputs.

    Let the fork copy tensor ``F`` to two paths that end at the add's inputs ``port``
    (``q``) and ``p``, and let ``lag_p`` bound, in elements, how far path ``p``'s input
    must run ahead of its output: emitting its output element ``j`` never needs more
    than input element ``j + lag_p`` (:func:`stage_lag`, summed along the path; its
    FIFOs and converters lag by one beat each). A deadlock with the add waiting on
    ``p`` means: the add took ``k`` beats from each side, FIFO ``q`` is full (else the
    fork would move on), so the fork delivered at least ``k·n + D·n`` elements to path
    ``q`` and, as it releases a beat only when both outputs took it, all but at most
    one beat ``b`` of them to path ``p``; path ``p`` is stuck, so it needs more than
    that to emit element ``k·n``: ``lag_p > D·n - b``. Hence depth
    ``D = ceil((lag_p + b) / n)`` never deadlocks, whatever the foldings, FIFO depths
    or input rate. 0 when the two inputs share no fork.
    """
    found = common_fork(design, stage)
    if found is None:
        return 0
    fork, lag = found
    size = stage.inputs[port].size
    n = stage_io(stage, design.config[stage.name])[0]
    b = _fork_width(design, fork)
    lag_p = math.ceil(lag[1 - port] * size)
    return max(2, -(-(lag_p + b) // n))


def link_stages(design: Design, s: Stage, port: int) -> list[int]:
    """Indices of the stages whose folding a link's terms depend on: the stage, its
    producer (or the network input's first reader) and, for an add stage's FIFO of
    automatic depth, every stage on the paths from the fork to it (its join bound)."""
    index = {x.name: k for k, x in enumerate(design.stages)}
    first = readers(design.stages)[None][0][0]
    src = s.sources[port]
    out = {index[s.name], index[src if src is not None else first]}
    given = design.given[s.name]
    depth = given.fifo_depth if port == 0 else given.fifo_depth_b
    if s.kind is StageKind.ADD and depth is None:
        found = common_fork(design, s)
        if found is not None:
            fork = found[0]
            out.add(index[fork if fork is not None else first])
            down = {fork}
            for x in design.stages:  # descendants of the fork, in topological order
                if any(y in down for y in x.sources):
                    down.add(x.name)
            up, todo = set(), [s.name]
            while todo:  # ancestors of the add
                y = todo.pop()
                if y is None or y in up:
                    continue
                up.add(y)
                todo.extend(design.stage(y).sources)
            out |= {index[x] for x in (down & up) if x is not None}
    return sorted(out)
