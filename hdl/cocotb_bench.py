"""The cocotb test bench of a generated dataflow design (run by
:func:`codesign.hdl.verify.run_cocotb`).

Protocol: the simulator is started with the plusarg ``+codesign_bench=<bench.json>``; that
file (keys :data:`codesign.hdl.verify.BENCH_KEYS`) names the ``manifest.json``, the stimulus
``.npz`` (``inputs``, ``expected``, ``tap__<stage>``: frames × elements in stream order)
and the file where the bench writes its measured figures (JSON: counts, latency, II, FIFO
levels; see :func:`codesign.hdl.verify.run_cocotb`).

Pass or fail is the cocotb test's own: :func:`run_bench` fails by assertion when an output
beat, its ``tlast`` or a monitored stage's beat differs from the golden model (the message
names the stage, its layer, the frame, the beat and the element), when a frame is missing or
a phase times out, or when phase 2 measures no latency or II. cocotb records that in its
``results.xml``, which the runner reads. The figures file is written before the assertions,
so a failed run still reports its counts; it never says whether the run passed.

Phase 1 drives ``s_axis`` with an :class:`~cocotbext.axi.AxiStreamSource` paused at random
and back-pressures ``m_axis`` at random (:class:`ReadyDriver`). A :class:`StreamMonitor` on
``m_axis`` feeds the output :class:`Scoreboard`, which checks every output beat (and
``tlast``); one more monitor and scoreboard per stage check that stage's output stream
against the golden trace of its tap layer. Unknown (X/Z) bits never match. Phase 2 sends
frames again with input always valid and output always ready, and measures latency and
initiation interval with the clock-driven :class:`CycleSampler`, and the fill level of
every FIFO (:class:`FifoMonitor`).

Where the bench observes a stage or a FIFO is the manifest's ``probes``: for each signal, the
instance names from the top module down and the signal's name there, as Amaranth recorded
them when it wrote the Verilog (:func:`codesign.hdl.dataflow.top.to_verilog_observed`). The
bench reaches them by indexing cocotb handles (``dut["core"]["fifo_fc2"]["level"]``), public
API on every simulator, and never reads the Verilog.

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
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, FallingEdge, First, RisingEdge
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSource
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
    (X/Z) element never matches. ``per_beat`` elements travel in one beat, so a difference
    at element ``e`` is in beat ``e // per_beat``. :attr:`first_failure` describes the first
    difference (frame, beat, element, expected, got) in one line."""

    def __init__(self, name: str, expected: np.ndarray, ids: list[int], per_beat: int) -> None:
        self.name = name
        self._expected = expected
        self._ids = ids
        self._per_beat = per_beat
        self.received = 0
        self.mismatched_frames = 0
        self.mismatched_elements = 0
        self.unknown_elements = 0
        self.padding_errors = 0
        self.first_mismatch: dict | None = None
        self.first_failure: str | None = None

    def check(self, frame: StreamFrame) -> bool:
        k = self.received
        self.received += 1
        if not frame.padding_ok:
            self.padding_errors += 1
            if self.first_failure is None:
                self.first_failure = f"frame {k} (received {k}): nonzero tdata padding bits"
        self.unknown_elements += frame.values.count(None)
        if k >= len(self._ids):
            self.mismatched_frames += 1  # more frames than were sent
            if self.first_mismatch is None:
                self.first_mismatch = {"frame": None, "element": None, "extra_frame": k}
                self.first_failure = f"received frame {k}, but only {len(self._ids)} were sent"
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
            beat, lane = divmod(e, self._per_beat)
            self.first_mismatch = {
                "frame": self._ids[k],
                "received": k,
                "beat": beat,
                "element": e,
                "expected": want.values[e] if e < len(want) else None,
                "got": "x" if got is None and e < len(frame) else got,
            }
            if extra:
                self.first_mismatch["length"] = {"expected": len(want), "got": len(frame)}
            fm = self.first_mismatch
            self.first_failure = (
                f"frame {fm['frame']} (received {k}), beat {beat}, element {e} (lane {lane}): "
                f"expected {fm['expected']}, got {fm['got']}"
                + (f"; frame length {len(frame)}, expected {len(want)}" if extra else "")
                + f" ({len(diff) + extra} of {len(want)} elements differ in this frame)"
            )
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


# -- monitors and drivers -----------------------------------------------------------------------


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


class StreamMonitor:
    """Watches one valid/ready stream of ``spec`` and assembles its frames (``spec.beats``
    beats each), like cocotbext-axi's ``AxiStreamMonitor``: frames arrive in :attr:`queue`
    (or go to ``callback``); the first beat's and the last beat's cycles of every frame are
    kept in :attr:`first_cycles` and :attr:`end_cycles`. With ``last`` (a ``tlast``), every
    beat's ``tlast`` is checked against the frame length: :attr:`last_errors` counts the
    beats where it differs and :attr:`first_last_error` describes the first.
    Sampled by a :class:`CycleSampler`.
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
        self.last_frames = 0  #: beats with ``tlast`` high: frames as an AXI sink counts them
        self.first_last_error: str | None = None
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
        if self.last is not None:
            last = _high(self.last)
            self.last_frames += last
            if last != at_end:
                self.last_errors += 1
                if self.first_last_error is None:
                    self.first_last_error = (
                        f"frame {self.frames}, beat {len(self._words) - 1}: tlast is "
                        f"{int(last)}, must be {int(at_end)} (frames of {self.spec.beats} beats)"
                    )
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
    """The fill level of one stream FIFO (its ``level`` port) while :attr:`active`: the
    highest and the mean, over the cycles sampled; and the cycles in which it refused a
    beat (``i.valid`` and not ``i.ready``: it was full), the figure
    :meth:`codesign.sim.results.SimResult.fifo_full_cycles` predicts. Sampled by a
    :class:`CycleSampler`."""

    def __init__(self, name: str, valid, ready, level, depth: int | None) -> None:
        self.name, self.valid, self.ready, self.level = name, valid, ready, level
        self.depth = depth
        self.active = False
        self.full_cycles = 0
        self.max_level = 0
        self.cycles = 0
        self._level_sum = 0
        self.overflow: str | None = None  #: the first level above ``depth``, described

    def sample(self, cycle: int) -> bool:
        if self.active:
            level = _read(self.level)[0]
            self.cycles += 1
            self._level_sum += level
            self.max_level = max(self.max_level, level)
            if self.depth is not None and level > self.depth and self.overflow is None:
                self.overflow = f"level {level} in cycle {cycle}, above its depth {self.depth}"
            if _high(self.valid) and not _high(self.ready):
                self.full_cycles += 1
        return False

    def figures(self) -> dict:
        mean = self._level_sum / self.cycles if self.cycles else None
        return {
            "depth": self.depth,
            "max_level": self.max_level,
            "mean_level": None if mean is None else round(mean, 3),
            "full_cycles": self.full_cycles,
        }


class ReadyDriver:
    """Drives the ``ready`` of the stream a design outputs, as cocotbext-axi's
    ``AxiStreamSink`` does (set after every rising edge; held low in the cycles its pause
    generator yields True), but without reading the data: the bench's own
    :class:`StreamMonitor` reads it, and reports unknown (X/Z) bits, which
    ``AxiStreamSink`` cannot convert to bytes."""

    def __init__(self, clock, ready) -> None:
        self.clock, self.ready = clock, ready
        self._pause: Iterator[bool] | None = None
        self._task = None

    def set_pause_generator(self, generator: Iterator[bool] | None) -> None:
        self._pause = generator

    def clear_pause_generator(self) -> None:
        self._pause = None

    def start(self) -> None:
        self._task = cocotb.start_soon(self._run())

    async def _run(self) -> None:
        edge = RisingEdge(self.clock)
        while True:
            paused = next(self._pause) if self._pause is not None else False
            await edge
            self.ready.value = 0 if paused else 1


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


# -- probes -------------------------------------------------------------------------------------


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: The members of each kind of probe, and their names on a stream component when the manifest
#: gives no probes (a hand-written manifest): the instance's ports.
_MEMBERS = {
    "out": {"valid": "o__valid", "ready": "o__ready", "payload": "o__payload"},
    "fifo": {"valid": "i__valid", "ready": "i__ready", "level": "level"},
}


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


def _probe(dut, top: str, candidates: list[dict[str, list[str]]], what: str):
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


def _candidates(stage: StageSpec, kind: str, instance: str) -> list[dict[str, list[str]]]:
    """The manifest's probe of ``kind`` for ``stage``; without one, the ports of
    ``instance`` under the top module, then under its ``core`` (where
    :class:`~codesign.hdl.dataflow.top.AxiStreamTop` puts the pipeline)."""
    if kind in stage.probes:
        return [{m: list(p) for m, p in stage.probes[kind].items()}]
    names = _MEMBERS["out" if kind == "out" else "fifo"]
    inst = instance.split(".")
    return [{m: [*root, *inst, n] for m, n in names.items()} for root in ([], ["core"])]


def stage_signals(dut, manifest: Manifest, stage: StageSpec):
    """``(valid, ready, payload)`` handles of ``stage``'s output stream, checked against the
    widths the manifest gives, and the path of the module holding them."""
    h, used = _probe(
        dut, manifest.top, _candidates(stage, "out", stage.instance), f"stage {stage.name!r}"
    )
    for member, bits in (("valid", 1), ("ready", 1), ("payload", stage.out.payload_bits)):
        if len(h[member]) != bits:
            raise LookupError(
                f"stage {stage.name!r}: its {member} signal is {len(h[member])} bits wide, "
                f"but the manifest's stream ({stage.out.per_beat} x {stage.out.type} per "
                f"beat) needs {bits}"
            )
    where = ".".join([manifest.top, *used["payload"][:-1]])
    return h["valid"], h["ready"], h["payload"], where


def fifo_signals(dut, manifest: Manifest, stage: StageSpec, fifo: str):
    """``(valid, ready, level)`` handles of the FIFO named ``fifo`` in front of ``stage``
    (``stage.name``, or ``<stage.name>__b`` on an add stage's second input)."""
    kind = "fifo_b" if fifo == f"{stage.name}__b" else "fifo"
    h, _ = _probe(dut, manifest.top, _candidates(stage, kind, f"fifo_{fifo}"), f"FIFO {fifo!r}")
    return h["valid"], h["ready"], h["level"]


# -- the bench ----------------------------------------------------------------------------------


def _frame_bytes(frame: np.ndarray, spec: StreamSpec) -> bytes:
    nbytes = spec.tdata_bits // 8
    words = pack_beats(frame, spec.qtype, spec.per_beat)
    return b"".join(w.to_bytes(nbytes, "little") for w in words)


class Bench:
    """Phase 1 (random gaps and back-pressure, checked) and phase 2 (free running,
    timed) on one design; :meth:`failures` lists what the cocotb test asserts on."""

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
        self.source.log.setLevel(logging.WARNING)  # not one line per frame
        self.ready = ReadyDriver(dut.clk, dut.m_axis_tready)
        self.output = Scoreboard("output", self.expected, self.ids, man.output.per_beat)

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
        for name in cfg["taps"]:
            stage = man.stage(name)
            valid, ready, payload, path = stage_signals(dut, man, stage)
            self.tap_paths[name] = path
            sb = Scoreboard(name, data[f"tap__{name}"], self.ids, stage.out.per_beat)
            self.taps[name] = sb
            mon = StreamMonitor(name, valid, ready, payload, stage.out, sb.check)
            self.tap_monitors.append(mon)
            monitors.append(mon)
        self.fifos: dict[str, FifoMonitor] = {}
        for s in man.stages:
            for name in s.fifos():
                if name not in cfg.get("fifos", []):
                    continue
                depth = s.fifo_depth if name == s.name else s.fifo_depth_b
                self.fifos[name] = FifoMonitor(name, *fifo_signals(dut, man, s, name), depth)
                monitors.append(self.fifos[name])
        self.rate = float(cfg.get("input_rate", 1.0))
        self.pacer = RatePause(self.source, self.in_mon, self.rate, man.input.beats)
        monitors.append(self.pacer)  # after in_mon: it reads the beats moved this cycle
        self.sampler = CycleSampler(dut.clk, monitors)
        self.timed_out: str | None = None
        self.sent = 0
        self.latency: int | None = None
        self.ii: float | None = None

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
        await ClockCycles(self.dut.clk, 2)  # a beat too many would show now
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

    async def run(self) -> None:
        seed = int(self.cfg["seed"])
        Clock(self.dut.clk, PERIOD_NS, unit="ns").start()
        await self.reset()
        self.sampler.start()
        self.ready.start()

        # phase 1: random input gaps and output back-pressure
        self.source.set_pause_generator(
            pause_generator(random.Random(2 * seed + 1), float(self.cfg["source_pause"]))
        )
        self.ready.set_pause_generator(
            pause_generator(random.Random(2 * seed + 2), float(self.cfg["sink_pause"]))
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

    def figures(self) -> dict:
        """What the run measured (counts, cycles, latency, II, FIFO levels); not whether it
        passed, which is the cocotb test's verdict."""
        frames = self.sent
        out = self.output.summary(frames)
        out["tlast_errors"] = self.out_mon.last_errors
        out["tlast_frames"] = self.out_mon.last_frames
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
        return {
            "frames": self.n,
            "perf_frames": self.m,
            "mismatches": out["mismatched_elements"],
            "mismatched_frames": out["mismatched_frames"],
            "output": out,
            "stages": stages,
            "first_bad_stage": first_bad,
            "first_bad_layer": stages[first_bad]["tap"] if first_bad else None,
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
        order, then the output (its data, ``tlast``, missing frames), then timing."""
        out = []
        frames = self.sent
        for name, sb in self.taps.items():
            stage = self.manifest.stage(name)
            what = f"stage {name!r} (layer {stage.tap!r})"
            if sb.first_failure is not None:
                out.append(f"{what}: {sb.first_failure}")
            elif sb.received < frames:
                out.append(f"{what}: {frames - sb.received} of {frames} frames missing")
        if self.output.first_failure is not None:
            out.append(f"output: {self.output.first_failure}")
        if self.out_mon.first_last_error is not None:
            out.append(f"output: {self.out_mon.first_last_error}")
        if self.output.received < frames:
            out.append(f"output: {frames - self.output.received} of {frames} frames missing")
        if self.timed_out is not None:
            out.append(f"timed out in {self.timed_out}")
        elif self.m and self.latency is None:
            out.append("phase 2 measured no latency")
        elif self.m >= 2 and (self.ii is None or self.ii <= 0):
            out.append(f"phase 2 measured no initiation interval (ii={self.ii})")
        if self.latency is not None and self.latency <= 0:
            out.append(f"phase 2 measured latency {self.latency}, must be positive")
        for name, mon in self.fifos.items():
            if mon.overflow is not None:
                out.append(f"FIFO {name!r}: {mon.overflow}")
        return out


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
    """Phase 1 and phase 2 on the design; the figures go to the file named in bench.json,
    then the test fails by assertion on the first check that failed (in pipeline order),
    naming the rest."""
    cfg = _config()
    bench = Bench(dut, cfg)
    await bench.run()
    figures = bench.figures()
    Path(cfg["figures"]).write_text(json.dumps(figures, indent=1))
    failed = bench.failures()
    logging.getLogger("cocotb.bench").info(
        "failed checks=%d output mismatches=%d first bad stage=%s latency=%s ii=%s cycles=%d",
        len(failed),
        figures["mismatches"],
        figures["first_bad_stage"],
        figures["latency"],
        figures["ii"],
        figures["cycles"],
    )
    more = f" (and {len(failed) - 1} more: {'; '.join(failed[1:])})" if len(failed) > 1 else ""
    assert not failed, f"{failed[0]}{more}"
