"""Whole pipelines in amaranth.sim against the golden model (small networks)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from codesign.hdl.dataflow.pipeline import Pipeline
from codesign.hdl.dataflow.simulate import run_stream
from codesign.hdl.dataflow.stream import pack_beats, to_channels_last, unpack_beats
from codesign.models.golden import golden, random_inputs
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
from codesign.models.loader import load


def small_mlp(tmp_path, binary: bool):
    rng = np.random.default_rng(7)
    if binary:
        layers = [
            {"name": "fc0", "op": "binary_dense", "weight": rng.integers(0, 2, (8, 12)).tolist()},
            {
                "name": "bn0",
                "op": "batchnorm",
                "gamma": rng.normal(0, 1, 8).tolist(),
                "beta": [0.0] * 8,
                "mean": [6.0] * 8,
                "var": [3.0] * 8,
            },
            {"name": "act0", "op": "sign", "encoding": "binary"},
            {"name": "fc1", "op": "binary_dense", "weight": rng.integers(0, 2, (4, 8)).tolist()},
        ]
        inp = {"shape": [12], "type": "binary"}
    else:
        layers = [
            {
                "name": "fc0",
                "op": "dense",
                "weight": rng.integers(-8, 8, (8, 12)).tolist(),
                "bias": rng.integers(-30, 30, 8).tolist(),
            },
            {"name": "relu0", "op": "relu"},
            {
                "name": "act0",
                "op": "requant",
                "multiplier": 3,
                "shift": 5,
                "type": "uint4",
                "rounding": "half_away",
            },
            {"name": "fc1", "op": "dense", "weight": rng.integers(-8, 8, (6, 8)).tolist()},
            {
                "name": "act1",
                "op": "multithreshold",
                "thresholds": np.sort(rng.integers(-40, 40, (6, 3)), axis=1).tolist(),
            },
            {"name": "fc2", "op": "dense", "weight": rng.integers(-3, 3, (4, 6)).tolist()},
        ]
        inp = {"shape": [12], "type": "int6"}
    path = tmp_path / "mlp.yaml"
    path.write_text(yaml.safe_dump({"format": 1, "input": inp, "layers": layers}))
    return load(path)


def check(net, config, frames=6, seed=0, **kw):
    d = Design(net, config)
    dut = Pipeline(d)
    x = random_inputs(net, frames, seed)
    xs = to_channels_last(x)
    words = [w for f in xs for w in pack_beats(f, net.input_tensor.qtype, dut.in_per_beat)]
    out_t = net.output_tensor
    n_out = frames * out_t.size // dut.out_per_beat
    got, cycles = run_stream(dut, words, n_out, seed, **kw)
    want = to_channels_last(golden(net, x))
    assert unpack_beats(got, out_t.qtype, dut.out_per_beat).reshape(frames, -1).tolist() == (
        want.tolist()
    )
    return d, cycles


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize(
    "folding", [None, {"fc0": (2, 3), "fc1": (1, 8)}, {"fc0": (8, 12), "fc1": (2, 2)}]
)
def test_mlp_pipeline_matches_golden(tmp_path, binary, folding):
    net = small_mlp(tmp_path, binary)
    config = None
    if folding is not None:
        config = HardwareConfig({k: StageConfig(pe=p, simd=s) for k, (p, s) in folding.items()})
    check(net, config)


def test_pipeline_reaches_ideal_ii(tmp_path):
    net = small_mlp(tmp_path, False)
    config = HardwareConfig(
        {
            "fc0": StageConfig(pe=2, simd=3, fifo_depth=8),
            "fc1": StageConfig(pe=2, simd=2, fifo_depth=8),
            "fc2": StageConfig(pe=1, simd=2, fifo_depth=8),
        }
    )
    frames = 24
    d, cycles = check(net, config, frames=frames, gaps=0, stall=0)
    assert d.ideal_ii == 16  # fc0: (12/3)·(8/2)
    # frames back to back, plus the pipeline's fill latency (the simulator's, exact)
    from codesign.sim.dataflow import simulate

    p = simulate(d, frames=frames)
    assert frames * d.ideal_ii <= cycles <= p.latency_last + (frames - 1) * d.ideal_ii + 2


def test_tfc_w1a1_at_finn_folding_runs_at_64_cycles_per_frame():
    """FINN's TFC folding (784→64 PE16/SIMD49, 64→64 PE8/SIMD8 twice, 64→10 PE10/SIMD8):
    the slowest layers take 64 cycles per frame, and so does the whole pipeline."""
    net = load("tfc_w1a1")
    config = HardwareConfig(
        {
            "fc0": StageConfig(pe=16, simd=49),
            "fc1": StageConfig(pe=8, simd=8),
            "fc2": StageConfig(pe=8, simd=8),
            "fc3": StageConfig(pe=10, simd=8),
        }
    )
    assert Design(net, config).ideal_ii == 64
    _, short = check(net, config, frames=4, gaps=0, stall=0)
    _, long = check(net, config, frames=12, gaps=0, stall=0)
    assert (long - short) / 8 == 64  # steady state: cycles per additional frame


def test_generated_manifest_says_where_to_observe(tmp_path):
    """Every stage's output stream and every FIFO's input and ``level`` are recorded in the
    manifest as Amaranth named them, and recording them changes nothing in the Verilog."""
    from codesign.hdl.dataflow.pipeline import build, generate, observed
    from codesign.hdl.dataflow.top import to_verilog, to_verilog_observed
    from codesign.hdl.manifest import read_manifest
    from codesign.hdl.memfiles import externalize

    d = Design(load("resnet_tiny"))  # forks, an add stage with two FIFOs
    generate(d, tmp_path, "test")
    man = read_manifest(tmp_path)
    verilog = (tmp_path / "resnet_tiny.v").read_text()
    assert verilog == externalize(to_verilog(build(d), "resnet_tiny"), "resnet_tiny")[0]
    for s in d.stages:
        probes = man.stage(s.name).probes
        ports = ("fifo", "fifo_b")[: len(s.inputs)]
        kinds = ["out"] + [k for p, k in enumerate(ports) if d.has_fifo(s, p)]
        assert sorted(probes) == sorted(kinds), s.name
        assert probes["out"]["valid"][:2] == ("core", f"stage_{s.name}")
        for kind in kinds[1:]:
            suffix = "__b" if kind == "fifo_b" else ""
            assert probes[kind]["level"] == ("core", f"fifo_{s.name}{suffix}", "level")
    with pytest.raises(ValueError, match=r"^observed signal 'x' \(.*\) has no net in the Verilog$"):
        from amaranth import Signal

        top = build(d)
        to_verilog_observed(top, "resnet_tiny", {**observed(top.core), "x": Signal(name="x")})


def test_a_failed_verilog_export_is_one_line_naming_the_network_and_its_log(tmp_path, monkeypatch):
    """What amaranth's ``back.verilog`` raises when its bundled Yosys fails (its public
    ``YosysError``) becomes a :class:`~codesign.hdl.tools.ToolError` with the first error line
    and the export log, not a traceback."""
    from amaranth.back.verilog import YosysError
    from amaranth.hdl import Fragment
    from codesign.hdl.dataflow import pipeline
    from codesign.hdl.tools import ToolError

    def fail(top, *args, **kwargs):
        Fragment.get(top, None)  # elaborated, as back.verilog does before it runs Yosys
        raise YosysError("ERROR: Assert `false' failed in kernel/rtlil.cc:42.\n")

    monkeypatch.setattr(pipeline, "to_verilog_observed", fail)
    net = small_mlp(tmp_path, binary=False)
    with pytest.raises(ToolError) as e:
        pipeline.generate(Design(net), tmp_path, "test")
    assert "\n" not in str(e.value)
    log = tmp_path / f"{net.name}.export.log"
    assert str(e.value) == (
        f"{net.name}: Verilog export by the bundled Yosys failed: ERROR: Assert `false' failed "
        f"in kernel/rtlil.cc:42.; log: {log}"
    )
    assert log.read_text() == "ERROR: Assert `false' failed in kernel/rtlil.cc:42.\n"
