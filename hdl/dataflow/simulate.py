"""Drive a stream component in ``amaranth.sim``: random input gaps and output back-pressure.

For unit tests of the dataflow blocks; whole designs are verified in cocotb
(``codesign.hdl.verify``).
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator

__all__ = ["run_stream"]


def run_stream(dut, in_words, n_out_words, seed, gaps=0.3, stall=0.3, max_cycles=200_000):
    """Drive ``in_words`` into ``dut.i`` with random gaps, take ``n_out_words`` from
    ``dut.o`` with random back-pressure; returns (words, cycles until the last output).

    Both sides run to completion (the input side until the unit took every word, since
    trailing inputs may feed no output), each bounded by ``max_cycles``.
    """
    rnd = random.Random(seed)
    got: list[int] = []
    cycles = [0]
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def source(ctx):
        for w in in_words:
            while rnd.random() < gaps:
                await ctx.tick()
            ctx.set(dut.i.payload.as_value(), w)
            ctx.set(dut.i.valid, 1)
            waited = 0
            async for _clk, _rst, ready in ctx.tick().sample(dut.i.ready):
                if ready:  # the beat moved at this edge
                    break
                waited += 1
                assert waited <= max_cycles, f"the input stalled for {max_cycles} cycles"
            ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        async for _clk, _rst, valid, ready, payload in ctx.tick().sample(
            dut.o.valid, dut.o.ready, dut.o.payload.as_value()
        ):
            cycles[0] += 1
            if valid and ready:
                got.append(int(payload))
            if len(got) == n_out_words or cycles[0] > max_cycles:
                return
            ctx.set(dut.o.ready, rnd.random() >= stall)

    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    assert len(got) == n_out_words, f"only {len(got)} of {n_out_words} beats in {cycles[0]}"
    return got, cycles[0]
