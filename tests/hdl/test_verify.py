"""codesign.hdl.verify and the cocotb bench, on passthrough designs with hand-made manifests.

The passthrough is an :class:`~codesign.hdl.dataflow.top.AxiStreamTop` around a
:class:`~codesign.hdl.dataflow.stream.StreamFIFO` of 4 int7 elements per beat; its manifest has one
stage, ``act`` (the network ``Input (4, 1, 5) int7 → Clip``, whose clip is the identity),
tapped at the FIFO (instance ``core``; its manifest gives no probes, so the bench observes
the instance's ports). The chain is two width converters as instances ``stage_a``/``stage_b``
under ``core``, the hierarchy the compiler generates, with probes recorded as the compiler
records them (:func:`~codesign.hdl.dataflow.top.to_verilog_observed`). Last, jet_tagger as
the compiler (:mod:`codesign.hdl.dataflow.pipeline`) generates it, with one corrupted weight
in the RTL and with one corrupted weight in a memory file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from codesign.hdl import tools
from codesign.hdl.dataflow.stream import StreamFIFO, WidthConverter, beat_layout, element_shape
from codesign.hdl.dataflow.top import AxiStreamTop, to_verilog, to_verilog_observed
from codesign.hdl.verify import (
    BenchFailure,
    ManifestError,
    SimulationError,
    _prune,
    build_key,
    read_bench_results,
    read_manifest,
    run_cocotb,
    verify,
)
from codesign.models.hwconfig import Design
from codesign.models.ir import Network
from codesign.models.layers import Clip, Input
from codesign.models.loader import load
from codesign.models.qtype import QType, parse_qtype

INT7 = parse_qtype("int7")
FRAMES = 200

#: The passthrough's known timing. SyncFIFOBuffered moves a beat from its write port into
#: its output register on the next edge and out on the one after: 2 cycles from input
#: transfer to output transfer. With input always valid and output always ready it moves
#: one beat per cycle, so a 5-beat frame completes every 5 cycles.
#: test_known_timing_agrees_with_amaranth_simulation derives both independently.
PASS_LATENCY = 2
PASS_II = 5.0

SPEC = {"type": "int7", "element_bits": 7, "per_beat": 4, "elements": 20, "beats": 5}


def _manifest(top: str, stages: list[dict], shape=(4, 1, 5), ideal_ii=5) -> dict:
    stream_ = {**SPEC, "shape": list(shape), "order": None, "tdata_bits": 32}
    return {
        "format": 1,
        "name": top,
        "top": top,
        "verilog": f"{top}.v",
        "network_hash": "test",
        "ideal_ii": ideal_ii,
        "clock_mhz": 100.0,
        "input": stream_,
        "output": stream_,
        "stages": stages,
    }


def _passthrough() -> AxiStreamTop:
    return AxiStreamTop(core=StreamFIFO(layout=beat_layout(INT7, 4), depth=4), out_beats=5)


class _Chain(wiring.Component):
    """Two stages as the compiler builds them: instances stage_a (4 → 2 elements per beat)
    and stage_b (2 → 4) of the pipeline core."""

    def __init__(self) -> None:
        sig = stream.Signature(beat_layout(INT7, 4))
        super().__init__({"i": In(sig), "o": Out(sig)})
        el = element_shape(INT7)
        self.stage_a = WidthConverter(element=el, n_in=4, n_out=2)
        self.stage_b = WidthConverter(element=el, n_in=2, n_out=4)

    def elaborate(self, platform):
        m = Module()
        m.submodules.stage_a = a = self.stage_a
        m.submodules.stage_b = b = self.stage_b
        wiring.connect(m, wiring.flipped(self.i), a.i)
        wiring.connect(m, a.o, b.i)
        wiring.connect(m, b.o, wiring.flipped(self.o))
        return m


def _write(d, top_name: str, top, manifest: dict, observe: dict | None = None):
    """Write ``top``'s Verilog and ``manifest``; ``observe`` (stage name → its output stream)
    adds each stage's ``probes``, as the compiler records them."""
    d.mkdir(parents=True, exist_ok=True)
    signals = {
        (name, m): getattr(o, m)
        for name, o in (observe or {}).items()
        for m in ("valid", "ready", "payload")
    }
    text, paths = to_verilog_observed(top, top_name, signals)
    assert text == to_verilog(top, top_name)  # observing changes nothing in the Verilog
    for stage in manifest["stages"] if observe else []:
        members = ("valid", "ready", "payload")
        stage["probes"] = {"out": {m: paths[(stage["name"], m)] for m in members}}
    (d / f"{top_name}.v").write_text(text)
    (d / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return d


def _pass_network() -> Network:
    return Network(
        "pass",
        [
            Input(name="input", inputs=(), shape=(4, 1, 5), qtype=INT7),
            Clip(name="act", inputs=("input",), min=-64, max=63),
        ],
    )


@pytest.fixture(scope="session")
def pass_dir(tmp_path_factory):
    stage = {
        "name": "act",
        "kind": "act",
        "layers": ["act"],
        "tap": "act",
        "instance": "core",
        "pe": 4,
        "simd": 1,
        "cycles": 5,
        "out": {**SPEC, "shape": [4, 1, 5], "order": None},
    }
    d = tmp_path_factory.mktemp("pass")
    return _write(d, "pass_top", _passthrough(), _manifest("pass_top", [stage]))


@pytest.fixture(scope="session")
def chain_dir(tmp_path_factory):
    def stage(name, per_beat):
        out = {**SPEC, "per_beat": per_beat, "beats": 20 // per_beat, "shape": [20]}
        return {"name": name, "tap": name, "instance": f"stage_{name}", "out": out}

    man = _manifest("chain_top", [stage("a", 2), stage("b", 4)], shape=(20,), ideal_ii=10)
    d = tmp_path_factory.mktemp("chain")
    chain = _Chain()
    observe = {"a": chain.stage_a.o, "b": chain.stage_b.o}
    return _write(d, "chain_top", AxiStreamTop(core=chain, out_beats=5), man, observe)


@pytest.fixture(scope="session")
def build_root(tmp_path_factory):
    """One build cache for the session: each design is built once per simulator."""
    return tmp_path_factory.mktemp("sim_build")


def _need(sim: str) -> str:
    """``sim``, or skip the test with the reason it is not installed."""
    if sim == "icarus" and not tools.icarus_available():
        pytest.skip(tools.ICARUS_MISSING)
    if sim == "verilator":
        try:
            tools.verilator_bin()
        except tools.ToolError as e:
            pytest.skip(str(e))
    return sim


def _any_sim() -> str:
    """A simulator for tests that need just one: Icarus where present (faster builds)."""
    return _need("icarus" if tools.icarus_available() else "verilator")


@pytest.fixture(scope="session", params=["verilator", "icarus"])
def sim(request):
    return _need(request.param)


@pytest.fixture(scope="session")
def frames():
    return np.random.default_rng(7).integers(-64, 63, size=(FRAMES, 20), endpoint=True)


@pytest.fixture(scope="session")
def pass_results(pass_dir, build_root, sim, frames):
    return run_cocotb(
        pass_dir, frames, frames, {"act": frames}, sim=sim, seed=1, build_dir=build_root
    )


# -- simulations ---------------------------------------------------------------------------------


@pytest.mark.simulator
def test_passthrough_under_back_pressure_has_no_mismatch(pass_results, sim):
    r = pass_results
    assert r["sim"] == sim
    assert r["passed"] and r["failure"] is None, r
    assert r["mismatches"] == 0 and r["mismatched_frames"] == 0
    out = r["output"]
    assert out["frames_checked"] == FRAMES + r["perf_frames"] == out["frames_received"]
    assert out["missing_frames"] == out["padding_errors"] == out["tlast_errors"] == 0
    act = r["stages"]["act"]
    assert act["frames_checked"] == out["frames_checked"] and act["mismatched_elements"] == 0
    assert r["first_bad_stage"] is None and r["first_bad_layer"] is None
    # random pauses on both sides make phase 1 much slower than the free-running 5 cycles
    # per frame, so back-pressure really happened
    assert r["cycles"] > 1.5 * PASS_II * FRAMES


@pytest.mark.simulator
def test_passthrough_timing_is_known(pass_results):
    assert pass_results["latency"] == PASS_LATENCY
    assert pass_results["ii"] == PASS_II


@pytest.mark.simulator
def test_simulators_agree_cycle_for_cycle(pass_dir, build_root, frames):
    _need("verilator"), _need("icarus")
    runs = [
        run_cocotb(pass_dir, frames[:30], frames[:30], {}, sim=s, seed=5, build_dir=build_root)
        for s in ("verilator", "icarus")
    ]
    keys = ("cycles", "latency", "ii", "mismatches")
    assert [runs[0][k] for k in keys] == [runs[1][k] for k in keys]


@pytest.mark.simulator
def test_build_is_reused(pass_dir, build_root, sim, frames, pass_results):
    r = run_cocotb(pass_dir, frames[:3], frames[:3], {}, sim=sim, build_dir=build_root)
    assert r["build_cached"] and r["build_seconds"] == 0
    assert r["passed"] and r["stages"] == {}


def _off_by_one(v: int) -> int:
    return v - 1 if v > INT7.min else v + 1


@pytest.mark.simulator
def test_one_wrong_expected_element_is_reported_exactly(pass_dir, build_root, sim, frames):
    expected = frames.copy()
    frame, element = 150, 7  # after the frames phase 2 repeats, so it is checked once
    expected[frame, element] = _off_by_one(frames[frame, element])
    r = run_cocotb(
        pass_dir, frames, expected, {"act": frames}, sim=sim, seed=2, build_dir=build_root
    )
    assert not r["passed"]
    assert r["mismatches"] == 1 and r["mismatched_frames"] == 1
    want, got = int(expected[frame, element]), int(frames[frame, element])
    at = r["output"]["first_mismatch"].pop("time_ns")  # when the bad beat moved
    assert at == r["first_bad_ns"] and at > 0
    assert r["output"]["first_mismatch"] == {
        "frame": frame,
        "received": frame,
        "beat": 1,  # 4 elements per beat
        "element": element,
        "expected": want,
        "got": got,
    }
    # the cocotb test's own assertion, from its results.xml
    assert r["failure"] == (
        f"output: frame 150 (received 150), beat 1, element 7 (lane 3): expected {want}, "
        f"got {got} at {at:g} ns (1 of 20 elements differ in this frame)"
    )
    # the stage's output was right: the difference is after the last stage
    assert r["first_bad_stage"] is None
    assert r["latency"] == PASS_LATENCY and r["ii"] == PASS_II


@pytest.mark.simulator
def test_a_wrong_stage_is_named(pass_dir, build_root, sim, frames):
    expected = frames.copy()
    expected[3, 0] = _off_by_one(frames[3, 0])  # repeated by phase 2: seen twice
    r = run_cocotb(
        pass_dir, frames, expected, {"act": expected}, sim=sim, seed=3, build_dir=build_root
    )
    assert r["first_bad_stage"] == "act" and r["first_bad_layer"] == "act"
    assert re.match(
        r"^stage 'act' \(layer 'act'\): frame 3 \(received 3\), beat 0, element 0 \(lane 0\): "
        r"expected -?\d+, got -?\d+ at \d+ ns \(1 of 20 elements differ in this frame\) "
        r"\(and 1 more: "
        r"output: frame 3 ",
        r["failure"],
    )
    act = r["stages"]["act"]
    assert act["mismatched_elements"] == 2 and act["layers"] == ["act"]
    assert act["first_mismatch"]["frame"] == 3 and act["first_mismatch"]["element"] == 0
    assert r["mismatches"] == 2


@pytest.mark.simulator
def test_first_bad_stage_in_pipeline_order(chain_dir, build_root, sim, frames):
    x = frames[:60]
    tap_a, tap_b = x.copy(), x.copy()
    tap_a[50, 3] = _off_by_one(x[50, 3])
    tap_b[40, 5] = _off_by_one(x[40, 5])  # earlier in time, but later in the pipeline
    r = run_cocotb(
        chain_dir, x, x, {"b": tap_b, "a": tap_a}, sim=sim, perf_frames=8, build_dir=build_root
    )
    assert r["first_bad_stage"] == "a" and r["first_bad_layer"] == "a"
    assert r["failure"].startswith("stage 'a' (layer 'a'): frame 50 (received 50), beat 1, ")
    assert r["stages"]["a"]["instance"] == "chain_top.core.stage_a"
    assert list(r["stages"]) == ["a", "b"]
    assert r["stages"]["a"]["first_mismatch"]["frame"] == 50
    assert r["stages"]["b"]["first_mismatch"]["element"] == 5
    assert r["mismatches"] == 0
    r = run_cocotb(chain_dir, x, x, {"b": tap_b}, sim=sim, perf_frames=8, build_dir=build_root)
    assert r["first_bad_stage"] == "b"


@pytest.mark.simulator
def test_timeout_is_reported(pass_dir, build_root, frames):
    sim = _any_sim()
    r = run_cocotb(pass_dir, frames, frames, {}, sim=sim, timeout_cycles=100, build_dir=build_root)
    assert not r["passed"]
    assert re.match(
        r"^phase 1 \(random back-pressure\): \d+ of 200 output frames after 100 cycles$",
        r["timed_out"],
    )
    assert r["output"]["missing_frames"] > 0 and r["latency"] is None
    assert r["failure"].startswith("output: ") and r["failure"].endswith(
        f"(and 1 more: timed out in {r['timed_out']} at {r['first_bad_ns']:g} ns)"
    )


@pytest.mark.simulator
def test_a_stuck_design_is_reported_early(tmp_path, pass_dir, build_root, frames):
    # a manifest claiming 10-beat output frames: the 1000 beats of 200 input frames make
    # only 100 output frames, then nothing moves
    man = json.loads((pass_dir / "manifest.json").read_text())
    man["output"].update(per_beat=2, beats=10)
    man["verilog"] = str(pass_dir / "pass_top.v")
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    r = run_cocotb(tmp_path, frames, frames, {}, sim=_any_sim(), build_dir=build_root)
    assert re.match(
        r"^phase 1 \(random back-pressure\): 100 of 200 output frames, then no stream moved "
        r"for \d+ cycles$",
        r["timed_out"],
    )
    # the sink frames by tlast (every 5 beats), which disagrees with the manifest
    assert not r["passed"] and r["output"]["tlast_errors"] > 0
    assert r["cycles"] < 20_000  # long before the timeout


@pytest.mark.simulator
def test_missing_stage_instance_is_named(tmp_path, pass_dir, build_root, frames):
    man = json.loads((pass_dir / "manifest.json").read_text())
    man["stages"][0]["instance"] = "stage_act"
    man["verilog"] = str(pass_dir / "pass_top.v")
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    sim = _any_sim()
    with pytest.raises(
        SimulationError,
        match=rf"^{sim} simulation of pass_top: LookupError: stage 'act': no signal "
        r"pass_top\.stage_act\.o__valid: pass_top has no 'stage_act'; no signal "
        r"pass_top\.core\.stage_act\.o__valid: pass_top\.core has no 'stage_act'; log: ",
    ):
        run_cocotb(
            tmp_path, frames[:2], frames[:2], {"act": frames[:2]}, sim=sim, build_dir=build_root
        )


@pytest.mark.simulator
def test_verify_a_design(pass_dir, build_root, sim):
    design = Design(_pass_network())
    r = verify(design, pass_dir, vectors=FRAMES, sim=sim, seed=4, build_dir=build_root)
    assert r["passed"] and r["mismatches"] == 0
    assert r["network"] == "pass" and r["vectors"] == FRAMES
    assert r["ii"] == design.ideal_ii == PASS_II
    assert r["stages"]["act"]["frames_checked"] == FRAMES + r["perf_frames"]


@pytest.mark.simulator
def test_waves_are_kept(pass_dir, build_root, frames):
    r = run_cocotb(
        pass_dir, frames[:4], frames[:4], {}, sim=_need("icarus"), waves=True, build_dir=build_root
    )
    run_dir = Path(r["run_dir"])
    assert run_dir.parent == pass_dir / "waves"
    assert (run_dir / "pass_top.fst").stat().st_size > 0
    assert read_bench_results(run_dir)["passed"]


def test_old_builds_are_pruned(tmp_path):
    now = time.time()
    for k, age in enumerate([0, 2, 3, 4]):  # hours since last use
        d = tmp_path / f"icarus-top-{k}"
        d.mkdir()
        (d / "codesign-build.json").write_text("{}")
        os.utime(d / "codesign-build.json", (now - age * 3600, now - age * 3600))
    _prune(tmp_path, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["icarus-top-0", "icarus-top-1"]


# -- a design from the compiler -------------------------------------------------------------------


@pytest.fixture(scope="session")
def jet(tmp_path_factory):
    """jet_tagger as the compiler generates it, with fc2's weights in block RAM (so they
    are delivered as a ``$readmemh`` file: the automatic logic ROMs are banked below the
    file size), and a copy with one wrong weight in fc2."""
    from codesign.hdl.dataflow.pipeline import generate
    from codesign.models.hwconfig import HardwareConfig, StageConfig

    design = Design(load("jet_tagger"), HardwareConfig({"fc2": StageConfig(mem_style="block")}))
    d = tmp_path_factory.mktemp("jet_tagger")
    generate(design, d / "good", "test")
    generate(design, d / "bad", "test", corrupt=("fc2", 3, 5))
    return design, d


@pytest.mark.simulator
@pytest.mark.parametrize("sim_name", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_generated_design(jet, build_root, sim_name):
    design, d = jet
    sim = _need(sim_name)
    r = verify(design, d / "good", vectors=50, sim=sim, seed=1, build_dir=build_root)
    assert r["passed"], r
    assert list(r["stages"]) == [s.name for s in design.stages]
    # observed where the generator recorded it (Amaranth's names), not found by a search
    probe = read_manifest(d / "good").stage("fc1").probes["out"]["payload"]
    assert r["stages"]["fc1"]["instance"] == ".".join(["jet_tagger", *probe[:-1]])
    assert r["ii"] == design.ideal_ii and r["latency"] > 0
    levels = r["fifo_levels"]
    assert set(levels) == {s.name for s in design.stages[1:]} == set(r["fifo_full_cycles"])
    for name, f in levels.items():
        assert f["depth"] == design.fifo_depth(design.stage(name))
        assert 1 <= f["max_level"] <= f["depth"] and 0 < f["mean_level"] <= f["max_level"]

    r = verify(design, d / "bad", vectors=50, sim=sim, seed=1, build_dir=build_root)
    fc2 = next(s for s in design.stages if s.name == "fc2")
    assert not r["passed"]
    assert r["failure"].startswith(f"stage 'fc2' (layer '{fc2.tap}'): frame ")
    assert (r["first_bad_stage"], r["first_bad_layer"]) == ("fc2", fc2.tap)
    assert r["stages"]["fc1"]["mismatched_frames"] == 0
    assert r["stages"]["fc2"]["first_mismatch"]["element"] == 3  # the corrupted row


@pytest.mark.simulator
def test_a_corrupted_memory_file_fails_the_cocotb_test(jet, build_root, tmp_path):
    """One weight changed in a delivered ``$readmemh`` file: the Verilog, so the build, is
    the good design's. The cocotb test fails by its own assertion, which names the stage
    holding the weight and the first frame, beat and element that differ; ``check=True``
    turns that into an ``AssertionError`` that fails this pytest test (here, expected)."""
    design, d = jet
    sim = _any_sim()
    bad = tmp_path / "bad"
    shutil.copytree(d / "good", bad)
    memory = bad / "jet_tagger_fc2_weights.hex"
    rows = memory.read_text().splitlines()
    rows[0] = f"{int(rows[0][0], 16) ^ 0x8:x}{rows[0][1:]}"  # one bit of one weight
    memory.write_text("\n".join(rows) + "\n")
    tap = design.stage("fc2").tap
    with pytest.raises(
        BenchFailure,
        match=rf"^{sim} cocotb test of jet_tagger: stage 'fc2' \(layer '{tap}'\): frame \d+ "
        r"\(received \d+\), beat \d+, element \d+ \(lane \d+\): expected -?\d+, got -?\d+ "
        r"at \d+ ns \(\d+ of 32 elements differ in this frame\)",
    ) as failed:
        verify(design, bad, vectors=50, sim=sim, seed=1, build_dir=build_root, check=True)
    r = failed.value.results
    assert not r["passed"]
    # the good design's build, whichever test made it first
    assert build_key(read_manifest(bad), sim, False) == build_key(
        read_manifest(d / "good"), sim, False
    )
    assert r["first_bad_stage"] == "fc2" and r["stages"]["fc1"]["mismatched_frames"] == 0


# -- the verdict is cocotb's results.xml ---------------------------------------------------------

#: A results.xml as cocotb 2.1 writes it for the bench (from a real run, shortened).
_XML = """<?xml version='1.0' encoding='utf-8'?>
<testsuites name="cocotb tests"><testsuite name="codesign.hdl.cocotb_bench" errors="0"
 failures="{failures}" skipped="0" tests="1" time="0.500"><testcase
 classname="codesign.hdl.cocotb_bench" name="run_bench" time="0.500">{failure}<properties>
<property name="cocotb" value="True" /><property name="random_seed" value="1" /></properties>
</testcase></testsuite></testsuites>
"""

#: A bench's figures that show nothing wrong.
_CLEAN = {"mismatches": 0, "first_bad_stage": None, "timed_out": None, "latency": 2, "ii": 5.0}


def _run_dir(tmp_path, failure: str | None, kind: str = "AssertionError") -> Path:
    node = ""
    if failure is not None:
        node = f'<failure message="{failure}" type="{kind}">Traceback ...</failure>'
    (tmp_path / "results.xml").write_text(
        _XML.format(failures=int(failure is not None), failure=node)
    )
    (tmp_path / "figures.json").write_text(json.dumps(_CLEAN))
    return tmp_path


def test_a_failed_cocotb_test_fails_whatever_the_figures_say(tmp_path):
    message = "output: frame 3 (received 3), beat 0, element 1 (lane 1): expected 4, got 5"
    r = read_bench_results(_run_dir(tmp_path, f"{message}&#10;assert not [...]"))
    assert not r["passed"] and r["failure"] == message
    assert r["mismatches"] == 0 and r["latency"] == 2  # the figures, as the bench wrote them


def test_a_passed_cocotb_test_passes(tmp_path):
    r = read_bench_results(_run_dir(tmp_path, None))
    assert r["passed"] and r["failure"] is None and r["ii"] == 5.0


def test_a_bench_error_is_a_simulation_error(tmp_path):
    with pytest.raises(
        SimulationError, match=r"^LookupError: stage 'fc1': no signal top\.core\.x: top has no$"
    ):
        read_bench_results(
            _run_dir(tmp_path, "stage 'fc1': no signal top.core.x: top has no", "LookupError")
        )


def test_no_results_xml_is_a_simulation_error(tmp_path):
    (tmp_path / "figures.json").write_text(json.dumps(_CLEAN))
    with pytest.raises(SimulationError, match=r"^no results\.xml: the simulation ended abnormally"):
        read_bench_results(tmp_path)


# -- the known timing, from Amaranth's own simulator ---------------------------------------------


def test_known_timing_agrees_with_amaranth_simulation():
    top = _passthrough()
    frames, beats = 8, 5
    seen = {"in": [], "out": []}

    async def bench(ctx):
        ctx.set(top.m_axis_tready, 1)
        sent = 0
        for cycle in range(200):
            ctx.set(top.s_axis_tvalid, sent < frames * beats)
            ctx.set(top.s_axis_tdata, sent)
            if ctx.get(top.s_axis_tvalid) and ctx.get(top.s_axis_tready):
                seen["in"].append(cycle)
                sent += 1
            if ctx.get(top.m_axis_tvalid):
                seen["out"].append((cycle, ctx.get(top.m_axis_tlast)))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen["out"][0][0] - seen["in"][0] == PASS_LATENCY
    ends = [c for c, last in seen["out"] if last]
    assert len(ends) == frames
    assert (ends[-1] - ends[len(ends) // 2]) / (len(ends) - 1 - len(ends) // 2) == PASS_II


# -- the manifest and the arguments (no simulator) -----------------------------------------------


def test_stream_order_is_channels_last_by_default(pass_dir):
    spec = read_manifest(pass_dir).input
    x = np.arange(2 * 20).reshape(2, 4, 1, 5)
    s = spec.to_stream(x)
    assert s.shape == (2, 20)
    assert list(s[0, :8]) == [0, 5, 10, 15, 1, 6, 11, 16]  # channels of pixel 0, then pixel 1


def test_stream_order_from_manifest(tmp_path, pass_dir):
    man = json.loads((pass_dir / "manifest.json").read_text())
    order = list(reversed(range(20)))
    man["input"]["order"] = order
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    x = np.arange(20).reshape(1, 4, 1, 5)
    assert list(read_manifest(tmp_path).input.to_stream(x)[0]) == order


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.pop("top"), r"field 'top': is missing"),
        (lambda m: m.update(format=2), r"field 'format': must be 1, not 2"),
        (
            lambda m: m["input"].update(beats=4),
            r"field input\.'beats': must be elements / per_beat = 20 / 4, not 4",
        ),
        (
            lambda m: m["output"].update(type="uint3"),
            r"field output\.'element_bits': must be 3 for type uint3, not 7",
        ),
        (
            lambda m: m["input"].update(tdata_bits=30),
            r"field input\.'tdata_bits': must be a multiple of 8 holding 28 payload bits",
        ),
        (
            lambda m: m["stages"][0]["out"].update(order=[0] * 20),
            r"field stages\[0\]\.out\.'order': must be a permutation of range\(20\)",
        ),
        (
            lambda m: m["stages"][0]["out"].update(shape=[4, 4]),
            r"field stages\[0\]\.out\.'shape': must hold 20 elements",
        ),
        (lambda m: m["stages"][0].pop("tap"), r"field stages\[0\]\.'tap': is missing"),
        (lambda m: m.update(ideal_ii="5"), r"field 'ideal_ii': must be an int, not '5'"),
        (
            lambda m: m["stages"][0].update(probes={"in": {}}),
            r"field stages\[0\]\.'probes': must be an object with keys among out, fifo, "
            r"fifo_b, not \{'in': \{\}\}$",
        ),
        (
            lambda m: m["stages"][0].update(probes={"out": {"valid": ["core", "v"]}}),
            r"field stages\[0\]\.'probes'\.out: must be an object with keys valid, ready, "
            r"payload, not \{'valid': \['core', 'v'\]\}$",
        ),
        (
            lambda m: m["stages"][0].update(
                probes={"out": {"valid": ["core", ""], "ready": ["r"], "payload": ["p"]}}
            ),
            r"field stages\[0\]\.'probes'\.out\.valid: must be a list of instance names and "
            r"a signal name, not \['core', ''\]$",
        ),
    ],
)
def test_manifest_errors_name_file_and_field(tmp_path, pass_dir, edit, message):
    man = json.loads((pass_dir / "manifest.json").read_text())
    edit(man)
    (tmp_path / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(
        ManifestError, match=rf"^{re.escape(str(tmp_path))}/manifest\.json: {message}"
    ):
        read_manifest(tmp_path)


def test_missing_manifest(tmp_path):
    with pytest.raises(ManifestError, match=r"manifest\.json: does not exist; generate the design"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"sim": "vcs"}, ValueError, r"^sim must be one of verilator, icarus, not 'vcs'$"),
        (
            {"frames_in": np.zeros((3, 19), int)},
            ValueError,
            r"^frames_in must have shape \(N, 20\)",
        ),
        (
            {"expected_out": np.zeros((2, 20), int)},
            ValueError,
            r"^expected_out must have shape \(3, 20\)",
        ),
        (
            {"frames_in": np.full((3, 20), 64)},
            ValueError,
            r"^frames_in: value 64 at \(frame, element\) \(0, 0\) is outside int7$",
        ),
        (
            {"frames_in": np.zeros((3, 20))},
            TypeError,
            r"^frames_in must be an integer array, not float64$",
        ),
        (
            {"taps": {"fc0": np.zeros((3, 20), int)}},
            ValueError,
            r"no stage 'fc0'; stages: \['act'\]",
        ),
        ({"perf_frames": 4}, ValueError, r"^perf_frames must be an int in \[0, 3\], not 4$"),
    ],
)
def test_run_cocotb_checks_its_arguments(pass_dir, kwargs, error, message):
    args = {
        "frames_in": np.zeros((3, 20), int),
        "expected_out": np.zeros((3, 20), int),
        "taps": {},
        **kwargs,
    }
    with pytest.raises(error, match=message):
        run_cocotb(pass_dir, **args)


def test_verify_rejects_a_manifest_of_another_design(pass_dir):
    net = Network(
        "other",
        [
            Input(name="input", inputs=(), shape=(4, 1, 5), qtype=QType.int(7)),
            Clip(name="relu", inputs=("input",), min=0),
        ],
    )
    with pytest.raises(
        ManifestError, match=r"field 'stages': must be the design's stages \['relu'\]"
    ):
        verify(Design(net), pass_dir, vectors=2)
