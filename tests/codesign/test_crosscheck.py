"""The simulator's predictions against the RTL, measured in cocotb (Icarus: it builds in a
second, where Verilator takes 15-60 s per design).

- 20 randomly drawn valid designs (seeded): zoo networks with random PE/SIMD foldings, random
  FIFO depths (1 — the single-register FIFO — up to two frames, so back-pressure happens) and
  random input rates. Predicted latency and II equal to the measured ones, and the
  predicted FIFO-full cycles equal to the measured ones.
- FIFO sizing (:func:`codesign.sim.dataflow.size_fifos`): at the computed depths the RTL runs at the
  ideal II with 0 FIFO-full cycles; one entry less on any FIFO whose depth matters shows
  the stall in the RTL.

(Every zoo network's default design is checked the same way in tests/hdl/test_zoo_rtl.py.)
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from codesign.hdl.tools import icarus_available
from codesign.hdl.verify import verify
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig, stage_io
from codesign.models.loader import load
from codesign.sim.dataflow import pipeline_rate, simulate, size_fifos

from codesign.flows import generate

pytestmark = pytest.mark.simulator

#: frames per run: phase 1 (random back-pressure, checked bit for bit) and phase 2 (timed)
FRAMES = 4
#: designs slower than this (cycles per frame at their input rate) are redrawn: they only
#: cost simulation time (a tfc_w1a1 fed one beat in 32 cycles took a quarter of the run)
MAX_II = 12_000
#: designs with more multipliers (Σ PE·SIMD) are redrawn: several times what fits an ECP5,
#: and the bundled Yosys runs out of memory exporting the widest
MAX_MULTIPLIERS = 512


@pytest.fixture(autouse=True)
def _icarus():
    if not icarus_available():
        pytest.skip("Icarus Verilog (Debian package iverilog) is not installed")


def _random_design(rng: random.Random) -> tuple[Design, float]:
    """A valid design of a zoo network with a random folding, FIFO depths and input rate."""
    net = load(rng.choice(["jet_tagger", "tfc_w1a1", "tfc_w2a2", "cnv_tiny"]))
    base = Design(net)
    while True:
        stages = {}
        for k, s in enumerate(base.stages):
            pe = rng.choice(s.pe_choices())
            simd = rng.choice(s.simd_choices())
            depth = None
            if k and rng.random() < 0.6:
                beats = s.input.size // stage_io(s, StageConfig(pe, simd))[0]
                depth = rng.randint(1, max(2, 2 * beats))
            stages[s.name] = StageConfig(pe=pe, simd=simd, fifo_depth=depth)
        d = Design(net, HardwareConfig(stages))
        if sum(c.pe * c.simd for c in stages.values()) > MAX_MULTIPLIERS:
            continue
        rate = rng.choice([1.0, pipeline_rate(d), round(rng.uniform(0.05, 1.0), 3)])
        if d.ideal_ii <= MAX_II * rate:
            return d, rate


def _measure(d: Design, folder, rate: float) -> dict:
    generate(d, folder)
    r = verify(d, folder, vectors=FRAMES, sim="icarus", seed=3, perf_frames=FRAMES, input_rate=rate)
    assert r["passed"], (r["mismatches"], r["first_bad_stage"], r["timed_out"])
    return r


def _close(predicted: float, measured: float) -> bool:
    """The cycle model is exact: a prediction equals the measurement."""
    return predicted == measured


DRAWS = [_random_design(random.Random(1000 + k)) for k in range(20)]


#: Draws run by default; the rest are ``slow`` (``-m slow``): CI's 35 minutes hold a quarter
#: of the 20 on Icarus beside everything else. Draws 3, 5 and 8 (cnv_tiny at full rate, none
#: stalled) took 100, 95 and 69 s of a loaded run, and draws 2 and 4 took 108 and 61 s of a
#: 2,663 s run (2026-12-07) that CI's 35 minutes no longer held; the five others still cover
#: the cases below.
DEFAULT_DRAWS = [0, 1, 6, 7, 9]


@pytest.mark.parametrize(
    ("d", "rate"),
    [
        pytest.param(d, r, id=f"draw{k}", marks=() if k in DEFAULT_DRAWS else pytest.mark.slow)
        for k, (d, r) in enumerate(DRAWS)
    ],
)
def test_prediction_matches_rtl_on_random_designs(d, rate, tmp_path):
    r = _measure(d, tmp_path, rate)
    p = simulate(d, frames=FRAMES, input_rate=rate)
    folding = {s.name: (d.config[s.name].pe, d.config[s.name].simd) for s in d.stages}
    assert _close(p.latency, r["latency"]), (p.latency, r["latency"], folding)
    assert _close(p.ii, r["ii"]), (p.ii, r["ii"], folding)
    assert p.fifo_full_cycles() == r["fifo_full_cycles"]


def test_random_draws_cover_the_interesting_cases():
    """The draws CI runs (:data:`DEFAULT_DRAWS`) are not all easy: four networks,
    some with back-pressure, some a single-register FIFO, some a paced input, some
    convolutions."""
    draws = [DRAWS[k] for k in DEFAULT_DRAWS]
    assert len({d.network.name for d, _ in draws}) >= 4
    assert any(r < 1 for _, r in draws) and any(r == 1 for _, r in draws)
    assert any(d.config[s.name].fifo_depth == 1 for d, _ in draws for s in d.stages)
    stalled = [d for d, r in draws if any(x.blocked for x in simulate(d, input_rate=r).stages)]
    assert len(stalled) >= 2  # 2 of these 5 have a stage blocked by a full FIFO


@pytest.fixture(scope="module")
def sized():
    """tfc_w1a1 with its FIFOs sized for the pipeline's own pace, at the folding that was its
    default under the former budget of 156 PE·SIMD (II 448, input at 1/8 beat per cycle;
    today's default takes a beat every cycle, where no FIFO depth matters)."""
    folding = {"fc0": (8, 14), "fc1": (4, 4), "fc2": (4, 4), "fc3": (1, 2)}
    config = HardwareConfig({k: StageConfig(pe=p, simd=s) for k, (p, s) in folding.items()})
    d = size_fifos(Design(load("tfc_w1a1"), config))
    return d, pipeline_rate(d)


def test_sized_fifos_never_fill_in_rtl(sized, tmp_path):
    d, rate = sized
    r = _measure(d, tmp_path, rate)
    assert r["ii"] == d.ideal_ii
    assert set(r["fifo_full_cycles"].values()) == {0}, r["fifo_full_cycles"]


def _one_less(d: Design) -> list[tuple[str, Design]]:
    out = []
    for s in d.stages[1:]:
        depth = d.fifo_depth(s)
        if depth > 2:  # 2 is the least a sized FIFO gets: there, depth does not matter
            stages = dict(d.config.stages)
            stages[s.name] = replace(stages[s.name], fifo_depth=depth - 1)
            out.append((s.name, Design(d.network, HardwareConfig(stages))))
    return out


def test_one_entry_less_shows_the_stall_in_rtl(sized, tmp_path):
    d, rate = sized
    cases = _one_less(d)
    assert len(cases) == 3  # every FIFO of tfc_w1a1 matters at this pace
    for name, smaller in cases:
        r = _measure(smaller, tmp_path / name, rate)
        assert r["fifo_full_cycles"][name] > 0, (name, r["fifo_full_cycles"])
        p = simulate(smaller, frames=FRAMES, input_rate=rate)
        assert p.fifo_full_cycles() == r["fifo_full_cycles"]


@pytest.mark.parametrize("seed", range(4))
def test_prediction_matches_rtl_on_random_residual_designs(seed, residual_net, tmp_path):
    """The stage graph (fork, add stage, skip FIFO, global sum pool) with random foldings,
    FIFO depths (joins at least at their deadlock-free bound) and input rates: predicted
    latency, II and every FIFO's full cycles equal the RTL's. (About 15 s each.)"""
    rng = random.Random(2000 + seed)
    base = Design(residual_net)
    stages = {}
    for s in base.stages:
        pe, simd = rng.choice(s.pe_choices()), rng.choice(s.simd_choices())
        depth = None
        if s.name != "add" and rng.random() < 0.6:
            beats = s.input.size // stage_io(s, StageConfig(pe, simd))[0]
            depth = rng.randint(1, max(2, 2 * beats))
        stages[s.name] = StageConfig(pe=pe, simd=simd, fifo_depth=depth)
    d = Design(base.network, HardwareConfig(stages))
    rate = rng.choice([1.0, pipeline_rate(d), round(rng.uniform(0.05, 1.0), 3)])
    r = _measure(d, tmp_path, rate)
    p = simulate(d, frames=FRAMES, input_rate=rate)
    assert _close(p.latency, r["latency"]), (p.latency, r["latency"], stages)
    assert _close(p.ii, r["ii"]), (p.ii, r["ii"], stages)
    assert p.fifo_full_cycles() == r["fifo_full_cycles"]
