"""``codesign bnn`` and the binary statistics of ``codesign info``."""

from __future__ import annotations

import json

import pytest
from codesign.models.binary import tulip
from codesign.sim.binary.tulip import timing

import codesign
from codesign.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_bnn_json_reports_cycles_and_energy_both_ways(capsys):
    status, out, _ = run(capsys, "bnn", "tfc_w1a1", "--json", "--pes", "8")
    assert status == 0
    doc = json.loads(out)
    prog = tulip.map_network(codesign.load("tfc_w1a1"), tulip.TulipArray(pes=8))
    assert doc["cycles"] == timing(prog, 16).to_dict()
    assert [s["layer"] for s in doc["schedule"]] == ["fc0", "fc1", "fc2", "fc3"]
    e = doc["energy"]
    assert e["tulip_pj"] > 0 and e["mac_pj"] > 0 and e["ratio"] == e["mac_pj"] / e["tulip_pj"]
    o = doc["ops_saved"]
    assert o["direct_xnors"] == 784 * 64 + 64 * 64 * 2 + 64 * 10
    assert o["saved"] == o["direct_xnors"] - o["xnors"] == sum(o["layers"].values()) > 0
    sourced = {p["name"]: p["source"] for p in e["parameters"]}
    for row in e["rows"]:
        assert all(sourced[name] for name in row["parameters"])


def test_bnn_text(capsys):
    status, out, _ = run(capsys, "bnn", "tfc_w1a1")
    assert status == 0
    assert "tfc_w1a1 on TULIP: 16 PEs x 4 TLN cells" in out
    assert "MAC / TULIP =" in out


def test_bnn_refuses_what_tulip_cannot_run(capsys):
    status, out, err = run(capsys, "bnn", "jet_tagger")
    assert status == 2 and not out
    assert err == (
        "codesign: error: layer 'fc1': dense has no TULIP mapping; TULIP maps binary_dense "
        "layers of the binary encoding, each followed by at most one sign threshold\n"
    )
    status, _, err = run(capsys, "bnn", "tfc_w1a1", "--in-width", "5")
    assert status == 2
    assert err == (
        "codesign: error: TULIP in_width must divide the 784 input bits of 'tfc_w1a1', not 5\n"
    )


def test_info_shows_binary_layer_statistics(capsys):
    status, out, _ = run(capsys, "info", "tfc_w1a1", "--json")
    assert status == 0
    rows = json.loads(out)["binary"]
    assert [(r["layer"], r["channels"], r["fan_in"]) for r in rows] == [
        ("fc0", 64, 784),
        ("fc1", 64, 64),
        ("fc2", 64, 64),
        ("fc3", 10, 64),
    ]
    assert all(0 < r["nearest_min"] <= r["nearest_mean"] < 1 for r in rows)
    status, out, _ = run(capsys, "info", "jet_tagger", "--json")
    assert "binary" not in json.loads(out)


def test_bnn_mst_reports_ops_saved_and_depth(capsys):
    from codesign.models.binary.mst import network_reuse

    status, out, _ = run(capsys, "bnn", "tfc_w1a1", "--mst", "--max-depth", "3", "--json")
    assert status == 0
    rows = {r["name"]: r for r in json.loads(out)["mst"]}
    trees = network_reuse(codesign.load("tfc_w1a1"), max_depth=3)
    assert set(rows) == set(trees) == {"fc0", "fc1", "fc2", "fc3"}
    for name, tree in trees.items():
        r = rows[name]
        assert (r["ops"], r["direct_ops"], r["max_depth"]) == (
            tree.ops,
            tree.direct_ops,
            tree.max_depth,
        )
        assert r["ops_saved"] == r["direct_ops"] - r["ops"] > 0
        assert r["max_depth"] <= 3 and r["plain_ops"] <= r["ops"]
    from codesign.sim.binary.mst import mst_timing

    t = mst_timing(codesign.load("tfc_w1a1"), max_depth=3)
    assert json.loads(out)["mst_cycles"] == {"latency": t.latency, "ii": t.ii}
    status, out, _ = run(capsys, "bnn", "tfc_w1a1", "--mst")
    assert status == 0 and "the MST MVAU chain (hdl/binary/mst.py): latency 1848" in out


#: 47 s of a CI run over its 35 minutes (2026-12-07): ``slow``; the two datapaths' RTL is proven
#: at model timing in the default run by tests/hdl/test_binary_tulip.py and test_binary_mst.py
@pytest.mark.slow
@pytest.mark.simulator
def test_bnn_verify_proves_both_datapaths_at_model_timing(capsys, tmp_path):
    """The builds are the ones tests/hdl/test_binary_*.py make (same Verilog, so cached)."""
    status, out, _ = run(
        capsys, "bnn", "tfc_w1a1", "--mst", "--verify", "20", "--json", "-o", str(tmp_path)
    )
    assert status == 0
    v = json.loads(out)["verify"]
    for name in ("tulip", "mst"):
        r = v[name]
        assert r["passed"] and r["mismatches"] == 0 and not r["timed_out"], r
        assert (r["latency"], r["ii"]) == (r["predicted_latency"], r["predicted_ii"]), r
    assert (tmp_path / "tulip" / "manifest.json").exists()
    assert (tmp_path / "mst" / "manifest.json").exists()
