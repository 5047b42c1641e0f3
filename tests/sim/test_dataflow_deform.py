# amaranth: UnusedElaboratable=no
"""The event simulator's deformable stages against the RTL, cycle for cycle: the ``Deform``
unit alone against ``DeformWindow`` in amaranth's simulator (input gaps, a sink that is not
always ready), and the frames-dependent timing of a whole deformable design."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
import simpy
from amaranth import signed, unsigned
from amaranth.sim import Simulator
from codesign.hdl.deform import DeformWindow
from codesign.models.dataflow import conv_out_size
from codesign.models.deform import Variant
from codesign.models.deform.engine import window_fetch_cycles
from codesign.models.golden import random_inputs, trace
from codesign.models.hwconfig import ConfigError, Design, HardwareConfig, StageConfig
from codesign.models.loader import load
from codesign.sim.dataflow import analytic, fetch_cycles, simulate, size_fifos
from codesign.sim.dataflow.units import Deform, Link, at

# -- the unit alone ------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A gather unit and its stimulus: frames of ``source`` (``"dcn_tiny"``: the golden
    trace of dcn_tiny's deformable layer cut down to ``height × width``; ``"random"``:
    random pixels and offsets reaching past every border), the probability that a source
    offers a beat in a cycle and that the sink is ready."""

    source: str
    banks: int
    ports: int
    variant: str = "free"
    height: int = 6
    width: int = 7
    channels: int = 2
    frac: int = 4
    stride: tuple[int, int] = (1, 1)
    frames: int = 2
    i_prob: float = 1.0
    offs_prob: float = 1.0
    o_prob: float = 1.0
    seed: int = 0

    @property
    def var(self) -> Variant:
        return Variant.parse(self.variant, 1 if "bounded" in self.variant else None)

    @property
    def out_size(self) -> tuple[int, int]:
        return (
            conv_out_size(self.height, 3, self.stride[0], 1, 1),
            conv_out_size(self.width, 3, self.stride[1], 1, 1),
        )

    @property
    def offset_bits(self) -> int:
        return 6 if self.source == "dcn_tiny" else self.frac + 5

    def dut(self) -> DeformWindow:
        return DeformWindow(
            element=unsigned(8),
            channels=self.channels,
            height=self.height,
            width=self.width,
            kernel=(3, 3),
            stride=self.stride,
            padding=(1, 1),
            variant=self.var,
            frac=self.frac,
            offset=signed(self.offset_bits),
            banks=self.banks,
            ports=self.ports,
        )

    def stimulus(self) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(N, C, H, W)`` and offsets ``(N, values, Ho, Wo)``."""
        rng = np.random.default_rng(self.seed)
        ho, wo = self.out_size
        n, c, h, w = self.frames, self.channels, self.height, self.width
        if self.source == "dcn_tiny":
            net = load("dcn_tiny")
            values = trace(net, random_inputs(net, n, self.seed))
            y0, x0 = rng.integers(0, 32 - h), rng.integers(0, 32 - w)
            x = values["stem_act"][:, :c, y0 : y0 + h, x0 : x0 + w]
            off = values["offsets"][:, :, y0 : y0 + ho, x0 : x0 + wo]
            return x, off
        x = rng.integers(0, 256, (n, c, h, w))
        one = 1 << self.frac
        lo, hi = -(1 << (self.offset_bits - 1)), (1 << (self.offset_bits - 1)) - 1
        off = rng.integers(-3 * one, 3 * one + 1, (n, 18, ho, wo))
        whole = rng.random(off.shape) < 0.3
        off = np.where(whole, off & ~(one - 1), off)  # integer positions: one fetch
        return x, np.clip(off, lo, hi)

    def fetch(self, off: np.ndarray) -> np.ndarray:
        return window_fetch_cycles(
            off,
            height=self.height,
            width=self.width,
            kernel=(3, 3),
            stride=self.stride,
            padding=(1, 1),
            dilation=(1, 1),
            variant=self.var,
            frac=self.frac,
            banks=self.banks,
            ports=self.ports,
        )


@dataclass
class Pattern:
    """The bench's randomness, drawn once and replayed by both simulators: idle cycles a
    source inserts before each beat, and the sink's ready in each cycle."""

    i_gaps: list[int]
    offs_gaps: list[int]
    ready: list[bool]

    @classmethod
    def draw(cls, case: Case, n_i: int, n_offs: int, cycles: int) -> Pattern:
        rng = random.Random(case.seed)

        def gaps(n, prob):
            out = []
            for _ in range(n):
                g = 0
                while rng.random() >= prob:
                    g += 1
                out.append(g)
            return out

        ready = [rng.random() < case.o_prob for _ in range(cycles)]
        return cls(gaps(n_i, case.i_prob), gaps(n_offs, case.offs_prob), ready)


def _pack(values, bits: int) -> int:
    return sum((int(v) & ((1 << bits) - 1)) << (j * bits) for j, v in enumerate(values))


def rtl_cycles(case: Case, x, off, pat: Pattern) -> dict[str, list[int]]:
    """Cycles in which DeformWindow took each pixel, offset beat and output beat."""
    dut = case.dut()
    n, _, h, w = x.shape
    ho, wo = case.out_size
    i_words = [_pack(x[f, :, r, q], 8) for f in range(n) for r in range(h) for q in range(w)]
    o_words = [
        _pack(off[f, :, r, q], case.offset_bits)
        for f in range(n)
        for r in range(ho)
        for q in range(wo)
    ]
    n_out = n * ho * wo * 9
    got: dict[str, list[int]] = {"i": [], "offs": [], "o": []}
    limit = len(pat.ready) - 1

    def source(port, words, gaps, cycles):
        async def bench(ctx):
            t = 0
            for word, gap in zip(words, gaps, strict=True):
                ctx.set(port.valid, 0)
                for _ in range(gap):
                    await ctx.tick()
                    t += 1
                ctx.set(port.payload.as_value(), word)
                ctx.set(port.valid, 1)
                while True:
                    *_, ready = await ctx.tick().sample(port.ready)
                    t += 1
                    if ready:
                        cycles.append(t - 1)
                        break
                    assert t < limit, f"beat {len(cycles)} not taken in {t} cycles"
            ctx.set(port.valid, 0)

        return bench

    async def sink(ctx):
        t = 0
        ctx.set(dut.o.ready, pat.ready[0])
        async for *_, valid, ready in ctx.tick().sample(dut.o.valid, dut.o.ready):
            if valid and ready:
                got["o"].append(t)
                if len(got["o"]) == n_out:
                    return
            t += 1
            assert t < limit, f"only {len(got['o'])} of {n_out} beats in {t} cycles"
            ctx.set(dut.o.ready, pat.ready[t])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source(dut.i, i_words, pat.i_gaps, got["i"]))
    sim.add_testbench(source(dut.offs, o_words, pat.offs_gaps, got["offs"]))
    sim.add_testbench(sink)
    sim.run()
    return got


def model_cycles(case: Case, fetch: np.ndarray, pat: Pattern) -> dict[str, list[int]]:
    """The same run in the event simulator's ``Deform`` unit."""
    env = simpy.Environment()
    n = case.frames
    ho, wo = case.out_size
    pixels, beats = case.height * case.width, ho * wo
    image = Link(env, "i", pixels)
    offs = Link(env, "offs", beats)
    out = Link(env, "o", beats * 9)
    unit = Deform(env, "dw", image, offs, out, pixels=pixels, beats=beats, taps=9, fetch=fetch)

    def source(link, gaps):
        def run():
            last = -1
            for k, gap in enumerate(gaps):
                link.offer(k, last + 1 + gap)
                last = yield from at(link.xfer, k)

        return run()

    def sink():
        for j in range(n * beats * 9):
            v = yield from at(out.offers, j)
            t = v
            while not pat.ready[t]:
                t += 1
            out.want(j, t)
            yield from at(out.xfer, j)

    env.process(source(image, pat.i_gaps))
    env.process(source(offs, pat.offs_gaps))
    env.process(sink())
    for p in unit.processes(n):
        env.process(p)
    env.run()
    return {"i": image.xfer.t, "offs": offs.xfer.t, "o": out.xfer.t}


UNIT_CASES = [
    Case("dcn_tiny", 2, 2),
    Case("dcn_tiny", 1, 1, o_prob=0.6, seed=1),
    Case("dcn_tiny", 2, 1, o_prob=0.3, i_prob=0.7, offs_prob=0.5, frames=3, seed=2),
    Case("dcn_tiny", 4, 2, o_prob=0.8, offs_prob=0.2, seed=3),
    Case("random", 1, 1, frac=3, o_prob=0.5, seed=4),
    Case("random", 2, 2, frac=2, o_prob=0.4, offs_prob=0.3, i_prob=0.5, seed=5),
    Case("random", 1, 2, variant="rounded", frac=3, o_prob=0.7, seed=6),
    Case("random", 4, 1, variant="square", frac=2, o_prob=0.5, offs_prob=0.6, seed=7),
    Case("random", 1, 1, frac=3, stride=(2, 1), height=7, o_prob=0.9, offs_prob=0.1, seed=8),
]


def _id(case: Case) -> str:
    return (
        f"{case.source}-{case.variant}-R{case.banks}P{case.ports}-o{case.o_prob}"
        f"-offs{case.offs_prob}-i{case.i_prob}"
    )


@pytest.mark.parametrize("case", UNIT_CASES, ids=_id)
def test_deform_unit_equals_deform_window(case):
    """Every pixel, offset beat and output beat moves in the same cycle in the model as in
    DeformWindow, under source gaps and a sink that is not always ready."""
    x, off = case.stimulus()
    if case.var.shape.value == "square":
        off = off[:, :1]
    fetch = case.fetch(off)
    ho, wo = case.out_size
    cycles = 400 + 40 * case.frames * (case.height * case.width + ho * wo * 9 * 4)
    pat = Pattern.draw(case, case.frames * case.height * case.width, case.frames * ho * wo, cycles)
    want = rtl_cycles(case, x, off, pat)
    got = model_cycles(case, fetch, pat)
    for key in ("i", "offs", "o"):
        a, b = np.asarray(want[key]), np.asarray(got[key])
        assert len(a) == len(b), f"{key}: {len(b)} beats modelled, {len(a)} in the RTL"
        bad = np.flatnonzero(a != b)
        assert not len(bad), (
            f"{key}: {len(bad)} of {len(a)} beats differ, first beat {bad[0]}: RTL cycle "
            f"{a[bad[0]]}, model {b[bad[0]]}"
        )
    if case.banks * case.ports < 4 and not case.var.rounded:  # taps of 1 and more cycles
        assert np.unique(fetch).size > 1


# -- whole designs -------------------------------------------------------------------------


def pipeline_rtl_times(d, x: np.ndarray) -> tuple[list[int], list[int]]:
    """Cycles of every input and output beat of ``d``'s RTL (``Pipeline``) in amaranth's
    simulator, the input always valid and the output always ready (the conditions of
    :func:`~codesign.sim.dataflow.simulate`), frames ``x`` in order."""
    from codesign.hdl.dataflow.pipeline import Pipeline
    from codesign.hdl.dataflow.stream import pack_beats, to_channels_last

    net = d.network
    dut = Pipeline(d)
    words = [
        w
        for f in to_channels_last(x)
        for w in pack_beats(f, net.input_tensor.qtype, dut.in_per_beat)
    ]
    n_out = len(x) * net.output_tensor.size // dut.out_per_beat
    t_in: list[int] = []
    t_out: list[int] = []

    async def source(ctx):
        t = 0
        for w in words:
            ctx.set(dut.i.payload.as_value(), w)
            ctx.set(dut.i.valid, 1)
            while True:
                *_, ready = await ctx.tick().sample(dut.i.ready)
                t += 1
                if ready:
                    t_in.append(t - 1)
                    break
        ctx.set(dut.i.valid, 0)

    async def sink(ctx):
        t = 0
        ctx.set(dut.o.ready, 1)
        async for *_, valid in ctx.tick().sample(dut.o.valid):
            if valid:
                t_out.append(t)
                if len(t_out) == n_out:
                    return
            t += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return t_in, t_out


def small_deform_net(tmp_path, depthwise: bool, seed: int):
    """A deformable network small enough for amaranth's simulator: the input feeds an offset
    convolution and the deformable convolution (a fork at the input), then ReLU and a
    requantisation."""
    import yaml

    rng = np.random.default_rng(seed)
    c, oc = 2, 2 if depthwise else 3
    layers = [
        {
            "name": "offconv",
            "op": "conv2d",
            "weight": rng.integers(-3, 4, (18, c, 3, 3)).tolist(),
            "bias": rng.integers(-200, 200, 18).tolist(),
            "padding": 1,
        },
        {"name": "offsets", "op": "requant", "multiplier": 1, "shift": 6, "type": "fixed<6,3>"},
        {
            "name": "dconv",
            "op": "deform_conv2d",
            "inputs": ["x", "offsets"],
            "weight": rng.integers(-4, 5, (oc, 1 if depthwise else c, 3, 3)).tolist(),
            "padding": 1,
            "variant": "free",
        },
        {"name": "relu", "op": "relu"},
        {"name": "act", "op": "requant", "multiplier": 1, "shift": 8, "type": "uint4"},
    ]
    doc = {
        "format": 1,
        "name": "dcn_small_dw" if depthwise else "dcn_small",
        "input": {"name": "x", "shape": [c, 5, 6], "type": "uint4"},
        "layers": layers,
    }
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load(path)


@pytest.mark.parametrize("depthwise", [False, True], ids=["full", "depthwise"])
@pytest.mark.parametrize("banks", [1, 2])
def test_small_deformable_pipeline_equals_rtl_beat_for_beat(tmp_path, depthwise, banks):
    """A whole deformable design (fork, FIFOs, width converter, offset convolution, gather,
    MVAU or VVAU, activation, credit queue) in amaranth's simulator: every input and output
    beat moves in the cycle the event simulator predicts, for three frames."""
    from codesign.sim.dataflow import beat_times

    net = small_deform_net(tmp_path, depthwise, seed=banks)
    pe = 1 if banks == 1 and not depthwise else None  # an MVAU of 3 passes: stalls the gather
    d = Design(net, HardwareConfig({"dconv": StageConfig(pe=pe, banks=banks, ports=1)}))
    x = random_inputs(net, 3, banks)
    fc = fetch_cycles(d, x)["dconv"]
    assert fc.max() > 1  # taps of several fetch cycles
    t_in, t_out = pipeline_rtl_times(d, x)
    want_in, want_out = np.asarray(t_in) - t_in[0], np.asarray(t_out) - t_in[0]
    got = beat_times(d, frames=3, inputs=x)
    assert np.array_equal(got["input"].ravel(), want_in)
    bad = np.flatnonzero(got["output"].ravel() != want_out)
    assert not len(bad), (
        f"{len(bad)} of {len(want_out)} output beats differ; first {bad[0]}: RTL cycle "
        f"{want_out[bad[0]]}, model {got['output'].ravel()[bad[0]]}"
    )


def _small(tmp_path, **dconv) -> Design:
    """The small full deformable network, ``dconv`` configured by ``dconv``."""
    net = small_deform_net(tmp_path, False, seed=3)
    return Design(net, HardwareConfig({"dconv": StageConfig(**dconv)}))


def test_a_deformable_design_needs_its_frames(tmp_path):
    d = _small(tmp_path)
    with pytest.raises(
        ConfigError,
        match=r"^stage 'dconv': a deformable stage's cycles depend on its offsets; simulate "
        r"needs the frames \(inputs=\) or their per-tap fetch cycles \(fetch_cycles=\)$",
    ):
        simulate(d, frames=2)
    with pytest.raises(
        ConfigError,
        match=r"^stage 'dconv': a deformable stage's cycles depend on its offsets; the analytic "
        r"model has no closed form for them \(simulate with the frames\)$",
    ):
        analytic(d)
    with pytest.raises(ValueError, match=r"^inputs must be at least 3 frames of shape"):
        simulate(d, frames=3, inputs=random_inputs(d.network, 2, 0))
    with pytest.raises(ValueError, match=r"^fetch_cycles\['dconv'\] must be at least 2 frames"):
        simulate(d, frames=2, fetch_cycles={"dconv": np.ones((1, 270), dtype=int)})
    with pytest.raises(ConfigError, match=r"^stage 'dconv': a deformable stage's cycles"):
        size_fifos(d)


def test_every_frame_is_simulated_with_its_own_fetch_cycles(tmp_path):
    """Frames that alternate between one and four fetch cycles per tap alternate in length
    (with four, the gather is the slowest stage; with one, the offset convolution): no
    periodic extension repeats a frame's timing for another's; the frames' own fetch cycles
    (from their golden trace) give the same result as passing the frames."""
    d = _small(tmp_path, banks=1, ports=1)
    taps = 5 * 6 * 9
    one, four = np.ones(taps, dtype=np.int64), np.full(taps, 4)
    fetch = {"dconv": np.stack([one, four, one, four])}
    r = simulate(d, frames=4, fetch_cycles=fetch, timeline_frames=0)
    assert r.frames_simulated == 4
    gaps = np.diff(r.output_ends)  # gaps[k]: frame k + 1, slow for even k
    assert gaps[0] > gaps[1] + 500 < gaps[2], gaps
    x = random_inputs(d.network, 2, 5)
    fc = fetch_cycles(d, x)["dconv"]
    assert fc.shape == (2, taps) and fc.max() > 1
    by_frames = simulate(d, frames=2, inputs=x, timeline_frames=0)
    by_fetch = simulate(d, frames=2, fetch_cycles={"dconv": fc}, timeline_frames=0)
    assert by_frames == by_fetch
    assert (
        by_frames.output_ends != simulate(d, frames=2, fetch_cycles={"dconv": fc[::-1]}).output_ends
    )


def test_flows_simulate_and_verify_use_the_bench_frames(monkeypatch, tmp_path):
    """codesign.simulate of a deformable design simulates the bench's seeded frames;
    verify predicts its throughput run on the frames that run streams (the first of its
    ``vectors`` frames for its seed)."""
    import codesign.hdl.verify as hv

    import codesign.flows as flows

    d = _small(tmp_path, banks=1, ports=1)
    want = simulate(d, frames=2, inputs=random_inputs(d.network, 2, 3), timeline_frames=0)
    assert flows.simulate(d, frames=2, seed=3, timeline_frames=0) == want
    other = flows.simulate(d, frames=2, seed=4, timeline_frames=0)
    assert other.output_ends != want.output_ends  # the data matters

    monkeypatch.setattr(flows, "generate", lambda d, out: {"verilog": "top.v"})
    monkeypatch.setattr(hv, "verify", lambda d, out, **kw: {"perf_frames": 2})
    got = flows.verify(d, tmp_path, vectors=5, seed=3)
    assert (got["predicted_latency"], got["predicted_ii"]) == (want.latency, want.ii)
