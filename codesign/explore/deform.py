"""The deformable space: offset variant, frame-store banks R and ports P, and the MVAU's PE of a
network's deformable stage, evaluated vectorised (``codesign explore`` for networks with
deformable layers).

Per point:

- ``cycles``: the deformable stage's mean cycles per frame on seeded frames, from the gather
  cycle model (:func:`codesign.sim.deform.network_timing`, one tap per fetch group as the RTL
  serves them, the actual offsets of the variant network): the frame's LOAD (H·W) and, per
  window, the slower of its gather and its MVAU/VVAU (``⌈OC/PE⌉·kh·kw`` cycles at SIMD = C;
  ``kh·kw + 1`` per channel group of a VVAU), vectorised over frames, windows and PE;
- ``lut``, ``ff``, ``dsp``, ``bram``, ``lutram``: the design's totals by the cost model
  (:func:`codesign.sim.batch.estimate_batch`, equal to :func:`codesign.sim.cost.estimate`),
  vectorised over PE;
- ``error``, ``top1``: the accuracy cost, the variant network's deformable-layer output
  against the float64 mode on the same seeded inputs (relative RMS,
  :func:`codesign.models.deform.accuracy.variant_error`) and the share of frames whose
  output's argmax agrees with the network's own;
- ``pareto``: on the exact Pareto front of (cycles, lut, dsp, bram, error), all minimised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["DEFORM_VARIANTS", "deform_space"]

#: Variants of the space by default (``bounded`` at the bound given).
DEFORM_VARIANTS = ("free", "bounded", "square", "rounded", "square+bounded+rounded")


#: What the deformable space's Pareto front minimises (columns of :func:`deform_space`).
OBJECTIVES = ("cycles", "lut", "dsp", "bram", "error")


def deform_space(
    network,
    *,
    variants: Sequence[str] = DEFORM_VARIANTS,
    bound: int = 1,
    banks: Sequence[int] = (1, 2, 4),
    ports: Sequence[int] = (1, 2),
    pe: Sequence[int] | None = None,
    frames: int = 4,
    seed: int = 0,
):
    """Every point of the deformable space of ``network`` (a network or zoo name) as a
    DataFrame, one row per (variant, banks, ports, PE).

    Parameters
    ----------
    variants
        Variant names (:meth:`~codesign.models.deform.Variant.parse`); ``bound`` pixels for
        those that are bounded.
    banks, ports
        Frame-store memories (powers of two) and read ports per memory (1 or 2).
    pe
        The deformable stage's PE values (divisors of its output channels); None: all of
        them (a depthwise stage has the one, its channel count).
    frames, seed
        The seeded frames the cycles and the error are measured on.

    Raises
    ------
    ConfigError
        When the network has no deformable stage, or has more than one, or a knob's value
        is not valid.
    """
    import pandas as pd

    from codesign.models.deform import Variant
    from codesign.models.deform.accuracy import variant_error
    from codesign.models.deform.variants import with_variant
    from codesign.models.errors import ConfigError
    from codesign.models.hwconfig import Design, HardwareConfig, StageConfig, StageKind
    from codesign.sim.batch import estimate_batch
    from codesign.sim.deform import GatherConfig, network_timing

    from .pareto import pareto_mask

    if isinstance(network, str):
        from codesign import load

        network = load(network)
    base = Design(network)
    found = [s for s in base.stages if s.kind is StageKind.DEFORM]
    if len(found) != 1:
        raise ConfigError(
            f"network {network.name!r} must have one deformable stage for the deformable "
            f"space, not {len(found)}"
        )
    name = found[0].name
    rows = []
    for vname in variants:
        try:
            v = Variant.parse(vname, bound if "bounded" in vname else None)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"variant {vname!r}: {e}") from None
        net_v = with_variant(network, v)
        err = variant_error(network, v, frames=frames, seed=seed)
        d0 = Design(net_v)
        s = d0.stage(name)
        pes = np.asarray(s.pe_choices() if pe is None else pe, dtype=np.int64)
        bad = [int(p) for p in pes if int(p) not in s.pe_choices()]
        if bad:
            raise ConfigError(f"pe must be one of {s.pe_choices()}, not {bad[0]!r}")
        c, h, w = s.input.shape
        kh, kw = s.main.kernel
        if s.depthwise:
            mac = (kh * kw + 1) * (c // pes)
        else:
            mac = -(-s.mh // pes) * ((kh * kw * c) // c)
        for r in banks:
            for p in ports:
                try:
                    cfg = StageConfig(banks=int(r), ports=int(p))
                except ConfigError as e:
                    raise ConfigError(f"the deformable space: {e}") from None
                t = network_timing(
                    net_v, GatherConfig(banks=int(r), ports=int(p)), frames=frames, seed=seed
                )
                gather = t.layers[0].gather_cycles.reshape(frames, -1)  # (N, windows)
                per = np.maximum(gather[:, :, None], mac[None, None, :]).sum(axis=1)
                cycles = h * w + per.mean(axis=0)  # (P,)
                d = Design(net_v, HardwareConfig({name: cfg}))
                simd = np.full(len(pes), d.config[name].simd)
                res = estimate_batch(d, {name: pes}, {name: simd})
                for i, pv in enumerate(pes.tolist()):
                    rows.append(
                        {
                            "variant": err.variant,
                            "banks": int(r),
                            "ports": int(p),
                            "pe": int(pv),
                            "cycles": float(cycles[i]),
                            **{k: int(res[k][i]) for k in ("lut", "ff", "dsp", "bram", "lutram")},
                            "error": err.layer_rel_rms,
                            "top1": err.top1_agreement,
                        }
                    )
    df = pd.DataFrame(rows)
    f = df[list(OBJECTIVES)].to_numpy(dtype=np.float64)
    df["pareto"] = pareto_mask(f)
    return df
