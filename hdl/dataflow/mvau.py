"""Matrix-vector unit with PE/SIMD folding (FINN's MVAU, without its activation).

For an (MH, MW) weight matrix, ``SF = MW / SIMD`` input folds and ``NF = MH / PE`` neuron
folds: each cycle multiplies SIMD input elements by PE×SIMD weights and accumulates PE sums.
An input vector arrives SIMD elements per beat during neuron fold 0, is kept in a buffer and
re-read for folds 1..NF-1, so a vector takes SF·NF cycles and the unit emits NF beats of PE
accumulators per vector. In XNOR mode (binary layers) the product is XNOR and the sum a
popcount.

With N:M sparsity (``sparsity=(n, m)``, weights with at most N nonzeros in every M
consecutive columns) the unit is the sparse MVAU of :mod:`codesign.models.compress.sparsity`:
a weight word holds, per PE and per M-group of the SIMD elements, the N kept weights and
their positions in the group (:func:`~codesign.models.compress.sparsity.weight_rom`); an M:1
multiplexer per kept weight selects its input element (registered in the ``select`` stage
when pipelined), and each PE has SIMD·N/M multipliers and an adder tree over as many
products. It consumes SIMD elements per cycle, as the dense unit: the same SF·NF cycles per
vector, the same outputs, beat for beat, as the dense unit with the pruned weights.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from codesign.models.compress import sparsity as nm
from codesign.models.device import memory_map
from codesign.models.hwconfig import MemStyle, accumulator_range, resolve_mem_style
from codesign.models.pipelining import PipelineMode, matrix_stages, tree_groups
from codesign.models.qtype import QType

from ..tools import REPLICA
from .act import value_of
from .bram import RegisteredRam, RegisteredRom
from .credit import pipe_signature
from .dsp import RegisteredProduct
from .stream import beat_layout, element_shape
from .sums import pipelined_tree_sum

__all__ = ["MVAU", "ROM_BANK_BITS", "accumulator_range"]

#: Output bits of one bank of a weight ROM in logic (each bank has its own address register).
ROM_BANK_BITS = 64


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
    pipeline
        How deeply the datapath is pipelined (:func:`codesign.models.pipelining.matrix_stages`).
    target
        Where the multipliers are built (:class:`~codesign.hdl.dataflow.dsp.RegisteredProduct`):
        None for portable fabric registers, ``"ecp5"`` for MULT18X18D instances.
    sparsity
        ``(n, m)`` (or ``"n:m"``) for the N:M sparse unit: ``weights`` must have at most
        ``n`` nonzeros in every ``m`` consecutive columns and ``m`` must divide ``simd``
        (not in XNOR mode). None: the dense unit.
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
        pipeline: PipelineMode = PipelineMode.AUTO,
        target: str | None = None,
        sparsity: tuple[int, int] | str | None = None,
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
        if sparsity is not None:
            n, m = nm.parse_sparsity(sparsity)
            if xnor:
                raise ValueError("sparsity must be None in XNOR mode (±1 weights have no zeros)")
            if simd % m:
                raise ValueError(
                    f"simd must be a multiple of M={m} for sparsity {n}:{m}, not {simd}"
                )
            problem = nm.nm_violation(w, n, m)
            if problem is not None:
                raise ValueError(f"weights must be {n}:{m} sparse, not with {problem}")
            sparsity = (n, m)
        self._sparsity = sparsity
        self._w = w
        self._bias = None if bias is None else np.asarray(bias, dtype=np.int64)
        self._in_type, self._out_type = in_type, out_type
        self._pe, self._simd, self._xnor, self._bipolar_out = pe, simd, xnor, bipolar_out
        self._mem_style = resolve_mem_style(MemStyle(mem_style), (mh // pe) * (mw // simd))
        lo, hi = accumulator_range(w, self._bias, *in_range, simd, xnor)
        self._acc_type = QType.covering(lo, hi)
        mode = PipelineMode(pipeline)
        self._target = target
        block = self._mem_style is MemStyle.BLOCK
        terms = nm.products(simd, sparsity)
        self._stages = matrix_stages(terms, xnor, mode, block=block, select=sparsity is not None)
        self._groups = tree_groups(terms, mode)
        super().__init__(
            {
                "i": In(stream.Signature(beat_layout(in_type, simd))),
                "o": Out(pipe_signature(beat_layout(out_type, pe))),
                "space": In(1),
                "reserve": Out(1),
            }
        )

    @property
    def sf(self) -> int:
        return self._w.shape[1] // self._simd

    @property
    def nf(self) -> int:
        return self._w.shape[0] // self._pe

    @property
    def stages(self) -> tuple[str, ...]:
        """Register stages after the issue cycle
        (:func:`codesign.models.pipelining.matrix_stages`): the cycles from a step's issue to
        its result at ``o``."""
        return self._stages

    @property
    def cycles_per_vector(self) -> int:
        return self.sf * self.nf

    @property
    def sparsity(self) -> tuple[int, int] | None:
        """``(n, m)`` of the sparse unit, None for the dense one."""
        return self._sparsity

    @property
    def multipliers(self) -> int:
        """Product lanes: PE·SIMD, or PE·SIMD·N/M when sparse."""
        return self._pe * nm.products(self._simd, self._sparsity)

    def _vector_in_block_ram(self) -> bool:
        """Whether the input vectors are held in block RAM with its output register: where
        Yosys would map them to block RAM (:func:`codesign.models.device.memory_map`), when
        the datapath has the ``operand`` stage to wait for the register."""
        if "operand" not in self._stages:
            return False
        width = beat_layout(self._in_type, self._simd).size
        return memory_map(max(self.sf, 2), width)[0] == "bram"

    def _weight_words(self) -> tuple[list[int], int, bool]:
        """ROM words in (nf, sf) order: lane (p, s) at bits ((p*SIMD + s) * wbits); when
        sparse, :func:`~codesign.models.compress.sparsity.weight_rom`'s words."""
        w = self._w
        if self._xnor:
            wbits, wsigned = 1, False
        else:
            t = QType.covering(int(w.min()), int(w.max()))
            wbits, wsigned = t.bits, t.signed
        if self._sparsity is not None:
            bits = nm.weight_rom(w, self._pe, self._simd, self._sparsity, wbits)
            packed = np.packbits(bits, axis=1, bitorder="little")
            return [int.from_bytes(r.tobytes(), "little") for r in packed], wbits, wsigned
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
        stages = self._stages
        words, wbits, wsigned = self._weight_words()
        sparse = self._sparsity is not None
        terms = nm.products(simd, self._sparsity)  # product lanes a PE
        lane_bits = wbits + (nm.index_bits(self._sparsity[1]) if sparse else 0)
        # Yosys's ram_style: a ROM in LUTs is "logic" (its "distributed" means LUT *RAM*,
        # which cannot hold a synchronously read ROM on every family); BLOCK asks for BRAM
        style = {"ram_style": "block" if self._mem_style is MemStyle.BLOCK else "logic"}
        # a ROM in logic is split into banks of at most ROM_BANK_BITS output bits, each
        # read through its own address register: one register driving every output bit's
        # LUTs was the critical path (jet_tagger fc2, 512 bits: 7.8 ns of routing)
        width = pe * terms * lane_bits
        style_block = self._mem_style is MemStyle.BLOCK
        bank = width if style_block else ROM_BANK_BITS
        cuts = [(lo, min(lo + bank, width)) for lo in range(0, width, bank)]
        depth = max(len(words), 2)
        w_rds = []  # each with an ``addr`` and its word at ``data``
        if style_block and "memory" in stages:
            # the word two cycles after its address, through the block's output register
            rom = RegisteredRom(width=width, init=words, target=self._target, name="weights")
            m.submodules.weights_rom = rom  # its memory is "weights" (hdl/memfiles.py)
            w_rds.append(rom)
            cuts = []
        for k, (lo, hi) in enumerate(cuts):
            part = [(wd >> lo) & ((1 << (hi - lo)) - 1) for wd in words]
            mem = memory.Memory(shape=unsigned(hi - lo), depth=depth, init=part, attrs=style)
            m.submodules["weights" if len(cuts) == 1 else f"weights{k}"] = mem
            w_rds.append(mem.read_port(domain="sync" if style_block else "comb"))
        # the input vectors: in block RAM (where Yosys would put them) read through the
        # block's output register, a cycle later than a LUT RAM's registered read
        in_layout = beat_layout(self._in_type, simd)
        v_depth = max(sf_n, 2)
        v_block = self._vector_in_block_ram()
        if v_block:
            vec = RegisteredRam(width=in_layout.size, depth=v_depth, target=self._target)
            v_rd_addr, v_data = vec.r_addr, vec.r_data
            v_wr = (vec.w_addr, vec.w_data, vec.w_en)
        else:
            vec = memory.Memory(shape=in_layout, depth=v_depth, init=[])
            rd, wr = vec.read_port(), vec.write_port()
            v_rd_addr, v_data = rd.addr, rd.data
            v_wr = (wr.addr, wr.data, wr.en)
        m.submodules.vector = vec

        # -- issue: the (nf, sf) step whose operands are read this cycle
        sf = Signal(range(max(sf_n, 2)))  # >= 1 bit: zero-width vectors lint as [-1:0]
        nf = Signal(range(max(nf_n, 2)))
        addr = Signal(range(max(len(words), 2)))
        # the counters' flags in registers: whether the step is the pass's last (sf), the
        # pass the last of the vector (nf) and the first, which reads the input (``ready``
        # from a counter compare was cnv_tiny's longest path at speed 6: sf -> i.ready ->
        # the FIFO's level, 7.0 ns)
        is_last = Signal(init=sf_n <= 1)
        nf_last = Signal(init=nf_n <= 1)
        need_input = Signal(init=1)
        nf_next = Mux(nf_last, 0, nf + 1)[: len(nf)]
        can = ~is_last | self.space  # a step that completes an output needs a credit
        step = can & (~need_input | self.i.valid)
        m.d.comb += [
            self.i.ready.eq(can & need_input),
            self.reserve.eq(step & is_last),
            v_rd_addr.eq(sf),
            v_wr[0].eq(sf),
            v_wr[1].eq(self.i.payload),
            v_wr[2].eq(step & need_input),
        ]
        with m.If(step):
            m.d.sync += [
                sf.eq(Mux(is_last, 0, sf + 1)),
                is_last.eq(Mux(is_last, sf_n <= 1, sf == sf_n - 2)),
                addr.eq(Mux(addr == len(words) - 1, 0, addr + 1)),
            ]
            with m.If(is_last):
                m.d.sync += [
                    nf.eq(nf_next),
                    nf_last.eq(Mux(nf_last, nf_n <= 1, nf == nf_n - 2)),
                    need_input.eq(nf_last),
                ]

        # -- fetch: memories read, the input beat kept; the step's tags travel beside
        tags = _Tags(m)
        # (the tag ``nf_next`` is the pass after this step's: the bias it starts with, looked
        # up at the accumulator, is then a ROM of a register, no increment in front of it)
        tags.start(valid=step, last=is_last, nf_next=nf_next, from_input=need_input)
        x_in = Signal(beat_layout(self._in_type, simd))
        m.d.sync += x_in.eq(self.i.payload)
        x = Signal(beat_layout(self._in_type, simd))
        if not v_block:
            m.d.comb += x.eq(Mux(tags["from_input"], x_in, v_data))
        if "operand" in stages:  # the input vector registered; the weights read a cycle later
            # each bank's address is the issue's, a cycle later: a counter of its own that
            # steps with the fetch stage (a plain copy of the address would be one
            # register again once Yosys merges equal flip-flops)
            fetched = tags["valid"]
            for k, rd in enumerate(w_rds):
                a_k = Signal.like(addr, name=f"waddr{k}")
                with m.If(fetched):
                    m.d.sync += a_k.eq(Mux(a_k == len(words) - 1, 0, a_k + 1))
                m.d.comb += rd.addr.eq(a_k)
            x_op = Signal(beat_layout(self._in_type, simd))
            if v_block:  # the stored vector arrives now, from the block's output register
                x_in2 = Signal(beat_layout(self._in_type, simd))
                m.d.sync += x_in2.eq(x_in)
                tags.shift("operand")
                m.d.comb += x_op.eq(Mux(tags["from_input"], x_in2, v_data))
            else:
                m.d.sync += x_op.eq(x)
                tags.shift("operand")
            x = x_op
        else:
            for rd in w_rds:
                m.d.comb += rd.addr.eq(addr)
        w = Cat(*(rd.data for rd in w_rds))
        if not style_block:
            # a ROM in logic is read combinationally from its address register and its word
            # registered here: a synchronous read port let Yosys move the register in front
            # of the ROM, so the address counter's increment ran into the ROM's LUTs
            w_q = Signal(len(w), name="w_q")
            m.d.sync += w_q.eq(w)
            w = w_q
        if "memory" in stages:  # the block RAM's output register (inside the RegisteredRom)
            x_m = Signal(beat_layout(self._in_type, simd))
            m.d.sync += x_m.eq(x)
            x = x_m
            tags.shift("memory")
        if "weight" in stages:  # the word in fabric registers on its way to the multipliers
            w_f = Signal(len(w), name="w_f")
            x_f = Signal(beat_layout(self._in_type, simd))
            m.d.sync += [w_f.eq(w), x_f.eq(x)]
            w, x = w_f, x_f
            tags.shift("weight")
        xs = [x[s] for s in range(simd)]
        if sparse:  # each kept weight's input element, chosen by its index
            operands = self._select(m, xs, w, wbits, "select" in stages)
            if "select" in stages:
                tags.shift("select")
        else:  # (input element, weight bits) of lane (p, s)
            operands = [
                [
                    (xs[s], w[(p * simd + s) * wbits : (p * simd + s + 1) * wbits])
                    for s in range(simd)
                ]
                for p in range(pe)
            ]

        # -- products: registered multipliers (a DSP block's own registers where the target
        # has them) and a landing register in fabric; XNOR products are single gates
        registered = "multiply" in stages
        products = []
        for p in range(pe):
            row = []
            for s, (x_el, wraw) in enumerate(operands[p]):
                if self._xnor:
                    row.append(~(wraw ^ Value.cast(x_el)[0]))
                    continue
                w_val = wraw.as_signed() if wsigned else wraw
                x_val = value_of(x_el, self._in_type)
                if not registered:
                    row.append(x_val * w_val)
                    continue
                mult = RegisteredProduct(a=x_val.shape(), b=w_val.shape(), target=self._target)
                m.submodules[f"mul{p}_{s}"] = mult
                m.d.comb += [mult.a.eq(x_val), mult.b.eq(w_val)]
                land = Signal(mult.p.shape(), name=f"prod{p}_{s}")
                m.d.sync += land.eq(mult.p)
                row.append(land)
            products.append(row)
        if registered:
            for name in ("multiply", "product", "land"):
                tags.shift(name)

        # -- adder trees, registered every few levels
        groups = self._groups
        dots = [
            pipelined_tree_sum(m, products[p], groups, name=f"tree{p}", keep=not self._xnor)
            for p in range(pe)
        ]
        for _ in groups:
            tags.shift("tree")

        # -- accumulate; the result register completes the step
        acc_shape = (
            signed(self._acc_type.bits) if self._acc_type.signed else unsigned(self._acc_type.bits)
        )
        # the accumulator holds the running sum, or, after a pass's last step, the next
        # pass's bias: every step only adds (no select in front of the carry chain; the
        # select after it, by the "last" tag, is off the adder's path)
        bias_rows = None if self._bias is None else self._bias.reshape(nf_n, pe)
        valid, last = tags["valid"], tags["last"]
        nf_next = tags["nf_next"]
        valids, lasts = tags.replicas("valid", pe), tags.replicas("last", pe)  # one per PE
        res_valid = Signal()
        m.d.sync += res_valid.eq(valid & last)
        mw = self._w.shape[1]
        for p in range(pe):
            if bias_rows is None:
                start, first_bias = Const(0), 0
            elif np.all(bias_rows[:, p] == bias_rows[0, p]):
                start, first_bias = Const(int(bias_rows[0, p])), int(bias_rows[0, p])
            else:
                start = Array(Const(int(b)) for b in bias_rows[:, p])[nf_next]
                first_bias = int(bias_rows[0, p])
            acc = Signal(acc_shape, name=f"acc{p}", init=first_bias)
            new_acc = acc + dots[p]
            with m.If(valids[p]):
                m.d.sync += acc.eq(Mux(lasts[p], start, new_acc))
            value = new_acc
            if self._xnor and self._bipolar_out:
                value = (value << 1) - mw
            res = Signal(self.o.payload[p].shape(), name=f"res{p}")
            with m.If(valids[p] & lasts[p]):
                m.d.sync += res.eq(value)
            m.d.comb += self.o.payload[p].eq(res)
        m.d.comb += self.o.valid.eq(res_valid)
        if tags.depth + 1 != len(stages):  # "fetch" and the result: the latency of models/
            raise AssertionError(f"MVAU built {tags.depth + 1} stages, models has {stages}")
        return m

    def _select(self, m: Module, xs: list, w: Value, wbits: int, registered: bool) -> list:
        """The sparse unit's operands: per PE, ``(input element, weight bits)`` of each kept
        weight ``q`` (lane ``p·K + q`` of the word,
        :func:`~codesign.models.compress.sparsity.weight_rom`), the element chosen from the
        weight's M-group by its index; registered (the ``select`` stage) or not."""
        n, group = self._sparsity
        k = nm.products(self._simd, self._sparsity)
        lane_bits = wbits + nm.index_bits(group)
        domain = m.d.sync if registered else m.d.comb
        operands = []
        for p in range(self._pe):
            row = []
            for q in range(k):
                lo = (p * k + q) * lane_bits
                index = w[lo + wbits : lo + lane_bits]
                first = (q // n) * group
                choices = [Value.cast(xs[first + j]) for j in range(group)]
                x_sel = Signal(element_shape(self._in_type), name=f"sel{p}_{q}")
                w_sel = Signal(wbits, name=f"wsel{p}_{q}")
                domain += [x_sel.eq(_mux_tree(choices, index)), w_sel.eq(w[lo : lo + wbits])]
                row.append((x_sel, w_sel))
            operands.append(row)
        return operands


def _mux_tree(choices: list, index: Value) -> Value:
    """``choices[index]`` as a balanced tree of two-input multiplexers, one level per bit of
    ``index`` from the lowest (a position past the last choice selects the last): on ECP5 a
    LUT4 per two-input multiplexer of the first level, joined by the slices' PFUMX and
    L6MUX21 above it."""
    level = list(choices) + [choices[-1]] * ((1 << len(index)) - len(choices))
    for b in range(len(index)):
        level = [Mux(index[b], level[k + 1], level[k]) for k in range(0, len(level), 2)]
    return level[0]


class _Tags:
    """A step's control bits travelling beside its data through the register stages."""

    def __init__(self, m: Module) -> None:
        self._m, self._sigs, self.depth = m, {}, 0
        self._history: list[dict] = []  # every stage's tags, the fetch stage's first

    def start(self, **values) -> None:
        """Register the issue cycle's values (the fetch stage)."""
        self._sigs = {}
        for k, v in values.items():
            r = Signal(Value.cast(v).shape(), name=f"t_{k}")
            self._m.d.sync += r.eq(v)
            self._sigs[k] = r
        self._history = [self._sigs]
        self.depth = 1

    def shift(self, name: str) -> None:
        nxt = {}
        for k, v in self._sigs.items():
            r = Signal(v.shape(), name=f"{name}{self.depth}_{k}")
            self._m.d.sync += r.eq(v)
            nxt[k] = r
        self._sigs = nxt
        self._history.append(nxt)
        self.depth += 1

    def replicas(self, key: str, n: int) -> list:
        """``n`` registers that each hold tag ``key`` of the last stage (loaded as it is),
        marked so that synthesis keeps them apart (:data:`~codesign.hdl.tools.REPLICA`):
        each drives the clock enables of one group of registers instead of one flip-flop
        driving them all (tfc_w1a1: 6.2 ns of routing to 64 PEs' result registers). They
        are the leaves of a tree: ``ceil(sqrt(n))`` copies one stage earlier each load a
        group of them, so that no register drives more than about ``sqrt(n)`` (one
        register loading all 64 was 5.1 ns of routing)."""
        if n == 1 or len(self._history) < 3:
            return [self._sigs[key]] * n
        shape = self._sigs[key].shape()
        g = math.isqrt(n - 1) + 1  # ceil(sqrt(n))
        per = -(-n // g)
        mids = []
        for j in range(g):
            r = Signal(shape, name=f"{key}_fan{j}", attrs={REPLICA: 1})
            self._m.d.sync += r.eq(self._history[-3][key])
            mids.append(r)
        copies = []
        for j in range(n):
            r = Signal(shape, name=f"{key}_copy{j}", attrs={REPLICA: 1})
            self._m.d.sync += r.eq(mids[j // per])
            copies.append(r)
        return copies

    def __getitem__(self, key: str):
        return self._sigs[key]
