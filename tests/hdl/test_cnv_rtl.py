"""FINN's CNV (codesign.models.zoo.generate.cnv) proven in cocotb on Verilator: 10 frames with
random
back-pressure, 0 mismatches at every stage tap, the measured latency and II equal to the
simulator's and the II to the closed form.

cnv_w1a1 runs at its default folding (II 16,200). cnv_w2a2 runs at FINN's folding
(docs/examples/cnv_w2a2_finn.yaml, II 115,200) with 2 throughput frames: its default
folding, bound by block RAM, has an II of 1,806,336 cycles, hours of cocotb at the ~1,300
cycles/s these designs run at.

``slow``: measured on 2 cores shared with other jobs (load ~6) on 2026-12-06: cnv_w1a1
17 min 19 s (Verilator build 624 s of 3.8 MB Verilog and 0.4 MB of hex files, run 318 s for
402,643 cycles); cnv_w2a2 26 min (Verilator build 356 s of 1.9 MB
Verilog and 1.1 MB of hex files, run 1,115 s for 1,942,855 cycles).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from codesign.hdl.verify import verify
from codesign.models.hwconfig import HardwareConfig
from codesign.models.loader import load
from codesign.models.zoo.generate import cnv
from codesign.sim.dataflow import simulate

from codesign.flows import design, generate

pytestmark = [pytest.mark.simulator, pytest.mark.slow]

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"


@pytest.mark.parametrize(
    ("name", "bits", "config", "perf_frames"),
    [("cnv_w1a1", 1, None, None), ("cnv_w2a2", 2, "cnv_w2a2_finn.yaml", 2)],
)
def test_cnv_rtl_matches_golden_and_simulator(tmp_path, name, bits, config, perf_frames):
    yml, _ = cnv(name, tmp_path, wbits=bits, abits=bits)
    hw = None
    if config is not None:
        hw = HardwareConfig.from_dict(yaml.safe_load((EXAMPLES / config).read_text()))
    d = design(load(yml), hw)
    doc = generate(d, tmp_path / "hdl")
    assert len(doc["memory_files"]) >= 7  # the large weight ROMs are hex files
    r = verify(d, tmp_path / "hdl", vectors=10, sim="verilator", seed=1, perf_frames=perf_frames)
    assert r["frames"] == 10
    assert r["passed"], (r["mismatches"], r["first_bad_stage"], r["first_bad_layer"])
    assert r["ii"] == d.ideal_ii
    p = simulate(d, frames=r["perf_frames"])
    assert (p.latency, p.ii) == (r["latency"], r["ii"])
