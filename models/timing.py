"""Cycles in real units: a clock frequency turns cycle counts into nanoseconds and an
initiation interval into frames per second.

The simulator (:class:`codesign.sim.results.SimResult`), the flows and the reports all convert
through these functions, so a latency in ns or a frame rate is computed one way everywhere:
at the design's clock target (``HardwareConfig.clock_mhz``) and, once place and route has
run, at the achieved Fmax.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

__all__ = ["AtClock", "at_clock", "cycles_to_ns", "frames_per_s", "period_ns", "slack_ns"]


def _mhz(clock_mhz: float, name: str = "clock_mhz") -> float:
    if (
        not isinstance(clock_mhz, numbers.Real)
        or isinstance(clock_mhz, bool)
        or not math.isfinite(clock_mhz)
        or clock_mhz <= 0
    ):
        raise ValueError(f"{name} must be a finite positive number (MHz), not {clock_mhz!r}")
    return float(clock_mhz)


def _cycles(cycles: float, name: str) -> float:
    if (
        not isinstance(cycles, numbers.Real)
        or isinstance(cycles, bool)
        or not math.isfinite(cycles)
        or cycles < 0
    ):
        raise ValueError(f"{name} must be a finite number of cycles >= 0, not {cycles!r}")
    return float(cycles)


def period_ns(clock_mhz: float) -> float:
    """The clock period in ns: ``1000 / clock_mhz``."""
    return 1000.0 / _mhz(clock_mhz)


def cycles_to_ns(cycles: float, clock_mhz: float) -> float:
    """``cycles`` clock cycles at ``clock_mhz`` MHz, in ns."""
    return _cycles(cycles, "cycles") * 1000.0 / _mhz(clock_mhz)


def frames_per_s(ii: float, clock_mhz: float) -> float:
    """Frames per second of a pipeline that starts a frame every ``ii`` cycles at
    ``clock_mhz`` MHz (``inf`` for an II of 0)."""
    ii = _cycles(ii, "ii")
    return _mhz(clock_mhz) * 1e6 / ii if ii else math.inf


def slack_ns(target_mhz: float, fmax_mhz: float) -> float:
    """Setup slack of the critical path at the clock target: the target's period minus the
    critical path's delay (``1000 / fmax_mhz``); negative when the target is missed."""
    return period_ns(target_mhz) - 1000.0 / _mhz(fmax_mhz, "fmax_mhz")


@dataclass(frozen=True)
class AtClock:
    """A design's latency and throughput at one clock frequency."""

    clock_mhz: float
    latency_ns: float  #: first input beat → first output beat
    latency_last_ns: float  #: first input beat → last output beat of the first frame
    frames_per_s: float  #: in steady state, one frame per II

    def to_dict(self) -> dict:
        """JSON-able fields."""
        return asdict(self)


def at_clock(*, latency: float, latency_last: float, ii: float, clock_mhz: float) -> AtClock:
    """Latency (cycles, to the first and to the last output beat of a frame) and initiation
    interval (cycles per frame) at ``clock_mhz`` MHz.

    Raises
    ------
    ValueError
        When a cycle count is negative or not finite, or the clock is not a finite positive
        number.
    """
    return AtClock(
        clock_mhz=_mhz(clock_mhz),
        latency_ns=cycles_to_ns(latency, clock_mhz),
        latency_last_ns=cycles_to_ns(latency_last, clock_mhz),
        frames_per_s=frames_per_s(ii, clock_mhz),
    )
