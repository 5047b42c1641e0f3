"""Cycle-approximate simulator of the streaming dataflow pipelines, event-driven on simpy.

Every hardware unit of a :class:`~models.hwconfig.Design` (sliding-window generator, MVAU,
VVAU, activation, pool reducer, width converter, FIFO) is a simpy process that moves *stream
beats*, never clock cycles: a unit computes when its next beat can move from the handshake
rules of the generated RTL (one output register per unit, a FIFO's ``depth`` slots, the
MVAU's input-vector buffer, the line buffer's row releases), declares it on the link to its
neighbour, and the link fires the transfer at ``max(valid, ready)``. Back-pressure is a
bounded FIFO refusing a beat until a slot frees, exactly as the RTL's ``ready`` does.

Each frame's events depend only on events of the same or earlier frames, and the rules do
not change from frame to frame, so once every beat of ``horizon`` consecutive frames moved
exactly ``P`` cycles after the same beat of the frame before, the pipeline is periodic with
period ``P`` from then on: :func:`simulate` then extends the run frame by frame instead of
beat by beat (exact, not an approximation). :func:`analytic` is the closed form for
design-space exploration, vectorised over many configurations.

Shared facts (cycles per frame, beats per transfer, line-buffer rows, FIFO depths) come from
:mod:`models.hwconfig` and :mod:`models.linebuffer`, which the RTL generator reads too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy

from models.dataflow import conv_out_size
from models.hwconfig import Design, Stage, StageKind, stage_io
from models.linebuffer import line_buffer_rows, released_rows

from .results import Interval, SimResult, StageStats

__all__ = ["SimulationError", "simulate"]


class SimulationError(RuntimeError):
    """The model broke one of its own invariants (a bug in the simulator, never bad input)."""


class _Times:
    """Times of one per-beat quantity, in beat order, with simpy events for waiters."""

    __slots__ = ("env", "name", "per_frame", "t", "waiters")

    def __init__(self, env: simpy.Environment, name: str, per_frame: int) -> None:
        self.env, self.name, self.per_frame = env, name, per_frame
        self.t: list[int] = []
        self.waiters: dict[int, simpy.Event] = {}

    def set(self, n: int, v: int) -> None:
        if n != len(self.t):
            raise SimulationError(f"{self.name}: beat {n} set out of order")
        self.t.append(v)
        ev = self.waiters.pop(n, None)
        if ev is not None:
            ev.succeed(v)

    def wait(self, n: int) -> simpy.Event:
        ev = self.waiters.get(n)
        if ev is None:
            ev = self.waiters[n] = self.env.event()
        return ev


def _at(times: _Times, n: int):
    """``yield from _at(times, n)``: the time of beat ``n``, waiting until it is known."""
    if n < len(times.t):
        return times.t[n]
    return (yield times.wait(n))


class _Link:
    """A ready/valid stream between two units: beat ``n`` moves at ``max(valid, ready)``,
    fired at that simulated time."""

    def __init__(self, env: simpy.Environment, name: str, per_frame: int) -> None:
        self.env, self.name, self.per_frame = env, name, per_frame
        self.valid: list[int] = []
        self.ready: list[int] = []
        self.xfer = _Times(env, name, per_frame)

    def offer(self, n: int, t: int) -> None:
        self.valid.append(t)
        self._try(n)

    def want(self, n: int, t: int) -> None:
        self.ready.append(t)
        self._try(n)

    def _try(self, n: int) -> None:
        if n < len(self.valid) and n < len(self.ready):
            t = max(self.valid[n], self.ready[n])
            delay = t - self.env.now
            if delay < 0:
                raise SimulationError(
                    f"{self.name}: beat {n} decided at {self.env.now} for the past ({t})"
                )
            if delay == 0:
                self.xfer.set(n, t)
            else:
                ev = self.env.timeout(delay)
                ev.callbacks.append(lambda _e, n=n, t=t: self.xfer.set(n, t))


# -- units: each a simpy process (or two) over its beats -----------------------------------


class _Unit:
    work: list[int]

    def __init__(self, name: str) -> None:
        self.name = name
        self.work = []  # cycles in which the unit computed (busy)
        self.times: list[_Times] = []  # internal quantities checked for periodicity

    def processes(self, frames: int):  # pragma: no cover - interface
        raise NotImplementedError


class _Register(_Unit):
    """An activation unit: one output register; ``i.ready = ~full | o.ready``."""

    def __init__(self, name, inp: _Link, out: _Link, per_frame: int) -> None:
        super().__init__(name)
        self.inp, self.out, self.n = inp, out, per_frame

    def processes(self, frames):
        def run():
            last = -1
            for n in range(frames * self.n):
                t = last + 1
                if n:
                    t = max(t, (yield from _at(self.out.xfer, n - 1)))
                self.inp.want(n, t)
                last = yield from _at(self.inp.xfer, n)
                self.work.append(last)
                self.out.offer(n, last + 1)

        return [run()]


class _Fifo(_Unit):
    """``amaranth.lib.fifo.SyncFIFOBuffered`` of ``depth``: ``depth - 1`` memory slots and
    an output register; a beat written in cycle ``w`` can be read in ``w + 2``."""

    def __init__(self, env, name, inp: _Link, out: _Link, depth: int, per_frame: int) -> None:
        super().__init__(name)
        self.inp, self.out, self.depth, self.n = inp, out, depth, per_frame
        self.written = _Times(env, f"{name}.w", per_frame)
        self.moved = _Times(env, f"{name}.m", per_frame)
        self.times = [self.written, self.moved]

    def processes(self, frames):
        total, d = frames * self.n, self.depth

        def writer():
            last = -1
            for n in range(total):
                t = last + 1
                if d == 1 and n:
                    t = max(t, (yield from _at(self.out.xfer, n - 1)) + 1)
                elif d > 1 and n - d + 1 >= 0:
                    t = max(t, (yield from _at(self.moved, n - d + 1)) + 1)
                self.inp.want(n, t)
                last = yield from _at(self.inp.xfer, n)
                self.written.set(n, last)

        def mover():
            last = -1
            for n in range(total):
                w = yield from _at(self.written, n)
                if d == 1:
                    self.moved.set(n, w)
                    self.out.offer(n, w + 1)
                    continue
                m = max(w + 1, last + 1)
                if n:
                    m = max(m, (yield from _at(self.out.xfer, n - 1)))
                last = m
                self.moved.set(n, m)
                self.out.offer(n, m + 1)

        return [writer(), mover()]


class _Gather(_Unit):
    """``k`` input beats into one output register (width converter, gathering)."""

    def __init__(self, name, inp, out, k: int, out_per_frame: int) -> None:
        super().__init__(name)
        self.inp, self.out, self.k, self.n = inp, out, k, out_per_frame

    def processes(self, frames):
        def run():
            last, n = -1, 0
            for j in range(frames * self.n):
                for i in range(self.k):
                    t = last + 1
                    if i == 0 and j:
                        t = max(t, (yield from _at(self.out.xfer, j - 1)))
                    self.inp.want(n, t)
                    last = yield from _at(self.inp.xfer, n)
                    n += 1
                self.out.offer(j, last + 1)

        return [run()]


class _Split(_Unit):
    """One input beat into ``k`` output beats (width converter, splitting)."""

    def __init__(self, name, inp, out, k: int, in_per_frame: int) -> None:
        super().__init__(name)
        self.inp, self.out, self.k, self.n = inp, out, k, in_per_frame

    def processes(self, frames):
        def run():
            last, j = -1, 0
            for n in range(frames * self.n):
                t = last + 1
                if j:
                    t = max(t, (yield from _at(self.out.xfer, j - 1)))
                self.inp.want(n, t)
                last = yield from _at(self.inp.xfer, n)
                v = last + 1
                for i in range(self.k):
                    if i:
                        v = (yield from _at(self.out.xfer, j - 1)) + 1
                    self.out.offer(j, v)
                    j += 1

        return [run()]


class _Mvau(_Unit):
    """Matrix-vector unit: per input vector, ``nf`` passes of ``sf`` steps, one step per
    cycle; the first pass reads the input (and buffers it), the last step of a pass loads
    the output register (waiting for it to be free)."""

    def __init__(self, name, inp, out, sf: int, nf: int, vectors: int) -> None:
        super().__init__(name)
        self.inp, self.out, self.sf, self.nf, self.vectors = inp, out, sf, nf, vectors

    def processes(self, frames):
        sf_n, nf_n = self.sf, self.nf

        def run():
            s_last, d_last, n, j = -1, 0, 0, 0
            for _ in range(frames * self.vectors):
                for nf in range(nf_n):
                    for sf in range(sf_n):
                        t = max(s_last + 1, d_last)
                        if nf == 0:
                            self.inp.want(n, t)
                            t = yield from _at(self.inp.xfer, n)
                            n += 1
                        self.work.append(t)
                        d = t + 1
                        if sf == sf_n - 1:
                            if j:
                                d = max(d, (yield from _at(self.out.xfer, j - 1)))
                            self.out.offer(j, d + 1)
                            j += 1
                        s_last, d_last = t, d

        return [run()]


class _Vvau(_Unit):
    """Depthwise unit: reads ``taps * groups`` beats of a pixel, then sends ``groups``
    result beats; it takes no input while sending."""

    def __init__(self, name, inp, out, taps: int, groups: int, vectors: int) -> None:
        super().__init__(name)
        self.inp, self.out, self.taps, self.groups, self.vectors = (
            inp,
            out,
            taps,
            groups,
            vectors,
        )

    def processes(self, frames):
        def run():
            last, n, j = -1, 0, 0
            for _ in range(frames * self.vectors):
                for i in range(self.taps * self.groups):
                    t = last + 1
                    if i == 0 and j:
                        t = max(t, (yield from _at(self.out.xfer, j - 1)) + 1)
                    self.inp.want(n, t)
                    last = yield from _at(self.inp.xfer, n)
                    self.work.append(last)
                    n += 1
                v = last + 1
                for g in range(self.groups):
                    if g:
                        v = (yield from _at(self.out.xfer, j - 1)) + 1
                    self.out.offer(j, v)
                    j += 1

        return [run()]


class _Reduce(_Unit):
    """Pool window reducer: one tap per cycle; the last tap of a window loads the finished
    register (max) or, for average pooling, a second register stage for the division."""

    def __init__(self, env, name, inp, out, taps: int, windows: int, avg: bool) -> None:
        super().__init__(name)
        self.inp, self.out, self.taps, self.windows, self.avg = inp, out, taps, windows, avg
        self.loaded = _Times(env, f"{name}.l", windows)
        self.drained = _Times(env, f"{name}.d", windows)
        self.times = [self.loaded, self.drained] if avg else []

    def processes(self, frames):
        total = frames * self.windows

        def taps():
            last, n = -1, 0
            for j in range(total):
                for i in range(self.taps):
                    t = last + 1
                    if i == self.taps - 1 and j:
                        if self.avg:
                            t = max(t, (yield from _at(self.drained, j - 1)))
                        else:
                            t = max(t, (yield from _at(self.out.xfer, j - 1)))
                    self.inp.want(n, t)
                    last = yield from _at(self.inp.xfer, n)
                    self.work.append(last)
                    n += 1
                if self.avg:
                    self.loaded.set(j, last)
                else:
                    self.out.offer(j, last + 1)

        def drain():
            for j in range(total):
                m = (yield from _at(self.loaded, j)) + 1
                if j:
                    m = max(m, (yield from _at(self.out.xfer, j - 1)))
                self.drained.set(j, m)
                self.out.offer(j, m + 1)

        return [taps(), drain()] if self.avg else [taps()]


class _Window(_Unit):
    """Sliding-window generator: a writer filling the line buffer one beat per cycle (a new
    row only into a released slot) and a reader emitting each tap once it is written."""

    def __init__(self, env, name, inp, out, stage: Stage, groups: int, channel_major: bool):
        super().__init__(name)
        self.inp, self.out = inp, out
        _, h, w = stage.input.shape
        la = stage.main
        kh, kw = la.kernel if hasattr(la, "kernel") else la.weight.shape[2:]
        (sh, sw), (ph, pw) = la.stride, getattr(la, "padding", (0, 0))
        dh, dw = getattr(la, "dilation", (1, 1))
        g = groups
        self.h, self.wg = h, w * g
        self.n_in = h * w * g
        self.rows = line_buffer_rows(
            height=h,
            width=w,
            groups=g,
            kernel=(kh, kw),
            stride=(sh, sw),
            padding=(ph, pw),
            dilation=(dh, dw),
            channel_major=channel_major,
        )
        oh_n = conv_out_size(h, kh, sh, ph, dh)
        ow_n = conv_out_size(w, kw, sw, pw, dw)
        # tap order per pixel: (kh, kw, group), or (group, kh, kw) when channel-major
        oh, ow, a, b, cc = np.meshgrid(
            np.arange(oh_n),
            np.arange(ow_n),
            *(
                (np.arange(g), np.arange(kh), np.arange(kw))
                if channel_major
                else (np.arange(kh), np.arange(kw), np.arange(g))
            ),
            indexing="ij",
        )
        grp, ky, kx = (a, b, cc) if channel_major else (cc, a, b)
        y = oh * sh + ky * dh - ph
        x = ow * sw + kx * dw - pw
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        self.src = np.where(inside, y * self.wg + x * g + grp, -1).ravel().tolist()
        per_row = ow_n * kh * kw * g
        self.n_out = oh_n * per_row
        rel = released_rows(height=h, kernel_h=kh, stride_h=sh, padding_h=ph, dilation_h=dh)
        self.release = [0] * self.n_out  # rows newly released after each output beat
        prev = 0
        for o in range(oh_n):
            self.release[(o + 1) * per_row - 1] = rel[o] - prev
            prev = rel[o]
        self.written = _Times(env, f"{name}.w", self.n_in)
        self.released = _Times(env, f"{name}.r", h)
        self.times = [self.written, self.released]

    def processes(self, frames):
        def writer():
            last = -1
            for f in range(frames):
                for p in range(self.n_in):
                    n = f * self.n_in + p
                    t = last + 1
                    if p % self.wg == 0:
                        r = f * self.h + p // self.wg - self.rows
                        if r >= 0:
                            t = max(t, (yield from _at(self.released, r)) + 1)
                    self.inp.want(n, t)
                    last = yield from _at(self.inp.xfer, n)
                    self.written.set(n, last)

        def reader():
            last, j, freed = -1, 0, 0
            for f in range(frames):
                base = f * self.n_in
                for k in range(self.n_out):
                    t = last + 1
                    if j:
                        t = max(t, (yield from _at(self.out.xfer, j - 1)))
                    src = self.src[k]
                    if src >= 0:
                        t = max(t, (yield from _at(self.written, base + src)) + 1)
                    elif f >= 2:
                        t = max(t, (yield from _at(self.written, base - self.n_in - 1)) + 1)
                    last = t
                    self.work.append(t)
                    self.out.offer(j, t + 1)
                    j += 1
                    for _ in range(self.release[k]):
                        self.released.set(freed, t)
                        freed += 1

        return [writer(), reader()]


# -- the pipeline ---------------------------------------------------------------------------


@dataclass
class _StageModel:
    stage: Stage
    inp: _Link  #: into the stage's first unit
    out: _Link  #: out of its last unit
    main: _Unit  #: the unit whose steps count as busy cycles
    fifo: _Fifo | None  #: the FIFO in front of it
    fifo_in: _Link | None  #: the link into that FIFO


class _Model:
    """The units and links of a design, built for one simulated run."""

    def __init__(self, design: Design, frames: int, input_rate: float) -> None:
        self.design, self.frames, self.rate = design, frames, input_rate
        env = self.env = simpy.Environment()
        self.units: list[_Unit] = []
        self.links: list[_Link] = []
        self.stages: list[_StageModel] = []
        first = design.stages[0]
        n0 = stage_io(first, design.config[first.name])[0]
        self.source = cur = self._link("s_axis", first.input.size // n0)
        prev_n = None
        for s in design.stages:
            cfg = design.config[s.name]
            n_in, n_out = stage_io(s, cfg)
            beats_in = s.input.size // n_in
            fifo = fifo_in = None
            if prev_n is not None:
                if prev_n != n_in:
                    cur = self._convert(s.name, cur, prev_n, n_in, s.input.size)
                fifo_in = cur
                nxt = self._link(f"fifo_{s.name}.o", beats_in)
                fifo = _Fifo(env, f"fifo_{s.name}", cur, nxt, design.fifo_depth(s), beats_in)
                self.units.append(fifo)
                cur = nxt
            stage_in = cur
            cur, main = self._stage(s, cfg, cur, n_in, n_out)
            self.stages.append(_StageModel(s, stage_in, cur, main, fifo, fifo_in))
            prev_n = n_out
        self.sink = cur

    def _link(self, name: str, per_frame: int) -> _Link:
        link = _Link(self.env, name, per_frame)
        self.links.append(link)
        return link

    def _convert(self, name: str, cur: _Link, n_in: int, n_out: int, size: int) -> _Link:
        """Width converter(s) from ``n_in`` to ``n_out`` elements per beat, as the RTL's."""
        if n_out % n_in == 0:
            nxt = self._link(f"dwc_{name}.o", size // n_out)
            self.units.append(_Gather(f"dwc_{name}", cur, nxt, n_out // n_in, size // n_out))
            return nxt
        if n_in % n_out == 0:
            nxt = self._link(f"dwc_{name}.o", size // n_out)
            self.units.append(_Split(f"dwc_{name}", cur, nxt, n_in // n_out, size // n_in))
            return nxt
        g = math.gcd(n_in, n_out)
        mid = self._convert(f"{name}.down", cur, n_in, g, size)
        return self._convert(f"{name}.up", mid, g, n_out, size)

    def _stage(self, s: Stage, cfg, cur: _Link, n_in: int, n_out: int):
        env, units = self.env, []
        main: _Unit
        if s.kind in (StageKind.MVAU, StageKind.CONV):
            if s.kind is StageKind.CONV:
                c = s.input.shape[0]
                taps = s.mw * (c if s.depthwise else 1)  # window elements per pixel
                nxt = self._link(f"{s.name}.window", s.vectors * taps // n_in)
                units.append(_Window(env, f"{s.name}.window", cur, nxt, s, c // n_in, False))
                cur = nxt
            acc_beats = s.vectors * s.mh // n_out
            nxt = self._link(f"{s.name}.mvau", acc_beats)
            if s.depthwise:
                kh, kw = s.main.kernel
                main = _Vvau(f"{s.name}.vvau", cur, nxt, kh * kw, s.channels // cfg.pe, s.vectors)
            else:
                main = _Mvau(
                    f"{s.name}.mvau", cur, nxt, s.mw // cfg.simd, s.mh // cfg.pe, s.vectors
                )
            units.append(main)
            cur = nxt
            if len(s.layers) > 1:
                nxt = self._link(f"{s.name}.act", acc_beats)
                units.append(_Register(f"{s.name}.act", cur, nxt, acc_beats))
                cur = nxt
        elif s.kind is StageKind.POOL:
            c, _, _ = s.input.shape
            _, oh, ow = s.output.shape
            kh, kw = s.main.kernel
            windows = oh * ow * (c // cfg.pe)
            nxt = self._link(f"{s.name}.window", windows * kh * kw)
            units.append(_Window(env, f"{s.name}.window", cur, nxt, s, c // cfg.pe, True))
            cur = nxt
            nxt = self._link(f"{s.name}.reduce", windows)
            avg = s.main.op == "avgpool2d"
            main = _Reduce(env, f"{s.name}.reduce", cur, nxt, kh * kw, windows, avg)
            units.append(main)
            cur = nxt
        else:
            beats = s.output.size // n_out
            nxt = self._link(f"{s.name}.act", beats)
            main = _Register(f"{s.name}.act", cur, nxt, beats)
            units.append(main)
            cur = nxt
        self.units.extend(units)
        return cur, main

    def offered(self, n: int) -> int:
        """When the source offers input beat ``n``: always (rate 1), or evenly spread over a
        frame period of ``ceil(beats / rate)`` cycles."""
        if self.rate >= 1:
            return 0
        b = self.source.per_frame
        f, i = divmod(n, b)
        return f * math.ceil(b / self.rate) + math.floor(i / self.rate)

    def run(self) -> None:
        env, frames = self.env, self.frames

        def source():
            last = -1
            for n in range(frames * self.source.per_frame):
                self.source.offer(n, max(self.offered(n), last + 1))
                last = yield from _at(self.source.xfer, n)

        def sink():
            for n in range(frames * self.sink.per_frame):
                self.sink.want(n, 0)
                yield from _at(self.sink.xfer, n)

        env.process(source())
        env.process(sink())
        for u in self.units:
            for p in u.processes(frames):
                env.process(p)
        env.run()
        got = len(self.sink.xfer.t)
        if got != frames * self.sink.per_frame:
            stuck = [
                f"{x.name} {len(x.xfer.t)}/{frames * x.per_frame}"
                for x in self.links
                if len(x.xfer.t) != frames * x.per_frame
            ]
            raise SimulationError(f"the pipeline stopped; beats moved: {', '.join(stuck)}")

    def all_times(self) -> list[_Times]:
        return [x.xfer for x in self.links] + [t for u in self.units for t in u.times]

    def period(self, span: int, most: int = 4) -> tuple[int, int] | None:
        """``(q, P)`` when every beat of each of the last ``span`` frames moved exactly ``P``
        cycles after the same beat ``q`` frames before (the smallest such ``q`` up to
        ``most``); else None."""
        frames = self.frames
        arrays = [
            np.asarray(t.t, dtype=np.int64).reshape(frames, t.per_frame) for t in self.all_times()
        ]
        for q in range(1, most + 1):
            if frames < span + q:
                break
            p = None
            for a in arrays:
                d = a[frames - span :] - a[frames - span - q : frames - q]
                if d.min() != d.max() or (p is not None and d[0, 0] != p):
                    break
                p = int(d[0, 0])
            else:
                return q, p
        return None


def _horizon(design: Design) -> int:
    """Frames back that an event can depend on: FIFOs as deep as a frame or more, and the
    line buffers (rows of the previous frames, and padding taps two frames back)."""
    h = 3
    for s in design.stages:
        cfg = design.config[s.name]
        beats = s.input.size // stage_io(s, cfg)[0]
        h = max(h, -(-design.fifo_depth(s) // beats) + 2)
    return h


def _runs(a: np.ndarray) -> list[tuple[int, int]]:
    """Sorted distinct cycles as maximal runs ``[start, end)``."""
    if not len(a):
        return []
    a = np.unique(a)
    cut = np.flatnonzero(np.diff(a) != 1) + 1
    return [(int(r[0]), int(r[-1]) + 1) for r in np.split(a, cut)]


def _waits(start: np.ndarray, end: np.ndarray) -> list[tuple[int, int]]:
    keep = end > start
    spans = sorted(zip(start[keep].tolist(), end[keep].tolist(), strict=True))
    merged: list[list[int]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return [(s, e) for s, e in merged]


def simulate(
    design: Design,
    *,
    frames: int = 8,
    input_rate: float = 1.0,
    timeline_frames: int = 2,
    extend: bool = True,
) -> SimResult:
    """Predict latency, initiation interval, stalls and FIFO occupancy of ``design`` for
    ``frames`` frames, the input offered at ``input_rate`` beats per cycle (1.0: always
    valid; below 1, each frame's beats evenly spread over ``ceil(beats / rate)`` cycles) and
    the output always ready — the conditions of the cocotb bench's throughput phase.

    The II is measured as the bench measures it: the mean spacing of the last half of the
    frames' last output beats. With ``extend`` (default), frames after the pipeline has
    become periodic follow by exact periodic extension (see the module's docstring);
    ``extend=False`` simulates every frame beat by beat (same results, for benchmarks).
    """
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 2:
        raise ValueError(f"frames must be an int of at least 2, not {frames!r}")
    if not isinstance(input_rate, int | float) or not 0 < input_rate <= 1:
        raise ValueError(f"input_rate must be in (0, 1] beats per cycle, not {input_rate!r}")
    span = _horizon(design) + 1
    n = min(frames, max(2 * span + 2, timeline_frames, 8)) if extend else frames
    while True:
        model = _Model(design, n, float(input_rate))
        model.run()
        p = None if n == frames else model.period(span)
        if n == frames or p is not None:
            break
        n = min(frames, 2 * n)
    return _result(model, frames, p or (1, 0), timeline_frames)


def _result(model: _Model, frames: int, period: tuple[int, int], timeline_frames: int) -> SimResult:
    n = model.frames
    extra = frames - n  # frames added by periodic extension: frame f is frame f - q, + P
    q, big_p = period
    # the simulated frame each extended frame repeats, and how many periods later
    src = n - q + np.arange(extra) % q
    shift = (n + np.arange(extra) - src) // q * big_p

    def per_frame(x: np.ndarray, per: int) -> np.ndarray:
        return x.reshape(n, per)

    def total(x: np.ndarray) -> int:
        """A per-frame quantity summed over all frames (extension repeats the pattern)."""
        return int(x.sum() + x[src].sum())

    def extended(x: np.ndarray) -> np.ndarray:
        """A per-frame time for all frames."""
        return np.concatenate([x, x[src] + shift]) if extra else x

    def last_time(link: _Link) -> int:
        return int(extended(per_frame(np.asarray(link.xfer.t), link.per_frame)[:, -1])[-1])

    out = model.sink
    t_out = np.asarray(out.xfer.t, dtype=np.int64)
    ends = extended(per_frame(t_out, out.per_frame)[:, -1])
    t0 = model.source.xfer.t[0]
    k = max(1, (frames - 1) // 2)
    ii = float(ends[-1] - ends[-1 - k]) / k
    cycles = int(ends[-1] - t0 + 1)
    design = model.design
    stats, timeline = [], []
    for sm in model.stages:
        s, cfg = sm.stage, design.config[sm.stage.name]
        tin = np.asarray(sm.inp.xfer.t, dtype=np.int64)
        rin = np.asarray(sm.inp.ready, dtype=np.int64)[: len(tin)]
        tout = np.asarray(sm.out.xfer.t, dtype=np.int64)
        vout = np.asarray(sm.out.valid, dtype=np.int64)[: len(tout)]
        starved = np.maximum(tin - rin, 0)
        blocked = np.maximum(tout - vout, 0)
        work = np.asarray(sm.main.work, dtype=np.int64)
        busy = len(work) // n * frames
        fifo_max = fifo_full = None
        if sm.fifo is not None:
            w = np.asarray(sm.fifo.written.t, dtype=np.int64)
            r = np.asarray(sm.fifo.out.xfer.t, dtype=np.int64)
            fifo_max = int((np.arange(1, len(w) + 1) - np.searchsorted(r, w, "right")).max())
            fin = sm.fifo_in
            tv = np.asarray(fin.xfer.t, dtype=np.int64)
            vv = np.asarray(fin.valid, dtype=np.int64)[: len(tv)]
            fifo_full = total(per_frame(np.maximum(tv - vv, 0), fin.per_frame).sum(axis=1))
        stats.append(
            StageStats(
                name=s.name,
                kind=s.kind.value,
                pe=cfg.pe,
                simd=cfg.simd,
                ideal_cycles=design.cycles(s),
                busy=busy,
                starved=total(per_frame(starved, sm.inp.per_frame).sum(axis=1)),
                blocked=total(per_frame(blocked, sm.out.per_frame).sum(axis=1)),
                utilisation=busy / cycles,
                fifo_depth=design.fifo_depth(s) if sm.fifo is not None else None,
                fifo_max=fifo_max,
                fifo_full_cycles=fifo_full,
                first_out=int(tout[0] - t0),
                last_out=last_time(sm.out) - t0,
            )
        )
        tf = min(timeline_frames, n)
        for a, b in _runs(work[: len(work) // n * tf] - t0):
            timeline.append(Interval(s.name, a, b, "busy"))
        m_in, m_out = sm.inp.per_frame * tf, sm.out.per_frame * tf
        for a, b in _waits(rin[:m_in] - t0, tin[:m_in] - t0):
            timeline.append(Interval(s.name, a, b, "starved"))
        for a, b in _waits(vout[:m_out] - t0, tout[:m_out] - t0):
            timeline.append(Interval(s.name, a, b, "blocked"))
    return SimResult(
        network=design.network.name,
        frames=frames,
        input_rate=model.rate,
        clock_mhz=float(design.config.clock_mhz),
        latency=int(t_out[0] - t0),
        latency_last=int(ends[0] - t0),
        ii=ii,
        ideal_ii=design.ideal_ii,
        cycles=cycles,
        stages=tuple(stats),
        timeline=tuple(timeline),
        frames_simulated=n,
        output_ends=tuple(int(e - t0) for e in ends),
    )


#: FIFO depth standing for "unbounded" while sizing (no RTL is built with it).
_UNBOUNDED = 1 << 30


def pipeline_rate(design: Design) -> float:
    """Input beats per cycle at which the pipeline runs at its ideal II: one frame of input
    beats per ``ideal_ii`` cycles."""
    first = design.stages[0]
    beats = first.input.size // stage_io(first, design.config[first.name])[0]
    return min(1.0, beats / design.ideal_ii)


def size_fifos(design: Design, *, input_rate: float | None = None, frames: int = 8) -> Design:
    """The design with every FIFO at the smallest depth (at least 2) at which it never
    refuses a beat at ``input_rate`` (default, and at most, :func:`pipeline_rate`: a source
    faster than the pipeline fills the FIFOs in front of its slowest stage whatever their
    depth).

    Exact, not a search: with every FIFO unbounded the schedule is simulated once; a FIFO
    of depth ``D`` refuses beat ``n`` only if its ``n - D + 1``-th beat has not yet moved to
    the output register by the cycle beat ``n`` arrives, so the smallest safe ``D`` is read
    off that schedule. At those depths no FIFO ever refuses a beat, so the schedule — and the
    II — is the unbounded one.
    """
    from dataclasses import replace

    from models.hwconfig import HardwareConfig

    rate = pipeline_rate(design)
    if input_rate is not None:
        rate = min(rate, input_rate)
    cfg = design.config
    big = HardwareConfig(
        {s.name: replace(cfg[s.name], fifo_depth=_UNBOUNDED) for s in design.stages},
        cfg.clock_mhz,
    )
    model = _Model(Design(design.network, big), frames, float(rate))
    model.run()
    depths = {}
    for sm in model.stages:
        if sm.fifo is None:
            continue
        w = np.asarray(sm.fifo.written.t, dtype=np.int64)
        m = np.asarray(sm.fifo.moved.t, dtype=np.int64)
        moved_before = np.searchsorted(m + 1, w, "right")  # beats moved by arrival of n
        need = np.arange(len(w)) + 2 - moved_before
        depths[sm.stage.name] = max(2, int(need.max()))
    stages = {
        s.name: replace(cfg[s.name], fifo_depth=depths.get(s.name, cfg[s.name].fifo_depth))
        for s in design.stages
    }
    return Design(design.network, HardwareConfig(stages, cfg.clock_mhz))


# -- analytic mode ---------------------------------------------------------------------------


def _fold(values, n: int) -> np.ndarray:
    a = np.asarray(values, dtype=np.int64)
    return np.broadcast_to(a, (n,)) if a.ndim == 0 else a


def analytic(design: Design, pe=None, simd=None) -> dict[str, np.ndarray]:
    """Closed-form initiation interval and latency of ``design``'s network for many foldings
    at once (design-space exploration), vectorised with numpy.

    Parameters
    ----------
    design
        Supplies the network and the stages; its own folding is used where ``pe`` or
        ``simd`` does not name a stage.
    pe, simd
        Stage name → array of values (one per design point; all arrays of one length
        ``N``). The caller guarantees validity (see :func:`random_foldings`).

    Returns
    -------
    dict
        ``ii`` (ideal initiation interval: the slowest stage's cycles per frame), ``latency``
        (first input beat → first output beat, input always valid: the sum of the stages'
        fill times, FIFOs and width converters; an estimate — :func:`simulate` is exact),
        ``multipliers`` (Σ PE·SIMD) and ``cycles__<stage>`` per stage, each of shape ``(N,)``.
    """
    pe, simd = dict(pe or {}), dict(simd or {})
    n = max([len(np.atleast_1d(v)) for v in (*pe.values(), *simd.values())] or [1])
    out: dict[str, np.ndarray] = {}
    ii = np.zeros(n, dtype=np.int64)
    mults = np.zeros(n, dtype=np.int64)
    # first and last input beat of frame 0 at the current point of the pipeline
    first = np.zeros(n)
    last = None
    prev_out = None  # elements per beat leaving the previous stage
    for k, s in enumerate(design.stages):
        cfg = design.config[s.name]
        p = _fold(pe.get(s.name, cfg.pe), n)
        q = _fold(simd.get(s.name, cfg.simd), n)
        matrix = s.kind in (StageKind.MVAU, StageKind.CONV) and not s.depthwise
        n_in, n_out = (q, p) if matrix else (p, p)
        beats_in = s.input.size // n_in
        if k:  # width converter, then the FIFO (two cycles)
            up = n_in > prev_out
            first = first + np.where(up, n_in // np.maximum(prev_out, 1), 1) + 2
            last = last + np.where(n_in < prev_out, prev_out // n_in, 1) + 2
        else:
            last = first + beats_in - 1
        span = np.maximum(last - first, 0)
        rate = np.where(span > 0, (beats_in - 1) / np.maximum(span, 1), 1.0)
        if s.kind is StageKind.CONV:
            c, h, w = s.input.shape
            kh, kw = s.main.kernel
            (dh, dw), (ph, pw) = s.main.dilation, s.main.padding
            g = c // n_in
            tap = np.maximum(0, ((kh - 1) * dh - ph) * w * g + ((kw - 1) * dw - pw) * g + g - 1)
            if matrix:
                sf, nf = s.mw // q, s.mh // p
                cycles = np.maximum(h * w * c // n_in, s.vectors * sf * nf)
            else:
                sf, nf = kh * kw * (c // p), 1
                cycles = np.maximum(h * w * c // n_in, s.vectors * (kh * kw + 1) * (c // p))
            fo = first + tap / rate + sf + 3
            lo = np.maximum(fo + cycles - sf, last + sf * nf + 2)
        elif s.kind is StageKind.MVAU:
            sf, nf = s.mw // q, s.mh // p
            cycles = sf * nf
            fo = np.maximum(last, first + sf - 1) + 2
            lo = fo + (nf - 1) * sf
        elif s.kind is StageKind.POOL:
            c, h, w = s.input.shape
            kh, kw = s.main.kernel
            _, oh, ow = s.output.shape
            g = c // p
            cycles = np.maximum(h * w, oh * ow * kh * kw) * g
            tap = (kh - 1) * w * g + (kw - 1) * g + g - 1
            fo = first + tap / rate + kh * kw + 2
            lo = np.maximum(fo + cycles - kh * kw, last + kh * kw + 2)
        else:
            cycles = s.output.size // p
            fo, lo = first + 1, last + 1
        if len(s.layers) > 1 and s.kind is not StageKind.ACT:
            fo, lo = fo + 1, lo + 1
        cycles = np.asarray(cycles, dtype=np.int64)
        out[f"cycles__{s.name}"] = cycles
        ii = np.maximum(ii, cycles)
        mults += p * q if matrix else p
        first, last, prev_out = fo, lo, n_out
    out.update(ii=ii, latency=np.rint(first).astype(np.int64), multipliers=mults)
    return out


def random_foldings(design: Design, n: int, seed: int = 0) -> tuple[dict, dict]:
    """``n`` random valid foldings of ``design``'s stages: (pe, simd), each stage name →
    integer array of ``n`` values drawn uniformly from the stage's valid choices."""
    rng = np.random.default_rng(seed)
    pe, simd = {}, {}
    for s in design.stages:
        pe[s.name] = rng.choice(np.asarray(s.pe_choices()), n)
        simd[s.name] = rng.choice(np.asarray(s.simd_choices()), n)
    return pe, simd
