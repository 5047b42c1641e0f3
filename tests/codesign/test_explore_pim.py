"""``codesign explore NET --pim``: the PIM space, each point equal to the single-design model,
the accuracy column equal to the analog golden's error, and an exact Pareto front."""

from __future__ import annotations

import json

import numpy as np
import pytest
from codesign.models.errors import ConfigError
from codesign.models.golden import random_inputs
from codesign.models.loader import load
from codesign.models.pim.analog import CrossbarConfig, layer_error
from codesign.sim.pim import PimConfig, evaluate

from codesign.cli import main
from codesign.explore.pim import OBJECTIVES, pim_space

KNOBS = {"rows": (64, 256), "cols": (128, 256), "adc_bits": (4, 8), "cell_bits": (1, 2)}


@pytest.fixture(scope="module")
def space():
    return load("jet_tagger"), pim_space("jet_tagger", frames=8, **KNOBS)


def test_every_point_equals_the_single_design_model(space):
    net, df = space
    assert len(df) == 2 * 2 * 2 + 2 * 2 * 2 * 2 * 3  # digital techs x rows x cols; analog
    for _, r in df.iterrows():
        if r["mode"] == "digital":
            c = PimConfig(tech=r["tech"], rows=int(r["rows"]), cols=int(r["cols"]))
        else:
            c = PimConfig(
                mode="analog",
                rows=int(r["rows"]),
                cols=int(r["cols"]),
                adc_bits=int(r["adc_bits"]),
                cell_bits=int(r["cell_bits"]),
                adc_share=int(r["adc_share"]),
            )
        if not r["feasible"]:  # e.g. a program taller than the array
            with pytest.raises(ConfigError, match=r"^rows must be at least "):
                evaluate(net, c)
            continue
        t = evaluate(net, c).totals()
        assert r["cycles"] == t["cycles"]
        assert r["energy_pj"] == pytest.approx(t["energy_pj"], rel=1e-12)
        assert r["latency_ns"] == pytest.approx(t["latency_ns"], rel=1e-12)
        assert r["area_mm2"] == pytest.approx(t["area_mm2"], rel=1e-12)


def test_error_is_the_worst_layers_error_of_the_analog_golden(space):
    net, df = space
    assert (df.loc[df["mode"] == "digital", "error"] == 0).all()
    x = random_inputs(net, 8, 0)
    r = df[(df["mode"] == "analog") & (df["rows"] == 64) & (df["adc_bits"] == 4)].iloc[0]
    cfg = CrossbarConfig(rows=64, adc_bits=4, cell_bits=int(r["cell_bits"]))
    want = max(layer_error(net, n, cfg, x).rel_rms for n in ("fc1", "fc2", "fc3", "fc4"))
    assert r["error"] == want > 0
    # more ADC bits, same crossbar: the worst layer's error does not grow here
    a8 = df[(df["mode"] == "analog") & (df["rows"] == 64) & (df["adc_bits"] == 8)]
    assert a8["error"].max() < r["error"]


def test_the_front_is_exact(space):
    _, df = space
    ok = df[df["feasible"]]
    f = ok[list(OBJECTIVES)].to_numpy(dtype=float)
    front = ok["pareto"].to_numpy()
    for i in range(len(ok)):
        dominated = np.any(np.all(f <= f[i], axis=1) & np.any(f < f[i], axis=1))
        assert front[i] == (not dominated), ok.iloc[i].to_dict()
    assert front.any() and not front.all()


def test_cli_json_and_refusals(capsys):
    status = main(["explore", "jet_tagger", "--pim", "--json", "--top", "3"])
    out, _ = capsys.readouterr()
    assert status == 0
    doc = json.loads(out)
    assert doc["space"] == "pim" and doc["front_size"] == len(doc["front"]) > 0
    assert main(["explore", "jet_tagger", "--pim", "--strategy", "nsga2"]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("codesign: error: the PIM space is swept exhaustively")
    assert main(["explore", "cnv_tiny", "--pim"]) == 2
    _, err = capsys.readouterr()
    assert err == (
        "codesign: error: layers must be dense (the PIM model maps only those), not conv2d "
        "layer 'conv1'\n"
    )
