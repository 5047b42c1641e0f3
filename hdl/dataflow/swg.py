"""Sliding-window generator: a line buffer that turns an image stream into a window stream.

The input is one frame after another of an (H, W, C) image in channels-last order, ``simd``
channels per beat (see :mod:`codesign.hdl.dataflow.stream`). The output lists, for each
output pixel (row-major), the kernel taps in (kh, kw, channel) order — the row order of
:func:`codesign.models.dataflow.conv_weight_matrix` — so a matrix-vector unit can consume it
directly; or, for a pool's reducer, channel group by channel group (:class:`TapOrder`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import reduce
from operator import or_

from amaranth import Array, Cat, Const, Module, Mux, Shape, Signal
from amaranth.hdl import ShapeCastable
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from codesign.models.dataflow import conv_out_size
from codesign.models.device import memory_map
from codesign.models.linebuffer import (
    READ_LATENCY,
    WINDOW_CREDITS,
    line_buffer_rows,
    released_rows,
)

from ..tools import REPLICA
from .bram import TARGETS, RegisteredRam
from .checks import check_int, check_pair, element_shape_of, shape_range
from .compare import and_or, at_least, up_down
from .credit import pipe_signature

__all__ = ["LineMemory", "SlidingWindow", "TapOrder", "line_buffer_rows"]


class TapOrder(enum.Enum):
    """Order of one output pixel's taps on a :class:`SlidingWindow`'s output stream."""

    #: (kh, kw, channel group): the row order of
    #: :func:`codesign.models.dataflow.conv_weight_matrix`, for a matrix-vector unit
    KERNEL_MAJOR = "kernel_major"
    #: (channel group, kh, kw): the ``kh * kw`` taps of one channel group are consecutive
    #: beats, for a window reducer (:class:`codesign.hdl.dataflow.pool.Pool2d`)
    CHANNEL_MAJOR = "channel_major"


@dataclass(frozen=True)
class _Level:
    """One loop of the reader's nest: its trip count and what one step adds to the tap's
    row ``y``, column ``x``, channel group and buffer slot (the slot modulo the rows)."""

    name: str
    n: int
    dy: int = 0
    dx: int = 0
    dgrp: int = 0
    dslot: int = 0


def _one_of(flags, values):
    """The value whose flag is set (exactly one is): an AND-OR, not a priority chain."""
    return reduce(or_, (Mux(f, v, 0) for f, v in zip(flags, values, strict=True)))


def _all_of(flags):
    return Cat(*flags).all() if flags else Const(1)


class LineMemory(wiring.Component):
    """A line buffer's storage: one write port and a read of ``latency`` register stages.

    A word written in cycle ``t`` (``w_en``) can be read from cycle ``t + 1``. The read is a
    pipeline of ``latency`` registers, each loaded only in a cycle its enable bit is set:
    ``r_en[0]`` latches the word at ``r_addr`` (the memory's synchronous read),
    ``r_en[k]`` moves it into the ``k``-th output register; ``r_data`` is the last stage.
    With ``latency`` 2 the second register is the one a block RAM has at its output: on
    ECP5 (``target="ecp5"``), a memory that Yosys would map to block RAM
    (:func:`codesign.models.device.memory_map`) is built from DP16KD instances with their
    output register (:class:`~codesign.hdl.dataflow.bram.RegisteredRam`, clock enables
    from ``r_en``). Otherwise, portably, a :class:`~amaranth.lib.memory.Memory` with a
    synchronous read port followed by registers in logic.

    Parameters
    ----------
    shape
        Shape of one word.
    depth
        Words held.
    latency
        Read register stages (at least 1; :data:`codesign.models.linebuffer.READ_LATENCY`
        by default).
    target
        None for the portable form, ``"ecp5"`` for DP16KD instances where block RAM.
    """

    def __init__(
        self,
        *,
        shape: ShapeCastable,
        depth: int,
        latency: int = READ_LATENCY,
        target: str | None = None,
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
        self._shape = shape
        self._depth = check_int("depth", depth, 1)
        self._latency = check_int("latency", latency, 1)
        width = Shape.cast(shape).width
        self._block = target == "ecp5" and latency == 2 and memory_map(depth, width)[0] == "bram"
        super().__init__(
            {
                "w_addr": In(range(depth)),
                "w_data": In(shape),
                "w_en": In(1),
                "r_addr": In(range(depth)),
                "r_en": In(latency),
                "r_data": Out(shape),
            }
        )

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def latency(self) -> int:
        return self._latency

    @property
    def block(self) -> bool:
        """Whether the memory is DP16KD instances with their output registers."""
        return self._block

    def elaborate(self, platform):
        m = Module()
        if self._block:
            m.submodules.ram = ram = RegisteredRam(
                width=Shape.cast(self._shape).width,
                depth=self._depth,
                target="ecp5",
                enable=True,
            )
            m.d.comb += [
                ram.w_addr.eq(self.w_addr),
                ram.w_data.eq(self.w_data),
                ram.w_en.eq(self.w_en),
                ram.r_addr.eq(self.r_addr),
                ram.r_en.eq(self.r_en),
                self.r_data.eq(ram.r_data),
            ]
            return m
        m.submodules.memory = mem = Memory(shape=self._shape, depth=self._depth, init=[])
        wr, rd = mem.write_port(), mem.read_port()
        m.d.comb += [
            wr.addr.eq(self.w_addr),
            wr.data.eq(self.w_data),
            wr.en.eq(self.w_en),
            rd.addr.eq(self.r_addr),
            rd.en.eq(self.r_en[0]),
        ]
        data = rd.data
        for k in range(1, self._latency):
            reg = Signal(self._shape, name=f"out_{k}")
            with m.If(self.r_en[k]):
                m.d.sync += reg.eq(data)
            data = reg
        m.d.comb += self.r_data.eq(data)
        return m


class SlidingWindow(wiring.Component):
    """Sliding-window generator (convolution input generator) built on a line buffer.

    Input ``i``: frames of an (H, W, C) image, channels-last, ``simd`` channels per beat.
    Output ``o``: for each output pixel (oh, ow) in row-major order, for kh, for kw, for each
    group of ``simd`` channels (``TapOrder.KERNEL_MAJOR``; ``TapOrder.CHANNEL_MAJOR``: for
    each group, for kh, for kw): the input element at
    ``(oh*sh + kh*dh - ph, ow*sw + kw*dw - pw, c)``, or ``pad_value`` outside the image.

    Timing: one beat in and one beat out per cycle. A tap is read as soon as the input beat
    it copies has been written, and its beat is valid
    :data:`~codesign.models.linebuffer.READ_LATENCY` cycles later (the buffer's read register
    and an output register, :class:`LineMemory`). Those stages never stall: a tap the reader
    does not take at once waits in a queue of
    :data:`~codesign.models.linebuffer.WINDOW_CREDITS` slots behind them, and a tap is read
    only while fewer than that many are read and not yet taken (a registered count; with
    ``credit``, a pool's, only the window's last tap waits, for the queue's credit at the
    end of the pipeline). Input is accepted
    while the frame's earlier rows are still being read and while the previous frame's last
    windows are being emitted. Frames run back to back at exactly ``max(in_beats,
    out_beats)`` cycles each in steady state (input always valid, output always ready).
    ``o.valid`` and ``i.ready`` come from registers only, and so does every input of the
    decision to emit a tap (see :meth:`elaborate`): no ``ready``, multiplier, address adder
    or counter comparison lies before the read port or the step.

    Buffer sizing: the line buffer is a circular :class:`LineMemory` of ``buffer_rows``
    image rows (``buffer_rows * width * channels // simd`` beats, one registered read and
    one write port). A row is released when the reader finishes the
    last output row that needs it; the writer starts a row only into a released slot. The
    row count is :func:`line_buffer_rows`: the smallest that keeps the slower side busy
    every cycle, which covers the rows one output row of windows spans
    (``(kh - 1) * dh + 1``), the ``sh`` rows the writer fills ahead for the next output row,
    and at a frame boundary both the rows the last windows of a frame still read and the
    first rows of the next frame. For a 3x3, stride-1 convolution that is 3 rows with
    padding 1 and 5 without.

    Parameters
    ----------
    element
        Shape of one element (``signed(n)``/``unsigned(n)`` or any shape-castable).
    channels, height, width
        Input image size C, H, W.
    kernel, stride, padding, dilation
        (h, w) pairs, as in :func:`codesign.models.dataflow.im2col`.
    simd
        Channels per beat; must divide ``channels``.
    pad_value
        Element value emitted for taps outside the image (default 0).
    tap_order
        Order of a pixel's taps (:class:`TapOrder`, default ``KERNEL_MAJOR``).
    target
        None for portable Verilog, ``"ecp5"`` for a line buffer in block RAM as DP16KD
        instances (:class:`LineMemory`).
    credit
        The window is the head of a credit pipeline (a pool's,
        :func:`codesign.models.pipelining.pool_stages`; channel-major taps only): ``o`` is
        never back-pressured (:func:`~codesign.hdl.dataflow.credit.pipe_signature`), so the
        read stages advance every cycle and no ``ready`` reaches the reader; the tap that
        completes a window (the last of a channel group's ``kh * kw``) is read only while
        ``space`` (a registered credit of the queue at the pipeline's end) and says so with
        ``reserve``. Every other tap is read as soon as it is written.
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
        dilation: tuple[int, int],
        simd: int,
        pad_value: int = 0,
        tap_order: TapOrder = TapOrder.KERNEL_MAJOR,
        target: str | None = None,
        credit: bool = False,
    ) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
        self._target = target
        shape = element_shape_of(element)
        self._channels = check_int("channels", channels, 1)
        self._height = check_int("height", height, 1)
        self._width = check_int("width", width, 1)
        self._simd = check_int("simd", simd, 1)
        if channels % simd:
            raise ValueError(f"simd must divide channels ({channels}), not {simd!r}")
        self._kernel = check_pair("kernel", kernel, 1)
        self._stride = check_pair("stride", stride, 1)
        self._padding = check_pair("padding", padding, 0)
        self._dilation = check_pair("dilation", dilation, 1)
        self._out_h = conv_out_size(height, self._kernel[0], *self._axis(0))
        self._out_w = conv_out_size(width, self._kernel[1], *self._axis(1))
        if self._out_h < 1 or self._out_w < 1:
            raise ValueError(
                f"kernel {self._kernel} with dilation {self._dilation} and padding "
                f"{self._padding} must fit the {height}x{width} image"
            )
        if not isinstance(pad_value, int) or isinstance(pad_value, bool):
            raise TypeError(f"pad_value must be an int, not {pad_value!r}")
        lo, hi = shape_range(shape)
        if not lo <= pad_value <= hi:
            raise ValueError(
                f"pad_value must be in the element's range [{lo}, {hi}], not {pad_value}"
            )
        if not isinstance(tap_order, TapOrder):
            raise TypeError(f"tap_order must be a TapOrder, not {tap_order!r}")
        if not isinstance(credit, bool):
            raise TypeError(f"credit must be a bool, not {credit!r}")
        if credit and tap_order is not TapOrder.CHANNEL_MAJOR:
            raise ValueError(f"credit needs tap_order TapOrder.CHANNEL_MAJOR, not {tap_order}")
        self._credit = credit
        self._element = element
        self._pad_value = pad_value
        self._tap_order = tap_order
        self._rows = line_buffer_rows(
            height=height,
            width=width,
            groups=channels // simd,
            kernel=self._kernel,
            stride=self._stride,
            padding=self._padding,
            dilation=self._dilation,
            channel_major=tap_order is TapOrder.CHANNEL_MAJOR,
        )
        beat = data.ArrayLayout(element, simd)
        ports = {"i": In(stream.Signature(beat))}
        if credit:
            ports.update(o=Out(pipe_signature(beat)), space=In(1), reserve=Out(1))
        else:
            ports["o"] = Out(stream.Signature(beat))
        super().__init__(ports)

    def _axis(self, a: int) -> tuple[int, int, int]:
        return self._stride[a], self._padding[a], self._dilation[a]

    @property
    def element(self) -> ShapeCastable:
        return self._element

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def height(self) -> int:
        return self._height

    @property
    def width(self) -> int:
        return self._width

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
    def dilation(self) -> tuple[int, int]:
        return self._dilation

    @property
    def simd(self) -> int:
        return self._simd

    @property
    def pad_value(self) -> int:
        return self._pad_value

    @property
    def tap_order(self) -> TapOrder:
        return self._tap_order

    @property
    def credit(self) -> bool:
        """Whether the window is a credit pipeline's head (``space`` and ``reserve``)."""
        return self._credit

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
        """Output beats per frame: OH·OW·KH·KW·C / simd."""
        kh, kw = self._kernel
        return self._out_h * self._out_w * kh * kw * (self._channels // self._simd)

    @property
    def buffer_rows(self) -> int:
        """Image rows held by the line buffer (see :func:`line_buffer_rows`)."""
        return self._rows

    @property
    def buffer_depth(self) -> int:
        """Line buffer depth in beats (each ``simd`` elements wide)."""
        return self._rows * self._width * (self._channels // self._simd)

    def _levels(self) -> list[_Level]:
        """The reader's loop nest, innermost first, without one-trip loops; the frame (the
        loop over frames, ``n`` 0) last."""
        g = self._channels // self._simd
        (kh, kw), (sh, sw), (dh, dw) = self._kernel, self._stride, self._dilation
        taps = {
            "g": _Level("g", g, dgrp=1),
            "kw": _Level("kw", kw, dx=dw),
            "kh": _Level("kh", kh, dy=dh, dslot=dh),
        }
        order = (
            ("kw", "kh", "g") if self._tap_order is TapOrder.CHANNEL_MAJOR else ("g", "kw", "kh")
        )
        nest = [taps[k] for k in order]
        nest += [_Level("ow", self._out_w, dx=sw), _Level("oh", self._out_h, dy=sh, dslot=sh)]
        return [lv for lv in nest if lv.n > 1] + [_Level("frame", 0, dslot=self._height)]

    def _writer(self, m: Module, buf: LineMemory, has_free) -> tuple[Signal, Signal, Signal]:
        """The writer: a row starts (``ROW_START``) only while ``has_free`` (a released
        buffer slot), its other beats (``IN_ROW``) follow one per cycle, into consecutive
        buffer addresses. Returns whether a beat is written this cycle, whether it starts a
        row (allocates a slot) and whether it ends a frame."""
        g = self._channels // self._simd
        wg, n_in, depth = self._width * g, self.in_beats, self.buffer_depth
        write, alloc, w_frame = Signal(), Signal(), Signal()
        wpos_last = Signal(init=n_in == 1)  # the frame's last beat is next
        wpos = Signal(range(n_in), name="wpos")
        waddr_last = Signal(init=depth == 1)
        waddr = Signal(range(depth), name="waddr")
        wcol_last = Signal(init=wg == 1)  # the row's last beat is next
        wcol = Signal(range(wg), name="wcol")
        m.d.comb += [
            write.eq(self.i.valid & self.i.ready),
            buf.w_addr.eq(waddr),
            buf.w_data.eq(self.i.payload),
            buf.w_en.eq(write),
            w_frame.eq(write & wpos_last),
        ]
        with m.FSM(name="writer"):
            with m.State("ROW_START"):
                m.d.comb += [self.i.ready.eq(has_free), alloc.eq(write)]
                if wg > 1:
                    with m.If(write):
                        m.next = "IN_ROW"
            with m.State("IN_ROW"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(write & wcol_last):
                    m.next = "ROW_START"
        with m.If(write):
            for ctr, last, n in (
                (wpos, wpos_last, n_in),
                (waddr, waddr_last, depth),
                (wcol, wcol_last, wg),
            ):
                with m.If(last):
                    m.d.sync += [ctr.eq(0), last.eq(n == 1)]
                with m.Else():
                    m.d.sync += [ctr.eq(ctr + 1), last.eq(ctr == n - 2)]
        return write, alloc, w_frame

    def _output_queue(self, m: Module, step, room, valid, beat) -> None:
        """The queue behind the read stages (not in a credit pipeline): the last stage's tap
        goes out at once when the queue is empty and ``o.ready``, else into the queue
        (:data:`~codesign.models.linebuffer.WINDOW_CREDITS` slots, first out first); ``room``
        (a register) says fewer than that many taps are read and not yet taken. ``o.valid``
        comes from registers, and ``o.ready`` reaches only the counts and the queue's
        pointers: a tap is written into the tail slot whether or not it goes out at once."""
        n = WINDOW_CREDITS
        slots = [Signal.like(self.o.payload, name=f"queue{k}") for k in range(n)]
        head, tail = Signal(range(n)), Signal(range(n))
        held = Signal(range(n + 1))  # taps in the queue
        any_held = Signal()  # held != 0
        count = Signal(range(n + 1))  # taps read and not yet taken
        taken = self.o.valid & self.o.ready
        push = valid & (any_held | ~self.o.ready)
        pop = any_held & self.o.ready
        m.d.comb += [
            self.o.valid.eq(any_held | valid),
            self.o.payload.eq(Mux(any_held, Array(slots)[head], beat)),
        ]
        for k, slot in enumerate(slots):
            with m.If(valid & (tail == k)):
                m.d.sync += slot.eq(beat)
        with m.If(push):
            m.d.sync += tail.eq(Mux(tail == n - 1, 0, tail + 1))
        with m.If(pop):
            m.d.sync += head.eq(Mux(head == n - 1, 0, head + 1))
        m.d.sync += [
            held.eq(up_down(held, push, pop)),
            any_held.eq(Mux(push & ~pop, 1, Mux(pop & ~push, held != 1, any_held))),
            count.eq(up_down(count, step, taken)),
            room.eq(Mux(step & ~taken, count < n - 1, (taken & ~step) | room)),
        ]

    def elaborate(self, platform):
        """Writer, reader and the row and frame bookkeeping between them.

        The writer is a two-state machine: a row starts (``ROW_START``) only into a released
        buffer slot, and its other beats (``IN_ROW``) follow one per cycle. The reader walks
        its loop nest (:meth:`_levels`) one tap per step.

        Every input of the step decision is a register, and so is every operand of what a
        step loads: per loop, the tap's coordinates at the start of the loop's current
        iteration (their sum with the loop's constant stride is the next tap when that loop
        steps) and a flag marking its counter's last trip; whether the current tap is inside
        the image; and the distance between the writer and the tap, with a flag saying the tap
        is written. No multiplier, counter comparison or address adder lies between the
        registers and the read port or the step, and what a step loads is chosen among sums
        and comparisons of registers with constants."""
        m = Module()
        h, w, g = self._height, self._width, self._channels // self._simd
        (ph, pw) = self._padding
        rows, depth = self._rows, self.buffer_depth
        wg, n_in = w * g, self.in_beats

        m.submodules.buffer = buf = LineMemory(
            shape=self.i.payload.shape(), depth=depth, target=self._target
        )

        # -- writer: input beats in frame order into consecutive addresses (rows wrap around)
        # Rows free in the buffer (its rows minus those the writer holds and the reader has
        # not released), and frames finished by the writer minus frames finished by the reader.
        # (``spare``: the free rows less one, so that whether a row is free is its sign bit,
        # a register, with no comparison behind it)
        spare = Signal(range(-2, rows + 3 * h + 1), init=rows - 1)
        has_free = ~spare[-1]
        frame_lead = Signal(range(-3, rows // h + 4))
        release, r_frame = Signal(), Signal()
        write, alloc, w_frame = self._writer(m, buf, has_free)
        m.d.sync += frame_lead.eq(up_down(frame_lead, w_frame, r_frame))

        # -- reader: for each loop (and the frame), the tap's coordinates at the start of the
        # loop's current iteration: row y, column x, channel group, buffer slot of row y and
        # its buffer address (addr); coords[0] is the current tap.
        levels = self._levels()
        n_lv = len(levels)
        (kh, kw), (sh, sw), (dh, dw) = self._kernel, self._stride, self._dilation
        y_hi = (self._out_h - 1) * sh + (kh - 1) * dh - ph
        x_hi = (self._out_w - 1) * sw + (kw - 1) * dw - pw
        y_lo, x_lo = min(-ph, -1), min(-pw, -1)  # signed even without padding
        shapes = {
            "y": range(y_lo, y_hi + 1),
            "x": range(x_lo, x_hi + 1),
            "grp": range(g),
            "slot": range(rows),
            "addr": range(min(x_lo * g, 0), max((rows - 1) * wg + x_hi * g + g, depth) + 1),
        }
        slot0 = -ph % rows
        start = {"y": -ph, "x": -pw, "grp": 0, "slot": slot0, "addr": slot0 * wg - pw * g}

        def stride(lv: _Level) -> dict[str, int]:
            return {"y": lv.dy, "x": lv.dx, "grp": lv.dgrp, "slot": lv.dslot % rows}

        def varies(k: str, at: int) -> bool:  # does coordinate k change at loop `at` or above?
            uses = {"addr": ("slot", "x", "grp")}.get(k, (k,))
            return any(stride(lv)[u] for lv in levels[at:] for u in uses)

        coords = [
            {
                k: Signal(shapes[k], init=start[k], name=k + ("" if j == 0 else f"_{lv.name}"))
                if varies(k, j)
                else Const(start[k], shapes[k])
                for k in start
            }
            for j, lv in enumerate(levels)
        ]

        def successor(lv: _Level, at: dict) -> dict:
            """The tap after a step of ``lv``: its iteration's start plus its stride."""
            d = stride(lv)
            col = d["x"] * g + d["grp"]
            nxt = {k: at[k] + d[k] for k in ("y", "x", "grp")}
            if d["slot"]:
                wrap = at["slot"] >= rows - d["slot"]
                nxt["slot"] = Mux(wrap, at["slot"] + (d["slot"] - rows), at["slot"] + d["slot"])
                step_addr = d["slot"] * wg + col
                nxt["addr"] = Mux(wrap, at["addr"] + (step_addr - depth), at["addr"] + step_addr)
            else:
                nxt["slot"], nxt["addr"] = at["slot"], at["addr"] + col
            return nxt

        def inside_of(at: dict):
            """Whether a tap is inside the image (comparisons only where they can fail)."""
            inside = Const(1)
            if ph > 0:
                inside &= at["y"] >= 0
            if y_hi >= h:
                inside &= at["y"] < h
            if pw > 0:
                inside &= at["x"] >= 0
            if x_hi >= w:
                inside &= at["x"] < w
            return inside

        counters = [Signal(range(lv.n), name=f"{lv.name}_count") for lv in levels[:-1]]
        lasts = [Signal(name=f"{lv.name}_last") for lv in levels[:-1]]
        # which loop a step advances: the innermost not on its last trip (one-hot, a register
        # like the flags it derives from, which mark each counter's last and next-to-last trip)
        pens = [Signal(init=lv.n == 2, name=f"{lv.name}_penult") for lv in levels[:-1]]

        def advancing(flags) -> list:
            return [~flags[j] & _all_of(flags[:j]) for j in range(n_lv - 1)] + [_all_of(flags)]

        sel = [Signal(init=j == 0, name=f"sel_{lv.name}") for j, lv in enumerate(levels)]
        # The tap after a step of each loop, with whether it is inside the image. A loop j > 0
        # steps only once its inner loops have run their trips (two steps at least), and its
        # start coordinates change only when it or an outer loop steps: its successor is the
        # same a cycle ahead, and is computed into registers.
        nexts = [successor(levels[0], coords[0])]
        inside_next = [inside_of(nexts[0])]
        for j in range(1, n_lv):
            comb, name = successor(levels[j], coords[j]), levels[j].name
            ahead = {k: Signal(shapes[k], name=f"{k}_{name}_next") for k in start}
            flag = Signal(name=f"inside_{name}_next")
            m.d.sync += [ahead[k].eq(comb[k]) for k in start]
            m.d.sync += flag.eq(inside_of(comb))
            nexts.append(ahead)
            inside_next.append(flag)
        # whether the tap is inside the image; a constant when every tap is (no padding, the
        # last window inside), so that no padding multiplexer lies behind the read
        no_pad = ph == 0 and pw == 0 and y_hi < h and x_hi < w
        inside = Const(1) if no_pad else Signal(init=ph == 0 and pw == 0)  # tap (-ph, -pw)

        # The writer's lead on the tap, in beats: (frames written - frames read) * frame beats
        # + writer's beat - tap's beat index in the frame; the tap is written when it is
        # positive (for a tap inside the image). A step of loop j moves the tap by delta[j]
        # beats: its stride minus the inner loops' strides times their last counts.
        def beats(lv: _Level) -> int:
            return lv.dy * wg + lv.dx * g + lv.dgrp

        delta, inner = [], 0
        for lv in levels:
            delta.append((beats(lv) if lv.n else n_in) - inner)
            inner += (lv.n - 1) * beats(lv) if lv.n else 0
        lead0 = ph * wg + pw * g
        span = lead0 + max(abs(d) for d in delta) + (rows // h + 8) * n_in
        lead = Signal(range(-span, span + 1), init=lead0)
        written = Signal(init=lead0 > 0)

        # For a step, the move is the selected loop's delta, kept in registers beside the
        # one-hot ``sel`` as the thresholds ``delta + 1 - k`` (k = 0, 1, 2): the lead after
        # the step and this cycle's write is ``lead - ths[1] + write``, and whether it is
        # positive the sign of ``lead - ths[1 - write]``, a subtraction of two registers
        # (its top bit: no compare logic after the carry chain); only this cycle's write
        # and step select after it. (Comparing the lead with every loop's constant and
        # selecting by ``sel`` afterwards was cnv_tiny's longest path: 7.8 ns at speed 6, a
        # carry chain then three levels of wide multiplexers.)
        th_range = range(min(delta) - 1, max(delta) + 2)
        ths = [Signal(th_range, init=delta[0] + 1 - k, name=f"threshold_{k}") for k in range(3)]

        def nonnegative(v):
            return ~v[-1]  # (a difference one bit wider than its operands: no overflow)

        # Output pipeline: the buffer's read stages (READ_LATENCY), each with whether it
        # holds a beat and whether that beat is padding. A stage loads (``takes``) when it is
        # empty or the next stage loads, the last when the output is taken; the reader
        # steps when the first loads. In a credit pipeline the stages load every cycle, and
        # the reader steps to a window's last tap only with a credit.
        n_st = buf.latency
        valids = [Signal(name=f"valid_{k}") for k in range(n_st)]
        pads = [Signal(name=f"pad_{k}") for k in range(n_st)]
        if self._credit:
            takes = [Const(1)] * n_st
            # the window's taps are the innermost loops (kw, kh): the last tap of a window
            # is the one on which all of them are on their last trip
            n_win = sum(lv.name in ("kw", "kh") for lv in levels)
            closes = _all_of(lasts[:n_win])
            take = ~closes | self.space
        else:
            # the read stages never stall either: a tap the reader does not take at once
            # waits in a queue behind them, and the reader reads only while fewer than
            # WINDOW_CREDITS taps are read and not yet taken (a registered count)
            takes = [Const(1)] * n_st
            room = Signal(init=1)
            take = room
        ready = Mux(
            inside,
            written,
            frame_lead >= -1,  # padding only: stay at most one frame ahead of the writer
        )
        step = Signal()
        if self._credit:
            m.d.comb += self.reserve.eq(step & closes)
        # the read address: a copy of the tap's address register that drives only the
        # memory (kept apart in synthesis, :data:`~codesign.hdl.tools.REPLICA`), so that the
        # register the address arithmetic reads is not placed out by the block RAMs
        # (resnet_tiny's conv2: addr -> addr, 3 logic levels and 4.9 ns of routing)
        r_addr = coords[0]["addr"]
        if isinstance(r_addr, Signal):
            r_addr = Signal.like(r_addr, name="read_addr", attrs={REPLICA: 1})
        addr_bits = Shape.cast(range(depth)).width
        pad_beat = self.o.payload.shape().const([self._pad_value] * self._simd)
        beat = Mux(pads[-1], pad_beat, buf.r_data)
        m.d.comb += [
            step.eq(take & ready),
            buf.r_addr.eq(r_addr[:addr_bits]),
            # (the address register loads only for a tap inside the image, which is written:
            # a cycle that takes no such tap reads nothing, never a word the writer may be
            # writing in the same cycle, which a block RAM leaves undefined)
            buf.r_en.eq(Cat(step & inside, *takes[1:])),
        ]
        if self._credit:
            m.d.comb += [self.o.valid.eq(valids[-1]), self.o.payload.eq(beat)]
        else:
            self._output_queue(m, step, room, valids[-1], beat)
        with m.If(takes[0]):  # (a step is a read when the first stage loads)
            m.d.sync += [valids[0].eq(step), pads[0].eq(~inside)]
        for k in range(1, n_st):
            with m.If(takes[k]):
                m.d.sync += [valids[k].eq(valids[k - 1]), pads[k].eq(pads[k - 1])]

        # The lead and its sign after the cycle: sums and differences of registers, then a
        # choice by this cycle's step and write written as an AND-OR (a multiplexer between
        # sums that share an operand is one sum of a multiplexed operand after Yosys's
        # opt_share: the write, from the FIFO in front, then ran through the carry chain,
        # cnv_tiny's longest path, 7.3 ns at speed 6). (ths[1] is the delta, ths[2] the
        # delta less one.)
        cases = (step & write, step & ~write, ~step & write, ~step & ~write)
        signs = (
            nonnegative(lead - ths[1]),
            nonnegative(lead - ths[0]),
            nonnegative(lead),
            at_least(lead, 1),
        )
        m.d.sync += [
            lead.eq(and_or(cases, (lead - ths[2], lead - ths[1], lead + 1, lead), len(lead))),
            written.eq(and_or(cases, signs, 1)),
        ]
        with m.If(step):
            for j, at in enumerate(coords):  # loop j restarts when it or an outer loop steps
                load = [at[k].eq(_one_of(sel[j:], [nx[k] for nx in nexts[j:]]))
                        for k in at if isinstance(at[k], Signal)]  # fmt: skip
                if j == 0:
                    m.d.sync += load
                    if r_addr is not at["addr"]:
                        m.d.sync += r_addr.eq(_one_of(sel, [nx["addr"] for nx in nexts]))
                else:
                    with m.If(reduce(or_, sel[j:])):
                        m.d.sync += load
            lasts_next = []
            for j, (ctr, last, pen) in enumerate(zip(counters, lasts, pens, strict=True)):
                n = levels[j].n
                restart = reduce(or_, sel[j + 1 :])
                with m.If(sel[j]):
                    m.d.sync += [ctr.eq(ctr + 1), last.eq(pen), pen.eq(ctr == n - 3)]
                with m.Elif(restart):
                    m.d.sync += [ctr.eq(0), last.eq(0), pen.eq(n == 2)]
                lasts_next.append(Mux(sel[j], pen, Mux(restart, 0, last)))
            if not no_pad:
                m.d.sync += inside.eq(_one_of(sel, inside_next))
            sel_next = advancing(lasts_next)
            m.d.sync += [f.eq(v) for f, v in zip(sel, sel_next, strict=True)]
            for k, th in enumerate(ths):
                m.d.sync += th.eq(_one_of(sel_next, [Const(d + 1 - k, th.shape()) for d in delta]))

        # Rows released when the current output row is done: those above the next output
        # row's windows; all the frame's rows after its last.
        done = released_rows(height=h, kernel_h=kh, stride_h=sh, padding_h=ph, dilation_h=dh)
        per_row = [b - a for a, b in zip([0, *done[:-1]], done, strict=True)]
        # the rows the current output row releases: r, and r - 1 (a row allocated in the
        # same cycle) for the count's sum
        kinds = {"row_release": 0, "row_release_m1": -1}
        regs = {
            name: Signal(range(-1, h + 1), init=per_row[0] + off, name=name)
            for name, off in kinds.items()
        }

        def values(r: int) -> list[int]:
            return [r + off for off in kinds.values()]

        row_release, row_release_m1 = regs["row_release"], regs["row_release_m1"]
        names = [lv.name for lv in levels]
        row_at = names.index("oh") if "oh" in names else n_lv - 1
        # (both sums of registers; the step and the writer only choose)
        with m.If(release):
            m.d.sync += spare.eq(Mux(alloc, spare + row_release_m1, spare + row_release))
        with m.Elif(alloc):
            m.d.sync += spare.eq(spare - 1)
        # the output row ends when every loop inside the row loop is on its last trip
        with m.If(step & _all_of(lasts[:row_at])):
            m.d.comb += release.eq(1)
            if len(per_row) > 1:
                with m.If(lasts[row_at]):
                    m.d.sync += [
                        sig.eq(v) for sig, v in zip(regs.values(), values(per_row[0]), strict=True)
                    ]
                with m.Else():
                    ahead = [values(r) for r in per_row[1:] + per_row[:1]]
                    for k, sig in enumerate(regs.values()):
                        table = Array(Const(v[k], sig.shape()) for v in ahead)
                        m.d.sync += sig.eq(table[counters[row_at]])
        m.d.comb += r_frame.eq(step & sel[-1])
        return m
