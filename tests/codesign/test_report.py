"""report.md and its figures: the tables, the links, valid SVG, byte-stable output."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from codesign.models.hwconfig import HardwareConfig
from codesign.sim.results import Interval, SimResult, StageStats

import codesign
from codesign.report import timeline_figure, utilisation_figure, write_report

SVG = "{http://www.w3.org/2000/svg}svg"


def fake_result(d) -> SimResult:
    """A hand-made, self-consistent prediction for ``d``: the report does not judge it."""
    stages, timeline = [], []
    ii, frames = d.ideal_ii, 4
    cycles = 20 + frames * ii
    for i, s in enumerate(d.stages):
        c = d.cycles(s)
        busy, blocked = frames * c, i
        for f in range(2):
            t = 5 * i + f * ii
            timeline += [Interval(s.name, t, t + c, "busy")]
            if c < ii:
                timeline += [Interval(s.name, t + c, t + ii, "starved")]
        timeline += [Interval(s.name, 5 * i + 2 * ii, 5 * i + 2 * ii + 1, "blocked")]
        stages.append(
            StageStats(
                name=s.name,
                kind=s.kind.value,
                pe=d.config[s.name].pe,
                simd=d.config[s.name].simd,
                ideal_cycles=c,
                busy=busy,
                starved=cycles - busy - blocked,
                blocked=blocked,
                utilisation=busy / cycles,
                fifo_depth=None if i == 0 else d.fifo_depth(s),
                fifo_max=None if i == 0 else 1 + i,
                fifo_full_cycles=None if i == 0 else 0,
                first_out=5 * i + c,
                last_out=5 * i + frames * ii,
            )
        )
    return SimResult(
        network=d.network.name,
        frames=frames,
        input_rate=1.0,
        clock_mhz=d.config.clock_mhz,
        latency=17,
        latency_last=20,
        ii=float(ii),
        ideal_ii=ii,
        cycles=cycles,
        stages=tuple(stages),
        timeline=tuple(timeline),
        frames_simulated=frames,
        output_ends=tuple(20 + k * ii for k in range(frames)),
    )


@pytest.fixture(scope="module")
def jet():
    net = codesign.load("jet_tagger")
    # a 100 MHz clock target, as the stored results below were written for
    d = codesign.design(net, HardwareConfig(clock_mhz=100.0))
    return net, d, fake_result(d)


VERIFY = {
    "sim": "verilator",
    "frames": 20,
    "mismatches": 0,
    "latency": 20,
    "ii": 32.0,
}  # the default jet_tagger design: II 32
SYNTH = {
    "target": "ecp5",
    "device": "LFE5U-25F",
    "lut": 2000,
    "ff": 900,
    "dsp": 0,
    "bram": 2,
    "fmax_mhz": 85.5,
    "blocks": [{"block": "stage_fc1", "lut": 700, "ff": 300}, {"block": "top", "lut": 9}],
}
#: The path of a result of codesign.synthesize (the cells as nextpnr names them).
PATH = {
    "from": "stage_fc1.u0_mvau",
    "to": "stage_fc1.u1_activation",
    "from_cell": "core.stage_fc1.u0_mvau.acc_TRELLIS_FF_Q",
    "to_cell": "core.stage_fc1.u1_activation.o__payload_TRELLIS_FF_Q_3",
    "delay_ns": 11.696,
    "logic_ns": 4.25,
    "routing_ns": 7.446,
    "logic_levels": 9,
}
#: A result at two speed grades, one missing the clock target and one meeting it.
TIMED = {
    **SYNTH,
    "clock_mhz": 100.0,
    "speed": 6,
    "critical_path": PATH,
    "meets_clock": False,
    "timing": [
        {"speed": 6, "fmax_mhz": 85.5, "meets_clock": False, "critical_path": PATH},
        {"speed": 8, "fmax_mhz": 125.0, "meets_clock": True, "critical_path": PATH},
    ],
}
COST = {"lut": 1800, "ff": 1000, "dsp": 0, "bram": 2}


def _report(out, jet, **kw):
    net, d, r = jet
    return write_report(out, summary=codesign.summary(net), design=d, sim_result=r, **kw)


def test_figures_are_valid_svg(tmp_path, jet):
    _, d, r = jet
    for fn, name, axes in ((timeline_figure, "t.svg", 1), (utilisation_figure, "u.svg", 2)):
        path = fn(r, tmp_path / "fig" / name)
        root = ET.parse(path).getroot()
        assert root.tag == SVG
        text = path.read_text()
        assert "<dc:date>" not in text  # no timestamp: the bytes depend on the inputs only
        # the stage names are drawn as glyph paths; each stage has a tick on each axes
        assert len(re.findall(r'<g id="ytick_\d+">', text)) == axes * len(d.stages)
    assert [p.name for p in (tmp_path / "fig").iterdir() if p.name.startswith(".")] == []


def test_report_tables_and_links(tmp_path, jet):
    path = _report(
        tmp_path,
        jet,
        verify_result=VERIFY,
        synth_result=SYNTH,
        cost_result=COST,
        golden={"vectors": 20, "seed": 0, "output_sha256": "ab" * 32},
    )
    assert path == tmp_path / "report.md"
    md = path.read_text()
    assert md.startswith("# jet_tagger\n")
    assert "| stage | kind | layers | PE | SIMD | folding | FIFO depth | cycles/frame |" in md
    assert re.search(
        r"^\| fc1 \| mvau \| fc1\+relu1\+act1 \| 4 \| 8 \| auto \| — \| \d+ \|$", md, re.M
    )
    assert re.search(r"^\| latency \(cycles\) \| 17 \| 20 \| -15\.0 % \|$", md, re.M)
    assert re.search(r"^\| II \(cycles/frame\) \| 32 \| 32 \| \+0\.0 % \|$", md, re.M)
    assert re.search(r"^\| LUT \| 1800 \| 2000 \| -10\.0 % \|$", md, re.M)
    assert re.search(r"^\| Fmax \(MHz\) \| — \| 85\.50 \| — \|$", md, re.M)
    assert re.search(
        r"^- The design \*\*misses 100 MHz by 14\.5 MHz \(Fmax 85\.5 MHz\)\*\* "
        r"\(nextpnr\)\.$",
        md,
        re.M,
    )
    # real units at the clock target: 17 and 20 cycles at 100 MHz, 1e8 / 32 frames/s
    assert re.search(r"^\| clock target \| 100 \| 170\.0 \| 200\.0 \| 3,125,000 \|$", md, re.M)
    assert re.search(r"^\| block \| LUT \| FF \|$\n.*\n\| stage_fc1 \| 700 \| 300 \|$", md, re.M)
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", md):
        assert (tmp_path / link).is_file(), link
    assert sorted(re.findall(r"\]\(([^)]+\.svg)\)", md)) == ["timeline.svg", "utilisation.svg"]


def test_report_names_the_critical_path_per_speed_grade(tmp_path, jet):
    md = _report(tmp_path, jet, synth_result=TIMED, cost_result=COST).read_text()
    assert re.search(
        r"^- The design \*\*misses 100 MHz by 14\.5 MHz \(Fmax 85\.5 MHz at speed 6\); "
        r"critical path stage_fc1\.u0_mvau → stage_fc1\.u1_activation\*\* \(nextpnr\)\.$",
        md,
        re.M,
    )
    assert re.search(
        r"^- The design meets 100 MHz \(Fmax 125\.0 MHz at speed 8, slack 2\.00 ns\) "
        r"\(nextpnr\)\.$",
        md,
        re.M,
    )
    assert re.search(
        r"^  Critical path stage_fc1\.u0_mvau → stage_fc1\.u1_activation: 11\.70 ns, 4\.25 ns "
        r"in logic and 7\.45 ns in routing, 9 logic levels, from "
        r"`core\.stage_fc1\.u0_mvau\.acc_TRELLIS_FF_Q` to "
        r"`core\.stage_fc1\.u1_activation\.o__payload_TRELLIS_FF_Q_3`\.$",
        md,
        re.M,
    )
    # latency 17 cycles, 20 to the last beat, II 32: at the target and at each Fmax
    rows = re.findall(r"^\| (clock target|achieved Fmax.*?) \| (.*)\|$", md, re.M)
    assert rows == [
        ("clock target", "100 | 170.0 | 200.0 | 3,125,000 "),
        ("achieved Fmax (speed 6)", "85.5 | 198.8 | 233.9 | 2,671,875 "),
        ("achieved Fmax (speed 8)", "125 | 136.0 | 160.0 | 3,906,250 "),
    ]


def test_report_without_hardware(tmp_path, jet):
    md = _report(tmp_path, jet).read_text()
    assert "Hardware verification was skipped" in md
    assert "Synthesis was skipped." in md
    assert "![busy/stall timeline](timeline.svg)" in md


def test_report_bytes_identical_across_runs(tmp_path, jet):
    kw = {"verify_result": VERIFY, "synth_result": SYNTH}
    _report(tmp_path / "a", jet, **kw)
    _report(tmp_path / "b", jet, **kw)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["report.md", "timeline.svg", "utilisation.svg"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
