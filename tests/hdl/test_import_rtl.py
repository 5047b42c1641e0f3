"""Real Brevitas exports (tests/fixtures/qonnx) through the whole flow: imported, generated
as RTL and proven in cocotb against the golden model, with the measured latency and II equal
to the simulator's prediction. The residual block (fork, skip FIFO, add, global average
pool) and the depthwise-separable block with Brevitas's truncating average pools are models
nobody here wrote; builds are shared through the simulator cache."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("qonnx", reason="QONNX import needs the qonnx package")

from codesign.flows import design, generate
from codesign.importer import import_qonnx
from hdl.tools import icarus_available
from sim.dataflow import simulate

pytestmark = pytest.mark.simulator

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "qonnx"
#: (fixture, simulator, frames): every fixture on Verilator; the residual block on Icarus too
CASES = [
    ("resnet_block", "verilator", 40),
    ("resnet_block", "icarus", 6),
    ("dws_truncavgpool", "verilator", 40),
    ("dws_avgpool", "verilator", 40),
    ("cnn_bn", "verilator", 40),
    ("mlp_w4a4_pc", "verilator", 200),
    ("bnn_bipolar_in", "verilator", 200),
]


@pytest.fixture(scope="session")
def imported_designs(tmp_path_factory):
    """Each fixture imported and generated once: name -> (design, folder)."""
    out = {}
    for name in dict.fromkeys(c[0] for c in CASES):
        d = design(import_qonnx(FIX / f"{name}.onnx"))
        folder = tmp_path_factory.mktemp(f"hdl_import_{name}")
        generate(d, folder)
        out[name] = (d, folder)
    return out


@pytest.mark.parametrize(("name", "sim", "frames"), CASES)
def test_imported_rtl_matches_golden_and_simulator(imported_designs, name, sim, frames):
    from hdl.verify import verify as run

    if sim == "icarus" and not icarus_available():
        pytest.skip("Icarus Verilog (Debian package iverilog) is not installed")
    d, folder = imported_designs[name]
    r = run(d, folder, vectors=frames, sim=sim, seed=3)
    assert r["frames"] == frames
    assert r["passed"], (r["mismatches"], r["first_bad_stage"], r["first_bad_layer"])
    assert r["mismatches"] == 0
    p = simulate(d, frames=r["perf_frames"])
    assert p.latency == r["latency"], (p.latency, r["latency"])
    assert p.ii == r["ii"], (p.ii, r["ii"])
