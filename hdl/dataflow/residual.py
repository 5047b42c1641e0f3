"""Residual connections: a stream fork and an element-wise add of two streams."""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.hdl import ShapeCastable
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from codesign.models.qtype import QType

from .act import value_of
from .credit import pipe_signature
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
    output type must hold every sum (the IR's Add layer gives it).

    The head of a credit pipeline (:mod:`codesign.hdl.dataflow.credit`): it takes a beat
    from both inputs at once when both are valid and the queue has ``space``, and registers
    the sum (the ``sum`` stage), which ``o`` carries the next cycle without back-pressure.
    """

    def __init__(self, *, a_type: QType, b_type: QType, out_type: QType, n: int) -> None:
        self._a, self._b, self._out, self._n = a_type, b_type, out_type, n
        super().__init__(
            {
                "a": In(stream.Signature(beat_layout(a_type, n))),
                "b": In(stream.Signature(beat_layout(b_type, n))),
                "o": Out(pipe_signature(beat_layout(out_type, n))),
                "space": In(1),
                "reserve": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        take = self.a.valid & self.b.valid & self.space
        m.d.comb += [
            self.a.ready.eq(take),
            self.b.ready.eq(take),
            self.reserve.eq(take),
        ]
        m.d.sync += self.o.valid.eq(take)
        with m.If(take):
            for k in range(self._n):
                m.d.sync += self.o.payload[k].eq(
                    value_of(self.a.payload[k], self._a) + value_of(self.b.payload[k], self._b)
                )
        return m
