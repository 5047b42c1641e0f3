"""The FIFO with registered flags behaves as ``amaranth.lib.fifo.SyncFIFOBuffered``, its
reference, in every cycle: both run side by side on the same random writes and reads
(stalls on both sides), and every output (``w_rdy``, ``r_rdy``, ``r_data`` while valid,
``level``) is compared each cycle."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.sim import Simulator
from codesign.hdl.dataflow.fifo import RegisteredFlagFIFO


@pytest.mark.parametrize("depth", [2, 3, 5, 8, 17])
@pytest.mark.parametrize("bias", [0.3, 0.5, 0.8])
def test_cycle_for_cycle_equal_to_sync_fifo_buffered(depth, bias):
    rng = np.random.default_rng(depth * 10 + int(bias * 10))
    m = Module()
    m.submodules.ours = ours = RegisteredFlagFIFO(width=8, depth=depth)
    m.submodules.ref = ref = SyncFIFOBuffered(width=8, depth=depth)
    n = 1500
    w_en = rng.random(n) < bias  # bias: how often the writer offers a beat
    r_en = rng.random(n) < 1 - bias + 0.1
    data = rng.integers(0, 256, n)
    diffs, moved = [], [0]
    sim = Simulator(m)
    sim.add_clock(1e-8)

    async def tb(ctx):
        for k in range(n):
            for q in (ours, ref):
                ctx.set(q.w_en, int(w_en[k]))
                ctx.set(q.w_data, int(data[k]))
                ctx.set(q.r_en, int(r_en[k]))
            a = [ctx.get(s) for s in (ours.w_rdy, ours.r_rdy, ours.level)]
            b = [ctx.get(s) for s in (ref.w_rdy, ref.r_rdy, ref.level)]
            if a[1] and b[1]:
                a.append(ctx.get(ours.r_data))
                b.append(ctx.get(ref.r_data))
            if a != b:
                diffs.append((k, a, b))
            moved[0] += a[1] and r_en[k]
            await ctx.tick()

    sim.add_testbench(tb)
    sim.run()
    assert diffs == []
    assert moved[0] > n // 5  # the streams moved: the comparison covered full and empty
