"""Cycle-approximate simulator of the streaming dataflow pipelines, event-driven on simpy.

Every hardware unit of a :class:`~codesign.models.hwconfig.Design` (sliding-window generator,
deformable gather, MVAU, VVAU, activation, pool reducer, global pool, width converter, FIFO,
fork, add) is a simpy process that moves *stream beats*, never clock cycles, over the
design's stage graph: a unit computes when its next beat can move from the handshake rules
of the generated RTL (one output register per unit, a FIFO's ``depth`` slots, the MVAU's
input-vector buffer, the line buffer's row releases, a fork releasing a beat once both
outputs took it, an add taking a beat from both inputs at once), declares it on the link to
its neighbour, and the link fires the transfer at ``max(valid, ready)``. Back-pressure is a
bounded FIFO refusing a beat until a slot frees, exactly as the RTL's ``ready`` does.

Each frame's events depend only on events of the same or earlier frames, and the rules do
not change from frame to frame, so once every beat of ``horizon`` consecutive frames moved
exactly ``P`` cycles after the same beat of the frame before, the pipeline is periodic with
period ``P`` from then on: :func:`simulate` then extends the run frame by frame instead of
beat by beat (exact, not an approximation). A deformable stage (its gather unit,
:class:`~codesign.sim.dataflow.units.Deform`) breaks that premise: each tap's fetch cycles
come from that frame's offsets, so :func:`simulate` takes the frames (or their per-tap fetch
cycles, :func:`fetch_cycles`) and simulates every frame. :func:`analytic` is the closed form
for design-space exploration, vectorised over many configurations; it refuses a deformable
stage.

Shared facts (cycles per frame, beats per transfer, line-buffer rows, FIFO depths) come from
:mod:`codesign.models.hwconfig` and :mod:`codesign.models.linebuffer`, which the RTL generator
reads too.
"""

from .analytic import analytic, random_foldings
from .pipeline import beat_times, fetch_cycles, pipeline_rate, simulate, size_fifos
from .units import SimulationError

__all__ = [
    "SimulationError",
    "analytic",
    "beat_times",
    "fetch_cycles",
    "pipeline_rate",
    "random_foldings",
    "simulate",
    "size_fifos",
]
