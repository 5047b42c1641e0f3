"""The binary MVAU that computes channels in MST reuse order, and a network of them.

:class:`MstMVAU` takes one input vector of K bits per frame (``simd`` bits per beat), then
runs a program of steps, one per cycle, from a ROM: a root channel's steps XNOR ``simd``
consecutive input bits with its weights and count the matches; another channel's steps
start from its parent's popcount (held in a register file) and add ±1 per entry of its
difference list, ``(position, child weight bit)``: +1 where the input bit equals the
child's weight bit, −1 elsewhere (:mod:`codesign.models.binary.mst`). Each channel's last step
writes its popcount and its output: the bit ``[P ≥ t]`` for a threshold ``t``, or ``P``
itself. The M outputs then leave in channel order. Load, compute and output each hold one
frame, so three frames overlap; :mod:`codesign.sim.binary.mst` gives the cycles.

:class:`MstNetwork` chains one unit per binary dense layer; :func:`generate` writes its
Verilog (in :class:`~codesign.hdl.dataflow.top.AxiStreamTop`) and a ``manifest.json`` that
:func:`codesign.hdl.verify.run_cocotb` reads.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from amaranth import Array, Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from codesign.hdl.dataflow.sums import tree_sum
from codesign.models.binary.mst import ReuseTree, mst_layers, network_reuse
from codesign.models.binary.mst_hw import chain_plan, steady_ii
from codesign.models.fileio import atomic_write
from codesign.models.ir import Network

from ..dataflow.pipeline import top_name
from ..dataflow.top import AXI_PORTS, AxiStreamTop, stream_doc, to_verilog

__all__ = ["MstMVAU", "MstNetwork", "build", "generate", "manifest", "threshold_vector"]


def threshold_vector(layer, channels: int) -> np.ndarray:
    """The per-channel integer threshold ``t`` of a single-threshold MultiThreshold after a
    popcount: output 1 when ``P ≥ t`` (a fractional threshold rounds up)."""
    t = np.asarray(layer.thresholds, dtype=np.float64).reshape(-1)
    return np.ceil(np.broadcast_to(t, (channels,))).astype(np.int64)


class MstMVAU(wiring.Component):
    """A binary (XNOR-popcount) dense layer computed in reuse order.

    Parameters
    ----------
    weights
        (M, K) weight bits (FINN's binary encoding: 1 for +1).
    tree
        A reuse forest of the M channels (:func:`codesign.models.binary.mst.reuse_tree`).
    thresholds
        (M,) integer thresholds: the output of channel ``c`` is the bit ``[P_c ≥ t_c]``; or
        None: the output is the popcount ``P_c`` (``K.bit_length()`` bits).
    simd
        Input bits per beat and difference entries per cycle; must divide K.
    out_per_beat
        Outputs per output beat; must divide M.

    Ports
    -----
    i
        Stream of ``simd`` input bits per beat, K / simd beats per frame.
    o
        Stream of ``out_per_beat`` outputs per beat, M / out_per_beat beats per frame.
    """

    def __init__(
        self,
        *,
        weights,
        tree: ReuseTree,
        thresholds=None,
        simd: int,
        out_per_beat: int = 1,
    ) -> None:
        w = np.asarray(weights)
        if w.ndim != 2 or w.size == 0:
            raise ValueError(f"weights must be a non-empty (M, K) matrix, not shape {w.shape}")
        if w.dtype.kind not in "iub" or not np.all((w == 0) | (w == 1)):
            raise ValueError("weights must hold only the bits 0 and 1")
        m, k = w.shape
        if not isinstance(tree, ReuseTree):
            raise TypeError(f"tree must be a ReuseTree, not {tree!r}")
        if tree.channels != m or tree.fan_in != k:
            raise ValueError(
                f"tree must cover {m} channels of fan-in {k}, not {tree.channels} of "
                f"fan-in {tree.fan_in}"
            )
        if not isinstance(simd, int) or isinstance(simd, bool) or simd < 1 or k % simd:
            raise ValueError(f"simd must be a positive divisor of K={k}, not {simd!r}")
        if (
            not isinstance(out_per_beat, int)
            or isinstance(out_per_beat, bool)
            or out_per_beat < 1
            or m % out_per_beat
        ):
            raise ValueError(
                f"out_per_beat must be a positive divisor of M={m}, not {out_per_beat!r}"
            )
        if thresholds is not None:
            thresholds = np.asarray(thresholds)
            if thresholds.shape != (m,) or thresholds.dtype.kind not in "iu":
                raise ValueError(
                    f"thresholds must be None or {m} integers, not shape {thresholds.shape} "
                    f"of {thresholds.dtype}"
                )
        self._w = w.astype(np.int64)
        self._tree = tree
        self._t = None if thresholds is None else thresholds.astype(np.int64)
        self._simd, self._out_pb = simd, out_per_beat
        self._program = self._make_program()
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(unsigned(1), simd))),
                "o": Out(stream.Signature(data.ArrayLayout(unsigned(self.out_bits), out_per_beat))),
            }
        )

    @property
    def channels(self) -> int:
        """M."""
        return self._w.shape[0]

    @property
    def fan_in(self) -> int:
        """K."""
        return self._w.shape[1]

    @property
    def out_bits(self) -> int:
        """Bits of one output: 1 with thresholds, else ``K.bit_length()``."""
        return 1 if self._t is not None else self.fan_in.bit_length()

    @property
    def steps(self) -> int:
        """Compute cycles of one frame (:func:`codesign.models.binary.mst_hw.compute_steps`)."""
        return len(self._program)

    @property
    def simd(self) -> int:
        """Input bits per beat and difference entries per step."""
        return self._simd

    @property
    def out_per_beat(self) -> int:
        """Outputs per output beat."""
        return self._out_pb

    @property
    def in_beats(self) -> int:
        """Input beats per frame, K / simd."""
        return self.fan_in // self._simd

    @property
    def out_beats(self) -> int:
        """Output beats per frame, M / out_per_beat."""
        return self.channels // self._out_pb

    def _make_program(self) -> list[dict]:
        """One step per cycle: the entries it adds and what it starts and ends."""
        w, simd, k = self._w, self._simd, self.fan_in
        t = self._t
        steps = []
        for c in self._tree.order.tolist():
            p = int(self._tree.parent[c])
            pos = np.arange(k) if p < 0 else np.flatnonzero(w[c] != w[p])
            n = max(1, math.ceil(len(pos) / simd))
            thr = 0 if t is None else int(np.clip(t[c], 0, k + 1))
            for j in range(n):
                chunk = pos[j * simd : (j + 1) * simd].tolist()
                entries = [{"pos": q, "bit": int(w[c, q]), "valid": 1} for q in chunk] + [
                    {"pos": 0, "bit": 0, "valid": 0}
                ] * (simd - len(chunk))
                steps.append(
                    {
                        "entries": entries,
                        "first": int(j == 0),
                        "last": int(j == n - 1),
                        "root": int(p < 0),
                        "chan": c,
                        "parent": max(p, 0),
                        "thr": thr,
                        "end": 0,
                    }
                )
        steps[-1]["end"] = 1
        return steps

    def elaborate(self, platform):
        m = Module()
        k, mch, simd, opb = self.fan_in, self.channels, self._simd, self._out_pb
        pbits = k.bit_length()
        obits = self.out_bits
        entry = data.StructLayout(
            {"pos": unsigned(max(1, (k - 1).bit_length())), "bit": 1, "valid": 1}
        )
        chan_shape = unsigned(max(1, (mch - 1).bit_length()))
        word = data.StructLayout(
            {
                "entries": data.ArrayLayout(entry, simd),
                "first": 1,
                "last": 1,
                "root": 1,
                "end": 1,
                "chan": chan_shape,
                "parent": chan_shape,
                "thr": unsigned((k + 1).bit_length()),
            }
        )
        m.submodules.program = rom = memory.Memory(
            shape=word, depth=max(len(self._program), 2), init=self._program
        )
        rd = rom.read_port(domain="comb")

        # load: input bits shift in from the top, so beat 0 ends at bits [0, simd)
        xin = Signal(k)
        in_count = Signal(range(max(self.in_beats, 2)))
        in_full = Signal()
        m.d.comb += self.i.ready.eq(~in_full)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += xin.eq(Cat(xin[simd:], self.i.payload.as_value()))
            with m.If(in_count == self.in_beats - 1):
                m.d.sync += [in_count.eq(0), in_full.eq(1)]
            with m.Else():
                m.d.sync += in_count.eq(in_count + 1)

        # compute
        x = Signal(k)
        busy = Signal()
        done = Signal()
        step = Signal(range(max(len(self._program), 2)))
        acc = Signal(pbits)
        pop = Array(Signal(pbits, name=f"pop{c}") for c in range(mch))
        res = Array(Signal(obits, name=f"res{c}") for c in range(mch))
        m.d.comb += rd.addr.eq(step)
        op = rd.data
        with m.If(in_full & ~busy & ~done):
            m.d.sync += [x.eq(xin), in_full.eq(0), busy.eq(1), step.eq(0)]
        terms = []
        for j in range(simd):
            e = op.entries[j]
            match = x.bit_select(e.pos, 1) == e.bit
            one = Signal(signed(2))
            m.d.comb += one.eq(0)
            with m.If(e.valid & match):
                m.d.comb += one.eq(1)
            with m.Elif(e.valid & ~op.root):
                m.d.comb += one.eq(-1)
            terms.append(one)
        base = Signal(pbits)
        with m.If(~op.first):
            m.d.comb += base.eq(acc)
        with m.Elif(~op.root):
            m.d.comb += base.eq(pop[op.parent])
        total = Signal(pbits)
        m.d.comb += total.eq(base + tree_sum(terms))
        with m.If(busy):
            m.d.sync += [acc.eq(total), step.eq(step + 1)]
            with m.If(op.last):
                m.d.sync += pop[op.chan].eq(total)
                if self._t is None:
                    m.d.sync += res[op.chan].eq(total)
                else:
                    m.d.sync += res[op.chan].eq(total >= op.thr)
            with m.If(op.end):
                m.d.sync += [busy.eq(0), done.eq(1), step.eq(0)]

        # output: the results shift out from the bottom, out_per_beat at a time
        obuf = Signal(mch * obits)
        out_count = Signal(range(max(self.out_beats, 2)))
        with m.If(done & ~self.o.valid):
            m.d.sync += [obuf.eq(Cat(*res)), self.o.valid.eq(1), done.eq(0), out_count.eq(0)]
        m.d.comb += self.o.payload.as_value().eq(obuf[: opb * obits])
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [obuf.eq(obuf >> (opb * obits)), out_count.eq(out_count + 1)]
            with m.If(out_count == self.out_beats - 1):
                m.d.sync += self.o.valid.eq(0)
        return m


def _units(
    net: Network,
    max_depth: int | None,
    simd: int | Mapping[str, int] | None,
    out_per_beat: int,
    trees: Mapping[str, ReuseTree] | None,
) -> list[MstMVAU]:
    pairs, lanes, trees = chain_plan(net, max_depth, simd, out_per_beat, trees)
    units = []
    for n, (la, act) in enumerate(pairs):
        m = la.weight.shape[0]
        nxt = lanes[pairs[n + 1][0].name] if n + 1 < len(pairs) else out_per_beat
        units.append(
            MstMVAU(
                weights=la.weight,
                tree=trees[la.name],
                thresholds=None if act is None else threshold_vector(act, m),
                simd=lanes[la.name],
                out_per_beat=nxt,
            )
        )
    return units


class MstNetwork(wiring.Component):
    """One :class:`MstMVAU` per binary dense layer of ``net``, chained by streams.

    Parameters
    ----------
    net
        A chain of binary dense layers, each optionally followed by a single-threshold
        MultiThreshold (:func:`codesign.models.binary.mst.mst_layers`; otherwise
        :class:`~codesign.models.hwconfig.ConfigError` names the layer).
    max_depth
        Depth bound of the reuse trees (:func:`codesign.models.binary.mst.reuse_tree`).
    simd
        SIMD lanes: one value, a mapping by layer name, or None for the default
        (:func:`codesign.models.binary.mst_hw.layer_simd`). Unit ``l`` emits beats of unit
        ``l+1``'s width.
    out_per_beat
        Outputs per beat of the last unit.
    trees
        Reuse trees by layer name instead of computing them.
    """

    def __init__(
        self,
        *,
        net: Network,
        max_depth: int | None = None,
        simd: int | Mapping[str, int] | None = None,
        out_per_beat: int = 1,
        trees: Mapping[str, ReuseTree] | None = None,
    ) -> None:
        if not isinstance(net, Network):
            raise TypeError(f"net must be a Network, not {net!r}")
        self._units = _units(net, max_depth, simd, out_per_beat, trees)
        self._names = [la.name for la, _ in mst_layers(net)]
        first, last = self._units[0], self._units[-1]
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(unsigned(1), first.simd))),
                "o": Out(
                    stream.Signature(data.ArrayLayout(unsigned(last.out_bits), last.out_per_beat))
                ),
            }
        )

    @property
    def layer_names(self) -> list[str]:
        """The binary dense layer of each unit, in chain order."""
        return list(self._names)

    @property
    def units(self) -> list[MstMVAU]:
        """The units, in chain order."""
        return list(self._units)

    def elaborate(self, platform):
        m = Module()
        for name, u in zip(self._names, self._units, strict=True):
            m.submodules[f"mst_{name}"] = u
        wiring.connect(m, wiring.flipped(self.i), self._units[0].i)
        for a, b in zip(self._units, self._units[1:], strict=False):
            wiring.connect(m, a=a.o, b=b.i)
        wiring.connect(m, self._units[-1].o, wiring.flipped(self.o))
        return m


def build(net: Network, **kwargs) -> AxiStreamTop:
    """:class:`MstNetwork` of ``net`` (keyword arguments as there) in AXI-Stream ports."""
    core = MstNetwork(net=net, **kwargs)
    return AxiStreamTop(core=core, out_beats=core.units[-1].out_beats)


def manifest(net: Network, top: str, core: MstNetwork) -> dict:
    """The ``manifest.json`` of an MST design (format 1, no stage taps); ``ideal_ii`` is
    the chain's steady-state interval (:func:`codesign.models.binary.mst_hw.steady_ii`)."""
    first, last = core.units[0], core.units[-1]
    out_t = net.tensors[net.output]
    ii = steady_ii([u.in_beats for u in core.units], [u.steps for u in core.units], last.out_beats)
    return {
        "format": 1,
        "name": net.name,
        "top": top,
        "verilog": f"{top}.v",
        "network_hash": None,
        "ideal_ii": ii,
        "clock_mhz": None,
        "ports": dict(AXI_PORTS),
        "input": stream_doc(
            str(net.input_tensor.qtype), net.input_tensor.qtype.bits, first.simd, [first.fan_in]
        ),
        "output": stream_doc(
            str(out_t.qtype), out_t.qtype.bits, last.out_per_beat, [last.channels]
        ),
        "mst": {
            "units": [
                {"layer": name, "simd": u.simd, "steps": u.steps}
                for name, u in zip(core.layer_names, core.units, strict=True)
            ],
            "ii": ii,
        },
        "stages": [],
    }


def generate(
    net: Network,
    out_dir: str | Path,
    *,
    max_depth: int | None = None,
    simd: int | Mapping[str, int] | None = None,
    out_per_beat: int = 1,
    trees: Mapping[str, ReuseTree] | None = None,
) -> dict:
    """Write ``<top>.v`` and ``manifest.json`` of the MST network of ``net`` into
    ``out_dir`` (atomically; the same arguments always give the same bytes). Returns the
    manifest, whose ``mst`` entry holds every unit's lanes and compute steps and the
    chain's steady-state ``ii``."""
    trees = network_reuse(net, max_depth) if trees is None else trees
    top = top_name(f"{net.name}_mst")
    axi = build(net, simd=simd, out_per_beat=out_per_beat, trees=trees)
    verilog = to_verilog(axi, top)
    doc = manifest(net, top, axi.core)
    doc["verilog_sha256"] = hashlib.sha256(verilog.encode()).hexdigest()
    out_dir = Path(out_dir)
    atomic_write(out_dir / f"{top}.v", verilog)
    atomic_write(out_dir / "manifest.json", json.dumps(doc, indent=1) + "\n")
    return doc
