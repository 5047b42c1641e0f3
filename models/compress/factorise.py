"""The float factorisations behind :mod:`codesign.models.compress.decompose`: the balanced
truncated SVD of a matrix and a canonical polyadic (CP) decomposition by (damped) alternating
least squares, in numpy."""

from __future__ import annotations

import numpy as np

from ..errors import DescriptionError

__all__ = ["als_sweeps", "check_rank", "cp_als", "cp_tensor", "svd_factors"]


def check_rank(rank, full: int | None, layer: str | None = None) -> None:
    """``rank`` must be an int of at least 1 (and below ``full`` when given): a ValueError,
    or a DescriptionError naming ``layer`` and the field ``rank`` when ``layer`` is given."""
    ok = isinstance(rank, int | np.integer) and not isinstance(rank, bool) and rank >= 1
    if full is not None:
        ok = ok and rank < full
    if not ok:
        rule = "a positive int" if full is None else f"an int in [1, {full - 1}]"
        if layer is None:
            raise ValueError(f"rank must be {rule}, not {rank!r}")
        raise DescriptionError(f"must be {rule}, not {rank!r}", layer=layer, field="rank")


def svd_factors(w, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """The balanced rank-``rank`` truncated SVD of the matrix ``w`` (out x in).

    Returns ``(u, v)``, float64 of shapes (out, rank) and (rank, in), with the square root
    of each singular value in both factors: ``u @ v`` is the best rank-``rank``
    approximation of ``w`` in the Frobenius norm (Eckart-Young), and equals ``w`` at full
    rank.
    """
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"w must be a matrix, not an array of shape {w.shape}")
    check_rank(rank, min(w.shape) + 1)
    uu, s, vh = np.linalg.svd(w, full_matrices=False)
    root = np.sqrt(s[:rank])
    return uu[:, :rank] * root, root[:, None] * vh[:rank]


def cp_tensor(factors) -> np.ndarray:
    """The tensor ``sum_r outer(f_0[:, r], f_1[:, r], ...)`` of CP factors (one matrix per
    mode, each with R columns)."""
    letters = "abcdefghij"[: len(factors)]
    spec = ",".join(f"{c}z" for c in letters) + "->" + letters
    return np.einsum(spec, *factors)


def cp_als(
    tensor,
    rank: int,
    *,
    seed: int = 0,
    iters: int = 500,
    tol: float = 1e-13,
    ridge: float = 0.0,
) -> list[np.ndarray]:
    """A rank-``rank`` canonical polyadic (CP) decomposition of ``tensor`` by alternating
    least squares.

    Parameters
    ----------
    tensor
        A real array of two to ten dimensions.
    rank
        Number of rank-one terms, at least 1.
    seed
        Seeds the columns of the start that the unfoldings' singular vectors do not fill
        (modes shorter than ``rank``): the result is a function of the arguments.
    iters
        Most sweeps (one least-squares update of every mode each).
    tol
        Stop when a sweep lowers the relative error by less than this.
    ridge
        Relative Tikhonov damping of every update (``ridge`` times the mean of the normal
        matrix's diagonal is added to it). 0 solves exactly; a small value keeps the
        diverging, cancelling terms that ALS finds for tensors of no exact low rank (CP
        degeneracy) from growing, at the price of a slightly larger residual.

    Returns
    -------
    list of numpy.ndarray
        One float64 factor per mode, of shape (size of that mode, rank), such that
        :func:`cp_tensor` of them approximates ``tensor``; every mode's columns but the
        first's have unit norm (the first carries the terms' weights).

    Notes
    -----
    The start is the unfoldings' leading left singular vectors (as tensorly's ``parafac``
    and Mixed-TD start); each update solves the normal equations of one mode with the
    Hadamard product of the other modes' Gram matrices (pseudo-inverse, so that a
    rank-deficient mode cannot fail).
    """
    t = np.asarray(tensor, dtype=np.float64)
    if t.ndim < 2 or t.ndim > 10:
        raise ValueError(f"tensor must have 2 to 10 dimensions, not {t.ndim}")
    check_rank(rank, None)
    if not isinstance(iters, int) or isinstance(iters, bool) or iters < 1:
        raise ValueError(f"iters must be a positive int, not {iters!r}")
    if not ridge >= 0:
        raise ValueError(f"ridge must be a nonnegative number, not {ridge!r}")
    rng = np.random.default_rng(seed)
    factors = []
    for mode, size in enumerate(t.shape):
        unfolded = np.moveaxis(t, mode, 0).reshape(size, -1)
        u = np.linalg.svd(unfolded, full_matrices=False)[0]
        k = min(rank, u.shape[1])
        f = np.empty((size, rank))
        f[:, :k] = u[:, :k]
        f[:, k:] = rng.standard_normal((size, rank - k))
        factors.append(f)
    return als_sweeps(t, factors, list(range(t.ndim)), iters, tol, ridge)


def als_sweeps(t: np.ndarray, factors: list, free: list[int], iters: int, tol: float, ridge: float):
    """Sweeps of ALS over the modes ``free`` (the others stay as they are), at most ``iters``,
    until a sweep gains less than ``tol``; the first free mode carries the terms' weights,
    the other free modes' columns are normalised."""
    factors = list(factors)
    letters = "abcdefghij"[: t.ndim]
    rank = factors[0].shape[1]
    norm = float(np.linalg.norm(t)) or 1.0
    previous = np.inf
    for _ in range(iters):
        for mode in free:
            others = [m for m in range(t.ndim) if m != mode]
            gram = np.ones((rank, rank))
            for m in others:
                gram *= factors[m].T @ factors[m]
            spec = letters + "," + ",".join(f"{letters[m]}z" for m in others)
            mttkrp = np.einsum(spec + f"->{letters[mode]}z", t, *(factors[m] for m in others))
            if ridge:  # positive definite: a solve
                gram += ridge * float(np.mean(np.diag(gram))) * np.eye(rank)
                factors[mode] = np.linalg.solve(gram, mttkrp.T).T
            else:
                factors[mode] = mttkrp @ np.linalg.pinv(gram)
        for m in free[1:]:  # the terms' weights into the first free mode
            scale = np.linalg.norm(factors[m], axis=0)
            scale[scale == 0] = 1.0
            factors[m] = factors[m] / scale
            factors[free[0]] = factors[free[0]] * scale
        if len(free) == 1:
            break  # one update is the exact least-squares answer
        error = float(np.linalg.norm(t - cp_tensor(factors))) / norm
        if previous - error < tol:
            break
        previous = error
    return factors
