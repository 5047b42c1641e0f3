"""MST channel reuse (models/binary/mst.py): bit-exact reuse popcounts, valid trees within
the depth bound, the plain MST's optimality and the accounting of operations."""

from __future__ import annotations

import re

import numpy as np
import pytest
from codesign.models.activations import Clip
from codesign.models.binary import BinaryDense, Encoding, xnor_popcount
from codesign.models.binary.mst import (
    ReuseTree,
    hamming_matrix,
    mst_layers,
    network_reuse,
    plain_mst,
    reuse_popcount,
    reuse_tree,
)
from codesign.models.hwconfig import ConfigError
from codesign.models.ir import Network
from codesign.models.layers import Input
from codesign.models.qtype import parse_qtype
from hypothesis import given, settings
from hypothesis import strategies as st

import codesign


@st.composite
def layers(draw, max_m: int = 12, max_k: int = 40):
    """(weight bits (M, K), input bits (N, K), depth bound or None)."""
    m = draw(st.integers(1, max_m))
    k = draw(st.integers(1, max_k))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # few distinct prototypes with flipped bits: near-duplicate channels, as in real layers
    protos = rng.integers(0, 2, (draw(st.integers(1, 4)), k))
    w = protos[rng.integers(0, len(protos), m)]
    w = w ^ (rng.random((m, k)) < draw(st.sampled_from([0.0, 0.05, 0.3, 0.5])))
    x = rng.integers(0, 2, (draw(st.integers(1, 5)), k))
    bound = draw(st.one_of(st.none(), st.integers(0, 5)))
    return w.astype(np.int64), x, bound


def _kruskal(dist: np.ndarray) -> int:
    """Total weight of a minimum spanning tree, by Kruskal (reference)."""
    m = len(dist)
    up = list(range(m))

    def find(a):
        while up[a] != a:
            a = up[a]
        return a

    total = 0
    edges = sorted((int(dist[i, j]), i, j) for i in range(m) for j in range(i + 1, m))
    for d, i, j in edges:
        a, b = find(i), find(j)
        if a != b:
            up[a] = b
            total += d
    return total


def _check_tree(tree: ReuseTree, w: np.ndarray) -> None:
    m, k = w.shape
    assert tree.channels == m and tree.fan_in == k
    assert sorted(tree.order.tolist()) == list(range(m))  # spanning: every channel once
    seen = set()
    for c in tree.order.tolist():  # topological: a parent comes first
        p = int(tree.parent[c])
        assert p == -1 or p in seen
        seen.add(c)
    ham = (w[:, None, :] != w[None, :, :]).sum(axis=2)
    for c in range(m):
        p = int(tree.parent[c])
        assert tree.distance[c] == (k if p < 0 else ham[c, p])
        assert tree.depth[c] == (0 if p < 0 else tree.depth[p] + 1)
    assert (
        tree.ops
        == int(tree.distance.sum())
        == k * len(tree.roots)
        + sum(int(ham[c, tree.parent[c]]) for c in range(m) if tree.parent[c] >= 0)
    )
    assert tree.direct_ops == m * k
    assert tree.ops_saved == tree.direct_ops - tree.ops >= 0
    assert tree.max_depth == int(tree.depth.max())


@settings(max_examples=150, deadline=None)
@given(layers())
def test_reuse_popcount_equals_direct(case):
    w, x, bound = case
    tree = reuse_tree(w, bound)
    assert np.array_equal(reuse_popcount(x, w, tree), xnor_popcount(x, w))


@settings(max_examples=150, deadline=None)
@given(layers())
def test_reuse_tree_is_valid_within_bound_and_no_better_than_plain(case):
    w, _, bound = case
    tree = reuse_tree(w, bound)
    plain = plain_mst(w)
    _check_tree(tree, w)
    _check_tree(plain, w)
    assert len(plain.roots) == 1
    if bound is not None:
        assert tree.max_depth <= bound
        if bound == 0:
            assert tree.ops == tree.direct_ops
    else:
        assert tree.to_dict() == plain.to_dict()
    # the plain MST is optimal: K + MST weight bounds every reuse forest from below
    assert plain.ops == w.shape[1] + _kruskal(hamming_matrix(w))
    assert plain.ops <= tree.ops <= tree.direct_ops


@settings(max_examples=60, deadline=None)
@given(layers(max_m=10))
def test_plain_mst_root_has_least_depth(case):
    w, _, _ = case
    plain = plain_mst(w)
    m = len(w)
    adj = {c: set() for c in range(m)}
    for c, p in enumerate(plain.parent.tolist()):
        if p >= 0:
            adj[c].add(p)
            adj[p].add(c)

    def height(root):
        depth, frontier, seen = 0, [root], {root}
        while True:
            nxt = [u for v in frontier for u in adj[v] if u not in seen]
            if not nxt:
                return depth
            seen.update(nxt)
            frontier, depth = nxt, depth + 1

    assert plain.max_depth == min(height(r) for r in range(m))


def test_hamming_matrix_matches_definition():
    rng = np.random.default_rng(0)
    w = rng.integers(0, 2, (17, 333))
    want = (w[:, None, :] != w[None, :, :]).sum(axis=2)
    d = hamming_matrix(w)
    assert d.dtype == np.int64 and np.array_equal(d, want)


def test_plain_mst_of_a_distance_matrix_equals_from_weights():
    rng = np.random.default_rng(1)
    w = rng.integers(0, 2, (20, 50))
    assert plain_mst(hamming_matrix(w), 50).to_dict() == plain_mst(w).to_dict()


def test_reuse_tree_prefers_a_new_root_to_a_deep_chain():
    # two far clusters of two channels: within depth 1 the best forest has a root in each
    k = 64
    a = np.zeros(k, dtype=np.int64)
    b = np.ones(k, dtype=np.int64)
    w = np.stack([a, a, b, b])
    w[1, 0] ^= 1
    w[3, 0] ^= 1
    tree = reuse_tree(w, 1)
    assert tree.max_depth <= 1
    assert len(tree.roots) == 2
    assert tree.ops == 2 * k + 2 > plain_mst(w).ops


@pytest.mark.parametrize("bound", [None, 1, 3])
def test_big_layer_trees_keep_their_bound_and_cost_order(bound):
    """A CNV-sized layer (256 x 2304). How fast is benchmarks/binary.py's business."""
    w = np.random.default_rng(2).integers(0, 2, (256, 2304))
    tree = reuse_tree(w, bound)
    plain = plain_mst(w)
    assert bound is None or tree.max_depth <= bound
    assert plain.ops <= tree.ops <= tree.direct_ops
    assert sorted(tree.order.tolist()) == list(range(256))


def test_deterministic():
    w = np.random.default_rng(4).integers(0, 2, (40, 30))
    assert reuse_tree(w, 2).to_dict() == reuse_tree(w.copy(), 2).to_dict()


def test_tfc_network_reuse_is_exact_and_saves():
    net = codesign.load("tfc_w1a1")
    trees = network_reuse(net, max_depth=3)
    assert list(trees) == ["fc0", "fc1", "fc2", "fc3"]
    x = np.random.default_rng(5).integers(0, 2, (8, 784))
    for la, _ in mst_layers(net):
        tree = trees[la.name]
        assert tree.max_depth <= 3
        assert tree.ops_saved > 0.4 * tree.direct_ops
        xin = x if la.name == "fc0" else x[:, : la.weight.shape[1]]
        assert np.array_equal(reuse_popcount(xin, la.weight, tree), xnor_popcount(xin, la.weight))


def test_errors():
    w = np.zeros((3, 4), dtype=np.int64)
    with pytest.raises(ValueError, match=r"^max_depth must be a non-negative int or None, not -1$"):
        reuse_tree(w, -1)
    with pytest.raises(ValueError, match=r"^weight must hold only the bits 0 and 1"):
        reuse_tree(w + 2)
    with pytest.raises(ValueError, match=r"^weight must be a non-empty \(M, K\) matrix"):
        hamming_matrix(np.zeros(3))
    tree = reuse_tree(w)
    with pytest.raises(ValueError, match=r"^x must have shape \(N, 4\), not \(2, 5\)$"):
        reuse_popcount(np.zeros((2, 5), dtype=np.int64), w, tree)
    with pytest.raises(ValueError, match=r"^order must list every parent before its children$"):
        ReuseTree(parent=[-1, 0], order=[1, 0], depth=[0, 1], distance=[4, 0], fan_in=4)
    with pytest.raises(ValueError, match=r"^depth must be 0 for a root"):
        ReuseTree(parent=[-1, 0], order=[0, 1], depth=[0, 2], distance=[4, 0], fan_in=4)


def _net(layers, qtype="uint1"):
    return Network(
        "t",
        [Input(name="input", inputs=(), shape=(4,), qtype=parse_qtype(qtype)), *layers],
    )


def test_network_errors_name_the_layer():
    w = np.eye(4, dtype=np.int64)
    bip = _net(
        [BinaryDense(name="fc", inputs=("input",), weight=2 * w - 1, encoding=Encoding.BIPOLAR)],
        "bipolar",
    )
    with pytest.raises(
        ConfigError, match=r"^layer 'fc': encoding must be 'binary' for the MST hardware, not "
    ):
        network_reuse(bip)
    clip = _net(
        [
            BinaryDense(name="fc", inputs=("input",), weight=w),
            Clip(name="c", inputs=("fc",), min=0, max=3),
        ]
    )
    with pytest.raises(ConfigError, match=re.escape("layer 'c': clip has no MST hardware")):
        network_reuse(clip)


def test_network_rejects_a_scaled_threshold():
    from codesign.models.activations import MultiThreshold

    net = _net(
        [
            BinaryDense(name="fc", inputs=("input",), weight=np.eye(4, dtype=np.int64)),
            MultiThreshold(name="t", inputs=("fc",), thresholds=np.ones((4, 1)), out_scale=2),
        ]
    )
    with pytest.raises(
        ConfigError,
        match=r"^layer 't': must be one threshold per channel with out_scale 1 and out_bias 0",
    ):
        mst_layers(net)
