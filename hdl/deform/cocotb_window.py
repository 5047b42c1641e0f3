"""The cocotb test bench of a :class:`~codesign.hdl.deform.DeformWindow`'s Verilog.

Protocol: the simulator is started with the plusarg ``+deform_bench=<bench.json>``; that file
holds the beat words of every frame (``i``, ``offs``: lists per frame; ``expected``: the
output words per frame), ``fast_frames`` (the first frames run with every input valid and
the output always ready), ``load_cycles`` and ``run_cycles`` (per fast frame, from
:mod:`codesign.models.deform.engine`), and ``valid_prob``, ``ready_prob`` and ``seed`` for the
later frames' random gaps and back-pressure.

One coroutine drives and observes the three streams cycle by cycle: at each falling clock
edge it drives ``valid``/``payload`` and ``o.ready`` for the next rising edge, then reads the
settled handshakes (``ReadOnly``); a handshake seen in loop ``k`` is the transfer at rising
edge ``k``, the cycle number used below. The test fails by assertion on the first output word
that differs from ``expected`` (naming frame and beat), on a fast frame whose LOAD or RUN
phase does not take exactly the given cycles, or on a time-out.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly

PERIOD_NS = 10
RESET_CYCLES = 4


class _Source:
    """Beat words offered on one input stream, with random gaps after the fast frames."""

    def __init__(self, valid, payload, ready, frames, fast, prob, rng) -> None:
        self.valid, self.payload, self.ready = valid, payload, ready
        self.words = [w for f in frames for w in f]
        self.fast_words = sum(len(f) for f in frames[:fast])
        self.per_frame = [len(f) for f in frames]
        self.prob, self.rng = prob, rng
        self.index = 0
        self.cycles: list[int] = []  #: cycle each word was accepted
        self.offered = False

    def drive(self) -> None:
        if self.index >= len(self.words):
            self.offered = False
        elif self.index < self.fast_words:
            self.offered = True
        else:
            self.offered = self.rng.random() < self.prob
        self.valid.value = int(self.offered)
        if self.offered:
            self.payload.value = self.words[self.index]

    def observe(self, cycle: int) -> None:
        if self.offered and int(self.ready.value):
            self.cycles.append(cycle)
            self.index += 1


@cocotb.test()
async def deform_window(dut):
    cfg = json.loads(Path(cocotb.plusargs["deform_bench"]).read_text())
    rng = random.Random(cfg["seed"])
    fast = cfg["fast_frames"]
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.offs__valid.value = 0
    dut.o__ready.value = 0
    await ClockCycles(dut.clk, RESET_CYCLES)
    dut.rst.value = 0
    src_i = _Source(
        dut.i__valid, dut.i__payload, dut.i__ready, cfg["i"], fast, cfg["valid_prob"], rng
    )
    src_o = _Source(
        dut.offs__valid,
        dut.offs__payload,
        dut.offs__ready,
        cfg["offs"],
        fast,
        cfg["valid_prob"],
        rng,
    )
    expected = [w for f in cfg["expected"] for w in f]
    per_frame = len(cfg["expected"][0])
    fast_beats = fast * per_frame
    got_cycles: list[int] = []
    limit = 1000 + 40 * (len(src_i.words) + len(expected))
    cycle = 0
    while len(got_cycles) < len(expected):
        await FallingEdge(dut.clk)
        src_i.drive()
        src_o.drive()
        n = len(got_cycles)
        ready = n < fast_beats or rng.random() < cfg["ready_prob"]
        dut.o__ready.value = int(ready)
        await ReadOnly()
        src_i.observe(cycle)
        src_o.observe(cycle)
        if ready and int(dut.o__valid.value):
            word = int(dut.o__payload.value.to_unsigned())
            frame, beat = divmod(n, per_frame)
            assert word == expected[n], (
                f"frame {frame} beat {beat}: output {word:#x}, expected {expected[n]:#x}"
            )
            got_cycles.append(cycle)
        cycle += 1
        assert cycle < limit, f"only {len(got_cycles)} of {len(expected)} beats in {cycle} cycles"
    hw = len(cfg["i"][0])
    pixels = len(cfg["offs"][0])
    for f in range(fast):
        i_cyc = src_i.cycles[f * hw : (f + 1) * hw]
        offs0 = src_o.cycles[f * pixels]
        load = i_cyc[-1] - i_cyc[0] + 1
        run = got_cycles[(f + 1) * per_frame - 1] - offs0 + 1
        assert load == cfg["load_cycles"], f"frame {f}: LOAD took {load} cycles"
        assert offs0 == i_cyc[-1] + 1, f"frame {f}: RUN began {offs0 - i_cyc[-1]} after LOAD"
        assert run == cfg["run_cycles"][f], (
            f"frame {f}: RUN took {run} cycles, the model says {cfg['run_cycles'][f]}"
        )
    dut._log.info("%d frames exact; fast frames' RUN cycles %s", len(cfg["i"]), cfg["run_cycles"])
