"""Residual fork and add under random back-pressure."""

from __future__ import annotations

import random

import numpy as np
from amaranth.sim import Simulator

from hdl.dataflow.residual import AddStreams, Fork
from hdl.dataflow.stream import beat_layout, pack_beats, unpack_beats
from models.qtype import QType


def test_fork_delivers_every_beat_to_both_outputs():
    t = QType.int(6)
    dut = Fork(layout=beat_layout(t, 2))
    rnd = random.Random(3)
    words = [rnd.randrange(1 << 12) for _ in range(40)]
    got0, got1 = [], []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def source(ctx):
        for w in words:
            ctx.set(dut.i.payload.as_value(), w)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def sinks(ctx):
        async for _c, _r, v0, r0, p0, v1, r1, p1 in ctx.tick().sample(
            dut.o0.valid,
            dut.o0.ready,
            dut.o0.payload.as_value(),
            dut.o1.valid,
            dut.o1.ready,
            dut.o1.payload.as_value(),
        ):
            if v0 and r0:
                got0.append(int(p0))
            if v1 and r1:
                got1.append(int(p1))
            if len(got0) == len(got1) == len(words):
                return
            ctx.set(dut.o0.ready, rnd.random() < 0.6)
            ctx.set(dut.o1.ready, rnd.random() < 0.3)

    sim.add_testbench(source, background=True)
    sim.add_testbench(sinks)
    sim.run()
    assert got0 == words and got1 == words


def test_add_streams_sums_elementwise():
    a_t, b_t, o_t = QType.int(5), QType.int(4, signed=False), QType.int(7)
    dut = AddStreams(a_type=a_t, b_type=b_t, out_type=o_t, n=3)
    rng = np.random.default_rng(0)
    a = rng.integers(a_t.min, a_t.max + 1, (30, 3))
    b = rng.integers(b_t.min, b_t.max + 1, (30, 3))
    rnd = random.Random(1)
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    def source(port, rows, t):
        async def run(ctx):
            for row in rows:
                while rnd.random() < 0.4:
                    await ctx.tick()
                ctx.set(port.payload.as_value(), pack_beats(row, t, 3)[0])
                ctx.set(port.valid, 1)
                await ctx.tick().until(port.ready)
                ctx.set(port.valid, 0)

        return run

    async def sink(ctx):
        async for _c, _r, v, r, p in ctx.tick().sample(
            dut.o.valid, dut.o.ready, dut.o.payload.as_value()
        ):
            if v and r:
                got.append(int(p))
            if len(got) == len(a):
                return
            ctx.set(dut.o.ready, rnd.random() < 0.7)

    sim.add_testbench(source(dut.a, a, a_t), background=True)
    sim.add_testbench(source(dut.b, b, b_t), background=True)
    sim.add_testbench(sink)
    sim.run()
    assert unpack_beats(got, o_t, 3).reshape(-1, 3).tolist() == (a + b).tolist()
