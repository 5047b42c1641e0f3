"""Awkward but legal names round-trip through the generated Verilog, manifest.json, the
FuseSoC core, weight files, golden traces and the cocotb bench; bad ones are one line with
exit status 2; the QONNX importer maps the names it reads to legal ones."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from codesign.hdl.manifest import read_manifest
from codesign.models.ir import Network
from codesign.models.layers import Dense, Input
from codesign.models.qtype import QType

from codesign.cli import main

TOP = "_tiny_Net2"
#: stage → its layers: names like the top's ports and instances, a Verilog keyword, a
#: trailing underscore on an add stage (its skip FIFO is ``fifo_sum___b``), a leading one
STAGES = {
    "core": ["core", "clk", "rst"],
    "fifo_x": ["fifo_x", "module", "s_axis_tdata"],
    "sum_": ["sum_", "_lead"],
    "FC9": ["FC9"],
}


@pytest.fixture(scope="module")
def awkward(tmp_path_factory) -> tuple[Path, Path]:
    """The description and a partial config: ``fifo_x`` (32×32 weights of 4 bits, 4096
    bits, so its ROM is a ``$readmemh`` file) folded fully serially, the rest automatic."""
    r = np.random.default_rng(7)
    layers = [
        {"name": "core", "op": "dense", "weight": r.integers(-2, 3, (32, 8)).tolist()},
        {"name": "clk", "op": "relu"},
        {"name": "rst", "op": "requant", "multiplier": 1, "shift": 2, "type": "uint3"},
        {"name": "fifo_x", "op": "dense", "weight": r.integers(-8, 8, (32, 32)).tolist()},
        {"name": "module", "op": "relu"},
        {"name": "s_axis_tdata", "op": "requant", "multiplier": 1, "shift": 5, "type": "uint3"},
        {"name": "sum_", "op": "add", "inputs": ["s_axis_tdata", "rst"]},
        {"name": "_lead", "op": "multithreshold", "thresholds": [[1, 4, 8]] * 32},
        {"name": "FC9", "op": "dense", "weight": r.integers(-2, 3, (4, 32)).tolist()},
    ]
    doc = {
        "format": 1,
        "name": TOP,
        "input": {"name": "x_in", "shape": [8], "type": "int4"},
        "layers": layers,
    }
    work = tmp_path_factory.mktemp("names")
    (work / "awkward.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (work / "hw.yaml").write_text("stages:\n  fifo_x: {pe: 1, simd: 1}\n")
    return work / "awkward.yaml", work / "hw.yaml"


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_names_round_trip_through_hdl_manifest_core_and_traces(awkward, tmp_path, capsys):
    desc, hw = awkward
    status, out, _ = run(capsys, "hdl", desc, "--config", hw, "-o", tmp_path / "h", "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["name"] == doc["top"] == TOP and doc["verilog"] == f"{TOP}.v"
    assert {s["name"]: s["layers"] for s in doc["stages"]} == STAGES
    assert [s["origin"]["folding"] for s in doc["stages"]] == ["auto", "given", "auto", "auto"]
    assert doc["memory_files"].keys() == {f"{TOP}_fifo_x_weights.hex"}
    man = read_manifest(tmp_path / "h")
    assert (man.name, man.top) == (TOP, TOP)
    assert [s.name for s in man.stages] == list(STAGES)
    verilog = (tmp_path / "h" / f"{TOP}.v").read_text()
    assert re.search(rf"^module {TOP}\(", verilog, re.M)
    instances = set(re.findall(r"^  \\\S+ +(\w+) \($", verilog, re.M))  # escaped: a space
    assert {
        "core",  # the top's instance of the pipeline, beside the stages named like it
        "stage_core",
        "stage_fifo_x",
        "stage_sum_",
        "stage_FC9",
        "fork_core",
        "fifo_fifo_x",
        "fifo_sum_",
        "fifo_sum___b",  # the add stage's second input
        "fifo_FC9",
    } <= instances, instances
    assert f'$readmemh("{TOP}_fifo_x_weights.hex"' in verilog
    assert (tmp_path / "h" / f"{TOP}_fifo_x_weights.hex").is_file()
    core = (tmp_path / "h" / f"{TOP}.core").read_text()
    assert f"toplevel: {TOP}\n" in core and f"{TOP}_fifo_x_weights.hex" in core
    status, _, _ = run(capsys, "golden", desc, "--random", "2", "--trace", tmp_path / "t")
    assert status == 0
    layers = ["x_in", *(la for ls in STAGES.values() for la in ls)]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == sorted(f"{n}.npy" for n in layers)


@pytest.mark.simulator
def test_names_round_trip_through_the_cocotb_bench(awkward, tmp_path, capsys):
    """Verilator, through the shared content-keyed build cache (a 5-stage design of 1024
    cycles per frame; about 30 s of CPU when not cached): the bench finds every stage's tap
    by its instance name and the weight file by its name."""
    desc, hw = awkward
    status, out, _ = run(
        capsys, "verify", desc, "--config", hw, "--vectors", "6", "-o", tmp_path, "--json"
    )
    assert status == 0, out
    r = json.loads(out)
    assert r["mismatches"] == 0 and r["frames"] == 6
    assert r["ii"] == r["ideal_ii"] == 1024
    assert r["verilog"] == str(tmp_path / f"{TOP}.v")


@pytest.mark.parametrize(
    ("layer", "network", "pattern"),
    [
        (
            "fc-1",
            "net",
            r"layer 'fc-1': field 'name': must match \[A-Za-z_\]\[A-Za-z0-9_\]\*, hold no "
            r"'__' and have at most 100 characters \(it names Verilog instances and files\), "
            r"not 'fc-1'",
        ),
        (
            "fc",
            "endmodule",
            r"field 'name': must match \[A-Za-z_\]\[A-Za-z0-9_\]\*, have at most 100 "
            r"characters and not be a Verilog/SystemVerilog keyword \(it names the Verilog "
            r"top module\), not 'endmodule'",
        ),
    ],
)
def test_bad_name_is_one_line_exit_2(tmp_path, layer, network, pattern):
    """Through the installed entry point: no traceback, nothing written."""
    doc = {
        "format": 1,
        "name": network,
        "input": {"shape": [2], "type": "int4"},
        "layers": [{"name": layer, "op": "dense", "weight": [[1, 0], [0, 1]]}],
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(doc))
    proc = subprocess.run(
        [sys.executable, "-m", "codesign.cli", "hdl", str(tmp_path / "bad.yaml"), "-o",
         str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stdout == "" and "Traceback" not in proc.stderr
    assert re.fullmatch(rf"codesign: error: .*bad\.yaml: {pattern}\n", proc.stderr), proc.stderr
    assert not (tmp_path / "out").exists()


def test_importer_maps_onnx_names_to_legal_unique_ones():
    """The importer's last step: ONNX tensor names that are not legal layer names (or that
    differ only in case, or a layer called ``input``) become legal unique ones, everywhere
    they are referred to."""
    pytest.importorskip("qonnx", reason="the QONNX importer needs the qonnx package")
    from codesign.importer.lower import Lowering

    eye = np.eye(2, dtype=int)
    low = Lowering.__new__(Lowering)
    low.layers = [
        Input(name="input", inputs=(), shape=(2,), qtype=QType.int(4)),
        Dense(name="/fc1/Gemm_output_0", inputs=("input",), weight=eye),
        Dense(name="Fc", inputs=("/fc1/Gemm_output_0",), weight=eye),
        Dense(name="fc", inputs=("Fc",), weight=eye),
        Dense(name="input_x", inputs=("fc",), weight=eye),
    ]
    low.tensors = {}
    low.layer_tensors = {"Fc": ("t0", 1, 0)}
    out = low._safe_names("input_x")
    names = [la.name for la in low.layers]
    assert names == ["input", "fc1_Gemm_output_0", "Fc", "fc_1", "input_x"]
    assert out == "input_x" and low.layer_tensors == {"Fc": ("t0", 1, 0)}
    net = Network("imported", low.layers)
    assert [la.inputs for la in net.layers[1:]] == [
        ("input",),
        ("fc1_Gemm_output_0",),
        ("Fc",),
        ("fc_1",),
    ]


def test_imported_network_is_named_after_its_file(tmp_path, capsys):
    pytest.importorskip("qonnx", reason="the QONNX importer needs the qonnx package")
    src = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "qonnx"
    src = src / "qkeras_jettagging.onnx"
    if not src.exists():
        pytest.skip(f"QONNX fixture {src} is absent (see the fixtures README)")
    shutil.copy(src, tmp_path / "jet-tagger.v2.onnx")
    status, out, _ = run(capsys, "import", tmp_path / "jet-tagger.v2.onnx", "-o", tmp_path / "n")
    assert status == 0
    assert out.startswith("jet_tagger_v2: ")
    assert (tmp_path / "n" / "jet_tagger_v2.yaml").is_file()
    status, out, _ = run(capsys, "hdl", tmp_path / "n", "-o", tmp_path / "h", "--json")
    assert status == 0 and json.loads(out)["top"] == "jet_tagger_v2"


def test_a_top_named_like_a_stage_instance_keeps_weight_files_apart(tmp_path, capsys):
    """A network called ``stage_net``: its weight files are named by stage, not by the top
    (they used to share one name: a ValueError traceback)."""
    r = np.random.default_rng(3)
    doc = {
        "format": 1,
        "name": "stage_net",
        "input": {"shape": [32], "type": "uint3"},
        "layers": [
            {"name": "a", "op": "dense", "weight": r.integers(-8, 8, (32, 32)).tolist()},
            {"name": "aq", "op": "requant", "multiplier": 1, "shift": 6, "type": "uint3"},
            {"name": "b", "op": "dense", "weight": r.integers(-8, 8, (32, 32)).tolist()},
        ],
    }
    (tmp_path / "n.yaml").write_text(yaml.safe_dump(doc))
    (tmp_path / "hw.yaml").write_text("stages: {a: {pe: 1, simd: 1}, b: {pe: 1, simd: 1}}\n")
    status, out, _ = run(
        capsys, "hdl", tmp_path / "n.yaml", "--config", tmp_path / "hw.yaml", "-o",
        tmp_path / "h", "--json",
    )  # fmt: skip
    assert status == 0
    assert sorted(json.loads(out)["memory_files"]) == [
        "stage_net_a_weights.hex",
        "stage_net_b_weights.hex",
    ]
