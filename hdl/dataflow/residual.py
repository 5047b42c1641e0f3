"""Residual connections: a stream fork and an element-wise add of two streams."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.hdl import ShapeCastable
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from codesign.models.qtype import QType

from .act import value_of
from .stream import beat_layout

__all__ = ["AddStreams", "Fork"]


class Fork(wiring.Component):
    """Copies every beat of ``i`` to both ``o0`` and ``o1``; each output takes it at its own
    pace, and ``i`` moves on once both have (no beat is lost or repeated)."""

    def __init__(self, *, layout: ShapeCastable) -> None:
        sig = stream.Signature(layout)
        super().__init__({"i": In(sig), "o0": Out(sig), "o1": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        done0, done1 = Signal(), Signal()  # output already took the current beat
        take0 = self.o0.valid & self.o0.ready
        take1 = self.o1.valid & self.o1.ready
        m.d.comb += [
            self.o0.payload.eq(self.i.payload),
            self.o1.payload.eq(self.i.payload),
            self.o0.valid.eq(self.i.valid & ~done0),
            self.o1.valid.eq(self.i.valid & ~done1),
            self.i.ready.eq((done0 | self.o0.ready) & (done1 | self.o1.ready)),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [done0.eq(0), done1.eq(0)]
        with m.Else():
            with m.If(take0):
                m.d.sync += done0.eq(1)
            with m.If(take1):
                m.d.sync += done1.eq(1)
        return m


class AddStreams(wiring.Component):
    """``o = a + b`` element by element, for two streams of ``n`` elements per beat; the
    output type must hold every sum (the IR's Add layer gives it). One register stage."""

    def __init__(self, *, a_type: QType, b_type: QType, out_type: QType, n: int) -> None:
        self._a, self._b, self._out, self._n = a_type, b_type, out_type, n
        super().__init__(
            {
                "a": In(stream.Signature(beat_layout(a_type, n))),
                "b": In(stream.Signature(beat_layout(b_type, n))),
                "o": Out(stream.Signature(beat_layout(out_type, n))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        full = Signal()
        out = Signal(beat_layout(self._out, self._n))
        room = ~full | self.o.ready
        both = self.a.valid & self.b.valid
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload.eq(out),
            self.a.ready.eq(room & both),
            self.b.ready.eq(room & both),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(room & both):
            for k in range(self._n):
                m.d.sync += out[k].eq(
                    value_of(self.a.payload[k], self._a) + value_of(self.b.payload[k], self._b)
                )
            m.d.sync += full.eq(1)
        return m
