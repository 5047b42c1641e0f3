# amaranth: UnusedElaboratable=no
"""Stream conventions, FIFO and width converter under random back-pressure."""

from __future__ import annotations

import numpy as np
import pytest
from codesign.hdl.dataflow.simulate import run_stream
from codesign.hdl.dataflow.stream import (
    StreamFIFO,
    WidthConverter,
    beat_layout,
    decode,
    element_shape,
    encode,
    pack_beats,
    unpack_beats,
)
from codesign.models.qtype import QType

TYPES = [QType.int(5), QType.int(3, signed=False), QType.bipolar(), QType.int(1, signed=False)]


@pytest.mark.parametrize("qtype", TYPES, ids=str)
def test_pack_unpack_round_trip(qtype):
    rng = np.random.default_rng(0)
    lo, hi = (-1, 1) if qtype.kind.value == "bipolar" else (qtype.min, qtype.max)
    v = rng.integers(lo, hi + 1, 24)
    if qtype.kind.value == "bipolar":
        v = np.where(v >= 0, 1, -1)
    assert (decode(encode(v, qtype), qtype) == v).all()
    assert (unpack_beats(pack_beats(v, qtype, 4), qtype, 4) == v).all()


@pytest.mark.parametrize(("n_in", "n_out"), [(1, 4), (4, 1), (6, 4), (4, 6), (2, 6)])
def test_width_converter_keeps_order(n_in, n_out):
    t = QType.int(5)
    dut = WidthConverter(element=element_shape(t), n_in=n_in, n_out=n_out)
    v = np.random.default_rng(n_in * 7 + n_out).integers(t.min, t.max + 1, 48)
    got, _ = run_stream(dut, pack_beats(v, t, n_in), 48 // n_out, seed=n_in)
    assert (unpack_beats(got, t, n_out) == v).all()


@pytest.mark.parametrize("depth", [1, 2, 5, 16])
def test_fifo_keeps_every_beat_in_order(depth):
    t = QType.int(7)
    dut = StreamFIFO(layout=beat_layout(t, 3), depth=depth)
    v = np.random.default_rng(depth).integers(t.min, t.max + 1, 90)
    got, _ = run_stream(dut, pack_beats(v, t, 3), 30, seed=depth, gaps=0.4, stall=0.5)
    assert (unpack_beats(got, t, 3) == v).all()


def test_fifo_depth_must_be_positive():
    with pytest.raises(ValueError, match=r"^depth must be a positive int, not 0$"):
        StreamFIFO(layout=beat_layout(QType.int(4), 1), depth=0)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_fifo_level_counts_the_beats_it_holds(depth):
    """``level`` rises by one per beat taken and falls by one per beat given, up to
    ``depth`` beats, where the FIFO refuses more (``i.ready`` low)."""
    from amaranth.sim import Simulator

    dut = StreamFIFO(layout=beat_layout(QType.int(7), 3), depth=depth)
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 0)
        ctx.set(dut.i.valid, 1)
        held = 0
        for _ in range(depth + 3):  # fill: one beat per cycle while there is room
            taken = ctx.get(dut.i.ready)
            await ctx.tick()
            held += taken
            seen.append((ctx.get(dut.level), held))
        assert ctx.get(dut.i.ready) == 0
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.o.ready, 1)
        for _ in range(depth + 2):  # drain
            given = ctx.get(dut.o.valid)
            await ctx.tick()
            held -= given
            seen.append((ctx.get(dut.level), held))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert [level for level, _ in seen] == [held for _, held in seen]
    assert max(level for level, _ in seen) == depth and seen[-1] == (0, 0)


@pytest.mark.parametrize(("depth", "seed"), [(2, 0), (3, 1), (5, 2), (6, 3), (9, 4), (40, 5)])
def test_block_fifo_is_sync_fifo_buffered_cycle_for_cycle(depth, seed):
    """BlockFIFO (block RAM read through its output register, a prefetch buffer) and
    amaranth's SyncFIFOBuffered of the same depth, side by side on the same ``w_en``,
    ``w_data`` and ``r_en``: every port equal in every cycle. The traffic alternates bursts
    and stalls on both sides (fill to full, drain to empty, one beat per cycle each way,
    random), so every path through the prefetch buffer is taken."""
    import random

    from amaranth import Module
    from amaranth.lib.fifo import SyncFIFOBuffered
    from amaranth.sim import Simulator
    from codesign.hdl.dataflow.stream import BlockFIFO

    m = Module()
    m.submodules.ref = ref = SyncFIFOBuffered(width=8, depth=depth)
    m.submodules.dut = dut = BlockFIFO(width=8, depth=depth)
    rnd = random.Random(seed)
    cycles = 3000
    # (write probability, read probability) per phase of 10-60 cycles
    phases = [(1, 0), (0, 1), (1, 1), (0.5, 1), (1, 0.5), (0.9, 0.3), (0.3, 0.9), (0, 0)]
    plan = []
    while len(plan) < cycles:
        pw, pr = rnd.choice(phases)
        plan += [(pw, pr)] * rnd.randint(10, 60)
    mismatches = []

    async def bench(ctx):
        for cycle, (pw, pr) in enumerate(plan[:cycles]):
            w_en, r_en = int(rnd.random() < pw), int(rnd.random() < pr)
            data = rnd.randrange(256)
            for f in (ref, dut):
                ctx.set(f.w_en, w_en)
                ctx.set(f.r_en, r_en)
                ctx.set(f.w_data, data)
            a = [ctx.get(getattr(ref, p)) for p in ("w_rdy", "r_rdy", "level")]
            b = [ctx.get(getattr(dut, p)) for p in ("w_rdy", "r_rdy", "level")]
            if a[1]:  # the word on the output, where there is one
                a.append(ctx.get(ref.r_data))
                b.append(ctx.get(dut.r_data))
            if a != b:
                mismatches.append((cycle, a, b))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert mismatches == []


def test_stream_fifo_is_a_block_fifo_where_its_storage_is_block_ram():
    """The choice follows the cost model's memory map of the depth - 1 stored beats; the
    ECP5 form is DP16KD instances with their output register."""
    from amaranth.back import verilog

    small = StreamFIFO(layout=beat_layout(QType.int(8), 1), depth=16)
    big = StreamFIFO(layout=beat_layout(QType.int(8), 1), depth=256, target="ecp5")
    assert not small.block and big.block
    text = verilog.convert(big, name="fifo", emit_src=False)
    assert text.count("DP16KD ") == 1 and '"OUTREG"' in text
