"""Minimum-spanning-tree channel reuse for binary layers (MST compression).

In a binary XNOR-popcount layer (FINN's ``binary`` encoding) with weight bits ``W`` (M, K),
channel ``c`` has the popcount ``P_c = #{i : x_i == W[c, i]}``. Over the positions
``D(c, p) = {i : W[c, i] != W[p, i]}`` where ``c`` differs from another channel ``p``,
``xnor_c,i = 1 − xnor_p,i``, so

    P_c = P_p − Σ_{i∈D} xnor_p,i + Σ_{i∈D} xnor_c,i = P_p + Σ_{i∈D} (2·xnor_c,i − 1)

and ``c`` costs ``|D(c, p)|`` operations instead of ``K``, once ``P_p`` is known. A *reuse
tree* is a spanning forest over the channels: a root is computed from scratch (cost ``K``),
every other channel from its parent (cost: the Hamming distance to it). Its total cost
(:attr:`ReuseTree.ops`) compares with ``M·K`` for direct computation.

Algorithms
----------
:func:`plain_mst`
    Prim's algorithm on the Hamming distance matrix, O(M²) with vectorised updates (ties go
    to the lowest channel index), rooted at the tree's *centre*: the middle vertex of a
    longest path (in hops), the root of least depth; of two centres, the lower index.
    Since a Hamming distance never exceeds ``K``, no extra root can pay, and
    ``K + weight(MST)`` is a lower bound on the cost of every reuse forest: the plain MST
    is optimal.
:func:`reuse_tree` with a depth bound ``D``
    The depth of the tree is the length of the hardware's dependency chain; the minimum
    spanning tree of bounded depth (hop-constrained MST) is NP-hard, so this is a
    heuristic:

    1. if the plain MST rooted at its centre has depth ≤ ``D``, it is returned (optimal);
    2. otherwise, depth-bounded Prim: a virtual super-root joins every channel at cost
       ``K`` (starting a new root); Prim's greedy order grows the forest, a channel at
       depth ``D`` takes no children, and on a tie a new root wins (its depth 0 can take
       children). It starts from each of two first roots, the centre of the plain MST and
       the medoid (least total distance to the others);
    3. improvement passes re-parent each channel, with its subtree, to the in-bound parent
       of least distance (a root only when that saves over ``K``), until a pass changes
       nothing (at most 20 passes);
    4. the cheaper of the two results is returned (the first on a tie).

    Guarantees: depth ≤ ``D``; cost ≤ ``M·K`` (each channel costs at most ``K``); cost ≥
    the plain MST's; deterministic (the same weights give the same tree).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hwconfig import ConfigError
from ..ir import Network
from .xnor import BinaryDense, Encoding

__all__ = [
    "ReuseTree",
    "hamming_matrix",
    "mst_layers",
    "network_reuse",
    "plain_mst",
    "reuse_popcount",
    "reuse_tree",
]

#: Improvement passes of :func:`reuse_tree` at most.
_MAX_PASSES = 20


def _weight_bits(weight) -> np.ndarray:
    w = np.asarray(weight)
    if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
        raise ValueError(f"weight must be a non-empty (M, K) matrix, not shape {w.shape}")
    if w.dtype.kind not in "iub" or not np.all((w == 0) | (w == 1)):
        raise ValueError("weight must hold only the bits 0 and 1 (FINN's binary encoding)")
    return w.astype(np.uint8, copy=False)


def hamming_matrix(weight) -> np.ndarray:
    """Hamming distances between the rows of a bit matrix.

    Parameters
    ----------
    weight
        (M, K) array of 0/1.

    Returns
    -------
    numpy.ndarray
        (M, M) int64, ``[c, p]`` = number of positions where rows ``c`` and ``p`` differ.
    """
    w = _weight_bits(weight).astype(np.float64)
    ones = w.sum(axis=1)
    # d(c, p) = |w_c| + |w_p| - 2 w_c·w_p, exact in float64 (every term < 2^53)
    d = ones[:, None] + ones[None, :] - 2.0 * (w @ w.T)
    return np.rint(d).astype(np.int64)


@dataclass(frozen=True, eq=False)
class ReuseTree:
    """A reuse forest over the M channels of a layer of fan-in K.

    Attributes
    ----------
    parent
        (M,) parent channel of each channel, -1 for a root.
    order
        (M,) every channel once, each parent before its children (by depth, then index).
    depth
        (M,) hops to the channel's root (a root has depth 0).
    distance
        (M,) cost of each channel: Hamming distance to its parent, ``fan_in`` for a root.
    fan_in
        K, the layer's input length.
    """

    parent: np.ndarray
    order: np.ndarray
    depth: np.ndarray
    distance: np.ndarray
    fan_in: int

    def __post_init__(self) -> None:
        if not isinstance(self.fan_in, int | np.integer) or self.fan_in < 1:
            raise ValueError(f"fan_in must be a positive int, not {self.fan_in!r}")
        arrays = {}
        for name in ("parent", "order", "depth", "distance"):
            a = np.array(getattr(self, name), dtype=np.int64)
            if a.ndim != 1 or (arrays and len(a) != len(arrays["parent"])):
                raise ValueError(f"{name} must be a vector of one entry per channel")
            a.setflags(write=False)
            arrays[name] = a
            object.__setattr__(self, name, a)
        object.__setattr__(self, "fan_in", int(self.fan_in))
        parent, order, depth = arrays["parent"], arrays["order"], arrays["depth"]
        m = len(parent)
        if m < 1:
            raise ValueError("a reuse tree must have at least one channel")
        if np.any((parent < -1) | (parent >= m)):
            raise ValueError(f"parent must hold channels or -1, not {parent.tolist()!r}")
        if sorted(order.tolist()) != list(range(m)):
            raise ValueError(f"order must be a permutation of range({m}), not {order.tolist()!r}")
        pos = np.empty(m, dtype=np.int64)
        pos[order] = np.arange(m)
        child = parent >= 0
        if np.any(pos[parent[child]] >= pos[child]):
            raise ValueError("order must list every parent before its children")
        want = np.where(child, depth[np.maximum(parent, 0)] + 1, 0)
        if np.any(depth != want):
            raise ValueError("depth must be 0 for a root and the parent's depth + 1 otherwise")
        dist = arrays["distance"]
        if np.any(dist[~child] != self.fan_in) or np.any((dist < 0) | (dist > self.fan_in)):
            raise ValueError("distance must be fan_in for a root and within [0, fan_in]")

    @property
    def channels(self) -> int:
        """M, the number of channels."""
        return len(self.parent)

    @property
    def roots(self) -> np.ndarray:
        """The root channels, in increasing order."""
        return np.flatnonzero(self.parent < 0)

    @property
    def ops(self) -> int:
        """XNOR operations of one input vector: ``K`` per root plus every edge distance."""
        return int(self.distance.sum())

    @property
    def direct_ops(self) -> int:
        """XNOR operations without reuse, ``M·K``."""
        return self.channels * self.fan_in

    @property
    def ops_saved(self) -> int:
        """``direct_ops − ops``."""
        return self.direct_ops - self.ops

    @property
    def max_depth(self) -> int:
        """The deepest channel's depth."""
        return int(self.depth.max())

    def to_dict(self) -> dict:
        """A JSON-ready description (lists of ints and the derived counts)."""
        return {
            "channels": self.channels,
            "fan_in": self.fan_in,
            "parent": self.parent.tolist(),
            "order": self.order.tolist(),
            "depth": self.depth.tolist(),
            "distance": self.distance.tolist(),
            "roots": self.roots.tolist(),
            "ops": self.ops,
            "direct_ops": self.direct_ops,
            "ops_saved": self.ops_saved,
            "max_depth": self.max_depth,
        }


def _depths(parent: np.ndarray) -> np.ndarray:
    """Depths of a forest given by ``parent`` (acyclic), level by level."""
    m = len(parent)
    depth = np.full(m, -1, dtype=np.int64)
    depth[parent < 0] = 0
    level = 0
    while np.any(depth < 0):
        nxt = (depth < 0) & (depth[np.maximum(parent, 0)] == level) & (parent >= 0)
        if not nxt.any():
            raise ValueError("parent must describe a forest (it has a cycle)")
        level += 1
        depth[nxt] = level
    return depth


def _tree(parent: np.ndarray, dist: np.ndarray, k: int) -> ReuseTree:
    parent = np.asarray(parent, dtype=np.int64)
    m = len(parent)
    depth = _depths(parent)
    idx = np.arange(m)
    distance = np.where(parent >= 0, dist[idx, np.maximum(parent, 0)], k)
    order = np.lexsort((idx, depth))
    return ReuseTree(parent=parent, order=order, depth=depth, distance=distance, fan_in=k)


def _distances(weight_or_dist, fan_in: int | None) -> tuple[np.ndarray, int]:
    """(distance matrix, K) from a weight matrix, or from a distance matrix and ``fan_in``."""
    if fan_in is None:
        w = _weight_bits(weight_or_dist)
        return hamming_matrix(w), w.shape[1]
    d = np.asarray(weight_or_dist)
    if not isinstance(fan_in, int | np.integer) or isinstance(fan_in, bool) or fan_in < 1:
        raise ValueError(f"fan_in must be a positive int, not {fan_in!r}")
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] < 1:
        raise ValueError(f"a distance matrix must be square (M, M), not shape {d.shape}")
    d = d.astype(np.int64)
    if np.any(d != d.T) or np.any(np.diag(d) != 0) or d.min() < 0 or d.max() > fan_in:
        raise ValueError("a distance matrix must be symmetric with a zero diagonal, in [0, K]")
    return d, int(fan_in)


def _prim(dist: np.ndarray) -> np.ndarray:
    """Undirected MST edges as a parent array of Prim's tree grown from channel 0."""
    m = len(dist)
    parent = np.full(m, -1, dtype=np.int64)
    key = dist[0].astype(np.float64)
    near = np.zeros(m, dtype=np.int64)
    done = np.zeros(m, dtype=bool)
    done[0] = True
    key[0] = np.inf
    for _ in range(m - 1):
        v = int(np.argmin(key))
        done[v] = True
        parent[v] = near[v]
        key[v] = np.inf
        better = ~done & (dist[v] < key)
        key[better] = dist[v][better]
        near[better] = v
    return parent


def _reroot(parent: np.ndarray, root: int) -> np.ndarray:
    """The same undirected tree with ``root`` as its root."""
    parent = parent.copy()
    prev, v = -1, root
    while v >= 0:
        nxt = int(parent[v])
        parent[v] = prev
        prev, v = v, nxt
    return parent


def _centre(parent: np.ndarray) -> int:
    """The root of least depth of a tree (a centre; the lower index of two)."""
    m = len(parent)
    adj: list[list[int]] = [[] for _ in range(m)]
    for c, p in enumerate(parent.tolist()):
        if p >= 0:
            adj[c].append(p)
            adj[p].append(c)

    def far(src: int) -> tuple[int, list[int]]:
        prev = [-1] * m
        seen = [False] * m
        seen[src] = True
        queue = [src]
        for v in queue:
            for u in adj[v]:
                if not seen[u]:
                    seen[u] = True
                    prev[u] = v
                    queue.append(u)
        end = queue[-1]
        path = [end]
        while prev[path[-1]] >= 0:
            path.append(prev[path[-1]])
        return end, path

    a, _ = far(0)
    _, path = far(a)
    n = len(path)
    middle = {path[(n - 1) // 2], path[n // 2]}
    return min(middle)


def plain_mst(weight_or_dist, fan_in: int | None = None) -> ReuseTree:
    """The minimum spanning tree of the channels, rooted at its centre.

    Parameters
    ----------
    weight_or_dist
        (M, K) weight bits, or an (M, M) Hamming distance matrix when ``fan_in`` is given.
    fan_in
        K, the cost of the root, with a distance matrix; None with weights.

    Returns
    -------
    ReuseTree
        One tree of least total distance (ties to lower indices), of least depth over its
        possible roots.
    """
    dist, k = _distances(weight_or_dist, fan_in)
    edges = _prim(dist)
    return _tree(_reroot(edges, _centre(edges)), dist, k)


def _subtree(parent: np.ndarray, depth: np.ndarray, v: int) -> np.ndarray:
    """Mask of ``v`` and its descendants."""
    mask = np.zeros(len(parent), dtype=bool)
    mask[v] = True
    for _ in range(int(depth.max() - depth[v])):
        grown = mask | ((parent >= 0) & mask[np.maximum(parent, 0)])
        if np.array_equal(grown, mask):
            break
        mask = grown
    return mask


def _bounded_prim(dist: np.ndarray, k: int, bound: int, first: int) -> np.ndarray:
    m = len(dist)
    parent = np.full(m, -1, dtype=np.int64)
    depth = np.zeros(m, dtype=np.int64)
    key = np.full(m, float(k))
    near = np.full(m, -1, dtype=np.int64)
    done = np.zeros(m, dtype=bool)
    key[first] = -1.0
    for _ in range(m):
        v = int(np.argmin(np.where(done, np.inf, key)))
        done[v] = True
        p = int(near[v])
        parent[v] = p
        depth[v] = depth[p] + 1 if p >= 0 else 0
        if depth[v] < bound:
            better = ~done & (dist[v] < key)
            key[better] = dist[v][better]
            near[better] = v
    return parent


def _improve(parent: np.ndarray, dist: np.ndarray, k: int, bound: int) -> np.ndarray:
    parent = parent.copy()
    m = len(parent)
    idx = np.arange(m)
    for _ in range(_MAX_PASSES):
        changed = False
        for v in range(m):
            depth = _depths(parent)
            sub = _subtree(parent, depth, v)
            height = int(depth[sub].max() - depth[v])
            current = k if parent[v] < 0 else int(dist[v, parent[v]])
            ok = ~sub & (depth + 1 + height <= bound)
            if not ok.any():
                continue
            cost = np.where(ok, dist[v], np.iinfo(np.int64).max)
            u = int(np.argmin(cost))
            if cost[u] < current:
                parent[v] = idx[u]
                changed = True
        if not changed:
            break
    return parent


def reuse_tree(weight, max_depth: int | None = None) -> ReuseTree:
    """A reuse forest of least total distance found within a depth bound.

    Parameters
    ----------
    weight
        (M, K) weight bits.
    max_depth
        Largest depth of a channel (0: every channel a root), or None for the plain MST.

    Returns
    -------
    ReuseTree
        See the module docstring for the heuristic and its guarantees.
    """
    if max_depth is not None and (
        not isinstance(max_depth, int | np.integer) or isinstance(max_depth, bool) or max_depth < 0
    ):
        raise ValueError(f"max_depth must be a non-negative int or None, not {max_depth!r}")
    dist, k = _distances(weight, None)
    plain = plain_mst(dist, k)
    if max_depth is None or plain.max_depth <= max_depth:
        return plain
    bound = int(max_depth)
    medoid = int(np.argmin(dist.sum(axis=1)))
    best = None
    for first in dict.fromkeys((int(plain.roots[0]), medoid)):
        parent = _improve(_bounded_prim(dist, k, bound, first), dist, k, bound)
        tree = _tree(parent, dist, k)
        if best is None or tree.ops < best.ops:
            best = tree
    return best


def reuse_popcount(x, weight, tree: ReuseTree) -> np.ndarray:
    """XNOR popcounts computed in reuse order, touching only the differing positions.

    Parameters
    ----------
    x
        (N, K) input bits.
    weight
        (M, K) weight bits.
    tree
        A reuse forest of the M channels.

    Returns
    -------
    numpy.ndarray
        (N, M) int64 popcounts, equal to :func:`~codesign.models.binary.xnor.xnor_popcount`.
    """
    w = _weight_bits(weight)
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"x must have shape (N, {w.shape[1]}), not {x.shape}")
    if tree.channels != w.shape[0] or tree.fan_in != w.shape[1]:
        raise ValueError(
            f"tree must cover {w.shape[0]} channels of fan-in {w.shape[1]}, not "
            f"{tree.channels} of fan-in {tree.fan_in}"
        )
    out = np.zeros((x.shape[0], w.shape[0]), dtype=np.int64)
    for c in tree.order.tolist():
        p = int(tree.parent[c])
        if p < 0:
            out[:, c] = (x == w[c]).sum(axis=1)
            continue
        diff = np.flatnonzero(w[c] != w[p])
        match = x[:, diff] == w[c, diff]
        out[:, c] = out[:, p] + 2 * match.sum(axis=1) - len(diff)
    return out


def mst_layers(net: Network) -> list[tuple[BinaryDense, object | None]]:
    """The (binary dense layer, threshold layer or None) pairs of a chain the MST hardware
    computes, in order.

    Raises
    ------
    ConfigError
        Naming the first layer that is not a binary-encoded dense layer, optionally followed
        by a single-threshold MultiThreshold (out_scale 1, out_bias 0), in a linear chain.
    """
    from ..activations import MultiThreshold
    from ..layers import Input

    pairs: list[tuple[BinaryDense, object | None]] = []
    prev = None
    for la in net.layers:
        if isinstance(la, Input):
            prev = la.name
            continue
        if la.inputs != (prev,):
            raise ConfigError(f"layer {la.name!r}: the MST hardware computes a linear chain only")
        if isinstance(la, BinaryDense):
            if la.encoding is not Encoding.BINARY:
                raise ConfigError(
                    f"layer {la.name!r}: encoding must be 'binary' for the MST hardware, "
                    f"not {la.encoding.value!r}"
                )
            pairs.append((la, None))
        elif isinstance(la, MultiThreshold) and pairs and pairs[-1][1] is None:
            if la.thresholds.shape[1] != 1 or la.out_scale != 1 or la.out_bias != 0:
                raise ConfigError(
                    f"layer {la.name!r}: must be one threshold per channel with out_scale 1 "
                    f"and out_bias 0 for the MST hardware, not thresholds of shape "
                    f"{la.thresholds.shape}, out_scale {la.out_scale}, out_bias {la.out_bias}"
                )
            if pairs[-1][0].name != prev:
                raise ConfigError(f"layer {la.name!r}: must follow a binary dense layer")
            pairs[-1] = (pairs[-1][0], la)
        else:
            raise ConfigError(
                f"layer {la.name!r}: {la.op} has no MST hardware; only binary dense layers "
                "(binary encoding), each optionally followed by a multithreshold"
            )
        prev = la.name
    if not pairs:
        raise ConfigError(f"network {net.name!r}: must have a binary dense layer")
    if prev != net.output:
        raise ConfigError(f"layer {net.output!r}: the output must end the chain")
    return pairs


def network_reuse(net: Network, max_depth: int | None = None) -> dict[str, ReuseTree]:
    """A reuse tree (:func:`reuse_tree`) for every binary dense layer of ``net``, by name.

    Raises :class:`ConfigError` naming a layer the MST hardware cannot compute
    (:func:`mst_layers`).
    """
    return {la.name: reuse_tree(la.weight, max_depth) for la, _ in mst_layers(net)}
