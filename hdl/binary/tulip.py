"""The TULIP PE array: SIMD threshold-logic processing elements running a mapper schedule.

:class:`TulipCore` executes a :class:`~codesign.models.binary.tulip.TulipProgram` exactly as
:func:`codesign.models.binary.tulip.execute_layer` describes it, one schedule step per clock cycle.
Per frame it goes through three phases, with no idle cycle between them:

- **IN**: takes the input vector, ``in_width`` bits per beat (``i.ready`` is high only here);
- **RUN**: one global schedule step per cycle, every layer's steps one after the other;
- **OUT**: sends the last layer's outputs, one element per beat, then returns to IN.

So a frame takes ``in_beats + Σ steps + out_beats`` cycles when the input is always valid and
the output always ready, as :func:`codesign.sim.binary.tulip.timing` models it.

Storage, all of it :class:`~amaranth.lib.memory.Memory` ROMs or registers:

- a *control ROM* indexed by the global step, shared by every PE (SIMD): per cell slot the
  operand kinds and indices, the destination kind, index and round, and the step's layer;
- per PE and cell a *local-memory ROM* indexed by the global step: the cell's signed
  weights and threshold;
- per PE ``tlns`` register banks of ``program.registers`` bits: a cell writes only its own
  bank, every cell of the PE reads all of them (values from before the step's writes);
- activation buffers: the frame's input (layer 0's input) and each layer's output bits,
  which are the next layer's input; OUT streams the last layer's buffer.

Both ROMs are read synchronously from the *next* step's address, so a step's operands are
ready in the cycle it executes and the cycle counts stay exact.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.hdl import Shape
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from codesign.hdl.dataflow.sums import tree_sum
from codesign.models.binary.tulip import (
    DST_OUT,
    DST_REG,
    SRC_INPUT,
    SRC_REG,
    TulipProgram,
    check_in_width,
)
from codesign.models.fileio import atomic_write

from ..dataflow.pipeline import top_name
from ..dataflow.top import AXI_PORTS, AxiStreamTop, stream_doc, to_verilog

__all__ = ["Phase", "TulipCore", "manifest", "write_design"]


class Phase(enum.Enum, shape=2):
    """The core's phase: taking the input, running the schedule, sending the output."""

    IN = 0
    RUN = 1
    OUT = 2


def _bits(n: int) -> int:
    """Bits of an unsigned field holding 0 .. ``n`` (at least 1)."""
    return max(1, int(n).bit_length())


def _pack(shape, value) -> int:
    """``value`` (nested dicts and sequences of ints, following the layout ``shape``) as the
    unsigned integer of its bits."""
    if isinstance(shape, data.StructLayout):
        return sum(_pack(f.shape, value[name]) << f.offset for name, f in shape)
    if isinstance(shape, data.ArrayLayout):
        w = Shape.cast(shape.elem_shape).width
        return sum(_pack(shape.elem_shape, v) << (k * w) for k, v in enumerate(value))
    return int(value) & ((1 << Shape.cast(shape).width) - 1)


class TulipCore(wiring.Component):
    """The TULIP PE array running ``program`` (see the module docstring).

    Parameters
    ----------
    program
        The mapped network (:func:`codesign.models.binary.tulip.map_network`).
    in_width
        Input bits per beat; must divide the network's input bits.

    Attributes
    ----------
    i : In(stream.Signature(data.ArrayLayout(1, in_width)))
        Input beats: element ``b`` of beat ``k`` is input bit ``k · in_width + b``.
    o : Out(stream.Signature(data.ArrayLayout(program.output_bits, 1)))
        Output elements, one per beat, in neuron order.

    Raises
    ------
    TypeError
        If ``program`` is not a :class:`~codesign.models.binary.tulip.TulipProgram`.
    ValueError
        If a layer's fan-in is not the previous layer's output bits.
    codesign.models.hwconfig.ConfigError
        If ``in_width`` does not divide the input bits
        (:func:`codesign.models.binary.tulip.check_in_width`).
    """

    def __init__(self, *, program: TulipProgram, in_width: int) -> None:
        if not isinstance(program, TulipProgram):
            raise TypeError(f"TULIP core program must be a TulipProgram, not {program!r}")
        check_in_width(program, in_width)
        for prev, s in zip(program.layers, program.layers[1:], strict=False):
            if s.fan_in != prev.neurons * prev.out_bits:
                raise ValueError(
                    f"TULIP core program {program.name!r}: layer {s.name!r} fan-in must be the "
                    f"{prev.neurons * prev.out_bits} output bits of layer {prev.name!r}, "
                    f"not {s.fan_in}"
                )
        self._program = program
        self._in_width = in_width
        super().__init__(
            {
                "i": In(stream.Signature(data.ArrayLayout(1, in_width))),
                "o": Out(stream.Signature(data.ArrayLayout(program.output_bits, 1))),
            }
        )

    @property
    def program(self) -> TulipProgram:
        return self._program

    @property
    def in_width(self) -> int:
        return self._in_width

    @property
    def in_beats(self) -> int:
        """Input beats per frame."""
        return self._program.input_bits // self._in_width

    # -- ROM layouts and contents -------------------------------------------------------

    @property
    def control_layout(self) -> data.StructLayout:
        """One control-ROM word: the step's layer and, per cell slot, operands and
        destination."""
        p = self._program
        fan = p.array.cell.fan_in
        src_max = max(max(s.fan_in for s in p.layers), p.array.tlns * p.registers) - 1
        dst_max = max(max(p.registers, s.out_bits) for s in p.layers) - 1
        cell = data.StructLayout(
            {
                "src_kind": data.ArrayLayout(2, fan),
                "src_index": data.ArrayLayout(_bits(src_max), fan),
                "dst_kind": 2,
                "dst_index": _bits(dst_max),
                "dst_round": _bits(max(s.rounds for s in p.layers) - 1),
            }
        )
        return data.StructLayout(
            {"layer": _bits(len(p.layers) - 1), "cells": data.ArrayLayout(cell, p.array.tlns)}
        )

    @property
    def local_layout(self) -> data.StructLayout:
        """One local-memory word of a cell: its weights and threshold."""
        cell = self._program.array.cell
        return data.StructLayout(
            {
                "weight": data.ArrayLayout(signed(cell.weight_bits), cell.fan_in),
                "threshold": signed(cell.threshold_bits),
            }
        )

    def _control_init(self) -> list[int]:
        p = self._program
        layout = self.control_layout
        words = []
        for layer, s in enumerate(p.layers):
            # a register operand's flat index is bank · (the layer's registers) + index;
            # the hardware's banks hold program.registers each
            bank, reg = np.divmod(s.src_index, s.registers)
            src_index = np.where(s.src_kind == SRC_REG, bank * p.registers + reg, s.src_index)
            for t in range(s.steps):
                cells = [
                    {
                        "src_kind": s.src_kind[t, c].tolist(),
                        "src_index": src_index[t, c].tolist(),
                        "dst_kind": int(s.dst_kind[t, c]),
                        "dst_index": int(s.dst_index[t, c]),
                        "dst_round": int(s.dst_round[t, c]),
                    }
                    for c in range(p.array.tlns)
                ]
                words.append(_pack(layout, {"layer": layer, "cells": cells}))
        return words

    def _local_init(self, pe: int, cell: int) -> list[int]:
        cfg = self._program.array.cell
        wb, tb = cfg.weight_bits, cfg.threshold_bits
        w = np.concatenate([s.weight[pe, :, cell] for s in self._program.layers]).astype(np.int64)
        t = np.concatenate([s.threshold[pe, :, cell] for s in self._program.layers])
        word = (t.astype(np.int64) & ((1 << tb) - 1)) << (cfg.fan_in * wb)
        for f in range(cfg.fan_in):
            word = word | ((w[:, f] & ((1 << wb) - 1)) << (f * wb))
        return [int(v) for v in word]

    # -- hardware ------------------------------------------------------------------------

    def elaborate(self, platform):
        p = self._program
        pes, tlns, fan = p.array.pes, p.array.tlns, p.array.cell.fan_in
        layers = p.layers
        total = p.steps
        out_bits = p.output_bits
        m = Module()

        phase = Signal(Phase, init=Phase.IN)
        beat = Signal(range(self.in_beats))
        step = Signal(range(total))
        step_next = Signal(range(total))
        element = Signal(range(p.outputs))
        run = Signal()
        m.d.comb += [run.eq(phase == Phase.RUN), step_next.eq(step)]
        m.d.sync += step.eq(step_next)

        # activation buffers: the frame's input, then each layer's output bits
        in_buf = Signal(p.input_bits)
        out_bufs = [Signal(s.neurons * s.out_bits, name=f"act_{s.name}") for s in layers]
        layer_in = [in_buf, *out_bufs[:-1]]
        last = out_bufs[-1]

        # control ROM, read at the next step's address so the word is the current step's
        ctrl_layout = self.control_layout
        m.submodules.control = control = Memory(
            shape=unsigned(ctrl_layout.size), depth=total, init=self._control_init()
        )
        ctrl_port = control.read_port()
        m.d.comb += ctrl_port.addr.eq(step_next)
        ctrl = ctrl_layout(ctrl_port.data)

        # layer-input operands, shared by every PE
        in_bits = []
        for c in range(tlns):
            row = []
            for f in range(fan):
                bit = Signal(name=f"in_c{c}_f{f}")
                idx = ctrl.cells[c].src_index[f]
                with m.Switch(ctrl.layer):
                    for k, buf in enumerate(layer_in):
                        with m.Case(k):
                            m.d.comb += bit.eq(buf.bit_select(idx, 1))
                row.append(bit)
            in_bits.append(row)

        local_layout = self.local_layout
        results = []  # results[pe][cell]
        for pe in range(pes):
            banks = [Signal(p.registers, name=f"pe{pe}_bank{c}") for c in range(tlns)]
            flat = Cat(*banks)
            ys = []
            for c in range(tlns):
                cw = ctrl.cells[c]
                mem = Memory(
                    shape=unsigned(local_layout.size), depth=total, init=self._local_init(pe, c)
                )
                m.submodules[f"local_pe{pe}_c{c}"] = mem
                port = mem.read_port()
                m.d.comb += port.addr.eq(step_next)
                local = local_layout(port.data)
                terms = []
                for f in range(fan):
                    kind = cw.src_kind[f]
                    a = Mux(
                        kind == SRC_INPUT,
                        in_bits[c][f],
                        Mux(kind == SRC_REG, flat.bit_select(cw.src_index[f], 1), 0),
                    )
                    terms.append(Mux(a, local.weight[f], 0))
                y = Signal(name=f"pe{pe}_y{c}")
                m.d.comb += y.eq(tree_sum(terms) >= local.threshold)
                with m.If(run & (cw.dst_kind == DST_REG)):
                    m.d.sync += banks[c].bit_select(cw.dst_index, 1).eq(y)
                ys.append(y)
            results.append(ys)

        # output destinations: bit (round · pes + pe) · out_bits + index of the layer's buffer
        for k, (s, buf) in enumerate(zip(layers, out_bufs, strict=True)):
            is_out = [
                run & (ctrl.layer == k) & (ctrl.cells[c].dst_kind == DST_OUT) for c in range(tlns)
            ]
            for b in range(s.neurons * s.out_bits):
                neuron, j = divmod(b, s.out_bits)
                rnd, pe = divmod(neuron, pes)
                for c in range(tlns):
                    cw = ctrl.cells[c]
                    with m.If(is_out[c] & (cw.dst_round == rnd) & (cw.dst_index == j)):
                        m.d.sync += buf[b].eq(results[pe][c])

        m.d.comb += self.o.payload.as_value().eq(last[:out_bits])
        with m.Switch(phase):
            with m.Case(Phase.IN):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    # shift in: after in_beats beats, beat 0 is at the bottom
                    m.d.sync += in_buf.eq(Cat(in_buf[self._in_width :], self.i.payload.as_value()))
                    with m.If(beat == self.in_beats - 1):
                        m.d.sync += [beat.eq(0), phase.eq(Phase.RUN)]
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
            with m.Case(Phase.RUN):
                with m.If(step == total - 1):
                    m.d.comb += step_next.eq(0)
                    m.d.sync += phase.eq(Phase.OUT)
                with m.Else():
                    m.d.comb += step_next.eq(step + 1)
            with m.Case(Phase.OUT):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.d.sync += last.eq(last >> out_bits)
                    with m.If(element == p.outputs - 1):
                        m.d.sync += [element.eq(0), phase.eq(Phase.IN)]
                    with m.Else():
                        m.d.sync += element.eq(element + 1)
        return m


def manifest(program: TulipProgram, top: str, in_width: int) -> dict:
    """What :func:`write_design` records beside the Verilog (ports, streams, ideal cycles).

    The array is recorded as one stage (instance ``core``) whose ``cycles`` are the
    schedule's steps: the bench reads a stage's cycles as the time it may compute without
    moving any stream.
    """
    in_beats, steps, out_beats = program.phases(in_width)
    out = stream_doc(f"uint{program.output_bits}", program.output_bits, 1, [program.outputs])
    return {
        "format": 1,
        "name": program.name,
        "top": top,
        "verilog": f"{top}.v",
        "kind": "tulip",
        # the phases run back to back: the frame period with a free-running stream
        "ideal_ii": in_beats + steps + out_beats,
        "phases": {"in_beats": in_beats, "steps": steps, "out_beats": out_beats},
        "array": {
            "pes": program.array.pes,
            "tlns": program.array.tlns,
            "fan_in": program.array.cell.fan_in,
            "max_weight": program.array.cell.max_weight,
            "registers": program.registers,
        },
        "ports": dict(AXI_PORTS),
        "input": stream_doc("uint1", 1, in_width, [program.input_bits]),
        "output": out,
        "stages": [
            {
                "name": "tulip",
                "kind": "tulip",
                "layers": [s.name for s in program.layers],
                "tap": program.layers[-1].name,
                "instance": "core",
                "pe": program.array.pes,
                "cycles": steps,
                "out": out,
            }
        ],
    }


def write_design(
    program: TulipProgram, out_dir: str | Path, *, in_width: int = 16, name: str | None = None
) -> Path:
    """Write ``<top>.v`` (the :class:`TulipCore` inside an
    :class:`~codesign.hdl.dataflow.top.AxiStreamTop`) and ``manifest.json`` into ``out_dir``,
    atomically; the same program always gives the same bytes.

    Parameters
    ----------
    program
        The mapped network.
    out_dir
        Directory to write into (created when missing).
    in_width
        Input bits per beat.
    name
        Verilog module name (default: ``<network>_tulip``).

    Returns
    -------
    Path
        The Verilog file.
    """
    if name is None:
        name = top_name(f"{program.name}_tulip")
    elif not isinstance(name, str) or top_name(name) != name:
        raise ValueError(f"TULIP design name must be a Verilog identifier, not {name!r}")
    core = TulipCore(program=program, in_width=in_width)
    verilog = to_verilog(AxiStreamTop(core=core, out_beats=program.outputs), name)
    out_dir = Path(out_dir)
    path = atomic_write(out_dir / f"{name}.v", verilog)
    doc = manifest(program, name, in_width)
    doc["verilog_sha256"] = hashlib.sha256(verilog.encode()).hexdigest()
    atomic_write(out_dir / "manifest.json", json.dumps(doc, indent=1) + "\n")
    return path
