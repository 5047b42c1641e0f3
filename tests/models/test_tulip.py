"""The TLN cell and the TULIP mapper: executing a schedule is bit-identical to the direct
binary layer, the schedule respects the array, and bad networks get one-line errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
from codesign.models.binary import tulip, tulip_schedule, xnor_popcount
from codesign.models.binary.tln import GATES, TLNCell, full_adder, gate
from codesign.models.golden import golden, random_inputs
from codesign.models.hwconfig import ConfigError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codesign

PROP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _bits(a):
    return np.array(a, dtype=np.int64)


# -- the cell ------------------------------------------------------------------------------


def test_one_threshold_turns_a_cell_into_and_maj_or():
    x = _bits([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    cell = TLNCell()
    s = x.sum(axis=1)
    assert (cell.evaluate(x, (1, 1, 1), 1) == (s >= 1)).all()  # OR
    assert (cell.evaluate(x, (1, 1, 1), 2) == (s >= 2)).all()  # MAJ
    assert (cell.evaluate(x, (1, 1, 1), 3) == (s == 3)).all()  # AND


@pytest.mark.parametrize("name", sorted(GATES))
def test_gate_forms(name):
    w, t = gate(name)
    n = len(w)
    x = _bits([[(v >> i) & 1 for i in range(n)] for v in range(2**n)])
    fn = {
        "buf": lambda r: r[0],
        "not": lambda r: 1 - r[0],
        "and2": lambda r: r[0] & r[1],
        "or2": lambda r: r[0] | r[1],
        "nand2": lambda r: 1 - (r[0] & r[1]),
        "nor2": lambda r: 1 - (r[0] | r[1]),
        "and3": lambda r: r[0] & r[1] & r[2],
        "or3": lambda r: r[0] | r[1] | r[2],
        "maj3": lambda r: int(r.sum() >= 2),
    }[name]
    assert list(TLNCell().evaluate(x, w, t)) == [fn(r) for r in x]


def test_full_adder_from_two_evaluations():
    a, b, c = (_bits([(v >> i) & 1 for v in range(8)]) for i in range(3))
    s, carry = full_adder(a, b, c)
    assert list(s + 2 * carry) == list(a + b + c)


def test_cell_rejects_what_it_cannot_hold():
    cell = TLNCell(fan_in=4, max_weight=2)
    assert (cell.t_min, cell.t_max, cell.weight_bits, cell.threshold_bits) == (-8, 9, 3, 5)
    with pytest.raises(ValueError, match=r"^TLN weights must lie in \[-2, 2\], not 3$"):
        cell.check([1, 3], 0)
    with pytest.raises(ValueError, match=r"^TLN thresholds must lie in \[-8, 9\], not 10$"):
        cell.check([1], 10)
    with pytest.raises(ValueError, match=r"^a TLN takes at most 4 inputs, not 5$"):
        cell.check([1] * 5, 0)
    with pytest.raises(ValueError, match=r"^TLN fan_in must be at least 1, not 0$"):
        TLNCell(fan_in=0)
    with pytest.raises(ValueError, match=r"^TULIP cell must have fan_in >= 4"):
        tulip.TulipArray(cell=TLNCell(fan_in=3))
    with pytest.raises(TypeError, match=r"^TULIP pes must be an int, not 2\.0$"):
        tulip.TulipArray(pes=2.0)


# -- the mapper ----------------------------------------------------------------------------


def _popcounts(s, y):
    b = y.reshape(len(y), s.neurons, s.out_bits).astype(np.int64)
    return (b << np.arange(s.out_bits)).sum(axis=2)


@PROP
@given(
    k=st.integers(1, 80),
    m=st.integers(1, 12),
    pes=st.integers(1, 5),
    tlns=st.integers(1, 6),
    thresholded=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_schedule_execution_is_bit_identical_to_the_layer(k, m, pes, tlns, thresholded, seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 2, (m, k))
    x = rng.integers(0, 2, (40, k))
    x[0], x[1] = 0, 1  # the extremes of the popcount
    t = rng.integers(-3, k + 4, m) if thresholded else None
    s = tulip.map_layer("l", w, t, tulip.TulipArray(pes=pes, tlns=tlns))
    y = tulip.execute_layer(s, x)
    p = xnor_popcount(x, w)
    if thresholded:
        assert (y == (p >= t)).all()
    else:
        assert (_popcounts(s, y) == p).all()
    # the schedule respects the array and the bound
    assert s.steps >= s.lower_bound
    assert s.rounds == -(-m // pes)
    busy = (s.dst_kind != tulip.DST_NONE).sum()
    assert busy == s.rounds * s.ops
    assert s.src_index[s.src_kind == tulip.SRC_REG].max(initial=0) < tlns * s.registers


def test_zoo_network_runs_bit_identically():
    net = codesign.load("tfc_w1a1")
    prog = tulip.map_network(net)
    x = random_inputs(net, 300, seed=11)
    assert (tulip.execute(prog, x) == golden(net, x)).all()


def test_schedules_meet_or_nearly_meet_the_lower_bound():
    """The list schedule on tfc_w1a1 (16 PEs × 4 cells): within 5 cycles of the bound on
    each layer, whose last layer (10 neurons, one round) is bound by its serial tail."""
    prog = tulip.map_network(codesign.load("tfc_w1a1"))
    gaps = {s.name: s.steps - s.lower_bound for s in prog.layers}
    print("TULIP schedule gaps to the lower bound:", gaps)
    assert all(0 <= g <= 5 for g in gaps.values()), gaps
    # XNORs are folded: the evaluations per neuron are the full adders' two each, plus
    # the compare chain: below 2K + 2·bits(K) + bits(K + 1)
    for s in prog.layers:
        bits = s.fan_in.bit_length()
        assert s.ops <= 2 * s.fan_in + 2 * bits + (s.fan_in + 1).bit_length()


def test_mapping_is_deterministic():
    net = codesign.load("tfc_w1a1")
    a, b = tulip.map_network(net), tulip.map_network(net)
    for s, t in zip(a.layers, b.layers, strict=True):
        for f in ("src_kind", "src_index", "dst_kind", "dst_index", "weight", "threshold"):
            assert np.array_equal(getattr(s, f), getattr(t, f))


def test_networks_tulip_cannot_run_are_named():
    with pytest.raises(
        ConfigError, match=r"^layer 'fc1': dense has no TULIP mapping; TULIP maps binary_dense"
    ):
        tulip.map_network(codesign.load("jet_tagger"))
    with pytest.raises(ConfigError, match=re.escape("layer 'conv1': conv2d has no TULIP")):
        tulip.map_network(codesign.load("cnv_tiny"))


# -- the periodic shortcuts of the scheduler and the register allocator --------------------


def _joint_list_schedule(preds, n_ops, rounds, slots):
    """The definition: one list schedule of every (round, op) by priority, cycle by cycle."""
    import heapq

    succ = [[] for _ in range(n_ops)]
    for k, ps in enumerate(preds):
        for p in ps:
            succ[p].append(k)
    waiting = [len(ps) for ps in preds] * rounds
    ready = [r * n_ops + k for r in range(rounds) for k in range(n_ops) if not preds[k]]
    heapq.heapify(ready)
    step, slot = np.empty(rounds * n_ops, int), np.empty(rounds * n_ops, int)
    t = done = 0
    while done < rounds * n_ops:
        now = [heapq.heappop(ready) for _ in range(min(slots, len(ready)))]
        for s, i in enumerate(now):
            step[i], slot[i] = t, s
        for i in now:
            r, k = divmod(i, n_ops)
            for q in succ[k]:
                waiting[r * n_ops + q] -= 1
                if not waiting[r * n_ops + q]:
                    heapq.heappush(ready, r * n_ops + q)
        done, t = done + len(now), t + 1
    return step, slot, t


def _random_dag(rng, n):
    return [
        sorted(set(rng.choice(k, size=min(k, rng.integers(0, 4)), replace=False).tolist()))
        if k
        else []
        for k in range(n)
    ]


@PROP
@given(
    seed=st.integers(0, 2**31 - 1),
    k=st.integers(1, 120),
    rounds=st.integers(1, 40),
    slots=st.integers(1, 6),
    real=st.booleans(),
)
def test_scheduler_and_allocator_shortcuts_equal_the_definitions(seed, k, rounds, slots, real):
    rng = np.random.default_rng(seed)
    if real:
        g, _ = tulip._neuron_graph(k, thresholded=bool(seed & 1))
        preds = [[o[1] for o in ops if o[0] == "op"] for ops in g.operands]
    else:
        preds = _random_dag(rng, k)
    n_ops = len(preds)
    step, slot, steps, period = tulip_schedule.list_schedule(preds, n_ops, rounds, slots)
    ref_step, ref_slot, ref_steps = _joint_list_schedule(preds, n_ops, rounds, slots)
    assert np.array_equal(step, ref_step) and np.array_equal(slot, ref_slot)
    assert steps == ref_steps
    # values live from their step to the last step of a reader in the same round
    last = step.copy()
    for o, ps in enumerate(preds):
        for p in ps:
            for r in range(rounds):
                last[r * n_ops + p] = max(last[r * n_ops + p], step[r * n_ops + o])
    is_reg = np.tile(rng.random(n_ops) < 0.9, rounds)  # an op's kind, as in map_layer
    reg, size = tulip_schedule.allocate(step, slot, last, is_reg, slots, n_ops, rounds, period)
    ref_reg, ref_size = tulip_schedule.allocate(
        step, slot, last, is_reg, slots, n_ops, rounds, None
    )
    assert np.array_equal(reg, ref_reg) and size == ref_size
