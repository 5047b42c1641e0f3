"""Whole networks pruned to 2:8 and built with sparse MVAUs, proven in cocotb through
``codesign.verify``: 0 mismatches at every stage tap, under random back-pressure; the
measured latency and II equal to ``codesign.simulate``'s prediction; the II the closed
form's, which is the dense design's at the same folding (a sparse MVAU takes the dense
cycles).

jet_tagger: every layer 2:8 (fc4's SIMD chosen by the folding among multiples of 8).
cnv_tiny: conv2 (8 channels a tap) and the fc after the flatten (groups in stream order) 2:8,
conv1 dense (9 columns).
"""

from __future__ import annotations

import pytest
from codesign.models.compress.sparsity import prune_nm
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
from codesign.models.loader import load

from codesign.flows import simulate, verify

pytestmark = pytest.mark.simulator

CASES = {
    "jet_tagger": (("fc1", "fc2", "fc3", "fc4"), 100),
    "cnv_tiny": (("conv2", "fc"), 4),
}


def _designs(name: str) -> tuple[Design, Design]:
    """The pruned network with sparse MVAUs at its default design's folding (SIMD raised to
    a multiple of 8 where it is not), and the dense MVAUs at the same folding."""
    layers, _ = CASES[name]
    net = prune_nm(load(name), 2, 8, layers=layers)
    default = Design(net)
    fold = {}
    for s in default.stages:
        c = default.config[s.name]
        up = [v for v in s.simd_choices() if v >= c.simd and v % 8 == 0]
        fold[s.name] = (c.pe, up[0] if s.name in layers else c.simd)
    sparse = Design(
        net,
        HardwareConfig(
            {k: StageConfig(pe=p, simd=q, sparsity="2:8" if k in layers else None)
             for k, (p, q) in fold.items()}
        ),
    )  # fmt: skip
    dense = Design(
        net, HardwareConfig({k: StageConfig(pe=p, simd=q) for k, (p, q) in fold.items()})
    )
    return sparse, dense


@pytest.mark.parametrize("name", ["jet_tagger", pytest.param("cnv_tiny", marks=pytest.mark.slow)])
def test_pruned_network_on_verilator(name, tmp_path):
    d, dense = _designs(name)
    layers, frames = CASES[name]
    for la in layers:
        assert d.config[la].sparsity == (2, 8) and d.config[la].simd % 8 == 0
        assert "select" in d.pipeline(la).head
    assert d.ideal_ii == dense.ideal_ii
    r = verify(d, tmp_path / "hdl", vectors=frames, sim="verilator", seed=1)
    assert r["frames"] == frames
    assert r["passed"], (r["mismatches"], r["first_bad_stage"], r["first_bad_layer"])
    assert r["mismatches"] == 0
    assert list(r["stages"]) == [s.name for s in d.stages]
    assert r["ii"] == d.ideal_ii
    assert (r["latency"], r["ii"]) == (r["predicted_latency"], r["predicted_ii"])
    # the prediction verify reports is the simulator's under the bench's conditions
    p = simulate(d, frames=r["perf_frames"], timeline_frames=0)
    assert (p.latency, p.ii) == (r["latency"], r["ii"])
