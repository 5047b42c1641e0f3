"""The analytic mode: closed-form II and latency over many foldings at once, vectorised."""

from __future__ import annotations

import numpy as np
from codesign.models.hwconfig import AUTO_FIFO_MAX, ConfigError, Design, StageKind, readers
from codesign.models.linebuffer import READ_LATENCY

# -- analytic mode ---------------------------------------------------------------------------


def _fold(values, n: int) -> np.ndarray:
    a = np.asarray(values, dtype=np.int64)
    return np.broadcast_to(a, (n,)) if a.ndim == 0 else a


def analytic(design: Design, pe=None, simd=None) -> dict[str, np.ndarray]:
    """Closed-form initiation interval and latency of ``design``'s network for many foldings
    at once (design-space exploration), vectorised with numpy.

    Parameters
    ----------
    design
        Supplies the network and the stages; its own folding is used where ``pe`` or
        ``simd`` does not name a stage.
    pe, simd
        Stage name → array of values (one per design point; all arrays of one length
        ``N``). The caller guarantees validity (see :func:`random_foldings`).

    Returns
    -------
    dict
        ``ii`` (ideal initiation interval: the slowest stage's cycles per frame), ``latency``
        (first input beat → first output beat, input always valid: the sum of the stages'
        fill times, FIFOs and width converters; an estimate — :func:`simulate` is exact),
        ``multipliers`` (Σ PE·SIMD, PE·SIMD·N/M for an N:M sparse MVAU) and
        ``cycles__<stage>`` per stage, each of shape ``(N,)``.

    Raises
    ------
    ConfigError
        For a design with a deformable stage: its cycles depend on each frame's offsets,
        which a closed form does not see (:func:`~codesign.sim.dataflow.simulate` takes the
        frames).
    """
    for s in design.stages:
        if s.kind is StageKind.DEFORM:
            raise ConfigError(
                f"stage {s.name!r}: a deformable stage's cycles depend on its offsets; the "
                "analytic model has no closed form for them (simulate with the frames)"
            )
    pe, simd = dict(pe or {}), dict(simd or {})
    n = max([len(np.atleast_1d(v)) for v in (*pe.values(), *simd.values())] or [1])
    out: dict[str, np.ndarray] = {}
    ii = np.zeros(n, dtype=np.int64)
    mults = np.zeros(n, dtype=np.int64)
    # per producer (stage name, None for the input): first and last output beat of frame 0,
    # and its elements per beat
    done: dict = {}
    read = readers(design.stages)
    for s in design.stages:
        cfg = design.config[s.name]
        p = _fold(pe.get(s.name, cfg.pe), n)
        q = _fold(simd.get(s.name, cfg.simd), n)
        matrix = s.kind in (StageKind.MVAU, StageKind.CONV) and not s.depthwise
        n_in, n_out = (q, p) if matrix else (p, p)
        beats_in = s.input.size // n_in
        if None not in done:  # the source: one beat per cycle from cycle 0
            done[None] = (np.zeros(n), np.zeros(n) + beats_in - 1, n_in)
        firsts, lasts = [], []
        for port, src in enumerate(s.sources):
            first, last, prev_out = done[src]
            if src is not None or len(read[None]) > 1:  # width converter, then the FIFO
                # a gathering converter offers its first beat after k inputs, a splitting
                # one its last piece k - 1 cycles after its first; the FIFO adds two
                up, down = n_in > prev_out, n_in < prev_out
                k_up = n_in // np.maximum(prev_out, 1)
                k_down = prev_out // np.maximum(n_in, 1)
                first = first + np.where(up, k_up, np.where(down, 1, 0)) + 2
                last = last + np.where(down, k_down, np.where(up, 1, 0)) + 2
                # a FIFO of depth 2 (one slot and its output register) passes a beat every
                # second cycle at most
                given = cfg.fifo_depth if port == 0 else cfg.fifo_depth_b
                if s.kind is StageKind.ADD:
                    depth = np.full(n, design.fifo_depth(s, port))
                elif given is not None:
                    depth = np.full(n, given)
                else:
                    depth = np.maximum(2, np.minimum(beats_in, AUTO_FIFO_MAX))
                last = np.where(depth == 2, np.maximum(last, first + 2 * (beats_in - 1)), last)
            firsts.append(first)
            lasts.append(last)
        first, last = np.maximum.reduce(firsts), np.maximum.reduce(lasts)
        span = np.maximum(last - first, 0)
        rate = np.where(span > 0, (beats_in - 1) / np.maximum(span, 1), 1.0)
        if s.kind is StageKind.CONV:
            c, h, w = s.input.shape
            kh, kw = s.main.kernel
            (dh, dw), (ph, pw) = s.main.dilation, s.main.padding
            g = c // n_in
            tap = np.maximum(0, ((kh - 1) * dh - ph) * w * g + ((kw - 1) * dw - pw) * g + g - 1)
            if matrix:
                sf, nf = s.mw // q, s.mh // p
                cycles = np.maximum(h * w * c // n_in, s.vectors * sf * nf)
            else:
                sf, nf = kh * kw * (c // p), 1
                cycles = np.maximum(h * w * c // n_in, s.vectors * (kh * kw + 1) * (c // p))
            fo = first + tap / rate + sf + 2 + READ_LATENCY
            lo = np.maximum(fo + cycles - sf, last + sf * nf + 1 + READ_LATENCY)
        elif s.kind is StageKind.MVAU:
            sf, nf = s.mw // q, s.mh // p
            cycles = sf * nf
            fo = np.maximum(last, first + sf - 1) + 2
            lo = fo + (nf - 1) * sf
        elif s.global_pool:  # outputs during the frame's last pixel
            c, h, w = s.input.shape
            g = c // p
            cycles = h * w * g
            fo, lo = last - (g - 1) + 1, last + 1
        elif s.kind is StageKind.POOL:
            c, h, w = s.input.shape
            kh, kw = s.main.kernel
            _, oh, ow = s.output.shape
            g = c // p
            cycles = np.maximum(h * w, oh * ow * kh * kw) * g
            tap = (kh - 1) * w * g + (kw - 1) * g + g - 1
            fo = first + tap / rate + kh * kw + 1 + READ_LATENCY
            lo = np.maximum(fo + cycles - kh * kw, last + kh * kw + 1 + READ_LATENCY)
        else:
            cycles = s.output.size // p
            fo, lo = first + 1, last + 1
        # the credit pipeline: a result enters the queue ``latency`` cycles after its
        # step (the unpipelined unit's output register was one), and leaves it two later
        delay = _pipeline_delay(design, s, p, q)
        fo, lo = fo + delay, lo + delay
        cycles = np.asarray(cycles, dtype=np.int64)
        out[f"cycles__{s.name}"] = cycles
        ii = np.maximum(ii, cycles)
        sparse = cfg.sparsity if matrix else None  # N:M: SIMD·N/M products a PE
        mults += (p * q * sparse[0] // sparse[1] if sparse else p * q) if matrix else p
        done[s.name] = (fo, lo, n_out)
        out[f"first__{s.name}"] = np.rint(fo).astype(np.int64)
    first = done[design.stages[-1].name][0]
    out.update(ii=ii, latency=np.rint(first).astype(np.int64), multipliers=mults)
    return out


def _pipeline_delay(design: Design, s, pe: np.ndarray, simd: np.ndarray) -> np.ndarray:
    """Cycles a stage's credit pipeline adds to its output times over one output register,
    per design point: its latency depends on the folding (adder trees, activation lanes)
    and on the memory style an automatic one resolves to at that folding (a block-RAM
    read register)."""
    from codesign.models.pipelining import stage_pipeline

    mode = design.config.pipeline
    matrix = s.kind in (StageKind.MVAU, StageKind.CONV) and not s.depthwise
    q = simd if matrix else np.ones_like(simd)
    width = int(q.max()) + 1
    key = pe * width + q
    present = np.flatnonzero(np.bincount(key))
    table = np.zeros(int(present[-1]) + 1, dtype=np.int64)
    for u in present.tolist():  # a table over the distinct foldings, gathered
        p_, q_ = divmod(u, width)
        c = design.point_config(s, p_, q_ if matrix else None)
        pl = stage_pipeline(s, c, mode)
        if pl is None:
            continue
        if s.kind is StageKind.POOL:  # over the window's read stages and a reducer register
            table[u] = pl.latency + 1 - READ_LATENCY
        else:
            table[u] = pl.latency + (0 if matrix else 1)
    return table[key]


def random_foldings(design: Design, n: int, seed: int = 0) -> tuple[dict, dict]:
    """``n`` random valid foldings of ``design``'s stages: (pe, simd), each stage name →
    integer array of ``n`` values drawn uniformly from the stage's valid choices."""
    rng = np.random.default_rng(seed)
    pe, simd = {}, {}
    for s in design.stages:
        pe[s.name] = rng.choice(np.asarray(s.pe_choices()), n)
        simd[s.name] = rng.choice(np.asarray(s.simd_choices()), n)
    return pe, simd
