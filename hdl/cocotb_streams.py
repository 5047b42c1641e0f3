"""Streams, golden vectors, monitors, drivers and scoreboards of the cocotb regression
bench (:mod:`codesign.hdl.cocotb_bench`), shipped with it in every regression kit as
``regression_streams.py``. Standard library, cocotb and cocotbext-axi only."""

from __future__ import annotations

import math
import random
import sys
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cocotb
from cocotb.triggers import Event, FallingEdge, RisingEdge
from cocotb.utils import get_sim_time

__all__ = [
    "VECTORS_HEADER",
    "VECTORS_MAGIC",
    "CycleSampler",
    "FifoMonitor",
    "RatePause",
    "ReadyDriver",
    "Scoreboard",
    "Stream",
    "StreamFrame",
    "StreamMonitor",
    "now_ns",
    "pause_generator",
    "read_vectors",
]

#: The first bytes of a vectors file (see :func:`read_vectors`).
VECTORS_MAGIC = b"CSVECTR1"
#: Bytes of a vectors file's header.
VECTORS_HEADER = 20
#: ``array`` type codes of the element widths a vectors file may use: bytes → (signed,
#: unsigned).
_CODES = {1: ("b", "B"), 2: ("h", "H"), 4: ("i", "I"), 8: ("q", "Q")}


# -- configuration and vectors ------------------------------------------------------------------


def read_vectors(path: str | Path) -> list[list[int]]:
    """The frames of a vectors file: ``frames`` lists of ``elements`` ints.

    Layout (little-endian): 8 bytes ``CSVECTR1``; uint32 frames; uint32 elements per
    frame; uint8 bytes per element (1, 2, 4 or 8); uint8 1 when the elements are signed
    (two's complement), else 0; 2 zero bytes; then frames × elements integers in stream
    order (the order the elements travel on the AXI stream, ``per_beat`` per beat, lowest
    lane in the lowest bits). A bipolar element is stored as its value, -1 or +1.
    """
    data = Path(path).read_bytes()
    if data[:8] != VECTORS_MAGIC or len(data) < VECTORS_HEADER:
        raise ValueError(f"{path}: not a vectors file (must start with {VECTORS_MAGIC!r})")
    frames = int.from_bytes(data[8:12], "little")
    elements = int.from_bytes(data[12:16], "little")
    width, signed = data[16], data[17]
    if width not in _CODES or signed not in (0, 1):
        raise ValueError(f"{path}: element width {width} bytes, signed {signed} not supported")
    values = array(_CODES[width][0 if signed else 1])
    body = data[VECTORS_HEADER:]
    if len(body) != frames * elements * width:
        raise ValueError(
            f"{path}: holds {len(body)} bytes of values, must hold frames × elements × width "
            f"= {frames} × {elements} × {width}"
        )
    values.frombytes(body)
    if sys.byteorder != "little":
        values.byteswap()
    flat = values.tolist()
    return [flat[k * elements : (k + 1) * elements] for k in range(frames)]


class Stream:
    """One stream of the design: ``per_beat`` elements of ``element_bits`` bits per beat
    (lane ``k`` in bits ``k·element_bits`` up), ``beats`` beats per frame; elements are
    ``signed`` two's complement, unsigned, or ``bipolar`` (bit 1 is +1, bit 0 is -1)."""

    def __init__(self, doc: dict) -> None:
        self.type = str(doc["type"])
        self.element_bits = int(doc["element_bits"])
        self.per_beat = int(doc["per_beat"])
        self.beats = int(doc["beats"])
        self.signed = bool(doc.get("signed", False))
        self.bipolar = bool(doc.get("bipolar", False))
        self.tdata_bits = doc.get("tdata_bits")
        self.payload_bits = self.element_bits * self.per_beat
        self._mask = (1 << self.element_bits) - 1

    def encode(self, v: int) -> int:
        if self.bipolar:
            return 1 if v > 0 else 0
        return v & self._mask

    def decode(self, code: int) -> int:
        if self.bipolar:
            return 1 if code & 1 else -1
        if self.signed and code >> (self.element_bits - 1):
            return code - (1 << self.element_bits)
        return code

    def pack(self, frame: Sequence[int]) -> list[int]:
        """One frame's elements (stream order) as beat words."""
        n, eb = self.per_beat, self.element_bits
        words = []
        for b in range(0, len(frame), n):
            w = 0
            for k, v in enumerate(frame[b : b + n]):
                w |= self.encode(int(v)) << (k * eb)
            words.append(w)
        return words

    def unpack(self, words: Sequence[int]) -> list[int]:
        """Beat words back to elements (stream order)."""
        eb, m = self.element_bits, self._mask
        return [self.decode((w >> (k * eb)) & m) for w in words for k in range(self.per_beat)]


def now_ns() -> float:
    return float(get_sim_time("ns"))


# -- transactions and scoreboards ---------------------------------------------------------------


class StreamFrame:
    """One frame of a stream as element values (stream order): the transaction object of
    this bench. A value is an int, or None where the element had unknown (X/Z) bits. Equal
    when the values are equal. ``beat_ns`` holds each beat's simulation time, where known."""

    def __init__(
        self,
        values,
        *,
        padding_ok: bool = True,
        cycle: int | None = None,
        beat_ns: Sequence[float] = (),
    ) -> None:
        self.values = tuple(None if v is None else int(v) for v in values)
        self.padding_ok = padding_ok
        self.cycle = cycle  #: cycle of the frame's last beat, where known
        self.beat_ns = tuple(beat_ns)

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
    difference (frame, beat, element, expected, got, time) in one line, and
    :attr:`first_ns` is the simulation time of its beat."""

    def __init__(self, name: str, expected: list, ids: list[int], per_beat: int) -> None:
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
        self.first_ns: float | None = None

    def _at(self, frame: StreamFrame, beat: int) -> str:
        if not frame.beat_ns:
            return ""
        t = frame.beat_ns[min(beat, len(frame.beat_ns) - 1)]
        if self.first_ns is None:
            self.first_ns = t
        return f" at {t:g} ns"

    def check(self, frame: StreamFrame) -> bool:
        k = self.received
        self.received += 1
        if not frame.padding_ok:
            self.padding_errors += 1
            if self.first_failure is None:
                at = self._at(frame, 0)
                self.first_failure = f"frame {k} (received {k}): nonzero tdata padding bits{at}"
        self.unknown_elements += frame.values.count(None)
        if k >= len(self._ids):
            self.mismatched_frames += 1  # more frames than were sent
            if self.first_mismatch is None:
                self.first_mismatch = {"frame": None, "element": None, "extra_frame": k}
                at = self._at(frame, 0)
                self.first_failure = f"received frame {k}, but only {len(self._ids)} were sent{at}"
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
            at = self._at(frame, beat)
            self.first_mismatch = {
                "frame": self._ids[k],
                "received": k,
                "beat": beat,
                "element": e,
                "expected": want.values[e] if e < len(want) else None,
                "got": "x" if got is None and e < len(frame) else got,
                "time_ns": self.first_ns,
            }
            if extra:
                self.first_mismatch["length"] = {"expected": len(want), "got": len(frame)}
            fm = self.first_mismatch
            self.first_failure = (
                f"frame {fm['frame']} (received {k}), beat {beat}, element {e} (lane {lane}): "
                f"expected {fm['expected']}, got {fm['got']}{at}"
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
    beats where it differs and :attr:`first_last_error` describes the first
    (:attr:`first_last_ns` its time). Sampled by a :class:`CycleSampler`.
    """

    def __init__(
        self,
        name: str,
        valid,
        ready,
        data,
        spec: Stream,
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
        self.first_last_ns: float | None = None
        self._words: list[int] = []
        self._unknown: list[int] = []
        self._ns: list[float] = []
        self._payload_mask = (1 << spec.payload_bits) - 1

    def sample(self, cycle: int) -> bool:
        """Take the beat of ``cycle`` if one moves; returns whether one did."""
        if not (_high(self.valid) and _high(self.ready)):
            return False
        if not self._words:
            self.first_cycles.append(cycle)
        word, unknown = _read(self.data)
        self._words.append(word)
        self._unknown.append(unknown)
        self._ns.append(now_ns())
        self.beats += 1
        at_end = len(self._words) == self.spec.beats
        if self.last is not None:
            last = _high(self.last)
            self.last_frames += last
            if last != at_end:
                self.last_errors += 1
                if self.first_last_error is None:
                    self.first_last_ns = self._ns[-1]
                    self.first_last_error = (
                        f"frame {self.frames}, beat {len(self._words) - 1}: tlast is "
                        f"{int(last)}, must be {int(at_end)} (frames of {self.spec.beats} "
                        f"beats) at {self.first_last_ns:g} ns"
                    )
        if at_end:
            words, unknown, ns = self._words, self._unknown, self._ns
            self._words, self._unknown, self._ns = [], [], []
            mask = self._payload_mask
            padding_ok = all((w | u) & ~mask == 0 for w, u in zip(words, unknown, strict=True))
            values: list = self.spec.unpack([w & mask for w in words])
            if any(unknown):
                eb, per = self.spec.element_bits, self.spec.per_beat
                emask = (1 << eb) - 1
                flags = [(u >> (k * eb)) & emask for u in unknown for k in range(per)]
                values = [None if f else v for v, f in zip(values, flags, strict=True)]
            frame = StreamFrame(values, padding_ok=padding_ok, cycle=cycle, beat_ns=ns)
            self.frames += 1
            self.end_cycles.append(cycle)
            if self.callback is not None:
                self.callback(frame)
            else:
                self.queue.append(frame)
        return True


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
