"""``codesign explore NET --compress``: every point is the compressed network the flow would
build, judged by the same models; the greedy path stays within the bound; the front is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
from codesign.models.compress.accuracy import compression_error
from codesign.models.compress.decompose import decompose
from codesign.models.hwconfig import Design
from codesign.models.loader import load
from codesign.sim.cost import estimate

from codesign.cli import main
from codesign.explore.compress import compress_space
from codesign.explore.pareto import pareto_mask_brute


@pytest.fixture(scope="module")
def space():
    return compress_space("jet_tagger", svd_ranks=(2, 8), nm=("2:4",), bound=0.5, frames=8)


def test_points_are_the_flows_networks(space):
    net = load("jet_tagger")
    for _, r in space[space["nm"] == ""].iterrows():
        plan = {}
        for part in r["plan"].split():
            layer, _, choice = part.partition(":")
            plan[layer] = (choice[:3], int(choice[3:]))
        out = decompose(net, plan) if plan else net
        d = Design(out)
        c = estimate(d, "ecp5")
        assert (r["ii"], r["dsp"], r["lut"]) == (d.ideal_ii, c["dsp"], c["lut"]), r["plan"]
        assert r["throughput_per_dsp"] == pytest.approx(1e6 / (d.ideal_ii * c["dsp"]))
        acc = compression_error(net, out, frames=8, seed=0)
        assert r["error"] == acc.rel_error and r["top1"] == acc.top1


def test_search_shape_and_bound(space):
    base = space[space["step"] == "baseline"]
    assert len(base) == 1 and base["gain"].item() == 1.0 and base["error"].item() == 0.0
    singles = space[(space["step"] == "single") & (space["nm"] == "")]
    # every dense layer at every rank below its full rank
    assert set(singles["plan"]) == {
        f"{la}:svd{r}" for la in ("fc1", "fc2", "fc3") for r in (2, 8)
    } | {"fc4:svd2"}
    assert (space["feasible"] == (space["error"] <= 0.5)).all()
    greedy = space[(space["step"] == "greedy") & (space["nm"] == "")]
    accepted = [p for p in greedy["plan"] if p]
    # the accepted path grows one layer at a time
    lengths = [len(p.split()) for p in accepted]
    assert lengths == sorted(lengths)


def test_front_is_exact(space):
    f = np.stack([-space["throughput_per_dsp"], space["error"]], axis=1)
    assert (space["pareto"].to_numpy() == pareto_mask_brute(f)).all()


def test_cli(capsys, tmp_path):
    status = main(["explore", "jet_tagger", "--compress", "--bound", "0.5", "--json"])
    out, _ = capsys.readouterr()
    assert status == 0
    doc = json.loads(out)
    assert doc["space"] == "compress" and doc["bound"] == 0.5
    assert doc["points"] == len(doc["points_table"])
    assert main(["explore", "jet_tagger", "--compress", "--validate", "2"]) == 2
    _, err = capsys.readouterr()
    assert err.startswith("codesign: error: the compression space is searched greedily")
