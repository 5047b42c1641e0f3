"""MVAU and activation unit in amaranth.sim against the golden layers, with back-pressure."""

from __future__ import annotations

import numpy as np
import pytest
from codesign.hdl.dataflow.act import Activation, ActivationSpec
from codesign.hdl.dataflow.credit import Admit, CreditStage
from codesign.hdl.dataflow.mvau import MVAU, accumulator_range
from codesign.hdl.dataflow.simulate import run_stream
from codesign.hdl.dataflow.stream import pack_beats, unpack_beats
from codesign.models.arith import multithreshold, requantize
from codesign.models.layers import Clip, MultiThreshold, Requant
from codesign.models.pipelining import PipelineMode, credit_depth
from codesign.models.qtype import Overflow, QType, Rounding


def mvau_stage(mvau: MVAU, depth: int | None = None) -> CreditStage:
    """The MVAU as the head of a credit pipeline with its queue (as in a stage)."""
    if depth is None:
        depth = credit_depth(len(mvau.stages), mvau.sf)
    return CreditStage(head=mvau, depth=depth)


def activation_stage(act: Activation, depth: int | None = None) -> CreditStage:
    """The activation behind an admitting head, with its queue (an activation stage)."""
    layout = act.signature.members["i"].signature.members["payload"].shape
    return CreditStage(
        head=Admit(layout=layout), units=[act], depth=depth or credit_depth(act.latency, 1)
    )


def signed_or_unsigned(rng, bits_choices=(2, 3, 4, 8)):
    bits = int(rng.choice(bits_choices))
    return QType.int(bits, signed=bool(rng.integers(0, 2)))


@pytest.mark.parametrize("mode", list(PipelineMode))
@pytest.mark.parametrize("seed", range(8))
def test_mvau_integer_mode(seed, mode):
    rng = np.random.default_rng(seed)
    mh, mw = [int(v) for v in rng.choice([2, 4, 6, 8], 2)]
    pe = int(rng.choice([d for d in (1, 2, mh) if mh % d == 0]))
    simd = int(rng.choice([d for d in (1, 2, mw) if mw % d == 0]))
    in_t = signed_or_unsigned(rng)
    w = rng.integers(-5, 6, (mh, mw))
    b = rng.integers(-20, 21, mh) if seed % 2 else None
    lo, hi = accumulator_range(w, b, in_t.min, in_t.max, mw, False)
    out_t = QType.covering(lo, hi)
    dut = MVAU(
        weights=w,
        bias=b,
        in_type=in_t,
        out_type=out_t,
        in_range=(in_t.min, in_t.max),
        pe=pe,
        simd=simd,
        pipeline=mode,
    )
    frames = rng.integers(in_t.min, in_t.max + 1, (5, mw))
    words = [wd for f in frames for wd in pack_beats(f, in_t, simd)]
    # the least safe depth tests the credit count hardest: every output waits for a slot
    # (2, or 3 when outputs may come every cycle: SyncFIFOBuffered frees a slot a cycle
    # after its beat moves to the output register)
    least = 3 if dut.sf == 1 else 2
    got, _ = run_stream(mvau_stage(dut, least if seed % 2 else None), words, 5 * mh // pe, seed)
    want = frames @ w.T + (0 if b is None else b)
    assert unpack_beats(got, out_t, pe).reshape(5, mh).tolist() == want.tolist()


@pytest.mark.parametrize("bipolar", [False, True])
def test_mvau_xnor_mode(bipolar):
    rng = np.random.default_rng(11)
    mh, mw, pe, simd = 6, 12, 3, 4
    wbits = rng.integers(0, 2, (mh, mw))
    in_t = QType.bipolar() if bipolar else QType.int(1, signed=False)
    out_t = QType.covering(-mw, mw) if bipolar else QType.covering(0, mw)
    dut = MVAU(
        weights=wbits,
        in_type=in_t,
        out_type=out_t,
        in_range=(0, 1),
        pe=pe,
        simd=simd,
        xnor=True,
        bipolar_out=bipolar,
    )
    xbits = rng.integers(0, 2, (4, mw))
    frames = 2 * xbits - 1 if bipolar else xbits
    words = [wd for f in frames for wd in pack_beats(f, in_t, simd)]
    got, _ = run_stream(mvau_stage(dut), words, 4 * mh // pe, 5)
    pop = (xbits[:, None, :] == wbits[None, :, :]).sum(axis=2)
    want = 2 * pop - mw if bipolar else pop
    assert unpack_beats(got, out_t, pe).reshape(4, mh).tolist() == want.tolist()


def test_mvau_throughput_is_sf_times_nf():
    """Without gaps or back-pressure a vector takes SF·NF cycles in steady state."""
    rng = np.random.default_rng(3)
    w = rng.integers(-3, 4, (8, 12))
    t = QType.int(4)
    dut = MVAU(weights=w, in_type=t, out_type=QType.int(12), in_range=(t.min, t.max), pe=2, simd=3)
    n = 12
    frames = rng.integers(-8, 8, (n, 12))
    words = [wd for f in frames for wd in pack_beats(f, t, 3)]
    _, cycles = run_stream(mvau_stage(dut), words, n * 4, 0, gaps=0, stall=0)
    per_vector = dut.cycles_per_vector
    assert per_vector == 4 * 4
    # n vectors back to back plus the pipeline's fill: its stages and the queue's two cycles
    fill = len(dut.stages) + 2
    assert n * per_vector <= cycles <= n * per_vector + fill + 2


ROUNDINGS = list(Rounding)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("overflow", list(Overflow))
def test_activation_requant(rounding, overflow):
    # str hashes vary between runs (PYTHONHASHSEED): seed from the parameters' positions
    rng = np.random.default_rng(ROUNDINGS.index(rounding) * 16 + list(Overflow).index(overflow))
    c, n = 15, 3  # five channel groups
    in_t = QType.int(12)
    out_t = QType.int(5)
    mult = rng.integers(-7, 8, c)
    rq = Requant(
        name="rq",
        inputs=("x",),
        multiplier=mult,
        shift=3,
        qtype=out_t,
        rounding=rounding,
        overflow=overflow,
    )
    clip = Clip(name="cl", inputs=("x",), min=-1500, max=1800)
    dut = Activation(
        spec=ActivationSpec(clip=clip, requant=rq), in_type=in_t, out_type=out_t, n=n, channels=c
    )
    x = rng.integers(in_t.min, in_t.max + 1, (7, c))
    words = [wd for f in x for wd in pack_beats(f, in_t, n)]
    got, _ = run_stream(activation_stage(dut), words, 7 * c // n, 1)
    want = requantize(np.clip(x, -1500, 1800), mult.reshape(1, -1), 3, out_t, rounding, overflow)
    assert unpack_beats(got, out_t, n).reshape(7, c).tolist() == want.tolist()


@pytest.mark.parametrize("c", [8, 20, 64])
@pytest.mark.parametrize("bipolar", [False, True])
def test_activation_thresholds(bipolar, c):
    """Per-channel thresholds over 2, 5 and 16 channel groups (the registers that hold the
    current group's thresholds load the next group's as each beat is taken), under stalls."""
    rng = np.random.default_rng(2 + c)
    n = 4
    in_t = QType.int(9)
    if bipolar:
        thr = rng.integers(-50, 50, (c, 1))
        layer = MultiThreshold(
            name="t",
            inputs=("x",),
            thresholds=thr,
            out_scale=2,
            out_bias=-1,
            out_type=QType.bipolar(),
        )
        out_t = QType.bipolar()
    else:
        thr = np.sort(rng.integers(-200, 200, (c, 3)), axis=1)
        layer = MultiThreshold(name="t", inputs=("x",), thresholds=thr)
        out_t = QType.int(2, signed=False)
    dut = Activation(
        spec=ActivationSpec(threshold=layer), in_type=in_t, out_type=out_t, n=n, channels=c
    )
    x = rng.integers(in_t.min, in_t.max + 1, (6, c))
    words = [wd for f in x for wd in pack_beats(f, in_t, n)]
    got, _ = run_stream(activation_stage(dut), words, 6 * c // n, 4 + c)
    want = multithreshold(x, thr, layer.out_scale, layer.out_bias)
    assert unpack_beats(got, out_t, n).reshape(6, c).tolist() == want.tolist()


def test_mvau_banked_weight_rom():
    """A logic ROM wider than ROM_BANK_BITS is read in banks, each through its own address
    counter: 4 PE x 8 SIMD x 5-bit weights = 160 bits, three banks."""
    from codesign.hdl.dataflow.mvau import ROM_BANK_BITS

    rng = np.random.default_rng(21)
    mh, mw, pe, simd = 8, 24, 4, 8
    w = rng.integers(-12, 13, (mh, mw))
    t = QType.int(6)
    lo, hi = accumulator_range(w, None, t.min, t.max, mw, False)
    dut = MVAU(
        weights=w, in_type=t, out_type=QType.covering(lo, hi), in_range=(t.min, t.max),
        pe=pe, simd=simd,
    )  # fmt: skip
    assert pe * simd * 5 > 2 * ROM_BANK_BITS
    frames = rng.integers(t.min, t.max + 1, (6, mw))
    words = [wd for f in frames for wd in pack_beats(f, t, simd)]
    got, _ = run_stream(mvau_stage(dut), words, 6 * mh // pe, 9)
    assert (
        unpack_beats(got, QType.covering(lo, hi), pe).reshape(6, mh).tolist()
        == (frames @ w.T).tolist()
    )
