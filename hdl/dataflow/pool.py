"""2-D max, average and sum pooling on streams: a sliding-window generator and a window
reducer, or, for a window of the whole image (global pooling), one accumulator per
channel."""

from __future__ import annotations

import enum
from itertools import count, pairwise

from amaranth import Module, Mux, Shape, Signal, signed
from amaranth.hdl import ShapeCastable
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from codesign.models.dataflow import conv_out_size
from codesign.models.linebuffer import READ_LATENCY
from codesign.models.pipelining import StagePipeline, pool_stages
from codesign.models.qtype import Rounding

from .bram import TARGETS
from .checks import check_int, check_pair, element_shape_of, shape_range
from .credit import CreditQueue, pipe_signature
from .swg import SlidingWindow, TapOrder, line_buffer_rows

__all__ = ["GlobalReduce", "Pool2d", "PoolMode", "WindowReduce", "divide_round"]


class PoolMode(enum.Enum):
    """What a :class:`Pool2d` computes over each window."""

    MAX = "max"  #: the largest element
    AVG = "avg"  #: the sum divided by the window's area, rounded
    SUM = "sum"  #: the exact sum


def divide_round(m: Module, n, lo: int, hi: int, d: int, rounding: Rounding):
    """``n / d`` rounded as ``rounding`` says, for an integer value ``n`` known to lie in
    ``[lo, hi]`` and a positive constant ``d``; exact, as :func:`codesign.models.arith.round_div`.
    Combinational logic, added to ``m``.

    A power-of-two ``d`` is an arithmetic shift. Any other ``d`` is a multiplication by a
    constant reciprocal: with ``n'`` = ``n`` + a multiple of ``d`` making it non-negative
    (at most ``N``), ``floor(n' / d) = (n' * M) >> s`` where ``M = ceil(2**s / d)`` and
    ``s`` is the smallest with ``N * (M*d - 2**s) < 2**s``. The remainder then decides the
    rounding.
    """
    if not isinstance(d, int) or isinstance(d, bool) or d < 1:
        raise ValueError(f"divisor must be a positive int, not {d!r}")
    if d == 1:
        return n
    k = d.bit_length() - 1
    if d == 1 << k:
        q = n.shift_right(k)
        r = n.as_unsigned()[:k]
    else:
        offset = -(-max(0, -lo) // d)  # multiples of d added to make n non-negative
        top = hi + offset * d
        for s in count(top.bit_length()):
            mult = -(-(1 << s) // d)
            if top * (mult * d - (1 << s)) < (1 << s):
                break
        biased = Signal(range(top + 1))
        product = Signal(range(top * mult + 1))
        q_biased = Signal(range(top // d + 1))
        back = Signal(biased.shape())
        r = Signal(range(d))
        q = Signal(range(lo // d - 1, hi // d + 2))
        m.d.comb += [
            biased.eq(n + offset * d),
            product.eq(biased * mult),
            q_biased.eq(product[s:]),
            back.eq(q_biased * d),
            r.eq(biased - back),
        ]
        if offset:
            q_wide = Signal(signed(len(q_biased) + 1))
            m.d.comb += [q_wide.eq(q_biased), q.eq(q_wide - offset)]
        else:
            m.d.comb += q.eq(q_biased)
    inexact = r != 0
    above, tie = (r << 1) > d, (r << 1) == d
    negative = n < 0 if lo < 0 else 0
    if rounding is Rounding.FLOOR:
        up = 0
    elif rounding is Rounding.CEIL:
        up = inexact
    elif rounding is Rounding.TOWARD_ZERO:
        up = inexact & negative
    elif rounding is Rounding.AWAY_FROM_ZERO:
        up = inexact & ~negative if lo < 0 else inexact
    else:
        on_tie = {
            Rounding.HALF_UP: 1,
            Rounding.HALF_DOWN: 0,
            Rounding.HALF_EVEN: q[0],
            Rounding.HALF_AWAY: ~negative if lo < 0 else 1,
            Rounding.HALF_TOWARD_ZERO: negative,
        }[rounding]
        up = above | (tie & on_tie)
    return q if isinstance(up, int) else Mux(up, q + 1, q)


def _check_mode(mode, rounding) -> None:
    if not isinstance(mode, PoolMode):
        raise TypeError(f"mode must be a PoolMode, not {mode!r}")
    if not isinstance(rounding, Rounding):
        raise TypeError(f"rounding must be a Rounding, not {rounding!r}")


def _ports(element, out_element, simd: int) -> dict:
    return {
        "i": In(stream.Signature(data.ArrayLayout(element, simd))),
        "o": Out(stream.Signature(data.ArrayLayout(out_element, simd))),
    }


class WindowReduce(wiring.Component):
    """Reduces every ``taps`` consecutive beats element-wise (max, sum, or sum then rounded
    division by ``taps``) to one beat, inside a pool's credit pipeline: neither stream is
    back-pressured (:func:`~codesign.hdl.dataflow.credit.pipe_signature`), so no ``ready``
    reaches the datapath and one beat may arrive every cycle. A maximum or a sum leaves in
    the cycle its window's last tap arrives (the tap folded into the window so far); an
    average registers the sum and leaves the next cycle, divided
    (:func:`codesign.models.pipelining.pool_stages`)."""

    def __init__(
        self, *, element, out_element, simd: int, taps: int, mode: PoolMode, rounding: Rounding
    ):
        _check_mode(mode, rounding)
        check_int("simd", simd, 1)
        check_int("taps", taps, 1)
        self._element, self._simd, self._taps = element, simd, taps
        self._mode, self._rounding = mode, rounding
        super().__init__(
            {
                "i": In(pipe_signature(data.ArrayLayout(element, simd))),
                "o": Out(pipe_signature(data.ArrayLayout(out_element, simd))),
            }
        )

    @property
    def latency(self) -> int:
        """Cycles from a window's last tap at ``i`` to its result at ``o``."""
        return 1 if self._mode is PoolMode.AVG else 0

    def elaborate(self, platform):
        m = Module()
        n, simd = self._taps, self._simd
        lo, hi = shape_range(Shape.cast(self._element))
        if self._mode is PoolMode.MAX:
            acc_shape = self._element
        else:
            lo, hi = lo * n, hi * n
            acc_shape = Shape.cast(range(min(lo, 0), max(hi, 0) + 1))
        # the tap counter, with registered flags for its first and last tap
        tap = Signal(range(n))
        first, last = Signal(init=1), Signal(init=n == 1)
        acc = [Signal(acc_shape, name=f"acc{j}") for j in range(simd)]
        # the window so far with this beat folded in, whether or not a beat arrives
        values = []
        for j in range(simd):
            x = self.i.payload[j]
            value = Signal(acc_shape, name=f"fold{j}")
            if n == 1:
                m.d.comb += value.eq(x)
            elif self._mode is PoolMode.MAX:
                m.d.comb += value.eq(Mux(first | (x > acc[j]), x, acc[j]))
            else:
                wide = Signal(acc_shape, name=f"x{j}")
                m.d.comb += [wide.eq(x), value.eq(Mux(first, wide, acc[j] + wide))]
            values.append(value)
        with m.If(self.i.valid):
            with m.If(last):
                m.d.sync += [tap.eq(0), first.eq(1), last.eq(n == 1)]
            with m.Else():
                m.d.sync += [acc[j].eq(values[j]) for j in range(simd)]
                m.d.sync += [tap.eq(tap + 1), first.eq(0), last.eq(tap == n - 2)]
        if self._mode is not PoolMode.AVG:
            m.d.comb += [
                self.o.valid.eq(self.i.valid & last),
                *[self.o.payload[j].eq(values[j]) for j in range(simd)],
            ]
        else:  # the finished window's sum, registered, then the division
            full = [Signal(acc_shape, name=f"full{j}") for j in range(simd)]
            full_valid = Signal()
            m.d.sync += full_valid.eq(self.i.valid & last)
            with m.If(self.i.valid & last):
                m.d.sync += [full[j].eq(values[j]) for j in range(simd)]
            m.d.comb += self.o.valid.eq(full_valid)
            for j in range(simd):
                q = divide_round(m, full[j], lo, hi, n, self._rounding)
                m.d.comb += self.o.payload[j].eq(q)
        return m


class GlobalReduce(wiring.Component):
    """Reduces each channel over a whole frame of ``pixels`` pixels, ``simd`` channels per
    beat, ``groups`` beats per pixel: one accumulator per channel, kept in a ring of
    ``groups`` registers that turns once per pixel (the head is the group the next beat
    adds to), so no multiplexer selects a channel. The last pixel's beats load the output
    register, one beat per cycle; one input beat per cycle, no line buffer."""

    def __init__(
        self,
        *,
        element,
        out_element,
        simd: int,
        groups: int,
        pixels: int,
        mode: PoolMode,
        rounding: Rounding,
    ):
        _check_mode(mode, rounding)
        for name, value in (("simd", simd), ("groups", groups), ("pixels", pixels)):
            check_int(name, value, 1)
        self._element, self._simd, self._groups, self._pixels = element, simd, groups, pixels
        self._mode, self._rounding = mode, rounding
        super().__init__(_ports(element, out_element, simd))

    def elaborate(self, platform):
        m = Module()
        n, simd, g = self._pixels, self._simd, self._groups
        lo, hi = shape_range(Shape.cast(self._element))
        if self._mode is PoolMode.MAX:
            acc_shape = Shape.cast(self._element)
        else:
            lo, hi = lo * n, hi * n
            acc_shape = Shape.cast(range(min(lo, 0), max(hi, 0) + 1))
        beat = data.ArrayLayout(acc_shape, simd)
        ring = [Signal(beat, name=f"acc{k}") for k in range(g)]  # ring[0]: the next group
        # the counters with registered flags: whether the beat is the pixel's last group, and
        # the frame's first or last pixel (``ready`` was a counter compare: resnet_tiny's
        # longest path at speed 6, pixel -> ready -> the FIFO's flags, 7.5 ns)
        group = Signal(range(g))
        group_last = Signal(init=g == 1)
        pixel = Signal(range(n))
        first, last = Signal(init=1), Signal(init=n == 1)
        out = Signal(data.ArrayLayout(self.o.payload.shape().elem_shape, simd))
        full = Signal()
        room = ~full | self.o.ready
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload.eq(out),
            self.i.ready.eq(~last | room),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            new = Signal(beat)
            for j in range(simd):
                x = self.i.payload[j]
                if self._mode is PoolMode.MAX:
                    value = Mux(first | (x > ring[0][j]), x, ring[0][j])
                else:
                    value = Mux(first, x, ring[0][j] + x)
                m.d.comb += new[j].eq(value)
            m.d.sync += [ring[k].eq(ring[k + 1]) for k in range(g - 1)]
            m.d.sync += ring[g - 1].eq(new)
            with m.If(last):
                for j in range(simd):
                    if self._mode is PoolMode.AVG:
                        q = divide_round(m, new[j], lo, hi, n, self._rounding)
                    else:
                        q = new[j]
                    m.d.sync += out[j].eq(q)
                m.d.sync += full.eq(1)
            with m.If(group_last):
                m.d.sync += [group.eq(0), group_last.eq(g == 1), first.eq(last)]
                with m.If(last):
                    m.d.sync += [pixel.eq(0), last.eq(n == 1)]
                with m.Else():
                    m.d.sync += [pixel.eq(pixel + 1), last.eq(pixel == n - 2)]
            with m.Else():
                m.d.sync += [group.eq(group + 1), group_last.eq(group == g - 2)]
        return m


class Pool2d(wiring.Component):
    """2-D max or average pooling of a stream of (H, W, C) frames, channels-last, ``simd``
    channels per beat; the output is (OH, OW, C) channels-last, ``simd`` channels per beat.

    ``PoolMode.MAX``: the maximum of each window; padding never wins (it is the element's
    minimum, and ``padding`` is at most half the kernel, so every window holds a pixel), as
    :func:`codesign.models.dataflow.maxpool2d`. ``PoolMode.AVG``: the window sum divided by
    ``kh * kw`` with ``rounding``, exactly as :func:`codesign.models.dataflow.avgpool2d` (no
    padding;
    a power-of-two area is a shift, any other a multiplication by a constant reciprocal, see
    :func:`divide_round`). ``PoolMode.SUM``: the exact window sum, as
    :func:`codesign.models.dataflow.sumpool2d`, in ``out_element`` (by default the narrowest shape
    holding ``kh * kw`` times the element's range).

    A :class:`~codesign.hdl.dataflow.swg.SlidingWindow` line buffer emits each pixel's ``kh * kw``
    taps channel group by channel group, and a reducer folds them, one beat per cycle: a
    frame takes ``max(H*W, OH*OW*KH*KW) * C / simd`` cycles in steady state
    (:attr:`cycles`, ``codesign.models.hwconfig.stage_cycles`` of a pool stage with ``pe = simd``).
    The two are a credit pipeline (:attr:`pipeline`, as
    :func:`codesign.models.pipelining.stage_pipeline` has it): the window reads a window's
    last tap only with a credit of the :class:`~codesign.hdl.dataflow.credit.CreditQueue` at
    the end, so no ``ready`` reaches the window or the reducer. A window of the whole
    unpadded image (global pooling) needs no line buffer: one accumulator per channel
    reduces the frame as it streams in, ``H*W*C / simd`` cycles per frame, and emits the
    ``C / simd`` result beats during the last pixel.

    Parameters
    ----------
    element
        ``signed(n)`` or ``unsigned(n)``.
    channels, height, width
        Input image size C, H, W.
    kernel, stride, padding
        (h, w) pairs.
    simd
        Channels per beat; must divide ``channels``.
    mode
        A :class:`PoolMode` (or its value, ``"max"``, ``"avg"`` or ``"sum"``).
    rounding
        :class:`~codesign.models.qtype.Rounding` of the average (ignored otherwise).
    out_element
        Output element shape of a sum (ignored otherwise): it must hold every window sum
        of the values the stream carries (the IR's exact range gives it).
    target
        None for portable Verilog, ``"ecp5"`` for a line buffer in block RAM as DP16KD
        instances (:class:`~codesign.hdl.dataflow.swg.LineMemory`).
    credit
        Leave the queue out (a windowed pool only): ``o`` is the reducer's, never
        back-pressured, and the window's ``space`` and ``reserve`` are ports, for the
        pipeline compiler, which puts the stage's queue after the pool as after every
        credit pipeline. By default the pool ends in its own queue, a stream component.
    """

    def __init__(
        self,
        *,
        element: ShapeCastable,
        channels: int,
        height: int,
        width: int,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        simd: int,
        mode: PoolMode | str,
        rounding: Rounding = Rounding.HALF_EVEN,
        out_element: ShapeCastable | None = None,
        target: str | None = None,
        credit: bool = False,
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
        self._target = target
        if not isinstance(credit, bool):
            raise TypeError(f"credit must be a bool, not {credit!r}")
        shape = element_shape_of(element)
        if isinstance(element, ShapeCastable) and not isinstance(element, Shape):
            raise TypeError(f"element must be a signed or unsigned shape, not {element!r}")
        if not isinstance(mode, PoolMode):
            values = [m.value for m in PoolMode]
            if mode not in values:
                raise ValueError(f"mode must be a PoolMode or one of {values}, not {mode!r}")
            mode = PoolMode(mode)
        if not isinstance(rounding, Rounding):
            raise TypeError(f"rounding must be a Rounding, not {rounding!r}")
        self._channels = check_int("channels", channels, 1)
        self._height = check_int("height", height, 1)
        self._width = check_int("width", width, 1)
        self._simd = check_int("simd", simd, 1)
        if channels % simd:
            raise ValueError(f"simd must divide channels ({channels}), not {simd!r}")
        self._kernel = check_pair("kernel", kernel, 1)
        self._stride = check_pair("stride", stride, 1)
        self._padding = check_pair("padding", padding, 0)
        if mode is not PoolMode.MAX and self._padding != (0, 0):
            raise ValueError(
                f"padding must be (0, 0) for {mode.value} pooling, not {self._padding!r}"
            )
        if any(p > k // 2 for p, k in zip(self._padding, self._kernel, strict=True)):
            raise ValueError(
                f"padding must be at most half the kernel {self._kernel}, not {self._padding!r}"
            )
        self._out_h = conv_out_size(height, self._kernel[0], self._stride[0], self._padding[0], 1)
        self._out_w = conv_out_size(width, self._kernel[1], self._stride[1], self._padding[1], 1)
        if self._out_h < 1 or self._out_w < 1:
            raise ValueError(f"kernel {self._kernel} must fit the {height}x{width} image")
        self._element = element
        self._shape = shape
        self._mode = mode
        self._rounding = rounding
        self._global = self._kernel == (height, width) and self._padding == (0, 0)
        if credit and self._global:
            raise ValueError("credit needs a windowed pool, not a global one")
        self._credit = credit
        if mode is PoolMode.SUM:
            lo, hi = shape_range(shape)
            area = self._kernel[0] * self._kernel[1]
            exact = Shape.cast(range(min(lo * area, 0), max(hi * area, 0) + 1))
            self._out_element = exact if out_element is None else element_shape_of(out_element)
        else:
            self._out_element = element
        self._rows = (
            0
            if self._global
            else line_buffer_rows(
                height=height,
                width=width,
                groups=channels // simd,
                kernel=self._kernel,
                stride=self._stride,
                padding=self._padding,
                dilation=(1, 1),
                channel_major=True,
            )
        )
        ports = _ports(element, self._out_element, simd)
        if credit:
            out = data.ArrayLayout(self._out_element, simd)
            ports.update(o=Out(pipe_signature(out)), space=In(1), reserve=Out(1))
        super().__init__(ports)

    @property
    def element(self) -> ShapeCastable:
        return self._element

    @property
    def out_element(self) -> ShapeCastable:
        return self._out_element

    @property
    def global_pool(self) -> bool:
        """Whether the window is the whole image (an accumulator per channel)."""
        return self._global

    @property
    def mode(self) -> PoolMode:
        return self._mode

    @property
    def rounding(self) -> Rounding:
        return self._rounding

    @property
    def kernel(self) -> tuple[int, int]:
        return self._kernel

    @property
    def stride(self) -> tuple[int, int]:
        return self._stride

    @property
    def padding(self) -> tuple[int, int]:
        return self._padding

    @property
    def simd(self) -> int:
        return self._simd

    @property
    def out_height(self) -> int:
        return self._out_h

    @property
    def out_width(self) -> int:
        return self._out_w

    @property
    def in_beats(self) -> int:
        """Input beats per frame: H·W·C / simd."""
        return self._height * self._width * (self._channels // self._simd)

    @property
    def out_beats(self) -> int:
        """Output beats per frame: OH·OW·C / simd."""
        return self._out_h * self._out_w * (self._channels // self._simd)

    @property
    def pipeline(self) -> StagePipeline | None:
        """The credit pipeline of a windowed pool (None for a global pool): the register
        stages from the read of a window's last tap to the queue, its latency, the queue's
        depth (:func:`codesign.models.pipelining.pool_stages`)."""
        if self._global:
            return None
        kh, kw = self._kernel
        return StagePipeline(pool_stages(self._mode is PoolMode.AVG), (), kh * kw)

    @property
    def credit(self) -> bool:
        """Whether the queue is left out (``space`` and ``reserve`` are ports)."""
        return self._credit

    @property
    def cycles(self) -> int:
        """Cycles per frame in steady state: max(H·W, OH·OW·KH·KW) · C / simd."""
        kh, kw = self._kernel
        hw, window = self._height * self._width, self._out_h * self._out_w * kh * kw
        return max(hw, window) * (self._channels // self._simd)

    @property
    def buffer_rows(self) -> int:
        """Image rows held by the line buffer (0 for a global pool: it has none)."""
        return self._rows

    @property
    def buffer_depth(self) -> int:
        """Line buffer depth in beats (each ``simd`` elements wide)."""
        return self._rows * self._width * (self._channels // self._simd)

    def parts(self) -> tuple[wiring.Component, ...]:
        """The units this pool chains, input first (new instances each call): a
        :class:`WindowReduce` behind a channel-major :class:`SlidingWindow` (the head of
        the credit pipeline; the queue is not among them), or a :class:`GlobalReduce` alone
        for a global pool."""
        if self._global:
            return (
                GlobalReduce(
                    element=self._element,
                    out_element=self._out_element,
                    simd=self._simd,
                    groups=self._channels // self._simd,
                    pixels=self._height * self._width,
                    mode=self._mode,
                    rounding=self._rounding,
                ),
            )
        lo, _ = shape_range(self._shape)
        window = SlidingWindow(
            element=self._element,
            channels=self._channels,
            height=self._height,
            width=self._width,
            kernel=self._kernel,
            stride=self._stride,
            padding=self._padding,
            dilation=(1, 1),
            simd=self._simd,
            pad_value=lo if self._mode is PoolMode.MAX else 0,
            tap_order=TapOrder.CHANNEL_MAJOR,
            target=self._target,
            credit=True,
        )
        reduce = WindowReduce(
            element=self._element,
            out_element=self._out_element,
            simd=self._simd,
            taps=self._kernel[0] * self._kernel[1],
            mode=self._mode,
            rounding=self._rounding,
        )
        return window, reduce

    def elaborate(self, platform):
        m = Module()
        parts = self.parts()
        names = ("reduce",) if self._global else ("window", "reduce")
        for name, part in zip(names, parts, strict=True):
            m.submodules[name] = part
        wiring.connect(m, wiring.flipped(self.i), parts[0].i)
        for a, b in pairwise(parts):
            wiring.connect(m, a.o, b.i)
        if self._global:
            wiring.connect(m, parts[-1].o, wiring.flipped(self.o))
            return m
        window, reduce = parts
        assert self.pipeline.latency == READ_LATENCY + reduce.latency
        if self._credit:
            wiring.connect(m, reduce.o, wiring.flipped(self.o))
            m.d.comb += [window.space.eq(self.space), self.reserve.eq(window.reserve)]
            return m
        m.submodules.queue = queue = CreditQueue(
            layout=self.o.payload.shape(), depth=self.pipeline.queue_depth
        )
        wiring.connect(m, reduce.o, queue.i)
        wiring.connect(m, queue.o, wiring.flipped(self.o))
        m.d.comb += [window.space.eq(queue.space), queue.reserve.eq(window.reserve)]
        return m
