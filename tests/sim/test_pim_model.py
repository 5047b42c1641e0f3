"""The PIM cost model (codesign.sim.pim): numbers derived here from the programs and the raw
parameter table, the vectorised sweep against the single-design model point by point,
ratio directions, configuration errors and the parameter table's sources."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest
from codesign.models.errors import ConfigError
from codesign.models.loader import load
from codesign.models.pim.integer import int_program
from codesign.models.pim.isa import Op
from codesign.models.pim.layer import dense_mapping
from codesign.sim.pim import (
    PimConfig,
    aritpim_comparison,
    default_params,
    dot_profile,
    evaluate,
    load_params,
    parameter_table,
    sweep,
    technology_ratios,
)

REL = 1e-12


@pytest.fixture(scope="module")
def jet():
    return load("jet_tagger")


@pytest.fixture(scope="module")
def tfc():
    return load("tfc_w2a2")


def _raw(tech: str, name: str) -> float:
    """A value read straight from the CSV text, not through PimParams."""
    (row,) = (r for r in parameter_table() if r["tech"] == tech and r["name"] == name)
    return float(row["value"])


# -- the parameter table ---------------------------------------------------------------------


def test_every_parameter_has_a_source_citation_or_stated_assumption():
    rows = parameter_table()
    assert len(rows) >= 40
    for r in rows:
        src = r["source"].strip()
        assert src, r
        # a citation names a year or an address; anything else must say it is an assumption
        assert src.startswith("assumed: ") or re.search(r"(19|20)\d\d|https?://", src), r


def test_unsourced_or_non_numeric_rows_are_rejected(tmp_path):
    text = tmp_path / "p.csv"
    good = default_params().table()
    lines = ["tech,name,value,unit,source"]
    for r in good:
        src = "" if r["name"] == "e_gate_pj" else "x 2020"
        lines.append(f"{r['tech']},{r['name']},{r['value']},{r['unit']},{src}")
    text.write_text("\n".join(lines))
    with pytest.raises(
        ValueError, match=r"^.*p\.csv: parameter nor\.e_gate_pj: source must be given$"
    ):
        load_params(text)
    text.write_text("tech,name,value,unit,source\nnor,e_gate_pj,lots,pJ,x\n")
    with pytest.raises(
        ValueError, match=r"parameter nor\.e_gate_pj: value must be a number, not 'lots'$"
    ):
        load_params(text)


# -- programs and the layer model, derived independently -------------------------------------


@pytest.mark.parametrize("tech", ["sot-mram", "nor"])
def test_dot_profile_equals_the_whole_program(jet, tech):
    m = dense_mapping(jet, "fc4", tech)  # k = 32: the whole program is built here
    prog = m.program
    prof = dot_profile(m.k, m.bits, m.acc_bits, tech, bias=m.bias is not None)
    assert dict(prof.counts) == dict(prog.counts())
    assert (prof.cycles, prof.compute_cycles, prof.rows_used) == (
        prog.cycles,
        prog.compute_cycles,
        prog.rows_used,
    )


def test_digital_layer_cycles_and_energy_from_the_program(jet):
    """fc4 (5 outputs) on 16-column NOR subarrays, 2 of them, batch 13: 65 columns of work,
    3 passes of at most 32; energy from the micro-op counts and the table's raw values."""
    config = PimConfig(tech="nor", cols=16, arrays=2)
    report = evaluate(jet, config, batch=13)
    (fc4,) = (la for la in report.layers if la.layer == "fc4")
    prog = dense_mapping(jet, "fc4", "nor").program
    jobs = 5 * 13
    passes = math.ceil(jobs / 32)
    assert (fc4.jobs, fc4.arrays, fc4.passes) == (jobs, 2, passes) == (65, 2, 3)
    assert fc4.cycles == passes * prog.cycles
    t_cycle = max(_raw("nor", "t_switch_ns"), _raw("digital", "t_sense_ns"))
    assert fc4.latency_ns == pytest.approx(fc4.cycles * t_cycle, rel=REL)
    e = {
        Op.INIT0: _raw("nor", "e_write_pj"),
        Op.INIT1: _raw("nor", "e_write_pj"),
        Op.LOAD: _raw("nor", "e_write_pj"),
        Op.MNOR: _raw("nor", "e_gate_pj"),
        Op.MNOT: _raw("nor", "e_gate_pj"),
        Op.STORE: _raw("digital", "e_sa_pj")
        + _raw("nor", "read_power_uw") * _raw("digital", "t_sense_ns") * 1e-3,
    }
    dynamic = sum(n * e[op] * jobs for op, n in prog.counts().items())
    static = _raw("digital", "leak_column_nw") * 16 * 2 * fc4.latency_ns * 1e-6
    assert fc4.energy_pj == pytest.approx(dynamic + static, rel=REL)
    assert fc4.utilisation == pytest.approx(jobs / (passes * 2 * 16), rel=REL)
    # the area: the two provisioned subarrays, cells and periphery in F^2
    f2 = (_raw("digital", "feature_nm") * 1e-3) ** 2
    per_col = _raw("nor", "sense_amps_per_column") * _raw("digital", "sa_area_f2")
    per_col += _raw("nor", "write_driver_area_f2")
    sub = 256 * 16 * _raw("nor", "cell_area_f2") + 16 * per_col
    sub += 256 * _raw("digital", "row_driver_area_f2")
    assert report.arrays == 2
    assert report.area_mm2 == pytest.approx(2 * sub * f2 * 1e-6, rel=REL)


def test_sot_mram_cycle_is_sense_plus_write(jet):
    report = evaluate(jet, PimConfig(tech="sot-mram"), batch=2)
    cycle = _raw("digital", "t_sense_ns") + _raw("sot-mram", "t_write_ns")
    for la in report.layers:
        prog = dense_mapping(jet, la.layer, "sot-mram")
        prof = dot_profile(prog.k, prog.bits, prog.acc_bits, "sot-mram", bias=True)
        assert la.passes == 1 and la.cycles == prof.cycles
        assert la.latency_ns == pytest.approx(la.cycles * cycle, rel=REL)


def test_analog_layer_conversions_and_energy(tfc):
    """tfc fc0: 784 uint8 inputs, 64 outputs, weights in [-2, 2] (int3); 256x256 tiles of
    2-bit cells, a 1-bit DAC: 4 row tiles, 2 slices (128 columns), 8 input cycles."""
    batch = 3
    w = tfc["fc0"].weight
    assert (w.min(), w.max()) == (-2, 2)
    report = evaluate(tfc, PimConfig(mode="analog", adc_bits=6), batch=batch)
    fc0 = report.layers[0]
    assert (fc0.layer, fc0.k, fc0.jobs, fc0.arrays) == ("fc0", 784, 64 * batch, 4)
    conversions = 8 * 4 * 128 * batch
    assert fc0.energy_breakdown["adc"] == pytest.approx(
        conversions * _raw("analog", "adc_energy_pj_6b"), rel=REL
    )
    assert fc0.energy_breakdown["crossbar"] == pytest.approx(
        8 * batch * 784 * 128 * _raw("analog", "xbar_cell_read_pj"), rel=REL
    )
    assert fc0.cycles == 8 * batch
    # 2 ADCs per tile convert 128 columns: 64 each, at 6/8 of the 8-bit conversion time
    t_adc = _raw("analog", "adc_ns_8b") * 6 / 8
    stage = max(_raw("analog", "xbar_read_ns"), 64 * t_adc)
    fill = min(_raw("analog", "xbar_read_ns"), 64 * t_adc)
    assert fc0.latency_ns == pytest.approx(8 * batch * stage + fill, rel=REL)
    assert report.arrays == sum(la.arrays for la in report.layers)


# -- the sweep against the single-design model -----------------------------------------------


def test_sweep_equals_evaluate_point_by_point(jet):
    df = sweep(
        jet,
        modes=("digital", "analog"),
        rows=(64, 256),
        cols=(32, 256),
        arrays=(None, 3),
        adc_bits=(4, 9),
        cell_bits=(1, 2),
        dac_bits=(1, 2),
        adc_share=(32, 128),
        batch=5,
    )
    # digital: 2 techs x 2 rows x 2 cols x 2 arrays; analog: 2^7 less adc_share 128 > cols 32
    assert len(df) == 16 + 128 - 32
    assert df["feasible"].any() and not df["feasible"].all()
    fields = PimConfig.__dataclass_fields__
    for rec in df.to_dict("records"):
        config = PimConfig(**{k: (None if k == "arrays" and pd.isna(rec[k]) else rec[k])
                              for k in fields})  # fmt: skip
        if not rec["feasible"]:
            with pytest.raises(ConfigError, match=r"^(rows|arrays) must be at least \d+ "):
                evaluate(jet, config, batch=5)
            continue
        r = evaluate(jet, config, batch=5)
        assert rec["cycles"] == r.cycles
        assert rec["arrays_used"] == r.arrays
        for key in ("latency_ns", "energy_pj", "area_mm2", "utilisation"):
            assert rec[key] == pytest.approx(getattr(r, key), rel=1e-9), (key, config)
        assert 0 < rec["utilisation"] <= 1
        assert all(0 < la.utilisation <= 1 for la in r.layers)


# -- technologies ----------------------------------------------------------------------------


def test_sot_mram_is_faster_and_the_drivers_are_computed(jet):
    t = technology_ratios(jet, training=False, fmt="int", batch=4)
    r = t.ratios
    assert r["latency"] > 1 and r["cycles"] > 1 and r["energy"] > 1
    assert r["cycles"] == t.nor.cycles / t.sot.cycles
    # the latency ratio is cycles x cycle time: NOR's cycle is its switching pulse alone, the
    # SOT-MRAM cycle shares t_sense and t_write
    e = {(s.tech, s.name): s.elasticity for s in t.sensitivities if s.metric == "latency"}
    sense, write = _raw("digital", "t_sense_ns"), _raw("sot-mram", "t_write_ns")
    assert e[("nor", "t_switch_ns")] == pytest.approx(1, abs=1e-6)
    assert e[("sot-mram", "t_write_ns")] == pytest.approx(-write / (sense + write), abs=1e-3)
    assert all(s.elasticity == 0 for s in t.sensitivities if s.metric == "cycles")
    assert t.drivers("latency", 1)[0].name == "t_switch_ns"
    frame = t.to_frame()
    assert list(frame["metric"]) == ["energy", "latency", "area", "cycles"]
    json.dumps(t.as_dict())


def test_aritpim_integer_rows(jet):
    rows = aritpim_comparison(fp=False)
    assert [r.fmt for r in rows] == ["uint8", "uint16", "uint32"]
    for r, n in zip(rows, (8, 16, 32), strict=True):
        assert r.nor_cycles == r.aritpim_cycles == 18 * n + 1
        assert r.sot_mram_cycles == int_program("add", n, "sot-mram").compute_cycles
        assert r.sot_mram_cycles < r.nor_cycles


def test_report_serialises(jet):
    r = evaluate(jet, PimConfig(), batch=2)
    d = json.loads(json.dumps(r.as_dict()))
    assert d["totals"]["cycles"] == r.cycles and len(d["layers"]) == 4
    frame = r.to_frame()
    assert list(frame["layer"]) == ["fc1", "fc2", "fc3", "fc4"]
    assert frame["energy_pj"].sum() == pytest.approx(r.energy_pj, rel=REL)


# -- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"mode": "quantum"}, ConfigError, "mode must be one of digital, analog, not 'quantum'"),
        ({"tech": "sram"}, ConfigError, "tech must be one of sot-mram, nor, not 'sram'"),
        ({"rows": 1}, ConfigError, "rows must be an int in [2, 65536], not 1"),
        ({"cols": "256"}, TypeError, "cols must be an int, not '256'"),
        ({"arrays": 0}, ConfigError, "arrays must be an int >= 1, not 0"),
        ({"fmt": "fp16"}, ConfigError, "fmt must be one of int, bf16, fp32, not 'fp16'"),
        ({"mode": "analog", "adc_share": 300}, ConfigError, "adc_share must be an int in "
                                                             "[1, 256], not 300"),
        ({"cell_bits": 9}, ConfigError, "cell_bits must be an int in [1, 8], not 9"),
        ({"mode": "analog", "fmt": "fp32"}, ConfigError, "fmt must be int in analog mode, "
                                                          "not 'fp32'"),
    ],
)  # fmt: skip
def test_bad_configs_raise(changes, error, message):
    with pytest.raises(error, match="^" + re.escape(message) + "$"):
        PimConfig(**changes)


def test_bad_evaluations_raise(jet):
    def check(message, *args, **kwargs):
        with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
            evaluate(jet, *args, **kwargs)

    tall = dense_mapping(jet, "fc1", "sot-mram").program.rows_used
    assert 64 < tall <= 256
    check(f"rows must be at least {tall} (the rows layer 'fc1''s forward program uses on "
          "sot-mram), not 64", PimConfig(rows=64))  # fmt: skip
    check("fmt must be bf16 or fp32 for a training step, not 'int'", training=True)
    check("mode must be digital for a training step, not 'analog'",
          PimConfig(mode="analog"), training=True)  # fmt: skip
    check("arrays must be at least 4 (the crossbars holding every layer's weights) in analog "
          "mode, not 2", PimConfig(mode="analog", arrays=2))  # fmt: skip
    with pytest.raises(ConfigError, match=r"^batch must be an int >= 1, not 0$"):
        evaluate(jet, batch=0)
    with pytest.raises(TypeError, match=r"^net must be a Network, not 'jet_tagger'$"):
        evaluate("jet_tagger")


# -- floating point (models/pim/fp.py) -------------------------------------------------------


def test_training_step_maps_the_three_products(jet):
    pytest.importorskip("codesign.models.pim.fp")
    from codesign.models.pim.fp import fp_program

    batch = 4
    report = evaluate(jet, PimConfig(tech="sot-mram", fmt="bf16"), training=True, batch=batch)
    mul, add = fp_program("mul", "bf16", "sot-mram"), fp_program("add", "bf16", "sot-mram")
    per_mac = mul.cycles + add.cycles
    phases = {(la.layer, la.phase): la for la in report.layers}
    assert ("fc1", "input_grad") not in phases  # the network's input needs no gradient
    assert len(phases) == 4 * 3 - 1
    for layer in ("fc1", "fc2", "fc3", "fc4"):
        n, k = jet[layer].weight.shape
        fwd, wg = phases[(layer, "forward")], phases[(layer, "weight_grad")]
        assert (fwd.k, fwd.jobs) == (k, n * batch)
        assert (wg.k, wg.jobs) == (batch, k * n)
        for la in (fwd, wg):
            assert la.cycles == la.passes * la.k * per_mac
        if layer != "fc1":
            ig = phases[(layer, "input_grad")]
            assert (ig.k, ig.jobs, ig.cycles) == (n, k * batch, ig.passes * n * per_mac)
    # the sweep's training steps equal evaluate's
    df = sweep(jet, cols=(64, 256), arrays=(None, 5), fmt="bf16", training=True, batch=batch)
    for rec in df.to_dict("records"):
        arrays = None if pd.isna(rec["arrays"]) else rec["arrays"]
        config = PimConfig(tech=rec["tech"], cols=rec["cols"], arrays=arrays, fmt="bf16")
        r = evaluate(jet, config, training=True, batch=batch)
        assert rec["cycles"] == r.cycles
        assert rec["energy_pj"] == pytest.approx(r.energy_pj, rel=1e-9)
        assert rec["area_mm2"] == pytest.approx(r.area_mm2, rel=1e-9)


def test_aritpim_floating_point_rows():
    pytest.importorskip("codesign.models.pim.fp")
    rows = aritpim_comparison()
    fp_rows = [r for r in rows if r.fmt in ("bf16", "fp32")]
    assert len(fp_rows) == 5
    for r in fp_rows:
        assert 0 < r.sot_mram_cycles < r.nor_cycles
