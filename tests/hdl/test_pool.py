# amaranth: UnusedElaboratable=no
"""Pool2d: max, average and sum pooling (windowed and global) against the IR layers' golden
model, the constant divider against codesign.models.arith.round_div, throughput against
codesign.models.hwconfig, Verilog."""

from __future__ import annotations

import random
import re

import numpy as np
import pytest
from amaranth import Module, Signal, signed, unsigned
from amaranth.back import verilog
from amaranth.lib import data
from amaranth.sim import Simulator
from codesign.hdl.dataflow.pool import Pool2d, PoolMode, divide_round
from codesign.hdl.dataflow.stream import element_shape, pack_beats, unpack_beats
from codesign.models.arith import round_div
from codesign.models.dataflow import conv_out_size
from codesign.models.golden import golden
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
from codesign.models.ir import Network
from codesign.models.layers import AvgPool2d, Input, MaxPool2d, SumPool2d
from codesign.models.qtype import Kind, QType, Rounding


def network(case: dict) -> Network:
    """Input → one pooling layer named ``pool``, as the IR describes it."""
    c, h, w = case["channels"], case["height"], case["width"]
    if case["mode"] == "max":
        pool = MaxPool2d(
            name="pool",
            inputs=("x",),
            kernel=case["kernel"],
            stride=case["stride"],
            padding=case["padding"],
        )
    elif case["mode"] == "sum":
        pool = SumPool2d(name="pool", inputs=("x",), kernel=case["kernel"], stride=case["stride"])
    else:
        pool = AvgPool2d(
            name="pool",
            inputs=("x",),
            kernel=case["kernel"],
            stride=case["stride"],
            rounding=case["rounding"],
        )
    return Network("pool", [Input(name="x", inputs=(), shape=(c, h, w), qtype=case["qtype"]), pool])


def build(case: dict) -> Pool2d:
    args = {k: v for k, v in case.items() if k != "qtype"}
    args["mode"] = PoolMode(case["mode"])
    if case["mode"] == "sum":  # the IR's exact output type
        args["out_element"] = element_shape(network(case).tensors["pool"].qtype)
    return Pool2d(element=element_shape(case["qtype"]), **args)


def random_case(seed: int) -> dict:
    rnd = random.Random(seed)
    mode = rnd.choice(["max", "avg", "sum"])
    while True:
        kernel = (rnd.randint(1, 4), rnd.randint(1, 4))
        stride = (rnd.randint(1, 3), rnd.randint(1, 3))
        padding = (0, 0)
        if mode == "max":
            padding = (rnd.randint(0, kernel[0] // 2), rnd.randint(0, kernel[1] // 2))
        height, width = rnd.randint(1, 9), rnd.randint(1, 9)
        if rnd.random() < 0.2:  # a global pool: the window is the whole image
            kernel, padding = (height, width), (0, 0)
        out = [
            conv_out_size(n, k, s, p, 1)
            for n, k, s, p in zip((height, width), kernel, stride, padding, strict=True)
        ]
        if min(out) >= 1:
            break
    simd = rnd.choice([1, 1, 2, 3, 4])
    bits = rnd.randint(1, 10)
    is_signed = bits > 1 and rnd.random() < 0.5
    return dict(
        channels=simd * rnd.randint(1, 3),
        height=height,
        width=width,
        kernel=kernel,
        stride=stride,
        padding=padding,
        simd=simd,
        mode=mode,
        rounding=rnd.choice(list(Rounding)),
        qtype=QType.int(bits, is_signed),
    )


def check(stream_sim, case: dict, n_frames: int, seed: int, valid_prob=1.0, ready_prob=1.0):
    """Run ``n_frames`` frames through the block, compare with the golden model element for
    element, and return the block and the cycle each output beat was taken on."""
    net = network(case)
    dut = build(case)
    assert (dut.out_height, dut.out_width) == net.tensors["pool"].shape[1:]
    qt, simd = case["qtype"], case["simd"]
    rng = np.random.default_rng(seed)
    shape = (n_frames, case["channels"], case["height"], case["width"])
    if qt.kind is Kind.BIPOLAR:
        xs = rng.choice(np.array([-1, 1]), size=shape)
    else:
        xs = rng.integers(qt.min, qt.max, size=shape, endpoint=True)
    words = [w for x in xs for w in pack_beats(x.transpose(1, 2, 0).reshape(-1), qt, simd)]
    expected = golden(net, xs).astype(np.int64).transpose(0, 2, 3, 1).reshape(-1)
    run = stream_sim(
        dut,
        words,
        dut.out_beats * n_frames,
        valid_prob=valid_prob,
        ready_prob=ready_prob,
        seed=seed,
        max_cycles=1000 + 4 * int(dut.cycles * n_frames / min(valid_prob, ready_prob)),
    )
    out_qt = net.tensors["pool"].qtype
    np.testing.assert_array_equal(unpack_beats(run.words, out_qt, simd), expected)
    return dut, run.cycles


@pytest.mark.parametrize("seed", range(40))
def test_matches_golden(stream_sim, seed):
    """Random geometry, mode, rounding and element type; three frames back to back with
    random input gaps and output back-pressure."""
    rnd = random.Random(seed)
    case = random_case(seed)
    check(stream_sim, case, 3, seed, rnd.uniform(0.4, 1.0), rnd.uniform(0.4, 1.0))


def test_max_of_bipolar(stream_sim):
    """Bipolar elements (1 bit, 0 for -1): the maximum is an OR, padding is -1."""
    case = dict(
        channels=4,
        height=5,
        width=6,
        kernel=(3, 2),
        stride=(2, 2),
        padding=(1, 1),
        simd=4,
        mode="max",
        rounding=Rounding.HALF_EVEN,
        qtype=QType.bipolar(),
    )
    check(stream_sim, case, 2, 3, 0.7, 0.7)


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize("kernel", [(2, 2), (3, 3), (1, 3)])
def test_average_rounding(stream_sim, rounding, kernel):
    """Every rounding mode, with a power-of-two window area (a shift) and others (a
    constant reciprocal), on signed elements where ties and negative sums occur."""
    case = dict(
        channels=2,
        height=6,
        width=6,
        kernel=kernel,
        stride=(1, 2),
        padding=(0, 0),
        simd=2,
        mode="avg",
        rounding=rounding,
        qtype=QType.int(3),
    )
    check(stream_sim, case, 2, 7)


@pytest.mark.parametrize("is_signed", [True, False])
def test_divide_round_exhaustive(is_signed):
    """divide_round equals round_div for every value of the range, every mode, divisors
    1 to 12, 16 and 25."""
    for d in [*range(1, 13), 16, 25]:
        lo, hi = (-8 * d, 7 * d) if is_signed else (0, 15 * d)
        m = Module()
        n = Signal(range(lo, hi + 1))
        outs = {r: Signal(signed(12), name=r.name.lower()) for r in Rounding}
        for r, out in outs.items():
            m.d.comb += out.eq(divide_round(m, n, lo, hi, d, r))
        values = np.arange(lo, hi + 1)
        got = {r: [] for r in Rounding}

        async def bench(ctx, values=values, n=n, outs=outs, got=got):
            for v in values:
                ctx.set(n, int(v))
                for r, out in outs.items():
                    got[r].append(ctx.get(out))

        sim = Simulator(m)
        sim.add_testbench(bench)
        sim.run()
        for r in Rounding:
            np.testing.assert_array_equal(got[r], round_div(values, d, r), err_msg=f"{d} {r}")


THROUGHPUT_CASES = {
    # name: channels, height, width, kernel, stride, padding, simd, mode
    "max2x2s2": (4, 8, 8, (2, 2), (2, 2), (0, 0), 2, "max"),  # H*W = OH*OW*KH*KW
    "max2x2s2odd": (2, 7, 9, (2, 2), (2, 2), (0, 0), 1, "max"),  # input-bound
    "max3x3s1p1": (3, 6, 7, (3, 3), (1, 1), (1, 1), 3, "max"),  # window-bound
    "max3x3s2p1": (2, 9, 8, (3, 3), (2, 2), (1, 1), 1, "max"),
    "avg3x3s3": (4, 9, 10, (3, 3), (3, 3), (0, 0), 2, "avg"),  # input-bound, unused column
    "avg2x2s1": (2, 5, 6, (2, 2), (1, 1), (0, 0), 2, "avg"),
    "avg1x1": (2, 4, 4, (1, 1), (1, 1), (0, 0), 1, "avg"),
    "sum2x2s2": (4, 6, 6, (2, 2), (2, 2), (0, 0), 2, "sum"),
    "sum3x3s1": (2, 5, 6, (3, 3), (1, 1), (0, 0), 1, "sum"),
    "gsum8x8": (32, 8, 8, (8, 8), (1, 1), (0, 0), 4, "sum"),  # global: one beat per cycle
    "gavg4x4": (6, 4, 4, (4, 4), (4, 4), (0, 0), 3, "avg"),
    "gmax3x5": (2, 3, 5, (3, 5), (1, 1), (0, 0), 1, "max"),
}


@pytest.mark.parametrize("name", THROUGHPUT_CASES)
def test_throughput_matches_stage_cycles(stream_sim, name):
    """Input always valid, output always ready: in steady state every frame takes exactly
    codesign.models.hwconfig's closed form for a pool stage with pe = simd (the credit
    queue never holds the window back)."""
    c, h, w, kernel, stride, padding, simd, mode = THROUGHPUT_CASES[name]
    case = dict(
        channels=c,
        height=h,
        width=w,
        kernel=kernel,
        stride=stride,
        padding=padding,
        simd=simd,
        mode=mode,
        rounding=Rounding.HALF_EVEN,
        qtype=QType.int(8),
    )
    n_frames = 6
    dut, cycles = check(stream_sim, case, n_frames, 1)
    closed_form = Design(network(case), HardwareConfig({"pool": StageConfig(pe=simd)}))
    assert dut.cycles == closed_form.cycles("pool")
    assert dut.pipeline == closed_form.pipeline("pool")  # the credit pipeline models/ has
    ends = [cycles[(f + 1) * dut.out_beats - 1] for f in range(n_frames)]
    per_frame = np.diff(ends)[2:]
    assert list(per_frame) == [dut.cycles] * len(per_frame)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            dict(mode="min"),
            ValueError,
            r"^mode must be a PoolMode or one of \['max', 'avg', 'sum'\], not 'min'$",
        ),
        (dict(mode="avg", padding=(1, 0)), ValueError, r"^padding must be \(0, 0\) for avg"),
        (dict(mode="sum", padding=(1, 0)), ValueError, r"^padding must be \(0, 0\) for sum"),
        (dict(padding=(2, 0)), ValueError, r"^padding must be at most half the kernel \(3, 3\)"),
        (dict(rounding="half_even"), TypeError, r"^rounding must be a Rounding, not 'half_even'$"),
        (
            dict(element=data.ArrayLayout(signed(4), 2)),
            TypeError,
            r"^element must be a signed or unsigned shape",
        ),
        (dict(simd=3), ValueError, r"^simd must divide channels \(4\), not 3$"),
        (dict(credit="yes"), TypeError, r"^credit must be a bool, not 'yes'$"),
        (
            dict(kernel=(4, 4), padding=(0, 0), credit=True),
            ValueError,
            r"^credit needs a windowed pool, not a global one$",
        ),
        (
            dict(kernel=(6, 1), padding=(0, 0)),
            ValueError,
            r"^kernel \(6, 1\) must fit the 4x4 image$",
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
        padding=(1, 1),
        simd=2,
        mode=PoolMode.MAX,
    )
    with pytest.raises(error, match=message):
        Pool2d(**{**args, **kwargs})


def test_mode_value_names_the_enum_member():
    """A mode given by its value (as the IR's op names it) is the PoolMode member."""
    args = dict(element=signed(8), channels=4, height=4, width=4, kernel=(2, 2), stride=(2, 2),
                padding=(0, 0), simd=2)  # fmt: skip
    for mode in PoolMode:
        assert Pool2d(**args, mode=mode.value).mode is mode
        assert Pool2d(**args, mode=mode).mode is mode


VERILOG_CASES = [
    dict(element=signed(8), channels=4, height=8, width=8, kernel=(2, 2), stride=(2, 2),
         padding=(0, 0), simd=4, mode=PoolMode.MAX),
    dict(element=unsigned(4), channels=3, height=7, width=6, kernel=(3, 3), stride=(2, 1),
         padding=(1, 1), simd=1, mode=PoolMode.MAX),
    dict(element=signed(6), channels=2, height=7, width=7, kernel=(3, 3), stride=(2, 2),
         padding=(0, 0), simd=1, mode=PoolMode.AVG, rounding=Rounding.HALF_AWAY),
    dict(element=unsigned(8), channels=4, height=6, width=6, kernel=(2, 2), stride=(2, 2),
         padding=(0, 0), simd=2, mode=PoolMode.AVG, rounding=Rounding.HALF_EVEN),
    dict(element=signed(4), channels=4, height=5, width=5, kernel=(2, 2), stride=(1, 1),
         padding=(0, 0), simd=2, mode=PoolMode.SUM),
    dict(element=unsigned(4), channels=32, height=8, width=8, kernel=(8, 8), stride=(1, 1),
         padding=(0, 0), simd=4, mode=PoolMode.SUM),
    dict(element=signed(5), channels=4, height=3, width=3, kernel=(3, 3), stride=(1, 1),
         padding=(0, 0), simd=1, mode=PoolMode.AVG, rounding=Rounding.HALF_EVEN),
]  # fmt: skip


def test_sum_widths_and_global_pool_has_no_line_buffer():
    """A sum's output is as wide as the exact window sum; a whole-image window keeps one
    accumulator per channel (a ring of registers), no line buffer and no image memory."""
    args = dict(element=unsigned(4), channels=32, height=8, width=8, kernel=(8, 8),
                stride=(1, 1), padding=(0, 0), simd=4, mode=PoolMode.SUM)  # fmt: skip
    dut = Pool2d(**args)
    assert dut.global_pool and dut.buffer_rows == 0 and dut.buffer_depth == 0
    assert dut.out_element == unsigned(10)  # 64 * 15 = 960
    assert dut.cycles == 8 * 8 * 32 // 4
    text = verilog.convert(dut, name="pool", emit_src=False)
    memories = re.findall(r"^\s*reg\s+(?:\[\d+:0\]\s+)?\S+\s*\[\d+:0\];", text, re.M)
    assert memories == []
    assert "window" not in text  # no sliding-window generator
    windowed = Pool2d(**{**args, "kernel": (2, 2), "stride": (2, 2)})
    assert not windowed.global_pool and windowed.buffer_rows > 0
    text = verilog.convert(windowed, name="pool", emit_src=False)
    assert re.findall(r"^\s*reg\s+(?:\[\d+:0\]\s+)?\S+\s*\[\d+:0\];", text, re.M)
    assert Pool2d(**{**args, "element": signed(4)}).out_element == signed(10)  # [-512, 448]


@pytest.mark.parametrize("index", range(len(VERILOG_CASES)))
def test_converts_to_verilog(index):
    text = verilog.convert(Pool2d(**VERILOG_CASES[index]), name="pool", emit_src=False)
    assert re.search(r"^module pool\(", text, re.M)


@pytest.mark.simulator
@pytest.mark.parametrize("index", range(len(VERILOG_CASES)))
def test_verilator_lint(tmp_path, index):
    """``verilator --lint-only -Wall`` with the project's waivers (``codesign.hdl.tools.lint``)."""
    from codesign.hdl.tools import lint

    path = tmp_path / "pool.v"
    path.write_text(verilog.convert(Pool2d(**VERILOG_CASES[index]), name="pool", emit_src=False))
    assert lint(path, "pool") == []
