"""codesign: a hardware co-design workbench for quantized neural networks.

>>> import codesign
>>> net = codesign.load("jet_tagger")
>>> x = codesign.random_inputs(net, 4, seed=1)
>>> codesign.golden(net, x).shape
(4, 5)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.errors import DescriptionError, UserError
from models.golden import InputError, random_inputs
from models.golden import golden as _golden
from models.golden import trace as _trace
from models.ir import Network
from models.loader import load as _load
from models.loader import save_description, zoo_names

from .flows import design, generate, simulate, verify
from .summary import network_hash, summary
from .synth import synthesize

__all__ = [
    "DescriptionError",
    "InputError",
    "Network",
    "UserError",
    "design",
    "generate",
    "golden",
    "load",
    "network_hash",
    "random_inputs",
    "save_description",
    "simulate",
    "summary",
    "synthesize",
    "trace",
    "verify",
    "zoo_names",
]


def load(source: str | Path | Network) -> Network:
    """A network from a zoo name, a ``.yaml``/``.yml``/``.json`` description or a QONNX
    ``.onnx`` model (imported with :func:`codesign.importer.import_qonnx`, input type
    ``fixed<16,6>``)."""
    if isinstance(source, Network):
        return source
    if str(source).lower().endswith(".onnx"):
        from .importer import import_qonnx

        return import_qonnx(source)
    return _load(source)


def golden(net: str | Path | Network, x) -> np.ndarray:
    """Bit-exact integer outputs of ``net`` for the batch ``x`` (shape ``(N, *input)``)."""
    return _golden(load(net), x)


def trace(net: str | Path | Network, x) -> dict[str, np.ndarray]:
    """Every layer's integer output for the batch ``x``, by layer name."""
    return _trace(load(net), x)
