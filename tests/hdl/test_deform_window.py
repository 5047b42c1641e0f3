# amaranth: UnusedElaboratable=no
"""DeformWindow (hdl/deform/window.py): every output beat against models.deform.fixed's
sample_fixed, the RUN and LOAD cycles against models.deform.engine, back-pressure, Verilog."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth import Shape, signed, unsigned
from amaranth.back import verilog
from amaranth.sim import Simulator
from codesign.hdl.deform import DeformWindow
from codesign.hdl.tools import WAIVERS, lint, verilator_on_path
from codesign.models.dataflow import conv_out_size
from codesign.models.deform import OffsetShape, Variant, sample_fixed, tap_positions
from codesign.models.deform.engine import (
    corner_requests,
    frame_cycles,
    group_fetch_cycles,
    load_cycles,
    run_cycles,
    window_fetch_cycles,
)
from codesign.models.deform.reference import tap_grid

U8 = unsigned(8)


@dataclass(frozen=True)
class Case:
    variant: str
    frac: int
    banks: int
    ports: int
    element: Shape = U8
    channels: int = 2
    height: int = 6
    width: int = 5
    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    frames: int = 2
    seed: int = 0

    @property
    def var(self) -> Variant:
        return Variant.parse(self.variant, 1 if "bounded" in self.variant else None)

    @property
    def offset_bits(self) -> int:
        return self.frac + 5  # offsets up to ±16 pixels: far beyond the image

    def dut(self) -> DeformWindow:
        return DeformWindow(
            element=self.element,
            channels=self.channels,
            height=self.height,
            width=self.width,
            kernel=self.kernel,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            variant=self.var,
            frac=self.frac,
            offset=signed(self.offset_bits),
            banks=self.banks,
            ports=self.ports,
        )

    @property
    def out_size(self) -> tuple[int, int]:
        return tuple(
            conv_out_size(*a)
            for a in zip(
                (self.height, self.width),
                self.kernel,
                self.stride,
                self.padding,
                self.dilation,
                strict=True,
            )
        )


def _axis_offsets(rng, n, base, size, frac, bits):
    """Random offsets (units 2**-frac) along one axis for taps at integer ``base``: a mix of
    any value of the offset type, whole pixels, halves, the borders −1, −0.5, size−1, size
    (and one step inside them), and the type's extremes."""
    one = 1 << frac
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    kind = rng.integers(0, 6, n)
    out = rng.integers(lo, hi + 1, n)
    out = np.where(kind == 1, rng.integers(-3, 4, n) * one, out)
    out = np.where(kind == 2, (2 * rng.integers(-3, 3, n) + 1) * (one >> 1), out)
    border = np.array([-one, -(one >> 1), (size - 1) * one, size * one, -one + 1, size * one - 1])
    target = border[rng.integers(0, len(border), n)]
    out = np.where(kind >= 3, target - (base << frac), out)
    out = np.where(kind == 5, rng.choice([lo, hi, 0], n), out)
    return np.clip(out, lo, hi)


def random_offsets(case: Case, rng) -> np.ndarray:
    """(N, channels, Ho, Wo) offsets of the case's variant."""
    ho, wo = case.out_size
    (kh, kw), n = case.kernel, case.frames
    if case.var.shape is OffsetShape.SQUARE:
        one = 1 << case.frac
        lo, hi = -(1 << (case.offset_bits - 1)), (1 << (case.offset_bits - 1)) - 1
        kind = rng.integers(0, 4, (n, 1, ho, wo))
        d = rng.integers(-2 * one, 2 * one + 1, kind.shape)
        d = np.where(kind == 1, rng.integers(-2, 3, kind.shape) * one, d)
        d = np.where(kind == 2, (2 * rng.integers(-2, 2, kind.shape) + 1) * (one >> 1), d)
        d = np.where(kind == 3, rng.choice([lo, hi, lo + 1, hi - 1], kind.shape), d)
        return d
    by = np.repeat(tap_grid(ho, kh, case.stride[0], case.padding[0], case.dilation[0]), kw, 0)
    bx = np.tile(tap_grid(wo, kw, case.stride[1], case.padding[1], case.dilation[1]), (kh, 1))
    base_y = np.broadcast_to(by[None, :, :, None], (n, kh * kw, ho, wo))
    base_x = np.broadcast_to(bx[None, :, None, :], (n, kh * kw, ho, wo))
    args = (case.frac, case.offset_bits)
    dy = _axis_offsets(rng, base_y.size, base_y.ravel(), case.height, *args)
    dx = _axis_offsets(rng, base_x.size, base_x.ravel(), case.width, *args)
    off = np.stack([dy.reshape(base_y.shape), dx.reshape(base_x.shape)], axis=2)
    return off.reshape(n, 2 * kh * kw, ho, wo)


def golden(case: Case, x: np.ndarray, off: np.ndarray):
    """Expected beats (N, Ho, Wo, K, C) and the fetch cycles of every tap (N, K, Ho, Wo)."""
    y, xx, fr = tap_positions(
        off, case.kernel, case.stride, case.padding, case.dilation, case.var, case.frac
    )
    # N, C, K, Ho, Wo; a rounded sample shifted into the units of a bilinear one
    samples = sample_fixed(x, y, xx, fr, 1) << (2 * (case.frac - fr))
    rows, cols, used = corner_requests(y, xx, fr, case.height, case.width)
    fetch = group_fetch_cycles(rows, cols, used, case.banks, case.ports, case.width)[:, 0]
    return samples.transpose(0, 3, 4, 2, 1), fetch


def _pack(values, bits: int) -> int:
    return sum((int(v) & ((1 << bits) - 1)) << (j * bits) for j, v in enumerate(values))


def _unpack(word: int, bits: int, count: int, is_signed: bool) -> list[int]:
    out = []
    for j in range(count):
        v = (word >> (j * bits)) & ((1 << bits) - 1)
        if is_signed and v >> (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


@dataclass
class Run:
    beats: np.ndarray  #: (N, Ho, Wo, K, C) samples taken from ``o``
    i_cycles: list[int]  #: cycle each input pixel was accepted
    offs_cycles: list[int]  #: cycle each offset beat was accepted
    o_cycles: list[int]  #: cycle each output beat was taken


def simulate(case: Case, x, off, *, i_prob=1.0, offs_prob=1.0, o_prob=1.0, seed=0) -> Run:
    """Drive the frames ``x`` (N, C, H, W) and offsets ``off`` through the case's unit."""
    dut = case.dut()
    n, c, h, w = x.shape
    ho, wo = case.out_size
    k = case.kernel[0] * case.kernel[1]
    ebits, obits = case.element.width, case.offset_bits
    i_words = [
        _pack(x[f, :, r, col], ebits) for f in range(n) for r in range(h) for col in range(w)
    ]
    off_words = [
        _pack(off[f, :, r, col], obits) for f in range(n) for r in range(ho) for col in range(wo)
    ]
    n_out = n * ho * wo * k
    rng = random.Random(seed)
    limit = 200 + 30 * (len(i_words) + n_out * 4)
    run = Run(beats=np.zeros(0), i_cycles=[], offs_cycles=[], o_cycles=[])
    words = []

    def source(port, data, prob, cycles):
        async def bench(ctx):
            t = 0
            for word in data:
                while rng.random() >= prob:
                    ctx.set(port.valid, 0)
                    await ctx.tick()
                    t += 1
                ctx.set(port.payload.as_value(), word)
                ctx.set(port.valid, 1)
                while True:
                    _clk, _rst, ready = await ctx.tick().sample(port.ready)
                    t += 1
                    if ready:
                        cycles.append(t - 1)
                        break
                    if t > limit:
                        raise AssertionError(f"beat {len(cycles)} not taken in {t} cycles")
            ctx.set(port.valid, 0)

        return bench

    async def sink(ctx):
        t = 0
        ctx.set(dut.o.ready, rng.random() < o_prob)
        async for _clk, _rst, valid, ready, payload in ctx.tick().sample(
            dut.o.valid, dut.o.ready, dut.o.payload.as_value()
        ):
            if valid and ready:
                words.append(payload)
                run.o_cycles.append(t)
                if len(words) == n_out:
                    return
            t += 1
            if t > limit:
                raise AssertionError(f"only {len(words)} of {n_out} beats in {t} cycles")
            ctx.set(dut.o.ready, rng.random() < o_prob)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source(dut.i, i_words, i_prob, run.i_cycles))
    sim.add_testbench(source(dut.offs, off_words, offs_prob, run.offs_cycles))
    sim.add_testbench(sink)
    sim.run()
    sbits = dut.sample.width
    vals = [_unpack(wd, sbits, c, dut.sample.signed) for wd in words]
    run.beats = np.array(vals, dtype=np.int64).reshape(n, ho, wo, k, c)
    return run


def random_frames(case: Case, rng) -> np.ndarray:
    e = case.element
    lo = -(1 << (e.width - 1)) if e.signed else 0
    hi = (1 << (e.width - 1)) - 1 if e.signed else (1 << e.width) - 1
    shape = (case.frames, case.channels, case.height, case.width)
    x = rng.integers(lo, hi + 1, shape)
    x[:, :, 0, 0] = hi  # the extremes, at a corner
    x[:, :, -1, -1] = lo
    return x


def check_exact(case: Case, run: Run, want: np.ndarray) -> None:
    bad = np.argwhere(run.beats != want)
    assert len(bad) == 0, f"{len(bad)} of {want.size} samples differ, first at {bad[0]}"


def check_cycles(case: Case, run: Run, fetch: np.ndarray) -> None:
    h, w = case.height, case.width
    ho, wo = case.out_size
    per_frame = ho * wo * case.kernel[0] * case.kernel[1]
    for f in range(case.frames):
        i_cyc = run.i_cycles[f * h * w : (f + 1) * h * w]
        offs0 = run.offs_cycles[f * ho * wo]
        last_o = run.o_cycles[(f + 1) * per_frame - 1]
        assert i_cyc[-1] - i_cyc[0] + 1 == load_cycles(h, w)
        assert offs0 == i_cyc[-1] + 1
        assert last_o - offs0 + 1 == run_cycles(fetch[f])
        if f + 1 < case.frames:
            assert run.i_cycles[(f + 1) * h * w] - i_cyc[0] == frame_cycles(h, w, fetch[f])


VARIANTS = ["free", "bounded", "square", "rounded", "square+bounded+rounded"]

CASES = [
    Case("free", 2, 1, 1),
    Case("free", 3, 2, 2, element=signed(6), channels=3, height=5, width=7, seed=1),
    Case("free", 2, 4, 1, height=7, width=6, frames=3, seed=2),
    Case("bounded", 3, 4, 2, seed=3),
    Case("bounded", 2, 1, 2, element=signed(4), channels=1, seed=4),
    Case("square", 2, 2, 1, seed=5),
    Case("square", 3, 1, 1, element=signed(5), height=5, width=5, seed=6),
    Case("rounded", 2, 1, 2, seed=7),
    Case("rounded", 3, 4, 1, channels=3, seed=8),
    Case("square+bounded+rounded", 3, 4, 2, seed=9),
    Case("square+bounded+rounded", 2, 2, 1, element=signed(8), seed=10),
    Case("free", 2, 2, 1, stride=(2, 2), height=7, width=8, seed=11),
    Case("square", 3, 1, 2, dilation=(2, 2), padding=(2, 2), seed=12),
    Case("bounded", 2, 2, 2, dilation=(2, 1), padding=(2, 1), stride=(1, 2), seed=13),
    Case("rounded", 3, 2, 1, stride=(2, 1), dilation=(1, 2), padding=(1, 2), seed=14),
]


def _name(case: Case) -> str:
    extra = "".join(
        f"-{k}{v[0]}x{v[1]}"
        for k, v, d in (("s", case.stride, (1, 1)), ("d", case.dilation, (1, 1)))
        if v != d
    )
    return f"{case.variant}-f{case.frac}-R{case.banks}-P{case.ports}{extra}"


def _check_case(case: Case) -> None:
    rng = np.random.default_rng(case.seed)
    x = random_frames(case, rng)
    off = random_offsets(case, rng)
    want, fetch = golden(case, x, off)
    run = simulate(case, x, off)
    check_exact(case, run, want)
    check_cycles(case, run, fetch.sum(axis=(1, 2, 3)))


@pytest.mark.parametrize("case", CASES, ids=_name)
def test_samples_exact_and_cycles(case):
    _check_case(case)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("banks", [1, 2, 4])
@pytest.mark.parametrize("ports", [1, 2])
@pytest.mark.parametrize("frac", [2, 3])
def test_every_variant_bank_port(variant, banks, ports, frac):
    seed = 100 * VARIANTS.index(variant) + 10 * banks + 3 * ports + frac
    _check_case(Case(variant, frac, banks, ports, frames=3, seed=seed))


def test_fetch_cycles_cover_every_count():
    """The cases reach every fetch count a tap can take (1, 2 or 4: corners drop out in
    pairs, a row or a column at a time, so never 3), and the engine's per-frame helper agrees
    with group_fetch_cycles."""
    seen = set()
    for case in CASES:
        rng = np.random.default_rng(case.seed)
        random_frames(case, rng)
        off = random_offsets(case, rng)
        _, fetch = golden(case, np.zeros((case.frames, 1, case.height, case.width)), off)
        seen |= set(np.unique(fetch).tolist())
        helper = window_fetch_cycles(
            off,
            height=case.height,
            width=case.width,
            kernel=case.kernel,
            stride=case.stride,
            padding=case.padding,
            dilation=case.dilation,
            variant=case.var,
            frac=case.frac,
            banks=case.banks,
            ports=case.ports,
        )
        assert np.array_equal(helper, fetch.transpose(0, 2, 3, 1))
    assert seen == {1, 2, 4}


def test_offsets_reach_borders_halves_and_beyond():
    """The free cases' positions include the borders −1, −0.5, H−1, H (and W's), whole
    pixels, halves and positions beyond the image; the rounded cases include ties."""
    for case in CASES:
        rng = np.random.default_rng(case.seed)
        random_frames(case, rng)
        off = random_offsets(case, rng)
        y, x, fr = tap_positions(
            off, case.kernel, case.stride, case.padding, case.dilation, case.var, case.frac
        )
        if case.var == Variant():
            one = 1 << fr
            for pos, size in ((y, case.height), (x, case.width)):
                want = {-one, -one // 2, (size - 1) * one, size * one}
                assert want <= set(np.unique(pos).tolist()), case
                assert np.any(pos % one == 0) and np.any(pos % one == one // 2)
                assert np.any(pos < -one) and np.any(pos > size * one)
        if case.var.rounded and case.var.shape is OffsetShape.FREE:
            half = 1 << (case.frac - 1)
            assert np.any(off % (2 * half) == half)  # ties, rounded to even


@pytest.mark.parametrize("seed", [0, 1])
def test_back_pressure_and_gaps(seed):
    case = [
        Case("free", 3, 2, 1, channels=3, element=signed(6), seed=20),
        Case("square+bounded+rounded", 2, 1, 2, seed=21),
    ][seed]
    rng = np.random.default_rng(case.seed)
    x = random_frames(case, rng)
    off = random_offsets(case, rng)
    want, _ = golden(case, x, off)
    run = simulate(case, x, off, i_prob=0.6, offs_prob=0.3, o_prob=0.4, seed=seed)
    check_exact(case, run, want)


def test_errors():
    good = dict(
        element=unsigned(8),
        channels=2,
        height=5,
        width=5,
        kernel=(3, 3),
        padding=(1, 1),
        variant=Variant(),
        frac=2,
        offset=signed(7),
    )

    def make(**kw):
        return DeformWindow(**{**good, **kw})

    with pytest.raises(ValueError, match=r"^offset_groups must be 1 \(one offset group\), not 2$"):
        make(offset_groups=2)
    with pytest.raises(ValueError, match=r"^banks must be a power of two, not 3$"):
        make(banks=3)
    with pytest.raises(ValueError, match=r"^banks must be positive, not 0$"):
        make(banks=0)
    with pytest.raises(ValueError, match=r"^ports must be 1 or 2, not 3$"):
        make(ports=3)
    with pytest.raises(TypeError, match=r"^variant must be a Variant, not 'free'$"):
        make(variant="free")
    with pytest.raises(ValueError, match=r"^offset must be a signed shape of at least 2 bits"):
        make(offset=unsigned(7))
    with pytest.raises(ValueError, match=r"^frac must be at most 12, not 13$"):
        make(frac=13)
    with pytest.raises(ValueError, match=r"^kernel must be odd in both axes for a square"):
        make(kernel=(2, 3), variant=Variant(shape=OffsetShape.SQUARE))
    with pytest.raises(TypeError, match=r"^DeformWindow.__init__\(\) takes 1 positional"):
        DeformWindow(unsigned(8))


def test_interface():
    dut = Case("square+bounded+rounded", 3, 2, 2, element=signed(6), channels=3).dut()
    assert dut.sample == signed(6 + 2 * 3) and dut.sample_frac == 0
    assert dut.offset_values == 1
    assert dut.bank_depth == 3 * 5
    free = Case("free", 3, 4, 1, channels=3).dut()
    assert free.sample == unsigned(8 + 6) and free.offset_values == 18
    assert Shape.cast(free.o.payload.shape()).width == 3 * 14


@pytest.mark.parametrize("case", [CASES[1], CASES[9]], ids=_name)
def test_verilog_lint_clean(case, tmp_path):
    text = verilog.convert(case.dut(), name="deform_window", emit_src=False)
    path = tmp_path / "deform_window.v"
    path.write_text(text)
    assert lint(path, "deform_window") == []


def _frame_words(case: Case, x, off, want):
    """Beat words per frame: input pixels, offset beats, expected output beats."""
    h, w = case.height, case.width
    ho, wo = case.out_size
    sbits = case.dut().sample.width
    i_words = [
        [_pack(x[f, :, r, col], case.element.width) for r in range(h) for col in range(w)]
        for f in range(case.frames)
    ]
    off_words = [
        [_pack(off[f, :, r, col], case.offset_bits) for r in range(ho) for col in range(wo)]
        for f in range(case.frames)
    ]
    out_words = [
        [_pack(beat, sbits) for beat in want[f].reshape(-1, case.channels)]
        for f in range(case.frames)
    ]
    return i_words, off_words, out_words


@pytest.mark.slow
@pytest.mark.simulator
def test_verilator_matches_golden_at_model_timing(tmp_path):
    """The Verilog on Verilator under cocotb: two frames at full rate (LOAD and RUN cycles
    exact), then two under random gaps and back-pressure, every beat exact."""
    from cocotb_tools.runner import VerilatorControlFile, get_results, get_runner

    c = Case("free", 3, 1, 1, element=signed(7), channels=3, height=7, width=6, frames=4, seed=30)
    rng = np.random.default_rng(c.seed)
    x = random_frames(c, rng)
    off = random_offsets(c, rng)
    want, fetch = golden(c, x, off)
    i_words, off_words, out_words = _frame_words(c, x, off, want)
    fast = 2
    bench = tmp_path / "bench.json"
    bench.write_text(
        json.dumps(
            dict(
                i=i_words,
                offs=off_words,
                expected=out_words,
                fast_frames=fast,
                load_cycles=load_cycles(c.height, c.width),
                run_cycles=[run_cycles(fetch[f]) for f in range(fast)],
                valid_prob=0.5,
                ready_prob=0.4,
                seed=c.seed,
            )
        )
    )
    verilog_path = tmp_path / "deform_window.v"
    verilog_path.write_text(verilog.convert(c.dut(), name="deform_window", emit_src=False))
    with verilator_on_path():
        runner = get_runner("verilator")
        runner.build(
            sources=[VerilatorControlFile(WAIVERS), verilog_path],
            hdl_toplevel="deform_window",
            build_dir=tmp_path / "build",
            timescale=("1ns", "1ps"),
        )
        xml = tmp_path / "results.xml"
        try:
            runner.test(
                test_module="codesign.hdl.deform.cocotb_window",
                hdl_toplevel="deform_window",
                build_dir=tmp_path / "build",
                test_dir=tmp_path,
                plusargs=[f"+deform_bench={bench}"],
                results_xml=str(xml),
            )
        except (RuntimeError, SystemExit):
            pass  # the verdict is in results.xml
    assert get_results(xml) == (1, 0)
