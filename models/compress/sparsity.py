"""N:M structured sparsity: the pruning transform of the IR and the sparse MVAU's hardware facts.

An (MH, MW) weight matrix is *N:M sparse* when every group of M consecutive columns of each
row (columns ``g·M .. g·M + M - 1``) holds at most N nonzero weights. The columns are those
of the MVAU's weight matrix (:func:`~codesign.models.plan.stage_matrix`), in the order its
input streams: a dense layer's input order, permuted by :attr:`Stage.in_order
<codesign.models.plan.Stage.in_order>` after a flatten of a (C, H, W) tensor (channels
last); a convolution's (OC, C, KH, KW) weights as the sliding window streams them,
``(kh, kw, c)`` with the channels fastest (:func:`~codesign.models.dataflow.conv_weight_matrix`),
so an M-group of a convolution holds M consecutive input channels of one kernel tap when M
divides C. With M dividing the MVAU's SIMD, every SIMD word holds SIMD/M whole groups.

:func:`prune_nm` makes a network N:M sparse by magnitude; the result is an ordinary
:class:`~codesign.models.ir.Network` whose golden model is the dense computation with the
pruned weights. :func:`is_nm` and :func:`nm_pattern` test and compress a matrix.

The sparse MVAU (``StageConfig.sparsity``, built by
:class:`~codesign.hdl.dataflow.mvau.MVAU` with ``sparsity=(n, m)``) stores, per PE and per
M-group of a SIMD word, N weight values and their N indices in [0, M) (:func:`weight_rom`),
selects each kept weight's input element from its M-group with an M:1 multiplexer and has
``PE·SIMD·N/M`` multipliers (:func:`stage_multipliers`). It consumes SIMD input elements
per cycle like the dense MVAU of the same PE and SIMD, so its cycles per vector (and the
stage's, :func:`~codesign.models.hwconfig.stage_cycles`) are the dense ones: the saving is
multipliers (DSP blocks) and weight memory, throughput per DSP ×M/N. Its datapath gains one
register stage, ``select``, after the multiplexers and loses the adder-tree levels of the
SIMD·(1 - N/M) products it no longer has (:func:`~codesign.models.pipelining.matrix_stages`).

These facts are read by the RTL generator, the simulators (through the pipeline depth) and
the cost model alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..dataflow import conv_weight_matrix
from ..ir import Network
from ..layers import Conv2d, Dense
from ..plan import Stage, StageKind, plan, stage_matrix
from ..qtype import QType

if TYPE_CHECKING:
    from ..hwconfig import StageConfig

__all__ = [
    "WeightMemory",
    "check_pattern",
    "index_bits",
    "is_nm",
    "matrix_columns",
    "mux_inputs",
    "nm_pattern",
    "nm_violation",
    "parse_sparsity",
    "products",
    "prune_matrix",
    "prune_nm",
    "read_inputs",
    "rom_fields",
    "sparse_simd_choices",
    "sparsity_problem",
    "stage_multipliers",
    "weight_memory",
    "weight_rom",
]


def check_pattern(n, m) -> tuple[int, int]:
    """``(n, m)`` as ints, or ``ValueError`` unless ``1 <= n < m``."""
    ok = all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in (n, m))
    if not ok or not 1 <= n < m:
        raise ValueError(f"n:m must be integers with 1 <= n < m, not {n!r}:{m!r}")
    return int(n), int(m)


def parse_sparsity(value) -> tuple[int, int]:
    """A sparsity pattern from ``"N:M"`` or a pair ``(N, M)``: ``(N, M)`` with ``1 <= N <
    M``, else ``ValueError`` (which says to quote the pattern when it is the integer that
    YAML 1.1 makes of an unquoted ``N:M``)."""
    hint = ""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 60:
        # YAML 1.1 (PyYAML) reads an unquoted 2:8 as the base-60 integer 128
        hint = f" (quote it in YAML: an unquoted {value // 60}:{value % 60} is read as {value})"
    bad = ValueError(f"sparsity must be 'N:M' with 1 <= N < M, not {value!r}{hint}")
    if isinstance(value, str):
        parts = value.split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise bad
        value = (int(parts[0]), int(parts[1]))
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise bad
    try:
        return check_pattern(*value)
    except ValueError:
        raise bad from None


def _groups(weights: np.ndarray, m: int) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 2:
        raise ValueError(f"weights must be a 2-D matrix, not shape {w.shape}")
    if w.shape[1] % m:
        raise ValueError(f"m must divide the matrix's {w.shape[1]} columns, not {m}")
    return w.reshape(w.shape[0], w.shape[1] // m, m)


def _kept(groups: np.ndarray, n: int) -> np.ndarray:
    """Per group, the positions of its ``n`` largest magnitudes (ties: the lowest position
    first), in ascending order: shape (rows, groups, n)."""
    order = np.argsort(-np.abs(groups.astype(np.int64)), axis=-1, kind="stable")
    return np.sort(order[..., :n], axis=-1)


def is_nm(weights: np.ndarray, n: int, m: int) -> bool:
    """Whether every group of ``m`` consecutive columns of each row of ``weights`` holds at
    most ``n`` nonzeros (False when ``m`` does not divide the columns)."""
    n, m = check_pattern(n, m)
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[1] % m:
        return False
    return bool((np.count_nonzero(_groups(w, m), axis=-1) <= n).all())


def nm_violation(weights: np.ndarray, n: int, m: int) -> str | None:
    """What breaks the N:M pattern first (row-major), as ``"3 nonzeros in a group of 8 at
    row 0, columns 8-15, not at most 2"``, or None when ``weights`` is N:M sparse."""
    n, m = check_pattern(n, m)
    w = np.asarray(weights)
    if w.shape[1] % m:
        return f"{w.shape[1]} columns, which groups of {m} do not divide"
    count = np.count_nonzero(_groups(w, m), axis=-1)
    bad = np.argwhere(count > n)
    if not len(bad):
        return None
    r, g = (int(v) for v in bad[0])
    return (
        f"{int(count[r, g])} nonzeros in a group of {m} at row {r}, columns "
        f"{g * m}-{g * m + m - 1}, not at most {n}"
    )


def prune_matrix(weights: np.ndarray, n: int, m: int) -> np.ndarray:
    """``weights`` (MH, MW) pruned to N:M: in each group of ``m`` consecutive columns of a
    row the ``n`` weights of largest magnitude are kept (ties: the lowest column), the
    others set to 0."""
    n, m = check_pattern(n, m)
    w = np.asarray(weights, dtype=np.int64)
    g = _groups(w, m)
    mask = np.zeros(g.shape, dtype=bool)
    np.put_along_axis(mask, _kept(g, n), True, axis=-1)
    return np.where(mask, g, 0).reshape(w.shape)


def nm_pattern(matrix: np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The compressed form of an N:M sparse (MH, MW) matrix: ``values`` and ``indices``, both
    (MH, MW·N/M). Entry ``g·N + k`` of a row is the ``k``-th kept weight of its group ``g``
    and its position in the group, in [0, M): the group's ``n`` weights of largest
    magnitude (ties: the lowest position), in ascending position order; a group with fewer
    than ``n`` nonzeros keeps zeros at its lowest free positions. Raises ``ValueError`` when
    ``matrix`` is not N:M sparse."""
    n, m = check_pattern(n, m)
    w = np.asarray(matrix, dtype=np.int64)
    problem = nm_violation(w, n, m)
    if problem is not None:
        raise ValueError(f"matrix must be {n}:{m} sparse, not with {problem}")
    g = _groups(w, m)
    idx = _kept(g, n)
    vals = np.take_along_axis(g, idx, axis=-1)
    rows = w.shape[0]
    return vals.reshape(rows, -1), idx.reshape(rows, -1)


def matrix_columns(stage: Stage) -> np.ndarray:
    """For a dense or convolution stage (not depthwise): column ``j`` of its MVAU's weight
    matrix (:func:`~codesign.models.plan.stage_matrix`) is column ``cols[j]`` of the
    layer's weights flattened per output channel (``weight.reshape(OC, -1)``)."""
    w = stage.main.weight
    idx = np.arange(int(np.prod(w.shape[1:]))).reshape(1, *w.shape[1:])
    if w.ndim == 4:  # the window's (kh, kw, c) order
        cols = conv_weight_matrix(idx, 1)[0][:, 0]
    else:
        cols = idx[0]
    if stage.in_order is not None:
        cols = cols[stage.in_order]
    return cols


def _prunable(stage: Stage) -> bool:
    return (
        stage.kind in (StageKind.MVAU, StageKind.CONV)
        and type(stage.main) in (Dense, Conv2d)
        and not stage.depthwise
    )


def prune_nm(
    net: Network, n: int, m: int, *, layers: Iterable[str] | None = None, name: str | None = None
) -> Network:
    """``net`` with the weights of its dense and convolution layers pruned to N:M by magnitude.

    In every group of ``m`` consecutive columns of the MVAU's weight matrix (the order its
    input streams, see the module) the ``n`` weights of largest magnitude are kept, ties to
    the lowest column, and the others become 0; biases and every other layer are unchanged,
    and the tensors' types and ranges are inferred again from the pruned weights. The
    golden model of the result is the dense computation with the pruned weights.

    Parameters
    ----------
    net
        The network; it must have a dataflow pipeline (:func:`~codesign.models.plan.plan`),
        which fixes the column order.
    n, m
        The pattern: at most ``n`` nonzeros in every ``m`` consecutive columns, ``1 <= n < m``.
    layers
        Names of the layers to prune; each must be a dense or (non-depthwise) convolution
        layer whose matrix has a multiple of ``m`` columns. None: every such layer (the
        others, binary and depthwise layers and those whose column count ``m`` does not
        divide, stay dense).
    name
        The result's name (default ``net``'s).

    Raises
    ------
    ValueError
        For a bad pattern, or a named layer that cannot be pruned (saying why).
    """
    n, m = check_pattern(n, m)
    stages = {s.main.name: s for s in plan(net) if s.kind in (StageKind.MVAU, StageKind.CONV)}
    if layers is None:
        chosen = [s for s in stages.values() if _prunable(s) and s.mw % m == 0]
    else:
        chosen = []
        for la in [layers] if isinstance(layers, str) else list(layers):
            if la not in {x.name for x in net.layers}:
                raise ValueError(f"layers must name layers of {net.name}, not {la!r}")
            s = stages.get(la)
            if s is None or not _prunable(s):
                raise ValueError(
                    f"layer {la!r}: only a dense or (non-depthwise) conv2d layer can be pruned "
                    f"to {n}:{m}, not a {net[la].op} layer"
                    + (" (depthwise)" if s is not None and s.depthwise else "")
                )
            if s.mw % m:
                raise ValueError(f"layer {la!r}: m must divide its {s.mw} weight columns, not {m}")
            chosen.append(s)
    new = {la.name: la for la in net.layers}
    for s in chosen:
        la = s.main
        pruned = prune_matrix(stage_matrix(s).weights, n, m)
        flat = np.array(la.weight, dtype=np.int64).reshape(la.weight.shape[0], -1)
        flat[:, matrix_columns(s)] = pruned
        new[la.name] = dataclasses.replace(la, weight=flat.reshape(la.weight.shape))
    out = Network(name or net.name, list(new.values()), output=net.output)
    out.folded = dict(net.folded)
    return out


# -- hardware facts of the sparse MVAU ----------------------------------------------------


def index_bits(m: int) -> int:
    """Bits of a kept weight's position in its group of ``m``: ``ceil(log2(m))``."""
    return max((int(m) - 1).bit_length(), 1)


def products(simd: int, sparsity: tuple[int, int] | None) -> int:
    """Multipliers per PE of an MVAU consuming ``simd`` input elements per cycle: SIMD, or
    SIMD·N/M with N:M sparsity (the adder tree's terms)."""
    if sparsity is None:
        return simd
    n, m = sparsity
    return simd * n // m


def stage_multipliers(stage: Stage, cfg: StageConfig) -> int:
    """Multiplier lanes of a matrix stage's MVAU: PE·SIMD, or PE·SIMD·N/M when sparse (a
    depthwise stage's VVAU: PE)."""
    if stage.depthwise:
        return cfg.pe
    return cfg.pe * products(cfg.simd, cfg.sparsity)


@dataclass(frozen=True)
class WeightMemory:
    """An MVAU's weight memory: ``depth`` words (one per (neuron fold, input fold) step,
    NF·SF, whatever the sparsity) of ``width`` bits, ``lanes`` fields of a value of
    ``value_bits`` and, when sparse, an index of ``index_bits`` above it."""

    depth: int
    lanes: int  #: PE·SIMD, or PE·SIMD·N/M when sparse
    value_bits: int
    index_bits: int  #: 0 when dense

    @property
    def width(self) -> int:
        return self.lanes * (self.value_bits + self.index_bits)

    @property
    def bits(self) -> int:
        return self.depth * self.width


def _value_bits(weights: np.ndarray, xnor: bool) -> int:
    if xnor:
        return 1
    return QType.covering(int(weights.min()), int(weights.max())).bits


def weight_memory(stage: Stage, cfg: StageConfig) -> WeightMemory:
    """The weight memory of a (non-depthwise) matrix stage's MVAU under ``cfg``: NF·SF words
    of PE·SIMD values, or with N:M sparsity PE·SIMD·N/M values and as many
    ``index_bits(M)``-bit indices (:func:`weight_rom` lays them out)."""
    w, xnor, _ = stage_matrix(stage)
    depth = (stage.mw // cfg.simd) * (stage.mh // cfg.pe)
    lanes = cfg.pe * products(cfg.simd, cfg.sparsity)
    ib = 0 if cfg.sparsity is None else index_bits(cfg.sparsity[1])
    return WeightMemory(depth, lanes, _value_bits(w, xnor), ib)


def rom_fields(
    weights: np.ndarray, pe: int, simd: int, sparsity: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The sparse MVAU's weight words as fields: ``values`` and ``indices``, both (NF·SF,
    PE·K) with ``K = SIMD·N/M``, in word order (word ``nf·SF + sf``) and lane order (lane
    ``p·K + q``: entry ``q`` of row ``nf·PE + p``'s part of :func:`nm_pattern` in columns
    ``sf·SIMD ..``, whose input element is ``(q // N)·M + index`` of the SIMD word)."""
    n, m = sparsity
    w = np.asarray(weights, dtype=np.int64)
    mh, mw = w.shape
    if simd % m or mw % simd or mh % pe:
        raise ValueError(f"m={m} must divide simd={simd}, which must divide MW={mw}")
    vals, idx = nm_pattern(w, n, m)  # (MH, MW·N/M)
    k = simd * n // m
    nf, sf = mh // pe, mw // simd

    def words(a: np.ndarray) -> np.ndarray:
        return a.reshape(nf, pe, sf, k).transpose(0, 2, 1, 3).reshape(nf * sf, pe * k)

    return words(vals), words(idx)


def weight_rom(
    weights: np.ndarray, pe: int, simd: int, sparsity: tuple[int, int], value_bits: int
) -> np.ndarray:
    """The sparse MVAU's weight ROM as bits: shape (NF·SF, width), 0/1 (uint8), column ``b``
    bit ``b`` of the word. Word ``nf·SF + sf`` holds the weights of rows ``nf·PE ..`` and
    columns ``sf·SIMD ..``; its lane ``p·K + q`` (``K = SIMD·N/M``) holds entry ``q`` of
    row ``p``'s part of :func:`nm_pattern` (kept weight ``q mod N`` of the word's M-group
    ``q // N``) at bits ``(p·K + q)·(value_bits + I)``: the value in two's complement in
    the low ``value_bits``, its position in the group in the ``I = index_bits(M)`` above."""
    vals, idx = rom_fields(weights, pe, simd, sparsity)
    ib = index_bits(sparsity[1])
    words = (vals & ((1 << value_bits) - 1)) | (idx << value_bits)
    bits = (words[:, :, None] >> np.arange(value_bits + ib)) & 1
    return bits.reshape(words.shape[0], -1).astype(np.uint8)


def mux_inputs(weights: np.ndarray, pe: int, simd: int, sparsity: tuple[int, int]) -> np.ndarray:
    """Which positions of its M-group each kept weight's multiplexer can select, as synthesis
    sees it: (PE·K, M) booleans, lane ``p·K + q`` as in :func:`rom_fields`. The index comes
    from a register loaded from the ROM, so only its bits that are the same in every word
    are known: the positions whose index agrees with them (a position past M - 1 selects
    the last, as the RTL's multiplexer does). A lane whose index never changes selects one
    position, a wire. A ROM holds at least two words: the RTL pads a one-word ROM with a
    zero word, and synthesis does not prove that its address never changes, so a one-word
    matrix's index bits that are 1 are not known (its input memory's bits agree:
    tests/sim/test_sparse_cost.py)."""
    m = sparsity[1]
    _, idx = rom_fields(weights, pe, simd, sparsity)
    if idx.shape[0] < 2:  # the pad word
        idx = np.vstack([idx, np.zeros_like(idx)])
    ib = index_bits(m)
    bits = (idx[:, :, None] >> np.arange(ib)) & 1  # (words, lanes, ib)
    fixed = (bits.min(axis=0) == bits.max(axis=0)).astype(np.int64)  # (lanes, ib)
    value = bits[0]
    mask = (fixed << np.arange(ib)).sum(axis=1)
    known = (value * fixed << np.arange(ib)).sum(axis=1)
    v = np.arange(1 << ib)
    agree = (v[None, :] & mask[:, None]) == known[:, None]  # (lanes, 2**ib)
    out = np.zeros((idx.shape[1], m), dtype=bool)
    for code in range(1 << ib):
        out[:, min(code, m - 1)] |= agree[:, code]
    return out


def read_inputs(weights: np.ndarray, pe: int, simd: int, sparsity: tuple[int, int]) -> int:
    """How many of a SIMD word's elements the sparse MVAU can read: those some kept weight's
    multiplexer can select (:func:`mux_inputs`). Synthesis removes the others' bits from the
    input vector's memory and registers (with few words, a wide folding, some are never
    selected)."""
    n, m = sparsity
    reach = mux_inputs(weights, pe, simd, sparsity)  # (PE·K, M)
    k = simd * n // m
    group = (np.arange(reach.shape[0]) % k) // n
    lanes, pos = np.nonzero(reach)
    return int(np.unique(group[lanes] * m + pos).size)


def sparse_simd_choices(stage: Stage, sparsity: tuple[int, int] | None) -> list[int]:
    """The stage's valid SIMD values under ``sparsity``: those of
    :meth:`Stage.simd_choices <codesign.models.plan.Stage.simd_choices>` that M divides (a
    SIMD word holds whole M-groups); all of them when dense."""
    if sparsity is None:
        return stage.simd_choices()
    return [v for v in stage.simd_choices() if v % sparsity[1] == 0]


def sparsity_problem(stage: Stage, cfg: StageConfig) -> str | None:
    """What makes ``cfg.sparsity`` invalid for ``stage`` (a message naming the stage and
    the field), or None when it is valid or unset. The weights are checked in the MVAU's
    column order (:func:`~codesign.models.plan.stage_matrix`)."""
    sp = cfg.sparsity
    if sp is None:
        return None
    n, m = sp
    where = f"stage {stage.name!r}: sparsity"
    if not _prunable(stage):
        what = "depthwise " if stage.depthwise else ""
        return (
            f"{where} needs a dense or conv2d stage's MVAU (binary, depthwise and deformable "
            f"layers have no sparse unit), not a {what}{stage.main.op} stage"
        )
    if cfg.simd is not None and cfg.simd % m:
        return (
            f"stage {stage.name!r}: simd must be a multiple of M={m} for sparsity {n}:{m} "
            f"(a SIMD word holds whole groups; valid: {sparse_simd_choices(stage, sp)}), "
            f"not {cfg.simd}"
        )
    if not sparse_simd_choices(stage, sp):
        return (
            f"{where} {n}:{m} needs a SIMD that is a multiple of {m}, and none of "
            f"{stage.simd_choices()} is"
        )
    problem = nm_violation(stage_matrix(stage).weights, n, m)
    if problem is not None:
        return f"{where} must match the weights: layer {stage.main.name!r} has {problem}"
    return None
