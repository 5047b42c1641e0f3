"""The comparisons cut for timing equal Python's ``>=`` on every input: exhaustively for
the constant form, on every pair of 9- and 10-bit operands' edges and random pairs for the
split form (signed, unsigned and mixed operands)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth import Const, Module, Shape, Signal, signed, unsigned
from amaranth.sim import Simulator
from codesign.hdl.dataflow.compare import and_or, at_least, merge_at_least, split_at_least, up_down
from codesign.models.pipelining import compare_bits


def _values(shape: Shape) -> range:
    if shape.signed:
        return range(-(1 << (shape.width - 1)), 1 << (shape.width - 1))
    return range(1 << shape.width)


@pytest.mark.parametrize("shape", [signed(10), unsigned(10), signed(4), unsigned(3)])
def test_at_least_a_constant_is_exact_for_every_input(shape):
    x = Signal(shape)
    values = _values(shape)
    constants = sorted({*range(-20, 21), *(v for v in (-700, -513, -512, -511, -129, -128,
                                                       -127, 127, 128, 129, 255, 256, 511,
                                                       512, 700))})  # fmt: skip
    m = Module()
    outs = []
    for c in constants:
        o = Signal(name=f"ge_{c + 1000}")
        m.d.comb += o.eq(at_least(x, c))
        outs.append(o)
    bad = []
    sim = Simulator(m)

    async def tb(ctx):
        for v in values:
            ctx.set(x, v)
            got = [ctx.get(o) for o in outs]
            want = [int(v >= c) for c in constants]
            if got != want:
                bad.append((v, [c for c, g, w in zip(constants, got, want, strict=True) if g != w]))

    sim.add_testbench(tb)
    sim.run()
    assert bad == []


@pytest.mark.parametrize(
    ("xs", "ts"),
    [(signed(10), signed(10)), (unsigned(9), signed(12)), (signed(11), unsigned(7)),
     (unsigned(10), unsigned(10)), (signed(5), signed(4)), (signed(17), signed(16)),
     (unsigned(14), signed(9))],
)  # fmt: skip
def test_split_compare_merges_to_at_least(xs, ts):
    x, t = Signal(xs), Signal(ts)
    m = Module()
    parts = split_at_least(x, t)
    # one bit up to 8, three up to 12, five up to 18: the count the cost model reads
    width = max(xs.width, ts.width) + (xs.signed != ts.signed)
    assert len(parts) == compare_bits(width)
    bits = [Signal(name=f"bit{k}") for k in range(len(parts))]
    hit = Signal()
    m.d.comb += [
        *(s.eq(v) for s, v in zip(bits, parts, strict=True)),
        hit.eq(merge_at_least(*bits)),
    ]
    rng = np.random.default_rng(xs.width * 100 + ts.width)
    vx, vt = list(_values(xs)), list(_values(ts))
    edges_x = [vx[0], vx[1], -1, 0, 1, vx[-2], vx[-1]]
    edges_t = [vt[0], vt[1], -1, 0, 1, vt[-2], vt[-1]]
    pairs = [(a, b) for a, b in itertools.product(edges_x, edges_t) if a in vx and b in vt]
    pairs += list(zip(rng.choice(vx, 3000).tolist(), rng.choice(vt, 3000).tolist(), strict=True))
    # pairs with equal high halves, where the low halves decide
    pairs += [(a, a + d) for a in rng.choice(vx, 500).tolist() for d in (-1, 0, 1) if a + d in vt]
    bad = []
    sim = Simulator(m)

    async def tb(ctx):
        for a, b in pairs:
            ctx.set(x, a)
            ctx.set(t, b)
            if ctx.get(hit) != int(a >= b):
                bad.append((a, b))

    sim.add_testbench(tb)
    sim.run()
    assert bad == []


@pytest.mark.parametrize("shape", [unsigned(3), signed(4), unsigned(1)])
def test_up_down_counts_as_the_sum(shape):
    """``up_down`` is ``count + up - down`` (wrapping at the width) for every value and
    event pair, and ``and_or`` gives 0 when no flag is set."""
    count, up, down = Signal(shape), Signal(), Signal()
    out, none = Signal(shape), Signal(4)
    m = Module()
    m.d.comb += [
        out.eq(up_down(count, up, down)),
        none.eq(and_or((up & down & ~up,), (Const(9, 4),), 4)),
    ]
    bad = []
    sim = Simulator(m)

    async def tb(ctx):
        for v in _values(shape):
            for u, d in itertools.product((0, 1), repeat=2):
                ctx.set(count, v)
                ctx.set(up, u)
                ctx.set(down, d)
                want = Const(v + u - d, shape).value  # wrapped to the shape
                if ctx.get(out) != want or ctx.get(none) != 0:
                    bad.append((v, u, d, ctx.get(out), want))

    sim.add_testbench(tb)
    sim.run()
    assert bad == []


@pytest.mark.parametrize("xs", [signed(13), unsigned(11), signed(7)])
def test_split_compare_with_constant_thresholds(xs):
    """A constant threshold's pieces are compared with its constant bits (constant pieces
    become constants, not comparisons Verilator's lint flags), and merge to ``x >= c``."""
    lo, hi = (
        (-(1 << (xs.width - 1)), (1 << (xs.width - 1)) - 1)
        if xs.signed
        else (0, (1 << xs.width) - 1)
    )
    rng = np.random.default_rng(xs.width)
    constants = sorted({lo, lo + 1, -1 if xs.signed else 1, 0, 1, 31, 32, 63, 64, hi - 1, hi,
                        *rng.integers(lo, hi + 1, 6).tolist()})  # fmt: skip
    x = Signal(xs)
    m = Module()
    outs = []
    for c in constants:
        o = Signal(name=f"ge_{c}".replace("-", "m"))
        m.d.comb += o.eq(merge_at_least(*split_at_least(x, Const(c))))
        outs.append(o)
    bad = []
    sim = Simulator(m)

    async def tb(ctx):
        for v in _values(xs):
            ctx.set(x, v)
            got = [ctx.get(o) for o in outs]
            if got != [int(v >= c) for c in constants]:
                bad.append(v)

    sim.add_testbench(tb)
    sim.run()
    assert bad == []
