"""The description loader: every error names file/layer/field; BatchNorm folds exactly."""

from __future__ import annotations

import filecmp
import re

import numpy as np
import pytest
import yaml
from codesign.models.errors import DescriptionError
from codesign.models.golden import golden, random_inputs
from codesign.models.loader import load, save_description, zoo_names
from codesign.models.zoo.generate import generate


def write(tmp_path, doc: dict, arrays: dict | None = None, name="net.yaml"):
    path = tmp_path / name
    if arrays is not None:
        np.savez(path.with_suffix(".npz"), **arrays)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def mlp(**overrides) -> dict:
    doc = {
        "format": 1,
        "name": "mlp",
        "input": {"shape": [4], "type": "int8"},
        "layers": [
            {
                "name": "fc1",
                "op": "dense",
                "weight": [[1, 2, 3, 4], [-1, 0, 1, 2]],
                "bias": [3, -3],
            },
            {"name": "relu1", "op": "relu"},
            {"name": "q1", "op": "requant", "multiplier": 1, "shift": 2, "type": "uint4"},
        ],
    }
    doc.update(overrides)
    return doc


def loads_with(tmp_path, doc, arrays=None):
    return load(write(tmp_path, doc, arrays))


def expect_error(tmp_path, doc, pattern, arrays=None):
    path = write(tmp_path, doc, arrays)
    with pytest.raises(DescriptionError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message
    assert re.fullmatch(pattern.replace("FILE", re.escape(str(path))), message), message


def test_valid_description_loads(tmp_path):
    net = loads_with(tmp_path, mlp())
    assert [la.name for la in net] == ["input", "fc1", "relu1", "q1"]
    assert str(net.output_tensor.qtype) == "uint4"
    # row 0 (weights summing to 10, bias 3) spans [10*-128 + 3, 10*127 + 3]; row 1 less
    assert (net.tensors["fc1"].lo, net.tensors["fc1"].hi) == (-1277, 1273)


def test_sumpool2d_loads_and_round_trips(tmp_path):
    doc = {
        "format": 1,
        "name": "gap",
        "input": {"shape": [2, 4, 4], "type": "uint3"},
        "layers": [{"name": "gap", "op": "sumpool2d", "kernel": [4, 4]}],
    }
    net = loads_with(tmp_path, doc)
    assert net.output_tensor.shape == (2, 1, 1)
    assert (net.output_tensor.lo, net.output_tensor.hi) == (0, 16 * 7)
    path, _ = save_description(net, tmp_path / "again.yaml")
    again = load(path)
    x = random_inputs(net, 8, 3)
    assert (golden(again, x) == golden(net, x)).all()
    assert (golden(net, x)[:, :, 0, 0] == x.sum(axis=(2, 3))).all()
    doc["layers"][0]["rounding"] = "floor"  # a sum rounds nothing
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'gap': field 'rounding': is not a field of a sumpool2d layer; .*",
    )


def test_bad_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("format: 1\nlayers: [\n  {name: a\n")
    with pytest.raises(
        DescriptionError,
        match=rf"^{re.escape(str(path))}: is not valid YAML: "
        r"line \d+ column \d+: .+$",
    ):
        load(path)


def test_bad_json(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": 1,,}')
    with pytest.raises(DescriptionError, match=r"^.*bad\.json: is not valid JSON: line 1 "):
        load(path)


def test_unknown_layer(tmp_path):
    doc = mlp()
    doc["layers"][1]["op"] = "relu6"
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'relu1': field 'op': must be one of add, "
        r"avgpool2d, .*, not 'relu6'",
    )


def test_unknown_field(tmp_path):
    doc = mlp()
    doc["layers"][2]["shfit"] = 3
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'q1': field 'shfit': is not a field of a "
        r"requant layer; expected one of \[.*'shift'.*\]",
    )


def test_wrong_weight_shape(tmp_path):
    doc = mlp()
    doc["layers"][0]["weight"] = [[1, 2, 3], [1, 2, 3]]
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'fc1': field 'weight': must have shape "
        r"\(out, 4\) to match its input of shape \(4,\), not \(2, 3\)",
    )


def test_bits_out_of_range(tmp_path):
    expect_error(
        tmp_path,
        mlp(input={"shape": [4], "type": "int40"}),
        r"FILE: layer 'input': field 'type': bits must be between 1 and 32, not 40",
    )
    doc = mlp()
    doc["layers"][2]["type"] = "uint0"
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'q1': field 'type': bits must be between 1 "
        r"and 64, not 0",
    )


def test_missing_weight_array(tmp_path):
    doc = mlp()
    doc["layers"][0]["weight"] = "fc1_w"
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'fc1': field 'weight': names array 'fc1_w', "
        r"which net\.npz does not hold",
        arrays={"other": np.ones(2)},
    )
    del doc["layers"][0]["weight"]
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'fc1': field 'weight': is missing: give an npz "
        r"key or an inline list, or store the array as 'fc1\.weight' "
        r"in net\.npz",
        arrays={"other": np.ones(2)},
    )


def test_missing_weights_file(tmp_path):
    expect_error(
        tmp_path,
        mlp(weights="gone.npz"),
        r"FILE: field 'weights': names 'gone\.npz', which does not exist next to "
        r"the description",
    )


def test_non_integer_weights(tmp_path):
    doc = mlp()
    doc["layers"][0]["weight"] = [[1.5, 2, 3, 4], [1, 2, 3, 4]]
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'fc1': field 'weight': must hold integers, not "
        r"float64 values such as 1\.5",
    )


def test_format_version_and_input(tmp_path):
    expect_error(tmp_path, mlp(format=2), r"FILE: field 'format': must be 1, not 2")
    expect_error(
        tmp_path,
        mlp(input={"shape": [0], "type": "int8"}),
        r"FILE: layer 'input': field 'shape': must be a list of positive ints, "
        r"not \[0\]",
    )
    expect_error(
        tmp_path,
        mlp(input={"shape": [4], "type": "float32"}),
        r"FILE: layer 'input': field 'type': a type must be intN, .*not 'float32'",
    )


def test_unknown_input_reference_and_duplicates(tmp_path):
    doc = mlp()
    doc["layers"][1]["inputs"] = ["fc9"]
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'relu1': field 'inputs': names no earlier "
        r"layer 'fc9' .*",
    )
    doc = mlp()
    doc["layers"][2]["name"] = "fc1"
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'fc1': field 'name': is defined twice; names "
        r"must be unique",
    )


def test_bad_modes(tmp_path):
    doc = mlp()
    doc["layers"][2]["rounding"] = "stochastic"
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'q1': field 'rounding': rounding must be one "
        r"of .*, not 'stochastic'",
    )
    doc = mlp()
    doc["layers"][2]["overflow"] = "clamp"
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'q1': field 'overflow': overflow must be one of "
        r".*, not 'clamp'",
    )


def test_not_a_description(tmp_path):
    with pytest.raises(
        DescriptionError,
        match=r"^nope\.onnx: must be a zoo name \(.*\) or a "
        r"\.yaml/\.yml/\.json description$",
    ):
        load("nope.onnx")
    with pytest.raises(DescriptionError, match=r"^.*absent\.yaml: no such file$"):
        load(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(DescriptionError, match=r"^.*list\.yaml: must be a mapping"):
        load(tmp_path / "list.yaml")


def test_batchnorm_must_be_followed_by_quantizer(tmp_path):
    doc = mlp()
    doc["layers"][1:] = [
        {
            "name": "bn",
            "op": "batchnorm",
            "gamma": [1, 1],
            "beta": [0, 0],
            "mean": [0, 0],
            "var": [1, 1],
        },
        {"name": "relu", "op": "relu"},
    ]
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'bn': field 'op': must be followed by a 'sign' "
        r"or 'quant' layer reading it .*, not by 'relu' layer 'relu'",
    )


# -- BatchNorm folding is exact --------------------------------------------------------------


def _bn_reference(acc, gamma, beta, mean, var, eps, acc_scale):
    return gamma * (acc * acc_scale - mean) / np.sqrt(var + eps) + beta


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["sign", "quant"])
def test_batchnorm_fold_matches_float64(tmp_path, seed, kind):
    """Folded thresholds agree with float64 BatchNorm-then-quantize at every accumulator
    value the layer can produce, including channels with negative or zero gamma."""
    rng = np.random.default_rng(seed)
    c, k = 6, 5
    w = rng.integers(-4, 5, (c, k))
    b = rng.integers(-10, 11, c)
    gamma = rng.normal(0, 1, c)
    gamma[0] = -abs(gamma[0])
    gamma[1] = 0.0
    bn = {
        "gamma": gamma.tolist(),
        "beta": rng.normal(0, 1, c).tolist(),
        "mean": rng.normal(0, 20, c).tolist(),
        "var": rng.uniform(1, 400, c).tolist(),
        "eps": 1e-3,
        "acc_scale": 0.37,
    }
    act = (
        {"name": "act", "op": "sign", "encoding": "bipolar"}
        if kind == "sign"
        else {"name": "act", "op": "quant", "type": "int3", "scale": 0.25}
    )
    doc = {
        "format": 1,
        "input": {"shape": [k], "type": "int4"},
        "layers": [
            {"name": "fc", "op": "dense", "weight": w.tolist(), "bias": b.tolist()},
            {"name": "bn", "op": "batchnorm", **bn},
            act,
        ],
    }
    net = loads_with(tmp_path, doc)
    assert net.folded == {"bn": "act"}
    # exhaustive over every input of the 4-bit, 5-wide input space would be 16**5; sample
    # densely instead, plus the extremes
    x = random_inputs(net, 4000, seed)
    acc = x @ w.T + b
    y = _bn_reference(
        acc,
        *(np.array(bn[n]) for n in ("gamma", "beta", "mean", "var")),
        bn["eps"],
        bn["acc_scale"],
    )
    if kind == "sign":
        want = np.where(y >= 0, 1, -1)
    else:
        want = np.clip(np.round(y / 0.25), -4, 3)  # np.round: ties to even
    assert (golden(net, x) == want).all()


def test_batchnorm_fold_every_accumulator_value(tmp_path):
    """With a 1-wide dense of weight ±1 the accumulator takes every value of its range, so
    this checks the thresholds at every integer."""
    doc = {
        "format": 1,
        "input": {"shape": [1], "type": "int10"},
        "layers": [
            {"name": "fc", "op": "dense", "weight": [[1], [-1], [1]], "bias": [0, 0, 7]},
            {
                "name": "bn",
                "op": "batchnorm",
                "gamma": [0.3, -1.7, 2.2],
                "beta": [0.1, 0.2, -0.3],
                "mean": [3.3, -40.0, 0.0],
                "var": [9.0, 100.0, 0.5],
                "eps": 1e-5,
            },
            {
                "name": "act",
                "op": "quant",
                "type": "uint4",
                "scale": 0.125,
                "rounding": "half_away",
            },
        ],
    }
    net = loads_with(tmp_path, doc)
    x = np.arange(-512, 512).reshape(-1, 1)
    acc = x * np.array([1, -1, 1]) + np.array([0, 0, 7])
    y = _bn_reference(
        acc,
        np.array([0.3, -1.7, 2.2]),
        np.array([0.1, 0.2, -0.3]),
        np.array([3.3, -40.0, 0.0]),
        np.array([9.0, 100.0, 0.5]),
        1e-5,
        1.0,
    )
    q = np.sign(y / 0.125) * np.floor(np.abs(y / 0.125) + 0.5)  # half away from zero
    assert (golden(net, x) == np.clip(q, 0, 15)).all()


# -- writing and the zoo ---------------------------------------------------------------------


@pytest.mark.parametrize("name", zoo_names())
def test_save_load_round_trip(tmp_path, name):
    net = load(name)
    path, npz = save_description(net, tmp_path / f"{name}.yaml")
    again = load(path)
    x = random_inputs(net, 64, 7)
    assert (golden(again, x) == golden(net, x)).all()
    from codesign.summary import network_hash

    assert network_hash(again) == network_hash(net)
    first = npz.read_bytes(), path.read_bytes()
    save_description(again, tmp_path / f"{name}.yaml")
    assert (npz.read_bytes(), path.read_bytes()) == first  # byte-deterministic


def test_zoo_regenerates_byte_identically(tmp_path):
    from importlib import resources

    generate(tmp_path)
    shipped = resources.files("codesign.models") / "zoo"
    for name in zoo_names():
        for ext in (".yaml", ".npz"):
            with resources.as_file(shipped / f"{name}{ext}") as p:
                assert filecmp.cmp(p, tmp_path / f"{name}{ext}", shallow=False), name + ext


def test_reading_a_folded_batchnorm_is_explained(tmp_path):
    doc = {
        "format": 1,
        "input": {"shape": [2], "type": "int4"},
        "layers": [
            {"name": "fc", "op": "dense", "weight": [[1, 1], [1, -1]]},
            {
                "name": "bn",
                "op": "batchnorm",
                "gamma": [1, 1],
                "beta": [0, 0],
                "mean": [0, 0],
                "var": [1, 1],
            },
            {"name": "act", "op": "sign"},
            {"name": "fc2", "op": "dense", "inputs": ["bn"], "weight": [[1, 1]]},
        ],
    }
    expect_error(
        tmp_path,
        doc,
        r"FILE: layer 'fc2': field 'inputs': cannot read 'bn': it is "
        r"folded into 'act'; read that instead",
    )


def test_unquoted_fixed_type_in_flow_style_gets_a_hint(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text(
        "format: 1\ninput: {shape: [2], type: fixed<16,6>}\n"
        "layers: [{name: fc, op: dense, weight: [[1, 1]]}]\n"
    )
    with pytest.raises(
        DescriptionError,
        match=r"^.*n\.yaml: layer 'input': field '6>': is not "
        r"a field of the input; .*\(quote fixed-point "
        r"types in YAML flow style: .*\)$",
    ):
        load(path)


def test_golden_never_writes_into_the_callers_array(tmp_path):
    """Element-wise layers work in place on the runner's own arrays only: a relu right
    after a flatten of the input must not touch the caller's float64 input."""
    doc = {
        "format": 1,
        "input": {"shape": [2, 2], "type": "int8"},
        "layers": [
            {"name": "flat", "op": "flatten"},
            {"name": "relu", "op": "relu"},
            {"name": "q", "op": "requant", "multiplier": 3, "shift": 1, "type": "int8"},
        ],
    }
    net = loads_with(tmp_path, doc)
    x = np.array([[[-5.0, 3.0], [7.0, -1.0]]])
    before = x.copy()
    assert golden(net, x).tolist() == [[0, 4, 10, 0]]
    assert np.array_equal(x, before)


def test_a_directory_loads_its_one_description(tmp_path):
    """`codesign import -o DIR` writes one description and import.json: DIR is a network;
    a directory without exactly one description is one located line."""
    from codesign.models.loader import load, save_description

    save_description(load("jet_tagger"), tmp_path / "net" / "jet.yaml")
    (tmp_path / "net" / "import.json").write_text("{}")
    assert load(str(tmp_path / "net")).name == load("jet_tagger").name
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        DescriptionError,
        match=r"^.*empty.*: is a directory; it must hold exactly one \.yaml/\.yml/\.json "
        r"description, not 0 \(none\)$",
    ):
        load(str(tmp_path / "empty"))
