"""The accuracy proxy of a compressed network: how far its outputs move from the original's on
seeded random inputs (no data set is needed, and none is shipped)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..golden import golden, random_inputs, trace
from ..ir import Network

__all__ = ["CompressionAccuracy", "compression_error", "layer_errors"]


@dataclass(frozen=True)
class CompressionAccuracy:
    """How a compressed network's outputs compare with the original's."""

    #: relative RMS error of the outputs: ||y_compressed - y_original|| / ||y_original||
    #: over every output of every frame (0 when both are all zero, inf when only the
    #: original is)
    rel_error: float
    #: fraction of frames whose output argmax (over the flattened output; the first of
    #: equal maxima) is the original's: top-1 agreement for a classifier
    top1: float
    #: frames compared
    frames: int


def compression_error(
    original: Network, compressed: Network, *, frames: int = 64, seed: int = 0
) -> CompressionAccuracy:
    """The accuracy proxy of ``compressed`` against ``original`` on ``frames`` input frames
    drawn uniformly over the input type from ``seed``
    (:func:`codesign.models.golden.random_inputs`), both run by the golden model.

    Raises ``ValueError`` when the two networks' inputs or outputs differ in shape or type.
    """
    _check_pair(original, compressed)
    x = random_inputs(original, frames, seed)
    ref = golden(original, x).reshape(frames, -1).astype(np.float64)
    got = golden(compressed, x).reshape(frames, -1).astype(np.float64)
    num = float(np.linalg.norm(got - ref))
    den = float(np.linalg.norm(ref))
    rel = num / den if den > 0 else (0.0 if num == 0 else math.inf)
    top1 = float(np.mean(np.argmax(got, axis=1) == np.argmax(ref, axis=1)))
    return CompressionAccuracy(rel_error=rel, top1=top1, frames=frames)


def layer_errors(
    original: Network, compressed: Network, *, frames: int = 64, seed: int = 0
) -> dict[str, float]:
    """The relative RMS error of every layer output that the two networks share by name and
    shape (a decomposed layer's final rescale keeps its name), on the frames of
    :func:`compression_error`, in the original's layer order; the input is left out."""
    _check_pair(original, compressed)
    x = random_inputs(original, frames, seed)
    ref, got = trace(original, x), trace(compressed, x)
    out = {}
    for name in ref:
        if name == original.input or name not in got or ref[name].shape != got[name].shape:
            continue
        num = float(np.linalg.norm((got[name] - ref[name]).astype(np.float64)))
        den = float(np.linalg.norm(ref[name].astype(np.float64)))
        out[name] = num / den if den > 0 else (0.0 if num == 0 else math.inf)
    return out


def _check_pair(original, compressed) -> None:
    if not isinstance(original, Network) or not isinstance(compressed, Network):
        raise TypeError(
            f"original and compressed must be Networks, not {type(original).__name__} and "
            f"{type(compressed).__name__}"
        )
    a, b = original.input_tensor, compressed.input_tensor
    if (a.shape, a.qtype) != (b.shape, b.qtype):
        raise ValueError(
            f"compressed input must be {a.qtype} of shape {a.shape} like the original's, not "
            f"{b.qtype} of shape {b.shape}"
        )
    if original.output_tensor.shape != compressed.output_tensor.shape:
        raise ValueError(
            f"compressed output must have the original's shape {original.output_tensor.shape}, "
            f"not {compressed.output_tensor.shape}"
        )
