# amaranth: UnusedElaboratable=no
"""The PIM subarray (hdl/pim/array.py) on Verilator under cocotb: micro-op programs loaded
through the ``prog`` port and run on their input rows — integer add, subtract, multiply,
compare and ReLU of several widths, signed and unsigned; bf16 and fp32 add and multiply
(models/pim/fp.py) on random bit patterns with specials and subnormals; jet_tagger's fc2
layer on real input frames — every stored row equal to the golden executor's
(models/pim/program.py ``execute``) and to an independent reference (numpy's integer and
floating-point arithmetic, the IR's golden layer output), and the cycle counter equal to
``Program.cycles`` (plus the stall cycles the bench counts under random input gaps and output
back-pressure). One Verilator build holds a SOT-MRAM unit (256 rows × 32 columns) and a
NOR-only unit (256 × 16)
(hdl/pim/harness.py); the bench is hdl/pim/cocotb_pim.py."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass

import numpy as np
import pytest
from amaranth.back import verilog
from codesign.hdl.pim.array import PimArray
from codesign.hdl.pim.harness import PimUnits
from codesign.hdl.tools import (
    ToolError,
    build_verilator_bench,
    run_cocotb_module,
    verilator_bin,
)
from codesign.models.golden import random_inputs, trace
from codesign.models.loader import load
from codesign.models.pim.integer import int_program, int_result_bits
from codesign.models.pim.isa import encode
from codesign.models.pim.layer import dense_mapping
from codesign.models.pim.program import Program, execute, from_rows, to_rows

#: the units of the one build: name -> PimArray parameters
UNITS = {
    "sot": {"rows": 256, "cols": 32, "tech": "sot-mram", "imem_depth": 16384},
    "nor": {"rows": 256, "cols": 16, "tech": "nor", "imem_depth": 16384},
}
#: Verilator's C++ optimisation: the model runs as fast at -O1 under cocotb and builds faster
VERILATOR_OPT = {"OPT_FAST": "-O1", "OPT_SLOW": "-O0"}
#: the bench reads and drives only the top module's ports: only they are public
BUILD_ARGS = ["--no-public-flat-rw"]
TOP = "pim_units"
#: input-gap and back-pressure probabilities of the stalled cases
GAPS = {"valid_prob": 0.6, "ready_prob": 0.4}
NET = "jet_tagger"
LAYER = "fc2"


@dataclass(frozen=True)
class Case:
    """One program run: the rows streamed in and the rows it must store."""

    name: str
    unit: str
    program: Program
    inputs: np.ndarray  #: (loads, cols) bool
    reference: np.ndarray  #: (stores, cols) bool, from an independent reference
    ref_name: str
    valid_prob: float = 1.0
    ready_prob: float = 1.0
    seed: int = 0


@functools.cache
def _int_program(op: str, bits: int, tech: str, signed: bool) -> Program:
    return int_program(op, bits, tech, signed=signed, rows=UNITS_BY_TECH[tech]["rows"])


UNITS_BY_TECH = {spec["tech"]: spec for spec in UNITS.values()}


def int_case(unit: str, op: str, bits: int, signed: bool, seed: int, gaps: bool = False) -> Case:
    """``op`` on ``bits``-bit operands drawn at random, with both extremes in the first
    columns; the reference is numpy's int64 arithmetic modulo the result width."""
    spec = UNITS[unit]
    cols = spec["cols"]
    rng = np.random.default_rng(seed)
    lo, hi = (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)
    a, b = rng.integers(lo, hi, size=(2, cols), endpoint=True)
    a[:4], b[:4] = [lo, lo, hi, hi], [lo, hi, lo, hi]
    value = {
        "add": a + b,
        "sub": a - b,
        "mul": a * b,
        "lt": (a < b).astype(np.int64),
        "relu": np.maximum(a, 0),
    }[op]
    operands = [a] if op == "relu" else [a, b]
    inputs = np.concatenate([to_rows(v, bits) for v in operands])
    prog = _int_program(op, bits, spec["tech"], signed)
    name = f"{unit}-{op}{bits}{'s' if signed else 'u'}" + ("-gaps" if gaps else "")
    return Case(
        name,
        unit,
        prog,
        inputs,
        to_rows(value, int_result_bits(op, bits)),
        "numpy",
        seed=seed,
        **(GAPS if gaps else {}),
    )


@functools.lru_cache(maxsize=1)
def _fc2(frames: int, seed: int):
    net = load(NET)
    mapping = dense_mapping(net, LAYER, UNITS["sot"]["tech"], rows=UNITS["sot"]["rows"])
    t = trace(net, random_inputs(net, frames, seed))
    return mapping, t[net[LAYER].inputs[0]], t[LAYER]


def fc2_cases(frames: int, gaps: tuple[int, ...] = (), seed: int = 11) -> list[Case]:
    """jet_tagger's fc2 on ``frames`` golden input frames (the traced activations of seeded
    random network inputs), one neuron per column; the reference is the IR's fc2 output.
    Frames in ``gaps`` run under input gaps and output back-pressure."""
    mapping, x, y = _fc2(frames, seed)
    assert mapping.n == UNITS["sot"]["cols"]
    return [
        Case(
            f"sot-{LAYER}-frame{f}" + ("-gaps" if f in gaps else ""),
            "sot",
            mapping.program,
            mapping.input_rows(x[f]),
            to_rows(y[f], mapping.acc_bits),
            "IR",
            seed=f,
            **(GAPS if f in gaps else {}),
        )
        for f in range(frames)
    ]


#: bit patterns of every special class: signed zeros, infinities, NaNs (quiet, signalling,
#: negative), the smallest and largest subnormals and normals
SPECIALS = {
    "bf16": [
        0x0000,
        0x8000,
        0x7F80,
        0xFF80,
        0x7FC0,
        0x7F81,
        0xFFFF,
        0x0001,
        0x807F,
        0x0080,
        0x8080,
        0x7F7F,
        0xFF7F,
        0x3F80,
        0xBF80,
    ],
    "fp32": [
        0x00000000,
        0x80000000,
        0x7F800000,
        0xFF800000,
        0x7FC00000,
        0x7F800001,
        0xFFFFFFFF,
        0x00000001,
        0x807FFFFF,
        0x00800000,
        0x80800000,
        0x7F7FFFFF,
        0xFF7FFFFF,
        0x3F800000,
        0xBF800000,
    ],
}
FP_BITS = {"bf16": (16, 7), "fp32": (32, 23)}  #: bits, fraction bits


def fp_patterns(fmt: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of operand bit patterns: a mix of uniform patterns, specials, subnormals,
    and ``b`` near ``-a`` or ``a`` (cancellation, equal exponents, rounding ties)."""
    bits, f = FP_BITS[fmt]
    a = rng.integers(0, 1 << bits, size=n, dtype=np.uint64)
    b = rng.integers(0, 1 << bits, size=n, dtype=np.uint64)
    specials = np.array(SPECIALS[fmt], dtype=np.uint64)
    for x in (a, b):
        kind = rng.integers(0, 5, size=n)
        x[kind == 1] = rng.choice(specials, size=int((kind == 1).sum()))
        sub = kind == 2  # subnormal: exponent 0
        x[sub] &= np.uint64(1 << bits - 1 | (1 << f) - 1)
    near = rng.integers(0, 4, size=n) == 0  # b = ±a with the low fraction bits changed
    flip = rng.integers(0, 2, size=n, dtype=np.uint64) << np.uint64(bits - 1)
    low = rng.integers(0, 1 << min(f, 4), size=n, dtype=np.uint64)
    b[near] = (a[near] ^ flip[near] ^ low[near]) & np.uint64((1 << bits) - 1)
    return a, b


def fp_reference(op: str, fmt: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IEEE 754 ``a + b`` or ``a × b`` (round to nearest even, gradual underflow, the model's
    canonical quiet NaN), by numpy: fp32 through float64, bf16 through float32 — a precision
    of at least 2p + 2 bits, so rounding twice gives the correctly rounded result."""
    bits = FP_BITS[fmt][0]
    with np.errstate(all="ignore"):  # NaN casts, overflow to inf
        if fmt == "fp32":
            x, y = (v.astype(np.uint32).view(np.float32).astype(np.float64) for v in (a, b))
        else:
            x, y = ((v.astype(np.uint32) << np.uint32(16)).view(np.float32) for v in (a, b))
        r = (x + y if op == "add" else x * y).astype(np.float32)
    u = r.view(np.uint32).astype(np.uint64)
    if fmt == "bf16":  # round the float32 to nearest even at bit 16 (overflow reaches inf)
        u = (u + np.uint64(0x7FFF) + ((u >> np.uint64(16)) & np.uint64(1))) >> np.uint64(16)
    nan = np.uint64(0x7FC0 << (bits - 16))
    return np.where(np.isnan(r), nan, u & np.uint64((1 << bits) - 1))


def fp_cases(
    unit: str, op: str, fmt: str, batches: int, seed: int, gaps: tuple[int, ...] = ()
) -> list[Case]:
    """``batches`` runs of the floating-point program (one operand pair per column) on
    :func:`fp_patterns`; the reference is :func:`fp_reference`."""
    from codesign.models.pim.fp import fp_program

    spec = UNITS[unit]
    prog = fp_program(op, fmt, spec["tech"], rows=spec["rows"])
    rng = np.random.default_rng(seed)
    bits = FP_BITS[fmt][0]
    cases = []
    for k in range(batches):
        a, b = fp_patterns(fmt, spec["cols"], rng)
        cases.append(
            Case(
                f"{unit}-{fmt}-{op}-batch{k}" + ("-gaps" if k in gaps else ""),
                unit,
                prog,
                np.concatenate([to_rows(a, bits), to_rows(b, bits)]),
                to_rows(fp_reference(op, fmt, a, b), bits),
                "numpy",
                seed=seed + k,
                **(GAPS if k in gaps else {}),
            )
        )
    return cases


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """The units' Verilog (one harness), built once for Verilator."""
    try:
        verilator_bin()
    except ToolError as e:
        pytest.skip(str(e))

    d = tmp_path_factory.mktemp("pim_rtl")
    arrays = {name: PimArray(**spec) for name, spec in UNITS.items()}
    path = d / f"{TOP}.v"
    path.write_text(verilog.convert(PimUnits(units=arrays), name=TOP, emit_src=False))
    start = time.perf_counter()
    runner = build_verilator_bench(path, TOP, d, build_args=BUILD_ARGS, make_vars=VERILATOR_OPT)
    return runner, d, arrays, time.perf_counter() - start


def _rows(rows: np.ndarray) -> np.ndarray:
    """(n, cols) bool rows as n uint64 words, bit ``j`` = column ``j``."""
    return from_rows(np.asarray(rows, dtype=bool).T) if len(rows) else np.zeros(0, np.uint64)


def run_cases(bench, cases: list[Case], tag: str) -> dict:
    """Check the golden model against the references, run ``cases`` on the build (in
    order), and return the bench's report with the wall times."""

    runner, d, arrays, build_s = bench
    start = time.perf_counter()
    arrays_out, specs, keys, bases, top = {}, [], {}, {}, {}
    for j, case in enumerate(cases):
        array = arrays[case.unit]
        assert case.program.tech is array.tech and case.program.rows == array.rows
        golden = execute(case.program, case.inputs)
        assert golden.shape == case.reference.shape, case.name
        bad = np.argwhere(golden != case.reference)
        assert not len(bad), (
            f"case {case.name}: the golden executor's stored row, column {tuple(bad[0])} "
            f"differs from {case.ref_name}"
        )
        assert len(case.program) <= array.imem_depth, (
            f"case {case.name}: {len(case.program)} micro-ops do not fit unit {case.unit}'s "
            f"{array.imem_depth} instruction words"
        )
        prog = id(case.program)
        if prog not in keys:  # each program loaded once, after the unit's previous ones
            keys[prog] = key = f"p{len(keys)}"
            arrays_out[key] = np.array(
                [encode(i, array.rows) for i in case.program.instrs], dtype=np.uint64
            )
            base = top.get(case.unit, 0)
            if base + len(case.program) > array.imem_depth:
                base = 0
            bases[prog], top[case.unit] = base, base + len(case.program)
        arrays_out[f"in{j}"] = _rows(case.inputs)
        arrays_out[f"exec{j}"] = _rows(golden)
        arrays_out[f"ref{j}"] = _rows(case.reference)
        specs.append(
            {
                "name": case.name,
                "unit": case.unit,
                "program": keys[prog],
                "base": bases[prog],
                "inputs": f"in{j}",
                "expect": {"execute": f"exec{j}", case.ref_name: f"ref{j}"},
                "cycles": case.program.cycles,
                "valid_prob": case.valid_prob,
                "ready_prob": case.ready_prob,
                "seed": case.seed,
            }
        )
    data = d / f"{tag}.npz"
    np.savez(data, **arrays_out)
    golden_s = time.perf_counter() - start
    cfg, report = d / f"{tag}.json", d / f"{tag}.report.json"
    units = {name: {"addr_bits": len(a.run.payload.addr)} for name, a in arrays.items()}
    cfg.write_text(
        json.dumps({"data": str(data), "units": units, "cases": specs, "report": str(report)})
    )
    start = time.perf_counter()
    failures = run_cocotb_module(
        runner,
        test_module="codesign.hdl.pim.cocotb_pim",
        top=TOP,
        directory=d,
        plusargs=[f"+pim_bench={cfg}"],
        make_vars=VERILATOR_OPT,
    )
    sim_s = time.perf_counter() - start
    assert not failures, "\n".join(failures)
    figures = json.loads(report.read_text())
    assert list(figures) == [c.name for c in cases]
    figures["seconds"] = {"build": build_s, "golden": golden_s, "sim": sim_s}
    print(json.dumps(figures))
    return figures


INT_CASES = [
    ("add", 4, False),
    ("add", 8, False),
    ("add", 8, True),
    ("add", 16, False),
    ("add", 16, True),
    ("sub", 8, True),
    ("sub", 16, False),
    ("mul", 4, True),
    ("mul", 8, False),
    ("mul", 8, True),
    ("mul", 12, False),
    ("mul", 16, True),
    ("lt", 8, False),
    ("lt", 8, True),
    ("relu", 8, True),
]


@pytest.mark.simulator
def test_integer_programs_on_verilator(bench):
    cases = [int_case("sot", op, bits, s, seed) for seed, (op, bits, s) in enumerate(INT_CASES)]
    cases += [
        int_case("sot", "add", 8, True, 100, gaps=True),
        int_case("sot", "mul", 8, True, 101, gaps=True),
        int_case("nor", "add", 8, True, 102),
        int_case("nor", "mul", 4, False, 103),
        int_case("nor", "mul", 8, True, 104),
        int_case("nor", "lt", 8, True, 105, gaps=True),
        int_case("nor", "relu", 8, True, 106),
    ]
    figures = run_cases(bench, cases, "int")
    assert all(figures[c.name]["stalls"] for c in cases if c.valid_prob < 1)


@pytest.mark.simulator
def test_fc2_on_verilator(bench):
    run_cases(bench, fc2_cases(4, gaps=(3,)), "fc2")


@pytest.mark.simulator
def test_floating_point_on_verilator(bench):
    cases = []
    for k, (op, fmt) in enumerate(
        [("add", "bf16"), ("mul", "bf16"), ("add", "fp32"), ("mul", "fp32")]
    ):
        cases += fp_cases("sot", op, fmt, 16 if fmt == "bf16" else 4, 300 + 100 * k, gaps=(1,))
    cases += fp_cases("nor", "add", "bf16", 2, 700, gaps=(1,))
    cases += fp_cases("nor", "mul", "bf16", 2, 800)
    run_cases(bench, cases, "fp")


@pytest.mark.simulator
@pytest.mark.slow
def test_more_on_verilator(bench):
    """32 fc2 frames (4 of them under gaps and back-pressure), the NOR unit's 16-bit multiply."""
    cases = fc2_cases(32, gaps=(5, 12, 21, 30), seed=12)
    cases += [int_case("nor", "mul", 16, s, 210 + s) for s in (False, True)]
    run_cases(bench, cases, "more")
