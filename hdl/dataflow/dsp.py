"""A registered multiplier: ``p = a * b`` two cycles after its operands, with registers at
the multiplier's inputs and output.

On ECP5 (``target="ecp5"``) it is a ``MULT18X18D`` instance with its input and output
registers enabled (REG_INPUTA/B, REG_OUTPUT on CLK0): Yosys maps a ``*`` to the multiplier
without its registers, and the path through the unregistered block (3.9 ns at speed 6) plus
the routing to and from a DSP column does not fit a 150 MHz clock. Operands wider than the
block (18 bits signed, 17 unsigned) and every other target take the portable path: the same
two registers in fabric around a ``*``.
"""

from __future__ import annotations

from amaranth import ClockSignal, Const, Module, Shape, Signal, signed
from amaranth.hdl import Instance, ShapeCastable
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["TARGETS", "RegisteredProduct", "fits_mult18"]

#: Targets with a primitive multiplier instance; None is the portable path.
TARGETS = (None, "ecp5")


def _width18(shape: Shape) -> int:
    """Bits the value takes as a signed 18-bit operand (unsigned values gain a sign bit)."""
    return shape.width + (0 if shape.signed else 1)


def fits_mult18(a: ShapeCastable, b: ShapeCastable) -> bool:
    """Whether ``a * b`` fits one MULT18X18D (both operands as 18-bit two's complement)."""
    return _width18(Shape.cast(a)) <= 18 and _width18(Shape.cast(b)) <= 18


class RegisteredProduct(wiring.Component):
    """``p = a * b``, exact, two cycles after ``a`` and ``b`` (no enable: a pipeline that
    never stalls)."""

    def __init__(self, *, a: ShapeCastable, b: ShapeCastable, target: str | None = None) -> None:
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, not {target!r}")
        self._a, self._b = Shape.cast(a), Shape.cast(b)
        self._target = target
        p = Shape.cast((Signal(self._a) * Signal(self._b)).shape())
        super().__init__({"a": In(self._a), "b": In(self._b), "p": Out(p)})

    @property
    def primitive(self) -> bool:
        """Whether this product is a MULT18X18D instance."""
        return self._target == "ecp5" and fits_mult18(self._a, self._b)

    def elaborate(self, platform):
        m = Module()
        if not self.primitive:
            a_r, b_r = Signal(self._a), Signal(self._b)
            m.d.sync += [a_r.eq(self.a), b_r.eq(self.b), self.p.eq(a_r * b_r)]
            return m
        # both operands as 18-bit two's complement, SIGNEDA/B set: the 36-bit product is exact
        a18, b18 = Signal(signed(18)), Signal(signed(18))
        m.d.comb += [a18.eq(self.a), b18.eq(self.b)]
        p36 = Signal(signed(36))
        ports = {
            "p_REG_INPUTA_CLK": "CLK0",
            "p_REG_INPUTB_CLK": "CLK0",
            "p_REG_OUTPUT_CLK": "CLK0",
            "i_SIGNEDA": Const(1),
            "i_SIGNEDB": Const(1),
            "i_CLK0": ClockSignal(),
            "i_CE0": Const(1),
        }
        # C, SOURCEA/B, the shift-chain inputs and the resets are left unconnected, as
        # nextpnr expects of a plain multiplier (a constant tied to a cascade input has
        # no route from the fabric)
        for k in range(18):
            ports[f"i_A{k}"] = a18[k]
            ports[f"i_B{k}"] = b18[k]
        for k in range(36):
            ports[f"o_P{k}"] = p36[k]
        m.submodules.mult = Instance("MULT18X18D", **ports)
        m.d.comb += self.p.eq(p36)
        return m
