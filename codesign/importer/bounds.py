"""Proven enclosures of a QONNX graph's tensors under floating-point rounding.

:func:`enclose_graph` evaluates the graph on intervals: for every tensor it returns ``lo`` and
``hi`` (float64 arrays) that contain

- the tensor's **exact** real value as the importer defines it (weights ``q * s`` with the
  Quant's own integers, every product, sum and BatchNormalization in exact real
  arithmetic, each quantizer applied to that exact value), and
- the value **any** evaluation of the graph in a floating-point format of unit roundoff
  ``u`` computes (``2**-24`` for float32, ``2**-53`` for float64), in any summation order,
  with or without fused multiply-adds.

The rules are the standard forward error bounds (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., §2.2 and §3.1): one rounding of a result ``y`` moves it by
at most ``u |y|``, and a sum of ``n`` products computed in any order is off by at most
``gamma_n * sum |x_i w_i|`` with ``gamma_n = n u / (1 - n u)``. Each bound is taken with
``u + 2**-52`` in place of ``u`` and an extra factor 2, which covers the float64 arithmetic
that computes the bounds themselves. A quantizer maps an enclosure to the levels of its two
ends (it is monotone), so a value near a rounding boundary yields both levels; everything
downstream then widens accordingly.

An output of the imported network is *explained* by rounding in that format when our exact
output and the reference's output both lie in the enclosure: the enclosure is the proof.
"""

from __future__ import annotations

import numpy as np

from codesign.models.arith import round_real
from codesign.models.qtype import QType, parse_rounding

from .common import HOST_OPS, SUPPORTED
from .floateval import eval_node, node_attrs

#: Ops whose enclosure rule is known: every op the importer lowers, but the host-side ones.
ENCLOSED = SUPPORTED - HOST_OPS


class Enclosure:
    """An interval array: every element's value lies in ``[lo, hi]``."""

    __slots__ = ("hi", "lo")

    def __init__(self, lo, hi=None) -> None:
        self.lo = np.asarray(lo, dtype=np.float64)
        self.hi = self.lo if hi is None else np.asarray(hi, dtype=np.float64)

    @property
    def mid(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def rad(self) -> np.ndarray:
        return (self.hi - self.lo) / 2

    @property
    def mag(self) -> np.ndarray:
        return np.maximum(np.abs(self.lo), np.abs(self.hi))

    def widen(self, err) -> Enclosure:
        return Enclosure(self.lo - err, self.hi + err)

    def contains(self, v) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        return (v >= self.lo) & (v <= self.hi)


def _round_err(eps: float, e: Enclosure, k: float = 1, exact: bool = False) -> Enclosure:
    """``e`` widened by ``k`` roundings of its values (not at all when ``exact``: every
    float evaluation of these values is provably exact, see :func:`_fits`)."""
    return e if exact else e.widen(2 * k * eps * e.mag)


def _grid(a) -> float:
    """The largest power of two of which every element of ``a`` is a multiple (``inf`` for
    all zeros, 0 for a non-finite element)."""
    a = np.asarray(a, dtype=np.float64)
    nz = a[a != 0]
    if nz.size == 0:
        return np.inf
    if not np.all(np.isfinite(nz)):
        return 0.0
    m, e = np.frexp(nz)  # nz = m * 2**e, 0.5 <= |m| < 1
    mi = np.abs(m * 2.0**53).astype(np.int64)
    low = (mi & -mi).astype(np.float64)  # lowest set bit of the 53-bit significand
    return float(np.min(np.ldexp(low, e - 53)))


def _fits(value, grid: float, eps: float) -> bool:
    """Whether values on ``grid`` (a power of two) of these magnitudes are exact in the
    format whose unit roundoff ``eps`` stands for: fewer significant bits than it has (so
    every float evaluation of a sum or product of such points is exact)."""
    if not (0 < grid < np.inf):
        return grid == np.inf
    bits = round(-np.log2(eps - 2.0**-52))  # eps = u + 2**-52 exactly: 24 or 53 bits
    return bool(np.max(np.abs(value), initial=0.0) < np.ldexp(grid, bits))


def _point(*es) -> bool:
    return all(e is None or np.array_equal(e.lo, e.hi) for e in es)


def _pow2(a) -> bool:
    a = np.abs(np.asarray(a, dtype=np.float64))
    m, _ = np.frexp(a)
    return bool(np.all(a > 0) and np.all(m == 0.5))


def enclose_graph(model, x: np.ndarray, u: float, stop: set[str] | None = None) -> dict:
    """Enclosures of every tensor of the cleaned graph for the input batch ``x`` (exact
    values), under rounding with unit roundoff ``u``. Evaluation ends before any node whose
    op has no rule (``stop`` names tensors not to compute: host-side ops)."""
    eps = u + 2.0**-52
    g = model.graph
    vals: dict[str, Enclosure] = {}
    for init in g.initializer:
        vals[init.name] = Enclosure(np.asarray(model.get_initializer(init.name), np.float64))
    vals[g.input[0].name] = Enclosure(np.asarray(x, dtype=np.float64))
    for node in g.node:
        if stop and any(o in stop for o in node.output):
            continue
        if node.op_type not in ENCLOSED or any(i and i not in vals for i in node.input):
            continue
        ins = [vals[i] if i else None for i in node.input]
        vals[node.output[0]] = _enclose_node(node, ins, eps)
    return vals


def _enclose_node(node, ins: list, eps: float) -> Enclosure:
    op = node.op_type
    at = node_attrs(node)
    x = ins[0]
    if op in ("Quant", "IntQuant"):
        s, z = ins[1].lo, ins[2].lo
        bits = int(np.asarray(ins[3].lo).ravel()[0])
        signed, narrow = bool(at.get("signed", 1)), bool(at.get("narrow", 0))
        t = Enclosure(x.lo / s + z, x.hi / s + z)
        exact = _point(x) and _pow2(s) and _fits(t.lo, min(_grid(x.lo) / _grid(s), 1), eps)
        if not exact:
            t = t.widen(4 * eps * (x.mag / s + np.abs(z)))
        if bits == 1 and signed:
            q = Enclosure(np.where(t.lo >= 0, 1.0, -1.0), np.where(t.hi >= 0, 1.0, -1.0))
        else:
            qt = QType.int(bits, signed, narrow)
            mode = parse_rounding(at.get("rounding_mode", "ROUND"), dialect="qonnx")
            q = Enclosure(
                round_real(np.clip(t.lo, qt.min, qt.max), mode),
                round_real(np.clip(t.hi, qt.min, qt.max), mode),
            )
        return _round_err(eps, _scale(Enclosure(q.lo - z, q.hi - z), s), 2, _pow2(s))
    if op == "BipolarQuant":
        s = ins[1].lo
        return _scale(Enclosure(np.where(x.lo >= 0, 1.0, -1.0), np.where(x.hi >= 0, 1.0, -1.0)), s)
    if op == "MultiThreshold":
        t = np.asarray(ins[1].lo)
        lo = eval_node(node, [x.lo, t], np.float64)[0]
        hi = eval_node(node, [x.hi, t], np.float64)[0]
        out = Enclosure(np.minimum(lo, hi), np.maximum(lo, hi))
        return _round_err(eps, out, 2, _fits(out.mag, _grid(out.mag), eps))
    if op == "Trunc":  # v1 (5 inputs) and v2 (6, with an output scale), as qonnx's
        s, z = ins[1].lo, ins[2].lo
        mode = parse_rounding(at.get("rounding_mode", "FLOOR"), dialect="qonnx")
        even = parse_rounding("ROUND", dialect="qonnx")
        t = Enclosure(x.lo / s + z, x.hi / s + z).widen(4 * eps * (x.mag / s + np.abs(z)))
        if len(ins) == 5:
            k = int(np.asarray(ins[3].lo).ravel()[0]) - int(np.asarray(ins[4].lo).ravel()[0])
            d, clamp, zout, out_s = 2.0**k, None, z, s
        else:
            out_s = ins[4].lo
            d = 2.0 ** np.round(np.log2(np.float32(out_s) / np.float32(s)))
            qt = QType.int(
                int(np.asarray(ins[5].lo).ravel()[0]),
                bool(at.get("signed", 1)),
                bool(at.get("narrow", 0)),
            )
            clamp, zout = (qt.min, qt.max), z / d
        q = []
        for v in (t.lo, t.hi):
            y = round_real(v, even) / d
            q.append(round_real(np.clip(y, *clamp) if clamp else y, mode))
        return _round_err(eps, _scale(Enclosure(q[0] - zout, q[1] - zout), out_s), 2)
    if op in ("Add", "Sub"):
        b = ins[1]
        if op == "Sub":
            b = Enclosure(-b.hi, -b.lo)
        out = Enclosure(x.lo + b.lo, x.hi + b.hi)
        exact = _point(x, b) and _fits(out.lo, min(_grid(x.lo), _grid(b.lo)), eps)
        return _round_err(eps, out, exact=exact)
    if op in ("Mul", "Div"):
        b = ins[1]
        if op == "Div":
            if np.any((b.lo <= 0) & (b.hi >= 0)):
                raise ValueError("division by an interval holding zero")
            if _point(b) and _pow2(b.lo):
                b = Enclosure(1 / b.lo)  # exact
            else:
                b = Enclosure(1 / b.hi, 1 / b.lo).widen(2 * eps * np.abs(1 / b.lo))
        out = _times(x, b)
        exact = _point(x, b) and _fits(out.lo, _grid(x.lo) * _grid(b.lo), eps)
        return _round_err(eps, out, exact=exact)
    if op == "Relu":
        return Enclosure(np.maximum(x.lo, 0), np.maximum(x.hi, 0))
    if op == "Clip":
        lo = ins[1].lo if len(ins) > 1 and ins[1] is not None else -np.inf
        hi = ins[2].lo if len(ins) > 2 and ins[2] is not None else np.inf
        return Enclosure(np.clip(x.lo, lo, hi), np.clip(x.hi, lo, hi))
    if op == "BatchNormalization":
        shape = (1, -1) + (1,) * (x.lo.ndim - 2)
        g, b, m, v = (np.asarray(e.lo).reshape(shape) for e in ins[1:5])
        a = g / np.sqrt(v + np.float64(at.get("epsilon", 1e-5)))
        yl = np.minimum((x.lo - m) * a, (x.hi - m) * a) + b
        yh = np.maximum((x.lo - m) * a, (x.hi - m) * a) + b
        # (x - m), sqrt, +eps, division, product, + b: at most 8 roundings of those sizes
        err = 2 * 8 * eps * (np.maximum(np.abs(x.lo - m), np.abs(x.hi - m)) * np.abs(a) + np.abs(b))
        return Enclosure(yl - err, yh + err)
    if op in ("MatMul", "Gemm", "Conv"):
        return _bilinear(node, ins, eps)
    if op == "MaxPool":
        return Enclosure(*(eval_node(node, [v], np.float64)[0] for v in (x.lo, x.hi)))
    if op in ("AveragePool", "GlobalAveragePool"):
        lo, hi = (eval_node(node, [v], np.float64)[0] for v in (x.lo, x.hi))
        mag = eval_node(node, [x.mag], np.float64)[0]
        n = _window(node, x.lo.shape)
        return Enclosure(lo, hi).widen(2 * (n + 2) * eps * mag)
    if op in ("Reshape", "Flatten", "Transpose", "Identity"):
        rest = [e.lo if e is not None else None for e in ins[1:]]
        return Enclosure(*(eval_node(node, [v, *rest], np.float64)[0] for v in (x.lo, x.hi)))
    raise ValueError(f"no enclosure rule for {op}")  # pragma: no cover - ENCLOSED guards


def _scale(e: Enclosure, s) -> Enclosure:
    return _times(e, Enclosure(s))


def _times(a: Enclosure, b: Enclosure) -> Enclosure:
    c = [a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi]
    return Enclosure(np.minimum.reduce(c), np.maximum.reduce(c))


def _window(node, shape) -> int:
    if node.op_type == "GlobalAveragePool":
        return int(np.prod(shape[2:]))
    return int(np.prod(node_attrs(node)["kernel_shape"]))


def _bilinear(node, ins: list, eps: float) -> Enclosure:
    """``x * W (+ C)`` in midpoint-radius form: the exact product of any point of the two
    enclosures lies within ``|xc| Wr + xr |Wc| + xr Wr`` of ``xc Wc``, and any float
    evaluation within ``gamma_{n+2} |x| |W|`` of the exact one."""
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    if _point(x, w, bias) and node.op_type != "Gemm":
        # points on grids whose every partial sum fits the format: computed exactly
        g = _grid(x.lo) * _grid(w.lo)
        mag = np.abs(eval_node(node, [np.abs(x.lo), np.abs(w.lo)], np.float64)[0])
        if bias is not None:
            g = min(g, _grid(bias.lo))
            mag = mag + np.abs(bias.lo).reshape((1, -1) + (1,) * (mag.ndim - 2))
        if _fits(mag, g, eps):
            vals = [x.lo, w.lo] + ([bias.lo] if bias is not None else [])
            return Enclosure(eval_node(node, vals, np.float64)[0])

    def lin(a, b):
        return np.abs(eval_node(node, [a, b], np.float64)[0])

    mid = eval_node(node, [x.mid, w.mid], np.float64)[0]  # Gemm: alpha included
    wmag = np.maximum(np.abs(w.lo), np.abs(w.hi))
    mag = lin(x.mag, wmag)
    # |xc| Wr + xr Wr <= |x| Wr <= c |x| |W| with c = max Wr / |W| (tiny unless a weight's
    # level is ambiguous): one product fewer when that bound is as tight as it needs to be
    with np.errstate(divide="ignore", invalid="ignore"):
        c = float(np.max(np.where(wmag > 0, w.rad / wmag, 0.0), initial=0.0))
    if c <= 64 * eps:
        rad = c * mag + lin(x.rad, np.abs(w.mid))
    else:
        rad = lin(np.abs(x.mid), w.rad) + lin(x.rad, np.abs(w.mid)) + lin(x.rad, w.rad)
    n = _inner(node, w.lo.shape)
    gamma = 2 * (n + 2) * eps / (1 - (n + 2) * eps)
    out = Enclosure(mid - rad, mid + rad).widen(gamma * mag)
    if bias is not None:
        if node.op_type == "Gemm":
            beta = np.float64(node_attrs(node).get("beta", 1.0))
            b = _scale(bias, beta)
        else:
            b = Enclosure(bias.lo.reshape(1, -1, 1, 1), bias.hi.reshape(1, -1, 1, 1))
        out = _round_err(eps, Enclosure(out.lo + b.lo, out.hi + b.hi))
    return out


def _inner(node, wshape) -> int:
    """Terms summed per output element."""
    if node.op_type == "Conv":
        return int(np.prod(wshape[1:]))
    if node.op_type == "Gemm":
        return int(wshape[1] if node_attrs(node).get("transB", 0) else wshape[0])
    return int(wshape[-2]) if len(wshape) >= 2 else int(wshape[0])
