"""Facts of the stage graph that the RTL and the cost model both read
(codesign.models.plan): the stream order of a tensor and a stage's weight matrix."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from codesign.models.golden import random_inputs, trace
from codesign.models.loader import load
from codesign.models.plan import StageKind, plan, stage_matrix, stream_order


def test_stream_order_is_channels_last_for_an_image_and_identity_for_a_vector():
    # (C=2, H=1, W=3): pixel 0's two channels, then pixel 1's, pixel 2's
    assert stream_order((2, 1, 3)).tolist() == [0, 3, 1, 4, 2, 5]
    x = np.arange(2 * 3 * 4).reshape(2, 3, 4) * 7
    assert x.ravel()[stream_order(x.shape)].tolist() == x.transpose(1, 2, 0).ravel().tolist()
    assert stream_order((5,)).tolist() == list(range(5))


def _stage(stages, name):
    return next(s for s in stages if s.name == name)


def test_a_convolution_matrix_times_its_window_in_stream_order_is_the_golden_output():
    """cnv_tiny's conv2: for some output pixels, the matrix times the window gathered as
    the sliding window streams it (kernel rows, columns, then channels) is the golden
    accumulator."""
    net = load("cnv_tiny")
    s = _stage(plan(net), "conv2")
    m = stage_matrix(s)
    assert (m.xnor, m.bipolar) == (False, False)
    t = trace(net, random_inputs(net, 1, seed=3))
    x = t[s.main.inputs[0]][0]  # (C, H, W)
    kh, kw = s.main.weight.shape[2:]
    (ph, pw), (sh, sw) = s.main.padding, s.main.stride
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
    bias = np.zeros(m.weights.shape[0], dtype=np.int64) if s.main.bias is None else s.main.bias
    acc = t[s.main.name][0]
    for y, xx in [(0, 0), (3, 7), (acc.shape[1] - 1, acc.shape[2] - 1)]:
        win = [xp[c, y * sh + i, xx * sw + j] for i in range(kh) for j in range(kw) for c in
               range(x.shape[0])]  # fmt: skip
        assert (m.weights @ np.array(win) + bias).tolist() == acc[:, y, xx].tolist()


def test_a_dense_layer_after_a_flatten_reads_its_columns_in_stream_order():
    net = load("cnv_tiny")
    s = _stage(plan(net), "fc")
    assert s.in_order is not None
    t = trace(net, random_inputs(net, 2, seed=5))
    image = t[net[s.main.inputs[0]].inputs[0]]  # what the flatten reads: (N, C, H, W)
    stream = image.transpose(0, 2, 3, 1).reshape(image.shape[0], -1)  # channels last
    w = stage_matrix(s).weights
    bias = 0 if s.main.bias is None else s.main.bias
    assert (stream @ w.T + bias).tolist() == t[s.main.name].tolist()


def test_binary_weights_stay_bits_and_their_xnor_popcount_is_the_golden_output():
    net = load("tfc_w1a1")  # FINN's encoding: bits 0 and 1 stand for -1 and +1
    s = plan(net)[1]
    m = stage_matrix(s)
    assert (m.xnor, m.bipolar) == (True, False)
    assert m.weights.tolist() == np.asarray(s.main.weight).tolist()
    t = trace(net, random_inputs(net, 3, seed=1))
    x = t[s.main.inputs[0]]
    pop = (x[:, None, :] == m.weights[None, :, :]).sum(axis=2)
    assert pop.tolist() == t[s.main.name].tolist()


def test_bipolar_weights_become_bits_whose_xnor_popcount_gives_the_dot_product(tmp_path):
    w = np.where(np.random.default_rng(2).random((4, 16)) < 0.5, -1, 1)
    doc = {
        "format": 1,
        "name": "bip",
        "input": {"shape": [16], "type": "bipolar"},
        "layers": [
            {"name": "fc", "op": "binary_dense", "weight": w.tolist(), "encoding": "bipolar"}
        ],
    }
    (tmp_path / "bip.yaml").write_text(yaml.safe_dump(doc))
    net = load(tmp_path / "bip.yaml")
    m = stage_matrix(plan(net)[0])
    assert (m.xnor, m.bipolar) == (True, True)
    assert m.weights.tolist() == (w > 0).astype(int).tolist()
    x = random_inputs(net, 5, seed=4)
    pop = ((x[:, None, :] > 0) == m.weights[None, :, :]).sum(axis=2)
    assert (2 * pop - 16).tolist() == trace(net, x)["fc"].tolist()


def test_a_stage_without_weights_has_no_matrix():
    s = next(s for s in plan(load("cnv_tiny")) if s.kind is StageKind.POOL)
    with pytest.raises(ValueError, match=r"^stage 'pool1': a pool stage has no weights$"):
        stage_matrix(s)


def test_a_depthwise_convolution_has_one_row_of_taps_per_channel(tmp_path):
    w = np.random.default_rng(7).integers(-3, 4, (3, 1, 2, 2))
    doc = {
        "format": 1,
        "name": "dw",
        "input": {"shape": [3, 4, 4], "type": "int4"},
        "layers": [{"name": "dw", "op": "conv2d", "weight": w.tolist(), "groups": 3}],
    }
    (tmp_path / "dw.yaml").write_text(yaml.safe_dump(doc))
    net = load(tmp_path / "dw.yaml")
    s = plan(net)[0]
    assert s.depthwise
    m = stage_matrix(s)
    assert (m.xnor, m.bipolar, m.weights.shape) == (False, False, (3, 4))
    x = random_inputs(net, 1, seed=0)
    acc = trace(net, x)["dw"][0]
    for y, xx in [(0, 0), (2, 1)]:
        taps = x[0][:, y : y + 2, xx : xx + 2].reshape(3, 4)  # (channel, kernel raster)
        assert (m.weights * taps).sum(axis=1).tolist() == acc[:, y, xx].tolist()
