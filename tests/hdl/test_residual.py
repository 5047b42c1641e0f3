"""Residual fork and add under random back-pressure."""

from __future__ import annotations

import random
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from codesign.hdl.dataflow.credit import CreditQueue
from codesign.hdl.dataflow.residual import AddStreams, Fork
from codesign.hdl.dataflow.stream import beat_layout, pack_beats, unpack_beats
from codesign.models.pipelining import credit_depth
from codesign.models.qtype import QType


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
    add = AddStreams(a_type=a_t, b_type=b_t, out_type=o_t, n=3)
    # the add is the head of a credit pipeline: its sums land in the stage's queue
    queue = CreditQueue(layout=beat_layout(o_t, 3), depth=credit_depth(1, 1))
    top = Module()
    top.submodules.add, top.submodules.queue = add, queue
    wiring.connect(top, add.o, queue.i)
    top.d.comb += [add.space.eq(queue.space), queue.reserve.eq(add.reserve)]
    dut = SimpleNamespace(a=add.a, b=add.b, o=queue.o)
    rng = np.random.default_rng(0)
    a = rng.integers(a_t.min, a_t.max + 1, (30, 3))
    b = rng.integers(b_t.min, b_t.max + 1, (30, 3))
    rnd = random.Random(1)
    got = []
    sim = Simulator(top)
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


# -- a residual pipeline in RTL: forks, add stages, average and global sum pooling ----------


def _measure(d, folder, rate, frames=4):
    from codesign.hdl.verify import verify

    from codesign.flows import generate

    generate(d, folder)
    r = verify(d, folder, vectors=frames, sim="icarus", seed=3, perf_frames=frames, input_rate=rate)
    assert r["passed"], (r["mismatches"], r["first_bad_stage"], r["timed_out"])
    return r


@pytest.mark.simulator
def test_residual_rtl_at_sized_fifos_and_one_less_on_the_skip(tmp_path, residual_net):
    """Icarus, against the golden model and the simulator: with FIFOs sized by the simulator
    (skip FIFO included) the RTL runs at the ideal II, no FIFO ever full; one entry less on
    the skip FIFO stalls it in the RTL exactly as predicted. (About 40 s.)"""
    from dataclasses import replace

    from codesign.hdl.tools import icarus_available
    from codesign.models.hwconfig import Design, HardwareConfig
    from codesign.sim.dataflow import pipeline_rate, simulate, size_fifos

    if not icarus_available():
        pytest.skip("Icarus Verilog (Debian package iverilog) is not installed")
    d = size_fifos(Design(residual_net))
    rate = pipeline_rate(d)
    r = _measure(d, tmp_path / "sized", rate)
    p = simulate(d, frames=4, input_rate=rate)
    assert r["ii"] == d.ideal_ii == p.ii
    assert r["latency"] == p.latency
    assert set(r["fifo_full_cycles"].values()) == {0}, r["fifo_full_cycles"]
    assert set(r["fifo_full_cycles"]) >= {"add", "add__b"}
    skip = d.fifo_depth("add", 1)
    assert 2 < skip <= d.join_bound("add", 1)
    stages = dict(d.config.stages)
    stages["add"] = replace(stages["add"], fifo_depth_b=skip - 1)
    smaller = Design(d.network, HardwareConfig(stages))
    r = _measure(smaller, tmp_path / "smaller", rate)
    assert r["fifo_full_cycles"]["add__b"] > 0
    p = simulate(smaller, frames=4, input_rate=rate)
    assert p.fifo_full_cycles() == r["fifo_full_cycles"]
    assert (p.latency, p.ii) == (r["latency"], r["ii"])


@pytest.mark.simulator
def test_corrupted_weight_on_the_long_branch_is_reported_at_its_stage(tmp_path, residual_net):
    """One weight changed in the RTL of the branch's convolution: the bench's per-stage taps
    name that stage, the first differing one in the graph's order, not the add after it."""
    from codesign.hdl.dataflow.pipeline import generate
    from codesign.hdl.tools import icarus_available
    from codesign.hdl.verify import verify
    from codesign.models.hwconfig import Design

    if not icarus_available():
        pytest.skip("Icarus Verilog (Debian package iverilog) is not installed")
    d = Design(residual_net)
    generate(d, tmp_path / "bad", "0" * 16, corrupt=("b", 1, 7))
    r = verify(d, tmp_path / "bad", vectors=40, sim="icarus", seed=5, perf_frames=2)
    assert not r["passed"] and r["mismatches"] > 0
    assert (r["first_bad_stage"], r["first_bad_layer"]) == ("b", "b_act")
    assert r["stages"]["a"]["mismatched_frames"] == 0 < r["stages"]["b"]["mismatched_frames"]


@pytest.mark.simulator
def test_skip_from_the_network_input_forks_the_input_stream(tmp_path):
    """The skip may start at the network input: the input stream is forked (``fork_input``)
    and both readers get a FIFO; the RTL matches the golden model and the simulator."""
    import yaml
    from codesign.hdl.tools import icarus_available
    from codesign.models.hwconfig import Design
    from codesign.models.loader import load
    from codesign.sim.dataflow import simulate

    if not icarus_available():
        pytest.skip("Icarus Verilog (Debian package iverilog) is not installed")
    rng = np.random.default_rng(9)
    doc = {
        "format": 1,
        "name": "input_skip",
        "input": {"shape": [2, 5, 5], "type": "int3"},
        "layers": [
            {"name": "c", "op": "conv2d", "weight": rng.integers(-1, 2, (2, 2, 3, 3)).tolist(),
             "padding": 1},
            {"name": "c_act", "op": "multithreshold", "thresholds": [[-2, 0, 2]] * 2,
             "out_bias": -2, "out_type": "int3"},
            {"name": "add", "op": "add", "inputs": ["input", "c_act"]},
        ],
    }  # fmt: skip
    (tmp_path / "n.yaml").write_text(yaml.safe_dump(doc))
    d = Design(load(tmp_path / "n.yaml"))
    assert [name for _, _, name in d.fifos()] == ["c", "add", "add__b"]
    r = _measure(d, tmp_path / "hdl", 1.0)
    p = simulate(d, frames=4)
    assert (p.latency, p.ii) == (r["latency"], r["ii"])
    assert p.fifo_full_cycles() == r["fifo_full_cycles"]
