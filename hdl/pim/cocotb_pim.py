"""The cocotb test bench of :class:`~codesign.hdl.pim.harness.PimUnits`: micro-op programs
loaded through each unit's ``prog`` port and run on their input rows, every stored row
against its expectations, the cycle counter against the program's cycles.

Protocol: the simulator is started with the plusarg ``+pim_bench=<bench.json>``; that file
holds ``data`` (an ``.npz`` of uint64 arrays: instruction words, input rows and expected
rows, a row's bit ``j`` being column ``j``), ``units`` (per unit name: ``addr_bits``, the
width of an instruction address in the ``prog`` and ``run`` payloads), ``cases`` (in order;
each with ``name``, ``unit``, ``program`` and ``base`` — the key of its instruction words and
the address they are loaded at, skipped when that program is already there — ``inputs``,
``expect`` — a mapping of the expectation's name, such as ``execute`` or ``numpy``, to its key
—, ``cycles`` — the program's cycles —, ``valid_prob``, ``ready_prob`` and ``seed``) and
``report`` (where the bench writes its measured figures, JSON, for reports only).

The bench wakes at every falling clock edge: it offers the next input row (with probability
``valid_prob``; always when 1) and takes an output row (with probability ``ready_prob``),
counts the stall cycles — a cycle where the unit is ready for a row the bench does not offer,
or offers a row the bench does not take — and the rising edges from the one that takes the
``run`` beat to the one that raises ``done``. A case passes when every stored row equals every
expectation, ``error`` is low and the unit's cycle counter equals the edges counted and the
program's cycles plus the stalls. The test runs every case and then fails, by assertion,
naming each failing case with its first mismatching row and column.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

PERIOD_NS = 10
RESET_CYCLES = 3


class Unit:
    """The ports of one array of the harness, and what its instruction memory holds."""

    def __init__(self, dut, name: str, addr_bits: int) -> None:
        self.name, self.addr_bits = name, addr_bits
        self.clk = dut.clk

        def port(p):
            return getattr(dut, f"{name}__{p}")

        self.prog_valid, self.prog_ready = port("prog__valid"), port("prog__ready")
        self.prog_payload = port("prog__payload")
        self.run_valid, self.run_ready = port("run__valid"), port("run__ready")
        self.run_payload = port("run__payload")
        self.i_valid, self.i_ready, self.i_payload = (
            port(f"i__{p}") for p in ("valid", "ready", "payload")
        )
        self.o_valid, self.o_ready, self.o_payload = (
            port(f"o__{p}") for p in ("valid", "ready", "payload")
        )
        self.busy, self.done, self.error = port("busy"), port("done"), port("error")
        self.cycles = port("cycles")
        self.resident: dict[int, tuple[str, int]] = {}  # base -> (program key, length)
        for h in (self.prog_valid, self.run_valid, self.i_valid, self.o_ready):
            h.value = 0

    async def load(self, key: str, words, base: int) -> int:
        """Write ``words`` at ``base`` (unless program ``key`` is there); the cycles taken."""
        if self.resident.get(base, (None, 0))[0] == key:
            return 0
        end = base + len(words)  # forget the programs these words overwrite
        self.resident = {
            b: (k, n) for b, (k, n) in self.resident.items() if b + n <= base or b >= end
        }
        depth = 1 << self.addr_bits
        edge = FallingEdge(self.clk)
        self.prog_valid.value = 1
        for k, word in enumerate(words):
            self.prog_payload.value = (base + k) % depth | int(word) << self.addr_bits
            if not self.prog_ready.value:
                raise AssertionError(f"unit {self.name}: prog not ready while idle")
            await edge
        self.prog_valid.value = 0
        self.resident[base] = (key, len(words))
        return len(words)

    async def execute(self, case: dict, inputs, limit: int) -> dict:
        """Run the program at ``case["base"]``; the stored rows, edges, stalls and counters."""
        edge = FallingEdge(self.clk)
        rng = random.Random(case["seed"])
        valid_prob, ready_prob = case["valid_prob"], case["ready_prob"]
        self.run_payload.value = case["base"] | case["length"] << self.addr_bits
        self.run_valid.value = 1
        if not self.run_ready.value:
            raise AssertionError(f"unit {self.name}: run not ready while idle")
        await edge
        self.run_valid.value = 0
        inputs = [int(v) for v in inputs]
        n = len(inputs)
        out: list[int] = []
        k = edges = stalls = 0
        shown_valid = shown_ready = None
        shown = -1
        i_valid, i_ready, i_payload = self.i_valid, self.i_ready, self.i_payload
        o_valid, o_ready, o_payload = self.o_valid, self.o_ready, self.o_payload
        done = self.done
        while not done.value:
            valid = k < n and (valid_prob >= 1 or rng.random() < valid_prob)
            ready = ready_prob >= 1 or rng.random() < ready_prob
            if valid and shown != k:
                i_payload.value = inputs[k]
                shown = k
            if valid is not shown_valid:
                i_valid.value = int(valid)
                shown_valid = valid
            if ready is not shown_ready:
                o_ready.value = int(ready)
                shown_ready = ready
            takes = bool(i_ready.value)
            gives = bool(o_valid.value)
            row = o_payload.value.to_unsigned() if gives and ready else None
            stalls += (takes and not valid) + (gives and not ready)
            await edge
            edges += 1
            if takes and valid:
                k += 1
            if row is not None:
                out.append(row)
            if edges > limit:
                raise AssertionError(
                    f"case {case['name']}: not done after {edges} cycles ({k} of {n} input "
                    f"rows taken, {len(out)} rows stored)"
                )
        i_valid.value = 0
        return {
            "out": out,
            "taken": k,
            "edges": edges,
            "stalls": stalls,
            "cycles": self.cycles.value.to_unsigned(),
            "error": int(self.error.value),
            "busy": int(self.busy.value),
        }


def _check(case: dict, got: dict, expect: dict[str, np.ndarray], n_inputs: int) -> str | None:
    """The first thing wrong with a run, or None."""
    name = case["name"]
    if got["error"] or got["busy"]:
        return f"case {name}: error {got['error']}, busy {got['busy']} after done"
    if got["taken"] != n_inputs:
        return f"case {name}: {got['taken']} input rows taken, the program loads {n_inputs}"
    for what, want in expect.items():
        if len(got["out"]) != len(want):
            return f"case {name}: {len(got['out'])} rows stored, {what} stores {len(want)}"
        for r, (g, w) in enumerate(zip(got["out"], want, strict=True)):
            diff = g ^ int(w)
            if diff:
                c = (diff & -diff).bit_length() - 1
                return (
                    f"case {name}: stored row {r}, column {c} is {g >> c & 1}, {what} says "
                    f"{int(w) >> c & 1} (row {g:#x}, {what} {int(w):#x})"
                )
    want_cycles = case["cycles"] + got["stalls"]
    if not got["cycles"] == got["edges"] == want_cycles:
        return (
            f"case {name}: cycle counter {got['cycles']}, edges from run to done "
            f"{got['edges']}, program cycles {case['cycles']} + stalls {got['stalls']} = "
            f"{want_cycles}"
        )
    return None


@cocotb.test()
async def pim_cases(dut):
    """Every case of the bench file, in order."""
    cfg = json.loads(Path(cocotb.plusargs["pim_bench"]).read_text())
    data = np.load(cfg["data"])
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    units = {name: Unit(dut, name, spec["addr_bits"]) for name, spec in cfg["units"].items()}
    dut.rst.value = 1
    await ClockCycles(dut.clk, RESET_CYCLES)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    failures: list[str] = []
    report = {}
    for case in cfg["cases"]:
        unit = units[case["unit"]]
        start = time.perf_counter()
        words = data[case["program"]]
        loaded = await unit.load(case["program"], words, case["base"])
        inputs = data[case["inputs"]]
        case = {**case, "length": len(words)}
        limit = 4 * case["cycles"] + 20 * len(inputs) + 1000
        got = await unit.execute(case, inputs, limit)
        expect = {what: data[key] for what, key in case["expect"].items()}
        problem = _check(case, got, expect, len(inputs))
        if problem:
            failures.append(problem)
        report[case["name"]] = {
            "unit": unit.name,
            "cycles": got["cycles"],
            "predicted": case["cycles"],
            "stalls": got["stalls"],
            "prog_cycles": loaded,
            "ok": problem is None,
            "seconds": round(time.perf_counter() - start, 3),
        }
    Path(cfg["report"]).write_text(json.dumps(report, indent=1))
    assert not failures, f"{len(failures)} of {len(cfg['cases'])} cases fail:\n" + "\n".join(
        failures[:20]
    )
