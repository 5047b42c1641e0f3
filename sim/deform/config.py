"""The gather engine's parameters for its cycle model (:mod:`codesign.sim.deform.gather`).

Two parameter sets are named here, each value with its source or its assumption:

- :func:`rtl_config` — the RTL gather unit (``hdl/deform``): the whole frame on chip, one tap
  per fetch group;
- :func:`codenet_config` — a CoDeNet-style engine (Huang et al., FPGA'21): a sliding line
  buffer of a few rows around the window, one bank per row (row ``y`` in slot ``y mod R``),
  a whole window gathered in parallel, samples outside the buffer fetched from external
  memory in bursts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "CODENET_ROWS",
    "GatherConfig",
    "Overlap",
    "codenet_config",
    "rtl_config",
]


class Overlap(enum.Enum):
    """Whether a window's gather and its multiply-accumulates overlap."""

    PIPELINED = "pipelined"  #: the MAC array works on window ``i`` while ``i + 1`` is gathered
    SEQUENTIAL = "sequential"  #: gather, then compute, window after window


def _check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < minimum:
        word = "positive" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {word}, not {value!r}")


@dataclass(frozen=True)
class GatherConfig:
    """Parameters of the deformable gather engine and its MAC array.

    Parameters
    ----------
    banks
        On-chip memories ``R``: image row ``y`` lives in bank ``y mod R``
        (:func:`codesign.models.deform.engine.bank_address`).
    ports
        Read ports ``P`` per bank: a bank serves ``P`` distinct words per cycle.
    taps_per_group
        Taps ``T`` fetched together (a *fetch group*): 1 is the RTL's tap-serial gather,
        ``kh·kw`` or more a whole window in parallel (CoDeNet).
    rows
        Image rows held on chip: None keeps the whole frame (as the RTL does); an int is a
        sliding line buffer of that many rows around the window's nominal rows, and every
        corner outside it costs an external-memory burst.
    burst_latency
        Cycles from a window's first external request to its first data; the window's bursts
        are issued back to back, so it is paid once per window that has any.
    bytes_per_cycle
        External-memory bandwidth in bytes per engine cycle.
    min_burst_bytes
        Bytes the memory moves for the smallest burst; a corner's pixel word (the offset
        group's channels) moves ``max(word bytes, min_burst_bytes)``.
    pe, simd
        The MAC array (both None: none, the gather unit alone, 0 cycles): a full (or
        grouped) convolution runs on an MVAU, ``⌈OC'/PE⌉·⌈kh·kw·C'/SIMD⌉`` cycles per window
        and convolution group (``C'``, ``OC'`` its channels); a depthwise one on a VVAU,
        ``⌈C/PE⌉·⌈kh·kw/SIMD⌉`` (PE channels, SIMD taps per cycle). A fold that does not
        divide takes a whole cycle.
    overlap
        :data:`Overlap.PIPELINED`: a window costs ``max(gather, MAC)``;
        :data:`Overlap.SEQUENTIAL`: ``gather + MAC``.
    """

    banks: int = 4
    ports: int = 1
    taps_per_group: int = 1
    rows: int | None = None
    burst_latency: int = 30
    bytes_per_cycle: int = 16
    min_burst_bytes: int = 64
    pe: int | None = None
    simd: int | None = None
    overlap: Overlap = Overlap.PIPELINED

    def __post_init__(self) -> None:
        for name, minimum in (
            ("banks", 1),
            ("ports", 1),
            ("taps_per_group", 1),
            ("burst_latency", 0),
            ("bytes_per_cycle", 1),
            ("min_burst_bytes", 1),
        ):
            _check_int(name, getattr(self, name), minimum)
        for name in ("rows", "pe", "simd"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        if (self.pe is None) != (self.simd is None):
            raise ValueError(
                f"pe and simd must both be ints or both None, not pe={self.pe!r} and "
                f"simd={self.simd!r}"
            )
        if not isinstance(self.overlap, Overlap):
            raise TypeError(f"overlap must be an Overlap, not {self.overlap!r}")

    def with_(self, **changes) -> GatherConfig:
        """A copy with ``changes`` (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return {
            "banks": int(self.banks),
            "ports": int(self.ports),
            "taps_per_group": int(self.taps_per_group),
            "rows": None if self.rows is None else int(self.rows),
            "burst_latency": int(self.burst_latency),
            "bytes_per_cycle": int(self.bytes_per_cycle),
            "min_burst_bytes": int(self.min_burst_bytes),
            "pe": None if self.pe is None else int(self.pe),
            "simd": None if self.simd is None else int(self.simd),
            "overlap": self.overlap.value,
        }


#: Rows of the CoDeNet-style line buffer: a 3-row kernel and one row either side, so that
#: offsets bounded to ±1 pixel never leave it (an assumption: the paper bounds offsets so that
#: a small on-chip buffer serves them; the exact row count is ours).
CODENET_ROWS = 5


def rtl_config(**changes) -> GatherConfig:
    """The RTL gather unit (``hdl/deform``) alone, as a design builds it by default: the frame
    on chip in :data:`~codesign.models.hwconfig.DEFORM_BANKS` banks of
    :data:`~codesign.models.hwconfig.DEFORM_PORTS` read ports, one tap per fetch group, no MAC
    array; ``changes`` override fields."""
    from codesign.models.hwconfig import DEFORM_BANKS, DEFORM_PORTS

    base = GatherConfig(banks=DEFORM_BANKS, ports=DEFORM_PORTS, taps_per_group=1, rows=None)
    return base.with_(**changes)


def codenet_config(**changes) -> GatherConfig:
    """A CoDeNet-style engine (see the module's doc): ``CODENET_ROWS`` buffered rows, one
    single-port bank per row, a 3×3 window (9 taps) gathered in parallel, and external bursts.

    External memory (assumptions, stated for Ultra96's LPDDR4 behind a 128-bit AXI HP port):
    16 bytes per cycle (one AXI beat per engine cycle), 64-byte minimum burst (LPDDR4 ×32,
    burst length 16), 30 cycles of latency to the first data (about 100 ns of DRAM page
    miss at a 300 MHz engine clock). MAC array: 8 PE × 9 SIMD (72 MACs; a 3×3 window's taps
    per VVAU cycle), pipelined with the gather.
    """
    base = GatherConfig(
        banks=CODENET_ROWS,
        ports=1,
        taps_per_group=9,
        rows=CODENET_ROWS,
        burst_latency=30,
        bytes_per_cycle=16,
        min_burst_bytes=64,
        pe=8,
        simd=9,
        overlap=Overlap.PIPELINED,
    )
    return base.with_(**changes)
