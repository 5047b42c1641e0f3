"""The TULIP mapper: binary layers onto a SIMD array of threshold-logic processing elements.

The array (after TULIP, Wagle, Khatri and Vrudhula, ICCD 2020) has ``pes`` processing
elements (PEs) working in SIMD; a PE is ``tlns`` TLN cells
(:class:`~codesign.models.binary.tln.TLNCell`),
each with a *local memory*: a register bank that only it writes (every cell of the PE reads
all banks) and, per schedule step, the weights and threshold it evaluates with. One step is
one clock cycle: every busy cell reads up to ``fan_in`` operand bits, evaluates
``[Σ wᵢ·aᵢ ≥ T]`` and writes one bit at the end of the cycle.

Lowering one neuron (``y = [popcount(XNOR(x, w)) ≥ t]`` over a fan-in ``K``):

- **XNOR.** The weight bits are constants, so ``XNOR(x, w)`` is ``x`` (``w = 1``) or
  ``1 − x`` (``w = 0``). The mapper folds it into the cell that reads the input: weight
  ``−a`` instead of ``a`` and threshold ``T − a``. XNORs cost no evaluation; they are the
  signs of the weights in the local memory.
- **Popcount adder tree.** A carry-save (Wallace) tree of full adders, each a carry then a
  sum evaluation (:func:`~codesign.models.binary.tln.full_adder`): leaves in groups of three, every
  two subtrees merged and reduced to at most two bits per column, and the root reduced to
  one bit per column with half adders. The tree is built in post-order, so scheduling in
  creation order finishes subtrees before starting new ones and few bits are live at once.
- **Threshold compare.** Bit-serially from the least significant bit:
  ``g₁ = [p₀ ≥ t₀]``, ``gⱼ₊₁ = [pⱼ + gⱼ ≥ 1 + tⱼ]`` (OR when ``tⱼ = 0``, AND when ``tⱼ = 1``),
  the threshold bits ``tⱼ`` of the neuron living in the cells' thresholds. A layer without a
  threshold outputs the popcount bits instead.

All neurons of a layer share one operation graph; only the local-memory contents differ, so
the PEs run one instruction stream (SIMD). Scheduling a layer of ``M`` neurons on ``P`` PEs:
the PE runs ``R = ⌈M / P⌉`` *rounds* (copies of the graph) and the mapper list-schedules all
``R`` copies together on the PE's ``tlns`` cells: each cycle it starts, in priority order (round,
then creation order), up to ``tlns`` operations whose operands were computed in earlier
cycles. A later round fills the cells the current round's serial tail leaves idle.

Optimality. No schedule can be shorter than
``max(⌈R·ops / tlns⌉, critical path of one neuron)`` cycles (every evaluation takes a cell
for a cycle; a chain of dependent evaluations takes a cycle each). :class:`LayerSchedule`
reports this ``lower_bound`` beside its ``steps``; the list schedule is within Graham's
``2 − 1/tlns`` factor of the optimum in general, and on the zoo's layers it meets the bound
or comes within a few cycles of it (tests/models/test_tulip.py prints the gaps). The mapper
does not try to shorten the graph itself (fewer evaluations): the tree uses the fewest full
adders a carry-save counter can (one per bit removed), and folding the XNORs removes the rest.

Registers are assigned after scheduling, per bank, by a linear scan over the cycles: a bit
lives from the cycle after it is written to its last read, and its register is free for a
write in the cycle of that last read (reads happen before writes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..activations import MultiThreshold
from ..hwconfig import ConfigError
from ..ir import Network
from ..layers import Input
from ..qtype import Kind
from .tln import TLNCell
from .tulip_schedule import allocate, critical_path, list_schedule
from .xnor import BinaryDense, Encoding

__all__ = [
    "DST_NONE",
    "DST_OUT",
    "DST_REG",
    "SRC_INPUT",
    "SRC_REG",
    "SRC_ZERO",
    "LayerSchedule",
    "TulipArray",
    "TulipProgram",
    "check_in_width",
    "execute",
    "execute_layer",
    "map_layer",
    "map_network",
]

#: Operand kinds (``src_kind``): the constant 0, an input bit of the layer, a register.
SRC_ZERO, SRC_INPUT, SRC_REG = 0, 1, 2
#: Destination kinds (``dst_kind``): idle cell, a register of the cell's bank, an output bit.
DST_NONE, DST_REG, DST_OUT = 0, 1, 2


@dataclass(frozen=True)
class TulipArray:
    """The PE array's shape: ``pes`` SIMD processing elements of ``tlns`` cells each.

    Defaults: 16 PEs and 4 cells per PE. Four cells let a PE keep two full adders in flight
    (each a carry then a sum); TULIP's PE is likewise a handful of neurons. The PE count is
    the throughput knob (``codesign bnn --pes``).
    """

    pes: int = 16
    tlns: int = 4
    cell: TLNCell = field(default_factory=TLNCell)

    def __post_init__(self) -> None:
        for name in ("pes", "tlns"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"TULIP {name} must be an int, not {v!r}")
            if v < 1:
                raise ValueError(f"TULIP {name} must be a positive int, not {v!r}")
        if not isinstance(self.cell, TLNCell):
            raise TypeError(f"TULIP cell must be a TLNCell, not {self.cell!r}")
        if self.cell.fan_in < 4 or self.cell.max_weight < 2:
            raise ValueError(
                "TULIP cell must have fan_in >= 4 and max_weight >= 2 to evaluate a full "
                f"adder's sum [a + b + c - 2*carry >= 1] in one cell, not {self.cell!r}"
            )


# -- the operation graph of one neuron ----------------------------------------------------


@dataclass
class _Graph:
    """One neuron's evaluations. An operand is ``("x", i)``, ``("op", k)`` or ``("zero",)``."""

    operands: list[list[tuple]] = field(default_factory=list)
    weights: list[list[int]] = field(default_factory=list)
    threshold: list[int] = field(default_factory=list)
    t_bit: list[int] = field(default_factory=list)  #: threshold bit added to T, or -1
    out_bit: list[int] = field(default_factory=list)  #: output bit written, or -1

    def op(self, operands, weights, threshold, t_bit=-1) -> tuple:
        self.operands.append(list(operands))
        self.weights.append(list(weights))
        self.threshold.append(threshold)
        self.t_bit.append(t_bit)
        self.out_bit.append(-1)
        return ("op", len(self.threshold) - 1)


def _reduce(g: _Graph, cols: list[list[tuple]], final: bool) -> list[list[tuple]]:
    """Full adders (and, when ``final``, half adders) until every column holds at most two
    bits (one when ``final``)."""
    j = 0
    while j < len(cols):
        col = cols[j]
        while len(col) >= 3 or (final and len(col) == 2):
            n = 3 if len(col) >= 3 else 2
            ins, col[:] = col[:n], col[n:]
            carry = g.op(ins, [1] * n, 2)
            col.append(g.op([*ins, carry], [1] * n + [-2], 1))
            if j + 1 == len(cols):
                cols.append([])
            cols[j + 1].append(carry)
        j += 1
    return cols


def _tree(g: _Graph, lo: int, hi: int) -> list[list[tuple]]:
    if hi - lo <= 3:
        return _reduce(g, [[("x", i) for i in range(lo, hi)]], final=False)
    mid = lo + 3 * math.ceil((hi - lo) / 6)  # leaf groups of three stay whole
    left, right = _tree(g, lo, mid), _tree(g, mid, hi)
    cols = [
        (left[j] if j < len(left) else []) + (right[j] if j < len(right) else [])
        for j in range(max(len(left), len(right)))
    ]
    return _reduce(g, cols, final=False)


def _neuron_graph(k: int, thresholded: bool) -> tuple[_Graph, int]:
    """The graph of one neuron of fan-in ``k``; returns it and its output bits."""
    g = _Graph()
    cols = _reduce(g, _tree(g, 0, k), final=True)
    width = k.bit_length()  # popcount bits; columns above are provably 0
    bits = [cols[j][0] if j < len(cols) and cols[j] else ("zero",) for j in range(width)]
    if thresholded:
        tw = (k + 1).bit_length()  # thresholds are clamped to [0, K + 1]
        bits += [("zero",)] * (tw - width)
        acc = g.op([bits[0]], [1], 0, t_bit=0)
        for j in range(1, tw):
            acc = g.op([bits[j], acc], [1, 1], 1, t_bit=j)
        g.out_bit[acc[1]] = 0
        outs = 1
    else:
        readers = _readers(g)
        for j, b in enumerate(bits):
            if b[0] == "op" and not readers[b[1]]:
                g.out_bit[b[1]] = j
            else:
                g.out_bit[g.op([b], [1], 1)[1]] = j
        outs = width
    return _prune(g), outs


def _readers(g: _Graph) -> list[list[int]]:
    readers: list[list[int]] = [[] for _ in g.threshold]
    for k, ops in enumerate(g.operands):
        for o in ops:
            if o[0] == "op":
                readers[o[1]].append(k)
    return readers


def _prune(g: _Graph) -> _Graph:
    """Drop evaluations no output depends on (carries into provably-zero columns)."""
    live = [b >= 0 for b in g.out_bit]
    for k in range(len(live) - 1, -1, -1):
        if live[k]:
            for o in g.operands[k]:
                if o[0] == "op":
                    live[o[1]] = True
    new = {k: i for i, k in enumerate(k for k in range(len(live)) if live[k])}
    out = _Graph()
    for k in new:
        ops = [("op", new[o[1]]) if o[0] == "op" else o for o in g.operands[k]]
        out.op(ops, g.weights[k], g.threshold[k], g.t_bit[k])
        out.out_bit[-1] = g.out_bit[k]
    return out


# -- schedules -----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class LayerSchedule:
    """One layer mapped onto the array.

    The control arrays (``steps × tlns [× fan_in]``) are shared by every PE; ``weight`` and
    ``threshold`` (``pes × steps × tlns [× fan_in]``) are each cell's local memory. A
    register operand's ``src_index`` is ``bank · registers + index``; an output
    destination writes bit ``dst_index`` of neuron ``dst_round · pes + pe``, which is
    element ``neuron · out_bits + dst_index`` of the layer's output bits.
    """

    name: str
    fan_in: int
    neurons: int
    out_bits: int  #: 1 for a thresholded layer, else the popcount's bits
    thresholded: bool
    pes: int
    tlns: int
    rounds: int
    ops: int  #: evaluations per neuron
    critical_path: int  #: longest chain of dependent evaluations of one neuron
    registers: int  #: registers per bank
    src_kind: np.ndarray
    src_index: np.ndarray
    dst_kind: np.ndarray
    dst_index: np.ndarray
    dst_round: np.ndarray
    weight: np.ndarray
    threshold: np.ndarray

    @property
    def steps(self) -> int:
        """Cycles the layer takes."""
        return int(self.dst_kind.shape[0])

    @property
    def lower_bound(self) -> int:
        """No schedule of this graph on this array is shorter (see the module docstring)."""
        return max(-(-self.rounds * self.ops // self.tlns), self.critical_path)

    @property
    def evaluations(self) -> int:
        """TLN evaluations per classification (idle PEs of a last round not counted)."""
        return self.ops * self.neurons

    def summary(self) -> dict:
        return {
            "layer": self.name,
            "neurons": self.neurons,
            "fan_in": self.fan_in,
            "rounds": self.rounds,
            "ops_per_neuron": self.ops,
            "critical_path": self.critical_path,
            "cycles": self.steps,
            "lower_bound": self.lower_bound,
            "registers_per_bank": self.registers,
            "utilisation": round(self.evaluations / (self.steps * self.pes * self.tlns), 4),
        }


def map_layer(
    name: str, weight: np.ndarray, thresholds: np.ndarray | None, array: TulipArray
) -> LayerSchedule:
    """Map one binary layer: ``weight`` (M, K) of bits (FINN's binary encoding),
    ``thresholds`` (M,) integers compared as ``popcount ≥ t`` or None (the output is the
    popcount). Deterministic."""
    w = np.asarray(weight)
    if w.ndim != 2 or w.size == 0 or not np.all((w == 0) | (w == 1)):
        raise ValueError(f"layer {name!r}: weight must be a non-empty (M, K) array of bits")
    m, k = w.shape
    g, out_bits = _neuron_graph(k, thresholds is not None)
    n_ops, fan = len(g.threshold), array.cell.fan_in
    preds = [[o[1] for o in ops if o[0] == "op"] for ops in g.operands]
    rounds = -(-m // array.pes)
    step, slot, steps, period = list_schedule(preds, n_ops, rounds, array.tlns)

    # operand structure of the graph (per op, per operand position)
    kind = np.zeros((n_ops, fan), dtype=np.int64)
    index = np.zeros((n_ops, fan), dtype=np.int64)
    base_w = np.zeros((n_ops, fan), dtype=np.int64)
    for o, (ops, ws) in enumerate(zip(g.operands, g.weights, strict=True)):
        for f, (opd, wt) in enumerate(zip(ops, ws, strict=True)):
            base_w[o, f] = wt
            if opd[0] == "x":
                kind[o, f], index[o, f] = SRC_INPUT, opd[1]
            elif opd[0] == "op":
                kind[o, f], index[o, f] = SRC_REG, opd[1]
    out_bit = np.asarray(g.out_bit, dtype=np.int64)

    # registers: every op that is read by another holds its value until its last read
    inst = np.arange(rounds * n_ops)
    r_of, o_of = np.divmod(inst, n_ops)
    last = step.copy()
    reads = kind[o_of] == SRC_REG  # (instances, fan)
    src = (r_of[:, None] * n_ops + index[o_of])[reads]
    np.maximum.at(last, src, np.broadcast_to(step[:, None], reads.shape)[reads])
    is_reg = out_bit[o_of] < 0
    reg, registers = allocate(step, slot, last, is_reg, array.tlns, n_ops, rounds, period)
    registers = max(registers, 1)

    # control arrays, shared by the PEs
    src_kind = np.zeros((steps, array.tlns, fan), dtype=np.uint8)
    src_index = np.zeros((steps, array.tlns, fan), dtype=np.int64)
    dst_kind = np.zeros((steps, array.tlns), dtype=np.uint8)
    dst_index = np.zeros((steps, array.tlns), dtype=np.int64)
    dst_round = np.zeros((steps, array.tlns), dtype=np.int64)
    ik = kind[o_of]
    src_kind[step, slot] = ik
    opnd = r_of[:, None] * n_ops + index[o_of]  # the instance a register operand reads
    flat_reg = slot[np.clip(opnd, 0, len(inst) - 1)] * registers + reg[np.clip(opnd, 0, None)]
    src_index[step, slot] = np.where(
        ik == SRC_REG, flat_reg, np.where(ik == SRC_INPUT, index[o_of], 0)
    )
    dst_kind[step, slot] = np.where(is_reg, DST_REG, DST_OUT)
    dst_index[step, slot] = np.where(is_reg, reg, out_bit[o_of])
    dst_round[step, slot] = r_of

    # local memories: fold each neuron's XNOR polarities and threshold bits into (w, T)
    neuron = r_of[:, None] * array.pes + np.arange(array.pes)  # (instances, pes)
    active = neuron < m
    nidx = np.where(active, neuron, 0)
    leaf = kind == SRC_INPUT  # (ops, fan)
    zero = w.astype(np.uint8) == 0
    leaf_at = np.where(leaf, index, 0)[o_of]  # (instances, fan)
    flip = zero[nidx[:, :, None], leaf_at[:, None, :]] & leaf[o_of][:, None, :]  # inst, pes, fan
    bw = base_w.astype(np.int8)[o_of][:, None, :]
    wts = np.where(flip, -bw, bw)
    thr = np.asarray(g.threshold, dtype=np.int16)[o_of][:, None] - np.where(flip, bw, 0).sum(
        axis=2, dtype=np.int16
    )
    tb = np.asarray(g.t_bit, dtype=np.int64)[o_of]
    if thresholds is not None:
        t = np.clip(np.ceil(np.asarray(thresholds, dtype=np.float64)), 0, k + 1).astype(np.int64)
        bits = (t[nidx] >> np.clip(tb, 0, None)[:, None]) & 1
        thr = thr + np.where((tb >= 0)[:, None], bits, 0)
    wts = np.where(active[:, :, None], wts, 0)
    thr = np.where(active, thr, array.cell.t_max)
    array.cell.check(wts, thr)
    weight_mem = np.zeros((array.pes, steps, array.tlns, fan), dtype=np.int8)
    thr_mem = np.full((array.pes, steps, array.tlns), array.cell.t_max, dtype=np.int16)
    weight_mem[:, step, slot] = wts.transpose(1, 0, 2)
    thr_mem[:, step, slot] = thr.T
    return LayerSchedule(
        name=name,
        fan_in=k,
        neurons=m,
        out_bits=out_bits,
        thresholded=thresholds is not None,
        pes=array.pes,
        tlns=array.tlns,
        rounds=rounds,
        ops=n_ops,
        critical_path=critical_path(preds),
        registers=registers,
        src_kind=src_kind,
        src_index=src_index,
        dst_kind=dst_kind,
        dst_index=dst_index,
        dst_round=dst_round,
        weight=weight_mem,
        threshold=thr_mem,
    )


def execute_layer(s: LayerSchedule, x: np.ndarray) -> np.ndarray:
    """Run the schedule the way the array does, cycle by cycle: ``x`` (N, K) of bits →
    (N, neurons · out_bits) output bits."""
    x = np.asarray(x, dtype=np.int64)
    n = len(x)
    pes = np.arange(s.pes)
    regs = np.zeros((n, s.pes, s.tlns * s.registers), dtype=np.int64)
    out = np.zeros((n, s.neurons * s.out_bits), dtype=np.uint8)
    for t in range(s.steps):
        results = []
        for c in range(s.tlns):
            if s.dst_kind[t, c] == DST_NONE:
                continue
            acc = np.zeros((n, s.pes), dtype=np.int64)
            for f in range(s.src_kind.shape[2]):
                kind, idx = s.src_kind[t, c, f], s.src_index[t, c, f]
                if kind == SRC_INPUT:
                    acc += x[:, idx, None] * s.weight[:, t, c, f]
                elif kind == SRC_REG:
                    acc += regs[:, :, idx] * s.weight[:, t, c, f]
            results.append((c, acc >= s.threshold[:, t, c]))
        for c, y in results:
            if s.dst_kind[t, c] == DST_REG:
                regs[:, :, c * s.registers + s.dst_index[t, c]] = y
            else:
                neuron = s.dst_round[t, c] * s.pes + pes
                ok = neuron < s.neurons
                out[:, neuron[ok] * s.out_bits + s.dst_index[t, c]] = y[:, ok]
    return out


# -- networks ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TulipProgram:
    """A network mapped onto one array: its layers run one after another per frame."""

    name: str
    array: TulipArray
    layers: tuple[LayerSchedule, ...]

    @property
    def input_bits(self) -> int:
        return self.layers[0].fan_in

    @property
    def outputs(self) -> int:
        """Output elements per frame (the last layer's neurons)."""
        return self.layers[-1].neurons

    @property
    def output_bits(self) -> int:
        """Bits of one output element (1, or the last layer's popcount bits)."""
        return self.layers[-1].out_bits

    @property
    def steps(self) -> int:
        """Cycles of computation per frame (every layer's schedule)."""
        return sum(s.steps for s in self.layers)

    @property
    def registers(self) -> int:
        """Registers per bank the hardware needs (the largest layer's)."""
        return max(s.registers for s in self.layers)

    def phases(self, in_width: int) -> tuple[int, int, int]:
        """Cycles of a frame's three phases on the array (:mod:`codesign.hdl.binary.tulip`) with the
        input always valid and the output always ready: input beats of ``in_width`` bits,
        schedule steps, output beats (one element each)."""
        check_in_width(self, in_width)
        return self.input_bits // in_width, self.steps, self.outputs


def check_in_width(program: TulipProgram, in_width: int) -> None:
    """Raise :class:`~codesign.models.hwconfig.ConfigError` unless ``in_width`` input bits per beat
    divide the network's input."""
    if not isinstance(in_width, int) or isinstance(in_width, bool) or in_width < 1:
        raise ConfigError(f"TULIP in_width must be a positive int, not {in_width!r}")
    if program.input_bits % in_width:
        raise ConfigError(
            f"TULIP in_width must divide the {program.input_bits} input bits of "
            f"{program.name!r}, not {in_width}"
        )


def _binary_chain(net: Network) -> list[tuple[BinaryDense, MultiThreshold | None]]:
    """The network as binary dense layers each followed by at most one sign threshold."""
    layers = [la for la in net.layers if not isinstance(la, Input)]
    chain: list[tuple[BinaryDense, MultiThreshold | None]] = []
    i = 0
    while i < len(layers):
        la = layers[i]
        if not isinstance(la, BinaryDense) or la.encoding is not Encoding.BINARY:
            raise ConfigError(
                f"layer {la.name!r}: {la.op} has no TULIP mapping; TULIP maps binary_dense "
                "layers of the binary encoding, each followed by at most one sign threshold"
            )
        x = net.tensors[la.inputs[0]]
        if x.qtype.kind is Kind.BIPOLAR or x.lo < 0 or x.hi > 1:
            raise ConfigError(f"layer {la.name!r}: TULIP needs a binary (uint1) input")
        th = None
        if i + 1 < len(layers) and isinstance(layers[i + 1], MultiThreshold):
            th = layers[i + 1]
            out = net.tensors[th.name]
            if th.thresholds.shape[1] != 1 or th.out_scale != 1 or th.out_bias != 0:
                raise ConfigError(
                    f"layer {th.name!r}: TULIP compares against one threshold per channel "
                    "with out_scale 1 and out_bias 0 (a sign activation), not "
                    f"{th.thresholds.shape[1]} thresholds, scale {th.out_scale}, "
                    f"bias {th.out_bias}"
                )
            if out.lo < 0 or out.hi > 1:  # pragma: no cover - implied by the above
                raise ConfigError(f"layer {th.name!r}: TULIP outputs bits")
            i += 1
        elif i + 1 < len(layers):
            raise ConfigError(
                f"layer {la.name!r}: only the last binary layer may go without a threshold; "
                f"it is followed by {layers[i + 1].op} {layers[i + 1].name!r}"
            )
        chain.append((la, th))
        i += 1
    if not chain:
        raise ConfigError("the network has no binary_dense layer to map onto TULIP")
    return chain


def map_network(net: Network, array: TulipArray | None = None) -> TulipProgram:
    """Map every layer of ``net`` (binary dense layers with sign thresholds, as
    ``tfc_w1a1``). Raises :class:`~codesign.models.hwconfig.ConfigError` naming the first layer that
    TULIP cannot run."""
    array = array or TulipArray()
    layers = []
    for la, th in _binary_chain(net):
        t = None
        if th is not None:
            t = np.broadcast_to(th.thresholds[:, 0], (la.weight.shape[0],))
        layers.append(map_layer(la.name, la.weight, t, array))
    return TulipProgram(name=net.name, array=array, layers=tuple(layers))


def execute(program: TulipProgram, x: np.ndarray) -> np.ndarray:
    """Run ``program`` on frames ``x`` (N, input bits); returns the network's output
    (N, outputs): bits, or the last layer's popcounts."""
    a = np.asarray(x)
    for s in program.layers:
        a = execute_layer(s, a)
    if program.output_bits == 1:
        return a.astype(np.int64)
    b = a.reshape(len(a), program.outputs, program.output_bits).astype(np.int64)
    return (b << np.arange(program.output_bits)).sum(axis=2)
