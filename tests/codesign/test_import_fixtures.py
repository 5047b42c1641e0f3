"""QONNX import of real Brevitas exports (tests/fixtures/qonnx, made by
tools/make_qonnx_fixtures.py in a throwaway venv): every failure class the importer had, each
on a model nobody here wrote, checked against qonnx's executor and against Brevitas's own
torch outputs saved beside each file."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qonnx", reason="QONNX import needs the qonnx package")

import onnx
from codesign.models.golden import golden
from codesign.models.ir import Network

from codesign.cli import main
from codesign.importer import check_import, import_qonnx
from codesign.importer.bounds import enclose_graph

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "qonnx"
QUANTIZED = [
    "mlp_w4a4_pt",
    "mlp_w4a4_pc",
    "mlp_w4a4_pt_dynamo",
    "cnn_bn",
    "cnn_bn_cw",
    "cnn_bn_dynamo",
    "cnn_w2a2",
    "dws_avgpool",
    "dws_truncavgpool",
    "resnet_block",
    "bnn_bipolar_in",
    "mlp_bn_opset",
]
_cache: dict[str, Network] = {}


def imported(name: str) -> Network:
    if name not in _cache:
        _cache[name] = import_qonnx(FIX / f"{name}.onnx")
    return _cache[name]


@pytest.mark.parametrize("name", QUANTIZED)
def test_cli_import_check_has_nothing_unexplained(name, tmp_path, capsys):
    """`codesign import --check` on every fixture: exit 0 and nothing unexplained."""
    status = main(
        ["import", str(FIX / f"{name}.onnx"), "-o", str(tmp_path), "--check", "300", "--json"]
    )
    out, err = capsys.readouterr()
    assert status == 0, err
    r = json.loads(out)["check"]
    assert r["unexplained"] == 0, r
    assert r["exact"] + r["float32_explained"] + r["float64_explained"] == 300
    # a quantizer level may differ from the executor's only inside the enclosure (counted
    # above as explained); on dws_avgpool 30 of 307,200 levels of one layer do (its float32
    # convolution sums land on the other side of a BatchNorm boundary)
    assert r["quantizer_levels_differ"] <= r["float32_explained"] + r["float64_explained"]
    # the directory the import wrote is a network for every other subcommand
    assert main(["info", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == name


@pytest.mark.parametrize("name", QUANTIZED)
def test_agrees_with_brevitas_torch_outputs(name):
    """Brevitas's own eval-mode outputs (saved at export): each sample equal to ours or
    inside the proven float32 enclosure of the exact value (torch computes in float32)."""
    from qonnx.transformation.change_batchsize import ChangeBatchSize

    net = imported(name)
    info = net.imported
    data = np.load(FIX / f"{name}.npz")
    x, y = data["x"].astype(np.float64), data["y"].astype(np.float32)
    x_int = x / float(info.input_real_scale)
    assert np.array_equal(x_int, np.round(x_int)), "the fixture's inputs lie on the input grid"
    q = golden(net, x_int.astype(np.int64).reshape(len(x), *net.input_tensor.shape))
    ours = info.postprocess(q, np.float32).reshape(y.shape)
    model = info.model.transform(ChangeBatchSize(len(x)))
    enc = enclose_graph(model, x, 2.0**-24)[info.output_tensor]
    lo, hi = (v.reshape(y.shape) for v in (enc.lo, enc.hi))
    exact_ours = info.dequantize(q, np.float64).reshape(y.shape)
    assert np.all((y >= lo) & (y <= hi)), "torch's output outside the float32 enclosure"
    assert np.all((exact_ours >= lo) & (exact_ours <= hi))
    # and close: the same classification a user would read
    assert np.max(np.abs(ours - y)) <= 1e-5 * max(1.0, float(np.max(np.abs(y))))


def test_float_model_is_refused_with_what_to_do(tmp_path, capsys):
    status = main(["import", str(FIX / "float_mlp.onnx"), "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert len(err.strip().splitlines()) == 1
    assert re.match(
        r"^codesign: error: .*float_mlp\.onnx: has no quantizers \(no .*\): it is a float "
        r"model; quantize it \(Brevitas, QKeras \+ qonnx, or HAWQ\) and export QONNX$",
        err.strip(),
    )
    assert not any(tmp_path.iterdir()), "nothing written"


def test_batchnorm_after_conv_is_per_channel():
    """Class 1: BatchNorm2d's parameters lie along NCHW's channel axis, also where the
    channel count equals the width (cnn_bn_cw: 8 channels on 8x8)."""
    for name in ("cnn_bn", "cnn_bn_cw"):
        net = imported(name)
        ops = [la.op for la in net.layers]
        assert ops.count("conv2d") == 2 and ops.count("multithreshold") == 3, ops
        # per-channel thresholds: the BatchNorm differs per channel
        thr = [la.thresholds for la in net.layers if la.op == "multithreshold"][1]
        assert thr.shape[0] == 8 and len({tuple(r) for r in thr}) > 1


@pytest.mark.parametrize("name", ["mlp_w4a4_pt", "mlp_w4a4_pc", "cnn_w2a2"])
def test_float_scaled_weights_become_the_quantizers_integers(name):
    """Class 2: Brevitas's float (non-power-of-two) weight scales; the integer weights are
    round(w / s) of each Quant itself, at its bit width, not float products as ~30-bit
    integers; accumulators stay narrow."""
    net = imported(name)
    model = onnx.load(FIX / f"{name}.onnx")
    bits = {
        int(onnx.numpy_helper.to_array(i).item())
        for n in model.graph.node
        if n.op_type == "Quant" and "weight" in n.input[0]
        for i in model.graph.initializer
        if i.name == n.input[3]
    }
    (b,) = bits
    for la in net.layers:
        if la.op in ("dense", "conv2d"):
            w = la.weight
            assert w.min() >= -(2 ** (b - 1)) and w.max() <= 2 ** (b - 1) - 1, la.name
            assert len(np.unique(w)) > 2
            assert net.tensors[la.name].qtype.bits <= 20, la.name


def test_batchnorm_with_training_mode_attribute():
    """Class 4: TorchScript exports at opset 20 carry BatchNormalization.training_mode."""
    model = onnx.load(FIX / "mlp_bn_opset.onnx")
    bns = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    assert bns and all(any(a.name == "training_mode" for a in n.attribute) for n in bns)
    r = check_import(imported("mlp_bn_opset"), 100, seed=1)
    assert r["unexplained"] == 0


def test_bipolar_input_quantizer():
    """Class 5: the input quantizer is BipolarQuant: the input becomes one bit per element,
    and the products XNOR-popcounts."""
    ops = [la.op for la in imported("bnn_bipolar_in").layers]
    assert ops[:3] == ["input", "multithreshold", "binary_dense"], ops


def test_pooling_and_residual_lowering():
    """Class 6: AveragePool / GlobalAveragePool (with Brevitas's 6-input Trunc after them)
    are exact window sums; the residual Add of two activations of one shared quantizer is
    an IR add."""
    for name in ("dws_avgpool", "dws_truncavgpool"):
        pools = [la for la in imported(name).layers if la.op == "sumpool2d"]
        assert [p.kernel for p in pools] == [(2, 2), (4, 4)], name
    res = imported("resnet_block")
    (add,) = [la for la in res.layers if la.op == "add"]
    assert len(add.inputs) == 2
    assert [la.op for la in res.layers].count("sumpool2d") == 1


def test_error_names_the_users_node(tmp_path):
    """Class 7: messages name nodes as the user's file does (not qonnx's renamed ones)."""
    model = onnx.load(FIX / "cnn_bn.onnx")
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    for a in conv.attribute:
        if a.name == "pads":
            a.ints[:] = [1, 1, 0, 0]
    path = tmp_path / "asym.onnx"
    onnx.save(model, path)
    with pytest.raises(Exception, match=r"^.*asym\.onnx: node '(?P<n>/[^']*Conv)' \(Conv\): "):
        import_qonnx(path)
    assert conv.name.startswith("/")


def test_residual_add_of_different_grids_says_what_to_do(tmp_path):
    """Two branches quantized by different quantizers: one line saying it is unsupported and
    how to fix the model."""
    model = onnx.load(FIX / "resnet_block.onnx")
    add = next(n for n in model.graph.node if n.op_type == "Add")
    quant = next(n for n in model.graph.node if n.output[0] == add.input[1])
    scale = onnx.numpy_helper.from_array(np.array(0.5, dtype=np.float32), "other_scale")
    model.graph.initializer.append(scale)
    quant.input[1] = "other_scale"
    path = tmp_path / "grids.onnx"
    onnx.save(model, path)
    with pytest.raises(
        Exception,
        match=r"^.*grids\.onnx: node '/Add' \(Add\): residual Add of two activations on "
        r"different grids \(scales .* and .*\) is not supported yet; quantize both branches "
        r"with one shared quantizer",
    ):
        import_qonnx(path)


def test_check_catches_a_wrong_threshold():
    """The check can fail: one threshold moved by one step in a real import is reported as
    unexplained, at that layer."""
    net = imported("cnn_bn")
    layer = [la for la in net.layers if la.op == "multithreshold"][1]
    thr = layer.thresholds.copy()
    thr[:, 0] += 1  # every channel's first boundary one accumulator step late
    bad = [dataclasses.replace(la, thresholds=thr) if la is layer else la for la in net.layers]
    broken = Network(net.name, bad, output=net.output)
    broken.imported = net.imported
    r = check_import(broken, 300, seed=0)
    assert r["unexplained"] > 0
    assert r["first_unexplained"]["layer"] == layer.name


def _cli_check(name: str, vectors: int, out: Path, capsys) -> dict:
    status = main(
        ["import", str(FIX / f"{name}.onnx"), "-o", str(out), "--check", str(vectors), "--json"]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return json.loads(captured.out)


def test_cnv_w1a1_imports_exactly(tmp_path, capsys):
    """FINN's CNV (Brevitas's own bnn_pynq definition, seeded weights), through the CLI:
    binary convolutions and dense layers, exact on random inputs."""
    doc = _cli_check("cnv_w1a1", 4, tmp_path, capsys)
    ops = [la["op"] for la in doc["layers"]]
    assert ops.count("binary_conv2d") == 5 and ops.count("conv2d") == 1
    assert ops.count("binary_dense") == 3 and ops.count("maxpool2d") == 2
    r = doc["check"]
    assert r["exact"] == 4 and r["unexplained"] == 0 and r["quantizer_levels_differ"] == 0, r


@pytest.mark.slow
def test_cnv_imports_exactly_at_scale(tmp_path, capsys):
    """Both CNVs through the CLI on 100 vectors (about 5 minutes on 2 cores)."""
    for name in ("cnv_w1a1", "cnv_w2a2"):
        r = _cli_check(name, 100, tmp_path / name, capsys)["check"]
        assert r["exact"] == 100 and r["unexplained"] == 0, (name, r)
