# amaranth: UnusedElaboratable=no
"""The deformable gather (hdl/deform/window.py) on Verilator under cocotb, on real dcn_tiny
data of every offset variant: every output beat equal to the fixed-point golden samples
(models.deform.fixed), under random gaps and back-pressure for part of the frames, and each
full-rate frame's RUN cycles and frame period equal to the cycle model's prediction from that
frame's offsets (models.deform.engine). One Verilator build holds all the units
(hdl/deform/harness.py); the bench is hdl/deform/cocotb_variants.py."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.back import verilog
from codesign.hdl.deform import DeformWindow
from codesign.hdl.deform.harness import WindowArray, pack_words
from codesign.hdl.tools import build_verilator_bench, run_cocotb_module
from codesign.models.deform import Variant, sample_fixed, tap_positions
from codesign.models.deform.engine import (
    frame_cycles,
    load_cycles,
    run_cycles,
    window_fetch_cycles,
)
from codesign.models.deform.variants import with_variant
from codesign.models.golden import random_inputs, trace
from codesign.models.hwconfig import DEFORM_BANKS, DEFORM_PORTS
from codesign.models.ir import Network
from codesign.models.loader import load

NET = "dcn_tiny"
LAYER = "dconv"
#: (variant, bound)
VARIANTS = [
    ("free", None),
    ("bounded", 1),
    ("square", None),
    ("rounded", None),
    ("square+bounded+rounded", 1),
]
#: a frame ``f`` with ``f % SLOW_EVERY == SLOW_EVERY - 1`` runs with random gaps on ``i`` and
#: ``offs`` and random back-pressure on ``o``; the others at full rate (cycles checked)
SLOW_EVERY = 4
#: beats per harness block (divides every stream's beats per frame)
BLOCK = 32
#: probabilities, in sixteenths, of offering a slow frame's input beat and of taking its output
VALID_PROB = 10
READY_PROB = 10
#: Verilator's C++ optimisation: the model runs as fast at -O1 under cocotb and builds faster
VERILATOR_OPT = {"OPT_FAST": "-O1", "OPT_SLOW": "-O0"}
#: the bench reads and drives only the top module's ports: only they are public (a model
#: whose every signal is public builds and runs several times slower)
BUILD_ARGS = ["--no-public-flat-rw"]
TOP = "deform_units"


@dataclass(frozen=True)
class Unit:
    """One gather unit of the bench: a variant of the layer at a banks/ports configuration."""

    variant: str
    bound: int | None
    frames: int
    banks: int = DEFORM_BANKS
    ports: int = DEFORM_PORTS
    seed: int = 0

    @property
    def var(self) -> Variant:
        return Variant.parse(self.variant, self.bound)

    @property
    def name(self) -> str:
        return f"{self.variant}-R{self.banks}-P{self.ports}"


#: the 5 variants at the compiler's default banks/ports (every tap 1 fetch cycle), and the
#: free one at one port, where a tap takes 1 or 2 cycles by its offsets (28 frames: about
#: the cycles of the others' 48; 100 and 60 took 118 s of a CI run over its 35 minutes)
FRAMES = 48
UNITS = [Unit(v, b, FRAMES, seed=k) for k, (v, b) in enumerate(VARIANTS)] + [
    Unit("free", None, 28, ports=1, seed=0),
]


def deform_window(net: Network, banks: int, ports: int) -> DeformWindow:
    """The layer's gather as the pipeline compiler builds it."""
    la = net[LAYER]
    return DeformWindow.of_layer(la, *(net.tensors[s] for s in la.inputs), banks=banks, ports=ports)


def unit_net(unit: Unit) -> Network:
    return with_variant(load(NET), unit.var)


@functools.lru_cache(maxsize=8)
def variant_data(variant: str, bound: int | None, frames: int, seed: int):
    """``frames`` random inputs of the network of a variant traced to the deformable layer:
    its image and offsets, and the golden samples (N, C, K, Ho, Wo) in units
    ``2**-(2·frac)`` for every variant (:func:`~codesign.models.deform.sample_fixed`)."""
    net = with_variant(load(NET), Variant.parse(variant, bound))
    la = net[LAYER]
    names = [layer.name for layer in net.layers]
    end = names.index(LAYER)
    x = random_inputs(net, frames, seed)
    t = trace(Network(net.name, net.layers[:end], output=la.inputs[1]), x)
    image, off = t[la.inputs[0]], t[la.inputs[1]]
    frac = la.offset_frac(net.tensors[la.inputs[1]])
    y, xx, fr = tap_positions(off, la.kernel, la.stride, la.padding, la.dilation, la.variant, frac)
    samples = sample_fixed(image, y, xx, fr, 1) << (2 * (frac - fr))
    # the samples are the layer's: on a few frames, its output is their weighted sum
    few = 2
    out = trace(Network(net.name, net.layers[: end + 1], output=LAYER), x[:few])[LAYER]
    oc = la.weight.shape[0]
    acc = np.einsum("nckhw,ock->nohw", samples[:few], la.weight.reshape(oc, la.weight.shape[1], -1))
    if la.bias is not None:
        acc = acc + la.bias[None, :, None, None]
    assert np.array_equal(acc, out), f"{variant}: the golden samples are not {LAYER}'s"
    return net, image, off, samples


def unit_data(unit: Unit) -> dict:
    """The unit's frames, offsets, golden output beats and the model's cycles per frame."""
    net, image, off, samples = variant_data(unit.variant, unit.bound, FRAMES, unit.seed)
    image, off, samples = image[: unit.frames], off[: unit.frames], samples[: unit.frames]
    la = net[LAYER]
    win = deform_window(net, unit.banks, unit.ports)
    fetch = window_fetch_cycles(
        off,
        height=win.height,
        width=win.width,
        kernel=la.kernel,
        stride=la.stride,
        padding=la.padding,
        dilation=la.dilation,
        variant=la.variant,
        frac=win.frac,
        banks=unit.banks,
        ports=unit.ports,
    )
    frames = np.arange(unit.frames)
    return {
        "x": image.astype(np.int16),
        "offs": off.astype(np.int16),
        "want": np.ascontiguousarray(samples.transpose(0, 3, 4, 2, 1)),
        "fast": frames % SLOW_EVERY != SLOW_EVERY - 1,
        "run": np.array([run_cycles(fetch[f]) for f in frames]),
        "period": np.array([frame_cycles(win.height, win.width, fetch[f]) for f in frames]),
    }


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The units' Verilog (one harness), built once for Verilator."""

    d = tmp_path_factory.mktemp("deform_rtl")
    windows = [deform_window(unit_net(u), u.banks, u.ports) for u in UNITS]
    top = WindowArray(
        windows=windows, block=BLOCK, valid_prob=VALID_PROB, ready_prob=READY_PROB, seed=7
    )
    path = d / f"{TOP}.v"
    path.write_text(verilog.convert(top, name=TOP, emit_src=False))
    start = time.perf_counter()
    runner = build_verilator_bench(path, TOP, d, build_args=BUILD_ARGS, make_vars=VERILATOR_OPT)
    return runner, d, windows, time.perf_counter() - start


def _run(bench, units: list[Unit]):

    runner, d, windows, build_s = bench
    assert len(units) == len(windows)
    start = time.perf_counter()
    arrays, specs = {}, []
    for u, (unit, win) in enumerate(zip(units, windows, strict=True)):
        for key, value in unit_data(unit).items():
            arrays[f"{key}{u}"] = value
        specs.append(
            {
                "name": unit.name,
                "element_bits": win.element.width,
                "offset_bits": len(win.offs.payload.as_value()) // win.offset_values,
                "sample_bits": win.sample.width,
                "load_cycles": load_cycles(win.height, win.width),
            }
        )
    np.savez(d / "data.npz", **arrays)
    golden_s = time.perf_counter() - start
    cfg = d / "bench.json"
    report = d / "report.json"
    cfg.write_text(
        json.dumps(
            {
                "data": str(d / "data.npz"),
                "units": specs,
                "block": BLOCK,
                "report": str(report),
            }
        )
    )
    start = time.perf_counter()
    failures = run_cocotb_module(
        runner,
        test_module="codesign.hdl.deform.cocotb_variants",
        top=TOP,
        directory=d,
        plusargs=[f"+deform_variants={cfg}"],
        make_vars=VERILATOR_OPT,
    )
    sim_s = time.perf_counter() - start
    assert not failures, "\n".join(failures)
    figures = json.loads(report.read_text())
    figures["seconds"] = {"build": build_s, "golden": golden_s, "sim": sim_s}
    return figures


@pytest.mark.simulator
def test_variants_on_verilator_exact_at_model_cycles(bench):
    figures = _run(bench, UNITS)
    for unit in UNITS:
        got = figures[unit.name]
        fast = [f for f in range(unit.frames) if f % SLOW_EVERY != SLOW_EVERY - 1]
        assert got["frames"] == unit.frames
        assert [r["frame"] for r in got["fast"]] == fast
    print(json.dumps({k: v for k, v in figures.items() if k in ("cycles", "seconds")}))


def test_pack_words():
    v = np.array([[1, -1, 3], [0, 2, -4]])
    assert pack_words(v, 3) == [1 | 7 << 3 | 3 << 6, 0 | 2 << 3 | 4 << 6]
    big = np.arange(-40, 40).reshape(8, 10)
    words = pack_words(big, 13)
    for row, word in zip(big, words, strict=True):
        assert [((word >> (13 * j)) ^ 1 << 12) - (1 << 12) & 0x1FFF for j in range(10)] == [
            int(e) & 0x1FFF for e in row
        ]
