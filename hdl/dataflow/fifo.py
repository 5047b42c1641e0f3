"""A synchronous FIFO, cycle for cycle ``amaranth.lib.fifo.SyncFIFOBuffered``, whose
``w_rdy`` and inner not-empty flag are registers.

``SyncFIFOBuffered`` computes ``w_rdy`` as ``inner_level != inner_depth``: a compare of a
register, then every writer's ``ready`` logic. In a pipeline it starts the back-pressure
paths that limit Fmax (jet_tagger: ``fifo_fc2`` level → ``w_rdy`` → the width converter's
``ready`` → a credit queue's clock enables, 7.3 ns at speed 6, most of it routing). Here both
flags are computed a cycle ahead from the same events, so their values are those of the
library's FIFO in every cycle (tests/hdl/test_fifo.py runs the two side by side) and no
timing model changes.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .compare import up_down

__all__ = ["RegisteredFlagFIFO", "fifo_ports"]


def fifo_ports(width: int, depth: int) -> dict:
    """The ports of ``SyncFIFOBuffered`` (``w_rdy`` high out of reset), for the FIFOs that
    behave as it does: :class:`RegisteredFlagFIFO` and
    :class:`~codesign.hdl.dataflow.stream.BlockFIFO`."""
    return {
        "w_data": In(width),
        "w_en": In(1),
        "w_rdy": Out(1, init=1),
        "r_data": Out(width),
        "r_en": In(1),
        "r_rdy": Out(1),
        "level": Out(range(depth + 1)),
    }


class RegisteredFlagFIFO(wiring.Component):
    """``width`` bits by ``depth`` entries, with ``SyncFIFOBuffered``'s ports and behaviour:
    ``w_data``/``w_en``/``w_rdy``, ``r_data``/``r_en``/``r_rdy`` (the output register's
    valid), ``level`` (entries held, the output register included)."""

    def __init__(self, *, width: int, depth: int) -> None:
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an int of at least 2, not {depth!r}")
        self.width, self.depth = width, depth
        super().__init__(fifo_ports(width, depth))

    def elaborate(self, platform):
        m = Module()
        inner_depth = self.depth - 1  # the rest is the output register
        inner_level = Signal(range(inner_depth + 1))
        # inner_level != inner_depth and inner_level != 0, each held in a register
        not_full = Signal(init=1)
        not_empty = Signal()
        do_write = self.w_en & not_full
        do_read = not_empty & (~self.r_rdy | self.r_en)
        m.d.comb += self.w_rdy.eq(not_full)

        storage = m.submodules.storage = Memory(shape=self.width, depth=inner_depth, init=[])
        w_port = storage.write_port()
        r_port = storage.read_port(domain="sync")
        produce = Signal(range(inner_depth))
        consume = Signal(range(inner_depth))
        m.d.comb += [
            w_port.addr.eq(produce),
            w_port.data.eq(self.w_data),
            w_port.en.eq(do_write),
            r_port.addr.eq(consume),
            r_port.en.eq(do_read),
            self.r_data.eq(r_port.data),
            self.level.eq(inner_level + self.r_rdy),
        ]
        with m.If(do_write):
            m.d.sync += produce.eq(_next(produce, inner_depth))
        with m.If(do_read):
            m.d.sync += consume.eq(_next(consume, inner_depth))
        # the level after this cycle, and both flags of it (compares of the register with
        # constants; the events only select, after the sums: compare.up_down; as a
        # multiplexer the reader's ``ready`` ran through the level's carry chain, cnv_tiny's
        # longest path at speed 6, 7.5 ns)
        up, down = do_write & ~do_read, do_read & ~do_write
        m.d.sync += inner_level.eq(up_down(inner_level, do_write, do_read))
        with m.If(up):
            m.d.sync += [not_full.eq(inner_level != inner_depth - 1), not_empty.eq(1)]
        with m.If(down):
            m.d.sync += [not_full.eq(1), not_empty.eq(inner_level != 1)]
        with m.If(do_read):
            m.d.sync += self.r_rdy.eq(1)
        with m.Elif(self.r_en):
            m.d.sync += self.r_rdy.eq(0)
        return m


def _next(ptr: Signal, depth: int):
    """``ptr + 1`` modulo ``depth``."""
    if depth & (depth - 1) == 0:
        return ptr + 1  # truncated by the assignment
    return Mux(ptr == depth - 1, 0, ptr + 1)
