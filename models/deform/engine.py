"""Facts of the deformable gather engine that its cycle model (``sim/deform``) and its RTL
(``hdl/deform``) share, so that they cannot drift apart.

The engine keeps an input frame on chip in ``banks`` memories: image row ``y`` lives in bank
``y mod banks`` at word ``(y div banks)·W + x``, one word holding all channels of a pixel,
each bank with ``ports`` read ports. A tap's bilinear sample needs up to four corner words;
a corner is fetched only when it contributes (inside the image, non-zero bilinear weight),
so an integer position needs one fetch and a rounded variant never needs more. A *fetch
group* of taps is served together: it takes ``max over banks of ⌈distinct words in the bank
/ ports⌉`` cycles, at least 1 (a group whose samples are all 0 still takes its cycle). The
RTL serves one tap per group (``taps_per_group = 1``); the cycle model also serves whole
windows (``taps_per_group = kh·kw``, CoDeNet's parallel gather) for exploration.
"""

from __future__ import annotations

import numpy as np

from .fixed import corner_weights

__all__ = ["bank_address", "corner_requests", "group_fetch_cycles", "sample_bits"]


def sample_bits(element_bits: int, signed: bool, frac: int) -> int:
    """Width of a bilinear sample of ``element_bits``-bit elements (``signed`` or not) with
    ``frac`` offset fraction bits (0 for a rounded variant): the corner weights add up to
    ``2**(2·frac)``, so ``|sample| ≤ 2**(2·frac)·max|element|`` needs ``2·frac`` more bits, of
    the element's signedness."""
    return element_bits + 2 * frac


def bank_address(row: np.ndarray, col: np.ndarray, banks: int, width: int):
    """``(bank, word)`` of pixel ``(row, col)``."""
    return row % banks, (row // banks) * width + col


def corner_requests(y, x, frac: int, h: int, w: int):
    """The corner words a tap reads: arrays ``(rows, cols, used)`` of shape ``(4, *y.shape)``
    in the corner order (y0, x0), (y0, x0+1), (y0+1, x0), (y0+1, x0+1); ``used`` is False for
    a corner that contributes nothing and is not fetched."""
    corners = corner_weights(np.asarray(y), np.asarray(x), frac, h, w)
    rows = np.stack([c[0] for c in corners])
    cols = np.stack([c[1] for c in corners])
    used = np.stack([c[2] != 0 for c in corners])
    return rows, cols, used


def group_fetch_cycles(rows, cols, used, banks: int, ports: int, width: int) -> np.ndarray:
    """Cycles to fetch each group of requests: ``rows``, ``cols``, ``used`` have shape
    ``(R, *groups)`` (the ``R`` requests of a group along axis 0); the result has shape
    ``groups``: ``max(1, max over banks of ⌈distinct used words in the bank / ports⌉)``."""
    bank, word = bank_address(rows, cols, banks, width)
    r = rows.shape[0]
    flat_b = bank.reshape(r, -1)
    flat_w = word.reshape(r, -1)
    flat_u = used.reshape(r, -1)
    # a request is counted once per group: only if no earlier used request of the group
    # reads the same (bank, word)
    key = np.where(flat_u, flat_b * (np.int64(1) << 40) + flat_w, -1 - np.arange(r)[:, None])
    first = np.ones_like(flat_u)
    for a in range(1, r):
        first[a] = ~np.any(key[:a] == key[a][None, :], axis=0)
    counted = flat_u & first
    per_bank = np.zeros((banks, flat_b.shape[1]), dtype=np.int64)
    for a in range(r):
        np.add.at(per_bank, (flat_b[a], np.arange(flat_b.shape[1])), counted[a])
    cycles = np.maximum(1, -(-per_bank.max(axis=0) // ports))
    return cycles.reshape(rows.shape[1:])
