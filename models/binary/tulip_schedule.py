"""Scheduling and register allocation of the TULIP mapper (:mod:`codesign.models.binary.tulip`).

- :func:`list_schedule`: every round of a layer's operation graph on a PE's cells, by
  priority (round, then the graph's order), one cycle at a time in effect;
- :func:`allocate`: registers per cell bank by a linear scan;
- :func:`critical_path`: the longest chain of dependent evaluations.

Both :func:`list_schedule` and :func:`allocate` take exact shortcuts once the rounds repeat
(see their docstrings); tests/models/test_tulip.py checks them against the plain
definitions.
"""

from __future__ import annotations

import heapq

import numpy as np

__all__ = ["allocate", "critical_path", "list_schedule"]


def _schedule_round(succ, preds, slots: int, used: list[int], start: int):
    """List-schedule one copy of the graph on the cells ``used`` leaves free (``used[t]``
    cells of step ``t`` are taken by earlier rounds; updated in place), from step
    ``start``. Returns each op's step and slot."""
    n_ops = len(preds)
    waiting = [len(ps) for ps in preds]
    ready = [k for k in range(n_ops) if not preds[k]]  # sorted, so already a heap
    st = [0] * n_ops
    sl = [0] * n_ops
    done, t = 0, start
    while done < n_ops:
        if t == len(used):
            used.append(0)
        cap = slots - used[t]
        if cap > 0 and ready:
            now = [heapq.heappop(ready) for _ in range(min(cap, len(ready)))]
            base = used[t]
            for j, o in enumerate(now):
                st[o], sl[o] = t, base + j
            used[t] = base + len(now)
            for o in now:
                for q in succ[o]:
                    waiting[q] -= 1
                    if not waiting[q]:
                        heapq.heappush(ready, q)
            done += len(now)
        t += 1
    return st, sl


def list_schedule(preds: list[list[int]], n_ops: int, rounds: int, slots: int):
    """Step and slot of every (round, op), op-major per round; see the module docstring.

    Equivalent to one list schedule of all rounds by priority (round, op): a round never
    takes a cell an earlier round wants, so rounds are scheduled one after another on the
    cells the earlier ones leave free. Once the free cells a round finds (from the first
    step with a free cell on) equal those the previous round found, every later round is
    the same schedule shifted by the same number of steps; the rest is extrapolated.

    Returns ``step``, ``slot`` (per instance ``round · n_ops + op``), the schedule's length,
    and ``(r0, delta)`` when rounds after ``r0`` are round ``r0`` shifted by multiples of
    ``delta`` steps (else None).
    """
    succ: list[list[int]] = [[] for _ in range(n_ops)]
    for k, ps in enumerate(preds):
        for p in ps:
            succ[p].append(k)
    step = np.empty(rounds * n_ops, dtype=np.int64)
    slot = np.empty(rounds * n_ops, dtype=np.int64)
    used: list[int] = []
    start, seen, period = 0, [], None
    r = 0
    while r < rounds:
        st, sl = _schedule_round(succ, preds, slots, used, start)
        step[r * n_ops : (r + 1) * n_ops] = st
        slot[r * n_ops : (r + 1) * n_ops] = sl
        prev_start = start
        while start < len(used) and used[start] == slots:
            start += 1
        free = used[start:]
        while free and free[-1] == 0:
            free.pop()
        if free == seen and r + 1 < rounds:
            delta = start - prev_start
            rest = np.arange(1, rounds - r)[:, None] * delta
            base = step[r * n_ops : (r + 1) * n_ops]
            step[(r + 1) * n_ops :] = (base[None, :] + rest).ravel()
            slot[(r + 1) * n_ops :] = np.tile(slot[r * n_ops : (r + 1) * n_ops], rounds - r - 1)
            period = (r, delta)
            break
        seen = free
        r += 1
    return step, slot, int(step.max()) + 1, period


def critical_path(preds: list[list[int]]) -> int:
    depth = [0] * len(preds)
    for k, ps in enumerate(preds):
        depth[k] = 1 + max((depth[p] for p in ps), default=0)
    return max(depth, default=0)


def _scan_bank(ids, d, last, n_ops: int, rounds: int, period, reg) -> int:
    """Linear scan over one bank's values (``ids`` sorted by definition step ``d``, ties by
    id; ``last``: step of the last read), writing ``reg[id]``; returns the bank's size.

    With ``period = (r0, delta)`` (rounds after ``r0`` are round ``r0`` shifted), the scan
    takes a snapshot of its state (free registers, and live ones with their release steps
    relative to the snapshot) every ``delta`` steps once only shifted rounds remain. When
    two snapshots in a row are equal, the windows that follow are copies of the last one
    (the same registers, one round later each) for as long as every copy exists; the scan
    copies them and goes on from there with the same state. Same result as scanning all.
    """
    free: list[int] = []
    busy: list[tuple[int, int]] = []
    count = 0
    n = len(ids)
    p = 0
    d_arr = d
    ids_l, d, last = ids.tolist(), d.tolist(), last.tolist()

    def scan_to(t_end: int) -> None:
        nonlocal p, count
        while p < n and d[p] < t_end:
            t = d[p]
            while busy and busy[0][0] <= t:
                heapq.heappush(free, heapq.heappop(busy)[1])
            if free:
                r = heapq.heappop(free)
            else:
                r, count = count, count + 1
            reg[ids_l[p]] = r
            heapq.heappush(busy, (last[p], r))
            p += 1

    def snapshot(t: int):
        while busy and busy[0][0] <= t:
            heapq.heappush(free, heapq.heappop(busy)[1])
        return tuple(sorted(free)), tuple(sorted((e - t, r) for e, r in busy)), count

    if period is not None:
        r0, delta = period
        first = (r0 + 1) * n_ops  # ids from here on belong to shifted rounds
        t = int(d_arr[ids < first].max()) + 1 if np.any(ids < first) else 0
        scan_to(t)
        before, before_p = None, p
        while p < n and delta > 0:
            snap = snapshot(t)
            if snap == before:
                window = ids[before_p:p]  # the window just scanned, from an equal state
                if not len(window):
                    break  # so are all later windows: nothing is left to scan
                copies = rounds - 1 - int(window.max()) // n_ops
                if copies > 0:
                    shift = np.arange(1, copies + 1)[:, None] * n_ops
                    reg[(window[None, :] + shift).ravel()] = np.tile(reg[window], copies)
                    t += copies * delta
                    skip = int(np.searchsorted(d_arr, t, side="left")) - p
                    if skip != copies * len(window):  # pragma: no cover - guards the proof
                        raise RuntimeError("TULIP register allocation: periodicity broken")
                    p += skip
                    free[:] = list(snap[0])
                    heapq.heapify(free)
                    busy[:] = [(e + t, r) for e, r in snap[1]]
                    heapq.heapify(busy)
                break
            before, before_p = snap, p
            scan_to(t + delta)
            t += delta
    scan_to(np.iinfo(np.int64).max)
    return count


def allocate(step, slot, uses_last, is_reg, slots: int, n_ops: int, rounds: int, period):
    """Linear-scan register allocation per bank (see :func:`_scan_bank`); returns each
    value's register and the registers per bank."""
    n = len(step)
    reg = np.full(n, -1, dtype=np.int64)
    size = 0
    for bank in range(slots):
        ids = np.flatnonzero((slot == bank) & is_reg)
        ids = ids[np.argsort(step[ids], kind="stable")]
        count = _scan_bank(ids, step[ids], uses_last[ids], n_ops, rounds, period, reg)
        size = max(size, count)
    return reg, size
