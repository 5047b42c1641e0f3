"""The processing-in-memory space of a network's dense layers (``codesign explore NET --pim``):
array size, technology, ADC, cell and DAC bits, evaluated vectorised.

Per point, from :func:`codesign.sim.pim.sweep` (equal point by point to
:func:`codesign.sim.pim.evaluate`): ``cycles``, ``latency_ns``, ``energy_pj``, ``area_mm2``,
``arrays_used``, ``utilisation``, ``feasible``; and the accuracy cost ``error``: 0 for the
digital arrays (their programs are exact, ``codesign pim --verify``), and for an analog
crossbar the largest relative RMS error, over the dense layers, of the layer's outputs against
the exact product on seeded frames (:func:`codesign.models.pim.analog.layer_error`; it depends
on rows, ADC, cell and DAC bits only, so it is computed once per such combination).
``pareto`` marks the exact front of (latency_ns, energy_pj, area_mm2, error), all minimised,
over the feasible points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["OBJECTIVES", "pim_space"]

#: What the PIM space's Pareto front minimises (columns of :func:`pim_space`).
OBJECTIVES = ("latency_ns", "energy_pj", "area_mm2", "error")


def pim_space(
    network,
    *,
    modes: Sequence[str] = ("digital", "analog"),
    techs: Sequence[str] = ("sot-mram", "nor"),
    rows: Sequence[int] = (64, 128, 256, 512),
    cols: Sequence[int] = (64, 128, 256),
    adc_bits: Sequence[int] = (4, 5, 6, 7, 8, 9, 10, 12),
    cell_bits: Sequence[int] = (1, 2, 4),
    dac_bits: Sequence[int] = (1,),
    adc_share: Sequence[int] = (8, 32, 128),
    batch: int = 1,
    frames: int = 32,
    seed: int = 0,
):
    """Every point of ``network``'s PIM space as a DataFrame (one row per configuration).

    Parameters
    ----------
    network
        A network or zoo name whose weighted layers are dense.
    modes, techs, rows, cols, adc_bits, cell_bits, dac_bits, adc_share
        The knobs (:func:`codesign.sim.pim.sweep`): digital points take techs × rows × cols,
        analog points rows × cols × ADC × cell × DAC bits × columns per ADC.
    frames, seed
        Seeded input frames of the analog error.
    """
    from codesign.models.golden import random_inputs
    from codesign.models.loader import load
    from codesign.models.pim.analog import CrossbarConfig, layer_error
    from codesign.sim.pim import sweep

    from .pareto import pareto_mask

    net = load(network) if isinstance(network, str) else network
    df = sweep(
        net,
        modes=modes,
        techs=techs,
        rows=rows,
        cols=cols,
        adc_bits=adc_bits,
        cell_bits=cell_bits,
        dac_bits=dac_bits,
        adc_share=adc_share,
        batch=batch,
    )
    layers = [la.name for la in net.layers if la.op == "dense"]
    x = random_inputs(net, frames, seed)
    errors: dict[tuple, float] = {}
    error = np.zeros(len(df))
    analog = (df["mode"] == "analog").to_numpy()
    for i in np.flatnonzero(analog):
        r = df.iloc[i]
        key = (int(r["rows"]), int(r["adc_bits"]), int(r["cell_bits"]), int(r["dac_bits"]))
        if key not in errors:
            cfg = CrossbarConfig(
                rows=key[0], cols=int(r["cols"]), adc_bits=key[1], cell_bits=key[2],
                dac_bits=key[3],
            )  # fmt: skip
            errors[key] = max(float(layer_error(net, n, cfg, x).rel_rms) for n in layers)
        error[i] = errors[key]
    df["error"] = error
    df.loc[analog, "tech"] = "crossbar"  # the digital cell technology does not apply
    ok = df["feasible"].to_numpy(dtype=bool)
    f = np.stack([df[c].to_numpy(dtype=np.float64) for c in OBJECTIVES], axis=1)
    front = np.zeros(len(df), dtype=bool)
    front[np.flatnonzero(ok)[pareto_mask(f[ok])]] = True
    df["pareto"] = front
    return df
