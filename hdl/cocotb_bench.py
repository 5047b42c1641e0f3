"""The cocotb test bench of a generated dataflow design (run by
:func:`codesign.hdl.verify.run_cocotb`).

Protocol: the simulator is started with the plusarg ``+codesign_bench=<bench.json>``; that
file (keys :data:`codesign.hdl.verify.BENCH_KEYS`) names the ``manifest.json``, the stimulus
``.npz`` (``inputs``, ``expected``, ``tap__<stage>``: frames × elements in stream order)
and the results file this bench writes (JSON, see :func:`codesign.hdl.verify.run_cocotb`). Should
the
bench itself fail (a stage instance not found, ...), it writes ``{"error": "..."}`` there.

Phase 1 drives ``s_axis`` with an :class:`~cocotbext.axi.AxiStreamSource` paused at random
and back-pressures ``m_axis`` at random with an :class:`~cocotbext.axi.AxiStreamSink`
(whose ``tlast`` framing must agree with the manifest). A :class:`StreamMonitor` on
``m_axis`` feeds the output :class:`Scoreboard`, which checks every output frame; one more
monitor and scoreboard per stage check that stage's output stream (``o__payload``,
``o__valid``, ``o__ready`` of its instance, see :func:`stage_signals`) against the golden
trace of its tap layer. Unknown (X/Z) bits never match. Phase 2 sends frames again with
input always valid and output always ready, and measures latency and initiation interval
with the clock-driven :class:`CycleSampler`.

All stream observation happens at falling clock edges, half a cycle after the design and the
bench drive their signals at the rising edge, so it reads settled values on every simulator;
a handshake seen at falling edge ``k`` is the transfer at the next rising edge, and
``k`` is the cycle number reported.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, First, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource
from codesign.hdl.dataflow.stream import pack_beats, unpack_beats
from codesign.hdl.manifest import Manifest, StageSpec, StreamSpec, read_manifest

PERIOD_NS = 10
RESET_CYCLES = 4


# -- transactions and scoreboards ---------------------------------------------------------------


class StreamFrame:
    """One frame of a stream as element values (stream order): the transaction object of
    this bench. A value is an int, or None where the element had unknown (X/Z) bits. Equal
    when the values are equal."""

    def __init__(self, values, *, padding_ok: bool = True, cycle: int | None = None) -> None:
        self.values = tuple(None if v is None else int(v) for v in values)
        self.padding_ok = padding_ok
        self.cycle = cycle  #: cycle of the frame's last beat, where known

    def __eq__(self, other) -> bool:
        if not isinstance(other, StreamFrame):
            return NotImplemented
        return self.values == other.values

    def __hash__(self) -> int:
        return hash(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        head = ", ".join("x" if v is None else str(v) for v in self.values[:8])
        more = ", ..." if len(self.values) > 8 else ""
        return f"StreamFrame([{head}{more}], len={len(self.values)})"


class Scoreboard:
    """Compares received frames, in order, with expected frames (frame ``ids[k]`` of
    ``expected`` for the ``k``-th received frame) and counts the differences; an unknown
    (X/Z) element never matches."""

    def __init__(self, name: str, expected: np.ndarray, ids: list[int]) -> None:
        self.name = name
        self._expected = expected
        self._ids = ids
        self.received = 0
        self.mismatched_frames = 0
        self.mismatched_elements = 0
        self.unknown_elements = 0
        self.padding_errors = 0
        self.first_mismatch: dict | None = None

    def check(self, frame: StreamFrame) -> bool:
        k = self.received
        self.received += 1
        if not frame.padding_ok:
            self.padding_errors += 1
        self.unknown_elements += frame.values.count(None)
        if k >= len(self._ids):
            self.mismatched_frames += 1  # more frames than were sent
            if self.first_mismatch is None:
                self.first_mismatch = {"frame": None, "element": None, "extra_frame": k}
            return False
        want = StreamFrame(self._expected[self._ids[k]])
        if frame == want:
            return True
        diff = [
            e for e, (g, w) in enumerate(zip(frame.values, want.values, strict=False)) if g != w
        ]
        extra = abs(len(frame) - len(want))
        self.mismatched_frames += 1
        self.mismatched_elements += len(diff) + extra
        if self.first_mismatch is None:
            e = diff[0] if diff else min(len(frame), len(want))
            got = frame.values[e] if e < len(frame) else None
            self.first_mismatch = {
                "frame": self._ids[k],
                "received": k,
                "element": e,
                "expected": want.values[e] if e < len(want) else None,
                "got": "x" if got is None and e < len(frame) else got,
            }
            if extra:
                self.first_mismatch["length"] = {"expected": len(want), "got": len(frame)}
        return False

    def summary(self, expected_frames: int) -> dict:
        return {
            "frames_checked": min(self.received, expected_frames),
            "frames_received": self.received,
            "mismatched_frames": self.mismatched_frames,
            "mismatched_elements": self.mismatched_elements,
            "unknown_elements": self.unknown_elements,
            "missing_frames": max(0, expected_frames - self.received),
            "padding_errors": self.padding_errors,
            "first_mismatch": self.first_mismatch,
        }


# -- monitors -----------------------------------------------------------------------------------


def _high(handle) -> bool:
    return str(handle.value) == "1"


def _read(handle) -> tuple[int, int]:
    """A signal's value with unknown (X/Z) bits read as 0, and the mask of those bits."""
    v = handle.value
    try:
        # a one-bit signal's value is a Logic (no to_unsigned); int() reads 0/1 and raises
        # ValueError for X/Z, as to_unsigned does
        return (v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)), 0
    except ValueError:
        bits = str(v)  # most significant bit first
        value = int("".join("1" if b == "1" else "0" for b in bits), 2)
        unknown = int("".join("0" if b in "01" else "1" for b in bits), 2)
        return value, unknown


class _Resolved:
    """A stand-in for a signal handle whose value has X/Z bits read as 0, so that
    cocotbext-axi's sink (which converts ``tdata`` to int) survives a design that outputs
    unknown bits; the bench's own monitor reports them."""

    def __init__(self, handle) -> None:
        self._handle = handle

    @property
    def value(self):
        from cocotb.types import LogicArray

        v = self._handle.value
        if v.is_resolvable:
            return v
        return LogicArray(_read(self._handle)[0], len(v))

    def __len__(self) -> int:
        return len(self._handle)


class StreamMonitor:
    """Watches one valid/ready stream of ``spec`` and assembles its frames (``spec.beats``
    beats each), like cocotbext-axi's ``AxiStreamMonitor``: frames arrive in :attr:`queue`
    (or go to ``callback``); the first beat's and the last beat's cycles of every frame are
    kept in :attr:`first_cycles` and :attr:`end_cycles`. Sampled by a :class:`CycleSampler`.
    """

    def __init__(
        self,
        name: str,
        valid,
        ready,
        data,
        spec: StreamSpec,
        callback: Callable[[StreamFrame], None] | None = None,
        last=None,
    ) -> None:
        self.name = name
        self.valid, self.ready, self.data, self.last = valid, ready, data, last
        self.spec = spec
        self.callback = callback
        self.queue: deque[StreamFrame] = deque()
        self.first_cycles: list[int] = []
        self.end_cycles: list[int] = []
        self.beats = 0
        self.frames = 0
        self.last_errors = 0
        self._words: list[int] = []
        self._unknown: list[int] = []
        self._payload_mask = (1 << spec.payload_bits) - 1
        self.log = logging.getLogger(f"cocotb.bench.{name}")

    def sample(self, cycle: int) -> bool:
        """Take the beat of ``cycle`` if one moves; returns whether one did."""
        if not (_high(self.valid) and _high(self.ready)):
            return False
        if not self._words:
            self.first_cycles.append(cycle)
        word, unknown = _read(self.data)
        self._words.append(word)
        self._unknown.append(unknown)
        self.beats += 1
        at_end = len(self._words) == self.spec.beats
        if self.last is not None and _high(self.last) != at_end:
            self.last_errors += 1
        if at_end:
            words, unknown = self._words, self._unknown
            self._words, self._unknown = [], []
            mask = self._payload_mask
            padding_ok = all((w | u) & ~mask == 0 for w, u in zip(words, unknown, strict=True))
            values = list(unpack_beats([w & mask for w in words], *self._unpack()))
            if any(unknown):
                eb, per = self.spec.element_bits, self.spec.per_beat
                emask = (1 << eb) - 1
                flags = [(u >> (k * eb)) & emask for u in unknown for k in range(per)]
                values = [None if f else v for v, f in zip(values, flags, strict=True)]
            frame = StreamFrame(values, padding_ok=padding_ok, cycle=cycle)
            self.frames += 1
            self.end_cycles.append(cycle)
            if self.callback is not None:
                self.callback(frame)
            else:
                self.queue.append(frame)
        return True

    def _unpack(self):
        return self.spec.qtype, self.spec.per_beat


class FifoMonitor:
    """Counts the cycles in which a FIFO refuses a beat (``i.valid`` and not ``i.ready``:
    it is full) while :attr:`active`. Sampled by a :class:`CycleSampler`."""

    def __init__(self, name: str, valid, ready) -> None:
        self.name, self.valid, self.ready = name, valid, ready
        self.active = False
        self.full_cycles = 0

    def sample(self, cycle: int) -> bool:
        if self.active and _high(self.valid) and not _high(self.ready):
            self.full_cycles += 1
        return False


class RatePause:
    """Paces the input source at ``rate`` beats per cycle while :attr:`active`: beat ``n``
    of the run (counted from :attr:`base` beats of ``monitor``) is offered no earlier than
    ``offered(n)`` cycles after the run's first beat moved — each frame's beats spread
    evenly over ``ceil(beats / rate)`` cycles, as :mod:`codesign.sim.dataflow` models the source.
    Must be sampled after ``monitor`` in the same cycle."""

    def __init__(self, source, monitor: StreamMonitor, rate: float, beats: int) -> None:
        self.source, self.monitor, self.rate, self.beats = source, monitor, rate, beats
        self.active = False
        self.base = 0
        self.first: int | None = None

    def offered(self, n: int) -> int:
        f, i = divmod(n, self.beats)
        return f * math.ceil(self.beats / self.rate) + math.floor(i / self.rate)

    def sample(self, cycle: int) -> bool:
        if not self.active:
            return False
        count = self.monitor.beats - self.base
        if count == 0:
            self.source.pause = False
            return False
        if self.first is None:
            self.first = self.monitor.first_cycles[-1]  # the run's first beat
        # the source loads beat ``count`` at the next rising edge unless paused
        self.source.pause = cycle + 1 - self.first < self.offered(count)
        return False


class CycleSampler:
    """The bench's clock-driven cycle counter: at every falling edge it counts a cycle and
    has every monitor sample the handshakes of that cycle. :attr:`last_move` is the last
    cycle in which any monitored stream moved a beat."""

    def __init__(self, clock, monitors: list[StreamMonitor]) -> None:
        self.clock = clock
        self.monitors = monitors
        self.cycle = 0
        self.last_move = 0
        self.error: str | None = None
        self._watch: list[tuple[Callable[[], bool], Event]] = []
        self._task = None

    def start(self) -> None:
        self._task = cocotb.start_soon(self._run())

    def when(self, condition: Callable[[], bool]) -> Event:
        """An event set at the first sampled cycle where ``condition()`` holds (or when the
        sampler fails: see :attr:`error`)."""
        ev = Event()
        if condition() or self.error is not None:
            ev.set()
        else:
            self._watch.append((condition, ev))
        return ev

    async def _run(self) -> None:
        edge = FallingEdge(self.clock)
        try:
            while True:
                await edge
                self.cycle += 1
                moved = False
                for m in self.monitors:
                    moved |= m.sample(self.cycle)
                if moved:
                    self.last_move = self.cycle
                if self._watch:
                    for item in list(self._watch):
                        if item[0]():
                            item[1].set()
                            self._watch.remove(item)
        except Exception as e:  # reported by the bench, which the waiting phase wakes
            self.error = f"{type(e).__name__} in cycle {self.cycle}: {e}"
            for _, ev in self._watch:
                ev.set()
            self._watch.clear()


def pause_generator(rng: random.Random, p: float) -> Iterator[bool]:
    """Random pauses with probability about ``p`` per cycle, some of them long stalls (up to
    32 cycles) so that queues fill and empty."""
    while True:
        if p > 0 and rng.random() < p / 16:
            yield from [True] * rng.randint(4, 32)
        else:
            yield rng.random() < p


# -- hierarchy ----------------------------------------------------------------------------------


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MODULE = re.compile(r"^module\s+(\\\S+|\w+)\s*\((.*?)\);", re.M | re.S)


def _child(handle, name: str):
    """The child ``name`` of ``handle`` or None; a name that is not a plain identifier
    (Amaranth's ``o__payload$12``) is looked up as the Verilog escaped identifier."""
    key = name if _IDENT.fullmatch(name) else f"\\{name} "
    try:
        return handle[key]
    except (KeyError, AttributeError):
        return None


def _children(handle, instances_only: bool = False) -> list[str]:
    from cocotb.handle import HierarchyObject

    try:
        return sorted(
            h._name.split(".")[-1].lstrip("\\").strip()
            for h in handle
            if not instances_only or isinstance(h, HierarchyObject)
        )
    except Exception:  # listing is only for the error message; some simulators cannot
        return []


def module_ports(verilog: str) -> dict[str, list[str]]:
    """Module name → port names, from the module headers of a Yosys-written Verilog file
    (escaped identifiers without their backslash and space)."""
    return {
        m[1].lstrip("\\"): [p.strip().lstrip("\\").strip() for p in m[2].split(",")]
        for m in _MODULE.finditer(verilog)
    }


def _def_name(handle) -> str | None:
    """The module name of an instance, with Verilator's ``__0XX`` character escapes undone."""
    try:
        name = handle._def_name
    except Exception:  # not every simulator reports it
        return None
    return re.sub(r"__0([0-9a-fA-F]{2})", lambda m: chr(int(m[1], 16)), name).strip()


def find_stage(dut, instance: str):
    """The handle of a stage's instance: ``instance`` (a name or dotted path from the top)
    under the top module, else under its ``core`` instance (where
    :class:`~codesign.hdl.dataflow.top.AxiStreamTop` puts the pipeline). Raises ``LookupError``
    naming the paths tried."""
    parts = instance.split(".")
    tried = []
    for root_path in ([], ["core"]):
        h = dut
        for p in [*root_path, *parts]:
            h = _child(h, p)
            if h is None:
                break
        tried.append(".".join([dut._name, *root_path, *parts]))
        if h is not None:
            return h
    core = _child(dut, "core")
    found = [f"{dut._name}.{c}" for c in _children(dut, True)]
    if core is not None:
        found += [f"{dut._name}.core.{c}" for c in _children(core, True)]
    raise LookupError(
        f"stage instance {instance!r} not found; tried {', '.join(tried)}; instances: "
        f"{', '.join(found) or 'none'}"
    )


def fifo_signals(dut, stage: str, ports: dict[str, list[str]]):
    """``(valid, ready)`` handles of the input stream of the FIFO in front of ``stage``
    (instance ``fifo_<stage>`` of the pipeline), resolved as :func:`stage_signals` does."""
    inst = find_stage(dut, f"fifo_{stage}")
    module = next((n for n in (inst._path, _def_name(inst)) if n in ports), None)
    handles = []
    for member in ("valid", "ready"):
        want = f"i__{member}"
        names = [p for p in ports.get(module, ()) if re.fullmatch(rf"{want}(\$\d+)?", p)]
        h = _child(inst, names[0] if len(names) == 1 else want)
        if h is None:
            raise LookupError(
                f"FIFO of stage {stage!r}: instance {inst._path} has no signal {want!r}; "
                f"names there: {_children(inst)}"
            )
        handles.append(h)
    return tuple(handles)


def stage_signals(dut, stage: StageSpec, ports: dict[str, list[str]]):
    """``(valid, ready, payload)`` handles of the output stream of ``stage``'s instance,
    checked against the widths the manifest gives, and the path of the instance.

    The stream is the instance's ports ``o__valid``, ``o__ready``, ``o__payload``. Amaranth
    renames a port whose name a submodule's signal already took (``o__payload$12``, while
    ``o__payload`` is the inner signal), or names it after the inner signal it drives
    (``r_en``, while ``o__ready`` stays as a wire). So for each member, the port
    ``o__<member>`` or ``o__<member>$<n>`` of the instance's module in ``ports``
    (:func:`module_ports` of the Verilog) is used, else the signal ``o__<member>``.
    """
    inst = find_stage(dut, stage.instance)
    # Amaranth names every module after its instance path; the definition name that the
    # simulator reports is the fallback (Verilator's can name an inlined child's module)
    module = next((n for n in (inst._path, _def_name(inst)) if n in ports), None)
    handles = []
    for member, bits in (("valid", 1), ("ready", 1), ("payload", stage.out.payload_bits)):
        want = f"o__{member}"
        names = [p for p in ports.get(module, ()) if re.fullmatch(rf"{want}(\$\d+)?", p)]
        if len(names) > 1:
            raise LookupError(
                f"stage {stage.name!r}: module {module} of {inst._path} must have one port "
                f"{want} (or {want}$<n>), not {names}"
            )
        if not names:  # not a port (Amaranth named the port after an inner signal): the wire
            names = [want]
        h = _child(inst, names[0])
        if h is None:
            raise LookupError(
                f"stage {stage.name!r}: instance {inst._path} has no signal {names[0]!r}; "
                f"names there: {_children(inst)}"
            )
        if len(h) != bits:
            raise LookupError(
                f"stage {stage.name!r}: {inst._path}.{names[0]} is {len(h)} bits wide, but "
                f"the manifest's stream ({stage.out.per_beat} x {stage.out.type} per beat) "
                f"needs {bits}"
            )
        handles.append(h)
    return (*handles, inst._path)


# -- the bench ----------------------------------------------------------------------------------


def _frame_bytes(frame: np.ndarray, spec: StreamSpec) -> bytes:
    nbytes = spec.tdata_bits // 8
    words = pack_beats(frame, spec.qtype, spec.per_beat)
    return b"".join(w.to_bytes(nbytes, "little") for w in words)


class Bench:
    """Phase 1 (random gaps and back-pressure, checked) and phase 2 (free running,
    timed) on one design."""

    def __init__(self, dut, cfg: dict) -> None:
        self.dut = dut
        self.cfg = cfg
        self.manifest: Manifest = read_manifest(cfg["manifest"])
        data = np.load(cfg["stimulus"])
        self.inputs = data["inputs"]
        self.expected = data["expected"]
        self.n = len(self.inputs)
        self.m = int(cfg["perf_frames"])
        self.ids = list(range(self.n)) + list(range(self.m))
        self.log = logging.getLogger("cocotb.bench")
        man = self.manifest

        self.source = AxiStreamSource(
            AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst, reset_active_level=True
        )
        self.sink = AxiStreamSink(
            AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst, reset_active_level=True
        )
        for comp in (self.source, self.sink):
            comp.log.setLevel(logging.WARNING)  # not one line per frame
        self.sink.bus.tdata = _Resolved(dut.m_axis_tdata)
        self.sink_frames = 0
        self.output = Scoreboard("output", self.expected, self.ids)

        self.in_mon = StreamMonitor(
            "s_axis",
            dut.s_axis_tvalid,
            dut.s_axis_tready,
            dut.s_axis_tdata,
            man.input,
            lambda f: None,
        )
        self.out_mon = StreamMonitor(
            "m_axis",
            dut.m_axis_tvalid,
            dut.m_axis_tready,
            dut.m_axis_tdata,
            man.output,
            callback=self.output.check,
            last=dut.m_axis_tlast,
        )
        self.taps: dict[str, Scoreboard] = {}
        self.tap_monitors: list[StreamMonitor] = []
        self.tap_paths: dict[str, str] = {}
        monitors = [self.in_mon, self.out_mon]
        ports = module_ports(man.verilog.read_text()) if cfg["taps"] or cfg.get("fifos") else {}
        for name in cfg["taps"]:
            stage = man.stage(name)
            valid, ready, payload, path = stage_signals(dut, stage, ports)
            self.tap_paths[name] = path
            sb = Scoreboard(name, data[f"tap__{name}"], self.ids)
            self.taps[name] = sb
            mon = StreamMonitor(name, valid, ready, payload, stage.out, sb.check)
            self.tap_monitors.append(mon)
            monitors.append(mon)
        self.fifos: dict[str, FifoMonitor] = {}
        for name in cfg.get("fifos", []):
            valid, ready = fifo_signals(dut, name, ports)
            self.fifos[name] = FifoMonitor(name, valid, ready)
            monitors.append(self.fifos[name])
        self.rate = float(cfg.get("input_rate", 1.0))
        self.pacer = RatePause(self.source, self.in_mon, self.rate, man.input.beats)
        monitors.append(self.pacer)  # after in_mon: it reads the beats moved this cycle
        self.sampler = CycleSampler(dut.clk, monitors)
        self.timed_out: str | None = None
        self.sent = 0

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
            self.source.send_nowait(
                AxiStreamFrame(_frame_bytes(self.inputs[k], self.manifest.input))
            )
        timeout = int(self.cfg["timeout_cycles"])
        await First(done.wait(), stuck.wait(), ClockCycles(self.dut.clk, timeout))
        await ClockCycles(self.dut.clk, 2)  # let the sink take the last frame
        while not self.sink.empty():
            self.sink.recv_nowait()  # the monitor checked the data; the sink frames by tlast
            self.sink_frames += 1
        if sampler.error is not None:
            raise RuntimeError(f"{label}: the monitors failed: {sampler.error}")
        if done.is_set():
            return True
        got = f"{self.out_mon.frames - start} of {len(frames)} output frames"
        if stuck.is_set():
            self.timed_out = f"{label}: {got}, then no stream moved for {stall} cycles"
        else:
            self.timed_out = f"{label}: {got} after {timeout} cycles"
        self.log.error("timed out in %s", self.timed_out)
        return False

    async def run(self) -> dict:
        seed = int(self.cfg["seed"])
        Clock(self.dut.clk, PERIOD_NS, unit="ns").start()
        await self.reset()
        self.sampler.start()

        # phase 1: random input gaps and output back-pressure
        self.source.set_pause_generator(
            pause_generator(random.Random(2 * seed + 1), float(self.cfg["source_pause"]))
        )
        self.sink.set_pause_generator(
            pause_generator(random.Random(2 * seed + 2), float(self.cfg["sink_pause"]))
        )
        ok = await self._phase(range(self.n), "phase 1 (random back-pressure)")

        # phase 2: input always valid, output always ready
        latency = ii = None
        if ok and self.m:
            for comp in (self.source, self.sink):
                comp.clear_pause_generator()
                comp.pause = False
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
                latency = self.out_mon.first_cycles[n] - self.in_mon.first_cycles[n]
                ends = self.out_mon.end_cycles[n:]
                if len(ends) >= 2:
                    k = max(1, (len(ends) - 1) // 2)
                    ii = (ends[-1] - ends[-1 - k]) / k
        return self.results(latency, ii)

    def results(self, latency, ii) -> dict:
        frames = self.sent
        out = self.output.summary(frames)
        out["tlast_errors"] = self.out_mon.last_errors
        out["tlast_frames"] = self.sink_frames
        stages = {}
        first_bad = None
        for name, sb in self.taps.items():
            s = sb.summary(frames)
            s["tap"] = self.manifest.stage(name).tap
            s["layers"] = list(self.manifest.stage(name).layers)
            s["instance"] = self.tap_paths[name]
            stages[name] = s
            if first_bad is None and (s["mismatched_frames"] or s["missing_frames"]):
                first_bad = name
        bad_out = bool(
            out["mismatched_frames"]
            or out["missing_frames"]
            or out["padding_errors"]
            or out["tlast_errors"]
            or out["tlast_frames"] != out["frames_received"]
        )
        return {
            "passed": not bad_out and first_bad is None and self.timed_out is None,
            "frames": self.n,
            "perf_frames": self.m,
            "mismatches": out["mismatched_elements"],
            "mismatched_frames": out["mismatched_frames"],
            "output": out,
            "stages": stages,
            "first_bad_stage": first_bad,
            "first_bad_layer": stages[first_bad]["tap"] if first_bad else None,
            "latency": latency,
            "ii": ii,
            "cycles": self.sampler.cycle,
            "timed_out": self.timed_out,
            "input_rate": self.rate,
            "fifo_full_cycles": {k: m.full_cycles for k, m in self.fifos.items()},
        }


def _config() -> dict:
    arg = cocotb.plusargs.get("codesign_bench")
    if not isinstance(arg, str) or not arg:
        raise RuntimeError(
            "the bench needs the plusarg +codesign_bench=<bench.json> "
            "(codesign.hdl.verify.run_cocotb passes it)"
        )
    return json.loads(Path(arg).read_text())


@cocotb.test()
async def run_bench(dut) -> None:
    """Phase 1 and phase 2 on the design; results go to the file named in bench.json."""
    cfg = _config()
    out = Path(cfg["results"])
    try:
        bench = Bench(dut, cfg)
        results = await bench.run()
    except Exception as e:
        out.write_text(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        logging.getLogger("cocotb.bench").error("%s", traceback.format_exc())
        raise
    out.write_text(json.dumps(results, indent=1))
    logging.getLogger("cocotb.bench").info(
        "passed=%s output mismatches=%d first bad stage=%s latency=%s ii=%s cycles=%d",
        results["passed"],
        results["mismatches"],
        results["first_bad_stage"],
        results["latency"],
        results["ii"],
        results["cycles"],
    )
