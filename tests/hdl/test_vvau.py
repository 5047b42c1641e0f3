"""Depthwise vector-vector unit against the golden depthwise convolution."""

from __future__ import annotations

import numpy as np
import pytest
from codesign.hdl.dataflow.simulate import run_stream
from codesign.hdl.dataflow.stream import pack_beats, unpack_beats
from codesign.hdl.dataflow.vvau import VVAU
from codesign.models.dataflow import conv2d, conv_weight_matrix, im2col
from codesign.models.qtype import QType


@pytest.mark.parametrize("seed", range(4))
def test_vvau_matches_depthwise_conv(seed):
    rng = np.random.default_rng(seed)
    c, k, h = 4, int(rng.choice([2, 3])), 5
    pe = int(rng.choice([1, 2, 4]))
    in_t = QType.int(4, signed=bool(seed % 2))
    w = rng.integers(-4, 5, (c, 1, k, k))
    b = rng.integers(-9, 10, c) if seed % 2 else None
    x = rng.integers(in_t.min, in_t.max + 1, (2, c, h, h))
    want = conv2d(x, conv_weight_matrix(w, c), b, (k, k), (1, 1), (0, 0), (1, 1), 2**40)
    # the window stream, (oh, ow, kh, kw, c) with PE channels per beat
    win = im2col(x, (k, k), (1, 1), (0, 0), (1, 1))  # (N, C, OH, OW, KH, KW)
    stream_elems = win.transpose(0, 2, 3, 4, 5, 1).reshape(2, -1)
    oh = h - k + 1
    lo, hi = in_t.min, in_t.max
    out_t = QType.covering(int(want.min()) - 200, int(want.max()) + 200)
    dut = VVAU(
        weights=w.reshape(c, k * k), bias=b, in_type=in_t, out_type=out_t, in_range=(lo, hi), pe=pe
    )
    words = [wd for f in stream_elems for wd in pack_beats(f, in_t, pe)]
    got, _ = run_stream(dut, words, 2 * oh * oh * c // pe, seed)
    out = unpack_beats(got, out_t, pe).reshape(2, oh, oh, c).transpose(0, 3, 1, 2)
    assert out.tolist() == want.astype(np.int64).tolist()


def test_vvau_cycles_per_pixel():
    w = np.ones((4, 9), dtype=np.int64)
    t = QType.int(3)
    dut = VVAU(weights=w, in_type=t, out_type=QType.int(8), in_range=(t.min, t.max), pe=2)
    n_pix = 10
    words = [0] * (n_pix * 9 * 2)
    _, cycles = run_stream(dut, words, n_pix * 2, 0, gaps=0, stall=0)
    assert n_pix * dut.cycles_per_pixel <= cycles <= n_pix * dut.cycles_per_pixel + 3
