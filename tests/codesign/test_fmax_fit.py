"""codesign.fmax_fit, the calibration script of codesign.sim.fmax, without place and route:
its sample list, the harness it places (a stage between its FIFOs) and recording a
whole-network figure, which refits the stored data."""

from __future__ import annotations

import json

import pytest
from codesign.sim import fmax

from codesign import fmax_fit


def test_sweep_specs_are_deterministic_and_build():
    specs = fmax_fit.sweep_specs()
    assert specs == fmax_fit.sweep_specs()
    ids = [fmax_fit.spec_id(s) for s in specs]
    assert len(ids) == len(set(ids))
    for s in specs:
        d = fmax.spec_design(s)
        cfg = d.config[s["stage"]]
        assert (cfg.pe, cfg.simd) == (s["pe"], s["simd"])
    # every stored sample is one the script lists (nothing measured by hand)
    stored = json.loads(fmax.DATA.read_text())["samples"]
    assert set(stored) <= set(ids)


def test_harness_puts_the_stage_between_its_fifos():
    from amaranth.back import verilog

    spec = {"net": "jet_tagger", "stage": "fc4", "pe": 5, "simd": 2}
    top, d = fmax_fit.harness(spec)
    text = verilog.convert(top, name="unit", emit_src=False)
    modules = {ln.split()[1] for ln in text.splitlines() if ln.startswith("module ")}
    # the stage and its input FIFO (depth as the design gives it) and output FIFO
    assert {"\\unit.fifo_i", "\\unit.stage", "\\unit.fifo_o", "\\unit.stage.u0_mvau"} <= modules
    assert set(top.signature.members) == {"i", "o"}
    assert d.config["fc4"].pe == 5


def test_network_figure_is_recorded_with_its_commit_and_refits(tmp_path, capsys):
    data = tmp_path / "fmax_data.json"
    data.write_text(fmax.DATA.read_text())
    assert (
        fmax_fit.main(
            ["--data", str(data), "--network", "jet_tagger", "100", "--commit", "abc1234"]
        )
        == 0
    )
    doc = json.loads(data.read_text())
    assert doc["networks"]["jet_tagger"]["fmax_mhz"] == 100.0
    assert doc["networks"]["jet_tagger"]["commit"] == "abc1234"
    coef = fmax.fit(doc)
    assert doc["coefficients"]["design"] == pytest.approx(coef["design"], abs=1e-9)
    out = capsys.readouterr().out
    assert out.startswith("coefficients (ns): one ")
    assert "held out jet_tagger: measured 100.0 predicted" in out


def test_a_slower_network_figure_raises_the_design_term(tmp_path):
    doc = json.loads(fmax.DATA.read_text())
    before = fmax.fit(doc)["design"]
    doc["networks"]["jet_tagger"]["fmax_mhz"] /= 2
    assert fmax.fit(doc)["design"] > before


def test_fit_needs_samples():
    with pytest.raises(ValueError, match=r"^fit needs at least one measured sample$"):
        fmax.fit({"samples": {}, "networks": {}})
