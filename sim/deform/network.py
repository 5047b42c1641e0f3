"""Every deformable layer of a network on the golden trace of seeded random frames."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from codesign.models.deform import Variant
from codesign.models.deform.variants import deform_layers, with_variant
from codesign.models.golden import random_inputs, trace
from codesign.models.ir import Network

from .config import GatherConfig
from .gather import DeformTiming, layer_timing

__all__ = ["NetworkTiming", "network_timing"]


@dataclass(frozen=True, eq=False)
class NetworkTiming:
    """The cycle model's prediction for a network's deformable layers."""

    network: str
    variant: str  #: the variant the layers were switched to, or "as described"
    frames: int
    seed: int
    layers: tuple[DeformTiming, ...]

    @property
    def frame_cycles(self) -> np.ndarray:
        """(N,) cycles of each frame in all deformable layers (one after the other)."""
        return sum((t.frame_cycles for t in self.layers), np.zeros(self.frames, dtype=np.int64))

    def to_dict(self) -> dict:
        fc = self.frame_cycles
        return {
            "network": self.network,
            "variant": self.variant,
            "frames": self.frames,
            "seed": self.seed,
            "frame_cycles": [int(v) for v in fc],
            "mean_frame_cycles": float(fc.mean()),
            "layers": [t.to_dict() for t in self.layers],
        }


def network_timing(
    net: Network,
    config: GatherConfig,
    *,
    frames: int = 8,
    seed: int = 0,
    variant: Variant | None = None,
) -> NetworkTiming:
    """The timing of every deformable layer of ``net`` on ``frames`` random frames.

    Parameters
    ----------
    net
        A network with deformable layers.
    config
        The engine (the same for every layer).
    frames, seed
        The frames: :func:`codesign.models.golden.random_inputs` of ``net`` (the variant
        changes the offsets, not the frames).
    variant
        Switch every deformable layer to this variant first
        (:func:`codesign.models.deform.variants.with_variant`); None keeps the network's.

    Raises
    ------
    ValueError
        When ``net`` has no deformable layer, or as :func:`~.gather.positions_timing` does.
    """
    if not deform_layers(net):
        raise ValueError(f"network {net.name!r} must have a deformable layer, and has none")
    if variant is not None:
        net = with_variant(net, variant)
    x = random_inputs(net, frames, seed)
    values = trace(net, x)
    timings = []
    for layer in deform_layers(net):
        img, off = net.inputs_of(layer)
        timings.append(layer_timing(layer, img, off, values[layer.inputs[1]], config))
    names = {la.variant.name for la in deform_layers(net)}
    return NetworkTiming(
        network=net.name,
        variant=variant.name if variant is not None else "/".join(sorted(names)),
        frames=frames,
        seed=seed,
        layers=tuple(timings),
    )
