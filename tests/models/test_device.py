"""codesign.models.device: the multiplier facts the cost model shares with the RTL."""

from __future__ import annotations

import itertools

import pytest
from codesign.models.device import fits_mult18, registered_dsp, var_dsp


@pytest.mark.parametrize(
    ("a_signed", "b_signed"), list(itertools.product([False, True], [False, True]))
)
def test_fits_mult18_is_what_the_rtl_instantiates(a_signed, b_signed):
    """The cost model counts a MULT18X18D where hdl/dataflow/dsp.py builds one
    (``RegisteredProduct.primitive`` on ECP5 is the hdl's ``fits_mult18`` of its operands)."""
    from amaranth import signed, unsigned
    from codesign.hdl.dataflow import dsp

    shape = {False: unsigned, True: signed}
    for a, b in itertools.product(range(1, 21), range(1, 21)):
        rtl = dsp.fits_mult18(shape[a_signed](a), shape[b_signed](b))
        assert fits_mult18(a, a_signed, b, b_signed) == rtl, (a, b)


def test_registered_dsp():
    assert registered_dsp(1, False, 1, False) == 1  # an instance, however narrow
    assert registered_dsp(18, True, 17, False) == 1
    assert registered_dsp(18, False, 4, True) == var_dsp(19, 4) == 2  # fabric: Yosys's rule
    assert registered_dsp(30, True, 30, True) == 4
