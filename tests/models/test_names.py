"""Layer and network names are Verilog-safe (they reach the RTL, the bench, manifests and
file names), or the description is refused with the rule."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from codesign.models.errors import ConfigError, DescriptionError
from codesign.models.hwconfig import Design
from codesign.models.ir import Network
from codesign.models.layers import Dense, Input
from codesign.models.loader import load, load_description
from codesign.models.names import MAX_NAME, safe_name
from codesign.models.qtype import QType

LAYER_RULE = (
    r"must match \[A-Za-z_\]\[A-Za-z0-9_\]\*, hold no '__' and have at most 100 characters "
    r"\(it names Verilog instances and files\)"
)
NETWORK_RULE = (
    r"must match \[A-Za-z_\]\[A-Za-z0-9_\]\*, have at most 100 characters and not be a "
    r"Verilog/SystemVerilog keyword \(it names the Verilog top module\)"
)


def _write(tmp_path, layers, name="net", input_name=None, file="net.yaml"):
    doc = {"format": 1, "input": {"shape": [4], "type": "int4"}, "layers": layers}
    if name is not None:
        doc["name"] = name
    if input_name is not None:
        doc["input"]["name"] = input_name
    path = tmp_path / file
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _dense(name, **kw):
    return {"name": name, "op": "dense", "weight": np.eye(4, dtype=int).tolist(), **kw}


@pytest.mark.parametrize(
    ("layers", "pattern"),
    [
        ([_dense("fc-1")], rf"layer 'fc-1': field 'name': {LAYER_RULE}, not 'fc-1'"),
        ([_dense("fc.0")], rf"layer 'fc\.0': field 'name': {LAYER_RULE}, not 'fc\.0'"),
        ([_dense("1fc")], rf"layer '1fc': field 'name': {LAYER_RULE}, not '1fc'"),
        ([_dense("a__b")], rf"layer 'a__b': field 'name': {LAYER_RULE}, not 'a__b'"),
        ([_dense("fc é")], rf"layer 'fc é': field 'name': {LAYER_RULE}, not 'fc é'"),
        ([_dense("f" * 101)], rf"layer 'f{{101}}': field 'name': {LAYER_RULE}, not 'f{{101}}'"),
        (
            [_dense("fc1"), _dense("FC1")],
            r"layer 'FC1': field 'name': must differ from layer 'fc1' in more than case "
            r"\(names become file names, and file systems may ignore case\)",
        ),
    ],
)
def test_a_bad_layer_name_is_refused_with_the_rule(tmp_path, layers, pattern):
    path = _write(tmp_path, layers)
    with pytest.raises(DescriptionError, match=rf"^.*net\.yaml: {pattern}$"):
        load_description(path)


def test_the_longest_name_is_accepted(tmp_path):
    name = "f" * MAX_NAME
    assert load_description(_write(tmp_path, [_dense(name)])).output == name


def test_input_is_kept_for_the_input_layer(tmp_path):
    path = _write(tmp_path, [_dense("input", inputs="x")], input_name="x")
    with pytest.raises(
        DescriptionError,
        match=r"^.*net\.yaml: layer 'input': field 'name': must not be 'input', which names "
        r"the network input's stream in the RTL; only the input layer may have it$",
    ):
        load_description(path)
    path = _write(tmp_path, [_dense("fc")], input_name="in put")
    with pytest.raises(
        DescriptionError, match=rf"^.*net\.yaml: layer 'in put': field 'name': {LAYER_RULE}, "
    ):
        load_description(path)


@pytest.mark.parametrize("name", ["module", "my-net", "wire", "2net", "n" * 101])
def test_a_bad_network_name_is_refused_with_the_rule(tmp_path, name):
    path = _write(tmp_path, [_dense("fc")], name=name)
    with pytest.raises(
        DescriptionError, match=rf"^.*net\.yaml: field 'name': {NETWORK_RULE}, not '{name}'$"
    ):
        load_description(path)


def test_a_network_named_by_its_file_gets_a_safe_name(tmp_path):
    net = load_description(_write(tmp_path, [_dense("fc")], name=None, file="my-net.v2.yaml"))
    assert net.name == "my_net_v2"
    net = load_description(_write(tmp_path, [_dense("fc")], name=None, file="module.yaml"))
    assert net.name == "module_net"


def test_python_api_refuses_bad_names():
    x = Input(name="input", inputs=(), shape=(4,), qtype=QType.int(4))
    fc = Dense(name="fc", inputs=("input",), weight=np.eye(4, dtype=int))
    net = Network("ok", [x, fc])
    with pytest.raises(DescriptionError, match=rf"^field 'name': {NETWORK_RULE}, not 'a b'$"):
        net.name = "a b"
    assert net.name == "ok"
    with pytest.raises(DescriptionError, match=rf"^field 'name': {NETWORK_RULE}, not 'reg'$"):
        Network("reg", [x, fc])
    bad = Dense(name="fc/0", inputs=("input",), weight=np.eye(4, dtype=int))
    with pytest.raises(
        DescriptionError, match=rf"^layer 'fc/0': field 'name': {LAYER_RULE}, not 'fc/0'$"
    ):
        Network("ok", [x, bad])


def test_names_the_generator_uses_are_fine_as_layer_names(tmp_path):
    """Every RTL name is prefixed (``stage_``, ``fifo_``, ``dwc_``, ``fork_``), so layers
    may be called like the top's ports or instances, or like Verilog keywords."""
    layers = [
        _dense("core"),
        {"name": "clk", "op": "relu"},
        _dense("rst"),
        _dense("fifo_x"),
        _dense("s_axis_tdata"),
        _dense("module"),
        _dense("stage_fc"),
    ]
    net = load_description(_write(tmp_path, layers))
    assert [s.name for s in Design(net).stages] == [
        "core",
        "rst",
        "fifo_x",
        "s_axis_tdata",
        "module",
        "stage_fc",
    ]


def _requant(name, src):
    return {"name": name, "op": "requant", "inputs": src, "multiplier": 1, "shift": 4,
            "type": "uint3"}  # fmt: skip


def test_forks_that_would_share_an_instance_name_are_refused(tmp_path):
    """Stage ``a`` read by three stages gets forks ``fork_a`` and ``fork_a_1``; stage
    ``a_1``, read by two, would get ``fork_a_1`` too."""
    layers = [
        _dense("a"), _requant("a_q", "a"),
        _dense("b", inputs="a_q"), _requant("b_q", "b"),
        _dense("c", inputs="a_q"), _requant("c_q", "c"),
        _dense("a_1", inputs="a_q"), _requant("a_1_q", "a_1"),
        _dense("e", inputs="a_1_q"), _requant("e_q", "e"),
        _dense("f", inputs="a_1_q"), _requant("f_q", "f"),
        {"name": "bc", "op": "add", "inputs": ["b_q", "c_q"]}, _requant("bc_q", "bc"),
        {"name": "ef", "op": "add", "inputs": ["e_q", "f_q"]}, _requant("ef_q", "ef"),
        {"name": "out", "op": "add", "inputs": ["bc_q", "ef_q"]},
    ]  # fmt: skip
    net = load_description(_write(tmp_path, layers))
    with pytest.raises(
        ConfigError,
        match=r"^layer 'a_1': the forks copying the streams of 'a' and 'a_1' would both be "
        r"the RTL instance 'fork_a_1'; rename one of them$",
    ):
        Design(net)
    renamed = [{**la, "name": "a1"} if la["name"] == "a_1" else la for la in layers]
    renamed = [{**la, "inputs": "a1"} if la.get("inputs") == "a_1" else la for la in renamed]
    Design(load_description(_write(tmp_path, renamed)))  # no clash


@pytest.mark.parametrize(
    ("text", "taken", "network", "expected"),
    [
        ("fc1", (), False, "fc1"),
        ("/fc1/Gemm_output_0", (), False, "fc1_Gemm_output_0"),
        ("dense.bias:0", (), False, "dense_bias_0"),
        ("a__b", (), False, "a_b"),
        ("0", (), False, "n_0"),
        ("", (), False, "layer"),
        ("---", (), False, "layer"),
        ("input", (), False, "input_1"),
        ("Fc", ("fc",), False, "Fc_1"),
        ("fc", ("fc", "FC_1"), False, "fc_2"),
        ("x" * 120, (), False, "x" * 100),
        ("x" * 120, ("x" * 100,), False, "x" * 98 + "_1"),
        ("torch-jit-export", (), True, "torch_jit_export"),
        ("module", (), True, "module_net"),
        ("input", (), True, "input_net"),
        ("", (), True, "net"),
    ],
)
def test_safe_name(text, taken, network, expected):
    assert safe_name(text, taken, network=network) == expected


def test_zoo_names_are_kept():
    for name in ("jet_tagger", "cnv_tiny", "resnet_tiny", "tfc_w1a1", "tfc_w2a2"):
        net = load(name)
        assert net.name == name == safe_name(name, network=True)
        assert all(safe_name(la.name) == la.name or la.name == "input" for la in net.layers)
