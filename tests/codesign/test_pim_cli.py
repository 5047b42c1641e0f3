"""``codesign pim``: the cycle model's report, ``--verify`` on the golden models, and bad
parameters as one line with exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from codesign.models.loader import load
from codesign.sim.pim import PimConfig, evaluate

from codesign.cli import main


def run(capsys, *argv):
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_json_is_the_cycle_models_report_and_verify_passes(capsys):
    status, out, _ = run(capsys, "pim", "jet_tagger", "--json", "--verify", "3")
    assert status == 0
    doc = json.loads(out)
    want = evaluate(load("jet_tagger"), PimConfig()).as_dict()
    assert doc["totals"] == want["totals"]
    assert [la["layer"] for la in doc["layers"]] == ["fc1", "fc2", "fc3", "fc4"]
    v = doc["verify"]
    assert v["passed"] and v["frames"] == 3
    # every output of every frame was compared: 3 frames × (64 + 32 + 32 + 5)
    assert [r["outputs"] for r in v["layers"]] == [192, 96, 96, 15]
    assert all(r["mismatches"] == 0 for r in v["layers"])


def test_verify_reports_a_wrong_program_and_fails(capsys, monkeypatch):
    """A bit flipped in one stored row (as a broken micro-op would) is counted, named, and
    ends the command with exit status 2."""
    import codesign.models.pim.program as program

    real = program.execute

    def broken(prog, inputs, *, seed=0):
        out = real(prog, inputs, seed=seed)
        out[3, 5] ^= True
        return out

    monkeypatch.setattr(program, "execute", broken)
    status, out, err = run(capsys, "pim", "jet_tagger", "--verify", "2", "--json")
    assert status == 2
    v = json.loads(out)["verify"]
    assert not v["passed"]
    assert all(r["mismatches"] == 1 for r in v["layers"])
    assert v["layers"][0]["first_mismatch"] == [0, 5]  # frame 0, output 5
    assert err == (
        "codesign: error: jet_tagger: a PIM program disagrees with the golden model "
        "(see the report above)\n"
    )


def test_analog_text_and_error(capsys):
    status, out, _ = run(
        capsys, "pim", "jet_tagger", "--mode", "analog", "--adc-bits", "12", "--verify", "4"
    )
    assert status == 0
    assert out.startswith(
        "jet_tagger on PIM: analog crossbar, ADC 12 b (1 per 128 columns), 2 b/cell, DAC 1 b"
    )
    # 12 bits resolve fc2's column sums (at most 256 × 3 per conversion) exactly
    fc2 = next(line for line in out.splitlines() if line.strip().startswith("fc2") and "%" in line)
    assert fc2.split()[-1] == "100.0%"


def test_training_step_defaults_to_fp32(capsys):
    status, out, _ = run(capsys, "pim", "jet_tagger", "--training", "--batch", "4", "--json")
    assert status == 0
    doc = json.loads(out)
    assert doc["config"]["fmt"] == "fp32" and doc["training"]
    phases = {(la["layer"], la["phase"]) for la in doc["layers"]}
    assert ("fc1", "forward") in phases and ("fc2", "input_grad") in phases
    assert ("fc1", "weight_grad") in phases


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cnv_tiny"], r"layers must be dense .*not conv2d layer 'conv1'"),
        (["jet_tagger", "--mode", "analog", "--adc-share", "300"], r"adc_share must be an int"),
        (["jet_tagger", "--rows", "1"], r"rows must be an int in \[2, 65536\], not 1"),
        (["jet_tagger", "--cell-bits", "9", "--mode", "analog"], r"cell_bits must be an int"),
        (["jet_tagger", "--tech", "sram"], r"argument --tech: invalid choice: 'sram'"),
        (["jet_tagger", "--adc-bits", "0"], r"argument --adc-bits: must be a positive int"),
        (["jet_tagger", "--mode", "analog", "--training"], r"mode must be digital for a "),
        (["jet_tagger", "--training", "--fmt", "int"], r"fmt must be "),
        (["no_such_net"], r"no_such_net"),
    ],
)
def test_bad_parameters_are_one_line_exit_2(capsys, argv, message):
    import re

    status, out, err = run(capsys, "pim", *argv)
    assert status == 2 and not out
    assert err.count("\n") == 1 and err.startswith("codesign: error: ")
    assert re.search(message, err), err
    assert "Traceback" not in err


def test_verify_is_deterministic(capsys):
    a = run(capsys, "pim", "jet_tagger", "--verify", "2", "--seed", "7", "--json")[1]
    b = run(capsys, "pim", "jet_tagger", "--verify", "2", "--seed", "7", "--json")[1]
    assert a == b and np.isfinite(json.loads(a)["totals"]["energy_pj"])
