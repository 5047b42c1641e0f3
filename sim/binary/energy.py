"""Energy per classification of a binary network: the TULIP TLN array against a MAC-based
binary accelerator, each from operation counts times a parameter of ``sim/energy.csv``, the
project's one energy table (read by :func:`codesign.sim.energy_table.load_params`, which this
module re-exports).

Every parameter in ``sim/energy.csv`` has a ``source`` column: a published figure (Horowitz,
ISSCC 2014, 45 nm) or an assumption stated as one. Every row of :func:`energy_table` names
the parameters its unit energy comes from, so each figure can be traced to its source.

What is counted, per classification (``M`` neurons of fan-in ``K`` per layer, ``P`` PEs):

TULIP (from the mapped schedule, :mod:`codesign.models.binary.tulip`)
    - TLN evaluations (``tln_eval_pj`` each);
    - register bits read and written by the cells (a bank of ``registers`` bits: a memory
      read of that capacity, see below);
    - weight bits (the XNOR polarities) and threshold bits read from the cells' local
      memory (capacity: one cell's share of the network's weights and thresholds);
    - input bits read from the activation buffer, once per cycle for all PEs (broadcast);
    - the control word of every cycle, read once for all PEs.
MAC baseline (a binary MAC array of the same P lanes)
    - per weight: one XNOR (``xnor_pj``) and one accumulator add of ``bits(K)`` bits;
    - weight bits read from one SRAM holding the network's weights;
    - input bits read from the activation buffer, once per round of ``P`` neurons;
    - per neuron: a threshold compare (an add of ``bits(K) + 1`` bits) and the threshold's
      bits read from a threshold memory.
Both
    - output bits written to the activation buffer.

Memory reads: a read of ``b`` bits from a memory of ``C`` bytes costs ``b / 64`` of a
64-bit read, interpolated log-log through Horowitz's 8 KB, 32 KB and 1 MB points (below
8 KB extrapolated with the 8–32 KB slope, i.e. energy ∝ √C).

Node scaling: every energy is multiplied by ``(tulip_node / ref_node) · (target_vdd /
ref_vdd)²`` (switched capacitance ∝ feature size, energy ∝ C·V²). It scales both designs
alike, so the ratio does not depend on it.
"""

from __future__ import annotations

from codesign.models.binary.tulip import DST_REG, SRC_INPUT, SRC_REG, TulipProgram
from codesign.sim.energy_table import EnergyParams, load_params

__all__ = ["EnergyParams", "energy_table", "load_params"]


def _ctrl_bits(program: TulipProgram) -> int:
    """Bits of one cycle's control word: per cell, a (kind, index) per operand and a
    (kind, index, round) destination."""
    s0 = program.layers
    idx = max(max(s.fan_in, s.tlns * s.registers) for s in s0).bit_length()
    dst = max(max(s.registers, s.out_bits) for s in s0).bit_length()
    rnd = max(max(s.rounds - 1, 1) for s in s0).bit_length()
    fan = program.array.cell.fan_in
    return program.array.tlns * (fan * (2 + idx) + 2 + dst + rnd)


def _row(design, component, count, unit_pj, params, scale, included=True):
    return {
        "design": design,
        "component": component,
        "count": int(count),
        "unit_pj": unit_pj * scale,
        "parameters": params,
        "energy_pj": count * unit_pj * scale,
        "in_total": included,
    }


def energy_table(program: TulipProgram, params: EnergyParams | None = None) -> dict:
    """Energy per classification of ``program``'s network on TULIP and on the MAC baseline.

    Returns ``{"rows": [...], "tulip_pj", "mac_pj", "ratio" (MAC / TULIP), "scale",
    "tulip_with_control_rom_pj", "ratio_with_control_rom", "parameters": [name, value,
    unit, source ...]}``; a row is one component of one design (``count`` × ``unit_pj`` =
    ``energy_pj``, with the ``parameters`` it comes from, and whether it is ``in_total``).

    The totals compare datapaths: neither counts its sequencer. TULIP's schedule is regular
    (a fixed adder tree per neuron) and the paper's PEs are driven by a controller; our
    FPGA model (:mod:`codesign.hdl.binary.tulip`) instead reads a microprogram word per cycle from a
    ROM, whose energy is the one row left out of the total and reported beside it.
    """
    p = params or load_params()
    sc = p.scale_at(p["tulip_node_nm"])
    mem = ["sram_8kb_pj", "sram_32kb_pj", "sram_1mb_pj"]
    rows: list[dict] = []
    layers = program.layers
    pes, tlns = program.array.pes, program.array.tlns
    evals = sum(s.ops * s.neurons for s in layers)
    rows.append(_row("tulip", "TLN evaluations", evals, p["tln_eval_pj"], ["tln_eval_pj"], sc))
    reg_cap = program.registers
    reg_reads = sum(int((s.src_kind == SRC_REG).sum()) // s.rounds * s.neurons for s in layers)
    reg_writes = sum(int((s.dst_kind == DST_REG).sum()) // s.rounds * s.neurons for s in layers)
    rows.append(_row("tulip", "register bits read", reg_reads, p.read_pj(1, reg_cap), mem, sc))
    rows.append(_row("tulip", "register bits written", reg_writes, p.read_pj(1, reg_cap), mem, sc))
    thr_bits = sum(s.neurons * (s.fan_in + 1).bit_length() for s in layers if s.thresholded)
    w_bits = sum(s.neurons * s.fan_in for s in layers)
    local_cap = (w_bits + thr_bits) / (pes * tlns)
    rows.append(
        _row("tulip", "weight bits read (local memory)", w_bits, p.read_pj(1, local_cap), mem, sc)
    )
    rows.append(
        _row(
            "tulip",
            "threshold bits read (local memory)",
            thr_bits,
            p.read_pj(1, local_cap),
            mem,
            sc,
        )
    )
    act_cap = program.input_bits + sum(s.neurons * s.out_bits for s in layers)
    in_reads = sum(int((s.src_kind == SRC_INPUT).sum()) for s in layers)
    rows.append(
        _row("tulip", "input bits read (broadcast)", in_reads, p.read_pj(1, act_cap), mem, sc)
    )
    ctrl = _ctrl_bits(program)
    rows.append(
        _row(
            "tulip",
            f"control ROM words read ({ctrl} bits; not in the total)",
            program.steps,
            p.read_pj(ctrl, ctrl * program.steps),
            mem,
            sc,
            included=False,
        )
    )
    out_bits = sum(s.neurons * s.out_bits for s in layers)
    rows.append(_row("tulip", "output bits written", out_bits, p.read_pj(1, act_cap), mem, sc))

    # the MAC baseline
    for s in layers:
        acc = s.fan_in.bit_length()
        rows.append(
            _row(
                "mac",
                f"{s.name}: XNOR + {acc}-bit accumulate",
                s.neurons * s.fan_in,
                p["xnor_pj"] + p.add_pj(acc),
                ["xnor_pj", "add8_pj", "add32_pj"],
                sc,
            )
        )
        if s.thresholded:
            rows.append(
                _row(
                    "mac",
                    f"{s.name}: {acc + 1}-bit threshold compare",
                    s.neurons,
                    p.add_pj(acc + 1),
                    ["add8_pj", "add32_pj"],
                    sc,
                )
            )
    rows.append(_row("mac", "weight bits read (SRAM)", w_bits, p.read_pj(1, w_bits), mem, sc))
    mac_thr = sum(s.neurons * (s.fan_in.bit_length() + 1) for s in layers if s.thresholded)
    rows.append(_row("mac", "threshold bits read", mac_thr, p.read_pj(1, max(mac_thr, 1)), mem, sc))
    mac_in = sum(s.fan_in * s.rounds for s in layers)
    rows.append(
        _row("mac", "input bits read (one per round)", mac_in, p.read_pj(1, act_cap), mem, sc)
    )
    rows.append(_row("mac", "output bits written", out_bits, p.read_pj(1, act_cap), mem, sc))
    tulip = sum(r["energy_pj"] for r in rows if r["design"] == "tulip" and r["in_total"])
    mac = sum(r["energy_pj"] for r in rows if r["design"] == "mac")
    rom = sum(r["energy_pj"] for r in rows if not r["in_total"])
    return {
        "rows": rows,
        "tulip_pj": tulip,
        "mac_pj": mac,
        "ratio": mac / tulip,
        "tulip_with_control_rom_pj": tulip + rom,
        "ratio_with_control_rom": mac / (tulip + rom),
        "scale": sc,
        "parameters": p.sources(),
    }
