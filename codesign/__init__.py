"""codesign: a hardware co-design workbench for quantized neural networks.

>>> import codesign
>>> net = codesign.load("jet_tagger")
>>> x = codesign.random_inputs(net, 4, seed=1)
>>> codesign.golden(net, x).shape
(4, 5)
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from codesign.models.ir import Network

# Importing ``codesign.models`` (or ``.sim``, ``.hdl``) runs this file first, so it stays
# light: the public names load on first use (PEP 562), and the bottom layer does not pull in
# the flows, Amaranth or qonnx.
_LAZY = {
    "DescriptionError": "codesign.models.errors",
    "UserError": "codesign.models.errors",
    "InputError": "codesign.models.golden",
    "random_inputs": "codesign.models.golden",
    "Network": "codesign.models.ir",
    "save_description": "codesign.models.loader",
    "zoo_names": "codesign.models.loader",
    "design": "codesign.flows",
    "generate": "codesign.flows",
    "simulate": "codesign.flows",
    "verify": "codesign.flows",
    "synthesize": "codesign.synth",
}
#: Subpackages that are also public names: ``codesign.explore(space)`` calls the package.
_MODULES = {"explore": "codesign.explore"}

# ``summary`` is both a submodule and a function: import the module now, so that a later
# ``import codesign.summary`` (flows does one) cannot rebind the name to the module.
from .summary import network_hash as network_hash  # noqa: E402  (light: numpy, the IR)
from .summary import summary as summary  # noqa: E402

__all__ = sorted([*_LAZY, *_MODULES, "golden", "load", "network_hash", "summary", "trace"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    raise AttributeError(f"module 'codesign' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def load(source: str | Path | Network) -> Network:
    """A network from a zoo name, a ``.yaml``/``.yml``/``.json`` description or a QONNX
    ``.onnx`` model (imported with :func:`codesign.importer.import_qonnx`, input type
    ``fixed<16,6>``)."""
    from codesign.models.ir import Network
    from codesign.models.loader import load as _load

    if isinstance(source, Network):
        return source
    if str(source).lower().endswith(".onnx"):
        from .importer import import_qonnx

        return import_qonnx(source)
    return _load(source)


def golden(net: str | Path | Network, x) -> np.ndarray:
    """Bit-exact integer outputs of ``net`` for the batch ``x`` (shape ``(N, *input)``)."""
    from codesign.models.golden import golden as _golden

    return _golden(load(net), x)


def trace(net: str | Path | Network, x) -> dict[str, np.ndarray]:
    """Every layer's integer output for the batch ``x``, by layer name."""
    from codesign.models.golden import trace as _trace

    return _trace(load(net), x)
