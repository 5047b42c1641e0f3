"""Vector-vector unit for depthwise convolution (FINN's VVAU).

A depthwise convolution gives output channel ``c`` the dot product of channel ``c``'s
window with its own KH·KW weights. The unit reads the sliding-window stream in its (kh, kw,
channel) order, PE channels per beat: beat ``t·(C/PE) + g`` carries tap ``t`` of channel
group ``g``. It keeps one accumulator per channel, and after the last tap of a pixel emits
the C/PE beats of that pixel's output channels (taking no input meanwhile), so a pixel takes
(KH·KW + 1)·C/PE cycles.
"""

from __future__ import annotations

import numpy as np
from amaranth import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from codesign.models.qtype import Kind, QType

from .act import value_of
from .mvau import accumulator_range
from .stream import beat_layout

__all__ = ["VVAU"]


class VVAU(wiring.Component):
    """Depthwise products of a window stream.

    Parameters
    ----------
    weights
        (C, KH·KW) integers: channel ``c``'s taps in (kh, kw) order.
    bias
        (C,) integers or None.
    in_type, out_type
        Element types of the window stream and of the output (which must hold every sum).
    in_range
        (lo, hi) of the window values (include 0 when the convolution pads).
    pe
        Channels per beat, dividing C.
    """

    def __init__(
        self,
        *,
        weights,
        bias=None,
        in_type: QType,
        out_type: QType,
        in_range: tuple[int, int],
        pe: int,
    ) -> None:
        w = np.asarray(weights, dtype=np.int64)
        if w.ndim != 2:
            raise ValueError(f"weights must be (C, KH*KW), not shape {w.shape}")
        c = w.shape[0]
        if not isinstance(pe, int) or pe < 1 or c % pe:
            raise ValueError(f"pe must divide the {c} channels, not {pe!r}")
        self._w, self._bias = w, None if bias is None else np.asarray(bias, dtype=np.int64)
        self._in_type, self._out_type, self._pe = in_type, out_type, pe
        # partial sums over taps, per channel: the same prefix bound as an MVAU row
        lo, hi = accumulator_range(w, self._bias, *in_range, 1, False)
        self._acc_type = QType.covering(lo, hi)
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(in_type, pe))),
                "o": Out(stream.Signature(beat_layout(out_type, pe))),
            }
        )

    @property
    def cycles_per_pixel(self) -> int:
        c, taps = self._w.shape
        return (taps + 1) * (c // self._pe)

    def elaborate(self, platform):
        m = Module()
        c, taps = self._w.shape
        pe = self._pe
        groups = c // pe
        in_el = 1 if self._in_type.kind is Kind.BIPOLAR else self._in_type.bits
        wt = QType.covering(int(self._w.min()), int(self._w.max()))
        # ROM word per (tap, group): PE weights
        words = []
        for t in range(taps):
            for g in range(groups):
                word = 0
                for p in range(pe):
                    word |= (int(self._w[g * pe + p, t]) & ((1 << wt.bits) - 1)) << (p * wt.bits)
                words.append(word)
        m.submodules.weights = rom = memory.Memory(
            shape=unsigned(pe * wt.bits), depth=max(len(words), 2), init=words
        )
        rd = rom.read_port(domain="comb")
        acc_shape = (
            signed(self._acc_type.bits) if self._acc_type.signed else unsigned(self._acc_type.bits)
        )
        accs = [
            [Signal(acc_shape, name=f"acc_g{g}_p{p}") for p in range(pe)] for g in range(groups)
        ]
        t = Signal(range(max(taps, 2)))
        g = Signal(range(max(groups, 2)))
        addr = Signal(range(max(len(words), 2)))
        # output side: after the last tap, the C/PE result beats are sent one by one
        sending = self.o.valid  # a register that is the port itself (a stable name)
        out_g = Signal(range(max(groups, 2)))
        m.d.comb += [
            rd.addr.eq(addr),
            self.i.ready.eq(~sending),
        ]
        for p in range(pe):
            m.d.comb += self.o.payload[p].eq(Array(accs[k][p] for k in range(groups))[out_g])
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_g.eq(Mux(out_g == groups - 1, 0, out_g + 1))
            with m.If(out_g == groups - 1):
                m.d.sync += sending.eq(0)
        with m.If(self.i.valid & self.i.ready):
            for p in range(pe):
                x = self.i.payload.as_value()[p * in_el : (p + 1) * in_el]
                if self._in_type.signed and self._in_type.kind is not Kind.BIPOLAR:
                    x = x.as_signed()
                xv = value_of(x, self._in_type)
                wv = rd.data[p * wt.bits : (p + 1) * wt.bits]
                wv = wv.as_signed() if wt.signed else wv
                bias = 0 if self._bias is None else self._bias
                for k in range(groups):
                    start = Const(int(bias[k * pe + p])) if self._bias is not None else Const(0)
                    with m.If(g == k):
                        m.d.sync += accs[k][p].eq(Mux(t == 0, start, accs[k][p]) + xv * wv)
            last_g = g == groups - 1
            m.d.sync += [
                g.eq(Mux(last_g, 0, g + 1)),
                addr.eq(Mux(addr == len(words) - 1, 0, addr + 1)),
            ]
            with m.If(last_g):
                m.d.sync += t.eq(Mux(t == taps - 1, 0, t + 1))
                with m.If(t == taps - 1):
                    m.d.sync += sending.eq(1)
        return m
