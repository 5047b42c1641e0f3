"""The bit-exact golden model: runs a :class:`~models.ir.Network` on integer inputs."""

from __future__ import annotations

import numpy as np

from .errors import UserError
from .ir import Network
from .qtype import Kind

__all__ = ["InputError", "check_input", "golden", "random_inputs", "trace"]


class InputError(UserError, ValueError):
    """Input vectors that do not fit the network's input tensor."""


def check_input(net: Network, x, source: str = "input") -> np.ndarray:
    """``x`` as an int64 batch of the network's input shape and type, or an
    :class:`InputError` saying what is wrong (``source`` names where ``x`` came from)."""
    t = net.input_tensor
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise InputError(
                f"{source}: must hold the integer representation of {t.qtype} values, not "
                "fractional floats; quantize real inputs first (models.arith.quantize)"
            )
    elif x.dtype.kind not in "iub":
        raise InputError(f"{source}: must be an integer array, not {x.dtype}")
    if x.shape[1:] != t.shape or x.ndim != len(t.shape) + 1:
        raise InputError(
            f"{source}: must have shape (N, {', '.join(map(str, t.shape))}), not {x.shape}"
        )
    # check in the array's own dtype (numpy compares it with Python ints exactly), before
    # any cast that could wrap a uint64 or a huge float
    if t.qtype.kind is Kind.BIPOLAR:
        bad = (x != 1) & (x != -1)
    else:
        bad = (x < t.qtype.min) | (x > t.qtype.max)
    if np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        value = x[idx].item()  # a Python int, or a float shown as such when huge
        if isinstance(value, float) and abs(value) < 2**53:
            value = int(value)
        raise InputError(
            f"{source}: value {value} at index {idx} is outside the input type "
            f"{t.qtype} [{t.qtype.min}, {t.qtype.max}]"
        )
    x = x.astype(np.int64)
    return x


def _run(net: Network, x, keep_all: bool, source: str) -> dict[str, np.ndarray]:
    values = {net.input: check_input(net, x, source)}
    readers = net.consumers()
    for layer in net.layers[1:] if net.layers[0].name == net.input else net.layers:
        if layer.name == net.input:
            continue
        xs = [values[s] for s in layer.inputs]
        values[layer.name] = layer.evaluate(xs, net.inputs_of(layer))
        if not keep_all:
            for s in layer.inputs:
                readers[s] -= 1
                if readers[s] == 0:
                    del values[s]
    return values


def golden(net: Network, x, source: str = "input") -> np.ndarray:
    """Integer outputs of ``net`` for the batch ``x`` (shape ``(N, *input shape)``)."""
    return _run(net, x, keep_all=False, source=source)[net.output]


def trace(net: Network, x, source: str = "input") -> dict[str, np.ndarray]:
    """Every layer's integer output for the batch ``x``, by layer name, in network order."""
    values = _run(net, x, keep_all=True, source=source)
    return {layer.name: values[layer.name] for layer in net.layers}


def random_inputs(net: Network, n: int, seed: int) -> np.ndarray:
    """``n`` input vectors drawn uniformly over the input type, reproducibly from ``seed``."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"the number of vectors must be a positive int, not {n!r}")
    t = net.input_tensor
    rng = np.random.default_rng(seed)
    if t.qtype.kind is Kind.BIPOLAR:
        return rng.choice(np.array([-1, 1], dtype=np.int64), size=(n, *t.shape))
    return rng.integers(t.qtype.min, t.qtype.max, size=(n, *t.shape), endpoint=True, dtype=np.int64)
