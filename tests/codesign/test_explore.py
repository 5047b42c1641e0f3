"""The explorer: the vectorised evaluator against the per-design functions, the exact Pareto
front against a brute-force check, spaces and their errors, the strategies, the store and
its resume after SIGKILL, the CLI."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from codesign.models.errors import DescriptionError
from codesign.sim.cost import estimate
from codesign.sim.energy import dataflow_energy
from codesign.sim.fmax import predict_fmax

import codesign
from codesign.explore import explore, load_space
from codesign.explore.evaluate import Evaluator
from codesign.explore.pareto import hypervolume, pareto_mask, pareto_mask_brute

ZOO = ["jet_tagger", "tfc_w2a2", "tfc_w1a1", "cnv_tiny", "resnet_tiny"]


@pytest.mark.parametrize("net", ZOO)
def test_evaluator_equals_per_design_functions(net):
    """On random points of every zoo network, every value of the fast tier equals the
    single-design function of the point's design: the ideal II that codesign.simulate
    reports, sim.cost.estimate, predict_fmax and dataflow_energy."""
    sp = load_space({"network": net, "clock_mhz": [125, 300], "mem_style": ["auto", "block"]})
    ev = Evaluator(sp)
    rng = np.random.default_rng(7)
    ids = rng.choice(sp.size, 6, replace=False)
    got = ev.evaluate(ids)
    for n, i in enumerate(ids.tolist()):
        cfg = ev.config(i)
        d = codesign.design(sp.net, codesign.models.hwconfig.HardwareConfig.from_dict(cfg))
        e = estimate(d)
        for k in ("lut", "ff", "dsp", "bram", "lutram"):
            assert got[k][n] == e[k], (net, i, k)
        assert got["fmax_mhz"][n] == pytest.approx(predict_fmax(d).fmax_mhz, rel=1e-12)
        assert got["energy_nj"][n] == pytest.approx(dataflow_energy(d).nj, rel=1e-9)
        assert got["ii"][n] == d.ideal_ii
        f = min(cfg["clock_mhz"], got["fmax_mhz"][n])
        assert got["throughput_fps"][n] == pytest.approx(f * 1e6 / d.ideal_ii)
    # the event simulator's closed-form II for two of them (a simulation each)
    for n, i in enumerate(ids[:2].tolist()):
        d = codesign.design(sp.net, codesign.models.hwconfig.HardwareConfig.from_dict(ev.config(i)))
        assert got["ii"][n] == codesign.simulate(d, frames=2).ideal_ii


def test_values_do_not_depend_on_the_batch():
    """A point's values are the same whatever else is evaluated with it and before it (the
    memo tables of the batch functions are keyed by folding, not by a call's layout)."""
    sp = load_space({"network": "jet_tagger"})
    ids = np.random.default_rng(3).choice(sp.size, 4000, replace=False)
    small = ids[np.argsort(ids)][:50]  # small foldings first: narrow values in the batch
    first = Evaluator(sp)
    part = first.evaluate(small)
    whole = first.evaluate(ids)
    fresh = Evaluator(sp).evaluate(small)
    pos = np.searchsorted(ids, small, sorter=np.argsort(ids))
    at = np.argsort(ids)[pos]
    for k in ("lut", "ff", "dsp", "bram", "fmax_mhz", "energy_nj", "ii", "latency_cycles"):
        assert np.array_equal(part[k], fresh[k]), k
        assert np.array_equal(whole[k][at], fresh[k]), k


def test_numbering_round_trips():
    sp = load_space({"network": "cnv_tiny", "clock_mhz": [100, 150]})
    ev = Evaluator(sp)
    ids = np.arange(sp.size)
    _, clock, folding = ev.split(ids)
    assert np.array_equal(ev.number(ev.digits(folding)), folding)
    pe, simd = ev.folding(ev.digits(folding))
    assert np.array_equal(ev.digits_of(pe, simd), ev.digits(folding))
    assert len({tuple(r) for r in np.c_[clock, pe, simd]}) == sp.size


@pytest.mark.parametrize("seed", range(4))
def test_pareto_front_is_exact(seed):
    """moocore's filter against the O(n²) definition, with ties and duplicates."""
    rng = np.random.default_rng(seed)
    m = 2 + seed % 4
    f = rng.integers(0, 12, size=(600, m)).astype(float)
    f[:20] = f[20:40]  # duplicates stay together on or off the front
    assert np.array_equal(pareto_mask(f), pareto_mask_brute(f))


def test_explored_front_is_exact_and_feasible(tmp_path):
    df = explore(
        {"network": "cnv_tiny", "objectives": ["throughput", "lut", "dsp", "bram"]},
        out=tmp_path,
        progress=False,
    )
    assert df.attrs["evaluated"] == df.attrs["points"] == len(df) == 4 * 4 * 20 * 5 * 60
    ok = df[df["feasible"]]
    f = np.c_[-ok["throughput_fps"], ok["lut"], ok["dsp"], ok["bram"]]
    sample = np.random.default_rng(0).choice(len(ok), 1500, replace=False)
    # on a sample, the exact filter and the definition agree; the front is feasible only
    assert np.array_equal(pareto_mask(f[sample]), pareto_mask_brute(f[sample]))
    assert df.loc[df["pareto"], "feasible"].all()
    assert df.attrs["front"] == int(df["pareto"].sum()) > 0


def test_hypervolume_orders_fronts():
    ideal, nadir = np.zeros(2), np.ones(2)
    assert hypervolume(np.array([[0.0, 0.0]]), ideal, nadir) == pytest.approx(1.21)
    worse = hypervolume(np.array([[0.5, 0.5]]), ideal, nadir)
    better = hypervolume(np.array([[0.5, 0.5], [0.2, 0.8]]), ideal, nadir)
    assert 0 < worse < better


SMALL = {
    "network": "jet_tagger",
    "stages": {"fc1": {"pe": [4, 8, 16], "simd": {"min": 4, "max": 16}}, "fc4": {"simd": [8]}},
    "clock_mhz": [150],
}


def test_space_knobs_and_size():
    sp = load_space(SMALL)
    assert sp.pe["fc1"] == (4, 8, 16)
    assert sp.simd["fc1"] == (4, 8, 16)
    assert sp.simd["fc4"] == (8,)
    d = codesign.design(codesign.load("jet_tagger"))
    assert sp.pe["fc2"] == tuple(d.stage("fc2").pe_choices())
    # fc1 3 x 3, fc2 6 x 7, fc3 6 x 6, fc4 2 x 1
    assert sp.size == 9 * 42 * 36 * 2
    assert sp.device is not None and sp.device.name == "LFE5U-85F"


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        ({"network": "nope"}, r"^space: field 'network': .*nope"),
        ({"network": "jet_tagger", "stage": {}}, r"^space: field 'stage': is not a space field"),
        (
            {"network": "jet_tagger", "stages": {"fc9": {}}},
            r"^space: field 'stages\.fc9': names no stage of jet_tagger; stages: fc1, fc2",
        ),
        (
            {"network": "jet_tagger", "stages": {"fc1": {"pe": [3]}}},
            r"^space: field 'stages\.fc1\.pe': must be one of \[1, 2, 4, 8, 16, 32, 64\], "
            r"not 3$",
        ),
        (
            {"network": "jet_tagger", "stages": {"fc1": {"pe": {"min": 100}}}},
            r"^space: field 'stages\.fc1\.pe': range 100\.\.64 holds no valid value",
        ),
        (
            {"network": "jet_tagger", "mem_style": ["fast"]},
            r"^space: field 'mem_style': must be one of auto, distributed, block, not 'fast'$",
        ),
        (
            {"network": "jet_tagger", "objectives": ["throughput", "area"]},
            r"^space: field 'objectives': must be one of \[.*\], not 'area'$",
        ),
        (
            {"network": "jet_tagger", "constraints": {"device": "XC7"}},
            r"^space: field 'constraints\.device': must be one of .* or none, not 'XC7'$",
        ),
        (
            {"network": "jet_tagger", "search": {"strategy": "anneal"}},
            r"^space: field 'search\.strategy': must be one of auto, exhaustive, nsga2, greedy",
        ),
        (
            {"network": "jet_tagger", "fifo_depth": ["auto", "sized"]},
            r"^space: field 'fifo_depth': sized is not explored yet: sized depths come from an "
            r"event simulation",
        ),
        (
            {"network": "jet_tagger", "clock_mhz": [0]},
            r"^space: field 'clock_mhz': must be clock targets in MHz",
        ),
    ],
)
def test_malformed_space_names_the_field(doc, pattern):
    with pytest.raises(DescriptionError, match=pattern):
        load_space(doc)


def _codesign(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "codesign.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_cli_malformed_space_file_is_one_line_exit_2(tmp_path):
    bad = tmp_path / "space.yaml"
    bad.write_text("network: jet_tagger\nstages:\n  fc1: {pe: [3]}\n")
    r = _codesign("explore", str(bad), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"codesign: error: {bad}: field 'stages.fc1.pe': must be one of")
    r = _codesign("explore", "jet_tagger", "--plot", str(tmp_path / "f.png"))
    assert r.returncode == 2 and "--plot: must be a .svg file" in r.stderr


def test_cli_json_plot_export(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(
        "network: jet_tagger\nstages:\n  fc1: {pe: [8, 16, 32], simd: [8, 16]}\n"
        "  fc2: {pe: [4, 8, 16, 32]}\nclock_mhz: [150, 200]\n"
    )
    r = _codesign(
        "explore",
        str(space),
        "--out",
        str(tmp_path / "o"),
        "--json",
        "--plot",
        str(tmp_path / "front.svg"),
        "--export",
        str(tmp_path / "all.csv"),
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    sp = load_space(str(space))
    assert doc["points"] == doc["evaluated"] == doc["stored"] == sp.size
    assert doc["front_size"] == len(doc["front"]) > 0
    assert (tmp_path / "front.svg").read_bytes().startswith(b"<?xml")
    assert len((tmp_path / "all.csv").read_text().splitlines()) == sp.size + 1
    # a rerun evaluates nothing and finds the same front
    r2 = _codesign("explore", str(space), "--out", str(tmp_path / "o"), "--json")
    doc2 = json.loads(r2.stdout)
    assert doc2["evaluated"] == 0
    assert doc2["front"] == doc["front"]


@pytest.mark.parametrize("strategy", ["nsga2", "greedy"])
def test_sampled_strategies_store_and_resume(tmp_path, strategy):
    space = {**SMALL, "search": {"generations": 5, "population": 24, "seed": 3}}
    df = explore(space, out=tmp_path, strategy=strategy, progress=False)
    assert 0 < len(df) < load_space(space).size
    assert df.attrs["evaluated"] == len(df)
    assert df["id"].is_unique
    again = explore(space, out=tmp_path, strategy=strategy, progress=False)
    assert again.attrs["evaluated"] == 0  # the same seed replays the same points: all stored
    assert again["id"].tolist() == df["id"].tolist()
    # every stored value is the evaluator's
    ev = Evaluator(load_space(space))
    ref = ev.evaluate(df["id"].to_numpy())
    for k in ("lut", "dsp", "throughput_fps", "energy_nj"):
        assert np.allclose(df[k].to_numpy(), ref[k], rtol=1e-12)


def test_greedy_is_finn_folding():
    """The baseline raises SIMD first, then PE, to meet the target cycles."""
    from codesign.models.hwconfig import StageConfig, stage_cycles

    from codesign.explore.search import finn_folding

    d = codesign.design(codesign.load("jet_tagger"))
    s = d.stage("fc2")  # 64 inputs, 32 outputs: 2048 cycles at PE = SIMD = 1
    assert finn_folding(s, 10**9) == (1, 1)
    assert finn_folding(s, 64) == (1, 32)  # SIMD first: 2 x 32 cycles
    assert finn_folding(s, 16) == (2, 64)  # then PE at full SIMD
    assert finn_folding(s, 0) == (32, 64)  # unreachable: the largest folding
    for t in (1, 3, 100, 700):
        p, q = finn_folding(s, t)
        assert stage_cycles(s, StageConfig(pe=p, simd=q)) <= max(t, 1)


def test_sigkill_mid_sweep_then_resume(tmp_path):
    """A sweep killed with SIGKILL mid-way and rerun: no point lost, none evaluated twice.

    The killed process evaluates each chunk 30 ms slower than it could (a sleep patched in
    front of the evaluator), so that the kill lands mid-sweep however fast the machine is;
    the store and the sweep are the real ones."""
    space = {
        "network": "jet_tagger",
        "stages": {"fc1": {"pe": [1, 2], "simd": [1, 2]}},  # 72,576 points
        "search": {"chunk": 400},
    }
    sp = load_space(space)
    out = tmp_path / "o"
    code = (
        "import codesign.explore as ex, json, sys, time\n"
        "from codesign.explore.evaluate import Evaluator\n"
        "real = Evaluator.evaluate\n"
        "def slow(self, ids):\n"
        "    time.sleep(0.03)\n"
        "    return real(self, ids)\n"
        "Evaluator.evaluate = slow\n"
        f"ex.explore(json.loads(sys.argv[1]), out={str(out)!r}, progress=False)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code, json.dumps(space)])
    try:
        deadline = time.monotonic() + 300
        done = 0
        db = None
        while time.monotonic() < deadline and p.poll() is None:
            found = sorted(out.glob("*/exhaustive.sqlite"))
            db = found[0] if found else None
            if db is not None:
                try:
                    with sqlite3.connect(db, timeout=1) as c:
                        done = c.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
                except sqlite3.OperationalError:
                    done = 0
                if done >= 3:
                    break
            time.sleep(0.02)
        assert p.poll() is None, "the sweep ended before it could be killed"
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == -signal.SIGKILL
    assert db == out / sp.hash() / "exhaustive.sqlite"  # the store a rerun resumes
    with sqlite3.connect(db) as c:
        stored = c.execute("SELECT COALESCE(SUM(n), 0) FROM chunks").fetchone()[0]
    assert 0 < stored < sp.size
    df = explore(space, out=out, progress=False)
    assert df.attrs["evaluated"] == sp.size - stored  # 0 evaluated twice
    assert np.array_equal(df["id"].to_numpy(), np.arange(sp.size))  # 0 lost
    ids = np.random.default_rng(1).choice(sp.size, 300, replace=False)
    ref = Evaluator(sp).evaluate(ids)
    assert np.array_equal(df["lut"].to_numpy()[ids], ref["lut"])


def test_docs_worked_example(tmp_path):
    """The space of docs/explore.md explores as the document says."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "explore.md").read_text()
    block = re.search(r"<!-- space -->\n```yaml\n(.*?)^```", text, re.S | re.M).group(1)
    space = tmp_path / "space.yaml"
    space.write_text(block)
    df = explore(str(space), out=tmp_path / "o", progress=False)
    assert df.attrs["points"] == len(df) == 518_400
    assert int(df["feasible"].sum()) == 4_560
    assert df.attrs["front"] == 6
    assert f"It has {len(df):,} points" in text.replace("\n", " ")


def test_tulip_space_equals_codesign_bnn(tmp_path):
    """A TULIP space's points are `codesign bnn --pes P --tlns T`'s cycles and energy."""
    from codesign.bnn import bnn_report

    space = {"network": "tfc_w1a1", "tulip": {"pes": [4, 16], "tlns": [2, 4]}, "clock_mhz": [400]}
    df = explore(space, out=tmp_path, progress=False)
    assert len(df) == 4 and df.attrs["front"] >= 2
    net = codesign.load("tfc_w1a1")
    for _, row in df.iterrows():
        doc = bnn_report(net, pes=int(row["pes"]), tlns=int(row["tlns"]))
        assert row["ii"] == doc["cycles"]["ii"]
        assert row["latency_cycles"] == doc["cycles"]["latency"]
        assert row["energy_nj"] == pytest.approx(doc["energy"]["tulip_pj"] / 1e3, rel=1e-12)
        assert row["throughput_fps"] == pytest.approx(400e6 / doc["cycles"]["ii"])
        assert row["tln_cells"] == row["pes"] * row["tlns"]
    # more PEs: fewer cycles per frame
    by = df.set_index(["pes", "tlns"])["ii"]
    assert by[16, 4] < by[4, 4]


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        (
            {"network": "jet_tagger", "tulip": {}},
            r"^space: field 'tulip': the network has no TULIP mapping: layer 'fc1'",
        ),
        (
            {"network": "tfc_w1a1", "tulip": {"pes": [0]}},
            r"^space: field 'tulip\.pes': must be a list of positive ints, not \[0\]$",
        ),
        (
            {"network": "tfc_w1a1", "tulip": {}, "stages": {"fc0": {"pe": [1]}}},
            r"^space: field 'stages': is a dataflow knob; a space with tulip explores",
        ),
        (
            {"network": "tfc_w1a1", "tulip": {}, "objectives": ["throughput", "lut"]},
            r"^space: field 'objectives': must be one of \['cells', 'energy', 'latency', "
            r"'throughput'\], not 'lut'$",
        ),
    ],
)
def test_malformed_tulip_space(doc, pattern):
    with pytest.raises(DescriptionError, match=pattern):
        load_space(doc)


def test_explores_a_brevitas_export(tmp_path):
    """A QONNX model nobody here wrote (a Brevitas export, tests/fixtures/qonnx) is a space
    too: its foldings sweep, and the evaluator equals the per-design functions on it."""
    from pathlib import Path

    onnx = Path(__file__).parents[1] / "fixtures" / "qonnx" / "bnn_bipolar_in.onnx"
    space = {
        "network": str(onnx),
        "search": {"strategy": "nsga2", "generations": 5, "population": 40},
    }
    df = explore(space, out=tmp_path, progress=False)
    assert df.attrs["front"] > 0 and df["id"].is_unique
    sp = load_space(space)
    ev = Evaluator(sp)
    ids = df["id"].to_numpy()[:3]
    got = ev.evaluate(ids)
    for n, i in enumerate(ids.tolist()):
        d = codesign.design(sp.net, codesign.models.hwconfig.HardwareConfig.from_dict(ev.config(i)))
        e = estimate(d)
        assert [got[k][n] for k in ("lut", "ff", "dsp", "bram")] == [
            e[k] for k in ("lut", "ff", "dsp", "bram")
        ]
        assert got["ii"][n] == d.ideal_ii
