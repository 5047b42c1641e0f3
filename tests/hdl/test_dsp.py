# amaranth: UnusedElaboratable=no
"""The registered multiplier: exact products two cycles later, and the MULT18X18D instance
that the ECP5 Verilog holds (its simulation model is proven with the whole ECP5 design in
tests/hdl/test_zoo_rtl.py)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import signed, unsigned
from amaranth.back import verilog
from amaranth.sim import Simulator
from codesign.hdl.dataflow.dsp import RegisteredProduct, fits_mult18


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (signed(16), signed(8)),
        (unsigned(6), signed(4)),
        (unsigned(17), unsigned(3)),
        (signed(2), unsigned(1)),
    ],
)
def test_portable_product_is_exact_two_cycles_later(a, b):
    dut = RegisteredProduct(a=a, b=b)
    rng = np.random.default_rng(a.width * 31 + b.width)

    def draw(s, n):
        lo, hi = (-(1 << (s.width - 1)), 1 << (s.width - 1)) if s.signed else (0, 1 << s.width)
        return rng.integers(lo, hi, n).tolist()

    xs, ys = draw(a, 64), draw(b, 64)
    got = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)

    async def tb(ctx):
        for k in range(len(xs) + 2):
            if k < len(xs):
                ctx.set(dut.a, xs[k])
                ctx.set(dut.b, ys[k])
            await ctx.tick()
            if k >= 1:  # after edge k: the product of the operands taken at edge k - 1
                got.append(ctx.get(dut.p))

    sim.add_testbench(tb)
    sim.run()
    assert got[: len(xs)] == [x * y for x, y in zip(xs, ys, strict=True)]


def test_fits_mult18():
    assert fits_mult18(signed(18), signed(18))
    assert fits_mult18(unsigned(17), signed(18))
    assert not fits_mult18(unsigned(18), signed(4))  # needs a 19th bit for its sign
    assert not fits_mult18(signed(23), signed(8))


def test_ecp5_product_is_a_registered_mult18x18d():
    ecp5 = RegisteredProduct(a=signed(16), b=unsigned(8), target="ecp5")
    assert ecp5.primitive
    text = verilog.convert(ecp5, name="mul", emit_src=False)
    assert "MULT18X18D" in text
    for p in ("REG_INPUTA_CLK", "REG_INPUTB_CLK", "REG_OUTPUT_CLK"):
        assert f'.{p}("CLK0")' in text
    wide = RegisteredProduct(a=signed(23), b=unsigned(8), target="ecp5")
    assert not wide.primitive  # wider than the block: the portable path
    assert "MULT18X18D" not in verilog.convert(wide, name="mul", emit_src=False)
    with pytest.raises(ValueError, match=r"^target must be one of \(None, 'ecp5'\), not 'ice40'$"):
        RegisteredProduct(a=signed(4), b=signed(4), target="ice40")
