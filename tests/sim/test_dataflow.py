"""The dataflow simulator on its own: periodic extension is exact, the analytic mode agrees
with it, FIFO sizing removes every FIFO stall, and bad arguments are refused. (Its
agreement with the RTL is tests/codesign/test_crosscheck.py and tests/hdl/test_zoo_rtl.py.)"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
from codesign.models.loader import load
from codesign.sim.dataflow import analytic, pipeline_rate, random_foldings, simulate, size_fifos


def _random(net: str, seed: int) -> Design:
    rng = random.Random(seed)
    base = Design(load(net))
    return Design(
        base.network,
        HardwareConfig(
            {
                s.name: StageConfig(
                    pe=rng.choice(s.pe_choices()),
                    simd=rng.choice(s.simd_choices()),
                    fifo_depth=rng.choice([None, 1, 2, 3, 5, 17]) if k else None,
                )
                for k, s in enumerate(base.stages)
            }
        ),
    )


DESIGNS = [Design(load("jet_tagger")), Design(load("tfc_w1a1")), Design(load("resnet_tiny"))] + [
    _random(net, seed) for net in ("jet_tagger", "tfc_w2a2") for seed in range(4)
]


#: resnet_tiny's paced run (36 s of a CI run over its 35 minutes, 2026-12-07) is ``slow``; its
#: full-rate run and every other design's paced one stay in the default run
PERIODIC_CASES = [
    pytest.param(
        d,
        rate,
        id=f"{rate}-{d.network.name}",
        marks=pytest.mark.slow if (d.network.name, rate) == ("resnet_tiny", 0.3) else (),
    )
    for rate in (1.0, 0.3)
    for d in DESIGNS
]


@pytest.mark.parametrize(("d", "rate"), PERIODIC_CASES)
def test_periodic_extension_equals_beat_by_beat(d, rate):
    frames = 120
    fast = simulate(d, frames=frames, input_rate=rate)
    full = simulate(d, frames=frames, input_rate=rate, extend=False)
    assert fast.frames_simulated < frames  # the extension did happen
    assert full.frames_simulated == frames
    assert fast.output_ends == full.output_ends
    assert fast.stages == full.stages
    assert (fast.latency, fast.ii, fast.cycles) == (full.latency, full.ii, full.cycles)


def test_default_designs_run_at_their_ideal_ii():
    for net in ("jet_tagger", "tfc_w1a1", "tfc_w2a2", "cnv_tiny", "resnet_tiny"):
        d = Design(load(net))
        r = simulate(d, frames=16)
        assert r.ii == d.ideal_ii
        assert 0 < r.latency <= r.latency_last < r.cycles
        slowest = max(r.stages, key=lambda s: s.ideal_cycles)
        assert slowest.utilisation > 0.75  # the bottleneck works (16 frames, fill included)


def test_analytic_ii_is_the_closed_form_and_latency_close_to_the_simulator():
    """II exact everywhere; the latency exact for chains of MVAUs (width converters and
    depth-2 FIFOs included), an estimate through sliding windows."""
    for net, tolerance in (
        ("jet_tagger", 0.0),
        ("tfc_w1a1", 0.0),
        ("tfc_w2a2", 0.0),
        ("cnv_tiny", 0.15),
        ("resnet_tiny", 0.15),
    ):
        d = Design(load(net))
        pe, simd = random_foldings(d, 200, seed=5)
        a = analytic(d, pe, simd)
        checked = 0
        for i in range(200):
            cfg = HardwareConfig(
                {s.name: StageConfig(int(pe[s.name][i]), int(simd[s.name][i])) for s in d.stages}
            )
            di = Design(d.network, cfg)
            assert a["ii"][i] == di.ideal_ii
            assert a["multipliers"][i] == sum(c.pe * c.simd for c in cfg.stages.values())
            if checked < (3 if net.endswith("_tiny") else 20) and di.ideal_ii < 20_000:
                p = simulate(di, frames=3)
                assert abs(a["latency"][i] - p.latency) <= tolerance * p.latency
                checked += 1
        assert checked


def test_analytic_takes_arrays_and_scalars():
    d = Design(load("tfc_w1a1"))
    a = analytic(d)
    assert a["ii"].shape == (1,) and a["ii"][0] == d.ideal_ii
    b = analytic(d, pe={"fc0": np.array([1, 2, 4])})
    assert b["ii"].shape == (3,)
    assert np.all(np.diff(b["cycles__fc0"]) < 0)


@pytest.mark.parametrize("net", ["jet_tagger", "tfc_w1a1", "cnv_tiny", "resnet_tiny"])
def test_sized_fifos_never_fill_and_one_less_does(net):
    """Every FIFO, the skip FIFO of an add stage (``<stage>__b``) included."""
    d = size_fifos(Design(load(net)))
    rate = pipeline_rate(d)
    r = simulate(d, frames=12, input_rate=rate)
    assert r.ii == d.ideal_ii
    assert set(r.fifo_full_cycles().values()) == {0}
    mattered = []
    for s, port, name in d.fifos():
        depth = d.fifo_depth(s, port)
        assert depth >= 2
        if depth == 2:
            continue
        field = "fifo_depth" if port == 0 else "fifo_depth_b"
        stages = dict(d.config.stages)
        stages[s.name] = replace(stages[s.name], **{field: depth - 1})
        smaller = simulate(Design(d.network, HardwareConfig(stages)), frames=12, input_rate=rate)
        assert smaller.fifo_full_cycles()[name] > 0
        mattered.append(name)
    assert mattered
    if net == "resnet_tiny":
        assert "add__b" in mattered  # the skip FIFO's sized depth is exact too


def _skip_depth(d: Design, depth: int | None) -> Design:
    stages = dict(d.config.stages)
    stages["add"] = replace(stages["add"], fifo_depth_b=depth)
    return Design(d.network, HardwareConfig(stages))


@pytest.mark.parametrize("seed", range(6))
def test_default_skip_fifo_never_deadlocks_and_far_less_does(seed):
    """Random foldings and FIFO depths of resnet_tiny, random input rates: at the closed-form
    default depth (codesign.models.hwconfig.Design.join_bound) the skip FIFO never deadlocks the
    fork; at a fifth of it the pipeline stops, and the simulator names the add stage."""
    from codesign.models.errors import ConfigError

    rng = random.Random(seed)
    base = Design(load("resnet_tiny"))
    stages = {}
    for s in base.stages:
        depth = rng.choice([None, 2, 3, 17]) if base.has_fifo(s) and s.name != "add" else None
        stages[s.name] = StageConfig(
            pe=rng.choice(s.pe_choices()), simd=rng.choice(s.simd_choices()), fifo_depth=depth
        )
    d = Design(base.network, HardwareConfig(stages))
    bound = d.join_bound("add", 1)
    assert d.fifo_depth("add", 1) >= bound
    r = simulate(d, frames=4, input_rate=rng.choice([1.0, 0.5, 0.1]))
    assert r.ii >= d.ideal_ii
    with pytest.raises(ConfigError, match=r"^stage 'add': the pipeline deadlocks: fifo_depth_b"):
        simulate(_skip_depth(d, max(1, bound // 5)), frames=4)


def test_result_as_table_and_json():
    r = simulate(Design(load("jet_tagger")), frames=4)
    t = r.table()
    assert list(t.index) == [s.name for s in Design(load("jet_tagger")).stages]
    assert {"busy", "starved", "blocked", "utilisation", "fifo_max"} <= set(t.columns)
    doc = json.loads(json.dumps(r.to_dict()))
    # at the default clock target, 150 MHz
    assert doc["ii"] == r.ii and doc["throughput_fps"] == pytest.approx(150e6 / r.ii)
    assert r.clock_mhz == 150 and doc["clock_mhz"] == 150
    assert {i.state for i in r.timeline} <= {"busy", "starved", "blocked"}
    assert len(r.timeline_frame()) == len(r.timeline)


def test_bad_arguments_are_refused():
    d = Design(load("jet_tagger"))
    with pytest.raises(ValueError, match=r"^frames must be an int of at least 2, not 1$"):
        simulate(d, frames=1)
    with pytest.raises(ValueError, match=r"^input_rate must be in \(0, 1\] beats per cycle"):
        simulate(d, input_rate=1.5)


def test_sim_never_imports_hdl():
    code = (
        "import sys, codesign.sim.dataflow; "
        "print(any(m.startswith('codesign.hdl') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
