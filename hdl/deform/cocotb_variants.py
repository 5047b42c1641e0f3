"""The cocotb test bench of a :class:`~codesign.hdl.deform.harness.WindowArray`: every unit's
frames through its own streams, all units at once, every output beat against the golden
samples, the full-rate frames' cycles against the model.

Protocol: the simulator is started with the plusarg ``+deform_variants=<bench.json>``; that
file holds ``data`` (an ``.npz``: for unit ``u``, ``x{u}`` the frames (N, C, H, W),
``offs{u}`` the offsets (N, n, Ho, Wo), ``want{u}`` the expected samples (N, Ho, Wo, K, C),
``fast{u}`` a bool per frame, ``run{u}`` and ``period{u}`` the model's RUN and frame cycles
per frame), ``units`` (per unit: ``name``, ``element_bits``, ``offset_bits``,
``sample_bits``, ``load_cycles``) and ``report`` (where the bench writes its measured
figures, JSON, for reports only).

A fast frame's beats are offered as soon as the unit can take them and its output beats
are always taken; a slow frame's beats are marked slow, so the harness offers its input
beats after pseudo-random gaps and takes its output beats under pseudo-random back-pressure.

The bench wakes every ``block`` cycles (at a falling clock edge, registers settled): it
reads the slots' status once, reads each filled output slot and compares its ``block``
words with the expected ones, frees it, and refills each consumed input slot; it reads a
slot's cycle stamps where a frame begins or ends. The harness's buffers hold two blocks, so
at full rate a unit never waits for the bench. The test fails by assertion on the first
output word that differs (naming the unit, frame, beat, output pixel and tap), on a fast
frame whose LOAD, RUN or frame period differs from the model, or on a time-out.
"""

from __future__ import annotations

import json
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, Timer

from .harness import pack_words

PERIOD_NS = 10
RESET_CYCLES = 4
MASK32 = (1 << 32) - 1


class _Feed:
    """One input stream of a unit: its blocks, the two slots, the stamps wanted."""

    def __init__(self, dut, s: str, u: int, si: int, blocks, slow, per_frame: int) -> None:
        self.data = [getattr(dut, f"{s}_data{u}_{k}") for k in range(2)]
        self.slow_h = [getattr(dut, f"{s}_slow{u}_{k}") for k in range(2)]
        self.stamp_h = [getattr(dut, f"{s}_stamp{u}_{k}") for k in range(2)]
        self.bit = 6 * u + 2 * si
        self.blocks, self.slow = blocks, slow
        self.per_frame = per_frame  # blocks per frame
        self.next = 0
        self.loaded: list[int | None] = [None, None]
        self.slow_set = [None, None]
        self.stamps: dict[int, int] = {}

    def step(self, pending: int, toggles: int, full_mask: int) -> int:
        """Free consumed slots (reading their stamps where a frame begins or ends) and refill
        them; ``pending`` has a bit set per full slot. Returns the new toggles."""
        for k in range(2):
            bit = self.bit + k
            blk = self.loaded[k]
            if blk is not None and not (pending >> bit) & 1:
                if blk % self.per_frame in (0, self.per_frame - 1):
                    self.stamps[blk] = self.stamp_h[k].value.to_unsigned()
                self.loaded[k] = blk = None
            if blk is None and self.next < len(self.blocks):
                j = self.next
                self.data[k].value = self.blocks[j]
                mask = full_mask if self.slow[j] else 0
                if self.slow_set[k] != mask:
                    self.slow_h[k].value = self.slow_set[k] = mask
                self.loaded[k] = j
                self.next = j + 1
                toggles ^= 1 << bit
        return toggles


class _Unit:
    """One unit's stimulus, expectations and progress."""

    def __init__(self, dut, u: int, spec: dict, data, block: int) -> None:
        self.u, self.name, self.block = u, spec["name"], block
        x, off = data[f"x{u}"], data[f"offs{u}"]
        self.want = data[f"want{u}"]  # (N, Ho, Wo, K, C)
        self.fast = [bool(v) for v in data[f"fast{u}"]]
        self.run = [int(v) for v in data[f"run{u}"]]
        self.period = [int(v) for v in data[f"period{u}"]]
        self.load = int(spec["load_cycles"])
        self.frames, c, h, w = x.shape
        self.taps, self.channels = self.want.shape[3], c
        self.wo = self.want.shape[2]
        self.sample_bits = int(spec["sample_bits"])
        per = {"i": h * w, "offs": off.shape[2] * off.shape[3], "o": self.want[0].size // c}
        for s, beats in per.items():
            if beats % block:
                raise ValueError(f"unit {self.name}: {s} beats per frame {beats} not in blocks")
        self.bpf = {s: beats // block for s, beats in per.items()}
        full = (1 << block) - 1
        self.full = full

        def blocks(values, bits):
            return pack_words(values.reshape(-1, block * values.shape[-1]), bits)

        slow = {
            s: [not self.fast[j // self.bpf[s]] for j in range(self.frames * self.bpf[s])]
            for s in per
        }
        self.slow_o = slow["o"]
        self.feeds = [
            _Feed(
                dut,
                "i",
                u,
                0,
                blocks(x.transpose(0, 2, 3, 1), spec["element_bits"]),
                slow["i"],
                self.bpf["i"],
            ),
            _Feed(
                dut,
                "offs",
                u,
                1,
                blocks(off.transpose(0, 2, 3, 1), spec["offset_bits"]),
                slow["offs"],
                self.bpf["offs"],
            ),
        ]
        self.o_data = [getattr(dut, f"o_data{u}_{k}") for k in range(2)]
        self.o_slow = [getattr(dut, f"o_slow{u}_{k}") for k in range(2)]
        self.o_stamp = [getattr(dut, f"o_stamp{u}_{k}") for k in range(2)]
        self.o_bit = 6 * u + 4
        self.o_next = 0  # next output block to read
        self.o_blocks = self.frames * self.bpf["o"]
        self.o_stamps: dict[int, int] = {}
        self.expected: list[int] = []
        self.frame = -1

    def arm(self, j: int) -> None:
        """Write the slow mask of output block ``j`` into its slot."""
        if j < self.o_blocks:
            self.o_slow[j % 2].value = self.full if self.slow_o[j] else 0

    def drain(self, pending: int, toggles: int) -> int:
        """Read and check every filled output slot in block order; free and re-arm it."""
        while self.o_next < self.o_blocks:
            j = self.o_next
            k = j % 2
            bit = self.o_bit + k
            if not (pending >> bit) & 1:
                break
            frame, idx = divmod(j, self.bpf["o"])
            if frame != self.frame:
                self.expected = pack_words(
                    self.want[frame].reshape(-1, self.block * self.channels), self.sample_bits
                )
                self.frame = frame
            got = self.o_data[k].value.to_unsigned()
            if got != self.expected[idx]:
                self.mismatch(frame, idx, got)
            if idx == self.bpf["o"] - 1:
                self.o_stamps[j] = self.o_stamp[k].value.to_unsigned()
            self.arm(j + 2)
            toggles ^= 1 << bit
            pending &= ~(1 << bit)
            self.o_next = j + 1
        return toggles

    def mismatch(self, frame: int, idx: int, got: int) -> None:
        wbits = self.sample_bits * self.channels
        want = self.expected[idx]
        for j in range(self.block):
            g, e = ((v >> (j * wbits)) & ((1 << wbits) - 1) for v in (got, want))
            if g != e:
                beat = idx * self.block + j
                pixel, tap = divmod(beat, self.taps)
                raise AssertionError(
                    f"unit {self.name} frame {frame} beat {beat} (pixel "
                    f"{divmod(pixel, self.wo)}, tap {tap}): output {g:#x}, expected {e:#x}"
                )

    def measure(self) -> list[dict]:
        """Each fast frame's LOAD, RUN and period, measured from the stamps."""
        i, offs = self.feeds
        out = []
        for f in range(self.frames):
            if not self.fast[f]:
                continue
            bi, bo, bq = self.bpf["i"], self.bpf["offs"], self.bpf["o"]
            i_first = i.stamps[f * bi] & MASK32
            i_last = i.stamps[(f + 1) * bi - 1] >> 32
            offs0 = offs.stamps[f * bo] & MASK32
            o_last = self.o_stamps[(f + 1) * bq - 1] >> 32
            period = None
            if f + 1 < self.frames and self.fast[f + 1]:
                period = (i.stamps[(f + 1) * bi] & MASK32) - i_first
            out.append(
                {
                    "frame": f,
                    "load": i_last - i_first + 1,
                    "gap": offs0 - i_last,
                    "run": o_last - offs0 + 1,
                    "period": period,
                }
            )
        return out

    def check(self, figures: list[dict]) -> None:
        for r in figures:
            f = r["frame"]
            tag = f"unit {self.name} frame {f}"
            assert r["load"] == self.load, f"{tag}: LOAD took {r['load']} cycles, not {self.load}"
            assert r["gap"] == 1, f"{tag}: RUN began {r['gap']} cycles after LOAD"
            assert r["run"] == self.run[f], (
                f"{tag}: RUN took {r['run']} cycles, the model says {self.run[f]} from its offsets"
            )
            if r["period"] is not None:
                assert r["period"] == self.period[f], (
                    f"{tag}: frame period {r['period']} cycles, the model says {self.period[f]}"
                )


@cocotb.test()
async def deform_variants(dut):
    cfg = json.loads(Path(cocotb.plusargs["deform_variants"]).read_text())
    data = np.load(cfg["data"])
    block = int(cfg["block"])
    units = [_Unit(dut, u, spec, data, block) for u, spec in enumerate(cfg["units"])]
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    dut.rst.value = 1
    toggles = 0
    for un in units:
        for feed in un.feeds:
            toggles = feed.step(0, toggles, un.full)
        un.arm(0)
        un.arm(1)
    dut.toggles.value = toggles
    await ClockCycles(dut.clk, RESET_CYCLES)
    dut.rst.value = 0
    await FallingEdge(dut.clk)
    status = dut.status
    wake = Timer(block * PERIOD_NS, unit="ns")
    limit = 100 + 4 * max(un.frames * (un.load + max(un.run)) for un in units) // block
    left = list(units)
    wakes = 0
    while left:
        await wake
        wakes += 1
        pending = status.value.to_unsigned() ^ toggles
        new = toggles
        for un in left:
            new = un.drain(pending, new)
            for feed in un.feeds:
                new = feed.step(pending, new, un.full)
        if new != toggles:
            dut.toggles.value = toggles = new
        left = [un for un in left if un.o_next < un.o_blocks]
        assert wakes < limit, "time-out: " + ", ".join(
            f"{un.name} {un.o_next} of {un.o_blocks} output blocks" for un in units
        )
    report = {un.name: {"frames": un.frames, "fast": un.measure()} for un in units}
    report["cycles"] = wakes * block
    Path(cfg["report"]).write_text(json.dumps(report))
    for un in units:
        un.check(report[un.name]["fast"])
    dut._log.info("%d units exact over about %d cycles", len(units), wakes * block)
