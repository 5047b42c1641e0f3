"""The energy model: every figure traces to a sourced parameter, counts come from the
schedule, totals add up, and node scaling leaves the ratio alone."""

from __future__ import annotations

import re
from importlib import resources

import numpy as np
import pytest
from codesign.models.binary import tulip
from codesign.sim.binary.energy import energy_table, load_params

import codesign


@pytest.fixture(scope="module")
def tfc():
    return tulip.map_network(codesign.load("tfc_w1a1"))


def test_every_parameter_has_a_source_and_every_row_names_known_parameters(tfc):
    p = load_params()
    assert all(prm.source for prm in p.params.values())
    t = energy_table(tfc, p)
    for r in t["rows"]:
        assert r["parameters"] and set(r["parameters"]) <= set(p.params), r
        assert r["energy_pj"] == pytest.approx(r["count"] * r["unit_pj"])
    names = {d["name"] for d in t["parameters"]}
    assert {"add8_pj", "add32_pj", "sram_8kb_pj", "tln_eval_pj"} <= names


def test_totals_are_the_sums_of_their_rows(tfc):
    t = energy_table(tfc)
    tulip_rows = [r for r in t["rows"] if r["design"] == "tulip"]
    assert t["tulip_pj"] == pytest.approx(sum(r["energy_pj"] for r in tulip_rows if r["in_total"]))
    assert t["tulip_with_control_rom_pj"] == pytest.approx(sum(r["energy_pj"] for r in tulip_rows))
    assert t["mac_pj"] == pytest.approx(
        sum(r["energy_pj"] for r in t["rows"] if r["design"] == "mac")
    )
    assert t["ratio"] == pytest.approx(t["mac_pj"] / t["tulip_pj"])


def test_counts_come_from_the_network_and_the_schedule(tfc):
    t = energy_table(tfc)
    rows = {(r["design"], r["component"]): r for r in t["rows"]}
    assert rows[("tulip", "TLN evaluations")]["count"] == sum(s.ops * s.neurons for s in tfc.layers)
    weights = 784 * 64 + 64 * 64 * 2 + 64 * 10
    assert rows[("tulip", "weight bits read (local memory)")]["count"] == weights
    assert rows[("mac", "weight bits read (SRAM)")]["count"] == weights
    macs = sum(r["count"] for (d, c), r in rows.items() if d == "mac" and "accumulate" in c)
    assert macs == weights


def test_a_three_input_neuron_by_hand():
    """K = 3, one neuron: one full adder (2 evaluations) and a 3-bit compare chain (3)."""
    prog = tulip.TulipProgram(
        "t3",
        tulip.TulipArray(pes=1),
        (tulip.map_layer("l", np.array([[1, 0, 1]]), np.array([2]), tulip.TulipArray(pes=1)),),
    )
    p = load_params()
    t = energy_table(prog, p)
    tln = next(r for r in t["rows"] if r["component"] == "TLN evaluations")
    assert tln["count"] == 5
    assert tln["energy_pj"] == pytest.approx(5 * 0.03 / 8 * 40 / 45)
    mac = next(r for r in t["rows"] if r["component"].startswith("l: XNOR"))
    # XNOR + a 2-bit add, interpolated in width from Horowitz's 8- and 32-bit adds
    assert mac["unit_pj"] == pytest.approx((0.03 / 8 + 0.03 - 6 * 0.07 / 24) * 40 / 45)


def test_node_scaling_moves_energies_not_the_ratio(tfc, tmp_path):
    base = energy_table(tfc)
    text = resources.files("codesign.sim").joinpath("energy.csv").read_text()
    scaled = re.sub(r"^target_vdd,0\.9,", "target_vdd,1.8,", text, flags=re.M)
    path = tmp_path / "p.csv"
    path.write_text(scaled)
    t = energy_table(tfc, load_params(path))
    assert t["scale"] == pytest.approx(4 * base["scale"])
    assert t["tulip_pj"] == pytest.approx(4 * base["tulip_pj"])
    assert t["ratio"] == pytest.approx(base["ratio"])


def test_a_parameter_without_a_source_is_refused(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("name,value,unit,source\nadd8_pj,0.03,pJ,\n")
    with pytest.raises(ValueError, match=r"^.*p\.csv: parameter 'add8_pj': source must be given$"):
        load_params(path)
    path.write_text("name,value,unit,source\nadd8_pj,cheap,pJ,me\n")
    with pytest.raises(ValueError, match=r"value must be a number, not 'cheap'$"):
        load_params(path)
