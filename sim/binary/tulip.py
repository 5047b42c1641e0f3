"""Cycle model of the TULIP PE array (:mod:`hdl.binary.tulip`) running a mapped network.

Per frame the array takes the input vector in ``⌈K₀ / in_width⌉`` beats (one per cycle when
the input is valid), runs every layer's schedule (one schedule step per cycle, layer after
layer), and sends the last layer's outputs one element per beat (one per cycle when the
output is ready). The phases do not overlap, so with the input always valid and the output
always ready:

- latency (first input beat taken → first output beat sent) = ``in_beats + Σ steps``;
- initiation interval (between frames) = ``in_beats + Σ steps + out_beats``.

``cycles_per_classification`` is that interval; the throughput at a clock ``f`` is
``f / ii`` classifications per second.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.binary.tulip import TulipProgram
from models.hwconfig import ConfigError

__all__ = ["TulipTiming", "check_in_width", "timing"]


@dataclass(frozen=True)
class TulipTiming:
    """Cycle counts of one frame on the array."""

    in_beats: int
    layer_steps: tuple[tuple[str, int], ...]  #: (layer, cycles) in order
    out_beats: int

    @property
    def steps(self) -> int:
        return sum(c for _, c in self.layer_steps)

    @property
    def latency(self) -> int:
        return self.in_beats + self.steps

    @property
    def ii(self) -> int:
        return self.in_beats + self.steps + self.out_beats

    @property
    def cycles_per_classification(self) -> int:
        return self.ii

    def to_dict(self) -> dict:
        return {
            "in_beats": self.in_beats,
            "layers": {name: c for name, c in self.layer_steps},
            "compute_cycles": self.steps,
            "out_beats": self.out_beats,
            "latency": self.latency,
            "ii": self.ii,
        }


def check_in_width(program: TulipProgram, in_width: int) -> None:
    """Raise :class:`ConfigError` unless ``in_width`` input bits per beat divide the
    network's input."""
    if not isinstance(in_width, int) or isinstance(in_width, bool) or in_width < 1:
        raise ConfigError(f"TULIP in_width must be a positive int, not {in_width!r}")
    if program.input_bits % in_width:
        raise ConfigError(
            f"TULIP in_width must divide the {program.input_bits} input bits of "
            f"{program.name!r}, not {in_width}"
        )


def timing(program: TulipProgram, in_width: int = 16) -> TulipTiming:
    """The cycle counts of ``program`` with ``in_width`` input bits per beat."""
    check_in_width(program, in_width)
    return TulipTiming(
        in_beats=program.input_bits // in_width,
        layer_steps=tuple((s.name, s.steps) for s in program.layers),
        out_beats=program.outputs,
    )
