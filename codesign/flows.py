"""Flows that join the layers: design, simulate, generate, verify."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from codesign.models.errors import UserError
from codesign.models.fileio import read_yaml
from codesign.models.hwconfig import ConfigError, Design, HardwareConfig
from codesign.models.ir import Network

from .summary import network_hash

if TYPE_CHECKING:
    from codesign.sim.results import SimResult

__all__ = ["FlowError", "design", "generate", "load_config", "simulate", "verify"]

#: Frames of the cocotb throughput run for ``vectors`` frames (see
#: :func:`codesign.hdl.verify.run_cocotb`),
#: and so of the simulation that predicts its latency and II.
PERF_FRAMES_MAX = 32


class FlowError(UserError, ValueError):
    """A flow's argument is out of range (frames, input rate...)."""


def load_config(path: str | Path) -> HardwareConfig:
    """A :class:`HardwareConfig` from a YAML file (see ``HardwareConfig.from_dict``), read
    with the guards of :func:`codesign.models.fileio.read_yaml` (size, aliases, duplicate
    keys); ``clock_mhz`` must be a finite positive number."""
    label = str(path)
    doc = read_yaml(path, label)
    return HardwareConfig.from_dict(doc, source=label)


def design(net: Network, config: HardwareConfig | str | Path | None = None) -> Design:
    """The network with a hardware configuration (a :class:`HardwareConfig` or the path of
    a YAML file). Every PE and SIMD the config leaves out (a stage it does not list, a field
    it does not set; everything when None) is folded automatically, balanced around the
    ones it gives; ``Design.origin`` says which is which."""
    source = None
    if isinstance(config, str | Path):
        source = str(config)
        config = load_config(config)
    try:
        return Design(net, config)
    except ConfigError as e:
        if source is None:
            raise
        raise ConfigError(f"{source}: {e}") from None


def simulate(
    d: Design,
    *,
    frames: int = 8,
    input_rate: float = 1.0,
    timeline_frames: int = 2,
    inputs=None,
    seed: int = 0,
) -> SimResult:
    """Predict how ``d`` runs with the cycle-approximate dataflow simulator.

    Parameters
    ----------
    d
        The design (:func:`design`).
    frames
        Frames streamed back to back (at least 2: the II needs two).
    input_rate
        Input beats offered per cycle, in (0, 1]; 1 means the input is always valid.
    timeline_frames
        Frames whose busy/stall intervals are recorded in the result's timeline (at least 0).
    inputs, seed
        The frames, for a design with deformable stages, whose cycles depend on each frame's
        offsets: ``inputs`` (at least ``frames`` input frames, the first ``frames`` streamed
        in order), else the ``frames`` seeded random frames the cocotb bench draws for
        ``seed`` (:func:`codesign.models.golden.random_inputs`; the first frames of any
        larger draw with that seed). Other designs do not depend on their data.

    Returns
    -------
    codesign.sim.results.SimResult
        Latency, initiation interval, per-stage busy/starved/blocked cycles and FIFO
        occupancy, and the timeline; cycle 0 is the first input beat's transfer, as in the
        cocotb measurement.

    Raises
    ------
    FlowError
        When ``frames``, ``input_rate`` or ``timeline_frames`` is out of range.
    """
    from codesign.sim.dataflow import simulate as _simulate

    for name, v, lo in (("frames", frames, 2), ("timeline_frames", timeline_frames, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise FlowError(f"{name} must be an int >= {lo}, not {v!r}")
    if (
        not isinstance(input_rate, int | float)
        or isinstance(input_rate, bool)
        or not 0 < input_rate <= 1
    ):
        raise FlowError(f"input_rate must be a number in (0, 1], not {input_rate!r}")
    if inputs is None and _deformable(d):
        inputs = _bench_frames(d, frames, seed)
    return _simulate(
        d,
        frames=frames,
        input_rate=float(input_rate),
        timeline_frames=timeline_frames,
        inputs=inputs,
    )


def _deformable(d: Design) -> bool:
    """Whether ``d``'s timing depends on its frames (it has deformable stages)."""
    from codesign.models.hwconfig import StageKind

    return any(s.kind is StageKind.DEFORM for s in d.stages)


def _bench_frames(d: Design, n: int, seed: int):
    """The first ``n`` frames the cocotb bench draws for ``seed``."""
    from codesign.models.golden import random_inputs

    if not isinstance(seed, int) or isinstance(seed, bool):
        raise FlowError(f"seed must be an int, not {seed!r}")
    return random_inputs(d.network, n, seed)


def generate(d: Design, out_dir: str | Path, *, target: str | None = None) -> dict:
    """Verilog, ``manifest.json`` and a FuseSoC ``.core`` for ``d`` in ``out_dir``; returns
    the manifest. ``target`` ``"ecp5"`` builds the multipliers as MULT18X18D instances with
    their registers (for synthesis); None, portable Verilog (what cocotb simulates)."""
    from codesign.hdl.dataflow.pipeline import generate as _generate

    return _generate(d, out_dir, network_hash(d.network), target=target)


def _prediction(d: Design, vectors: int, seed: int, frames: int) -> SimResult:
    """The simulator's prediction of the bench's throughput run: ``frames`` frames at full
    input rate, the first of the bench's ``vectors`` seeded random ones (on which a
    deformable stage's cycles depend)."""
    inputs = _bench_frames(d, vectors, seed)[:frames] if _deformable(d) else None
    return simulate(d, frames=frames, timeline_frames=0, inputs=inputs)


def testbench(
    d: Design,
    out_dir: str | Path,
    *,
    vectors: int = 32,
    seed: int = 0,
    corrupt: tuple[str, int, int] | None = None,
) -> dict:
    """Generate ``d`` into ``out_dir`` with its regression kit (:mod:`codesign.hdl.kit`):
    ``vectors`` seeded random frames and their golden outputs and stage taps, the cocotb
    bench, ``run_regression.py``, a Makefile and a FuseSoC ``sim`` target, which check the
    RTL against the golden model and its phase-2 latency and II against :func:`simulate`
    without codesign. Returns the manifest with ``kit`` (the files written, the seed, the
    expected latency and II). ``corrupt`` ``(stage, row, column)`` changes one weight of the
    RTL (a test of the kit itself)."""
    from codesign.hdl.dataflow.pipeline import generate as _generate
    from codesign.hdl.kit import write_kit
    from codesign.hdl.manifest import read_manifest
    from codesign.hdl.verify import golden_streams

    if not isinstance(vectors, int) or isinstance(vectors, bool) or vectors < 1:
        raise FlowError(f"vectors must be a positive int, not {vectors!r}")
    out_dir = Path(out_dir)
    doc = _generate(d, out_dir, network_hash(d.network), corrupt)
    manifest = read_manifest(out_dir / "manifest.json")
    x, y, taps = golden_streams(d, manifest, vectors, seed)
    perf = min(vectors, PERF_FRAMES_MAX)
    p = _prediction(d, vectors, seed, perf)
    files = write_kit(
        out_dir,
        manifest,
        x,
        y,
        taps,
        seed=seed,
        perf_frames=perf,
        expect_latency=p.latency,
        expect_ii=p.ii,
    )
    doc["kit"] = {
        "files": sorted(str(f.relative_to(out_dir)) for f in files),
        "vectors": vectors,
        "seed": seed,
        "perf_frames": perf,
        "expect_latency": p.latency,
        "expect_ii": p.ii,
    }
    return doc


def verify(
    d: Design,
    out_dir: str | Path | None = None,
    *,
    vectors: int = 200,
    sim: str = "verilator",
    seed: int = 0,
    waves: bool = False,
    build_cache: str | Path | None = None,
    prediction: SimResult | None = None,
    regenerate: bool = True,
    junit: str | Path | None = None,
) -> dict:
    """Generate ``d`` (into ``out_dir``, default ``build/<net>/hdl``) and prove it against
    the golden model in cocotb: ``vectors`` random frames with random back-pressure, then a
    throughput run. Returns mismatches (and the first differing stage and layer), measured
    latency and initiation interval, the ideal II, and the simulator's prediction of the
    throughput run as ``predicted_latency`` and ``predicted_ii``. Simulator builds are reused
    from ``build_cache`` (default :func:`codesign.hdl.verify.default_build_root`, shared by every
    run
    on this machine and keyed by the Verilog's content).

    ``prediction`` is a :func:`simulate` result to report instead of simulating the
    throughput run's frames (``min(vectors, 32)``) at full input rate — the bench's own
    frames, the first of its ``vectors`` seeded random ones, on which a deformable stage's
    cycles depend; ``regenerate=False`` reuses the design already generated in ``out_dir``.
    ``junit`` is where to write cocotb's JUnit XML (``results.xml``) of the run.
    """
    import json

    from codesign.hdl.verify import verify as _verify

    out_dir = Path(out_dir or Path("build") / d.network.name / "hdl")
    if regenerate:
        doc = generate(d, out_dir)
    else:
        doc = json.loads((out_dir / "manifest.json").read_text())
    result = _verify(
        d,
        out_dir,
        vectors=vectors,
        sim=sim,
        seed=seed,
        waves=waves,
        build_dir=build_cache,
        junit=junit,
    )
    result["verilog"] = str(out_dir / doc["verilog"])
    if prediction is None:  # under the conditions of the bench's throughput run
        frames = result.get("perf_frames") or min(vectors, PERF_FRAMES_MAX)
        prediction = _prediction(d, vectors, seed, frames)
    result["predicted_latency"] = prediction.latency
    result["predicted_ii"] = prediction.ii
    return result
