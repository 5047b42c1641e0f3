# amaranth: UnusedElaboratable=no
"""The TULIP PE array (:mod:`codesign.hdl.binary.tulip`) against the mapper's executor
(:func:`codesign.models.binary.tulip.execute`) and the cycle model
(:func:`codesign.sim.binary.tulip.timing`):
small random programs in amaranth.sim, and the whole ``tfc_w1a1`` in cocotb on Verilator."""

from __future__ import annotations

import numpy as np
import pytest
from codesign.hdl.binary.tulip import TulipCore, write_design
from codesign.hdl.manifest import read_manifest
from codesign.models.binary.tln import TLNCell
from codesign.models.binary.tulip import TulipArray, TulipProgram, execute, map_layer
from codesign.models.hwconfig import ConfigError
from codesign.sim.binary.tulip import timing


def _program(seed: int, pes: int, tlns: int, dims: list[int], raw_last: bool, cell=None):
    """A random program of ``len(dims) - 1`` layers: ``dims[0]`` inputs, then each layer's
    neurons; every layer thresholded except, when ``raw_last``, the last."""
    rng = np.random.default_rng(seed)
    array = TulipArray(pes=pes, tlns=tlns, cell=cell or TLNCell())
    layers, k = [], dims[0]
    for n, m in enumerate(dims[1:]):
        w = rng.integers(0, 2, (m, k))
        last = n == len(dims) - 2
        t = None if (last and raw_last) else rng.integers(-1, k + 3, m)
        s = map_layer(f"l{n}", w, t, array)
        layers.append(s)
        k = m * s.out_bits
    return TulipProgram(name=f"rand{seed}", array=array, layers=tuple(layers))


# (seed, pes, tlns, dims, raw_last, in_width, cell)
PROGRAMS = {
    "pe3_raw_last": (1, 3, 4, [12, 7, 5], True, 4, None),
    "pe2_thresholded": (2, 2, 3, [9, 5, 4], False, 3, None),
    "pe3_three_layers": (3, 3, 2, [10, 8, 4, 3], True, 5, None),
    "pe2_one_raw_layer": (4, 2, 4, [8, 3], True, 8, None),
    "pe2_wide_cell": (5, 2, 3, [15, 5, 2], True, 5, TLNCell(fan_in=5, max_weight=3)),
}


def _words(x: np.ndarray, in_width: int) -> list[int]:
    """Input frames (N, K) of bits → beat words, bit ``b`` of beat ``k`` = element
    ``k · in_width + b``."""
    beats = x.reshape(len(x), -1, in_width).astype(np.int64)
    return (beats << np.arange(in_width)).sum(axis=2).ravel().tolist()


@pytest.fixture(params=sorted(PROGRAMS))
def small(request):
    seed, pes, tlns, dims, raw_last, in_width, cell = PROGRAMS[request.param]
    prog = _program(seed, pes, tlns, dims, raw_last, cell)
    x = np.random.default_rng(seed + 100).integers(0, 2, (4, dims[0]))
    return prog, in_width, x


def test_programs_cover_the_hard_cases():
    """The small programs exercise what the hardware has to get right."""
    progs = [_program(*v[:5], cell=v[6]) for v in PROGRAMS.values()]
    # neurons not a multiple of the PEs (idle PEs in the last round)
    assert any(s.neurons % s.pes for p in progs for s in p.layers)
    # a raw-popcount last layer, and a thresholded one
    assert {p.output_bits > 1 for p in progs} == {True, False}
    # layers whose register banks differ in size (the flat register index is remapped)
    assert any(len({s.registers for s in p.layers}) > 1 for p in progs)
    # several rounds per layer
    assert any(s.rounds > 1 for p in progs for s in p.layers)


def test_core_matches_executor_and_cycle_model(small, stream_sim):
    """Input always valid, output always ready: the outputs equal ``execute`` and every
    output beat is taken on the cycle the cycle model says."""
    prog, in_width, x = small
    expected = execute(prog, x)
    run = stream_sim(
        TulipCore(program=prog, in_width=in_width), _words(x, in_width), x.shape[0] * prog.outputs
    )
    assert run.words == expected.ravel().tolist()
    tm = timing(prog, in_width)
    want = [f * tm.ii + tm.latency + k for f in range(len(x)) for k in range(prog.outputs)]
    assert run.cycles == want


def test_core_under_stalls(small, stream_sim):
    """Random input gaps and output back-pressure change nothing but the timing."""
    prog, in_width, x = small
    expected = execute(prog, x)
    for seed in range(2):
        run = stream_sim(
            TulipCore(program=prog, in_width=in_width),
            _words(x, in_width),
            expected.size,
            valid_prob=0.6,
            ready_prob=0.5,
            seed=seed,
        )
        assert run.words == expected.ravel().tolist()


def test_core_checks_its_parameters():
    prog = _program(*PROGRAMS["pe3_raw_last"][:5])
    with pytest.raises(TypeError, match=r"^TULIP core program must be a TulipProgram, not 3$"):
        TulipCore(program=3, in_width=4)
    with pytest.raises(ConfigError, match=r"^TULIP in_width must divide the 12 input bits"):
        TulipCore(program=prog, in_width=5)
    with pytest.raises(ConfigError, match=r"^TULIP in_width must be a positive int, not 0$"):
        TulipCore(program=prog, in_width=0)
    broken = TulipProgram("broken", prog.array, (prog.layers[0], prog.layers[0]))
    with pytest.raises(
        ValueError,
        match=r"^TULIP core program 'broken': layer 'l0' fan-in must be the 7 output bits "
        r"of layer 'l0', not 12$",
    ):
        TulipCore(program=broken, in_width=4)
    with pytest.raises(ValueError, match=r"^TULIP design name must be a Verilog identifier"):
        write_design(prog, "unused", in_width=4, name="no spaces")


def test_write_design_is_deterministic_and_readable(tmp_path):
    prog = _program(*PROGRAMS["pe3_raw_last"][:5])
    a = write_design(prog, tmp_path / "a", in_width=4)
    b = write_design(prog, tmp_path / "b", in_width=4)
    assert a.name == "rand1_tulip.v"
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (
        tmp_path / "b" / "manifest.json"
    ).read_bytes()
    assert not [p.name for p in (tmp_path / "a").iterdir() if p.name.endswith(".tmp")]
    man = read_manifest(tmp_path / "a")
    tm = timing(prog, 4)
    assert (man.top, man.verilog) == ("rand1_tulip", a)
    assert man.ideal_ii == tm.ii
    assert (man.input.type, man.input.per_beat, man.input.beats) == ("uint1", 4, 3)
    assert man.input.tdata_bits == 8
    assert (man.output.type, man.output.per_beat, man.output.elements) == ("uint3", 1, 5)
    assert [s.cycles for s in man.stages] == [tm.steps]


@pytest.mark.simulator
def test_small_verilog_lints_clean(tmp_path):
    """Verilator ``--lint-only -Wall`` finds nothing in any small program's design."""
    from codesign.hdl.tools import lint

    for key, (seed, pes, tlns, dims, raw_last, in_width, cell) in sorted(PROGRAMS.items()):
        prog = _program(seed, pes, tlns, dims, raw_last, cell)
        path = write_design(prog, tmp_path / key, in_width=in_width)
        assert lint(path, path.stem) == [], key


# -- the whole tfc_w1a1 on Verilator ---------------------------------------------------------


@pytest.fixture(scope="module")
def tfc(tmp_path_factory):
    """tfc_w1a1 on 16 PEs of 4 cells, its design written once."""
    from codesign.models.binary.tulip import map_network

    import codesign

    net = codesign.load("tfc_w1a1")
    prog = map_network(net, TulipArray(pes=16, tlns=4))
    folder = tmp_path_factory.mktemp("tulip_tfc")
    return net, prog, folder, write_design(prog, folder, in_width=16)


@pytest.mark.simulator
def test_tfc_w1a1_on_verilator_matches_golden_at_model_timing(tfc):
    """64 random frames through the RTL with random back-pressure: 0 mismatches; latency
    and initiation interval with the stream free-running exactly as the cycle model's
    (200 frames took 90 s of CI's 35 minutes)."""
    from codesign.hdl.verify import run_cocotb
    from codesign.models.golden import golden, random_inputs

    net, prog, folder, _ = tfc
    x = random_inputs(net, 64, 7)
    r = run_cocotb(folder, x, golden(net, x), {}, sim="verilator", seed=3, perf_frames=8)
    assert r["mismatches"] == 0
    assert r["passed"], (r["mismatches"], r["timed_out"], r["output"])
    assert r["frames"] == 64
    tm = timing(prog, 16)
    assert (r["latency"], r["ii"]) == (tm.latency, tm.ii)


@pytest.mark.slow
def test_tfc_w1a1_verilog_is_byte_identical(tfc, tmp_path):
    _, prog, _, path = tfc
    again = write_design(prog, tmp_path, in_width=16)
    assert again.read_bytes() == path.read_bytes()
