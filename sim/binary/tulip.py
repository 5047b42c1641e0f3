"""Cycle model of the TULIP PE array (:mod:`codesign.hdl.binary.tulip`) running a mapped network.

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

from codesign.models.binary.tulip import TulipProgram, check_in_width

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


def timing(program: TulipProgram, in_width: int = 16) -> TulipTiming:
    """The cycle counts of ``program`` with ``in_width`` input bits per beat."""
    in_beats, _, out_beats = program.phases(in_width)
    return TulipTiming(
        in_beats=in_beats,
        layer_steps=tuple((s.name, s.steps) for s in program.layers),
        out_beats=out_beats,
    )
