"""What the dataflow simulator reports: per-stage statistics, a busy/stall timeline and the
pipeline's latency and initiation interval, as plain data (JSON-able) and as DataFrames."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from codesign.models.timing import AtClock, at_clock

__all__ = ["Interval", "SimResult", "StageStats"]

#: Timeline states: moving beats, waiting for input, waiting for room downstream.
STATES = ("busy", "starved", "blocked")


@dataclass(frozen=True)
class StageStats:
    """One pipeline stage over the whole simulated run."""

    name: str
    kind: str  #: mvau | conv | pool | act | add
    pe: int
    simd: int
    ideal_cycles: int  #: closed-form cycles per frame
    #: (:func:`codesign.models.hwconfig.stage_cycles`)
    busy: int  #: cycles in which the stage moved a beat in or out (or computed)
    starved: int  #: idle cycles waiting for input
    blocked: int  #: cycles its output waited for room in the next FIFO (back-pressure)
    utilisation: float  #: busy / simulated cycles
    fifo_depth: int | None  #: depth of the FIFO in front of it (None where it has none)
    fifo_max: int | None  #: largest occupancy of that FIFO (beats)
    fifo_full_cycles: int | None  #: cycles that FIFO refused a beat because it was full
    first_out: int  #: cycle of the stage's first output beat
    last_out: int  #: cycle of the stage's last output beat
    #: the same for the FIFO on an add stage's second input (``fifo_<name>__b``)
    fifo_b_depth: int | None = None
    fifo_b_max: int | None = None
    fifo_b_full_cycles: int | None = None


@dataclass(frozen=True)
class Interval:
    """A run of cycles ``[start, end)`` in which ``stage`` was in ``state`` (see STATES)."""

    stage: str
    start: int
    end: int
    state: str


@dataclass(frozen=True)
class SimResult:
    """Predicted behaviour of a design for ``frames`` frames at ``input_rate``.

    Cycle numbers count from the first input beat's transfer (cycle 0), as the cocotb bench
    measures them.
    """

    network: str
    frames: int
    input_rate: float  #: input beats offered per cycle (1.0: always valid)
    clock_mhz: float
    latency: int  #: first input beat → first output beat of frame 0
    latency_last: int  #: first input beat → last output beat of frame 0
    ii: float  #: steady-state cycles between the ends of consecutive output frames
    ideal_ii: int  #: slowest stage's closed-form cycles per frame
    cycles: int  #: first input beat → last output beat of the last frame
    stages: tuple[StageStats, ...]
    timeline: tuple[Interval, ...] = ()  #: busy/stall intervals of the first frames
    #: frames simulated beat by beat; the rest followed by exact periodic extension
    #: (the pipeline's state repeated with period ``ii``), see :mod:`codesign.sim.dataflow`
    frames_simulated: int = 0
    output_ends: tuple[int, ...] = field(default=(), repr=False)  #: last beat of each frame

    def fifo_full_cycles(self) -> dict[str, int]:
        """Cycles each FIFO refused a beat, by FIFO name (the stage's, ``<stage>__b`` for an
        add stage's second input), as the cocotb bench reports them."""
        out = {}
        for s in self.stages:
            if s.fifo_full_cycles is not None:
                out[s.name] = s.fifo_full_cycles
            if s.fifo_b_full_cycles is not None:
                out[f"{s.name}__b"] = s.fifo_b_full_cycles
        return out

    def at(self, clock_mhz: float | None = None) -> AtClock:
        """Latency in ns and frames/s at ``clock_mhz`` (default :attr:`clock_mhz`, the design's
        clock target; pass an achieved Fmax for the figures of the placed design)."""
        return at_clock(
            latency=self.latency,
            latency_last=self.latency_last,
            ii=self.ii,
            clock_mhz=self.clock_mhz if clock_mhz is None else clock_mhz,
        )

    @property
    def latency_ns(self) -> float:
        """:attr:`latency` in ns at :attr:`clock_mhz`."""
        return self.at().latency_ns

    @property
    def latency_last_ns(self) -> float:
        """:attr:`latency_last` in ns at :attr:`clock_mhz`."""
        return self.at().latency_last_ns

    @property
    def frames_per_s(self) -> float:
        """Frames per second at :attr:`clock_mhz` in steady state (one frame per II)."""
        return self.at().frames_per_s

    @property
    def throughput_fps(self) -> float:
        """The same as :attr:`frames_per_s` (the older name)."""
        return self.frames_per_s

    def to_dict(self) -> dict:
        """JSON-able: every field, plus ``latency_ns``, ``latency_last_ns``, ``frames_per_s``
        (at :attr:`clock_mhz`) and ``throughput_fps`` (the same); the timeline as lists."""
        doc = asdict(self)
        doc["latency_ns"] = self.latency_ns
        doc["latency_last_ns"] = self.latency_last_ns
        doc["frames_per_s"] = self.frames_per_s
        doc["throughput_fps"] = self.throughput_fps
        doc["output_ends"] = list(self.output_ends)
        return doc

    def table(self):
        """Per-stage statistics as a :class:`pandas.DataFrame` indexed by stage name."""
        import pandas as pd

        return pd.DataFrame([asdict(s) for s in self.stages]).set_index("name")

    def timeline_frame(self):
        """The busy/stall timeline as a DataFrame (stage, start, end, state)."""
        import pandas as pd

        return pd.DataFrame(
            [asdict(t) for t in self.timeline], columns=["stage", "start", "end", "state"]
        )
