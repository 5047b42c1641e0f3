"""Stream conventions shared by every dataflow block, and the generic stream blocks.

Conventions
-----------
- A tensor element of :class:`~codesign.models.qtype.QType` ``t`` is ``signed(t.bits)`` when ``t``
is
  signed, else ``unsigned(t.bits)``; a bipolar element is ``unsigned(1)`` with 1 for +1 and
  0 for -1 (FINN's encoding).
- A beat carries ``n`` consecutive elements as ``data.ArrayLayout(element, n)``: element 0 of
  the beat is the earliest in the frame and sits in the least significant bits.
- A frame is one tensor of one sample, in channels-last order: for a (C, H, W) tensor, row by
  row, pixel by pixel, channel by channel; a 1-D tensor in index order.
- Streams are ``amaranth.lib.stream`` signatures (``payload``, ``valid``, ``ready``); a beat
  moves when ``valid & ready``. Nothing marks frame ends inside the pipeline.
"""

from __future__ import annotations

from math import gcd

import numpy as np
from amaranth import Array, Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.hdl import ShapeCastable
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out
from codesign.models.device import memory_map
from codesign.models.pipelining import FIFO_PREFETCH
from codesign.models.qtype import Kind, QType

from .compare import up_down
from .fifo import RegisteredFlagFIFO, fifo_ports

__all__ = [
    "PREFETCH",
    "BlockFIFO",
    "StreamFIFO",
    "WidthConverter",
    "beat_layout",
    "decode",
    "element_shape",
    "encode",
    "pack_beats",
    "stream_signature",
    "to_channels_last",
    "unpack_beats",
]


def element_shape(qtype: QType) -> ShapeCastable:
    """Hardware shape of one element of ``qtype``."""
    if qtype.kind is Kind.BIPOLAR:
        return unsigned(1)
    return signed(qtype.bits) if qtype.signed else unsigned(qtype.bits)


def beat_layout(qtype: QType, n: int) -> data.ArrayLayout:
    """``n`` elements of ``qtype`` per beat."""
    return data.ArrayLayout(element_shape(qtype), n)


def stream_signature(qtype: QType, n: int) -> stream.Signature:
    """A stream of beats of ``n`` elements of ``qtype``."""
    return stream.Signature(beat_layout(qtype, n))


def encode(values, qtype: QType) -> np.ndarray:
    """Integer values → their unsigned bit patterns (as int64) in ``qtype``'s encoding."""
    v = np.asarray(values, dtype=np.int64)
    if qtype.kind is Kind.BIPOLAR:
        return (v > 0).astype(np.int64)
    return v & ((1 << qtype.bits) - 1)


def decode(bits, qtype: QType) -> np.ndarray:
    """Bit patterns → integer values (inverse of :func:`encode`)."""
    b = np.asarray(bits, dtype=np.int64)
    if qtype.kind is Kind.BIPOLAR:
        return np.where(b & 1, 1, -1)
    if qtype.signed:
        sign = 1 << (qtype.bits - 1)
        return (b ^ sign) - sign
    return b


def to_channels_last(x: np.ndarray) -> np.ndarray:
    """A batch (N, C, H, W) or (N, F) as (N, elements) in stream (channels-last) order."""
    x = np.asarray(x)
    if x.ndim == 4:
        x = x.transpose(0, 2, 3, 1)
    return x.reshape(x.shape[0], -1)


def pack_beats(frame: np.ndarray, qtype: QType, n: int) -> list[int]:
    """One frame's elements (1-D, stream order) as beat words of ``n`` elements."""
    e = encode(frame, qtype).reshape(-1, n)
    bits = 1 if qtype.kind is Kind.BIPOLAR else qtype.bits
    words = []
    for row in e.tolist():
        w = 0
        for k, v in enumerate(row):
            w |= v << (k * bits)
        words.append(w)
    return words


def unpack_beats(words, qtype: QType, n: int) -> np.ndarray:
    """Beat words back to elements (1-D, stream order)."""
    bits = 1 if qtype.kind is Kind.BIPOLAR else qtype.bits
    mask = (1 << bits) - 1
    raw = [(int(w) >> (k * bits)) & mask for w in words for k in range(n)]
    return decode(np.array(raw, dtype=np.int64), qtype)


#: Slots of a :class:`BlockFIFO`'s prefetch buffer
#: (:data:`codesign.models.pipelining.FIFO_PREFETCH`, which the cost model reads too).
PREFETCH = FIFO_PREFETCH


class BlockFIFO(wiring.Component):
    """A queue of ``depth`` words in block RAM whose ports behave cycle for cycle as
    ``amaranth.lib.fifo.SyncFIFOBuffered``'s (``w_rdy``, ``r_rdy``, ``r_data``, ``level``,
    for any ``w_en`` and ``r_en``), with no path from the block RAM's slow clock-to-output
    and none from a counter comparison to ``w_rdy``.

    ``SyncFIFOBuffered`` reads its storage straight into its output register, so a word in
    block RAM reaches the logic behind it at the block's clock-to-output without its
    register (5.6-5.8 ns at speed 6 on ECP5, where Yosys maps it). Here the storage is a
    :class:`~codesign.hdl.dataflow.swg.LineMemory` read through two registers (DP16KD's
    output register on ECP5), into a prefetch buffer of :data:`PREFETCH` word registers
    in front of the output register: a word is read as soon as a buffer slot is free, and
    a word written while the block RAM holds none goes straight into the buffer. Every
    word is in the buffer by the cycle ``SyncFIFOBuffered`` would move it to its output
    register (a word reaches the buffer three cycles after its read, and the slots cover
    the four words the output register takes meanwhile), so the output register loads in
    the same cycles. ``w_rdy`` is a register: ``level`` less the output register below
    ``depth - 1`` after the cycle.

    Parameters
    ----------
    width
        Bits of a word.
    depth
        Capacity in words, output register included (at least 2).
    target
        None for the portable form, ``"ecp5"`` for DP16KD instances where block RAM
        (:class:`~codesign.hdl.dataflow.swg.LineMemory`).
    """

    def __init__(self, *, width: int, depth: int, target: str | None = None) -> None:
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive int, not {width!r}")
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an int of at least 2, not {depth!r}")
        self._width, self._depth, self._target = width, depth, target
        super().__init__(fifo_ports(width, depth))

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        from .swg import LineMemory

        m = Module()
        width, depth, k_n = self._width, self._depth, PREFETCH
        words = depth - 1  # as SyncFIFOBuffered: every word but the output register's
        m.submodules.storage = mem = LineMemory(
            shape=unsigned(width), depth=words, latency=2, target=self._target
        )
        # words accepted and not in the output register (SyncFIFOBuffered's inner level)
        inner = Signal(range(depth))
        # words in the block RAM not yet read, and whether there are any (a register)
        stored = Signal(range(words + 1))
        stored_any = Signal()
        produce, consume = Signal(range(words)), Signal(range(words))
        # the prefetch buffer: a ring of slots, each reserved (by a read or a word written
        # straight in) before its word arrives; ``free``: fewer than k_n reserved
        slot_data = [Signal(width, name=f"slot{k}") for k in range(k_n)]
        slot_full = [Signal(name=f"slot{k}_full") for k in range(k_n)]
        head, tail = Signal(range(k_n)), Signal(range(k_n))
        reserved = Signal(range(k_n + 1))
        free = Signal(init=1)
        # the reads in flight: in the block RAM's read register, then its output register
        fly = [Signal(name=f"fly{k}") for k in range(2)]
        fly_slot = [Signal(range(k_n), name=f"fly{k}_slot") for k in range(2)]

        do_write = self.w_en & self.w_rdy
        direct = ~stored_any & free  # a word written now goes straight into the buffer
        issue = stored_any & free
        reserve = (do_write & direct) | issue
        take = ~self.r_rdy | self.r_en
        head_full = Array(slot_full)[head]
        load = take & head_full
        m.d.comb += [
            mem.w_addr.eq(produce),
            mem.w_data.eq(self.w_data),
            mem.w_en.eq(do_write & ~direct),
            mem.r_addr.eq(consume),
            mem.r_en.eq(Cat(issue, 1)),
            self.level.eq(inner + self.r_rdy),
        ]
        m.d.sync += [
            fly[0].eq(issue),
            fly_slot[0].eq(tail),
            fly[1].eq(fly[0]),
            fly_slot[1].eq(fly_slot[0]),
        ]
        for k in range(k_n):
            arrive = fly[1] & (fly_slot[1] == k)
            write = do_write & direct & (tail == k)
            with m.If(arrive):
                m.d.sync += [slot_data[k].eq(mem.r_data), slot_full[k].eq(1)]
            with m.Elif(write):
                m.d.sync += [slot_data[k].eq(self.w_data), slot_full[k].eq(1)]
            with m.Elif(load & (head == k)):
                m.d.sync += slot_full[k].eq(0)
        with m.If(take):
            m.d.sync += self.r_rdy.eq(head_full)
        with m.If(load):
            m.d.sync += [
                self.r_data.eq(Array(slot_data)[head]),
                head.eq(Mux(head == k_n - 1, 0, head + 1)),
            ]
        with m.If(reserve):
            m.d.sync += tail.eq(Mux(tail == k_n - 1, 0, tail + 1))
        with m.If(do_write & ~direct):
            m.d.sync += produce.eq(Mux(produce == words - 1, 0, produce + 1))
        with m.If(issue):
            m.d.sync += consume.eq(Mux(consume == words - 1, 0, consume + 1))
        # the counts, and each flag after the cycle from its count alone (the strobes only
        # choose among comparisons of registers with constants, and among the counts' sums:
        # compare.up_down)
        m.d.sync += [
            reserved.eq(up_down(reserved, reserve, load)),
            free.eq(Mux(reserve & ~load, reserved < k_n - 1, (load & ~reserve) | free)),
        ]
        into, out = do_write & ~direct, issue
        m.d.sync += [
            stored.eq(up_down(stored, into, out)),
            stored_any.eq(Mux(into & ~out, 1, Mux(out & ~into, stored != 1, stored_any))),
        ]
        m.d.sync += [
            inner.eq(up_down(inner, do_write, load)),
            self.w_rdy.eq(
                Mux(do_write & ~load, inner != depth - 2, (load & ~do_write) | self.w_rdy)
            ),
        ]
        return m


class StreamFIFO(wiring.Component):
    """A first-in first-out queue of ``depth`` beats between two streams of ``layout``
    (``amaranth.lib.fifo.SyncFIFOBuffered``'s behaviour, block-RAM friendly: one cycle more
    latency than an asynchronous-read queue). Where the storage is block RAM
    (:func:`codesign.models.device.memory_map` of its ``depth - 1`` words), a
    :class:`BlockFIFO`, which behaves cycle for cycle the same, with the block's output
    register; elsewhere a :class:`~codesign.hdl.dataflow.fifo.RegisteredFlagFIFO`, the same
    with its flags in registers.

    Parameters
    ----------
    layout
        Payload shape of both streams.
    depth
        Capacity in beats, at least 1.
    target
        None for portable Verilog, ``"ecp5"`` for a block-RAM queue of DP16KD instances.

    Attributes
    ----------
    level : Out(range(depth + 1))
        Beats held, output register included (the queue's own ``level``, as Glasgow's
        ``Queue`` and Amaranth's FIFOs expose it): a status output for benches and
        monitors, which the stream logic does not use.
    """

    def __init__(self, *, layout: ShapeCastable, depth: int, target: str | None = None) -> None:
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be a positive int, not {depth!r}")
        self._layout = layout
        self._depth = depth
        self._target = target
        width = Shape.cast(layout).width
        self._block = depth > 1 and memory_map(depth - 1, width)[0] == "bram"
        super().__init__(
            {
                "i": In(stream.Signature(layout)),
                "o": Out(stream.Signature(layout)),
                "level": Out(range(depth + 1)),
            }
        )

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def block(self) -> bool:
        """Whether the queue is a :class:`BlockFIFO` (its storage is block RAM)."""
        return self._block

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self._layout).width
        if self._block:
            q = BlockFIFO(width=width, depth=self._depth, target=self._target)
        elif self._depth >= 2:  # the same FIFO with its flags in registers (fifo.py)
            q = RegisteredFlagFIFO(width=width, depth=self._depth)
        else:
            q = fifo.SyncFIFOBuffered(width=width, depth=self._depth)
        m.submodules.queue = q
        m.d.comb += [
            q.w_data.eq(self.i.payload.as_value()),
            q.w_en.eq(self.i.valid),
            self.i.ready.eq(q.w_rdy),
            self.o.payload.eq(q.r_data),
            self.o.valid.eq(q.r_rdy),
            q.r_en.eq(self.o.ready),
            self.level.eq(q.level),
        ]
        return m


class WidthConverter(wiring.Component):
    """Regroups a stream of ``n_in`` elements per beat into ``n_out`` elements per beat,
    keeping element order. Through ``gcd(n_in, n_out)`` when neither divides the other;
    the frame length must be a multiple of both.

    Sustains one input beat per cycle when gathering and one output beat per cycle when
    splitting.
    """

    def __init__(self, *, element: ShapeCastable, n_in: int, n_out: int) -> None:
        for name, v in (("n_in", n_in), ("n_out", n_out)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, not {v!r}")
        self._element = element
        self._n_in, self._n_out = n_in, n_out
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(element, n_in))),
                "o": Out(stream.Signature(data.ArrayLayout(element, n_out))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        n_in, n_out, el = self._n_in, self._n_out, self._element
        if n_in == n_out:
            wiring.connect(m, wiring.flipped(self.i), wiring.flipped(self.o))
        elif n_out % n_in == 0:
            m.submodules.gather = g = _Gather(element=el, n_in=n_in, k=n_out // n_in)
            wiring.connect(m, wiring.flipped(self.i), g.i)
            wiring.connect(m, g.o, wiring.flipped(self.o))
        elif n_in % n_out == 0:
            m.submodules.split = s = _Split(element=el, n_out=n_out, k=n_in // n_out)
            wiring.connect(m, wiring.flipped(self.i), s.i)
            wiring.connect(m, s.o, wiring.flipped(self.o))
        else:
            g = gcd(n_in, n_out)
            m.submodules.down = d = WidthConverter(element=el, n_in=n_in, n_out=g)
            m.submodules.up = u = WidthConverter(element=el, n_in=g, n_out=n_out)
            wiring.connect(m, wiring.flipped(self.i), d.i)
            wiring.connect(m, d.o, u.i)
            wiring.connect(m, u.o, wiring.flipped(self.o))
        return m


class _Gather(wiring.Component):
    """``k`` beats of ``n_in`` elements → one beat of ``k * n_in``."""

    def __init__(self, *, element, n_in: int, k: int) -> None:
        self._element, self._n_in, self._k = element, n_in, k
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(element, n_in))),
                "o": Out(stream.Signature(data.ArrayLayout(element, n_in * k))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        k, chunk = self._k, len(self.i.payload.as_value())
        parts = Signal(chunk * (k - 1))  # the first k-1 chunks of the beat being assembled
        count = Signal(range(k))
        full = Signal()
        out = Signal(chunk * k)
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload.eq(out),
            self.i.ready.eq(~full | self.o.ready),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            with m.If(count == k - 1):
                m.d.sync += [
                    out.eq(self.i.payload.as_value().shift_left(chunk * (k - 1)) | parts),
                    full.eq(1),
                    count.eq(0),
                ]
            with m.Else():
                for j in range(k - 1):
                    with m.If(count == j):
                        m.d.sync += parts[j * chunk : (j + 1) * chunk].eq(self.i.payload.as_value())
                m.d.sync += count.eq(count + 1)
        return m


class _Split(wiring.Component):
    """One beat of ``k * n_out`` elements → ``k`` beats of ``n_out``."""

    def __init__(self, *, element, n_out: int, k: int) -> None:
        self._element, self._n_out, self._k = element, n_out, k
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(element, n_out * k))),
                "o": Out(stream.Signature(data.ArrayLayout(element, n_out))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        k, chunk = self._k, len(self.o.payload.as_value())
        word = Signal(chunk * k)
        count = Signal(range(k))
        full = Signal()
        last = count == k - 1
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload.eq(word.word_select(count, chunk)),
            self.i.ready.eq(~full | (last & self.o.ready)),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += count.eq(Mux(last, 0, count + 1))
            with m.If(last):
                m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [word.eq(self.i.payload.as_value()), full.eq(1), count.eq(0)]
        return m
