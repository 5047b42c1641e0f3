"""The cocotb regression bench of a generated stream design: the one ``codesign verify``
runs, and the one a regression kit (``codesign hdl NET -o DIR --testbench``) ships beside
the Verilog as ``regression_bench.py``.

It imports only the standard library, cocotb and cocotbext-axi, so that a kit runs where
codesign is not installed; everything it needs is in its configuration file
(``regression.json``: see :mod:`codesign.hdl.kit`) and the golden vectors it names.

The configuration is the file named by the plusarg ``+codesign_bench=<path>``, else
``regression.json`` beside this module. The plusargs ``+codesign_seed=N`` (the seed of the
random back-pressure, printed at the start) and ``+codesign_figures=<path>`` (where the
measured figures go, default ``figures.json`` in the working directory) override it, and
``+codesign_until_ns=T`` ends the run at simulation time T (the waveform pass of
``run_regression.py``, which only needs the run up to just after the first bad beat).

Pass or fail is the cocotb test's own: :func:`run_bench` fails by assertion when an output
beat, its ``tlast`` or a monitored stage's beat differs from the golden vectors (the
message names the stage, its layer, the frame, the beat, the element and the simulation
time of that beat), when a frame is missing or a phase times out, when phase 2 measures a
latency or initiation interval other than the configuration's ``expect`` (the cycle
simulator's prediction), or when a FIFO holds more than its depth. cocotb records that in
its ``results.xml`` (JUnit XML). The figures file is written before the assertions, so a
failed run still reports its counts and the time of its first bad beat; it never says
whether the run passed.

Phase 1 drives ``s_axis`` with an :class:`~cocotbext.axi.AxiStreamSource` paused at random
and back-pressures ``m_axis`` at random (:class:`ReadyDriver`). A :class:`StreamMonitor` on
``m_axis`` feeds the output :class:`Scoreboard`, which checks every output beat (and
``tlast``); one more monitor and scoreboard per monitored stage check that stage's output
stream against the golden trace of its tap layer. Unknown (X/Z) bits never match. Phase 2
sends frames again with input always valid and output always ready, and measures latency
and initiation interval with the clock-driven :class:`CycleSampler`, and the fill level of
every FIFO (:class:`FifoMonitor`).

Where the bench observes a stage or a FIFO is given in the configuration as candidate
paths: for each signal, the instance names from the top module down and the signal's name
there. The bench reaches them by indexing cocotb handles (``dut["core"]["fifo_fc2"]
["level"]``), public API on every simulator, and never reads the Verilog.

All stream observation happens at falling clock edges, half a cycle after the design and the
bench drive their signals at the rising edge, so it reads settled values on every simulator;
a handshake seen at falling edge ``k`` is the transfer at the next rising edge, and
``k`` is the cycle number reported.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import Sequence
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, RisingEdge, Timer
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSource

try:  # inside the codesign package
    from . import cocotb_streams as st
except ImportError:  # in a regression kit, beside regression_streams.py
    import regression_streams as st  # type: ignore[no-redef]

PERIOD_NS = 10
RESET_CYCLES = 4


# -- probes -------------------------------------------------------------------------------------


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _key(name: str) -> str:
    """The cocotb key of a child named ``name`` in the Verilog: the name itself, or for a name
    that is not a plain identifier (Amaranth's ``o__payload$12``) the escaped identifier
    as Verilog writes it (backslash, name, space), which is what the VPI of Icarus and of
    Verilator looks up (cocotb's ``"\\name\\"`` spelling is VHDL's extended identifier).
    Both simulators resolve such names in the zoo runs of tests/hdl/test_zoo_rtl.py."""
    return name if _IDENT.fullmatch(name) else f"\\{name} "


def resolve(dut, top: str, path: Sequence[str]):
    """The handle at ``path`` (instance names, then a signal name) under ``dut``, through
    public handle indexing; raises ``LookupError`` naming the first name not found."""
    h = dut
    for k, name in enumerate(path):
        try:
            h = h[_key(name)]
        except (KeyError, AttributeError, TypeError):
            where = ".".join([top, *path[:k]])
            raise LookupError(
                f"no signal {'.'.join([top, *path])}: {where} has no {name!r}"
            ) from None
    return h


def probe(dut, top: str, candidates: list[dict[str, list[str]]], what: str):
    """Handles of the members of one probe, from the first of ``candidates`` (member →
    path) that resolves, and that candidate; else ``LookupError`` naming ``what`` and every
    path tried."""
    errors = []
    for members in candidates:
        try:
            return {m: resolve(dut, top, p) for m, p in members.items()}, members
        except LookupError as e:
            errors.append(str(e))
    raise LookupError(f"{what}: {'; '.join(errors)}")


def stage_signals(dut, top: str, tap: dict, spec: st.Stream):
    """``(valid, ready, payload)`` handles of a monitored stage's output stream, checked
    against the widths its stream needs, and the path of the module holding them."""
    h, used = probe(dut, top, tap["candidates"], f"stage {tap['name']!r}")
    for member, bits in (("valid", 1), ("ready", 1), ("payload", spec.payload_bits)):
        if len(h[member]) != bits:
            raise LookupError(
                f"stage {tap['name']!r}: its {member} signal is {len(h[member])} bits wide, "
                f"but its stream ({spec.per_beat} x {spec.type} per beat) needs {bits}"
            )
    where = ".".join([top, *used["payload"][:-1]])
    return h["valid"], h["ready"], h["payload"], where


# -- the bench ----------------------------------------------------------------------------------


def _frame_bytes(frame: Sequence[int], spec: st.Stream) -> bytes:
    nbytes = int(spec.tdata_bits) // 8
    return b"".join(w.to_bytes(nbytes, "little") for w in spec.pack(frame))


class Bench:
    """Phase 1 (random gaps and back-pressure, checked) and phase 2 (free running,
    timed) on one design; :meth:`failures` lists what the cocotb test asserts on."""

    def __init__(self, dut, cfg: dict, base: Path) -> None:
        self.dut = dut
        self.cfg = cfg
        self.top = str(cfg["top"])
        vectors = base / cfg.get("vectors", "vectors")
        self.in_spec = st.Stream(cfg["input"])
        self.out_spec = st.Stream(cfg["output"])
        self.inputs = st.read_vectors(vectors / "input.bin")
        self.expected = st.read_vectors(vectors / "output.bin")
        self.n = len(self.inputs)
        self.m = int(cfg["perf_frames"])
        self.ids = list(range(self.n)) + list(range(self.m))
        self.log = logging.getLogger("cocotb.bench")

        self.source = AxiStreamSource(
            AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst, reset_active_level=True
        )
        self.source.log.setLevel(logging.WARNING)  # not one line per frame
        self.ready = st.ReadyDriver(dut.clk, dut.m_axis_tready)
        self.output = st.Scoreboard("output", self.expected, self.ids, self.out_spec.per_beat)

        self.in_mon = st.StreamMonitor(
            "s_axis",
            dut.s_axis_tvalid,
            dut.s_axis_tready,
            dut.s_axis_tdata,
            self.in_spec,
            lambda f: None,
        )
        self.out_mon = st.StreamMonitor(
            "m_axis",
            dut.m_axis_tvalid,
            dut.m_axis_tready,
            dut.m_axis_tdata,
            self.out_spec,
            callback=self.output.check,
            last=dut.m_axis_tlast,
        )
        self.taps: dict[str, st.Scoreboard] = {}
        self.tap_docs: dict[str, dict] = {}
        self.tap_monitors: list[st.StreamMonitor] = []
        self.tap_paths: dict[str, str] = {}
        monitors = [self.in_mon, self.out_mon]
        for tap in cfg.get("taps", []):
            name = tap["name"]
            spec = st.Stream(tap["out"])
            valid, ready, payload, path = stage_signals(dut, self.top, tap, spec)
            self.tap_paths[name] = path
            self.tap_docs[name] = tap
            golden = st.read_vectors(vectors / tap["vectors"])
            sb = st.Scoreboard(name, golden, self.ids, spec.per_beat)
            self.taps[name] = sb
            mon = st.StreamMonitor(name, valid, ready, payload, spec, sb.check)
            self.tap_monitors.append(mon)
            monitors.append(mon)
        self.fifos: dict[str, st.FifoMonitor] = {}
        for f in cfg.get("fifos", []):
            h, _ = probe(dut, self.top, f["candidates"], f"FIFO {f['name']!r}")
            mon = st.FifoMonitor(f["name"], h["valid"], h["ready"], h["level"], f.get("depth"))
            self.fifos[f["name"]] = mon
            monitors.append(mon)
        self.rate = float(cfg.get("input_rate", 1.0))
        self.pacer = st.RatePause(self.source, self.in_mon, self.rate, self.in_spec.beats)
        monitors.append(self.pacer)  # after in_mon: it reads the beats moved this cycle
        self.sampler = st.CycleSampler(dut.clk, monitors)
        self.timed_out: str | None = None
        self.timed_out_ns: float | None = None
        self.sent = 0
        self.latency: int | None = None
        self.ii: float | None = None
        self.until_ns: float | None = None  #: end the run at this time (the waveform pass)
        self.stopped = False

    async def reset(self) -> None:
        self.dut.rst.value = 1
        self.dut.s_axis_tvalid.value = 0
        self.dut.m_axis_tready.value = 0
        await ClockCycles(self.dut.clk, RESET_CYCLES)
        await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def _phase(self, frames: range, label: str) -> bool:
        """Send ``frames`` and wait until their outputs are all received, or until the
        phase times out or no monitored stream moves for ``stall_cycles``."""
        start = self.out_mon.frames
        target = start + len(frames)
        # every stage's frames too: a stage's last rows may leave after the network's output
        # is complete (a pool dropping the last row), and they must still be checked
        targets = [(m, m.frames + len(frames)) for m in self.tap_monitors]
        stall = int(self.cfg["stall_cycles"])
        sampler = self.sampler
        sampler.last_move = sampler.cycle
        done = sampler.when(
            lambda: self.out_mon.frames >= target and all(m.frames >= t for m, t in targets)
        )
        stuck = sampler.when(lambda: sampler.cycle - sampler.last_move > stall)
        self.sent += len(frames)
        for k in frames:
            self.source.send_nowait(AxiStreamFrame(_frame_bytes(self.inputs[k], self.in_spec)))
        timeout = int(self.cfg["timeout_cycles"])
        waits = [done.wait(), stuck.wait(), ClockCycles(self.dut.clk, timeout)]
        if self.until_ns is not None:
            waits.append(Timer(max(self.until_ns - st.now_ns(), 1.0), unit="ns"))
        await First(*waits)
        await ClockCycles(self.dut.clk, 2)  # a beat too many would show now
        if sampler.error is not None:
            raise RuntimeError(f"{label}: the monitors failed: {sampler.error}")
        if done.is_set():
            return True
        got = f"{self.out_mon.frames - start} of {len(frames)} output frames"
        if not stuck.is_set() and self.until_ns is not None and st.now_ns() >= self.until_ns:
            self.stopped = True
            return False
        self.timed_out_ns = st.now_ns()
        if stuck.is_set():
            self.timed_out = f"{label}: {got}, then no stream moved for {stall} cycles"
        else:
            self.timed_out = f"{label}: {got} after {timeout} cycles"
        self.log.error("timed out in %s", self.timed_out)
        return False

    async def run(self, seed: int) -> None:
        Clock(self.dut.clk, PERIOD_NS, unit="ns").start()
        await self.reset()
        self.sampler.start()
        self.ready.start()

        # phase 1: random input gaps and output back-pressure
        self.source.set_pause_generator(
            st.pause_generator(random.Random(2 * seed + 1), float(self.cfg["source_pause"]))
        )
        self.ready.set_pause_generator(
            st.pause_generator(random.Random(2 * seed + 2), float(self.cfg["sink_pause"]))
        )
        ok = await self._phase(range(self.n), "phase 1 (random back-pressure)")

        # phase 2: input always valid, output always ready
        if ok and self.m:
            self.source.clear_pause_generator()
            self.source.pause = False
            self.ready.clear_pause_generator()
            await ClockCycles(self.dut.clk, 8)
            for mon in self.fifos.values():
                mon.active = True
            if self.rate < 1:
                self.pacer.base = self.in_mon.beats
                self.pacer.active = True
            ok = await self._phase(range(self.m), "phase 2 (free running)")
            self.pacer.active = False
            for mon in self.fifos.values():
                mon.active = False
            if ok:
                n = self.n
                self.latency = self.out_mon.first_cycles[n] - self.in_mon.first_cycles[n]
                ends = self.out_mon.end_cycles[n:]
                if len(ends) >= 2:
                    k = max(1, (len(ends) - 1) // 2)
                    self.ii = (ends[-1] - ends[-1 - k]) / k

    def first_bad_ns(self) -> float | None:
        """The simulation time of the first bad beat (a stage's or the output's), else of
        a ``tlast`` error, else of a timeout; None when nothing went wrong."""
        times = [sb.first_ns for sb in [*self.taps.values(), self.output]]
        times.append(self.out_mon.first_last_ns)
        times = [t for t in times if t is not None]
        if times:
            return min(times)
        return self.timed_out_ns

    def figures(self) -> dict:
        """What the run measured (counts, cycles, latency, II, FIFO levels, the time of the
        first bad beat); not whether it passed, which is the cocotb test's verdict."""
        frames = self.sent
        out = self.output.summary(frames)
        out["tlast_errors"] = self.out_mon.last_errors
        out["tlast_frames"] = self.out_mon.last_frames
        stages = {}
        first_bad = None
        for name, sb in self.taps.items():
            s = sb.summary(frames)
            s["tap"] = self.tap_docs[name].get("tap")
            s["layers"] = list(self.tap_docs[name].get("layers", []))
            s["instance"] = self.tap_paths[name]
            stages[name] = s
            if first_bad is None and (s["mismatched_frames"] or s["missing_frames"]):
                first_bad = name
        return {
            "frames": self.n,
            "perf_frames": self.m,
            "mismatches": out["mismatched_elements"],
            "mismatched_frames": out["mismatched_frames"],
            "output": out,
            "stages": stages,
            "first_bad_stage": first_bad,
            "first_bad_layer": stages[first_bad]["tap"] if first_bad else None,
            "first_bad_ns": self.first_bad_ns(),
            "latency": self.latency,
            "ii": self.ii,
            "cycles": self.sampler.cycle,
            "timed_out": self.timed_out,
            "input_rate": self.rate,
            "fifo_full_cycles": {k: m.full_cycles for k, m in self.fifos.items()},
            "fifo_levels": {k: m.figures() for k, m in self.fifos.items()},
        }

    def failures(self) -> list[str]:
        """Every check the run failed, one line each: the monitored stages in pipeline
        order, then the output (its data, ``tlast``, missing frames), then timing against
        the configuration's ``expect``."""
        out = []
        frames = self.sent
        for name, sb in self.taps.items():
            what = f"stage {name!r} (layer {self.tap_docs[name].get('tap')!r})"
            if sb.first_failure is not None:
                out.append(f"{what}: {sb.first_failure}")
            elif sb.received < frames and not self.stopped:
                out.append(f"{what}: {frames - sb.received} of {frames} frames missing")
        if self.output.first_failure is not None:
            out.append(f"output: {self.output.first_failure}")
        if self.out_mon.first_last_error is not None:
            out.append(f"output: {self.out_mon.first_last_error}")
        if self.stopped:
            out.append(f"stopped at {self.until_ns:g} ns (+codesign_until_ns)")
            return out
        if self.output.received < frames:
            out.append(f"output: {frames - self.output.received} of {frames} frames missing")
        if self.timed_out is not None:
            out.append(f"timed out in {self.timed_out} at {self.timed_out_ns:g} ns")
        elif self.m and self.latency is None:
            out.append("phase 2 measured no latency")
        elif self.m >= 2 and (self.ii is None or self.ii <= 0):
            out.append(f"phase 2 measured no initiation interval (ii={self.ii})")
        if self.latency is not None and self.latency <= 0:
            out.append(f"phase 2 measured latency {self.latency}, must be positive")
        expect = self.cfg.get("expect") or {}
        for what, got in (("latency", self.latency), ("ii", self.ii)):
            want = expect.get(what)
            if want is not None and got is not None and got != want:
                unit = "cycles" if what == "latency" else "cycles/frame"
                out.append(
                    f"phase 2 measured {what} {got:g} {unit}, the cycle simulator predicts "
                    f"{want:g} (regression.json 'expect')"
                )
        for name, mon in self.fifos.items():
            if mon.overflow is not None:
                out.append(f"FIFO {name!r}: {mon.overflow}")
        return out


def _config() -> tuple[dict, Path]:
    arg = cocotb.plusargs.get("codesign_bench")
    path = (
        Path(arg) if isinstance(arg, str) and arg else Path(__file__).with_name("regression.json")
    )
    if not path.is_file():
        raise RuntimeError(
            f"the bench's configuration {path} does not exist (pass +codesign_bench=<path>)"
        )
    return json.loads(path.read_text()), path.parent


def _plusarg(name: str, default):
    v = cocotb.plusargs.get(name)
    return default if v is None or isinstance(v, bool) or v == "" else v


@cocotb.test()
async def run_bench(dut) -> None:
    """Phase 1 and phase 2 on the design; the figures go to ``figures.json`` (or
    ``+codesign_figures``), then the test fails by assertion on the first check that failed
    (in pipeline order), naming the rest."""
    cfg, base = _config()
    seed = int(_plusarg("codesign_seed", cfg["seed"]))
    log = logging.getLogger("cocotb.bench")
    log.info(
        "regression of %s: %d frames, seed %d (rerun: python3 run_regression.py --seed %d, "
        "or make SEED=%d)",
        cfg["top"],
        len(st.read_vectors(base / cfg.get("vectors", "vectors") / "input.bin")),
        seed,
        seed,
        seed,
    )
    bench = Bench(dut, cfg, base)
    until = _plusarg("codesign_until_ns", None)
    bench.until_ns = None if until is None else float(until)
    await bench.run(seed)
    figures = bench.figures()
    figures["seed"] = seed
    failed = bench.failures()
    figures["failures"] = failed
    target = Path(_plusarg("codesign_figures", "figures.json"))
    part = target.with_name(target.name + ".part")
    part.write_text(json.dumps(figures, indent=1))
    part.replace(target)
    log.info(
        "failed checks=%d output mismatches=%d first bad stage=%s first bad beat at %s ns "
        "latency=%s ii=%s cycles=%d",
        len(failed),
        figures["mismatches"],
        figures["first_bad_stage"],
        figures["first_bad_ns"],
        figures["latency"],
        figures["ii"],
        figures["cycles"],
    )
    more = f" (and {len(failed) - 1} more: {'; '.join(failed[1:])})" if len(failed) > 1 else ""
    assert not failed, f"{failed[0]}{more}"
