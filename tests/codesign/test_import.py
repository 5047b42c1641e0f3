"""QONNX import: both zoo fixtures import and agree with qonnx's executor and a float64 run;
unsupported and malformed files are one-line errors with exit status 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qonnx", reason="QONNX import needs the qonnx package")

import onnx
from codesign.models.golden import golden, random_inputs
from codesign.models.loader import load_description
from onnx import TensorProto, helper, numpy_helper

import codesign
from codesign.cli import main
from codesign.importer import ImportError_, check_import, import_qonnx

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "qonnx"
JET = FIXTURES / "qkeras_jettagging.onnx"
TFC = FIXTURES / "TFC_1W1A.onnx"


def fixture(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"QONNX fixture {path} is absent (see the fixtures README)")
    return path


@pytest.fixture(scope="module")
def jet():
    return import_qonnx(fixture(JET))


@pytest.fixture(scope="module")
def tfc():
    return import_qonnx(fixture(TFC))


def test_jet_tagger_layers(jet):
    ops = [(la.op) for la in jet.layers]
    assert ops == ["input", *["dense", "multithreshold"] * 3, "dense"]
    assert str(jet.input_tensor.qtype) == "fixed<16,6>"
    assert jet.imported.host_ops == ["Softmax"]
    assert jet.imported.chain == []  # every bias folded into the integer accumulators


def test_tfc_layers(tfc):
    ops = [la.op for la in tfc.layers]
    assert ops == [
        "input",
        "multithreshold",
        *["binary_dense", "multithreshold"] * 3,
        "binary_dense",
    ]
    assert tfc.imported.host_ops == []
    assert tfc.input_tensor.shape == (784,)  # the input Reshape is absorbed by the input
    assert tfc.imported.onnx_input_shape == (1, 28, 28)
    assert [n.op_type for n in tfc.imported.chain] == ["Sub", "Div", "Mul", "Add"]


@pytest.mark.parametrize("which", ["jet", "tfc"])
def test_check_1000_vectors(which, request):
    net = request.getfixturevalue(which)
    r = check_import(net, 1000, seed=0)
    assert r["unexplained"] == 0, r
    assert r["exact"] + r["float32_explained"] == 1000
    if which == "jet":
        assert r["host_argmax_equal"] == 1000


def test_check_names_first_differing_layer(tfc):
    import dataclasses

    from codesign.models.ir import Network

    layers = [
        dataclasses.replace(la, thresholds=np.asarray(la.thresholds) + 3)
        if la.name == "BipolarQuant_5_out0"
        else la
        for la in tfc.layers
    ]
    broken = Network(tfc.name, layers, output=tfc.output)
    broken.imported = tfc.imported
    r = check_import(broken, 200, seed=1)
    assert r["unexplained"] > 0
    assert r["first_unexplained"]["layer"] == "BipolarQuant_5_out0"


def test_batchnorm_thresholds_agree_at_every_accumulator(tfc):
    """For every popcount 0..K of every channel, the folded MultiThreshold equals qonnx's
    float32 execution of BatchNormalization then BipolarQuant."""
    from qonnx.core.onnx_exec import execute_onnx

    model = tfc.imported.model
    bn = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
    bq = next(
        n for n in model.graph.node if n.op_type == "BipolarQuant" and bn.output[0] in n.input
    )
    mm = next(n for n in model.graph.node if n.output[0] == bn.input[0])
    layer = tfc[bq.output[0]]
    dense = tfc[mm.output[0]]
    k = dense.weight.shape[1]
    popcount = np.arange(k + 1)
    dot = 2 * popcount - k  # the ONNX MatMul value of each popcount (bipolar dot product)
    sub = helper.make_model(
        helper.make_graph(
            [bn, bq],
            "bn",
            [helper.make_tensor_value_info(bn.input[0], TensorProto.FLOAT, [k + 1, 64])],
            [helper.make_tensor_value_info(bq.output[0], TensorProto.FLOAT, [k + 1, 64])],
            [
                numpy_helper.from_array(model.get_initializer(i), i)
                for i in [*bn.input[1:], *bq.input[1:]]
            ],
        )
    )
    from qonnx.core.modelwrapper import ModelWrapper

    x = np.repeat(dot[:, None], 64, axis=1).astype(np.float32)
    from qonnx.transformation.infer_shapes import InferShapes

    ref = execute_onnx(ModelWrapper(sub).transform(InferShapes()), {bn.input[0]: x})
    ref = ref[bq.output[0]]
    # the IR may have flipped channels (negative gamma): evaluate the dense's own popcount
    flipped = np.asarray(dense.weight[:, 0]) != np.asarray(
        (np.asarray(tfc.imported.consts[mm.input[1]])[0, :] > 0).astype(int)
    )
    acc = np.where(flipped[None, :], k - popcount[:, None], popcount[:, None])
    ours = np.asarray(layer.evaluate([acc], [tfc.tensors[dense.name]]))
    assert np.array_equal(2 * ours - 1, ref)


def test_saved_description_reloads(jet, tmp_path, capsys):
    status = main(["import", str(fixture(JET)), "-o", str(tmp_path / "jet"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert status == 0
    again = load_description(doc["description"])
    x = random_inputs(jet, 50, 3)
    assert np.array_equal(golden(again, x), golden(jet, x))
    meta = json.loads((tmp_path / "jet" / "import.json").read_text())
    assert meta["output"]["host_ops"] == ["Softmax"]
    assert meta["output"]["scale"] == ["1/2048"] * 5


def test_cli_check(tmp_path, capsys):
    status = main(["import", str(fixture(TFC)), "-o", str(tmp_path / "t"), "--check", "20"])
    out = capsys.readouterr().out
    assert status == 0
    assert re.search(
        r"check 20 vectors \(seed 0\) .*: 20 exact, 0 explained by float32 "
        r"rounding, 0 by float64 rounding, 0 unexplained: OK",
        out,
    )


def test_codesign_load_onnx():
    net = codesign.load(str(fixture(JET)))
    assert net.imported.host_ops == ["Softmax"]


def _model(nodes, inits, in_shape, out_name, out_shape=None):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_unsupported_nodes_listed_at_once(tmp_path, capsys):
    nodes = [
        helper.make_node("Sin", ["x"], ["a"], name="sine"),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
        helper.make_node("LeakyRelu", ["b"], ["c"], name="leaky"),
        helper.make_node("Tanh", ["c"], ["y"], name="tanh"),
    ]
    path = tmp_path / "bad.onnx"
    onnx.save(_model(nodes, {}, [1, 4], "y", [1, 4]), path)
    with pytest.raises(
        ImportError_,
        match=r"^.*bad\.onnx: 3 unsupported node\(s\): sine \(Sin\), "
        r"leaky \(LeakyRelu\), tanh \(Tanh\); supported op types are ",
    ):
        import_qonnx(path)
    status = main(["import", str(path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "sine (Sin)" in err and "tanh (Tanh)" in err


def test_not_onnx_is_one_line(tmp_path, capsys):
    path = tmp_path / "junk.onnx"
    path.write_text("this is not a protobuf\n" * 3)
    status = main(["import", str(path), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2
    assert re.fullmatch(r"codesign: error: .*junk\.onnx: is not an ONNX model .*\n", err)
    status = main(["import", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "out")])
    assert status == 2
    assert capsys.readouterr().err.endswith("missing.onnx: no such file\n")


def _quant(name, x, scale, zp, bits, signed=1, narrow=0, mode="ROUND"):
    return helper.make_node(
        "Quant",
        [x, f"{name}_s", f"{name}_z", f"{name}_b"],
        [name],
        name=name,
        domain="qonnx.custom_op.general",
        signed=signed,
        narrow=narrow,
        rounding_mode=mode,
    ), {f"{name}_s": scale, f"{name}_z": zp, f"{name}_b": bits}


def test_conv_maxpool_per_channel_scales(tmp_path):
    """A small CNN with an input quantizer, per-channel weight scales, a non-power-of-two
    activation scale, HALF_UP rounding, zero padding, MaxPool and Gemm."""
    rng = np.random.default_rng(5)
    inits = {}
    nodes = []
    for n, i in [
        _quant("xq", "x", 0.125, 0.0, 5.0),
        _quant("wq", "w", rng.uniform(0.05, 0.2, (3, 1, 1, 1)), 0.0, 3.0, narrow=1),
    ]:
        nodes.append(n)
        inits |= i
    inits["w"] = rng.normal(0, 0.3, (3, 2, 3, 3))
    inits["cb"] = rng.normal(0, 0.5, 3)
    nodes.append(helper.make_node("Conv", ["xq", "wq", "cb"], ["c"], name="conv", pads=[1] * 4))
    nodes.append(helper.make_node("Relu", ["c"], ["r"], name="relu"))
    n, i = _quant("aq", "r", 0.37, 0.0, 4.0, signed=0, mode="HALF_UP")
    nodes.append(n)
    inits |= i
    nodes.append(
        helper.make_node("MaxPool", ["aq"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2])
    )
    nodes.append(helper.make_node("Flatten", ["p"], ["f"], name="flat"))
    n, i = _quant("gq", "g", 0.0625, 0.0, 4.0)
    nodes.append(n)
    inits |= i
    inits["g"] = rng.normal(0, 0.3, (4, 27))
    inits["gb"] = rng.normal(0, 0.1, 4)
    nodes.append(helper.make_node("Gemm", ["f", "gq", "gb"], ["y"], name="fc", transB=1))
    path = tmp_path / "cnn.onnx"
    onnx.save(_model(nodes, inits, [1, 2, 6, 6], "y", [1, 4]), path)
    net = import_qonnx(path, input_type="fixed<8,3>")
    assert [la.op for la in net.layers] == [
        "input",
        "multithreshold",
        "conv2d",
        "multithreshold",
        "maxpool2d",
        "flatten",
        "dense",
    ]
    r = check_import(net, 300, seed=2)
    assert r["unexplained"] == 0, r
    assert r["exact"] + r["float32_explained"] == 300


@pytest.mark.parametrize(("mode", "zp"), [("FLOOR", 0.0), ("ROUND", 0.0), ("FLOOR", 3.0)])
def test_trunc_after_quant(tmp_path, mode, zp):
    """An 8-bit activation Quant, a Trunc to 4 bits (qonnx's trunc_v1: no clamp, the output
    keeps the input's scale) and a MatMul: the Trunc is a MultiThreshold over the Quant's
    integers, exact against qonnx's executor."""
    rng = np.random.default_rng(7)
    n, inits = _quant("xq", "x", 0.125, zp, 8.0)
    nodes = [n]
    nodes.append(
        helper.make_node(
            "Trunc",
            ["xq", "t_s", "t_z", "t_in", "t_out"],
            ["t"],
            name="trunc",
            domain="qonnx.custom_op.general",
            rounding_mode=mode,
        )
    )
    inits |= {"t_s": 0.125, "t_z": zp, "t_in": 8.0, "t_out": 4.0}
    n, i = _quant("wq", "w", 0.125, 0.0, 4.0)
    nodes.append(n)
    inits |= i | {"w": rng.normal(0, 0.5, (6, 3))}
    nodes.append(helper.make_node("MatMul", ["t", "wq"], ["y"], name="mm"))
    path = tmp_path / "trunc.onnx"
    onnx.save(_model(nodes, inits, [1, 6], "y", [1, 3]), path)
    net = import_qonnx(path)
    assert [la.op for la in net.layers] == ["input", "multithreshold", "multithreshold", "dense"]
    # levels over q in [-128, 127]: floor(q / 16) in [-8, 7], round(q / 16) in [-8, 8]
    assert np.asarray(net.layers[2].thresholds).shape == (1, 15 if mode == "FLOOR" else 16)
    r = check_import(net, 500, seed=3)
    assert r["unexplained"] == 0, r
    assert r["exact"] == 500, r


def test_docs_example_runs(monkeypatch):
    """The Python block of docs/import.md runs as written (from the repository root)."""
    fixture(JET), fixture(TFC)
    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "import.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)
    assert blocks
    monkeypatch.chdir(root)
    for block in blocks:
        exec(compile(block, "docs/import.md", "exec"), {})


@pytest.mark.slow
@pytest.mark.simulator
@pytest.mark.parametrize("path", [JET, TFC], ids=["jet", "tfc"])
def test_imported_fixture_passes_cocotb_on_verilator(path, tmp_path):
    from codesign.hdl import tools

    try:
        tools.verilator_bin()
    except tools.ToolError as e:
        pytest.skip(str(e))
    net = import_qonnx(fixture(path))
    r = codesign.verify(codesign.design(net), tmp_path / "hdl", vectors=50, sim="verilator")
    assert r["mismatches"] == 0, r
