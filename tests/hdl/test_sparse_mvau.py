# amaranth: UnusedElaboratable=no
"""The N:M sparse MVAU in amaranth.sim against the dense MVAU with the same (pruned) weights:
the same output beats, and the same cycles per vector (its outputs arrive exactly as many
cycles later as its pipeline is deeper); its pipeline is the one models/ states."""

from __future__ import annotations

import re

import numpy as np
import pytest
from codesign.hdl.dataflow.credit import CreditStage
from codesign.hdl.dataflow.mvau import MVAU, accumulator_range
from codesign.hdl.dataflow.stream import pack_beats, unpack_beats
from codesign.models.compress.sparsity import prune_matrix
from codesign.models.pipelining import PipelineMode, credit_depth, matrix_stages
from codesign.models.qtype import QType

#: (MH, MW, PE, SIMD, N, M, input type): 2:4, 2:8, 1:4, a 4:8 and a 1:2, signed and unsigned
#: inputs, one group per SIMD word and several, one and several neuron folds
CASES = [
    (8, 16, 2, 4, 2, 4, "int4"),
    (6, 32, 3, 8, 2, 8, "uint8"),
    (4, 24, 4, 12, 1, 4, "int3"),
    (8, 16, 1, 16, 4, 8, "uint2"),
    (4, 8, 2, 2, 1, 2, "int8"),
    (5, 16, 5, 8, 2, 8, "int6"),
]


def _stage(unit: MVAU) -> CreditStage:
    return CreditStage(head=unit, depth=credit_depth(len(unit.stages), unit.sf))


def _units(case, mode, seed, bias=True):
    mh, mw, pe, simd, n, m, tname = case
    rng = np.random.default_rng(seed)
    in_t = QType.int(int(tname.removeprefix("u").removeprefix("int")), signed=tname[0] == "i")
    w = prune_matrix(rng.integers(-7, 8, (mh, mw)), n, m)
    b = rng.integers(-30, 31, mh) if bias else None
    lo, hi = accumulator_range(w, b, in_t.min, in_t.max, simd, False)
    common = dict(
        weights=w, bias=b, in_type=in_t, out_type=QType.covering(lo, hi),
        in_range=(in_t.min, in_t.max), pe=pe, simd=simd, pipeline=mode,
    )  # fmt: skip
    return MVAU(**common, sparsity=(n, m)), MVAU(**common), w, b, in_t, rng


@pytest.mark.parametrize("mode", list(PipelineMode))
@pytest.mark.parametrize("k", range(len(CASES)))
def test_sparse_equals_dense_beat_for_beat(k, mode, stream_sim):
    case = CASES[k]
    mh, mw, pe, simd, n, m, _ = case
    sparse, dense, w, b, in_t, rng = _units(case, mode, seed=k, bias=k % 2 == 0)
    assert sparse.multipliers == pe * simd * n // m and dense.multipliers == pe * simd
    frames = rng.integers(in_t.min, in_t.max + 1, (6, mw))
    words = [wd for f in frames for wd in pack_beats(f, in_t, simd)]
    n_out = 6 * mh // pe
    out_t = QType.covering(*accumulator_range(w, b, in_t.min, in_t.max, simd, False))
    want = frames @ w.T + (0 if b is None else b)
    # free-running: the same beats, each exactly the pipelines' difference later
    fast = [stream_sim(_stage(u), words, n_out) for u in (sparse, dense)]
    assert fast[0].words == fast[1].words
    assert unpack_beats(fast[0].words, out_t, pe).reshape(6, mh).tolist() == want.tolist()
    extra = len(sparse.stages) - len(dense.stages)
    assert fast[0].cycles == [c + extra for c in fast[1].cycles]
    # under random gaps and back-pressure: the same beats
    slow = stream_sim(_stage(sparse), words, n_out, valid_prob=0.7, ready_prob=0.6, seed=k)
    assert slow.words == fast[1].words


def test_cycles_per_vector_are_the_dense_ones(stream_sim):
    """Back to back, a vector takes SF·NF cycles, sparse or not: 12 vectors of a 2:8 unit
    (SF 4, NF 4) arrive 16 cycles apart in steady state."""
    case = (8, 32, 2, 8, 2, 8, "int4")
    sparse, dense, _, _, in_t, rng = _units(case, PipelineMode.AUTO, seed=3)
    assert sparse.cycles_per_vector == dense.cycles_per_vector == 4 * 4
    frames = rng.integers(in_t.min, in_t.max + 1, (12, 32))
    words = [wd for f in frames for wd in pack_beats(f, in_t, 8)]
    run = stream_sim(_stage(sparse), words, 12 * 4)
    last_of_vector = run.cycles[3::4]
    assert np.diff(last_of_vector).tolist() == [16] * 11


def test_pipeline_is_the_models_fact():
    """The unit's register stages are models/pipelining's: a ``select`` stage in ``auto``
    mode and a tree over SIMD·N/M products (2:8 at SIMD 16: 4 products, two tree levels
    instead of four); none added in ``off`` mode."""
    case = (4, 32, 2, 16, 2, 8, "int4")
    sparse, dense, *_ = _units(case, PipelineMode.AUTO, seed=1)
    assert sparse.stages == matrix_stages(4, False, PipelineMode.AUTO, select=True)
    assert sparse.stages == (
        "fetch", "operand", "select", "multiply", "product", "land", "tree", "tree", "result",
    )  # fmt: skip
    assert dense.stages.count("tree") == 4
    off, _, *_ = _units(case, PipelineMode.OFF, seed=1)
    assert off.stages == ("fetch", "result")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"simd": 4}, r"^simd must be a multiple of M=8 for sparsity 2:8, not 4$"),
        ({"sparsity": "3:2"}, r"^sparsity must be 'N:M' with 1 <= N < M, not '3:2'$"),
        (
            {"weights": np.ones((2, 16), dtype=np.int64)},
            r"^weights must be 2:8 sparse, not with 8 nonzeros in a group of 8 at row 0, "
            r"columns 0-7, not at most 2$",
        ),
    ],
)
def test_bad_sparse_unit_is_refused(kwargs, message):
    t = QType.int(4)
    args = dict(
        weights=prune_matrix(np.arange(32).reshape(2, 16) - 16, 2, 8),
        in_type=t, out_type=QType.int(16), in_range=(t.min, t.max), pe=1, simd=8,
        sparsity=(2, 8),
    )  # fmt: skip
    with pytest.raises(ValueError, match=message):
        MVAU(**(args | kwargs))


def test_xnor_unit_cannot_be_sparse():
    with pytest.raises(ValueError, match=r"^sparsity must be None in XNOR mode"):
        MVAU(
            weights=np.zeros((2, 8), dtype=np.int64), in_type=QType.int(1, signed=False),
            out_type=QType.int(5), in_range=(0, 1), pe=1, simd=8, xnor=True, sparsity=(1, 4),
        )  # fmt: skip


def test_verilog_is_deterministic():
    """Two builds of one sparse unit (weights from the same seed) give the same Verilog, which
    has the unit's multipliers and a select register per kept weight."""
    from codesign.hdl.dataflow.top import to_verilog

    case = (4, 16, 2, 8, 2, 8, "int4")
    texts = [to_verilog(_stage(_units(case, PipelineMode.AUTO, seed=9)[0]), "sp") for _ in "ab"]
    assert texts[0] == texts[1]
    assert len(set(re.findall(r"\bsel(\d+)_(\d+)\b", texts[0]))) == 2 * 2
