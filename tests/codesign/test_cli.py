"""The command line: JSON documents, one-line errors with exit status 2, safe writes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from xml.etree import ElementTree

import numpy as np
import pytest
from codesign.models.golden import golden
from codesign.models.loader import load, zoo_names

from codesign.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_zoo_json(capsys):
    status, out, _ = run(capsys, "zoo", "--json")
    assert status == 0
    names = [n["name"] for n in json.loads(out)["networks"]]
    assert names == zoo_names()
    assert names == [
        "cnv_small",
        "cnv_tiny",
        "dcn_tiny",
        "dcn_tiny_dw",
        "jet_tagger",
        "resnet_tiny",
        "tfc_w1a1",
        "tfc_w2a2",
    ]


def test_info_tfc_json(capsys):
    status, out, _ = run(capsys, "info", "tfc_w1a1", "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["input"] == {"name": "input", "shape": [784], "type": "uint1"}
    fc0 = next(la for la in doc["layers"] if la["name"] == "fc0")
    assert fc0["op"] == "binary_dense" and fc0["range"] == [0, 784]
    assert fc0["accumulator_bits"] == 10 and fc0["fan_in"] == 784
    assert doc["folded_batchnorms"] == {"bn0": "act0", "bn1": "act1", "bn2": "act2"}
    assert doc["totals"]["macs"] == 784 * 64 + 64 * 64 * 2 + 64 * 10


def test_golden_random_json(capsys):
    status, out, _ = run(
        capsys, "golden", "jet_tagger", "--random", "1000", "--seed", "1", "--json"
    )
    assert status == 0
    doc = json.loads(out)
    assert doc["vectors"] == 1000 and doc["output_shape"] == [1000, 5]
    rng_x = np.random.default_rng(1)
    net = load("jet_tagger")
    x = rng_x.integers(-32768, 32767, size=(1000, 16), endpoint=True)
    assert np.array_equal(np.array(doc["outputs"]), golden(net, x))
    # same seed, same bytes
    status, again, _ = run(
        capsys, "golden", "jet_tagger", "--random", "1000", "--seed", "1", "--json"
    )
    assert again == out


def test_golden_input_output_and_trace(capsys, tmp_path):
    net = load("cnv_tiny")
    x = np.random.default_rng(3).integers(0, 256, (5, 1, 28, 28))
    np.save(tmp_path / "x.npy", x)
    status, out, _ = run(
        capsys,
        "golden",
        "cnv_tiny",
        "--input",
        str(tmp_path / "x.npy"),
        "--output",
        str(tmp_path / "y.npy"),
        "--trace",
        str(tmp_path / "tr"),
        "--json",
    )
    assert status == 0
    y = np.load(tmp_path / "y.npy")
    assert np.array_equal(y, golden(net, x))
    assert sorted(p.stem for p in (tmp_path / "tr").iterdir()) == sorted(la.name for la in net)
    assert np.array_equal(np.load(tmp_path / "tr" / "pool1.npy").shape, (5, 8, 13, 13))
    assert json.loads(out)["trace"]["fc"].endswith("fc.npy")


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (
            ["info", "nonet"],
            r"nonet: must be a zoo name \(.*\) or a \.yaml/\.yml/\.json "
            r"description",
        ),
        (
            ["golden", "jet_tagger"],
            r"codesign golden: one of the arguments --input --random "
            r"is required",
        ),
        (
            ["golden", "jet_tagger", "--random", "0"],
            r"codesign golden: argument --random: "
            r"must be a positive int, not '0'",
        ),
        (["frobnicate"], r"codesign: argument command: invalid choice: 'frobnicate' .*"),
        (
            ["golden", "jet_tagger", "--input", "/nonexistent/x.npy"],
            r"/nonexistent/x\.npy: no such file",
        ),
        (
            ["sim", "jet_tagger", "--input-rate", "1.5"],
            r"codesign sim: argument --input-rate: must be a number in \(0, 1\], not '1\.5'",
        ),
        (
            ["sim", "jet_tagger", "--input-rate", "0"],
            r"codesign sim: argument --input-rate: must be a number in \(0, 1\], not '0'",
        ),
        (
            ["sim", "jet_tagger", "--input-rate", "fast"],
            r"codesign sim: argument --input-rate: must be a number in \(0, 1\], not 'fast'",
        ),
        (
            ["sim", "jet_tagger", "--frames", "0"],
            r"codesign sim: argument --frames: must be a positive int, not '0'",
        ),
        (
            ["sim", "jet_tagger", "--plot", "t.png"],
            r"codesign sim: argument --plot: must be a \.svg file, not 't\.png'",
        ),
    ],
)
def test_user_errors_are_one_line_exit_2(capsys, argv, pattern):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert re.fullmatch(rf"codesign: error: {pattern}\n", err), err


def test_bad_input_vectors(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.full((2, 16), 40000))
    status, _, err = run(capsys, "golden", "jet_tagger", "--input", str(tmp_path / "x.npy"))
    assert status == 2
    assert re.fullmatch(
        r"codesign: error: .*x\.npy: value 40000 at index \(0, 0\) is outside "
        r"the input type fixed<16,6> \[-32768, 32767\]\n",
        err,
    )
    np.save(tmp_path / "s.npy", np.zeros((2, 15), dtype=np.int64))
    status, _, err = run(capsys, "golden", "jet_tagger", "--input", str(tmp_path / "s.npy"))
    assert re.fullmatch(
        r"codesign: error: .*s\.npy: must have shape \(N, 16\), not "
        r"\(2, 15\)\n",
        err,
    )


def test_failed_run_leaves_existing_output_intact(capsys, tmp_path):
    out = tmp_path / "y.npy"
    out.write_bytes(b"precious")
    np.save(tmp_path / "x.npy", np.full((1, 16), 1.5))
    status, _, _ = run(
        capsys, "golden", "jet_tagger", "--input", str(tmp_path / "x.npy"), "--output", str(out)
    )
    assert status == 2
    assert out.read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_malformed_description_via_cli(capsys, tmp_path):
    (tmp_path / "n.yaml").write_text(
        "format: 1\ninput: {shape: [2], type: int8}\nlayers:\n"
        "  - {name: a, op: dense, weight: [[1, 2, 3]]}\n"
    )
    status, _, err = run(capsys, "info", str(tmp_path / "n.yaml"))
    assert status == 2
    assert re.fullmatch(
        r"codesign: error: .*n\.yaml: layer 'a': field 'weight': must have "
        r"shape \(out, 2\) .*\n",
        err,
    )


def test_run_writes_report(capsys, tmp_path):
    status, out, err = run(
        capsys, "run", "--build", str(tmp_path), "--json", "--vectors", "20", "--no-hardware"
    )
    assert status == 0
    doc = json.loads(out)
    assert doc["network"] == "jet_tagger"
    build = tmp_path / "jet_tagger"
    manifest = json.loads((build / "manifest.json").read_text())
    assert manifest["network_hash"] == doc["summary"]["hash"]
    assert manifest["simulate"]["frames"] == 20 and manifest["simulate"]["ii"] >= 1
    sim = manifest["simulate"]
    assert sim["clock_mhz"] == 150
    assert sim["latency_ns"] == pytest.approx(sim["latency"] * 1000 / 150)
    assert sim["frames_per_s"] == pytest.approx(150e6 / sim["ii"])
    assert "verify" not in manifest and "synth" not in manifest
    report = (build / "report.md").read_text()
    assert doc["report"] == str(build / "report.md")
    assert report.startswith("# jet_tagger")
    assert "![busy/stall timeline](timeline.svg)" in report
    assert "Hardware verification was skipped" in report
    for fig in ("timeline.svg", "utilisation.svg"):
        assert (build / fig).read_text().startswith("<?xml")
    # progress on stderr, one line per step; stdout is the JSON document alone
    assert re.fullmatch(
        r"codesign run: \[1/6\] golden model \d+\.\d s\n"
        r"codesign run: \[2/6\] simulate \d+\.\d s\n"
        r"(codesign run: \[[345]/6\] \w+ skipped \(--no-hardware\)\n){3}"
        r"codesign run: \[6/6\] report \d+\.\d s\n",
        err,
    ), err


def test_sim_json(capsys):
    status, out, _ = run(capsys, "sim", "jet_tagger", "--json", "--frames", "4")
    assert status == 0
    doc = json.loads(out)
    assert {
        "network",
        "frames",
        "input_rate",
        "clock_mhz",
        "latency",
        "latency_last",
        "ii",
        "ideal_ii",
        "cycles",
        "stages",
        "timeline",
        "throughput_fps",
        "latency_ns",
        "latency_last_ns",
        "frames_per_s",
    } <= set(doc)
    assert doc["network"] == "jet_tagger" and doc["frames"] == 4 and doc["input_rate"] == 1
    assert [s["name"] for s in doc["stages"]] == ["fc1", "fc2", "fc3", "fc4"]
    assert {"busy", "starved", "blocked", "utilisation", "fifo_depth", "fifo_max"} <= set(
        doc["stages"][0]
    )
    assert doc["ii"] >= doc["ideal_ii"] and doc["latency_last"] >= doc["latency"] > 0
    assert doc["throughput_fps"] == pytest.approx(doc["clock_mhz"] * 1e6 / doc["ii"])
    # real units at the clock target (the default, 150 MHz)
    assert doc["clock_mhz"] == 150
    assert doc["frames_per_s"] == pytest.approx(150e6 / doc["ii"])
    assert doc["latency_ns"] == pytest.approx(doc["latency"] * 1000 / 150)
    assert doc["latency_last_ns"] == pytest.approx(doc["latency_last"] * 1000 / 150)


def test_sim_prints_the_predicted_fmax(capsys):
    from codesign.models.hwconfig import Design
    from codesign.sim.fmax import predict_fmax

    est = predict_fmax(Design(load("tfc_w2a2")))
    status, out, _ = run(capsys, "sim", "tfc_w2a2", "--frames", "2")
    assert status == 0
    line = out.splitlines()[-1]
    m = re.fullmatch(
        r"predicted Fmax ([\d.]+) MHz \(ECP5 speed 6, without place and route; "
        r"stage (\w+), path ([\w.]+)\): ([\d,]+) frames/s",
        line,
    )
    assert m, line
    assert float(m[1]) == pytest.approx(est.fmax_mhz, abs=0.05)
    assert (m[2], m[3]) == (est.stage, est.path)
    status, out, _ = run(capsys, "sim", "tfc_w2a2", "--frames", "2", "--json")
    doc = json.loads(out)["predicted_fmax"]
    assert doc["fmax_mhz"] == pytest.approx(est.fmax_mhz)
    assert int(m[4].replace(",", "")) == round(doc["frames_per_s"])


def test_sim_text_and_plot(capsys, tmp_path):
    status, out, _ = run(
        capsys, "sim", "tfc_w1a1", "--input-rate", "0.5", "--plot", str(tmp_path / "t.svg")
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("tfc_w1a1: 8 frames at input rate 0.5, 150 MHz")
    m = re.fullmatch(
        r"latency (\d+) cycles to the first output beat, (\d+) to the last beat of frame 0 "
        r"\(([\d,.]+) ns, ([\d,.]+) ns at 150 MHz\)",
        lines[1],
    )
    assert m, lines[1]
    first, last, first_ns, last_ns = m.groups()
    assert float(first_ns.replace(",", "")) == pytest.approx(int(first) * 1000 / 150, abs=0.05)
    assert float(last_ns.replace(",", "")) == pytest.approx(int(last) * 1000 / 150, abs=0.05)
    assert re.match(r"II [\d.]+ cycles/frame \(ideal 14\); [\d,]+ frames/s at 150 MHz", lines[2])
    assert lines[3].split() == [
        "stage", "kind", "PE", "SIMD", "folding", "cycles", "busy", "starved", "blocked",
        "util", "FIFO", "max",
    ]  # fmt: skip
    assert [ln.split()[0] for ln in lines[4:8]] == ["fc0", "fc1", "fc2", "fc3"]
    assert lines[4].split()[:6] == ["fc0", "mvau", "64", "56", "auto", "14"]
    assert lines[-1] == f"wrote {tmp_path / 't.svg'}"
    assert (tmp_path / "t.svg").read_text().startswith("<?xml")


def test_sim_size_fifos_writes_a_config_that_never_stalls(capsys, tmp_path):
    """On tfc_w2a2, whose input runs at 1/8 beat per cycle (tfc_w1a1's default design takes
    a beat every cycle: it has no FIFO worth sizing)."""
    out_yaml = tmp_path / "sized.yaml"
    status, out, _ = run(capsys, "sim", "tfc_w2a2", "--size-fifos", str(out_yaml), "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["config_written"] == str(out_yaml)
    assert set(doc["sized_fifos"]) == {"fc1", "fc2", "fc3"}
    # sized at the pipeline's own pace: one frame of input beats per ideal II
    from codesign.models.hwconfig import Design
    from codesign.sim.dataflow import pipeline_rate

    assert doc["input_rate"] == pipeline_rate(Design(load("tfc_w2a2"))) < 1
    assert doc["ii"] == doc["ideal_ii"]
    assert [s["fifo_full_cycles"] for s in doc["stages"][1:]] == [0, 0, 0]
    # the written config is a hardware config: the same depths when read back
    status, out, _ = run(
        capsys, "sim", "tfc_w2a2", "--config", str(out_yaml), "--input-rate",
        str(doc["input_rate"]), "--json",
    )  # fmt: skip
    again = json.loads(out)
    assert [s["fifo_depth"] for s in again["stages"][1:]] == list(doc["sized_fifos"].values())
    assert [s["fifo_full_cycles"] for s in again["stages"][1:]] == [0, 0, 0]


def test_residual_network_through_the_cli(capsys, tmp_path):
    """resnet_tiny (fork, add stage, skip FIFO, global sum pool): info, sized FIFOs written
    and read back by stage name (the skip FIFO as the add stage's fifo_depth_b), hdl with
    the stage graph in its manifest, and a skip FIFO configured into deadlock is one line."""
    status, out, _ = run(capsys, "info", "resnet_tiny", "--json")
    assert status == 0 and "sumpool2d" in out
    sized = tmp_path / "sized.yaml"
    status, out, _ = run(capsys, "sim", "resnet_tiny", "--size-fifos", str(sized), "--json")
    assert status == 0
    doc = json.loads(out)
    assert {"add", "add__b"} <= set(doc["sized_fifos"]) and doc["ii"] == doc["ideal_ii"]
    skip = doc["sized_fifos"]["add__b"]
    assert f"fifo_depth_b: {skip}" in sized.read_text()
    status, out, _ = run(capsys, "sim", "resnet_tiny", "--config", str(sized), "--json")
    add = next(s for s in json.loads(out)["stages"] if s["name"] == "add")
    assert add["fifo_b_depth"] == skip and add["kind"] == "add"
    status, out, _ = run(
        capsys, "hdl", "resnet_tiny", "--config", str(sized), "-o", str(tmp_path / "h"), "--json"
    )
    assert status == 0
    stages = {s["name"]: s for s in json.loads(out)["stages"]}
    assert stages["add"]["inputs"] == ["conv2", "pool"]
    assert stages["add"]["fifo_depth_b"] == skip
    assert stages["stem"]["inputs"] == [None] and stages["stem"]["fifo_depth"] is None
    (tmp_path / "hw.yaml").write_text("stages:\n  add: {fifo_depth_b: 20}\n")
    status, out, err = run(capsys, "sim", "resnet_tiny", "--config", str(tmp_path / "hw.yaml"))
    assert status == 2 and out == ""
    assert re.fullmatch(
        r"codesign: error: stage 'add': the pipeline deadlocks: fifo_depth_b 20 cannot hold "
        r"what the other input's branch runs ahead; \d+ never deadlocks .*\n",
        err,
    ), err


def test_console_script_no_traceback(tmp_path):
    """The installed entry point itself: exit 2, one stderr line, no traceback."""
    (tmp_path / "bad.yaml").write_text("format: 1\n  oops: [\n")
    proc = subprocess.run(
        [sys.executable, "-m", "codesign.cli", "info", str(tmp_path / "bad.yaml")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_hdl_is_byte_identical_with_manifest_and_core(capsys, tmp_path):
    """On tfc_w2a2 (its weight ROMs are in $readmemh files, which must be identical too)."""
    status, out, _ = run(capsys, "hdl", "tfc_w2a2", "-o", str(tmp_path / "a"), "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["top"] == "tfc_w2a2" and doc["ideal_ii"] == 448
    assert [s["name"] for s in doc["stages"]] == ["fc0", "fc1", "fc2", "fc3"]
    assert (doc["input"]["tdata_bits"], doc["output"]["tdata_bits"]) == (112, 8)
    assert len(doc["memory_files"]) == 3
    assert run(capsys, "hdl", "tfc_w2a2", "-o", str(tmp_path / "b"))[0] == 0
    for f in ("tfc_w2a2.v", "tfc_w2a2.core", "manifest.json", *doc["memory_files"]):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert "toplevel: tfc_w2a2" in (tmp_path / "a" / "tfc_w2a2.core").read_text()


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        (
            "stages:\n  fc0: {pe: 3}\n",
            r".*hw\.yaml: stage 'fc0': pe must divide 64 \(valid: \[1, 2, 4, 8, 16, 32, 64\]\), "
            r"not 3",
        ),
        (
            "stages:\n  fc0: {simd: 5}\n",
            r".*hw\.yaml: stage 'fc0': simd must be one of \[1, 2, 4, 7, 8, 14, 16, 28, 49, .*\], "
            r"not 5",
        ),
        (
            "stages:\n  fc9: {pe: 2}\n",
            r".*hw\.yaml: config names stage 'fc9', which tfc_w1a1 does not have; stages: fc0, "
            r"fc1, fc2, fc3",
        ),
        (
            "pipeline: fast\n",
            r".*hw\.yaml: field 'pipeline': must be one of auto, off, not 'fast'",
        ),
        (
            "stages:\n  fc0: {pee: 2}\n",
            r".*hw\.yaml: layer 'fc0': field 'pee': is not a stage field; expected one of "
            r"banks, fifo_depth, fifo_depth_b, mem_style, pe, ports, simd, sparsity",
        ),
    ],
)
def test_impossible_folding_is_one_line(capsys, tmp_path, config, pattern):
    (tmp_path / "hw.yaml").write_text(config)
    status, out, err = run(
        capsys,
        "hdl",
        "tfc_w1a1",
        "--config",
        str(tmp_path / "hw.yaml"),
        "-o",
        str(tmp_path / "out"),
    )
    assert status == 2 and out == ""
    assert re.fullmatch(rf"codesign: error: {pattern}\n", err), err
    assert not (tmp_path / "out").exists()


def test_clock_only_config_keeps_the_automatic_folding(capsys, tmp_path):
    """A config with only ``clock_mhz`` (FINN's issue #1430 trap: it used to give every
    stage PE = SIMD = 1, II 2048): the same folding as no config, every stage ``auto``."""
    (tmp_path / "hw.yaml").write_text("clock_mhz: 150\n")
    status, out, _ = run(
        capsys, "hdl", "jet_tagger", "--config", str(tmp_path / "hw.yaml"), "-o",
        str(tmp_path / "a"), "--json",
    )  # fmt: skip
    assert status == 0
    doc = json.loads(out)
    assert doc["ideal_ii"] == 32 and doc["clock_mhz"] == 150
    status, out, _ = run(capsys, "hdl", "jet_tagger", "-o", str(tmp_path / "b"), "--json")
    plain = json.loads(out)
    assert [(s["pe"], s["simd"]) for s in doc["stages"]] == [
        (s["pe"], s["simd"]) for s in plain["stages"]
    ]
    origin = {"pe": "auto", "simd": "auto", "folding": "auto"}
    assert [s["origin"] for s in doc["stages"]] == [origin] * 4


def test_partial_config_prints_each_stage_origin(capsys, tmp_path):
    (tmp_path / "hw.yaml").write_text("stages:\n  fc2: {pe: 2, simd: 4}\n  fc3: {simd: 2}\n")
    status, out, _ = run(
        capsys, "hdl", "jet_tagger", "--config", str(tmp_path / "hw.yaml"), "-o",
        str(tmp_path / "h"),
    )  # fmt: skip
    assert status == 0
    rows = out.splitlines()[1:5]
    assert re.fullmatch(r"  fc1 +mvau  pe +\d+ simd +\d+ auto +256 cycles/frame  .*", rows[0])
    assert re.fullmatch(r"  fc2 +mvau  pe +2 simd +4 given +256 cycles/frame  .*", rows[1])
    assert re.fullmatch(r"  fc3 +mvau  pe +\d+ simd +2 simd given +\d+ cycles/frame  .*", rows[2])
    status, out, _ = run(
        capsys, "sim", "jet_tagger", "--config", str(tmp_path / "hw.yaml"), "--frames", "2",
        "--json",
    )  # fmt: skip
    assert status == 0
    stages = {s["name"]: s for s in json.loads(out)["stages"]}
    assert stages["fc2"]["origin"] == {"pe": "given", "simd": "given", "folding": "given"}
    assert stages["fc3"]["origin"] == {"pe": "auto", "simd": "given", "folding": "simd given"}
    assert stages["fc1"]["origin"]["folding"] == "auto"
    assert (stages["fc2"]["pe"], stages["fc2"]["simd"], stages["fc3"]["simd"]) == (2, 4, 2)


def test_config_naming_a_missing_stage_is_one_line(tmp_path):
    """Through the installed entry point: exit 2, one stderr line listing the stages."""
    (tmp_path / "hw.yaml").write_text("clock_mhz: 150\nstages:\n  fc5: {pe: 2}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "codesign.cli", "sim", "jet_tagger", "--config",
         str(tmp_path / "hw.yaml")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert re.fullmatch(
        r"codesign: error: .*hw\.yaml: config names stage 'fc5', which jet_tagger does not "
        r"have; stages: fc1, fc2, fc3, fc4\n",
        proc.stderr,
    ), proc.stderr


@pytest.mark.simulator
def test_verify_prints_prediction_beside_measurement(capsys, tmp_path):
    """The default jet_tagger design: its Verilator build is shared with the zoo RTL tests
    and the README's ``codesign run`` through the content-keyed build cache."""
    status, out, _ = run(capsys, "verify", "jet_tagger", "--vectors", "8", "-o", str(tmp_path))
    assert status == 0
    assert re.search(
        r"^latency (\d+) cycles measured, (\d+) predicted \(first input beat to first output "
        r"beat\); II [\d.]+ cycles/frame measured, [\d.]+ predicted, 32 ideal$",
        out,
        re.M,
    ), out
    junit = tmp_path / "ci" / "results.xml"
    status, out, _ = run(
        capsys,
        "verify",
        "jet_tagger",
        "--vectors",
        "8",
        "-o",
        str(tmp_path),
        "--json",
        "--junit",
        str(junit),
    )
    doc = json.loads(out)
    assert doc["mismatches"] == 0
    # cocotb's own JUnit XML of the run, for the user's CI
    cases = ElementTree.parse(junit).getroot().findall(".//testcase")
    assert [c.get("name") for c in cases] == ["run_bench"]
    assert not cases[0].findall("failure") and not cases[0].findall("error")
    assert abs(doc["predicted_latency"] - doc["latency"]) <= 0.01 * doc["latency"]
    assert abs(doc["predicted_ii"] - doc["ii"]) <= 0.01 * doc["ii"]


def test_verify_fails_when_the_cocotb_test_fails_without_mismatches(capsys, monkeypatch, tmp_path):
    """A bench check other than a mismatch (a stall, a FIFO above its depth, a missing frame)
    fails the cocotb test: `codesign verify` says so and exits 2, not 0."""
    from codesign import flows

    failure = "FIFO of stage 'fc2': level 9 above its depth 8"
    result = {
        "network": "jet_tagger", "sim": "verilator", "frames": 4, "mismatches": 0,
        "first_bad_stage": None, "first_bad_layer": None, "latency": 103, "ii": 32,
        "ideal_ii": 32, "predicted_latency": 103, "predicted_ii": 32,
        "passed": False, "failure": failure,
    }  # fmt: skip
    monkeypatch.setattr(flows, "verify", lambda *a, **k: result)
    code, out, err = run(capsys, "verify", "jet_tagger", "-o", str(tmp_path / "hdl"))
    assert code == 2
    assert re.fullmatch(
        r"codesign: error: jet_tagger: the cocotb test failed: FIFO of stage "
        r"'fc2': level 9 above its depth 8\n",
        err,
    ), err
    assert f"the cocotb test FAILED: {failure}" in out
