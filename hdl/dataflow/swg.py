"""Sliding-window generator: a line buffer that turns an image stream into a window stream.

The input is one frame after another of an (H, W, C) image in channels-last order, ``simd``
channels per beat (see :mod:`codesign.hdl.dataflow.stream`). The output lists, for each output pixel
(row-major), the kernel taps in (kh, kw, channel) order — the row order of
:func:`codesign.models.dataflow.conv_weight_matrix` — so a matrix-vector unit can consume it
directly.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Shape, Signal, unsigned
from amaranth.hdl import ShapeCastable
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from codesign.models.dataflow import conv_out_size
from codesign.models.linebuffer import line_buffer_rows

__all__ = ["SlidingWindow", "line_buffer_rows"]


def _check_int(name: str, value, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < minimum:
        rule = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {rule}, not {value!r}")
    return value


def _check_pair(name: str, value, minimum: int) -> tuple[int, int]:
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(f"{name} must be a pair of ints (h, w), not {value!r}")
    if min(value) < minimum:
        rule = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {rule} in both axes, not {tuple(value)!r}")
    return int(value[0]), int(value[1])


def _element_shape(element) -> Shape:
    try:
        shape = Shape.cast(element)
    except TypeError:
        raise TypeError(f"element must be a shape, not {element!r}") from None
    if shape.width < 1:
        raise ValueError(f"element must be at least one bit wide, not {element!r}")
    return shape


def _shape_range(shape: Shape) -> tuple[int, int]:
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


class SlidingWindow(wiring.Component):
    """Sliding-window generator (convolution input generator) built on a line buffer.

    Input ``i``: frames of an (H, W, C) image, channels-last, ``simd`` channels per beat.
    Output ``o``: for each output pixel (oh, ow) in row-major order, for kh, for kw, for each
    group of ``simd`` channels: the input element at
    ``(oh*sh + kh*dh - ph, ow*sw + kw*dw - pw, c)``, or ``pad_value`` outside the image.

    Timing: one beat in and one beat out per cycle. A window beat is emitted as soon as the
    input beat it copies has been written (one cycle of read latency); input is accepted
    while the frame's earlier rows are still being read and while the previous frame's last
    windows are being emitted. Frames run back to back at exactly ``max(in_beats,
    out_beats)`` cycles each in steady state (input always valid, output always ready).
    ``o.valid`` and ``i.ready`` come from registers only.

    Buffer sizing: the line buffer is a circular :class:`~amaranth.lib.memory.Memory` of
    ``buffer_rows`` image rows (``buffer_rows * width * channels // simd`` beats, one
    synchronous read and one write port). A row is released when the reader finishes the
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
    """

    _channel_major = False  # (group, kh, kw) tap order per pixel; used by Pool2d

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
    ) -> None:
        shape = _element_shape(element)
        self._channels = _check_int("channels", channels, 1)
        self._height = _check_int("height", height, 1)
        self._width = _check_int("width", width, 1)
        self._simd = _check_int("simd", simd, 1)
        if channels % simd:
            raise ValueError(f"simd must divide channels ({channels}), not {simd!r}")
        self._kernel = _check_pair("kernel", kernel, 1)
        self._stride = _check_pair("stride", stride, 1)
        self._padding = _check_pair("padding", padding, 0)
        self._dilation = _check_pair("dilation", dilation, 1)
        self._out_h = conv_out_size(height, self._kernel[0], *self._axis(0))
        self._out_w = conv_out_size(width, self._kernel[1], *self._axis(1))
        if self._out_h < 1 or self._out_w < 1:
            raise ValueError(
                f"kernel {self._kernel} with dilation {self._dilation} and padding "
                f"{self._padding} must fit the {height}x{width} image"
            )
        if not isinstance(pad_value, int) or isinstance(pad_value, bool):
            raise TypeError(f"pad_value must be an int, not {pad_value!r}")
        lo, hi = _shape_range(shape)
        if not lo <= pad_value <= hi:
            raise ValueError(
                f"pad_value must be in the element's range [{lo}, {hi}], not {pad_value}"
            )
        self._element = element
        self._pad_value = pad_value
        self._rows = line_buffer_rows(
            height=height,
            width=width,
            groups=channels // simd,
            kernel=self._kernel,
            stride=self._stride,
            padding=self._padding,
            dilation=self._dilation,
            channel_major=self._channel_major,
        )
        beat = data.ArrayLayout(element, simd)
        super().__init__({"i": In(stream.Signature(beat)), "o": Out(stream.Signature(beat))})

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

    def elaborate(self, platform):
        m = Module()
        h, w, g = self._height, self._width, self._channels // self._simd
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self._kernel,
            self._stride,
            self._padding,
            self._dilation,
        )
        oh_n, ow_n, rows = self._out_h, self._out_w, self._rows
        wg, depth = w * g, self.buffer_depth
        beat_bits = Shape.cast(self.i.payload.shape()).width
        el_bits = Shape.cast(self._element).width
        pad_word = sum(
            (self._pad_value & ((1 << el_bits) - 1)) << (k * el_bits) for k in range(self._simd)
        )

        m.submodules.buffer = mem = Memory(shape=unsigned(beat_bits), depth=depth, init=[])
        wr = mem.write_port()
        rd = mem.read_port()

        def mod_add(a, k: int):
            """(a + k) mod rows for a in [0, rows) and a constant k."""
            k %= rows
            if k == 0:
                return a
            s = a + k
            return Mux(s >= rows, s - rows, s)

        # Rows allocated by the writer minus rows released by the reader, and frames
        # finished by the writer minus frames finished by the reader.
        live = Signal(range(-3 * h - 1, rows + 2))
        frame_lead = Signal(range(-3, rows // h + 4))
        live_add = Signal()
        live_sub = Signal(range(h + 1))
        w_frame = Signal()
        r_frame = Signal()
        m.d.sync += [
            live.eq(live + live_add - live_sub),
            frame_lead.eq(frame_lead + w_frame - r_frame),
        ]

        # Writer: input beats in frame order into consecutive addresses (rows wrap around).
        wx, wgrp = Signal(range(w), name="wx"), Signal(range(g), name="wgrp")
        wpos = Signal(range(h * wg), name="wpos")  # beats of the frame written
        waddr = Signal(range(depth))
        row_start = (wx == 0) & (wgrp == 0)
        m.d.comb += self.i.ready.eq(~row_start | (live < rows))
        write = self.i.valid & self.i.ready
        m.d.comb += [
            wr.addr.eq(waddr),
            wr.data.eq(self.i.payload.as_value()),
            wr.en.eq(write),
            live_add.eq(write & row_start),
        ]
        with m.If(write):
            m.d.sync += waddr.eq(Mux(waddr == depth - 1, 0, waddr + 1))
            with m.If(wpos == h * wg - 1):
                m.d.sync += wpos.eq(0)
                m.d.comb += w_frame.eq(1)
            with m.Else():
                m.d.sync += wpos.eq(wpos + 1)
            with m.If(wgrp == g - 1):
                m.d.sync += wgrp.eq(0)
                with m.If(wx == w - 1):
                    m.d.sync += wx.eq(0)
                with m.Else():
                    m.d.sync += wx.eq(wx + 1)
            with m.Else():
                m.d.sync += wgrp.eq(wgrp + 1)

        # Reader: loop counters, the tap's image coordinates (y, x), the buffer slot of row y
        # and of the window's first row y0, and the slot of the frame's row 0.
        oh, ow = Signal(range(oh_n), name="oh"), Signal(range(ow_n), name="ow")
        kr, kc = Signal(range(kh), name="kr"), Signal(range(kw), name="kc")
        grp = Signal(range(g), name="grp")
        y_hi = (oh_n - 1) * sh + (kh - 1) * dh - ph
        x_hi = (ow_n - 1) * sw + (kw - 1) * dw - pw
        # (signed even without padding: the address arithmetic is then all signed)
        y = Signal(range(min(-ph, -1), y_hi + 1), init=-ph)
        x = Signal(range(min(-pw, -1), x_hi + 1), init=-pw)
        y0 = Signal(range(min(-ph, -1), y_hi + 1), init=-ph)
        x0 = Signal(range(min(-pw, -1), x_hi + 1), init=-pw)
        slot = Signal(range(rows), init=-ph % rows)
        slot0 = Signal(range(rows), init=-ph % rows)
        base = Signal(range(rows))
        freed = Signal(range(h + 1))  # rows of the reader's frame released so far

        # The tap is inside the image (comparisons only where they can fail), and already
        # written: its beat index in the frame is below the writer's.
        inside = Const(1)
        if ph > 0:
            inside &= y >= 0
        if y_hi >= h:
            inside &= y < h
        if pw > 0:
            inside &= x >= 0
        if x_hi >= w:
            inside &= x < w
        rpos = Signal(wpos.shape())
        m.d.comb += rpos.eq(y * wg + x * g + grp)
        written = rpos < wpos
        ready = Mux(
            inside,
            (frame_lead > 0) | ((frame_lead == 0) & written),
            frame_lead >= -1,  # padding only: stay at most one frame ahead of the writer
        )
        # Output register: the memory's synchronous read, and whether the beat is padding.
        valid, pad = Signal(name="valid"), Signal(name="pad")
        take = ~valid | self.o.ready
        step = take & ready
        addr_bits = Shape.cast(range(depth)).width
        m.d.comb += [
            rd.addr.eq((slot * wg + x * g + grp)[:addr_bits]),
            rd.en.eq(take),
            self.o.valid.eq(valid),
            self.o.payload.eq(Mux(pad, Const(pad_word, beat_bits), rd.data)),
        ]
        with m.If(take):
            m.d.sync += [valid.eq(ready), pad.eq(~inside)]

        # rows of the frame released once the current output row is done (unless it is the
        # last): those above the next output row's window
        nxt = y0 + sh
        now = Signal(range(h + 1))
        clamped = nxt
        if (oh_n - 1) * sh - ph > h:
            clamped = Mux(nxt > h, h, clamped)
        if sh < ph:
            clamped = Mux(nxt < 0, 0, clamped)
        m.d.comb += now.eq(clamped)

        def pixel_done():
            with m.If(ow == ow_n - 1):
                m.d.sync += [ow.eq(0), x0.eq(-pw), x.eq(-pw)]
                with m.If(oh == oh_n - 1):
                    m.d.comb += [live_sub.eq(Const(h, freed.shape()) - freed), r_frame.eq(1)]
                    m.d.sync += [
                        oh.eq(0),
                        y0.eq(-ph),
                        y.eq(-ph),
                        base.eq(mod_add(base, h)),
                        slot0.eq(mod_add(base, h - ph)),
                        slot.eq(mod_add(base, h - ph)),
                        freed.eq(0),
                    ]
                with m.Else():
                    m.d.comb += live_sub.eq(now - freed)
                    m.d.sync += [
                        oh.eq(oh + 1),
                        y0.eq(nxt),
                        y.eq(nxt),
                        slot0.eq(mod_add(slot0, sh)),
                        slot.eq(mod_add(slot0, sh)),
                        freed.eq(now),
                    ]
            with m.Else():
                m.d.sync += [ow.eq(ow + 1), x0.eq(x0 + sw), x.eq(x0 + sw)]

        levels = {
            "g": (grp, g, [], []),
            "kw": (kc, kw, [x.eq(x + dw)], [x.eq(x0)]),
            "kh": (kr, kh, [y.eq(y + dh), slot.eq(mod_add(slot, dh))], [y.eq(y0), slot.eq(slot0)]),
        }
        order = ("kw", "kh", "g") if self._channel_major else ("g", "kw", "kh")

        def carry(names):
            if not names:
                pixel_done()
                return
            ctr, n, on_step, on_wrap = levels[names[0]]
            with m.If(ctr == n - 1):
                m.d.sync += [ctr.eq(0), *on_wrap]
                carry(names[1:])
            with m.Else():
                m.d.sync += [ctr.eq(ctr + 1), *on_step]

        with m.If(step):
            carry(order)
        return m


class _ChannelMajorWindow(SlidingWindow):
    """A :class:`SlidingWindow` emitting each pixel's taps in (channel group, kh, kw) order,
    so that the ``kh * kw`` taps of one channel group are consecutive beats."""

    _channel_major = True
