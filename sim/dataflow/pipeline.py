"""The pipeline of units for a design, the simulation run, periodic extension, statistics
and FIFO sizing (see the package docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import simpy
from codesign.models.hwconfig import (
    ConfigError,
    Design,
    Stage,
    StageKind,
    fifo_name,
    fork_name,
    port_width,
    readers,
    stage_io,
)

from ..results import Interval, SimResult, StageStats
from .units import (
    Add,
    Admit,
    Deform,
    Fifo,
    Fork,
    Gather,
    GlobalReduce,
    Link,
    Mvau,
    SimulationError,
    Split,
    Times,
    Unit,
    Vvau,
    Window,
    at,
)

# -- the pipeline ---------------------------------------------------------------------------


@dataclass
class _FifoModel:
    name: str  #: :func:`codesign.models.hwconfig.fifo_name`
    depth: int
    unit: Fifo
    inp: Link  #: the link into it


@dataclass
class _StageModel:
    stage: Stage
    inp: Link  #: into the stage's first unit (port 0)
    out: Link  #: out of its last unit
    main: Unit  #: the unit whose steps count as busy cycles
    fifos: list[_FifoModel | None]  #: the FIFO in front of each input port, if any


class _Model:
    """The units and links of a design, built for one simulated run: the stages in
    topological order, a fork wherever two stages read one stream, on each stage input a
    width converter where widths differ and its FIFO."""

    def __init__(
        self, design: Design, frames: int, input_rate: float, fetch: dict | None = None
    ) -> None:
        self.design, self.frames, self.rate = design, frames, input_rate
        #: a deformable stage's per-tap fetch cycles, frames × taps (:func:`fetch_cycles`)
        self.fetch = fetch or {}
        self.env = simpy.Environment()
        self.units: list[Unit] = []
        self.links: list[Link] = []
        self.stages: list[_StageModel] = []
        read = readers(design.stages)
        first = design.stage(read[None][0][0])
        n0 = stage_io(first, design.config[first.name])[0]
        self.source = self._link("s_axis", first.input.size // n0)
        pending: dict[tuple[str, int], Link] = {}  # (stage, port) → its incoming link
        self._branch(None, self.source, read, pending)
        cur = self.source
        for s in design.stages:
            cfg = design.config[s.name]
            n_in, n_out = stage_io(s, cfg)
            ins, fifos = [], []
            for port, tensor in enumerate(s.inputs):
                cur = pending.pop((s.name, port))
                name = fifo_name(s.name, port)
                prev_n = design.in_width(s, port)
                n_port = port_width(s, cfg, port)
                if prev_n != n_port:
                    cur = self._convert(name, cur, prev_n, n_port, tensor.size)
                fifo = None
                if design.has_fifo(s, port):
                    beats = tensor.size // n_port
                    nxt = self._link(f"fifo_{name}.o", beats)
                    depth = design.fifo_depth(s, port)
                    unit = Fifo(self.env, f"fifo_{name}", cur, nxt, depth, beats)
                    self.units.append(unit)
                    fifo = _FifoModel(name, depth, unit, cur)
                    cur = nxt
                ins.append(cur)
                fifos.append(fifo)
            out, main = self._stage(s, cfg, ins, n_in, n_out)
            self.stages.append(_StageModel(s, ins[0], out, main, fifos))
            if s is design.stages[-1]:
                self.sink = out
            else:
                self._branch(s.name, out, read, pending)

    def _branch(self, src, link: Link, read, pending) -> None:
        """Route ``link`` (the stream of producer ``src``) to its readers, through a chain
        of two-way forks (``fork_<src>``, ``fork_<src>_1``, ...) when there are several."""
        rs = read.get(src, [])
        for k, key in enumerate(rs[:-1]):
            name = fork_name(src, k)
            o0 = self._link(f"{name}.o0", link.per_frame)
            o1 = self._link(f"{name}.o1", link.per_frame)
            self.units.append(Fork(name, link, o0, o1))
            pending[key] = o0
            link = o1
        pending[rs[-1]] = link

    def _link(self, name: str, per_frame: int, *, strict: bool = False) -> Link:
        link = Link(self.env, name, per_frame, strict=strict)
        self.links.append(link)
        return link

    def _convert(self, name: str, cur: Link, n_in: int, n_out: int, size: int) -> Link:
        """Width converter(s) from ``n_in`` to ``n_out`` elements per beat, as the RTL's."""
        if n_out % n_in == 0:
            nxt = self._link(f"dwc_{name}.o", size // n_out)
            self.units.append(Gather(f"dwc_{name}", cur, nxt, n_out // n_in, size // n_out))
            return nxt
        if n_in % n_out == 0:
            nxt = self._link(f"dwc_{name}.o", size // n_out)
            self.units.append(Split(f"dwc_{name}", cur, nxt, n_in // n_out, size // n_in))
            return nxt
        g = math.gcd(n_in, n_out)
        mid = self._convert(f"{name}.down", cur, n_in, g, size)
        return self._convert(f"{name}.up", mid, g, n_out, size)

    def _queue(self, s: Stage, beats: int) -> tuple[Link, Link]:
        """The links into and out of the stage's credit queue, and the queue itself."""
        pl = self.design.pipeline(s)
        q_in = self._link(f"{s.name}.pipe", beats, strict=True)
        q_out = self._link(f"{s.name}.queue", beats)
        self.units.append(Fifo(self.env, f"{s.name}.queue", q_in, q_out, pl.queue_depth, beats))
        return q_in, q_out

    def _stage(self, s: Stage, cfg, ins: list[Link], n_in: int, n_out: int):
        env, units = self.env, []
        cur = ins[0]
        main: Unit
        pl = self.design.pipeline(s)
        if s.kind is StageKind.ADD:
            beats = s.acc.size // n_out
            q_in, q_out = self._queue(s, beats)
            main = Add(
                f"{s.name}.add", ins[0], ins[1], q_in, beats, pl.latency, pl.queue_depth, q_out
            )
            units.append(main)
            cur = q_out
        elif s.global_pool:
            c, h, w = s.input.shape
            nxt = self._link(f"{s.name}.reduce", c // cfg.pe)
            main = GlobalReduce(f"{s.name}.reduce", cur, nxt, h * w, c // cfg.pe)
            units.append(main)
            cur = nxt
        elif s.kind in (StageKind.MVAU, StageKind.CONV, StageKind.DEFORM):
            if s.kind is StageKind.DEFORM:  # the gather: a tap's C samples per beat
                _, h, w = s.input.shape
                kh, kw = s.main.kernel
                nxt = self._link(f"{s.name}.gather", s.vectors * kh * kw)
                units.append(
                    Deform(
                        env,
                        f"{s.name}.gather",
                        ins[0],
                        ins[1],
                        nxt,
                        pixels=h * w,
                        beats=s.vectors,
                        taps=kh * kw,
                        fetch=self.fetch[s.name],
                    )
                )
                cur = nxt
            if s.kind is StageKind.CONV:
                c = s.input.shape[0]
                taps = s.mw * (c if s.depthwise else 1)  # window elements per pixel
                nxt = self._link(f"{s.name}.window", s.vectors * taps // n_in)
                units.append(Window(env, f"{s.name}.window", cur, nxt, s, c // n_in, False))
                cur = nxt
            acc_beats = s.vectors * s.mh // n_out
            if s.depthwise:
                kh, kw = s.main.kernel
                nxt = self._link(f"{s.name}.vvau", acc_beats)
                main = Vvau(f"{s.name}.vvau", cur, nxt, kh * kw, s.channels // cfg.pe, s.vectors)
                units.append(main)
                cur = nxt
                if pl is not None:
                    q_in, q_out = self._queue(s, acc_beats)
                    units.append(
                        Admit(
                            f"{s.name}.admit",
                            cur,
                            q_in,
                            acc_beats,
                            pl.latency,
                            pl.queue_depth,
                            q_out,
                        )
                    )
                    cur = q_out
            else:
                q_in, q_out = self._queue(s, acc_beats)
                main = Mvau(
                    f"{s.name}.mvau",
                    cur,
                    q_in,
                    s.mw // cfg.simd,
                    s.mh // cfg.pe,
                    s.vectors,
                    pl.latency,
                    pl.queue_depth,
                    q_out,
                )
                units.append(main)
                cur = q_out
        elif s.kind is StageKind.POOL:  # the window heads the credit pipeline
            c = s.input.shape[0]
            q_in, q_out = self._queue(s, s.output.size // n_out)
            main = Window(env, f"{s.name}.window", cur, q_in, s, c // cfg.pe, True, (pl, q_out))
            units.append(main)
            cur = q_out
        else:
            beats = s.output.size // n_out
            q_in, q_out = self._queue(s, beats)
            main = Admit(f"{s.name}.act", cur, q_in, beats, pl.latency, pl.queue_depth, q_out)
            units.append(main)
            cur = q_out
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
                last = yield from at(self.source.xfer, n)

        def sink():
            for n in range(frames * self.sink.per_frame):
                self.sink.want(n, 0)
                yield from at(self.sink.xfer, n)

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
            d = self.design
            short = [  # join FIFOs configured below their deadlock-free bound, worst first
                (d.join_bound(st, port) - d.fifo_depth(st, port), st.name, port)
                for st in d.stages
                if st.kind is StageKind.ADD
                for port in range(2)
                if d.has_fifo(st, port) and d.fifo_depth(st, port) < d.join_bound(st, port)
            ]
            if short:
                _, name, port = max(short)
                field = "fifo_depth" if port == 0 else "fifo_depth_b"
                raise ConfigError(
                    f"stage {name!r}: the pipeline deadlocks: {field} "
                    f"{d.fifo_depth(name, port)} cannot hold what the other input's branch "
                    f"runs ahead; {d.join_bound(name, port)} never deadlocks (the default "
                    f"when {field} is unset)"
                )
            raise SimulationError(f"the pipeline stopped; beats moved: {', '.join(stuck)}")

    def all_times(self) -> list[Times]:
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
    for s, port, _ in design.fifos():
        cfg = design.config[s.name]
        beats = s.inputs[port].size // port_width(s, cfg, port)
        h = max(h, -(-design.fifo_depth(s, port) // beats) + 2)
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


def deform_stages(design: Design) -> list[Stage]:
    """The design's deformable stages, whose timing depends on each frame's offsets."""
    return [s for s in design.stages if s.kind is StageKind.DEFORM]


def fetch_cycles(design: Design, inputs) -> dict[str, np.ndarray]:
    """Per-tap fetch cycles of every deformable stage of ``design`` for the frames
    ``inputs`` (``(N, *input shape)`` integers, as :func:`codesign.models.golden.random_inputs`
    draws them): stage name → ``(N, Ho·Wo·kh·kw)`` int64, in the order the gather serves the
    taps (:func:`codesign.models.deform.engine.window_fetch_cycles` on the golden trace's
    offsets, with the stage's frame-store banks and ports)."""
    from codesign.models.deform.engine import window_fetch_cycles
    from codesign.models.golden import trace

    stages = deform_stages(design)
    if not stages:
        return {}
    values = trace(design.network, inputs)
    out = {}
    for s in stages:
        la, cfg = s.main, design.config[s.name]
        _, h, w = s.input.shape
        off = np.asarray(values[la.inputs[1]])
        fc = window_fetch_cycles(
            off,
            height=h,
            width=w,
            kernel=la.kernel,
            stride=la.stride,
            padding=la.padding,
            dilation=la.dilation,
            variant=la.variant,
            frac=la.offset_frac(s.inputs[1]),
            banks=cfg.deform_banks,
            ports=cfg.deform_ports,
        )
        out[s.name] = fc.reshape(len(off), -1)
    return out


def _frame_fetch(design: Design, frames: int, inputs, fetch) -> dict[str, np.ndarray]:
    """The deformable stages' fetch cycles for ``frames`` frames, from ``fetch`` (stage name
    → frames × taps) or the frames ``inputs``; a one-line error when neither is given or
    either is short."""
    stages = deform_stages(design)
    if not stages:
        return {}
    if fetch is None and inputs is None:
        raise ConfigError(
            f"stage {stages[0].name!r}: a deformable stage's cycles depend on its offsets; "
            "simulate needs the frames (inputs=) or their per-tap fetch cycles (fetch_cycles=)"
        )
    if fetch is None:
        x = np.asarray(inputs)
        want = tuple(design.network.input_tensor.shape)
        if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want or len(x) < frames:
            raise ValueError(
                f"inputs must be at least {frames} frames of shape {want}, not an array of "
                f"shape {x.shape}"
            )
        fetch = fetch_cycles(design, x[:frames])
    out = {}
    for s in stages:
        kh, kw = s.main.kernel
        taps = s.vectors * kh * kw
        if s.name not in fetch:
            raise ValueError(f"fetch_cycles must give stage {s.name!r}, not only {sorted(fetch)}")
        a = np.asarray(fetch[s.name])
        if a.ndim < 1 or len(a) < frames or a[0].size != taps:
            raise ValueError(
                f"fetch_cycles[{s.name!r}] must be at least {frames} frames of {taps} taps, "
                f"not an array of shape {a.shape}"
            )
        a = np.asarray(a[:frames], dtype=np.int64).reshape(frames, taps)
        if a.min() < 1:
            raise ValueError(f"fetch_cycles[{s.name!r}] must be at least 1 per tap")
        out[s.name] = a
    return out


def simulate(
    design: Design,
    *,
    frames: int = 8,
    input_rate: float = 1.0,
    timeline_frames: int = 2,
    extend: bool = True,
    inputs=None,
    fetch_cycles: dict | None = None,
) -> SimResult:
    """Predict latency, initiation interval, stalls and FIFO occupancy of ``design`` for
    ``frames`` frames, the input offered at ``input_rate`` beats per cycle (1.0: always
    valid; below 1, each frame's beats evenly spread over ``ceil(beats / rate)`` cycles) and
    the output always ready — the conditions of the cocotb bench's throughput phase.

    The II is measured as the bench measures it: the mean spacing of the last half of the
    frames' last output beats. With ``extend`` (default), frames after the pipeline has
    become periodic follow by exact periodic extension (see the module's docstring);
    ``extend=False`` simulates every frame beat by beat (same results, for benchmarks).

    A deformable stage's timing depends on each frame's offsets, so a design with one needs
    the frames: ``inputs`` (at least ``frames`` input frames, ``(N, *input shape)``; the
    first ``frames`` are simulated, in order) or ``fetch_cycles`` (stage name → per-tap
    fetch cycles, :func:`fetch_cycles`); every frame is then simulated beat by beat (frames
    differ, so no periodic extension). Without either it raises
    :class:`~codesign.models.hwconfig.ConfigError`.
    """
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 2:
        raise ValueError(f"frames must be an int of at least 2, not {frames!r}")
    if not isinstance(input_rate, int | float) or not 0 < input_rate <= 1:
        raise ValueError(f"input_rate must be in (0, 1] beats per cycle, not {input_rate!r}")
    fetch = _frame_fetch(design, frames, inputs, fetch_cycles)
    if fetch:
        extend = False  # each frame's timing is its own
    span = _horizon(design) + 1
    n = min(frames, max(2 * span + 2, timeline_frames, 8)) if extend else frames
    while True:
        model = _Model(design, n, float(input_rate), fetch)
        model.run()
        p = None if n == frames else model.period(span)
        if n == frames or p is not None:
            break
        n = min(frames, 2 * n)
    return _result(model, frames, p or (1, 0), timeline_frames)


def beat_times(
    design: Design,
    *,
    frames: int,
    input_rate: float = 1.0,
    inputs=None,
    fetch_cycles: dict | None = None,
) -> dict[str, np.ndarray]:
    """The cycle of every beat's transfer, beat by beat over all ``frames`` (no periodic
    extension), cycle 0 the first input beat's: ``"input"``, ``"output"`` and each stage's
    output stream (after its credit queue) by stage name, each ``(frames, beats per
    frame)``. ``inputs``/``fetch_cycles`` as for :func:`simulate`. For comparing with an RTL
    run beat by beat."""
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise ValueError(f"frames must be a positive int, not {frames!r}")
    fetch = _frame_fetch(design, frames, inputs, fetch_cycles)
    model = _Model(design, frames, float(input_rate), fetch)
    model.run()
    t0 = model.source.xfer.t[0]

    def times(link: Link) -> np.ndarray:
        return np.asarray(link.xfer.t, dtype=np.int64).reshape(frames, -1) - t0

    out = {"input": times(model.source), "output": times(model.sink)}
    out.update({sm.stage.name: times(sm.out) for sm in model.stages})
    return out


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

    def last_time(link: Link) -> int:
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
        fifo_stats = []
        for fm in sm.fifos:
            if fm is None:
                fifo_stats.append((None, None, None))
                continue
            w = np.asarray(fm.unit.written.t, dtype=np.int64)
            r = np.asarray(fm.unit.out.xfer.t, dtype=np.int64)
            fifo_max = int((np.arange(1, len(w) + 1) - np.searchsorted(r, w, "right")).max())
            fin = fm.inp
            tv = np.asarray(fin.xfer.t, dtype=np.int64)
            vv = np.asarray(fin.valid, dtype=np.int64)[: len(tv)]
            fifo_full = total(per_frame(np.maximum(tv - vv, 0), fin.per_frame).sum(axis=1))
            fifo_stats.append((fm.depth, fifo_max, fifo_full))
        (fifo_depth, fifo_max, fifo_full), *rest = fifo_stats
        b = rest[0] if rest else (None, None, None)
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
                fifo_depth=fifo_depth,
                fifo_max=fifo_max,
                fifo_full_cycles=fifo_full,
                fifo_b_depth=b[0],
                fifo_b_max=b[1],
                fifo_b_full_cycles=b[2],
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


def size_fifos(
    design: Design,
    *,
    input_rate: float | None = None,
    frames: int = 8,
    inputs=None,
    fetch_cycles: dict | None = None,
) -> Design:
    """The design with every FIFO at the smallest depth (at least 2) at which it never
    refuses a beat at ``input_rate`` (default, and at most, :func:`pipeline_rate`: a source
    faster than the pipeline fills the FIFOs in front of its slowest stage whatever their
    depth).

    Exact, not a search: with every FIFO unbounded the schedule is simulated once; a FIFO
    of depth ``D`` refuses beat ``n`` only if its ``n - D + 1``-th beat has not yet moved to
    the output register by the cycle beat ``n`` arrives, so the smallest safe ``D`` is read
    off that schedule. At those depths no FIFO ever refuses a beat, so the schedule — and the
    II — is the unbounded one. A design with deformable stages needs ``inputs`` or
    ``fetch_cycles`` (see :func:`simulate`); the depths are those of these frames.
    """
    from dataclasses import replace

    from codesign.models.hwconfig import HardwareConfig

    rate = pipeline_rate(design)
    if input_rate is not None:
        rate = min(rate, input_rate)
    cfg = design.config

    def unbounded(s):
        b = _UNBOUNDED if len(s.inputs) > 1 else None  # an add's, a deformable's offsets
        return replace(cfg[s.name], fifo_depth=_UNBOUNDED, fifo_depth_b=b)

    big = HardwareConfig({s.name: unbounded(s) for s in design.stages}, cfg.clock_mhz, cfg.pipeline)
    fetch = _frame_fetch(design, frames, inputs, fetch_cycles)
    model = _Model(Design(design.network, big), frames, float(rate), fetch)
    model.run()
    stages = {s.name: cfg[s.name] for s in design.stages}
    for sm in model.stages:
        for port, fm in enumerate(sm.fifos):
            if fm is None:
                continue
            w = np.asarray(fm.unit.written.t, dtype=np.int64)
            m = np.asarray(fm.unit.moved.t, dtype=np.int64)
            moved_before = np.searchsorted(m + 1, w, "right")  # beats moved by arrival of n
            need = max(2, int((np.arange(len(w)) + 2 - moved_before).max()))
            field = "fifo_depth" if port == 0 else "fifo_depth_b"
            stages[sm.stage.name] = replace(stages[sm.stage.name], **{field: need})
    return Design(design.network, HardwareConfig(stages, cfg.clock_mhz, cfg.pipeline))
