"""Matrix-vector unit with PE/SIMD folding (FINN's MVAU, without its activation).

For an (MH, MW) weight matrix, ``SF = MW / SIMD`` input folds and ``NF = MH / PE`` neuron
folds: each cycle multiplies SIMD input elements by PE×SIMD weights and accumulates PE sums.
An input vector arrives SIMD elements per beat during neuron fold 0, is kept in a buffer and
re-read for folds 1..NF-1, so a vector takes SF·NF cycles and the unit emits NF beats of PE
accumulators per vector. In XNOR mode (binary layers) the product is XNOR and the sum a
popcount.
"""

from __future__ import annotations

import numpy as np
from amaranth import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from codesign.models.hwconfig import MemStyle, accumulator_range, resolve_mem_style
from codesign.models.qtype import Kind, QType

from .act import value_of
from .stream import beat_layout
from .sums import tree_sum

__all__ = ["MVAU", "accumulator_range"]


class MVAU(wiring.Component):
    """Folded matrix-vector product of a stream of input vectors.

    Parameters
    ----------
    weights
        (MH, MW) integer matrix; in XNOR mode, bits (1 for +1).
    bias
        (MH,) integers added to each sum, or None (not in XNOR mode).
    in_type
        Element type of the input stream (``simd`` elements per beat).
    out_type
        Element type of the output stream (``pe`` accumulators per beat): must hold every
        complete sum.
    in_range
        (lo, hi) of the input values, for the exact accumulator width.
    pe, simd
        Parallelism: must divide MH and MW.
    xnor
        XNOR-popcount mode: inputs and weights are bits, the output is the popcount, or
        ``2·P − MW`` when ``bipolar_out``.
    mem_style
        Weight memory style (a synthesis attribute).
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
        simd: int,
        xnor: bool = False,
        bipolar_out: bool = False,
        mem_style: MemStyle = MemStyle.DISTRIBUTED,
    ) -> None:
        w = np.asarray(weights, dtype=np.int64)
        if w.ndim != 2:
            raise ValueError(f"weights must be a 2-D matrix, not shape {w.shape}")
        mh, mw = w.shape
        if not isinstance(pe, int) or pe < 1 or mh % pe:
            raise ValueError(f"pe must divide MH={mh}, not {pe!r}")
        if not isinstance(simd, int) or simd < 1 or mw % simd:
            raise ValueError(f"simd must divide MW={mw}, not {simd!r}")
        if xnor and (bias is not None or not np.all((w == 0) | (w == 1))):
            raise ValueError("XNOR mode takes weight bits and no bias")
        self._w = w
        self._bias = None if bias is None else np.asarray(bias, dtype=np.int64)
        self._in_type, self._out_type = in_type, out_type
        self._pe, self._simd, self._xnor, self._bipolar_out = pe, simd, xnor, bipolar_out
        self._mem_style = resolve_mem_style(MemStyle(mem_style), (mh // pe) * (mw // simd))
        lo, hi = accumulator_range(w, self._bias, *in_range, simd, xnor)
        self._acc_type = QType.covering(lo, hi)
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(in_type, simd))),
                "o": Out(stream.Signature(beat_layout(out_type, pe))),
            }
        )

    @property
    def sf(self) -> int:
        return self._w.shape[1] // self._simd

    @property
    def nf(self) -> int:
        return self._w.shape[0] // self._pe

    @property
    def cycles_per_vector(self) -> int:
        return self.sf * self.nf

    def _weight_words(self) -> tuple[list[int], int, bool]:
        """ROM words in (nf, sf) order: lane (p, s) at bits ((p*SIMD + s) * wbits)."""
        w = self._w
        if self._xnor:
            wbits, wsigned = 1, False
        else:
            t = QType.covering(int(w.min()), int(w.max()))
            wbits, wsigned = t.bits, t.signed
        enc = w & ((1 << wbits) - 1)
        pe, simd = self._pe, self._simd
        words = []
        for nf in range(self.nf):
            for sf in range(self.sf):
                block = enc[nf * pe : (nf + 1) * pe, sf * simd : (sf + 1) * simd].ravel()
                word = 0
                for k, v in enumerate(block.tolist()):
                    word |= v << (k * wbits)
                words.append(word)
        return words, wbits, wsigned

    def elaborate(self, platform):
        m = Module()
        pe, simd, sf_n, nf_n = self._pe, self._simd, self.sf, self.nf
        in_el = len(Signal(beat_layout(self._in_type, 1)).as_value())
        words, wbits, wsigned = self._weight_words()
        # Yosys's ram_style: a ROM in LUTs is "logic" (its "distributed" means LUT *RAM*,
        # which cannot hold a synchronously read ROM on every family); BLOCK asks for BRAM
        style = {"ram_style": "block" if self._mem_style is MemStyle.BLOCK else "logic"}
        m.submodules.weights = wmem = memory.Memory(
            shape=unsigned(pe * simd * wbits), depth=max(len(words), 2), init=words, attrs=style
        )
        m.submodules.vector = vmem = memory.Memory(
            shape=unsigned(simd * in_el), depth=max(sf_n, 2), init=[]
        )
        w_rd = wmem.read_port()
        v_rd = vmem.read_port()
        v_wr = vmem.write_port()

        # fetch stage: the (nf, sf) step whose operands are read this cycle
        sf = Signal(range(max(sf_n, 2)))  # >= 1 bit: zero-width vectors lint as [-1:0]
        nf = Signal(range(max(nf_n, 2)))
        addr = Signal(range(max(len(words), 2)))
        # compute stage registers
        c_valid = Signal()
        c_first = Signal()
        c_last = Signal()
        c_from_input = Signal()
        c_nf = Signal(range(max(nf_n, 2)))
        x_in = Signal(simd * in_el)
        acc_shape = (
            signed(self._acc_type.bits) if self._acc_type.signed else unsigned(self._acc_type.bits)
        )
        acc = [Signal(acc_shape, name=f"acc{p}") for p in range(pe)]
        o_full = self.o.valid  # the output registers are the ports themselves (stable names)

        c_done = c_valid & (~c_last | ~o_full | self.o.ready)
        room = ~c_valid | c_done
        need_input = nf == 0
        step = room & (~need_input | self.i.valid)
        m.d.comb += [
            self.i.ready.eq(room & need_input),
            w_rd.addr.eq(addr),
            w_rd.en.eq(step),
            v_rd.addr.eq(sf),
            v_rd.en.eq(step & ~need_input),  # the input itself is used then
            v_wr.addr.eq(sf),
            v_wr.data.eq(self.i.payload.as_value()),
            v_wr.en.eq(step & need_input),
        ]
        with m.If(step):
            last_sf = sf == sf_n - 1
            m.d.sync += [
                c_first.eq(sf == 0),
                c_last.eq(last_sf),
                c_from_input.eq(need_input),
                c_nf.eq(nf),
                x_in.eq(self.i.payload.as_value()),
                sf.eq(Mux(last_sf, 0, sf + 1)),
                addr.eq(Mux(addr == len(words) - 1, 0, addr + 1)),
            ]
            with m.If(last_sf):
                m.d.sync += nf.eq(Mux(nf == nf_n - 1, 0, nf + 1))
        with m.If(step):
            m.d.sync += c_valid.eq(1)
        with m.Elif(c_done):
            m.d.sync += c_valid.eq(0)

        # compute stage: PE dot products of SIMD elements, accumulated
        x_word = Mux(c_from_input, x_in, v_rd.data)
        xs = [x_word[s * in_el : (s + 1) * in_el] for s in range(simd)]
        bias_rows = None if self._bias is None else self._bias.reshape(nf_n, pe)
        new_acc = []
        for p in range(pe):
            terms = []
            for s in range(simd):
                wraw = w_rd.data[(p * simd + s) * wbits : (p * simd + s + 1) * wbits]
                if self._xnor:
                    terms.append(~(wraw ^ xs[s][0]))
                else:
                    x_val = value_of(
                        xs[s].as_signed()
                        if self._in_type.signed and self._in_type.kind is not Kind.BIPOLAR
                        else xs[s],
                        self._in_type,
                    )
                    w_val = wraw.as_signed() if wsigned else wraw
                    terms.append(x_val * w_val)
            dot = tree_sum(terms, None if self._xnor else m)
            if bias_rows is None:
                start = Const(0)
            elif np.all(bias_rows[:, p] == bias_rows[0, p]):
                start = Const(int(bias_rows[0, p]))
            else:
                start = Array(Const(int(b)) for b in bias_rows[:, p])[c_nf]
            new_acc.append(Mux(c_first, start, acc[p]) + dot)
        with m.If(c_done):
            for p in range(pe):
                m.d.sync += acc[p].eq(new_acc[p])
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += o_full.eq(0)
        with m.If(c_done & c_last):
            mw = self._w.shape[1]
            for p in range(pe):
                value = new_acc[p]
                if self._xnor and self._bipolar_out:
                    value = (value << 1) - mw
                m.d.sync += self.o.payload[p].eq(value)
            m.d.sync += o_full.eq(1)
        return m
