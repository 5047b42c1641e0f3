"""``codesign compress``: decompositions and N:M pruning written as a description that loads
back to the same network, the accuracy proxy, and bad options as one line with exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from codesign.models.compress.accuracy import compression_error
from codesign.models.compress.decompose import decompose
from codesign.models.compress.sparsity import is_nm, prune_nm
from codesign.models.golden import golden, random_inputs
from codesign.models.loader import load

from codesign.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_written_description_is_the_compressed_network(capsys, tmp_path):
    out = tmp_path / "jt.yaml"
    status, text, _ = run(
        capsys, "compress", "jet_tagger", "--svd", "fc1=4", "--nm", "2:8", "-o", str(out), "--json"
    )
    assert status == 0
    doc = json.loads(text)
    net = load("jet_tagger")
    want = prune_nm(decompose(net, {"fc1": ("svd", 4)}), 2, 8)
    back = load(str(out))
    x = random_inputs(net, 16, 3)
    assert np.array_equal(golden(back, x), golden(want, x))
    assert [la.name for la in back.layers] == [la.name for la in want.layers]
    for name in doc["pruned"]["layers"]:
        w = back[name].weight
        assert is_nm(w.reshape(w.shape[0], -1), 2, 8), name
    acc = compression_error(net, want, frames=64, seed=0)
    assert doc["accuracy"]["rel_error"] == acc.rel_error
    assert doc["accuracy"]["top1"] == acc.top1
    assert doc["before"]["macs"] == 4256 and doc["after"]["macs"] < 4256
    assert doc["decomposed"] == {"fc1": {"method": "svd", "rank": 4}}
    # the config beside it gives the pruned stages sparse MVAUs, and it designs
    from codesign.models.hwconfig import Design

    from codesign.flows import load_config

    config = load_config(tmp_path / "jt.hw.yaml")
    assert {n: c.sparsity for n, c in config.stages.items()} == {
        n: (2, 8) for n in doc["pruned"]["layers"]
    }
    assert Design(back, config).ideal_ii > 0


def test_text_report(capsys):
    status, text, _ = run(capsys, "compress", "jet_tagger", "--svd", "fc2=8", "--frames", "8")
    assert status == 0
    assert text.splitlines()[:2] == ["jet_tagger compressed:", "  fc2: SVD rank 8"]
    assert "accuracy proxy on 8 seeded frames (seed 0)" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--svd", "fc1"], r"--svd must be LAYER=RANK \(e\.g\. conv2=4\), not 'fc1'"),
        (["--svd", "fc1=4", "--cpd", "fc1=2"], r"layer 'fc1' must be given --svd or --cpd"),
        (["--nm", "8:2"], r"argument --nm: sparsity must be 'N:M' with 1 <= N < M, not '8:2'"),
        (["--svd", "nope=2"], r"nope"),
        (["--svd", "fc1=0"], r"layer 'fc1': field 'rank': must be an int in \[1, 15\], not 0"),
        (["--svd", "fc1=2", "-o", "out.txt"], r"argument -o: must be a \.yaml file"),
    ],
)
def test_bad_options_are_one_line_exit_2(capsys, tmp_path, monkeypatch, argv, message):
    import re

    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, "compress", "jet_tagger", *argv)
    assert status == 2 and not out
    assert err.count("\n") == 1 and err.startswith("codesign: error: ")
    assert re.search(message, err), err
    assert not list(tmp_path.iterdir())  # nothing written
