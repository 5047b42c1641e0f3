"""The deformable gather engine's cycle model: hand-computed cases, a per-window Python loop,
monotonicity, the network report and the command line."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from codesign.models.deform import Variant, tap_positions
from codesign.sim.deform import (
    DeformShape,
    GatherConfig,
    Overlap,
    codenet_config,
    mac_cycles,
    positions_timing,
    rtl_config,
)

# -- hand-computed cases ---------------------------------------------------------------------


def one_window(ys, xs, frac=0):
    """Positions of a single 3×3 window (N = G = 1, Ho = Wo = 1) at pixel ``(ys, xs)``."""
    y = np.asarray(ys, dtype=np.int64).reshape(1, 1, 9, 1, 1)
    x = np.asarray(xs, dtype=np.int64).reshape(1, 1, 9, 1, 1)
    return y, x, frac


SHAPE = DeformShape("d", channels=4, height=8, width=12, out_channels=4, kernel=(3, 3))


def test_corners_in_one_bank_then_two_ports_halve_it():
    # nine taps on row 2, half-way between columns k and k+1: corners (2, 0..9), all in bank 2
    y, x, f = one_window([2 * 2] * 9, [2 * k + 1 for k in range(9)], frac=1)
    one = GatherConfig(banks=4, ports=1, taps_per_group=9)
    r = positions_timing(y, x, f, SHAPE, one)
    assert r.gather_cycles.item() == 10  # 10 distinct words of one bank, one port
    assert r.fetch_histogram.tolist() == [0] * 10 + [1]
    r2 = positions_timing(y, x, f, SHAPE, one.with_(ports=2))
    assert r2.gather_cycles.item() == 5
    # the same taps one per group: 2 corners each, same bank, 2 cycles per tap
    r3 = positions_timing(y, x, f, SHAPE, one.with_(taps_per_group=1))
    assert r3.gather_cycles.item() == 18
    assert r3.fetch_histogram.tolist() == [0, 0, 9]


def test_corners_over_banks_take_the_busiest_bank():
    # taps on rows 0..2 and columns 0..2, exactly on pixels: 3 words in each of banks 0, 1, 2
    ii, jj = np.divmod(np.arange(9), 3)
    y, x, f = one_window(ii, jj)
    r = positions_timing(y, x, f, SHAPE, GatherConfig(banks=4, ports=1, taps_per_group=9))
    assert r.gather_cycles.item() == 3
    # with 2 banks rows 0 and 2 share bank 0: 6 words there
    r = positions_timing(y, x, f, SHAPE, GatherConfig(banks=2, ports=1, taps_per_group=9))
    assert r.gather_cycles.item() == 6


def test_rounded_needs_one_fetch_per_tap():
    rng = np.random.default_rng(3)
    off = rng.integers(-40, 40, size=(2, 18, 6, 10))
    v = Variant.parse("rounded")
    y, x, f = tap_positions(off, (3, 3), (1, 1), (1, 1), (1, 1), v, 3)
    shape = DeformShape("d", 4, 6, 10, 4, (3, 3), padding=(1, 1))
    r = positions_timing(y, x, f, shape, rtl_config(banks=1))
    assert f == 0
    assert r.fetch_histogram.tolist() == [0, 2 * 9 * 6 * 10]
    assert (r.gather_cycles == 9).all()
    # the same offsets unrounded: some taps need 2 or 4 corners, from one bank
    y, x, f = tap_positions(off, (3, 3), (1, 1), (1, 1), (1, 1), Variant(), 3)
    r = positions_timing(y, x, f, shape, rtl_config(banks=1))
    assert r.fetch_histogram[2:].sum() > 0


def test_samples_outside_the_buffered_rows_are_bursts():
    # a 3-row buffer around the window's rows 0..2; tap 0 at (5.5, 3.5): four corners on rows
    # 5 and 6, outside; tap 1 at (1, 4.5): two corners inside; the rest on (0, 0)
    ys = [11, 2] + [0] * 7
    xs = [7, 9] + [0] * 7
    y, x, f = one_window(ys, xs, frac=1)
    shape = DeformShape("d", channels=4, height=8, width=12, out_channels=4, kernel=(3, 3),
                        element_bits=8)  # fmt: skip
    cfg = GatherConfig(
        banks=3, ports=1, taps_per_group=1, rows=3, burst_latency=7, bytes_per_cycle=4,
        min_burst_bytes=2, pe=4, simd=36,
    )  # fmt: skip
    r = positions_timing(y, x, f, shape, cfg)
    assert r.bursts.tolist() == [4]
    assert r.burst_bytes == 4  # 4 channels of 8 bits
    # on chip: tap 0 reads nothing (1 cycle), tap 1 two words in bank 1 (2), 7 taps of 1
    assert r.external_cycles.item() == 7 + 4 * 1
    assert r.gather_cycles.item() == 1 + 2 + 7 + 11
    assert r.mac_cycles == 1
    assert r.window_cycles.item() == 21
    assert r.external_bytes.tolist() == [16]
    # the same positions with the whole frame on chip: no bursts; tap 0's 4 corners in 2 banks
    r = positions_timing(y, x, f, shape, cfg.with_(rows=None))
    assert r.bursts.tolist() == [0]
    assert r.gather_cycles.item() == 2 + 2 + 7
    # sequential: gather then MACs
    r = positions_timing(y, x, f, shape, cfg.with_(overlap=Overlap.SEQUENTIAL, simd=9))
    assert r.mac_cycles == 4
    assert r.window_cycles.item() == 21 + 4


def test_line_buffer_follows_the_window_row():
    # Ho = 4 windows down a column (stride 1, no padding, H = 6); every tap on row 3, exactly:
    # a 3-row buffer centred on rows oy..oy+2 holds row 3 for oy = 1, 2, 3, not for oy = 0
    shape = DeformShape("d", 1, 6, 3, 1, (3, 3))
    y = np.full((1, 1, 9, 4, 1), 3, dtype=np.int64)
    x = np.tile(np.arange(9).reshape(1, 1, 9, 1, 1) % 3, (1, 1, 1, 4, 1))
    r = positions_timing(y, x, 0, shape, GatherConfig(rows=3, banks=3, taps_per_group=9))
    assert r.external_cycles[0, :, 0].tolist() == [30 + 9 * 4, 0, 0, 0]
    # a 5-row buffer starts a row above the window: rows -1..3 hold row 3 for oy = 0 too
    r = positions_timing(y, x, 0, shape, GatherConfig(rows=5, banks=5, taps_per_group=9))
    assert r.bursts.tolist() == [0]


def test_mac_cycles_mvau_and_vvau():
    full = DeformShape("f", 16, 8, 8, 32, (3, 3))
    assert mac_cycles(full, GatherConfig(pe=8, simd=9)) == 4 * 16
    assert mac_cycles(full, GatherConfig(pe=5, simd=10)) == 7 * 15  # folds round up
    dw = DeformShape("dw", 16, 8, 8, 16, (3, 3), groups=16, offset_groups=16)
    assert dw.depthwise
    assert mac_cycles(dw, GatherConfig(pe=8, simd=9)) == 2
    assert mac_cycles(dw, GatherConfig(pe=4, simd=3)) == 4 * 3


@pytest.mark.parametrize(
    ("field", "value", "exc", "message"),
    [
        ("banks", 0, ValueError, r"banks must be positive, not 0"),
        ("ports", 1.5, TypeError, r"ports must be an int, not 1\.5"),
        ("taps_per_group", True, TypeError, r"taps_per_group must be an int, not True"),
        ("rows", 0, ValueError, r"rows must be positive, not 0"),
        ("burst_latency", -1, ValueError, r"burst_latency must be at least 0, not -1"),
        ("overlap", "max", TypeError, r"overlap must be an Overlap, not 'max'"),
    ],
)
def test_config_errors(field, value, exc, message):
    with pytest.raises(exc, match=rf"^{message}$"):
        GatherConfig(**{field: value})


def test_rows_shorter_than_the_window_is_an_error():
    y, x, f = one_window([0] * 9, [0] * 9)
    with pytest.raises(ValueError, match=r"^rows must be at least the 3 rows a window of layer d "
                       r"spans, not 2$"):  # fmt: skip
        positions_timing(y, x, f, SHAPE, GatherConfig(rows=2))


# -- equal to a per-window loop --------------------------------------------------------------


def slow_timing(y, x, frac, shape: DeformShape, cfg: GatherConfig):
    """Window cycles, fetch-group cycles and bursts, one window and one corner at a time."""
    n, g, k, ho, wo = y.shape
    one = 1 << frac
    t = min(cfg.taps_per_group, k)
    word_bytes = max(math.ceil(shape.word_bits / 8), cfg.min_burst_bytes)
    per_burst = math.ceil(word_bytes / cfg.bytes_per_cycle)
    mac = mac_cycles(shape, cfg)
    windows = np.zeros((n, ho, wo), dtype=np.int64)
    groups, bursts = [], np.zeros(n, dtype=np.int64)
    for b in range(n):
        for oy in range(ho):
            top = oy * shape.stride[0] - shape.padding[0]
            lo = top - (cfg.rows - shape.span) // 2 if cfg.rows is not None else None
            for ox in range(wo):
                gather, ext = 0, 0
                for gg in range(g):
                    for start in range(0, k, t):
                        words: dict[int, set] = {}
                        for tap in range(start, min(start + t, k)):
                            yy, xx = int(y[b, gg, tap, oy, ox]), int(x[b, gg, tap, oy, ox])
                            if not (-one < yy < shape.height * one and -one < xx < shape.width
                                    * one):  # fmt: skip
                                continue
                            y0, x0 = yy // one, xx // one
                            fy, fx = yy - y0 * one, xx - x0 * one
                            for dy, dx, wgt in (
                                (0, 0, (one - fy) * (one - fx)),
                                (0, 1, (one - fy) * fx),
                                (1, 0, fy * (one - fx)),
                                (1, 1, fy * fx),
                            ):
                                r, c = y0 + dy, x0 + dx
                                if wgt == 0 or not (0 <= r < shape.height and 0 <= c < shape.width):
                                    continue
                                if lo is not None and not lo <= r < lo + cfg.rows:
                                    ext += 1
                                    continue
                                words.setdefault(r % cfg.banks, set()).add((r, c))
                        busiest = max((len(s) for s in words.values()), default=0)
                        cyc = max(1, math.ceil(busiest / cfg.ports))
                        groups.append(cyc)
                        gather += cyc
                if ext:
                    gather += cfg.burst_latency + ext * per_burst
                bursts[b] += ext
                if cfg.overlap is Overlap.PIPELINED:
                    windows[b, oy, ox] = max(gather, mac)
                else:
                    windows[b, oy, ox] = gather + mac
    return windows, np.bincount(groups), bursts


@pytest.mark.parametrize("seed", range(6))
def test_equal_to_a_per_window_loop(seed):
    rng = np.random.default_rng(seed)
    kh, kw = (3, 3) if seed % 3 else (3, 1)
    h, w = int(rng.integers(4, 9)), int(rng.integers(4, 9))
    g = int(rng.choice([1, 2]))
    stride, pad, dil = (int(rng.integers(1, 3)),) * 2, (1, 1), (1, int(rng.integers(1, 3)))
    names = ["free", "rounded", "bounded", "square", "square+bounded+rounded"]
    name = names[seed % len(names)]
    if "square" in name:
        kh, kw = 3, 3
    v = Variant.parse(name, 1 if "bounded" in name else None)
    frac = int(rng.integers(0, 4))
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    ch = g if "square" in name else 2 * g * kh * kw
    off = rng.integers(-3 << frac, 3 << frac, size=(2, ch, ho, wo), endpoint=True)
    y, x, f = tap_positions(off, (kh, kw), stride, pad, dil, v, frac)
    shape = DeformShape("d", 2 * g, h, w, 4, (kh, kw), stride, pad, dil, offset_groups=g)
    cfg = GatherConfig(
        banks=int(rng.integers(1, 6)),
        ports=int(rng.integers(1, 3)),
        taps_per_group=int(rng.choice([1, 2, 4, kh * kw, 20])),
        rows=[None, kh * dil[0], kh * dil[0] + 2][seed % 3],
        burst_latency=int(rng.integers(0, 20)),
        pe=2,
        simd=int(rng.integers(1, 30)),
        overlap=[Overlap.PIPELINED, Overlap.SEQUENTIAL][seed % 2],
    )
    r = positions_timing(y, x, f, shape, cfg)
    windows, hist, bursts = slow_timing(y, x, f, shape, cfg)
    assert np.array_equal(r.window_cycles, windows)
    assert r.fetch_histogram.tolist() == hist.tolist()
    assert r.bursts.tolist() == bursts.tolist()
    assert r.frame_cycles.tolist() == windows.sum(axis=(1, 2)).tolist()


# -- monotonicity ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["free", "square", "rounded"])
def test_more_ports_never_slower(name):
    rng = np.random.default_rng(11)
    v = Variant.parse(name)
    ch = 1 if name == "square" else 18
    off = rng.integers(-64, 64, size=(2, ch, 12, 12))
    y, x, f = tap_positions(off, (3, 3), (1, 1), (1, 1), (1, 1), v, 4)
    shape = DeformShape("d", 8, 12, 12, 8, (3, 3), padding=(1, 1))
    for base in (rtl_config(), codenet_config(pe=8, simd=1)):
        prev = None
        for ports in (1, 2, 3, 4, 8, 40):
            r = positions_timing(y, x, f, shape, base.with_(ports=ports))
            if prev is not None:
                assert (r.window_cycles <= prev).all()
            prev = r.window_cycles
    # and a whole-window gather gets strictly faster (a tap-serial rounded one cannot)
    one, many = (
        positions_timing(y, x, f, shape, codenet_config(ports=p)).gather_cycles.sum()
        for p in (1, 40)
    )
    assert one > many


def test_a_32x32_frame_well_under_a_second():
    import time

    rng = np.random.default_rng(0)
    off = rng.integers(-64, 64, size=(1, 18, 32, 32))
    y, x, f = tap_positions(off, (3, 3), (1, 1), (1, 1), (1, 1), Variant(), 4)
    shape = DeformShape("d", 16, 32, 32, 16, (3, 3), padding=(1, 1))
    for cfg in (rtl_config(), codenet_config()):
        t0 = time.perf_counter()
        positions_timing(y, x, f, shape, cfg)
        assert time.perf_counter() - t0 < 0.5


def test_to_dict_is_json():
    y, x, f = one_window([4] * 9, list(range(9)))
    doc = positions_timing(y, x, f, SHAPE, codenet_config()).to_dict()
    assert json.loads(json.dumps(doc)) == doc
    assert re.fullmatch(r"\d+", next(iter(doc["fetch_cycles_histogram"])))


def test_no_mac_array_and_half_given_mac_array():
    assert mac_cycles(SHAPE, GatherConfig()) == 0
    with pytest.raises(
        ValueError, match=r"^pe and simd must both be ints or both None, not pe=4 and simd=None$"
    ):
        GatherConfig(pe=4)


# -- the network report and the command line -----------------------------------------------


def run_cli(capsys, *argv):
    from codesign.cli import main

    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_network_timing_reads_the_golden_offsets():
    from codesign.models.deform.variants import with_variant
    from codesign.models.golden import random_inputs, trace
    from codesign.models.loader import load
    from codesign.sim.deform import layer_timing, network_timing

    net = load("dcn_tiny_dw")
    v = Variant.parse("square+bounded", 1)
    r = network_timing(net, codenet_config(), frames=3, seed=5, variant=v)
    (t,) = r.layers
    sq = with_variant(net, v)
    layer = sq["dconv"]
    values = trace(sq, random_inputs(sq, 3, 5))
    ref = layer_timing(layer, *sq.inputs_of(layer), values[layer.inputs[1]], codenet_config())
    assert np.array_equal(t.window_cycles, ref.window_cycles)
    assert t.variant == "bounded+square" and t.shape.depthwise and t.shape.offset_groups == 1
    assert r.frame_cycles.tolist() == t.frame_cycles.tolist()
    with pytest.raises(ValueError, match=r"^network 'jet_tagger' must have a deformable layer"):
        network_timing(load("jet_tagger"), codenet_config())


def test_cli_variant_table(capsys):
    status, out, err = run_cli(
        capsys, "sim", "dcn_tiny_dw", "--variant", "all", "--engine", "codenet", "--frames", "2"
    )
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert re.fullmatch(
        r"dcn_tiny_dw: gather engine on 2 random frames \(seed 0\); engine codenet: 5 banks, "
        r"1 read port\(s\) each, 9 tap\(s\) per fetch group, on chip 5 rows, MAC PE 8 × SIMD 9, "
        r"pipelined",
        lines[0],
    )
    rows = [ln.split() for ln in lines[3:8]]
    assert [r[0] for r in rows] == [
        "free",
        "bounded",
        "square",
        "rounded",
        "bounded+square+rounded",
    ]
    assert rows[0][3] == "1.00x"
    assert all(float(r[3].rstrip("x")) > 1 for r in rows[1:])


def test_cli_json_matches_the_model(capsys):
    from codesign.models.loader import load
    from codesign.sim.deform import network_timing

    status, out, _ = run_cli(
        capsys, "sim", "dcn_tiny", "--variant", "rounded", "--ports", "2", "--frames", "2",
        "--seed", "3", "--json",
    )  # fmt: skip
    assert status == 0
    doc = json.loads(out)
    assert doc["engine"] == "rtl" and doc["config"]["ports"] == 2
    (res,) = doc["results"]
    ref = network_timing(
        load("dcn_tiny"), rtl_config(ports=2), frames=2, seed=3, variant=Variant.parse("rounded")
    )
    assert res == json.loads(json.dumps(ref.to_dict()))
    assert res["layers"][0]["fetch_cycles_histogram"] == {"1": 2 * 9 * 32 * 32}


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (
            ["dcn_tiny", "--variant", "wobbly"],
            r"codesign sim: argument --variant: variant must be 'free' or names from "
            r"\['bounded', 'square', 'rounded'\] joined by '\+', not 'wobbly' \(unknown 'wobbly'\)",
        ),
        (
            ["dcn_tiny", "--variant", "bounded"],
            r"codesign sim: argument --bound: bound must be given exactly when the variant is "
            r"bounded, not bound=None with variant 'bounded'",
        ),
        (
            ["dcn_tiny", "--bound", "1"],
            r"codesign sim: argument --bound: must come with a bounded --variant, not 1 alone",
        ),
        (
            ["dcn_tiny", "--banks", "0"],
            r"codesign sim: argument --banks: must be a positive int, not '0'",
        ),
        (
            ["dcn_tiny", "--variant", "bounded", "--bound", "-1"],
            r"codesign sim: argument --bound: must be an int of at least 0, not '-1'",
        ),
        (
            ["dcn_tiny", "--engine", "codenet", "--rows", "2"],
            r"codesign sim: argument --rows: rows must be at least the 3 rows a window of layer "
            r"dconv spans, not 2",
        ),
        (
            ["dcn_tiny", "--pe", "4"],
            r"codesign sim: argument --simd: must be given with --pe and --simd together for an "
            r"engine with no MAC array",
        ),
        (
            ["jet_tagger", "--variant", "free"],
            r"codesign sim: argument --variant: needs a network with deformable layers, and "
            r"jet_tagger has none",
        ),
        (
            ["jet_tagger", "--ports", "2"],
            r"codesign sim: argument --ports: needs a network with deformable layers, and "
            r"jet_tagger has none",
        ),
        (
            ["dcn_tiny", "--size-fifos", "x.yaml"],
            r"codesign sim: argument --size-fifos: does not apply to the gather engine of "
            r"dcn_tiny",
        ),
    ],
)
def test_cli_errors_one_line_exit_2(capsys, argv, pattern):
    status, out, err = run_cli(capsys, "sim", *argv)
    assert status == 2 and out == ""
    assert re.fullmatch(rf"codesign: error: {pattern}\n", err), err


@pytest.mark.parametrize("name", ["free", "square+bounded", "rounded"])
def test_rtl_configuration_is_the_rtls_exact_frame_time(name):
    from codesign.models.deform import engine
    from codesign.sim.deform import is_rtl

    rng = np.random.default_rng(2)
    v = Variant.parse(name, 1 if "bounded" in name else None)
    off = rng.integers(-24, 24, size=(3, 1 if "square" in name else 18, 7, 9))
    kw = dict(kernel=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1), variant=v)
    y, x, f = tap_positions(off, kw["kernel"], (1, 1), (1, 1), (1, 1), v, 3)
    shape = DeformShape("d", 4, 7, 9, 4, (3, 3), padding=(1, 1))
    cfg = rtl_config(banks=3, ports=1)
    assert is_rtl(shape, cfg) and not is_rtl(shape, cfg.with_(taps_per_group=2))
    r = positions_timing(y, x, f, shape, cfg)
    per_tap = engine.window_fetch_cycles(
        off, height=7, width=9, frac=3, banks=3, ports=1, **kw
    )  # the RTL's order, one frame at a time
    assert r.frame_cycles.tolist() == [engine.run_cycles(c) for c in per_tap]
    assert r.rtl_frame_interval.tolist() == [engine.frame_cycles(7, 9, c) for c in per_tap]
    # the window sum leaves out the RUN phase's fixed latencies
    assert (r.frame_cycles - r.window_cycles.sum(axis=(1, 2))).tolist() == [
        engine.RUN_ISSUE_LATENCY + engine.RUN_OUTPUT_LATENCY
    ] * 3
