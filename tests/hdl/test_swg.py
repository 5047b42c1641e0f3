# amaranth: UnusedElaboratable=no
"""SlidingWindow: window stream against codesign.models.dataflow.im2col, throughput, Verilog."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.back import verilog
from codesign.hdl.dataflow.stream import element_shape, pack_beats, unpack_beats
from codesign.hdl.dataflow.swg import SlidingWindow, TapOrder, line_buffer_rows
from codesign.models.dataflow import conv_out_size, im2col
from codesign.models.qtype import QType


def windows(x: np.ndarray, kernel, stride, padding, dilation, pad_value) -> np.ndarray:
    """The documented output order: (oh, ow, kh, kw, c) of one (C, H, W) frame."""
    win = im2col(x[None], kernel, stride, padding, dilation, pad_value)[0]  # C, OH, OW, KH, KW
    return win.transpose(1, 2, 3, 4, 0).reshape(-1)


def random_case(seed: int) -> dict:
    """A random geometry and element type whose output is at least one pixel."""
    rnd = random.Random(seed)
    while True:
        kernel = (rnd.randint(1, 4), rnd.randint(1, 4))
        dilation = (rnd.choice([1, 1, 2, 3]), rnd.choice([1, 1, 2]))
        stride = (rnd.randint(1, 3), rnd.randint(1, 3))
        padding = tuple(
            rnd.randint(0, (k - 1) * d + 1) for k, d in zip(kernel, dilation, strict=True)
        )
        height, width = rnd.randint(1, 9), rnd.randint(1, 9)
        axes = zip((height, width), kernel, stride, padding, dilation, strict=True)
        sizes = [conv_out_size(*axis) for axis in axes]
        if min(sizes) >= 1:
            break
    simd = rnd.choice([1, 1, 2, 3])
    qtype = QType.int(rnd.randint(1, 9), signed=rnd.random() < 0.5)
    if qtype.signed and qtype.bits == 1:
        qtype = QType.int(2)
    return dict(
        channels=simd * rnd.randint(1, 3),
        height=height,
        width=width,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        simd=simd,
        qtype=qtype,
        pad_value=rnd.randint(qtype.min, qtype.max),
    )


def build(case: dict) -> SlidingWindow:
    args = {k: v for k, v in case.items() if k != "qtype"}
    return SlidingWindow(element=element_shape(case["qtype"]), **args)


def frames_and_golden(case: dict, n_frames: int, seed: int):
    rng = np.random.default_rng(seed)
    qt, c, h, w = case["qtype"], case["channels"], case["height"], case["width"]
    xs = rng.integers(qt.min, qt.max, size=(n_frames, c, h, w), endpoint=True)
    words, expected = [], []
    for x in xs:
        words += pack_beats(x.transpose(1, 2, 0).reshape(-1), qt, case["simd"])
        geometry = (case["kernel"], case["stride"], case["padding"], case["dilation"])
        expected.append(windows(x, *geometry, case["pad_value"]))
    return words, np.concatenate(expected)


@pytest.mark.parametrize("seed", range(40))
def test_windows_match_im2col(stream_sim, seed):
    """Random geometry and element type, three frames back to back, random input gaps and
    output back-pressure: element for element the im2col windows in (kh, kw, c) order."""
    case = random_case(seed)
    dut = build(case)
    n_frames = 3
    words, expected = frames_and_golden(case, n_frames, seed)
    rnd = random.Random(seed)
    run = stream_sim(
        dut,
        words,
        dut.out_beats * n_frames,
        valid_prob=rnd.uniform(0.4, 1.0),
        ready_prob=rnd.uniform(0.4, 1.0),
        seed=seed,
    )
    got = unpack_beats(run.words, case["qtype"], case["simd"])
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", range(200, 215))
def test_channel_major_windows_match_im2col(stream_sim, seed):
    """TapOrder.CHANNEL_MAJOR (a pool's window order): each pixel's taps channel group by
    channel group, (kh, kw) within one, element for element the im2col windows."""
    case = random_case(seed)
    args = {k: v for k, v in case.items() if k != "qtype"}
    dut = SlidingWindow(
        element=element_shape(case["qtype"]), tap_order=TapOrder.CHANNEL_MAJOR, **args
    )
    assert dut.tap_order is TapOrder.CHANNEL_MAJOR
    n_frames, simd = 2, case["simd"]
    rng = np.random.default_rng(seed)
    qt, c, h, w = case["qtype"], case["channels"], case["height"], case["width"]
    xs = rng.integers(qt.min, qt.max, size=(n_frames, c, h, w), endpoint=True)
    words, expected = channel_major_golden(case, xs)
    rnd = random.Random(seed)
    run = stream_sim(
        dut,
        words,
        dut.out_beats * n_frames,
        valid_prob=rnd.uniform(0.4, 1.0),
        ready_prob=rnd.uniform(0.4, 1.0),
        seed=seed,
    )
    got = unpack_beats(run.words, qt, simd)
    np.testing.assert_array_equal(got, expected)


def channel_major_golden(case: dict, xs: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Input words and the channel-major windows of the frames ``xs`` (N, C, H, W)."""
    qt, c, simd = case["qtype"], case["channels"], case["simd"]
    geometry = (case["kernel"], case["stride"], case["padding"], case["dilation"])
    words, expected = [], []
    for x in xs:
        words += pack_beats(x.transpose(1, 2, 0).reshape(-1), qt, simd)
        win = im2col(x[None], *geometry, case["pad_value"])[0]  # C, OH, OW, KH, KW
        win = win.reshape(c // simd, simd, *win.shape[1:])  # G, simd, OH, OW, KH, KW
        expected.append(win.transpose(2, 3, 0, 4, 5, 1).reshape(-1))
    return words, np.concatenate(expected)


@pytest.mark.parametrize("seed", range(300, 312))
def test_credit_window_reads_a_windows_last_tap_only_with_a_credit(seed):
    """A credit pipeline's head (a pool's window): its output is never back-pressured; the
    last tap of each channel group's kh*kw taps is read (``reserve``) only in a cycle with
    ``space``, and is on the output READ_LATENCY cycles later; every other tap is read
    whatever ``space`` says. With ``space`` random, the taps are the channel-major
    windows, element for element."""
    from amaranth.sim import Simulator
    from codesign.models.linebuffer import READ_LATENCY

    case = random_case(seed)
    args = {k: v for k, v in case.items() if k != "qtype"}
    dut = SlidingWindow(
        element=element_shape(case["qtype"]),
        tap_order=TapOrder.CHANNEL_MAJOR,
        credit=True,
        **args,
    )
    assert dut.credit and dut.signature.members["o"].signature.always_ready
    kh, kw = case["kernel"]
    rng = np.random.default_rng(seed)
    qt, c, h, w = case["qtype"], case["channels"], case["height"], case["width"]
    xs = rng.integers(qt.min, qt.max, size=(2, c, h, w), endpoint=True)
    words, expected = channel_major_golden(case, xs)
    n_out = 2 * dut.out_beats
    rnd = random.Random(seed)
    space_prob = rnd.uniform(0.2, 0.9)
    got, tap_cycles, reserves, spaces = [], [], [], []

    async def bench(ctx):
        i_payload, o_payload = dut.i.payload.as_value(), dut.o.payload.as_value()
        k, cycle = 0, 0
        while len(got) < n_out:
            assert cycle < 100 * (n_out + len(words)) + 1000, "the window stopped"
            space = int(rnd.random() < space_prob)
            ctx.set(dut.space, space)
            ctx.set(dut.i.valid, k < len(words))
            if k < len(words):
                ctx.set(i_payload, words[k])
            await ctx.delay(1e-9)
            if ctx.get(dut.reserve):
                reserves.append(cycle)
            spaces.append(space)
            if ctx.get(dut.o.valid):
                got.append(ctx.get(o_payload))
                tap_cycles.append(cycle)
            if k < len(words) and ctx.get(dut.i.ready):
                k += 1
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    np.testing.assert_array_equal(unpack_beats(got, qt, case["simd"]), expected)
    last_taps = tap_cycles[kh * kw - 1 :: kh * kw]
    assert len(reserves) == len(last_taps) == n_out // (kh * kw)
    assert all(spaces[t] for t in reserves)
    assert [t + READ_LATENCY for t in reserves] == last_taps


THROUGHPUT_CASES = {
    # name: channels, height, width, kernel, stride, padding, dilation, simd
    "3x3s1p1": (4, 8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 2),
    "3x3s1p0": (2, 7, 9, (3, 3), (1, 1), (0, 0), (1, 1), 1),
    "3x3s2p1": (3, 9, 9, (3, 3), (2, 2), (1, 1), (1, 1), 3),
    "5x5s1p2": (1, 6, 6, (5, 5), (1, 1), (2, 2), (1, 1), 1),
    "2x2s2": (4, 8, 6, (2, 2), (2, 2), (0, 0), (1, 1), 4),  # input beats = output beats
    "1x1s2": (2, 9, 7, (1, 1), (2, 2), (0, 0), (1, 1), 1),  # input-bound
    "3x3s3": (2, 10, 10, (3, 3), (3, 3), (0, 0), (1, 1), 2),  # input-bound, unused rows
    "dilated": (2, 9, 8, (3, 2), (1, 2), (2, 1), (2, 3), 1),
    "2x1d3p3": (2, 18, 16, (2, 1), (1, 3), (3, 0), (3, 2), 1),  # input-bound, lagging reader
    "1x2pad": (2, 8, 3, (1, 2), (1, 2), (1, 1), (2, 3), 2),  # whole rows of padding
}


@pytest.mark.parametrize("name", THROUGHPUT_CASES)
def test_throughput_back_to_back(stream_sim, name):
    """Input always valid and output always ready: in steady state every frame takes exactly
    max(in_beats, out_beats) cycles."""
    c, h, w, kernel, stride, padding, dilation, simd = THROUGHPUT_CASES[name]
    case = dict(
        channels=c,
        height=h,
        width=w,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        simd=simd,
        qtype=QType.int(8),
        pad_value=0,
    )
    dut = build(case)
    n_frames = 7
    words, expected = frames_and_golden(case, n_frames, 0)
    run = stream_sim(dut, words, dut.out_beats * n_frames)
    np.testing.assert_array_equal(unpack_beats(run.words, case["qtype"], simd), expected)
    ends = [run.cycles[(f + 1) * dut.out_beats - 1] for f in range(n_frames)]
    per_frame = np.diff(ends)[2:]
    assert list(per_frame) == [max(dut.in_beats, dut.out_beats)] * len(per_frame)


@pytest.mark.parametrize("seed", range(100, 130))
def test_throughput_random(stream_sim, seed):
    """The same at random geometries: steady-state cycles per frame = max(in, out)."""
    case = random_case(seed)
    dut = build(case)
    n_frames = 8
    words, expected = frames_and_golden(case, n_frames, seed)
    run = stream_sim(dut, words, dut.out_beats * n_frames)
    np.testing.assert_array_equal(unpack_beats(run.words, case["qtype"], case["simd"]), expected)
    ends = [run.cycles[(f + 1) * dut.out_beats - 1] for f in range(n_frames)]
    per_frame = np.diff(ends)[3:]
    assert list(per_frame) == [max(dut.in_beats, dut.out_beats)] * len(per_frame), case


def test_line_buffer_rows():
    """A bounded number of rows: the window's span and what overlaps at frame ends, not
    the frame."""
    common = dict(groups=4, stride=(1, 1), dilation=(1, 1))
    assert line_buffer_rows(height=64, width=64, kernel=(3, 3), padding=(1, 1), **common) == 3
    assert line_buffer_rows(height=64, width=64, kernel=(3, 3), padding=(0, 0), **common) == 5
    assert line_buffer_rows(height=64, width=64, kernel=(1, 1), padding=(0, 0), **common) == 2
    dut = SlidingWindow(
        element=signed(8),
        channels=16,
        height=32,
        width=32,
        kernel=(3, 3),
        stride=(1, 1),
        padding=(1, 1),
        dilation=(1, 1),
        simd=4,
    )
    assert (dut.buffer_rows, dut.buffer_depth) == (3, 3 * 32 * 4)
    assert (dut.in_beats, dut.out_beats) == (32 * 32 * 4, 32 * 32 * 9 * 4)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(channels=6, simd=4), ValueError, r"^simd must divide channels \(6\), not 4$"),
        (dict(channels=0), ValueError, r"^channels must be positive, not 0$"),
        (dict(height=2.0), TypeError, r"^height must be an int, not 2\.0$"),
        (dict(kernel=(3,)), TypeError, r"^kernel must be a pair of ints \(h, w\), not \(3,\)$"),
        (dict(stride=(1, 0)), ValueError, r"^stride must be positive in both axes, not \(1, 0\)$"),
        (dict(padding=(-1, 0)), ValueError, r"^padding must be at least 0 in both axes"),
        (dict(kernel=(5, 5)), ValueError, r"^kernel \(5, 5\) with dilation .* must fit the 4x4"),
        (dict(pad_value=128), ValueError, r"^pad_value must be in the element's range"),
        (dict(element="int8"), TypeError, r"^element must be a shape, not 'int8'$"),
        (dict(tap_order="pool"), TypeError, r"^tap_order must be a TapOrder, not 'pool'$"),
        (dict(credit=1), TypeError, r"^credit must be a bool, not 1$"),
        (
            dict(credit=True),
            ValueError,
            r"^credit needs tap_order TapOrder\.CHANNEL_MAJOR, not TapOrder\.KERNEL_MAJOR$",
        ),
    ],
)
def test_constructor_errors(kwargs, error, message):
    args = dict(
        element=signed(8),
        channels=4,
        height=4,
        width=4,
        kernel=(3, 3),
        stride=(1, 1),
        padding=(0, 0),
        dilation=(1, 1),
        simd=2,
    )
    with pytest.raises(error, match=message):
        SlidingWindow(**{**args, **kwargs})


VERILOG_CASES = [
    dict(element=signed(8), channels=4, height=8, width=8, kernel=(3, 3), stride=(1, 1),
         padding=(1, 1), dilation=(1, 1), simd=2),
    dict(element=unsigned(3), channels=3, height=5, width=7, kernel=(2, 3), stride=(2, 1),
         padding=(0, 2), dilation=(2, 1), simd=1, pad_value=5),
    dict(element=unsigned(1), channels=8, height=4, width=4, kernel=(1, 1), stride=(1, 1),
         padding=(0, 0), dilation=(1, 1), simd=8),
]  # fmt: skip


@pytest.mark.parametrize("index", range(len(VERILOG_CASES)))
def test_converts_to_verilog(index):
    text = verilog.convert(SlidingWindow(**VERILOG_CASES[index]), name="swg", emit_src=False)
    assert re.search(r"^module swg\(", text, re.M)


@pytest.mark.parametrize(
    ("width", "channels", "simd", "blocks"),
    [
        (64, 2, 1, 1),  # 5 x 128 beats of 8 bits: block RAM, one DP16KD
        (13, 8, 8, 4),  # 5 x 13 beats of 64 bits (cnv_tiny conv2): 4 DP16KD at 18 bits
        (8, 2, 1, 0),  # 5 x 16 beats of 8 bits: LUT RAM, the same Verilog as portable
    ],
)
def test_ecp5_line_buffer_in_block_ram_is_dp16kd(width, channels, simd, blocks):
    """On ECP5 a line buffer that Yosys would put in block RAM is DP16KD instances (with
    their output register) and one in LUT RAM stays a portable memory."""
    args = dict(
        element=signed(8),
        channels=channels,
        height=9,
        width=width,
        kernel=(3, 3),
        stride=(1, 1),
        padding=(0, 0),
        dilation=(1, 1),
        simd=simd,
    )
    portable = verilog.convert(SlidingWindow(**args), name="swg", emit_src=False)
    ecp5 = verilog.convert(SlidingWindow(**args, target="ecp5"), name="swg", emit_src=False)
    assert ecp5.count("DP16KD ") == blocks
    assert ecp5.count('.REGMODE_B("OUTREG")') == blocks
    assert (ecp5 == portable) == (blocks == 0)


_CONVERT = """
from amaranth import signed, unsigned
from amaranth.back import verilog
from codesign.hdl.dataflow.pool import Pool2d, PoolMode
from codesign.hdl.dataflow.swg import SlidingWindow, TapOrder
args = dict(element=signed(5), channels=4, height=7, width=6, kernel=(3, 2), stride=(2, 1),
            padding=(1, 1), dilation=(1, 2), simd=2, pad_value=-3)
print(verilog.convert(SlidingWindow(**args), name="a", emit_src=False))
print(verilog.convert(SlidingWindow(**args, tap_order=TapOrder.CHANNEL_MAJOR), name="b",
                      emit_src=False))
print(verilog.convert(Pool2d(element=unsigned(4), channels=4, height=6, width=6, kernel=(3, 3),
                             stride=(2, 2), padding=(1, 1), simd=2, mode=PoolMode.MAX),
                      name="c", emit_src=False))
"""


def test_verilog_is_byte_identical_across_processes():
    """The window generator's and a pool's Verilog do not depend on the process (string
    hashing, object addresses): two interpreters with different hash seeds agree."""
    import os
    import subprocess
    import sys

    texts = [
        subprocess.run(
            [sys.executable, "-c", _CONVERT],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]
    assert texts[0] == texts[1] and "module a(" in texts[0]


@pytest.mark.simulator
@pytest.mark.parametrize("index", range(len(VERILOG_CASES)))
def test_verilator_lint(tmp_path, index):
    """``verilator --lint-only -Wall`` with the project's waivers (``codesign.hdl.tools.lint``)."""
    from codesign.hdl.tools import lint

    path = tmp_path / "swg.v"
    path.write_text(
        verilog.convert(SlidingWindow(**VERILOG_CASES[index]), name="swg", emit_src=False)
    )
    assert lint(path, "swg") == []
