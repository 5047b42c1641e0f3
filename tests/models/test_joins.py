"""Deadlock-free FIFO depths at joins (codesign.models.joins): stage lags, the fork two paths
share, and the join bound :class:`~codesign.models.hwconfig.Design` reads."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import yaml
from codesign.models.hwconfig import Design, stage_io
from codesign.models.joins import common_fork, join_bound, path_lags, stage_lag
from codesign.models.loader import load


def _net(tmp_path, layers: list) -> Design:
    doc = {"format": 1, "name": "j", "input": {"shape": [2, 6, 6], "type": "uint2"}}
    doc["layers"] = layers
    path = tmp_path / "j.yaml"
    path.write_text(yaml.safe_dump(doc))
    return Design(load(path))


def _conv(name: str, src: str, seed: int) -> list[dict]:
    w = np.random.default_rng(seed).integers(-2, 3, (2, 2, 3, 3)).tolist()
    return [
        {"name": name, "op": "conv2d", "weight": w, "padding": 1, "inputs": [src]},
        {"name": f"{name}_act", "op": "multithreshold", "thresholds": [[-4, 0, 4]] * 2},
    ]


def _slack(d: Design, name: str) -> Fraction:
    s = d.stage(name)
    n_in, n_out = stage_io(s, d.config[name])
    return Fraction(n_in, s.input.size) + Fraction(2 * n_out, s.output.size)


def test_a_same_3x3_convolution_runs_one_row_and_two_pixels_behind(tmp_path):
    """Its first output pixel needs input pixel (1, 1): 8 of the 36 pixels, and no later
    output pixel needs more of a lead."""
    d = _net(tmp_path, _conv("a", "input", 0))
    assert stage_lag(d.stage("a"), d.config["a"]) == Fraction(8, 36) + _slack(d, "a")


def test_a_dense_layer_needs_its_whole_input_first(tmp_path):
    layers = [
        {"name": "flat", "op": "flatten"},
        {"name": "fc", "op": "dense", "weight": [[1] * 72] * 3},
    ]
    d = _net(tmp_path, layers)
    assert stage_lag(d.stage("fc"), d.config["fc"]) == 1 + _slack(d, "fc")


def test_the_long_branch_of_a_residual_lags_more_and_sets_the_skip_bound(tmp_path):
    """input → a → b → add(b, a): the fork is a's stream; the path through b lags by b's
    lag more than the skip, so the skip FIFO (port 1) needs the deeper bound."""
    layers = [
        *_conv("a", "input", 0),
        *_conv("b", "a_act", 1),
        {"name": "add", "op": "add", "inputs": ["b_act", "a_act"]},
    ]
    d = _net(tmp_path, layers)
    add = d.stage("add")
    fork, (long, skip) = common_fork(d, add)
    assert fork == "a"
    lags = path_lags(d, "a")
    assert lags["a"] == 0 and set(lags) == {"a", "b", "add"}
    assert long - skip == lags["b"]  # equal connections into the add, b's path on top
    assert lags["b"] > stage_lag(d.stage("b"), d.config["b"])  # plus the link into b
    assert join_bound(d, add, 1) > join_bound(d, add, 0) >= 2
    assert [d.join_bound("add", p) for p in (0, 1)] == [join_bound(d, add, p) for p in (0, 1)]
    assert d.fifo_depth("add", 1) >= join_bound(d, add, 1)


def test_two_stages_reading_the_network_input_fork_it(tmp_path):
    layers = [
        *_conv("a", "input", 0),
        *_conv("b", "input", 1),
        {"name": "add", "op": "add", "inputs": ["a_act", "b_act"]},
    ]
    d = _net(tmp_path, layers)
    fork, (la, lb) = common_fork(d, d.stage("add"))
    assert fork is None  # the network input
    assert la == lb  # two equal convolutions: equal lags
    # the same lag on both sides: each FIFO holds one fork beat and the link's beats
    assert join_bound(d, d.stage("add"), 0) == join_bound(d, d.stage("add"), 1) >= 2
