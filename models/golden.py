"""The bit-exact golden model: runs a :class:`~codesign.models.ir.Network` on integer inputs."""

from __future__ import annotations

import numpy as np

from .dataflow import float_path_ok
from .errors import UserError
from .ir import Network
from .qtype import Kind

__all__ = ["InputError", "check_input", "golden", "random_inputs", "trace"]


class InputError(UserError, ValueError):
    """Input vectors that do not fit the network's input tensor."""


def check_input(net: Network, x, source: str = "input", dtype=np.int64) -> np.ndarray:
    """``x`` as a ``dtype`` batch of the network's input shape and type, or an
    :class:`InputError` saying what is wrong (``source`` names where ``x`` came from)."""
    t = net.input_tensor
    x = np.asarray(x)
    if x.dtype.kind == "f":
        if not np.all(np.isfinite(x)) or np.any(x != np.round(x)):
            raise InputError(
                f"{source}: must hold the integer representation of {t.qtype} values, not "
                "fractional floats; quantize real inputs first (codesign.models.arith.quantize)"
            )
    elif x.dtype.kind not in "iub":
        raise InputError(f"{source}: must be an integer array, not {x.dtype}")
    if x.shape[1:] != t.shape or x.ndim != len(t.shape) + 1:
        raise InputError(
            f"{source}: must have shape (N, {', '.join(map(str, t.shape))}), not {x.shape}"
        )
    if x.shape[0] == 0:
        raise InputError(f"{source}: holds no vectors (shape {x.shape}); give at least one")
    # check in the array's own dtype (numpy compares it with Python ints exactly), before
    # any cast that could wrap a uint64 or a huge float
    if t.qtype.kind is Kind.BIPOLAR:
        bad = (x != 1) & (x != -1)
    elif x.size and t.qtype.min <= x.min() and x.max() <= t.qtype.max:
        bad = None
    else:
        bad = (x < t.qtype.min) | (x > t.qtype.max)
    if bad is not None and np.any(bad):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        value = x[idx].item()  # a Python int, or a float shown as such when huge
        if isinstance(value, float) and abs(value) < 2**53:
            value = int(value)
        raise InputError(
            f"{source}: value {value} at index {idx} is outside the input type "
            f"{t.qtype} [{t.qtype.min}, {t.qtype.max}]"
        )
    return x.astype(dtype, copy=False)


#: Bytes of the largest per-layer tensor the runner aims to keep per batch tile, so the
#: element-wise steps work in cache rather than streaming whole batches through memory.
TILE_BYTES = 4 << 20


def tile_size(net: Network, n: int) -> int:
    """Samples per tile for a batch of ``n``: results never depend on it."""
    largest = max(t.size for t in net.tensors.values())
    for layer in net.layers:  # convolution windows are copied out (im2col)
        weight = getattr(layer, "weight", None)
        if weight is not None and weight.ndim == 4:
            largest = max(largest, net.tensors[layer.name].size * int(weight[0].size))
    return max(16, min(n, TILE_BYTES // (8 * largest)))


def _run_tile(net: Network, x, keep_all: bool, work: dict) -> dict[str, np.ndarray]:
    values = {net.input: x}
    borrowed = {net.input}  # values that may share memory with the caller's array
    readers = net.consumers()
    for layer in net.layers:
        if layer.name == net.input:
            continue
        xs = [values[s] for s in layer.inputs]
        # an element-wise layer may overwrite a dead input that the runner made itself
        src = layer.inputs[0] if layer.inputs else None
        reuse = not keep_all and src not in borrowed and readers[src] == 1
        out = layer.evaluate(xs, net.inputs_of(layer), reuse=reuse, work=work)
        values[layer.name] = out
        if any(s in borrowed and np.may_share_memory(out, values[s]) for s in layer.inputs):
            borrowed.add(layer.name)  # a view (flatten, reshape) of the caller's data
        if not keep_all:
            for s in layer.inputs:
                readers[s] -= 1
                if readers[s] == 0:
                    del values[s]
    return values


def _run(net: Network, x, keep_all: bool, source: str) -> dict[str, np.ndarray]:
    # values travel as exact float64 integers where their range allows (codesign.models.dataflow)
    dtype = np.float64 if float_path_ok(net.input_tensor.magnitude) else np.int64
    x = check_input(net, x, source, dtype)
    step = tile_size(net, len(x))
    work: dict = {}  # scratch buffers lent from one tile to the next
    tiles = [
        _run_tile(net, x[i : i + step], keep_all, work) for i in range(0, max(len(x), 1), step)
    ]
    names = [la.name for la in net.layers] if keep_all else [net.output]
    return {k: np.concatenate([t[k] for t in tiles]).astype(np.int64) for k in names}


def golden(net: Network, x, source: str = "input") -> np.ndarray:
    """Integer outputs of ``net`` for the batch ``x`` (shape ``(N, *input shape)``)."""
    return _run(net, x, keep_all=False, source=source)[net.output]


def trace(net: Network, x, source: str = "input") -> dict[str, np.ndarray]:
    """Every layer's integer output for the batch ``x``, by layer name, in network order."""
    values = _run(net, x, keep_all=True, source=source)
    return values


def random_inputs(net: Network, n: int, seed: int) -> np.ndarray:
    """``n`` input vectors drawn uniformly over the input type, reproducibly from ``seed``."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InputError(f"the number of vectors must be a positive int, not {n!r}")
    t = net.input_tensor
    rng = np.random.default_rng(seed)
    if t.qtype.kind is Kind.BIPOLAR:
        return rng.choice(np.array([-1, 1], dtype=np.int64), size=(n, *t.shape))
    return rng.integers(t.qtype.min, t.qtype.max, size=(n, *t.shape), endpoint=True, dtype=np.int64)
