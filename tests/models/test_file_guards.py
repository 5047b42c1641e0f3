"""Every user file is read with guards: one line naming the file (layer, field) and what was
expected, never a traceback, a numpy warning (warnings are errors here) or an unbounded
expansion; through the CLI, exit status 2 and no output file written."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from codesign.models import fileio
from codesign.models.errors import DescriptionError
from codesign.models.fileio import npz_bytes, read_npy, read_npz, read_yaml
from codesign.models.loader import load

from codesign.cli import main
from codesign.flows import load_config

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo"


@pytest.fixture
def jet(tmp_path) -> Path:
    """A copy of the zoo's jet_tagger (YAML + npz) in ``tmp_path``."""
    for suffix in (".yaml", ".npz"):
        shutil.copy(ZOO / f"jet_tagger{suffix}", tmp_path / f"jet_tagger{suffix}")
    return tmp_path / "jet_tagger.yaml"


def arrays(jet: Path) -> dict[str, np.ndarray]:
    with np.load(jet.with_suffix(".npz")) as z:
        return {k: z[k] for k in z.files}


def fails(path, pattern: str) -> None:
    """Loading ``path`` raises one DescriptionError line matching ``pattern`` in full (FILE
    stands for the path)."""
    with pytest.raises(DescriptionError) as info:
        load(path)
    message = str(info.value)
    full = "^" + pattern.replace("FILE", re.escape(str(path))) + "$"
    assert re.match(full, message), message


# -- .npz weights ---------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 10, 200, 0.5, -30])
def test_truncated_npz(jet, keep):
    npz = jet.with_suffix(".npz")
    data = npz.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    npz.write_bytes(data[:cut])
    fails(
        jet,
        r"FILE: field 'weights': jet_tagger\.npz: is not an \.npz archive \(a zip of \.npy "
        r"arrays\), or is truncated: .+",
    )


def test_npz_that_is_not_a_zip(jet):
    jet.with_suffix(".npz").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle
    fails(
        jet,
        r"FILE: field 'weights': jet_tagger\.npz: is not an \.npz archive \(a zip of \.npy "
        r"arrays\), or is truncated: File is not a zip file",
    )


def test_npz_member_data_truncated(jet):
    a = arrays(jet)
    member = io.BytesIO()
    np.lib.format.write_array(member, a["fc2.weight"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, v in a.items():
            if k != "fc2.weight":
                zf.writestr(f"{k}.npy", npz_bytes_member(v))
        zf.writestr("fc2.weight.npy", member.getvalue()[:-100])
    jet.with_suffix(".npz").write_bytes(buf.getvalue())
    fails(
        jet,
        r"FILE: field 'weights': jet_tagger\.npz: array 'fc2\.weight' is truncated: its "
        r"header says shape \(32, 64\) of <i8 \(16384 bytes\), but 16284 bytes follow",
    )


def npz_bytes_member(arr: np.ndarray) -> bytes:
    member = io.BytesIO()
    np.lib.format.write_array(member, arr, allow_pickle=False)
    return member.getvalue()


def test_npz_missing_array(jet):
    a = arrays(jet)
    del a["fc3.bias"]
    jet.with_suffix(".npz").write_bytes(npz_bytes(a))
    fails(
        jet,
        r"FILE: layer 'fc3': field 'bias': names array 'fc3\.bias', which jet_tagger\.npz "
        r"does not hold",
    )


def test_npz_pickled_object_array_is_never_loaded(jet):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        member = io.BytesIO()
        np.lib.format.write_array(member, np.array([{"x": 1}], dtype=object), allow_pickle=True)
        zf.writestr("fc1.weight.npy", member.getvalue())
    jet.with_suffix(".npz").write_bytes(buf.getvalue())
    fails(
        jet,
        r"FILE: field 'weights': jet_tagger\.npz: array 'fc1\.weight' must hold bools, "
        r"integers or floats, not dtype '\|O' \(pickled objects are never loaded\)",
    )


def test_npz_member_that_is_not_an_array(jet):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "hello")
    jet.with_suffix(".npz").write_bytes(buf.getvalue())
    fails(
        jet,
        r"FILE: field 'weights': jet_tagger\.npz: holds 'notes\.txt', which is not an \.npy "
        r"array; an \.npz holds only arrays",
    )


def test_npz_forged_huge_shape_is_refused_before_reading(jet, monkeypatch):
    monkeypatch.setattr(fileio, "MAX_ARRAY_BYTES", 1 << 20)
    a = arrays(jet)
    a["fc1.weight"] = np.zeros((1024, 1024), dtype=np.int8)  # 1 MiB of int8: too big at 8 B
    a["fc1.weight"] = a["fc1.weight"].astype(np.int16)
    jet.with_suffix(".npz").write_bytes(npz_bytes(a))
    fails(
        jet,
        r"FILE: field 'weights': jet_tagger\.npz: array 'fc1\.weight' has shape \(1024, 1024\) "
        r"\(2097152 bytes\); arrays must be at most 1048576 bytes in all",
    )


# -- values checked before any cast ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1e300, r"must hold integers that fit int64, not 1e\+300"),
        (-(2.0**64), r"must hold integers that fit int64, not -1\.8446744073709552e\+19"),
        (np.nan, r"must hold integers, not float64 values such as nan"),
        (np.inf, r"must hold integers, not float64 values such as inf"),
    ],
)
def test_huge_or_non_finite_float_weight(jet, value, shown):
    a = arrays(jet)
    w = a["fc1.weight"].astype(np.float64)
    w[3, 2] = value
    a["fc1.weight"] = w
    jet.with_suffix(".npz").write_bytes(npz_bytes(a))
    fails(jet, rf"FILE: layer 'fc1': field 'weight': {shown}")


def test_uint64_weight_beyond_int64_does_not_wrap(jet):
    a = arrays(jet)
    w = a["fc2.bias"].astype(np.int64) - a["fc2.bias"].min()
    w = w.astype(np.uint64)
    w[0] = 2**63 + 5
    a["fc2.bias"] = w
    jet.with_suffix(".npz").write_bytes(npz_bytes(a))
    fails(
        jet,
        r"FILE: layer 'fc2': field 'bias': must hold integers that fit int64, "
        r"not 9223372036854775813",
    )


def test_inline_int_beyond_int64(jet):
    text = jet.read_text().replace("shift: 11", "shift: 100000000000000000000000000000")
    jet.write_text(text)
    fails(
        jet,
        r"FILE: layer 'act1': field 'shift': must hold integers that fit int64, "
        r"not 100000000000000000000000000000",
    )


def test_bits_field_beyond_any_width(jet):
    jet.write_text(jet.read_text().replace("type: uint6", f"type: uint{10**30}", 1))
    fails(
        jet,
        r"FILE: layer 'act1': field 'type': bits must be between 1 and 64, "
        r"not 1000000000000000000000000000000",
    )


def test_integer_too_long_to_convert(jet):
    jet.write_text(jet.read_text().replace("shift: 11", "shift: " + "1" * 5000))
    fails(
        jet,
        r"FILE: is not valid YAML: line 12 column 51: an integer of 5000 characters is too "
        r"long to read",
    )


def test_date_out_of_range(jet):
    jet.write_text(jet.read_text().replace("description: ", "description: 2024-13-45 #"))
    fails(jet, r"FILE: is not valid YAML: month must be in 1\.\.12")


def test_json_infinity_weight(tmp_path):
    doc = {
        "format": 1,
        "input": {"shape": [2], "type": "int8"},
        "layers": [{"name": "fc", "op": "dense", "weight": [[1, float("inf")]]}],
    }
    path = tmp_path / "n.json"
    path.write_text(json.dumps(doc))  # writes Infinity
    assert "Infinity" in path.read_text()
    fails(
        path,
        r"FILE: layer 'fc': field 'weight': must hold integers, not float64 values such as inf",
    )


def test_json_infinity_batchnorm_eps(tmp_path):
    doc = {
        "format": 1,
        "input": {"shape": [2], "type": "int8"},
        "layers": [
            {"name": "fc", "op": "dense", "weight": [[1, 1]]},
            {"name": "bn", "op": "batchnorm", "gamma": [1], "beta": [0], "mean": [0],
             "var": [1], "eps": float("nan")},
            {"name": "s", "op": "sign"},
        ],
    }  # fmt: skip
    path = tmp_path / "n.json"
    path.write_text(json.dumps(doc))
    fails(path, r"FILE: layer 'bn': field 'eps': must be a finite number, not nan")


# -- a weight transposed ----------------------------------------------------------------------


def test_transposed_weight_names_the_weight_not_the_bias(jet):
    a = arrays(jet)
    a["fc2.weight"] = np.ascontiguousarray(a["fc2.weight"].T)
    jet.with_suffix(".npz").write_bytes(npz_bytes(a))
    fails(
        jet,
        r"FILE: layer 'fc2': field 'weight': must have shape \(out, 64\) to match its input "
        r"of shape \(64,\), not \(64, 32\)",
    )


def test_transposed_conv_weight_names_the_weight(tmp_path):
    doc = {
        "format": 1,
        "input": {"shape": [2, 5, 5], "type": "int4"},
        "layers": [
            {"name": "c", "op": "conv2d", "weight": np.ones((2, 3, 3, 3), int).tolist(),
             "bias": [0, 0, 0]},
        ],
    }  # fmt: skip
    path = tmp_path / "n.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DescriptionError, match=r"^.*n\.json: layer 'c': field 'weight': .*$"):
        load(path)


def test_bias_alone_wrong_still_names_the_bias(jet):
    a = arrays(jet)
    a["fc2.bias"] = a["fc2.bias"][:-1]
    jet.with_suffix(".npz").write_bytes(npz_bytes(a))
    fails(jet, r"FILE: layer 'fc2': field 'bias': must have shape \(32,\), not \(31,\)")


# -- YAML: alias bombs, duplicate keys, size ---------------------------------------------------


def bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_refused_before_it_is_built(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb(9) + "format: 1\n")  # 9**9 = 387 million strings once expanded
    fails(
        path,
        r"FILE: expands to more than 1000000 nodes through its aliases \(\*name\); a "
        r"description or config must not \(line \d+\)",
    )


def test_alias_bomb_inside_a_weight(jet):
    text = bomb(8) + jet.read_text().replace("weight: fc2.weight", "weight: *a7")
    jet.write_text(text)
    fails(jet, r"FILE: expands to more than 1000000 nodes .*")


def test_modest_aliases_are_fine(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("x: &x [1, 2]\ny: [*x, *x]\n")
    assert read_yaml(path) == {"x": [1, 2], "y": [[1, 2], [1, 2]]}


def test_recursive_alias(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("format: 1\nlayers: &l [*l]\n")
    fails(path, r"FILE: has a recursive alias at line 2; a description or config must be a tree")


def test_document_above_the_size_limit(jet, monkeypatch):
    monkeypatch.setattr(fileio, "MAX_DOCUMENT_BYTES", 100)
    size = jet.stat().st_size
    fails(jet, rf"FILE: is {size} bytes; files this tool reads must be at most 100 bytes")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_endless_device_as_config():
    with pytest.raises(
        DescriptionError,
        match=r"^/dev/zero: is more than 67108864 bytes; files this tool reads must be at most "
        r"67108864 bytes$",
    ):
        load_config("/dev/zero")


def test_duplicate_key_in_a_layer(jet):
    jet.write_text(
        jet.read_text().replace("{name: fc3, op: dense,", "{name: fc3, op: relu, op: dense,")
    )
    fails(
        jet,
        r"FILE: layer 'fc3': field 'op': is given twice \(lines 16 and 16\); each key may "
        r"appear once",
    )


def test_duplicate_key_before_the_layer_name(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text(
        "format: 1\ninput: {shape: [2], type: int8}\nlayers:\n"
        "- weight: [[1, 2]]\n  weight: [[2, 1]]\n  name: fc\n  op: dense\n"
    )
    fails(path, r"FILE: layer 'fc': field 'weight': is given twice \(lines 4 and 5\); .*")


def test_duplicate_top_level_key(jet):
    jet.write_text(jet.read_text() + "format: 2\n")
    fails(
        jet, r"FILE: field 'format': is given twice \(lines 1 and \d+\); each key may appear once"
    )


def test_non_string_key(jet):
    jet.write_text(jet.read_text() + "3: x\n")
    fails(jet, r"FILE: has key 3 at line \d+, which is not a string; quote it")


def test_duplicate_key_in_json(tmp_path):
    path = tmp_path / "n.json"
    path.write_text('{"format": 1, "layers": [{"name": "a", "op": "relu", "op": "flatten"}]}')
    fails(path, r"FILE: field 'op': is given twice in one object; each key may appear once")


# -- hardware configs ------------------------------------------------------------------------


def config_fails(tmp_path, text: str, pattern: str) -> None:
    path = tmp_path / "hw.yaml"
    path.write_text(text)
    with pytest.raises(DescriptionError) as info:
        load_config(path)
    assert re.match("^" + pattern.replace("FILE", re.escape(str(path))) + "$", str(info.value))


@pytest.mark.parametrize(
    ("value", "shown"),
    [("-5", "-5"), (".nan", "nan"), (".inf", "inf"), ("-.inf", "-inf"), ("0", "0"),
     ("true", "True"), ("fast", "'fast'"), ("1.0e+400", "inf")],
)  # fmt: skip
def test_config_clock_must_be_finite_and_positive(tmp_path, value, shown):
    config_fails(
        tmp_path,
        f"clock_mhz: {value}\n",
        rf"FILE: field 'clock_mhz': must be a finite positive number \(MHz\), not {shown}",
    )


def test_config_duplicate_stage_field(tmp_path):
    config_fails(
        tmp_path,
        "stages:\n  fc1: {pe: 2, simd: 4, pe: 8}\n",
        r"FILE: field 'stages\.fc1\.pe': is given twice \(lines 2 and 2\); each key may "
        r"appear once",
    )


def test_config_duplicate_stage(tmp_path):
    config_fails(
        tmp_path,
        "stages:\n  fc1: {pe: 2}\n  fc1: {pe: 4}\n",
        r"FILE: field 'stages\.fc1': is given twice \(lines 2 and 3\); each key may appear once",
    )


def test_config_alias_bomb(tmp_path):
    config_fails(tmp_path, bomb(9), r"FILE: expands to more than 1000000 nodes .*")


def test_config_missing_and_binary(tmp_path):
    with pytest.raises(DescriptionError, match=r"^.*nope\.yaml: no such file$"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "hw.yaml").write_bytes(b"clock_mhz: \xff\xfe\n")
    with pytest.raises(
        DescriptionError,
        match=r"^.*hw\.yaml: must be UTF-8 text, not bytes such as .* at offset 11$",
    ):
        load_config(tmp_path / "hw.yaml")


# -- input arrays (.npy) ---------------------------------------------------------------------


def test_read_npy_guards(tmp_path):
    good = tmp_path / "x.npy"
    np.save(good, np.arange(32).reshape(2, 16))
    assert read_npy(good).shape == (2, 16)
    cut = tmp_path / "cut.npy"
    cut.write_bytes(good.read_bytes()[:-9])
    with pytest.raises(
        DescriptionError,
        match=r"^.*cut\.npy: is truncated: its header says shape \(2, 16\) of <i8 \(256 "
        r"bytes\), but 247 bytes follow$",
    ):
        read_npy(cut)
    npz = tmp_path / "x2.npy"
    npz.write_bytes(npz_bytes({"x": np.zeros(3)}))
    with pytest.raises(
        DescriptionError, match=r"^.*x2\.npy: is an \.npz archive; give one \.npy array$"
    ):
        read_npy(npz)
    junk = tmp_path / "j.npy"
    junk.write_bytes(b"\x80\x04K\x01.")  # a pickle
    with pytest.raises(
        DescriptionError, match=r"^.*j\.npy: is not an \.npy array \(no NUMPY magic string\)$"
    ):
        read_npy(junk)
    obj = tmp_path / "o.npy"
    np.save(obj, np.array([None, 1]), allow_pickle=True)
    with pytest.raises(
        DescriptionError,
        match=r"^.*o\.npy: must hold bools, integers or floats, not dtype '\|O' \(pickled "
        r"objects are never loaded\)$",
    ):
        read_npy(obj)


def test_read_npz_duplicate_member(tmp_path):
    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        zf.writestr("a.npy", npz_bytes_member(np.zeros(2)))
        zf.writestr("a.npy", npz_bytes_member(np.ones(2)))
    with pytest.raises(DescriptionError, match=r"^.*d\.npz: holds array 'a' twice$"):
        read_npz(path)


# -- through the CLI: exit 2, one line, no traceback, no output file -------------------------


def cli(capsys, *argv) -> tuple[int, str]:
    status = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    return status, err


def one_line_error(status: int, err: str, pattern: str) -> None:
    assert status == 2
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert re.match(rf"^codesign: error: {pattern}\n$", err), err


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda j: j.with_suffix(".npz").write_bytes(b"PK\x03\x04trunc"),
         r".*jet_tagger\.yaml: field 'weights': .*or is truncated: .*"),
        (lambda j: j.write_text(bomb(9)), r".*jet_tagger\.yaml: expands to more than .*"),
        (lambda j: j.write_text(j.read_text().replace("op: dense,", "op: dense, op: relu,", 1)),
         r".*jet_tagger\.yaml: layer 'fc1': field 'op': is given twice .*"),
    ],
)  # fmt: skip
def test_cli_bad_description_writes_nothing(capsys, jet, tmp_path, mutate, pattern):
    mutate(jet)
    out = tmp_path / "out" / "y.npy"
    status, err = cli(capsys, "golden", jet, "--random", 2, "--output", out)
    one_line_error(status, err, pattern)
    assert not out.parent.exists()
    out_dir = tmp_path / "hdl"
    status, err = cli(capsys, "hdl", jet, "-o", out_dir)
    one_line_error(status, err, pattern)
    assert not out_dir.exists()


def test_cli_bad_config_writes_nothing(capsys, tmp_path):
    hw = tmp_path / "hw.yaml"
    hw.write_text("clock_mhz: .nan\n")
    out_dir = tmp_path / "hdl"
    status, err = cli(capsys, "hdl", "jet_tagger", "--config", hw, "-o", out_dir)
    one_line_error(
        status,
        err,
        r".*hw\.yaml: field 'clock_mhz': must be a finite positive number \(MHz\), not nan",
    )
    assert not out_dir.exists()
    status, err = cli(
        capsys, "sim", "jet_tagger", "--config", hw, "--size-fifos", tmp_path / "s.yaml"
    )
    one_line_error(status, err, r".*hw\.yaml: field 'clock_mhz': .*")
    assert not (tmp_path / "s.yaml").exists()


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (lambda good: good[:-40], r".*x\.npy: is truncated: .*"),
        (lambda good: b"", r".*x\.npy: is not an \.npy array \(no NUMPY magic string\)"),
        (lambda good: npz_bytes({"a": np.zeros((1, 16))}),
         r".*x\.npy: is an \.npz archive; give one \.npy array"),
    ],
)  # fmt: skip
def test_cli_bad_input_file_writes_nothing(capsys, tmp_path, content, pattern):
    good = io.BytesIO()
    np.save(good, np.zeros((3, 16), dtype=np.int64))
    x = tmp_path / "x.npy"
    x.write_bytes(content(good.getvalue()))
    out = tmp_path / "y.npy"
    out.write_bytes(b"precious")
    status, err = cli(capsys, "golden", "jet_tagger", "--input", x, "--output", out)
    one_line_error(status, err, pattern)
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy"]


# -- fixes for what the fuzzer (tests/fuzz) found -------------------------------------------


@pytest.mark.parametrize("key", ["fc1.weight", "fc1.bias"])
def test_empty_array(jet, key):
    a = arrays(jet)
    a[key] = a[key][:0]
    jet.with_suffix(".npz").write_bytes(npz_bytes(a))
    shape = r"\(0, 16\)" if key.endswith("weight") else r"\(0,\)"
    field = key.split(".")[1]
    fails(
        jet,
        rf"FILE: layer 'fc1': field '{field}': must not be empty, not an array of shape {shape}",
    )


def test_op_that_is_a_mapping(jet):
    jet.write_text(jet.read_text().replace("op: relu}", "op: {a: 1}}", 1))
    fails(jet, r"FILE: layer 'relu1': field 'op': must be one of .*, not \{'a': 1\}")


def test_output_that_is_a_list(jet):
    jet.write_text(jet.read_text() + "output: [fc4]\n")
    fails(jet, r"FILE: field 'output': names no layer \['fc4'\]")


def test_float16_weight_out_of_range_without_a_warning(jet):
    a = arrays(jet)
    w = a["fc1.weight"].astype(np.float16)
    w[0, 0] = 60000.0  # fits float16; compared with 2**63 in float64, no overflow warning
    w[0, 1] = np.float16(np.inf)
    a["fc1.weight"] = w
    jet.with_suffix(".npz").write_bytes(npz_bytes(a))
    fails(
        jet,
        r"FILE: layer 'fc1': field 'weight': must hold integers, not float64 values such as inf",
    )


def test_config_stages_not_a_mapping(tmp_path):
    config_fails(
        tmp_path,
        "clock_mhz: 100\nstages: 7\n",
        r"FILE: field 'stages': must be a mapping of stage name to stage fields, not 7",
    )


def test_input_file_with_no_vectors(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((0, 1, 28, 28), dtype=np.int64))
    out = tmp_path / "y.npy"
    status, err = cli(capsys, "golden", "cnv_tiny", "--input", tmp_path / "x.npy", "--output", out)
    one_line_error(
        status, err, r".*x\.npy: holds no vectors \(shape \(0, 1, 28, 28\)\); give at least one"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("offset", "byte", "shown"),
    [
        (10, b"a", r"not a dict literal"),
        (12, b"(", r"Header does not contain the correct keys: "
                   r"\['\(escr', 'fortran_order', 'shape'\]"),
    ],
)  # fmt: skip
def test_npy_header_corrupted(tmp_path, offset, byte, shown):
    buf = io.BytesIO()
    np.save(buf, np.zeros((3, 16), dtype=np.int64))
    data = bytearray(buf.getvalue())
    data[offset : offset + 1] = byte
    (tmp_path / "x.npy").write_bytes(bytes(data))
    with pytest.raises(
        DescriptionError, match=rf"^.*x\.npy: has a malformed \.npy header: {shown}$"
    ):
        read_npy(tmp_path / "x.npy")


def test_required_kernel_missing(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text(
        "format: 1\ninput: {shape: [1, 4, 4], type: int8}\nlayers:\n- {name: pool, op: maxpool2d}\n"
    )
    fails(
        path,
        r"FILE: layer 'pool': field 'kernel': is missing: a maxpool2d layer needs an int or "
        r"a list of two ints",
    )


def test_npz_member_with_an_unsupported_zip_flag(jet):
    data = bytearray(jet.with_suffix(".npz").read_bytes())
    # the general-purpose flag of the first central directory entry: bit 5, "compressed
    # patched data", which zipfile does not support
    data[data.index(b"PK\x01\x02") + 8] |= 0x20
    jet.with_suffix(".npz").write_bytes(bytes(data))
    fails(
        jet,
        r"FILE: field 'weights': jet_tagger\.npz: array '[\w.]+' cannot be read \(a truncated or "
        r"corrupt \.npz\?\): compressed patched data \(flag bit 5\)",
    )


def test_tensor_too_large(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text(
        "format: 1\ninput: {shape: [3, 8, 1000000], type: int8}\n"
        "layers:\n- {name: f, op: flatten}\n"
    )
    fails(
        path,
        r"FILE: layer 'input': has shape \(3, 8, 1000000\), 24000000 elements per frame; a "
        r"tensor may have at most 16777216",
    )


def test_tensor_too_large_after_padding(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text(
        "format: 1\ninput: {shape: [1, 4, 4], type: int8}\nlayers:\n"
        "- {name: p, op: conv2d, weight: [[[[1]]]], padding: 3000}\n"
    )
    fails(path, r"FILE: layer 'p': has shape \(1, 6004, 6004\), 36048016 elements per frame; .*")


def test_onnx_input_too_large(capsys, tmp_path):
    onnx = pytest.importorskip("onnx")
    proto = onnx.load(ZOO.parents[1] / "tests" / "fixtures" / "qonnx" / "dws_avgpool.onnx")
    proto.graph.input[0].type.tensor_type.shape.dim[3].dim_value = 10**6
    model = tmp_path / "big.onnx"
    model.write_bytes(proto.SerializeToString())
    status, err = cli(capsys, "import", model, "-o", tmp_path / "out")
    one_line_error(
        status,
        err,
        r".*big\.onnx: layer 'global_in': has shape \(3, 8, 1000000\), 24000000 elements per "
        r"frame; a tensor may have at most 16777216",
    )
    assert not (tmp_path / "out").exists()


def test_input_shape_beyond_int64(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text(
        f"format: 1\ninput: {{shape: [{10**30}], type: int8}}\n"
        "layers:\n- {name: f, op: flatten}\n"
    )
    fails(path, rf"FILE: layer 'input': has shape \({10**30},\), {10**30} elements per frame; .*")


@pytest.mark.parametrize("name", ["../../escaped", "a\x00b", ".."])
def test_trace_with_a_layer_name_that_is_not_a_file_name(capsys, tmp_path, name):
    """Once it wrote ``../../escaped.npy`` outside the trace folder and a NUL raised
    ValueError; layer names are now refused at load (models/names.py), before any write."""
    (tmp_path / "n.json").write_text(
        json.dumps(
            {
                "format": 1,
                "input": {"shape": [4], "type": "int8"},
                "layers": [{"name": name, "op": "relu"}],
            }
        )
    )
    out = tmp_path / "o" / "y.npy"
    trace = tmp_path / "o" / "t"
    status, err = cli(
        capsys, "golden", tmp_path / "n.json", "--random", 2, "--output", out, "--trace", trace
    )
    one_line_error(
        status, err, rf".*n\.json: layer {re.escape(repr(name))}: field 'name': must match .*"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.json"]
    assert not (tmp_path.parent / "escaped.npy").exists()


@pytest.mark.parametrize(
    "arr",
    [
        np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4)),
        np.arange(6, dtype=">i8").reshape(2, 3),
        np.array([[True, False]]),
        np.float32(2.5) * np.ones((1, 3), dtype=np.float32),
        np.zeros((0, 4), dtype=np.uint8),
        np.int64(7),
    ],
)
def test_read_npy_and_npz_equal_numpy(tmp_path, arr):
    np.save(tmp_path / "a.npy", arr)
    np.savez(tmp_path / "a.npz", a=arr, b=arr)
    got = read_npy(tmp_path / "a.npy")
    assert got.dtype == arr.dtype.newbyteorder("=") and np.array_equal(got, arr)
    both = read_npz(tmp_path / "a.npz")
    assert sorted(both) == ["a", "b"] and all(np.array_equal(v, arr) for v in both.values())


def test_onnxruntime_failure_is_one_line_at_the_file_descriptor(tmp_path):
    """A malformed graph on which an onnxruntime kernel fails during qonnx's constant
    folding: its native logger, which writes to fd 2 itself, printed a second line (a
    subprocess sees what in-process tests cannot)."""
    import subprocess
    import sys

    onnx = pytest.importorskip("onnx")
    proto = onnx.load(ZOO.parents[1] / "tests" / "fixtures" / "qonnx" / "dws_avgpool.onnx")
    pool = next(n for n in proto.graph.node if n.op_type == "GlobalAveragePool")
    vec = next(t for t in proto.graph.initializer if len(t.dims) == 1)
    pool.input[0] = vec.name  # a 1-D constant: the kernel needs at least 3 dimensions
    model = tmp_path / "m.onnx"
    model.write_bytes(proto.SerializeToString())
    run = subprocess.run(
        [sys.executable, "-m", "codesign.cli", "import", str(model), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert re.match(r"^codesign: error: .*m\.onnx: .*\n$", run.stderr), run.stderr
    assert not (tmp_path / "o").exists()
