"""A digital bit-serial PIM subarray that runs micro-op programs (:mod:`codesign.models.pim`).

:class:`PimArray` holds ``rows`` × ``cols`` one-bit cells, an instruction memory of
``imem_depth`` words in the format of :func:`codesign.models.pim.isa.encode`, the datapath of
every micro-op of the technology, and a controller that executes a program from the
instruction memory, one micro-op after the other with no cycle between them.

The cells are one :class:`~amaranth.lib.memory.Memory` of ``rows`` words of ``cols`` bits, read
by three asynchronous ports (rows ``a`` and ``b``, and ``c``, or ``d`` for MAGIC's MNOR/MNOT,
which keep the destination's old value) and written by one synchronous port (two when the
technology's FA takes one cycle). A memory rather than a register file: Verilator keeps it
as one C++ array indexed by the address, while ``rows`` registers behind a ``rows``-way read
multiplexer each would make a model several times larger and slower to build.
"""

# amaranth: UnusedElaboratable=no

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from codesign.models.pim.isa import Op, Technology, instr_bits, row_bits, technology

__all__ = ["CYCLE_BITS", "PimArray", "instr_layout"]

#: Width of the cycle counter (:attr:`PimArray.cycles`); it counts modulo 2**CYCLE_BITS.
CYCLE_BITS = 32

#: Ops whose third read port reads the destination row ``d`` (the MAGIC gates keep it).
_MAGIC = (Op.MNOR, Op.MNOT)


def instr_layout(rows: int) -> data.StructLayout:
    """The instruction word of a subarray of ``rows`` rows: ``op | d | e | a | b | c`` from
    the low bits up, exactly :func:`codesign.models.pim.isa.encode`."""
    w = row_bits(rows)
    return data.StructLayout({"op": 4, "d": w, "e": w, "a": w, "b": w, "c": w})


class PimArray(wiring.Component):
    """A PIM subarray with its instruction memory and controller.

    Parameters
    ----------
    rows, cols
        The cell array: ``rows`` rows (at least 2) of ``cols`` columns (at least 1).
    tech
        The technology (:class:`~codesign.models.pim.isa.Technology` or its name). Its
        ``cycles`` table decides which micro-ops the array decodes and how many cycles each
        holds it; an opcode the technology lacks stops the run with :attr:`error` set.
    imem_depth
        Instruction words the instruction memory holds.

    Attributes
    ----------
    prog : In(stream.Signature(StructLayout({"addr", "word"})))
        Writes instruction word ``word`` (:func:`~codesign.models.pim.isa.encode`) at address
        ``addr``. Ready whenever no program runs.
    run : In(stream.Signature(StructLayout({"addr", "length"})))
        Starts the program of ``length`` instructions at ``addr`` (addresses wrap at
        ``imem_depth``). Ready whenever no program runs; a word written through ``prog`` on
        the same edge is already seen by the run.
    i : In(stream.Signature(cols))
        The input rows: a LOAD takes one beat (bit ``j`` is column ``j``). Ready only in the
        first cycle of a LOAD, whatever ``valid`` is.
    o : Out(stream.Signature(cols))
        The output rows: a STORE sends row ``a`` as one beat. Valid only in the first cycle
        of a STORE, whatever ``ready`` is.
    busy : Out(1)
        A program runs.
    done : Out(1)
        A program has finished (or stopped on an illegal opcode); high until the next run
        starts.
    error : Out(1)
        The last run stopped on an opcode the technology does not have; high until the next
        run starts.
    cycles : Out(CYCLE_BITS)
        The cycle counter of the current or last run.

    Notes
    -----
    Timing contract. Let E0 be the rising clock edge on which a ``run`` beat is taken. The
    first micro-op executes in the cycle after E0, and each micro-op holds the array for
    exactly ``tech.cycles[op]`` cycles, plus one cycle for each edge at which its LOAD finds
    ``i`` not valid or its STORE finds ``o`` not ready (a stall: the beat moves on the first
    edge where both are high). The rising edge that ends the last micro-op's last cycle drops
    ``busy`` and raises ``done``. :attr:`cycles` is cleared at E0 and counts every rising
    edge after it while ``busy``, so after a run it holds the edges from E0 (exclusive) to
    the edge raising ``done`` (inclusive): with an always-valid input and an always-ready
    output exactly :attr:`Program.cycles <codesign.models.pim.program.Program.cycles>`,
    otherwise that plus the stall cycles. There is no fixed overhead: the synchronous
    instruction memory is read one cycle ahead, at the address of the next micro-op. A
    ``length`` of 0 raises ``done`` on E0 itself, :attr:`cycles` 0. An illegal opcode counts
    its one cycle, then raises ``done`` and ``error``.

    Micro-op effects (every column at once, as :func:`codesign.models.pim.program.execute`):
    every op but FA writes its row in its first cycle (a LOAD on the edge that takes the
    beat); FA writes the sum to ``d`` in its first cycle and the carry, computed from the
    same reads and held in a register, to ``e`` in its second (with one write port), or both
    in one cycle through a second write port when the technology's FA takes one cycle
    (``e`` wins when ``d == e``). Row addresses at or above ``rows`` (possible when ``rows``
    is not a power of two) are undefined.
    """

    def __init__(
        self,
        *,
        rows: int = 256,
        cols: int,
        tech: str | Technology = "sot-mram",
        imem_depth: int = 4096,
    ) -> None:
        for name, value, low in (
            ("rows", rows, 2),
            ("cols", cols, 1),
            ("imem_depth", imem_depth, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if value < low:
                raise ValueError(f"{name} must be an int >= {low}, not {value!r}")
        if not isinstance(tech, (str, Technology)):
            raise TypeError(f"tech must be a Technology or its name, not {tech!r}")
        self._tech = technology(tech)
        self._rows, self._cols, self._imem_depth = rows, cols, imem_depth
        self._layout = instr_layout(rows)
        super().__init__(
            {
                "prog": In(
                    stream.Signature(
                        data.StructLayout({"addr": range(imem_depth), "word": instr_bits(rows)})
                    )
                ),
                "run": In(
                    stream.Signature(
                        data.StructLayout(
                            {"addr": range(imem_depth), "length": range(imem_depth + 1)}
                        )
                    )
                ),
                "i": In(stream.Signature(cols)),
                "o": Out(stream.Signature(cols)),
                "busy": Out(1),
                "done": Out(1),
                "error": Out(1),
                "cycles": Out(CYCLE_BITS),
            }
        )

    @property
    def rows(self) -> int:
        """Rows of the cell array."""
        return self._rows

    @property
    def cols(self) -> int:
        """Columns of the cell array (bits of an ``i``/``o`` beat)."""
        return self._cols

    @property
    def tech(self) -> Technology:
        """The technology: the micro-ops decoded and their cycles."""
        return self._tech

    @property
    def imem_depth(self) -> int:
        """Instruction words the instruction memory holds."""
        return self._imem_depth

    @property
    def instr_layout(self) -> data.StructLayout:
        """The layout of an instruction word (:func:`instr_layout`)."""
        return self._layout

    @property
    def fa_ports(self) -> int:
        """Write ports of the cell array: 2 when the technology's FA takes one cycle."""
        return 2 if self._tech.cycles.get(Op.FA) == 1 else 1

    def elaborate(self, platform) -> Module:
        m = Module()
        tech, cols, depth = self._tech, self._cols, self._imem_depth
        ones = (1 << cols) - 1

        # -- instruction memory: read one cycle ahead, at the next micro-op's address --------
        m.submodules.imem = imem = Memory(shape=instr_bits(self._rows), depth=depth, init=[])
        iw = imem.write_port()
        ir = imem.read_port(transparent_for=(iw,))
        m.d.comb += [
            iw.addr.eq(self.prog.payload.addr),
            iw.data.eq(self.prog.payload.word),
            iw.en.eq(self.prog.valid & self.prog.ready),
        ]
        instr = data.View(self._layout, ir.data)
        op = instr.op

        # -- the cell array -------------------------------------------------------------------
        m.submodules.cells = cells = Memory(shape=cols, depth=self._rows, init=[])
        ra, rb, rc = (cells.read_port(domain="comb") for _ in range(3))
        wd = cells.write_port()
        we = cells.write_port() if self.fa_ports == 2 else None
        magic = Signal()
        if any(tech.has(o) for o in _MAGIC):
            m.d.comb += magic.eq(op.matches(*(o for o in _MAGIC if tech.has(o))))
        m.d.comb += [
            ra.addr.eq(instr.a),
            rb.addr.eq(instr.b),
            rc.addr.eq(Mux(magic, instr.d, instr.c)),
        ]
        a, b, c = ra.data, rb.data, rc.data
        maj = (a & b) | (a & c) | (b & c)

        # -- the controller -------------------------------------------------------------------
        longest = max(tech.cycles.values())
        pc = Signal(range(depth))
        left = Signal(range(depth + 1))
        step = Signal(range(max(longest, 2)))
        carry = Signal(cols)  # FA's carry, between its two write cycles
        count = Signal(CYCLE_BITS)
        error = Signal()
        m.d.comb += [self.cycles.eq(count), self.error.eq(error)]

        result = Signal(cols)  # what the op writes to row d in its first cycle
        writes = Signal()  # the op writes row d
        legal = Signal()  # the technology has the op
        last = Signal.like(step)  # the op's last step: tech.cycles[op] - 1
        with m.Switch(op):
            for o, n in tech.cycles.items():
                with m.Case(o):
                    m.d.comb += [legal.eq(1), last.eq(n - 1), writes.eq(o is not Op.STORE)]
                    value = {
                        Op.INIT0: 0,
                        Op.INIT1: ones,
                        Op.COPY: a,
                        Op.NOT: ~a,
                        Op.AND: a & b,
                        Op.OR: a | b,
                        Op.NOR: ~(a | b),
                        Op.XOR: a ^ b,
                        Op.XNOR: ~(a ^ b),
                        Op.MAJ: maj,
                        Op.FA: a ^ b ^ c,
                        Op.MNOR: c & ~(a | b),
                        Op.MNOT: c & ~a,
                        Op.LOAD: self.i.payload,
                    }.get(o)
                    if value is not None:
                        m.d.comb += result.eq(value)

        # a LOAD or STORE moves its beat in its first cycle; the op stalls there until it does
        first = step == 0
        beat = Signal()
        m.d.comb += beat.eq(Mux(op == Op.LOAD, self.i.valid, Mux(op == Op.STORE, self.o.ready, 1)))
        moves = ~first | beat  # this cycle counts towards the op's cycles
        ends = moves & (step == last)  # the op's last cycle
        pc_next = Signal.like(pc)
        m.d.comb += [
            ir.addr.eq(pc_next),
            self.o.payload.eq(a),
            wd.addr.eq(instr.d),
            wd.data.eq(result),
        ]

        def accept():
            """Take a ``run`` beat: clear the status, then run (or finish an empty run)."""
            m.d.comb += [self.run.ready.eq(1), self.prog.ready.eq(1)]
            m.d.comb += pc_next.eq(self.run.payload.addr)
            with m.If(self.run.valid):
                m.d.sync += [
                    pc.eq(self.run.payload.addr),
                    left.eq(self.run.payload.length),
                    step.eq(0),
                    count.eq(0),
                    error.eq(0),
                ]
                with m.If(self.run.payload.length == 0):
                    m.next = "DONE"
                with m.Else():
                    m.next = "RUN"

        with m.FSM():
            with m.State("IDLE"):
                accept()
            with m.State("RUN"):
                m.d.comb += [
                    self.busy.eq(1),
                    self.i.ready.eq(first & legal & (op == Op.LOAD)),
                    self.o.valid.eq(first & legal & (op == Op.STORE)),
                    pc_next.eq(Mux(ends, Mux(pc == depth - 1, 0, pc + 1), pc)),
                ]
                m.d.sync += count.eq(count + 1)
                with m.If(~legal):
                    m.d.sync += error.eq(1)
                    m.next = "DONE"
                with m.Else():
                    m.d.comb += wd.en.eq(first & beat & writes)
                    if tech.has(Op.FA):
                        with m.If(op == Op.FA):
                            if we is None:  # carry in the second cycle, from the register
                                with m.If(first):
                                    m.d.sync += carry.eq(maj)
                                with m.If(step == 1):
                                    m.d.comb += [
                                        wd.addr.eq(instr.e),
                                        wd.data.eq(carry),
                                        wd.en.eq(1),
                                    ]
                            else:  # both rows at once; the carry wins when d == e
                                m.d.comb += [
                                    we.addr.eq(instr.e),
                                    we.data.eq(maj),
                                    we.en.eq(1),
                                    wd.en.eq(instr.d != instr.e),
                                ]
                    with m.If(ends):
                        m.d.sync += [step.eq(0), pc.eq(pc_next), left.eq(left - 1)]
                        with m.If(left == 1):
                            m.next = "DONE"
                    with m.Elif(moves):
                        m.d.sync += step.eq(step + 1)
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                accept()
        return m
