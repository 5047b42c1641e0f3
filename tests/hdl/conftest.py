"""Shared amaranth.sim helpers for stream blocks: a source driving beat words with random
valid gaps and a sink with random ready, collecting the output words and the cycle each was
taken on. Tests get :func:`run_stream` through the ``stream_sim`` fixture."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from amaranth.sim import Simulator


@dataclass
class StreamRun:
    """What :func:`run_stream` saw on the output stream."""

    words: list[int]  #: output beat words, in order
    cycles: list[int] = field(default_factory=list)  #: cycle (from 0) each word was taken on


def run_stream(
    dut,
    words: list[int],
    n_out: int,
    *,
    valid_prob: float = 1.0,
    ready_prob: float = 1.0,
    seed: int = 0,
    max_cycles: int | None = None,
) -> StreamRun:
    """Simulate ``dut`` (a component with stream members ``i`` and ``o``): drive ``words``
    into ``i`` (``valid`` high with probability ``valid_prob`` each cycle) and take ``n_out``
    words from ``o`` (``ready`` high with probability ``ready_prob``). Returns when both are
    done.

    Fails if the output has not delivered ``n_out`` words, or the input has not taken every
    word, within ``max_cycles`` cycles (default: a generous bound from the word counts and
    probabilities).
    """
    rng = random.Random(seed)
    if max_cycles is None:
        max_cycles = 1000 + 20 * int(len(words) / valid_prob + n_out / ready_prob)
    run = StreamRun(words=[])
    state = {"cycle": 0}
    i_payload = dut.i.payload.as_value()
    o_payload = dut.o.payload.as_value()

    async def source(ctx):
        cycles = 0
        for word in words:
            while rng.random() >= valid_prob:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
                cycles += 1
            ctx.set(i_payload, word)
            ctx.set(dut.i.valid, 1)
            while True:
                _clk, _rst, ready = await ctx.tick().sample(dut.i.ready)
                cycles += 1
                if ready:
                    break
                if cycles >= max_cycles:
                    raise AssertionError(f"input word {word:#x} not taken in {cycles} cycles")
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        ctx.set(dut.o.ready, rng.random() < ready_prob)
        async for _clk, _rst, valid, ready, payload in ctx.tick().sample(
            dut.o.valid, dut.o.ready, o_payload
        ):
            cycle = state["cycle"]
            state["cycle"] = cycle + 1
            if valid and ready:
                run.words.append(payload)
                run.cycles.append(cycle)
                if len(run.words) == n_out:
                    return
            if cycle >= max_cycles:
                raise AssertionError(
                    f"only {len(run.words)} of {n_out} output words after {cycle} cycles"
                )
            ctx.set(dut.o.ready, rng.random() < ready_prob)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return run


@pytest.fixture
def stream_sim():
    """:func:`run_stream`, for tests of stream components."""
    return run_stream
