"""The cocotb test bench of a :class:`~codesign.hdl.deform.harness.WindowArray`: every unit's
frames through its own streams, all units at once, every output beat against the golden
samples, the fast frames' cycles against the model.

Protocol: the simulator is started with the plusarg ``+deform_variants=<bench.json>``; that
file holds ``data`` (an ``.npz``: for unit ``u``, ``x{u}`` the frames (N, C, H, W),
``offs{u}`` the offsets (N, n, Ho, Wo), ``want{u}`` the expected samples (N, Ho, Wo, K, C),
``fast{u}`` a bool per frame, ``run{u}`` and ``period{u}`` the model's RUN and frame cycles
per frame), ``units`` (per unit: ``name``, ``element_bits``, ``offset_bits``,
``sample_bits``, ``load_cycles``), ``valid_prob``, ``ready_prob``, ``seed`` and ``report``
(where the bench writes its measured figures, JSON, for reports only).

A fast frame's beats are offered as soon as the unit can take them and its output beats
are always taken; a slow frame's input beats are offered after random gaps (once offered, a
beat stays valid until taken) and its output beats are taken with probability
``ready_prob`` per cycle.

One coroutine runs every unit, one clock cycle per loop: at each falling clock edge it reads
the harness's registered handshakes of the rising edge just passed (cycle ``k`` is the
``k``-th rising edge after reset), reads the output payload of each unit whose ``o`` fired
and compares it with the expected word, then drives ``valid``, the payloads that changed and
``ready`` for the next edge. The test fails by assertion on the first output word that
differs (naming the unit, frame, beat, output pixel and tap), on a fast frame whose LOAD,
RUN or frame period differs from the model, or on a time-out.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from .harness import pack_words

PERIOD_NS = 10
RESET_CYCLES = 4


class _Unit:
    """One unit's stimulus, expectations and progress."""

    def __init__(self, u: int, spec: dict, data, cfg: dict) -> None:
        self.u = u
        self.name = spec["name"]
        x, off = data[f"x{u}"], data[f"offs{u}"]
        self.want = data[f"want{u}"]  # (N, Ho, Wo, K, C)
        self.fast = [bool(v) for v in data[f"fast{u}"]]
        self.run = [int(v) for v in data[f"run{u}"]]
        self.period = [int(v) for v in data[f"period{u}"]]
        self.load = int(spec["load_cycles"])
        self.frames, _c, h, w = x.shape
        _n, _k, ho, wo = off.shape
        self.hw, self.pixels = h * w, ho * wo
        self.taps = self.want.shape[3]
        self.per_frame = self.pixels * self.taps
        self.sample_bits = int(spec["sample_bits"])
        self.i_words = pack_words(x.transpose(0, 2, 3, 1), spec["element_bits"])
        self.offs_words = pack_words(off.transpose(0, 2, 3, 1), spec["offset_bits"])
        self.i_fast = [self.fast[k // self.hw] for k in range(len(self.i_words))]
        self.offs_fast = [self.fast[k // self.pixels] for k in range(len(self.offs_words))]
        self.i_next = self.offs_next = self.o_next = 0
        self.i_offer = self.offs_offer = False  # a beat is offered (valid) for the next edge
        self.i_cycles: list[int] = []
        self.offs_cycles: list[int] = []
        self.o_cycles: list[int] = []
        self.expected: list[int] = []  # the current output frame's words
        self.frame = -1

    @property
    def total_out(self) -> int:
        return self.frames * self.per_frame

    def expect(self, index: int) -> int:
        frame, beat = divmod(index, self.per_frame)
        if frame != self.frame:
            self.expected = pack_words(self.want[frame], self.sample_bits)
            self.frame = frame
        return self.expected[beat]

    def where(self, index: int) -> str:
        frame, beat = divmod(index, self.per_frame)
        pixel, tap = divmod(beat, self.taps)
        wo = self.want.shape[2]
        return f"unit {self.name} frame {frame} beat {beat} (pixel {divmod(pixel, wo)}, tap {tap})"

    def check_cycles(self) -> list[dict]:
        """Assert each fast frame's LOAD, RUN and period; return the measured figures."""
        out = []
        for f in range(self.frames):
            if not self.fast[f]:
                continue
            i_cyc = self.i_cycles[f * self.hw : (f + 1) * self.hw]
            offs0 = self.offs_cycles[f * self.pixels]
            run = self.o_cycles[(f + 1) * self.per_frame - 1] - offs0 + 1
            load = i_cyc[-1] - i_cyc[0] + 1
            tag = f"unit {self.name} frame {f}"
            assert load == self.load, f"{tag}: LOAD took {load} cycles, the model says {self.load}"
            assert offs0 == i_cyc[-1] + 1, f"{tag}: RUN began {offs0 - i_cyc[-1]} after LOAD"
            assert run == self.run[f], (
                f"{tag}: RUN took {run} cycles, the model says {self.run[f]} from its offsets"
            )
            period = None
            if f + 1 < self.frames and self.fast[f + 1]:
                period = self.i_cycles[(f + 1) * self.hw] - i_cyc[0]
                assert period == self.period[f], (
                    f"{tag}: frame period {period} cycles, the model says {self.period[f]}"
                )
            out.append({"frame": f, "run": run, "period": period})
        return out


@cocotb.test()
async def deform_variants(dut):
    cfg = json.loads(Path(cocotb.plusargs["deform_variants"]).read_text())
    data = np.load(cfg["data"])
    units = [_Unit(u, spec, data, cfg) for u, spec in enumerate(cfg["units"])]
    n = len(units)
    rng = random.Random(cfg["seed"])
    vprob, rprob = cfg["valid_prob"], cfg["ready_prob"]
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    dut.valid.value = 0
    dut.ready.value = 0
    await ClockCycles(dut.clk, RESET_CYCLES)
    dut.rst.value = 0
    fired = dut.fired
    o_data = [getattr(dut, f"o_data{u}") for u in range(n)]
    i_data = [getattr(dut, f"i_data{u}") for u in range(n)]
    offs_data = [getattr(dut, f"offs_data{u}") for u in range(n)]
    edge = FallingEdge(dut.clk)
    await edge
    limit = 2000 + 4 * max(u.frames * (u.hw + max(u.run)) / min(vprob, rprob) for u in units)
    left = n
    valid = ready = -1
    cycle = -1  # the rising edge just passed, from the first one the bench drives
    while left:
        # -- drive the next edge ---------------------------------------------------------
        v = r = 0
        for un in units:
            u = un.u
            k = un.i_next
            if k < len(un.i_words):
                if not un.i_offer and (un.i_fast[k] or rng.random() < vprob):
                    un.i_offer = True
                    i_data[u].value = un.i_words[k]
                if un.i_offer:
                    v |= 1 << u
            k = un.offs_next
            if k < len(un.offs_words):
                if not un.offs_offer and (un.offs_fast[k] or rng.random() < vprob):
                    un.offs_offer = True
                    offs_data[u].value = un.offs_words[k]
                if un.offs_offer:
                    v |= 1 << (n + u)
            k = un.o_next
            if k < un.total_out and (un.fast[k // un.per_frame] or rng.random() < rprob):
                r |= 1 << u
        if v != valid:
            dut.valid.value = valid = v
        if r != ready:
            dut.ready.value = ready = r
        await edge
        cycle += 1
        # -- observe the edge --------------------------------------------------------------
        f = fired.value.to_unsigned()
        while f:
            low = f & -f
            f ^= low
            kind, u = divmod(low.bit_length() - 1, n)
            un = units[u]
            if kind == 0:
                un.i_cycles.append(cycle)
                un.i_next += 1
                un.i_offer = False
            elif kind == 1:
                un.offs_cycles.append(cycle)
                un.offs_next += 1
                un.offs_offer = False
            else:
                k = un.o_next
                word = o_data[u].value.to_unsigned()
                want = un.expect(k)
                assert word == want, f"{un.where(k)}: output {word:#x}, expected {want:#x}"
                un.o_cycles.append(cycle)
                un.o_next = k + 1
                if k + 1 == un.total_out:
                    left -= 1
        assert cycle < limit, "time-out: " + ", ".join(
            f"{un.name} {un.o_next} of {un.total_out} beats" for un in units
        )
    report = {}
    for un in units:
        report[un.name] = {"frames": un.frames, "beats": un.o_next, "fast": un.check_cycles()}
    report["cycles"] = cycle + 1
    Path(cfg["report"]).write_text(json.dumps(report))
    dut._log.info("%d units exact over %d cycles", n, cycle + 1)
