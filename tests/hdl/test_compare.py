"""The comparisons cut for timing equal Python's ``>=`` on every input: exhaustively for
the constant form, on every pair of 9- and 10-bit operands' edges and random pairs for the
split form (signed, unsigned and mixed operands)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth import Module, Shape, Signal, signed, unsigned
from amaranth.sim import Simulator
from codesign.hdl.dataflow.compare import at_least, merge_at_least, split_at_least
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
