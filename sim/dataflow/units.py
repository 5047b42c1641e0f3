"""The simulator's units: per-beat times, ready/valid links, and one simpy process (or
two) per hardware unit, each following the handshake rules of its RTL block (see the
package docstring)."""

from __future__ import annotations

from collections import deque

import numpy as np
import simpy
from codesign.models.dataflow import conv_out_size
from codesign.models.deform.engine import RUN_ISSUE_LATENCY, RUN_OUTPUT_LATENCY
from codesign.models.hwconfig import Stage
from codesign.models.linebuffer import (
    READ_LATENCY,
    WINDOW_CREDITS,
    line_buffer_rows,
    released_rows,
)
from codesign.models.pipelining import StagePipeline


class SimulationError(RuntimeError):
    """The model broke one of its own invariants (a bug in the simulator, never bad input)."""


class Times:
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


def at(times: Times, n: int):
    """``yield from at(times, n)``: the time of beat ``n``, waiting until it is known."""
    if n < len(times.t):
        return times.t[n]
    return (yield times.wait(n))


class Link:
    """A ready/valid stream between two units: beat ``n`` moves at ``max(valid, ready)``,
    fired at that simulated time."""

    def __init__(
        self, env: simpy.Environment, name: str, per_frame: int, *, strict: bool = False
    ) -> None:
        self.env, self.name, self.per_frame = env, name, per_frame
        #: a link into a credit queue: the RTL writes without looking at ``ready``, so a
        #: beat that would have to wait is a broken credit count
        self.strict = strict
        self.valid: list[int] = []
        self.ready: list[int] = []
        self.xfer = Times(env, name, per_frame)
        self.offers = Times(env, f"{name}.v", per_frame)  #: valid times, as decided

    def offer(self, n: int, t: int) -> None:
        self.valid.append(t)
        self.offers.set(n, t)
        self._try(n)

    def want(self, n: int, t: int) -> None:
        self.ready.append(t)
        self._try(n)

    def _try(self, n: int) -> None:
        if n < len(self.valid) and n < len(self.ready):
            t = max(self.valid[n], self.ready[n])
            if self.strict and self.ready[n] > self.valid[n]:
                raise SimulationError(
                    f"{self.name}: beat {n} offered at {self.valid[n]} found no room until "
                    f"{self.ready[n]} (credit count broken)"
                )
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


class Unit:
    work: list[int]

    def __init__(self, name: str) -> None:
        self.name = name
        self.work = []  # cycles in which the unit computed (busy)
        self.times: list[Times] = []  # internal quantities checked for periodicity

    def processes(self, frames: int):  # pragma: no cover - interface
        raise NotImplementedError


class Fifo(Unit):
    """``amaranth.lib.fifo.SyncFIFOBuffered`` of ``depth``: ``depth - 1`` memory slots and
    an output register; a beat written in cycle ``w`` can be read in ``w + 2``."""

    def __init__(self, env, name, inp: Link, out: Link, depth: int, per_frame: int) -> None:
        super().__init__(name)
        self.inp, self.out, self.depth, self.n = inp, out, depth, per_frame
        self.written = Times(env, f"{name}.w", per_frame)
        self.moved = Times(env, f"{name}.m", per_frame)
        self.times = [self.written, self.moved]

    def processes(self, frames):
        total, d = frames * self.n, self.depth

        def writer():
            last = -1
            for n in range(total):
                t = last + 1
                if d == 1 and n:
                    t = max(t, (yield from at(self.out.xfer, n - 1)) + 1)
                elif d > 1 and n - d + 1 >= 0:
                    t = max(t, (yield from at(self.moved, n - d + 1)) + 1)
                self.inp.want(n, t)
                last = yield from at(self.inp.xfer, n)
                self.written.set(n, last)

        def mover():
            last = -1
            for n in range(total):
                w = yield from at(self.written, n)
                if d == 1:
                    self.moved.set(n, w)
                    self.out.offer(n, w + 1)
                    continue
                m = max(w + 1, last + 1)
                if n:
                    m = max(m, (yield from at(self.out.xfer, n - 1)))
                last = m
                self.moved.set(n, m)
                self.out.offer(n, m + 1)

        return [writer(), mover()]


class Gather(Unit):
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
                        t = max(t, (yield from at(self.out.xfer, j - 1)))
                    self.inp.want(n, t)
                    last = yield from at(self.inp.xfer, n)
                    n += 1
                self.out.offer(j, last + 1)

        return [run()]


class Split(Unit):
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
                    t = max(t, (yield from at(self.out.xfer, j - 1)))
                self.inp.want(n, t)
                last = yield from at(self.inp.xfer, n)
                v = last + 1
                for i in range(self.k):
                    if i:
                        v = (yield from at(self.out.xfer, j - 1)) + 1
                    self.out.offer(j, v)
                    j += 1

        return [run()]


class Mvau(Unit):
    """Matrix-vector unit, the head of a credit pipeline: per input vector, ``nf`` passes
    of ``sf`` steps, one step per cycle; the first pass reads the input (and buffers it);
    the last step of a pass issues only with a credit (output ``j - credit`` has left the
    queue in an earlier cycle), and its result enters the queue ``latency`` cycles later."""

    def __init__(
        self, name, inp, out, sf: int, nf: int, vectors: int, latency: int, credit: int, popped
    ) -> None:
        super().__init__(name)
        self.inp, self.out, self.sf, self.nf, self.vectors = inp, out, sf, nf, vectors
        self.latency, self.credit, self.popped = latency, credit, popped

    def processes(self, frames):
        sf_n, nf_n, c = self.sf, self.nf, self.credit

        def run():
            s_last, n, j = -1, 0, 0
            for _ in range(frames * self.vectors):
                for nf in range(nf_n):
                    for sf in range(sf_n):
                        t = s_last + 1
                        last = sf == sf_n - 1
                        if last and j >= c:
                            t = max(t, (yield from at(self.popped.xfer, j - c)) + 1)
                        if nf == 0:
                            self.inp.want(n, t)
                            t = yield from at(self.inp.xfer, n)
                            n += 1
                        self.work.append(t)
                        if last:
                            self.out.offer(j, t + self.latency)
                            j += 1
                        s_last = t

        return [run()]


class Admit(Unit):
    """Head of an element-wise credit pipeline (activation stage, or after a depthwise
    unit): takes a beat per cycle while it holds a credit; its result enters the queue
    ``latency`` cycles later."""

    def __init__(self, name, inp, out, per_frame: int, latency: int, credit: int, popped):
        super().__init__(name)
        self.inp, self.out, self.n = inp, out, per_frame
        self.latency, self.credit, self.popped = latency, credit, popped

    def processes(self, frames):
        def run():
            last = -1
            for n in range(frames * self.n):
                t = last + 1
                if n >= self.credit:
                    t = max(t, (yield from at(self.popped.xfer, n - self.credit)) + 1)
                self.inp.want(n, t)
                last = yield from at(self.inp.xfer, n)
                self.work.append(last)
                self.out.offer(n, last + self.latency)

        return [run()]


class Vvau(Unit):
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
                        t = max(t, (yield from at(self.out.xfer, j - 1)) + 1)
                    self.inp.want(n, t)
                    last = yield from at(self.inp.xfer, n)
                    self.work.append(last)
                    n += 1
                v = last + 1
                for g in range(self.groups):
                    if g:
                        v = (yield from at(self.out.xfer, j - 1)) + 1
                    self.out.offer(j, v)
                    j += 1

        return [run()]


class Window(Unit):
    """Sliding-window generator: a writer filling the line buffer one beat per cycle (a new
    row only into a released slot) and a reader reading each tap once it is written, into
    read stages that never stall and a queue behind them: tap ``j`` is read only in a cycle
    after tap ``j - WINDOW_CREDITS`` left (:data:`~codesign.models.linebuffer.
    WINDOW_CREDITS`), and is offered ``READ_LATENCY`` cycles after its read.

    A windowed pool's window (``pool``: the stage's credit pipeline) is the head of a credit
    pipeline instead: its output stages never wait, the tap completing window ``r`` (the
    last of its ``kh * kw`` consecutive taps) is read only once result ``r - queue_depth``
    has left the queue (``popped``) in an earlier cycle, and the reduced window enters the
    queue (``out``) ``latency`` cycles after that read."""

    def __init__(
        self,
        env,
        name,
        inp,
        out,
        stage: Stage,
        groups: int,
        channel_major: bool,
        pool: tuple[StagePipeline, Link] | None = None,
    ):
        super().__init__(name)
        self.inp, self.out, self.pool = inp, out, pool
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
        self.written = Times(env, f"{name}.w", self.n_in)
        self.released = Times(env, f"{name}.r", h)
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
                            t = max(t, (yield from at(self.released, r)) + 1)
                    self.inp.want(n, t)
                    last = yield from at(self.inp.xfer, n)
                    self.written.set(n, last)

        taps = credit = latency = popped = None
        if self.pool is not None:
            pl, popped = self.pool
            taps, credit, latency = pl.gap, pl.queue_depth, pl.latency

        def reader():
            last, j, freed = -1, 0, 0
            for f in range(frames):
                base = f * self.n_in
                for k in range(self.n_out):
                    t = last + 1
                    closes = taps is not None and j % taps == taps - 1
                    if taps is None and j >= WINDOW_CREDITS:
                        t = max(t, (yield from at(self.out.xfer, j - WINDOW_CREDITS)) + 1)
                    elif closes and j // taps >= credit:
                        t = max(t, (yield from at(popped.xfer, j // taps - credit)) + 1)
                    src = self.src[k]
                    if src >= 0:
                        t = max(t, (yield from at(self.written, base + src)) + 1)
                    elif f >= 2:
                        t = max(t, (yield from at(self.written, base - self.n_in - 1)) + 1)
                    last = t
                    self.work.append(t)
                    if taps is None:
                        self.out.offer(j, t + READ_LATENCY)
                    elif closes:
                        self.out.offer(j // taps, t + latency)
                    j += 1
                    for _ in range(self.release[k]):
                        self.released.set(freed, t)
                        freed += 1

        return [writer(), reader()]


class GlobalReduce(Unit):
    """Global pool: one accumulator per channel; one input beat per cycle, and each beat of
    the last pixel loads the output register (waiting for it to be free)."""

    def __init__(self, name, inp, out, pixels: int, groups: int) -> None:
        super().__init__(name)
        self.inp, self.out, self.pixels, self.groups = inp, out, pixels, groups

    def processes(self, frames):
        def run():
            last, n, j = -1, 0, 0
            for _ in range(frames):
                for p in range(self.pixels):
                    for _g in range(self.groups):
                        t = last + 1
                        final = p == self.pixels - 1
                        if final and j:
                            t = max(t, (yield from at(self.out.xfer, j - 1)))
                        self.inp.want(n, t)
                        last = yield from at(self.inp.xfer, n)
                        self.work.append(last)
                        n += 1
                        if final:
                            self.out.offer(j, last + 1)
                            j += 1

        return [run()]


class Fork(Unit):
    """Stream fork (combinational): each output sees the input's beat as soon as it is
    valid and takes it at its own pace; the input beat moves once both have taken it."""

    def __init__(self, name, inp: Link, out0: Link, out1: Link) -> None:
        super().__init__(name)
        self.inp, self.outs = inp, (out0, out1)

    def processes(self, frames):
        def run():
            for n in range(frames * self.inp.per_frame):
                v = yield from at(self.inp.offers, n)
                for o in self.outs:
                    o.offer(n, v)
                t = 0
                for o in self.outs:
                    t = max(t, (yield from at(o.xfer, n)))
                self.inp.want(n, t)
                self.work.append(t)

        return [run()]


class Add(Unit):
    """Element-wise add of two streams, the head of a credit pipeline: a beat moves from
    both inputs at once, when both are valid and it holds a credit; the sum enters the
    queue ``latency`` cycles later."""

    def __init__(
        self,
        name,
        a: Link,
        b: Link,
        out: Link,
        per_frame: int,
        latency: int,
        credit: int,
        popped: Link,
    ) -> None:
        super().__init__(name)
        self.a, self.b, self.out, self.n = a, b, out, per_frame
        self.latency, self.credit, self.popped = latency, credit, popped

    def processes(self, frames):
        def run():
            last = -1
            for n in range(frames * self.n):
                t = last + 1
                if n >= self.credit:
                    t = max(t, (yield from at(self.popped.xfer, n - self.credit)) + 1)
                t = max(t, (yield from at(self.a.offers, n)), (yield from at(self.b.offers, n)))
                self.a.want(n, t)
                self.b.want(n, t)
                last = yield from at(self.a.xfer, n)
                self.work.append(last)
                self.out.offer(n, last + self.latency)

        return [run()]


class Deform(Unit):
    """Deformable gather (``hdl/deform/window.py``, ``DeformWindow``): a LOAD phase taking
    the frame's ``pixels`` image beats, one per cycle while ``image`` is valid, then a RUN
    phase taking ``beats`` offset beats and emitting ``taps`` output beats per offset beat,
    tap ``j`` after its ``fetch[j]`` fetch cycles; the next frame's LOAD begins in the cycle
    after the frame's last fetch cycle.

    The RUN pipeline, as the RTL builds it: an accepted offset beat enters the tap stage
    ``G``, which hands one tap per cycle to the six register stages ``T1``…``T6`` (variant,
    position, corners, fetch schedule); those seven stages and the fetch stage ``F`` move
    together, in a *front* cycle: one in which ``F`` is empty or in its tap's last fetch
    cycle (``F`` holds a tap for its fetch cycles). A bubble (no offset beat accepted when
    ``G`` could take one) passes down the stages like a tap of one fetch cycle. Behind ``F``
    the read, read-data, corner and product stages lead to the sum, the output register:
    a tap's beat is valid :data:`~codesign.models.deform.engine.RUN_OUTPUT_LATENCY` cycles
    after its last fetch cycle, and the first fetch cycle of an offset beat's first tap is
    :data:`~codesign.models.deform.engine.RUN_ISSUE_LATENCY` cycles after its acceptance.

    Every RUN stage moves only in an *advance* cycle, one in which the output register is
    empty or taken (``adv = ~o.valid | o.ready``): a beat waiting in the output register
    freezes the whole RUN pipeline, and ``offs.ready`` with it (an offset beat is accepted
    in a front cycle in which ``G`` is empty or at its beat's last tap, the frame is loaded
    and not all its offset beats are taken). LOAD (``i.ready``) never stalls.

    The model steps from front cycle to front cycle counting advance cycles; an advance
    count becomes a clock cycle once every output beat loaded before it has been taken.
    """

    #: register stages in front of the fetch stage: G and T1…T6
    FRONT = RUN_ISSUE_LATENCY - 1

    def __init__(
        self,
        env,
        name,
        image: Link,
        offs: Link,
        out: Link,
        *,
        pixels: int,
        beats: int,
        taps: int,
        fetch: np.ndarray,
    ) -> None:
        super().__init__(name)
        self.env, self.image, self.offs, self.out = env, image, offs, out
        self.pixels, self.beats, self.taps = pixels, beats, taps
        self.fetch = np.asarray(fetch, dtype=np.int64).reshape(len(fetch), beats * taps)
        if self.fetch.size and self.fetch.min() < 1:
            raise SimulationError(f"{name}: every tap takes at least one fetch cycle")
        #: cycle in which each frame's LOAD phase may take its first pixel
        self.load_start = Times(env, f"{name}.load", 1)

    def processes(self, frames):
        if len(self.fetch) < frames:
            raise SimulationError(
                f"{self.name}: fetch cycles of {len(self.fetch)} frames for {frames} frames"
            )
        return [self._loader(frames), self._runner(frames)]

    def _loader(self, frames):
        last = -1
        for f in range(frames):
            start = 0 if f == 0 else (yield from at(self.load_start, f - 1))
            for p in range(self.pixels):
                n = f * self.pixels + p
                self.image.want(n, max(start, last + 1))
                last = yield from at(self.image.xfer, n)

    def _known(self, times: Times, n: int, when: int):
        """``times[n]`` if it is decided by cycle ``when`` (waiting until then), else None.
        Valid times and transfers are decided no later than the cycle they happen in."""
        if n < len(times.t):
            return times.t[n]
        if self.env.now < when:
            yield self.env.timeout(when - self.env.now)
        return times.t[n] if n < len(times.t) else None

    def _runner(self, frames):
        taps, per = self.taps, self.beats * self.taps
        fetch = self.fetch[:frames].ravel().tolist()
        total = frames * self.beats
        front = deque([None] * self.FRONT)  # G, T1, ..., T6: a tap index or None
        loads: deque[tuple[int, int]] = deque()  # (advance count, output beat) loaded then
        base = [0, 0]  # advance count base[0] is cycle base[1]; loads before it resolved
        refused = -1  # the cycle up to which the next offset beat was taken as not valid

        def cycle(a):
            """The cycle of advance count ``a``: each output beat loaded at count ``b < a``
            is valid in the cycle after count ``b`` and holds the pipeline until taken."""
            while loads and loads[0][0] < a:
                b, j = loads.popleft()
                self.out.offer(j, base[1] + (b - base[0]) + 1)
                x = yield from at(self.out.xfer, j)
                self.work.append(x)
                base[0], base[1] = b + 1, x
            return base[1] + (a - base[0])

        a, f_tap, g_k, n, done = 0, None, None, 0, 0
        now = 0
        while done < frames * per:
            now = yield from cycle(a)
            if f_tap is not None:  # its last fetch cycle: the sum is valid a latency on
                loads.append((a + RUN_OUTPUT_LATENCY - 1, f_tap))
                done += 1
                if (f_tap + 1) % per == 0:  # the frame's last tap: LOAD from the next cycle
                    self.load_start.set(f_tap // per, now + 1)
            new = None
            if g_k is not None and g_k < taps - 1:
                g_k += 1
                new = front[0] + 1
            elif n < total:
                g_k = None
                last_pixel = (n // self.beats + 1) * self.pixels - 1
                if all(t is None for t in front) and not loads:
                    # idle: every front cycle until both the frame and the beat are there
                    p = yield from at(self.image.xfer, last_pixel)
                    v = yield from at(self.offs.offers, n)
                    t = max(now, p + 1, v)
                    a, now = a + t - now, t
                    base[0], base[1] = a, now
                    ok = True
                else:
                    p = yield from self._known(self.image.xfer, last_pixel, now)
                    v = yield from self._known(self.offs.offers, n, now)
                    ok = p is not None and p < now and v is not None and v <= now
                    if v is None:
                        refused = now
                if v is not None and v <= refused:
                    raise SimulationError(
                        f"{self.name}: offset beat {n} valid in cycle {v} was decided after "
                        f"cycle {refused}"
                    )
                if ok:
                    self.offs.want(n, now)
                    refused = -1
                    new = n * taps
                    g_k = 0
                    n += 1
            front.appendleft(new)
            f_tap = front.pop()
            a += fetch[f_tap] if f_tap is not None else 1
        yield from cycle(a + RUN_OUTPUT_LATENCY)  # the last beats
