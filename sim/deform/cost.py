"""Resource cost of the deformable gather unit (``hdl/deform/window.py``'s ``DeformWindow``),
the unit that replaces a deformable stage's sliding window (:mod:`codesign.sim.cost` adds
it to the stage's MVAU/VVAU, activation and credit queue).

- DSP and block RAM counts are exact rules (:func:`codesign.models.deform.stage.gather_dsp`,
  :func:`~codesign.models.deform.stage.gather_brams`): the bilinear products, the corner
  weights, the row-word products by W and a square variant's expansion as Yosys maps them;
  the frame store as ``banks`` memories of ``⌈H/banks⌉·W`` words of C elements, one copy
  per read port used.
- LUT and FF counts are linear in :func:`gather_features`, with non-negative coefficients
  (a free intercept) fitted by least squares to Yosys's counts of DeformWindow
  configurations (:data:`MEASURED`: the hierarchical ECP5 script of ``codesign synth``,
  :data:`codesign.hdl.tools.HIERARCHICAL_SCRIPTS`); ``tests/sim/test_deform_cost.py``
  compares the model with Yosys on configurations held out of the fit.

This module imports only ``models``, numpy and the standard library.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

from codesign.models.deform.stage import (
    GatherShape,
    gather_brams,
    gather_dsp,
    gather_read_ports,
)
from codesign.models.device import var_dsp

__all__ = ["COEFFICIENTS", "MEASURED", "gather_cost", "gather_features", "measured"]

#: Yosys's counts of DeformWindow configurations (``tests/sim/test_deform_cost.py``
#: measures a configuration as they were): the ``fit`` rows made :data:`COEFFICIENTS`
#: (:func:`codesign.cost_fit.nnls` on relative errors, free intercept), the ``held_out``
#: rows test them.
MEASURED = Path(__file__).with_name("gather_synth.json")


def _clog2(n: int) -> int:
    return max((int(n) - 1).bit_length(), 1)


def gather_features(g: GatherShape) -> dict[str, float]:
    """The regressors of the gather unit's LUT and FF models, from its RTL's structure:

    - ``chan_bits``: per channel a sample's bits (the sum of its four products and the
      output register); ``prod_bits``: the bilinear products' registers (4·C of them);
    - ``corner_bits``: the four corner registers, a frame-store word each;
    - ``corner_mux``: each corner register's choice among the memories' read ports used
      (word bits times the other sources);
    - ``soft_mul``: bilinear products not in DSP blocks (rounded: AND gates);
    - ``weight_bits``: the four corner weights, registered through the fetch stages;
    - ``addr_bits``: the four corners' word addresses (registers), ``addr_mux``: each read
      port's address chosen among them;
    - ``pos_bits``: a position's width (the tap's base, offset, floor and fraction, the
      in-image tests, the row words);
    - ``offset_bits``: the offset beat's register and the tap's choice of its Δy, Δx;
    - ``lutram_mux``, ``mem_ff``: a frame store small enough for LUT RAM (its read
      multiplexer over 16-word banks) or registers.
    """
    src = g.banks * gather_read_ports(g)
    style, _ = gather_brams(g)
    depth = g.bank_depth
    wb = g.weight_bits + (1 if g.signed else 0)
    soft = var_dsp(wb, g.element_bits) == 0
    prod = g.weight_bits + g.element_bits + (1 if g.signed else 0)
    return {
        "one": 1.0,
        "chan_bits": float(g.channels * g.sample_bits),
        "prod_bits": float(g.products * prod) if g.frac else 0.0,
        "corner_bits": float(4 * g.word_bits),
        "corner_mux": float(4 * g.word_bits * (src - 1)),
        "soft_mul": float(g.products * g.element_bits) if soft else 0.0,
        "weight_bits": float(4 * g.weight_bits) if g.frac else 0.0,
        "addr_bits": float(4 * _clog2(depth)),
        "addr_mux": float(4 * src * _clog2(depth)),
        "pos_bits": float(_clog2(max(g.height, g.width) + 1) + g.frac + 2),
        "offset_bits": float(g.offset_values * g.offset_bits),
        "lutram_mux": (
            float(src * g.word_bits * math.ceil(depth / 16)) if style == "lutram" else 0.0
        ),
        "mem_ff": float(g.banks * depth * g.word_bits) if style == "ff" else 0.0,
    }


#: Fitted LUT and FF coefficients of :func:`gather_features` (ECP5).
COEFFICIENTS: dict[str, dict[str, float]] = {
    "lut": {
        "one": -447.3661,
        "prod_bits": 0.9126,
        "corner_mux": 0.9083,
        "weight_bits": 2.9783,
        "addr_mux": 1.4292,
        "pos_bits": 69.026,
        "offset_bits": 1.3128,
        "lutram_mux": 3.706,
    },
    "ff": {
        "one": 96.4486,
        "prod_bits": 1.2253,
        "corner_bits": 1.5385,
        "corner_mux": 0.2952,
        "weight_bits": 7.8743,
        "addr_bits": 4.0054,
        "offset_bits": 0.9725,
        "lutram_mux": 0.1695,
    },
}


def gather_cost(g: GatherShape, coef: dict | None = None) -> dict:
    """The gather unit's ``lut``, ``ff`` (model values), ``dsp``, ``bram``, ``lutram``
    (exact) and ``features``."""
    c = COEFFICIENTS if coef is None else coef
    f = gather_features(g)
    style, n = gather_brams(g)
    return {
        "lut": max(sum(c["lut"].get(k, 0.0) * v for k, v in f.items()), 0.0),
        "ff": max(sum(c["ff"].get(k, 0.0) * v for k, v in f.items()), 0.0),
        "dsp": gather_dsp(g),
        "bram": n if style == "bram" else 0,
        "lutram": n if style == "lutram" else 0,
        "features": f,
    }


@cache
def measured() -> dict:
    """:data:`MEASURED`'s rows: ``{"fit": [...], "held_out": [...]}``, each row a
    configuration (``cfg``) and Yosys's ``lut``, ``ff``, ``dsp``, ``bram``, ``lutram``."""
    return json.loads(MEASURED.read_text())
