"""Several :class:`~codesign.hdl.pim.array.PimArray` units behind one top module, so that one
Verilator build holds them all (``tests/hdl/test_pim_rtl.py``)."""

# amaranth: UnusedElaboratable=no

from __future__ import annotations

from collections.abc import Mapping

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from .array import PimArray

__all__ = ["PimUnits"]


class PimUnits(wiring.Component):
    """PIM arrays side by side on one clock: unit ``name``'s ports are the member ``name``
    (in Verilog ``<name>__prog__valid``, ``<name>__cycles``, ...).

    Parameters
    ----------
    units
        The arrays by name (each name a Python identifier).
    """

    def __init__(self, *, units: Mapping[str, PimArray]) -> None:
        if not isinstance(units, Mapping) or not units:
            raise TypeError(
                f"units must be a non-empty mapping of names to PimArray, not {units!r}"
            )
        for name, unit in units.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"unit name must be an identifier, not {name!r}")
            if not isinstance(unit, PimArray):
                raise TypeError(f"unit {name!r} must be a PimArray, not {unit!r}")
        self._units = dict(units)
        super().__init__({name: Out(unit.signature) for name, unit in self._units.items()})

    @property
    def units(self) -> dict[str, PimArray]:
        """The arrays by name."""
        return dict(self._units)

    def elaborate(self, platform) -> Module:
        m = Module()
        for name, unit in self._units.items():
            m.submodules[name] = unit
            wiring.connect(m, wiring.flipped(getattr(self, name)), unit)
        return m
