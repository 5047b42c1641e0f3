"""Real Brevitas exports (tests/fixtures/qonnx) through the whole flow: imported, generated
as RTL and proven in cocotb against the golden model, with the measured latency and II equal
to the simulator's prediction. The residual block (fork, skip FIFO, add, global average
pool) and the depthwise-separable block with Brevitas's truncating average pools are models
nobody here wrote; builds are shared through the simulator cache."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("qonnx", reason="QONNX import needs the qonnx package")

from codesign.hdl.tools import icarus_available
from codesign.sim.dataflow import simulate

from codesign.flows import design, generate
from codesign.importer import import_qonnx

pytestmark = pytest.mark.simulator

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "qonnx"
#: (fixture, simulator, frames): every fixture on Verilator; the residual block on Icarus
#: too. All are `slow` (each is a Verilator
#: build of 1-3 minutes on a loaded 2-core machine: all seven took 14.8 minutes there, every
#: one passing; the truncating average pools took 111 s of a 2,230 s default run on
#: 2026-12-07, over CI's 35 minutes; the residual block's 145 s went the same way when the
#: regression kit's tests came in: the default run proves residual RTL on resnet_tiny, and the
#: import's exactness on every fixture in tests/codesign/test_import.py).
SLOW = pytest.mark.slow
CASES = [
    pytest.param("resnet_block", "verilator", 40, marks=SLOW),
    pytest.param("resnet_block", "icarus", 6, marks=SLOW),
    pytest.param("dws_truncavgpool", "verilator", 40, marks=SLOW),
    pytest.param("dws_avgpool", "verilator", 40, marks=SLOW),
    pytest.param("cnn_bn", "verilator", 40, marks=SLOW),
    pytest.param("mlp_w4a4_pc", "verilator", 200, marks=SLOW),
    pytest.param("bnn_bipolar_in", "verilator", 200, marks=SLOW),
    # FINN's CNV (Brevitas bnn_pynq), II 18,432: build 207 s, run 81 s on a loaded machine
    pytest.param("cnv_w1a1", "verilator", 10, marks=SLOW),
    # at FINN's published folding (II 115,200): build 78 s, run 222 s
    pytest.param("cnv_w2a2", "verilator", 10, marks=SLOW),
]
#: Hardware configs of the cases that do not use the default folding.
CONFIGS = {"cnv_w2a2": FIX.parents[2] / "docs" / "examples" / "cnv_w2a2_finn_imported.yaml"}


@pytest.fixture(scope="session")
def imported_designs(tmp_path_factory):
    """Each fixture imported and generated once, when a test first asks for it:
    ``get(name) -> (design, folder)``."""
    cache = {}

    def get(name):
        if name not in cache:
            config = CONFIGS.get(name)
            d = design(import_qonnx(FIX / f"{name}.onnx"), config)
            folder = tmp_path_factory.mktemp(f"hdl_import_{name}")
            generate(d, folder)
            cache[name] = (d, folder)
        return cache[name]

    return get


@pytest.mark.parametrize(("name", "sim", "frames"), CASES)
def test_imported_rtl_matches_golden_and_simulator(imported_designs, name, sim, frames):
    from codesign.hdl.verify import verify as run

    if sim == "icarus" and not icarus_available():
        pytest.skip("Icarus Verilog (Debian package iverilog) is not installed")
    d, folder = imported_designs(name)
    r = run(d, folder, vectors=frames, sim=sim, seed=3, perf_frames=2 if frames <= 10 else None)
    assert r["frames"] == frames
    assert r["passed"], (r["mismatches"], r["first_bad_stage"], r["first_bad_layer"])
    assert r["mismatches"] == 0
    p = simulate(d, frames=r["perf_frames"])
    assert p.latency == r["latency"], (p.latency, r["latency"])
    assert p.ii == r["ii"], (p.ii, r["ii"])
