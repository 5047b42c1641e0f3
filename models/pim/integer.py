"""Integer programs of the digital PIM array: add, subtract, multiply, compare, ReLU, dot product.

Each ``*_rows`` function emits micro-ops on a :class:`~codesign.models.pim.program.Builder` and
returns the result rows (bit 0 first). :func:`int_program` wraps one of them into a whole
program — LOAD the operands bit by bit, compute, STORE the result — and :func:`int_run` runs
that program in the golden executor on numpy integers, one element per column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .isa import Technology
from .program import Builder, Program, execute, from_rows, to_rows

__all__ = [
    "INT_OPS",
    "add_rows",
    "dot_program",
    "int_program",
    "int_result_bits",
    "int_run",
    "lt_rows",
    "mul_rows",
    "relu_rows",
    "sub_rows",
]

INT_OPS = ("add", "sub", "mul", "lt", "relu", "dot")

Rows = list[int]


def add_rows(b: Builder, xs: Sequence[int], ys: Sequence[int], cin: int | None = None):
    """``xs + ys (+ cin)`` by ripple carry: (n sum rows, the carry-out row); equal widths."""
    if len(xs) != len(ys):
        raise ValueError(f"operands must have equal widths, not {len(xs)} and {len(ys)}")
    carry = b.const(0) if cin is None else cin
    out = []
    for x, y in zip(xs, ys, strict=True):
        s, c = b.fa(x, y, carry)
        if carry is not cin:
            b.free(carry)
        carry = c
        out.append(s)
    return out, carry


def sub_rows(b: Builder, xs: Sequence[int], ys: Sequence[int]):
    """``xs − ys`` modulo 2^n: (n rows, the carry-out row; carry 1 = no borrow)."""
    nys = [b.not_(y) for y in ys]
    out, carry = add_rows(b, xs, nys, cin=b.const(1))
    b.free(nys)
    return out, carry


def lt_rows(b: Builder, xs: Sequence[int], ys: Sequence[int], *, signed: bool) -> int:
    """One row: 1 where ``xs < ys`` (carries of ``xs + ¬ys + 1`` only, no sum rows)."""
    carry = b.const(1)
    top_carry = carry
    for k, (x, y) in enumerate(zip(xs, ys, strict=True)):
        ny = b.not_(y)
        c = b.maj(x, ny, carry)
        if k == len(xs) - 1 and signed:  # sign of the (n+1)-bit difference
            t = b.xor(x, ny)
            d = b.xor(t, c)
            b.free(t, ny, c, carry)
            return d
        b.free(ny, carry)
        carry = c
    del top_carry
    d = b.not_(carry)  # unsigned: borrow out
    b.free(carry)
    return d


def relu_rows(b: Builder, xs: Sequence[int]) -> Rows:
    """``max(xs, 0)`` of a signed operand (the sign row is the top one)."""
    sign = xs[-1]
    return [b.andn(x, sign) for x in xs[:-1]] + [b.const(0)]


def _add_at(b: Builder, acc: Rows, pp: Sequence[int], offset: int) -> Rows:
    """``acc + (pp << offset)`` truncated to ``len(acc)`` rows; frees the replaced acc rows."""
    width = len(acc)
    carry = b.const(0)
    out = list(acc[:offset])
    for k in range(offset, width):
        j = k - offset
        if j < len(pp):
            s, c = b.fa(acc[k], pp[j], carry)
        elif carry != b.const(0):  # propagate the carry through the rest
            s, c = b.xor(acc[k], carry), b.and_(acc[k], carry)
        else:
            out.extend(acc[k:])
            break
        b.free(acc[k])
        if carry != b.const(0):
            b.free(carry)
        carry = c
        out.append(s)
    else:
        if carry != b.const(0):
            b.free(carry)
    return out


def mul_rows(
    b: Builder, xs: Sequence[int], ys: Sequence[int], *, signed: bool, width: int | None = None
) -> Rows:
    """The 2n-row product of two n-row operands by shift-and-add (or its low ``width`` rows:
    the product modulo 2^width, computing no row above them).

    Signed operands: ``x`` is sign-extended, and the last partial product (the weight of ``y``'s
    sign bit is −2^(n−1)) is subtracted.
    """
    n = len(xs)
    width = 2 * n if width is None else min(width, 2 * n)
    xe = list(xs) + ([xs[-1]] * n if signed else [b.const(0)] * n)
    acc = [b.const(0)] * width  # constant rows: never freed, never written
    for j, y in enumerate(ys[:width]):
        last = signed and j == n - 1
        pp = [b.and_(x, y) for x in xe[: width - j]]
        if last:  # acc − (pp << j) = acc + (¬pp << j) + (1 << j)
            npp = [b.not_(p) for p in pp]
            b.free(pp)
            pp = npp
            carry = b.const(1)
            out = list(acc[:j])
            for k in range(j, width):
                s, c = b.fa(acc[k], pp[k - j], carry)
                b.free(acc[k])
                if carry != b.const(1):
                    b.free(carry)
                carry = c
                out.append(s)
            b.free(carry)
            acc = out
        else:
            acc = _add_at(b, acc, pp, j)
        b.free(pp)
    return acc


def dot_program(
    k: int,
    bits: int,
    acc_bits: int,
    tech: str | Technology,
    *,
    signed: bool,
    bias: bool = False,
    rows: int = 256,
) -> Program:
    """A dot product of ``k`` pairs in one column: for each pair LOAD ``x`` then ``y``
    (``bits`` rows each, bit 0 first), multiply and accumulate into ``acc_bits`` rows
    (two's complement, modulo 2^acc_bits); with ``bias`` LOAD ``acc_bits`` more rows and add
    them; STORE the accumulator. Operands are loaded as they are needed, so the rows used do not
    grow with ``k``."""
    for name, value in (("k", k), ("bits", bits), ("acc_bits", acc_bits)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, not {value!r}")
    b = Builder(tech, rows=rows)
    zero = b.const(0)
    acc = [zero] * acc_bits
    for _ in range(k):
        x = b.load(bits)
        y = b.load(bits)
        p = mul_rows(b, x, y, signed=signed, width=acc_bits)
        b.free(x, y)
        ext = p[-1] if signed else zero
        p = (p + [ext] * acc_bits)[:acc_bits]
        acc = _add_at(b, acc, p, 0)
        b.free(p)
    if bias:
        bias_rows = b.load(acc_bits)
        acc = _add_at(b, acc, bias_rows, 0)
        b.free(bias_rows)
    b.store(acc)
    return b.program()


def int_result_bits(op: str, bits: int, *, k: int = 1) -> int:
    """Width of ``op``'s result for ``bits``-bit operands (``k`` products for ``dot``)."""
    if op not in INT_OPS:
        raise ValueError(f"integer op must be one of {', '.join(INT_OPS)}, not {op!r}")
    return {
        "add": bits + 1,
        "sub": bits,
        "mul": 2 * bits,
        "lt": 1,
        "relu": bits,
        "dot": 2 * bits + max(k - 1, 0).bit_length(),
    }[op]


def int_program(
    op: str,
    bits: int,
    tech: str | Technology,
    *,
    signed: bool = False,
    k: int = 1,
    rows: int = 256,
) -> Program:
    """The whole program of an integer op: LOAD operands (bit 0 first; ``a`` then ``b``, for
    ``dot`` ``a0, b0, a1, b1, …``), compute, STORE :func:`int_result_bits` rows."""
    if not isinstance(bits, int) or bits < 1:
        raise ValueError(f"bits must be an int >= 1, not {bits!r}")
    width = int_result_bits(op, bits, k=k)
    if op == "dot":
        return dot_program(k, bits, width, tech, signed=signed, rows=rows)
    b = Builder(tech, rows=rows)
    if op == "relu":
        out = relu_rows(b, b.load(bits))
    else:
        xs, ys = b.load(bits), b.load(bits)
        if op == "add":
            s, c = add_rows(b, xs, ys)
            if signed:  # the (n+1)-th bit of the sign-extended sum
                c2 = b.xor(b.xor(xs[-1], ys[-1]), c)
                out = [*s, c2]
            else:
                out = [*s, c]
        elif op == "sub":
            out, _ = sub_rows(b, xs, ys)
        elif op == "mul":
            out = mul_rows(b, xs, ys, signed=signed)
        else:
            out = [lt_rows(b, xs, ys, signed=signed)]
    b.store(out)
    return b.program()


def _wrap(values: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    v = values.astype(np.int64) & ((1 << bits) - 1)
    if signed:
        v = np.where(v >= 1 << (bits - 1), v - (1 << bits), v)
    return v


def int_run(
    op: str,
    a,
    b=None,
    *,
    bits: int,
    tech: str | Technology = "sot-mram",
    signed: bool = False,
    rows: int = 256,
) -> np.ndarray:
    """Run the integer program ``op`` in the golden executor, one element per column.

    ``a`` and ``b`` are integer arrays (for ``dot``: shape (k, C) each); the result is int64,
    signed where the op's result is (``lt`` gives 0/1).
    """
    a = np.asarray(a)
    k = a.shape[0] if op == "dot" else 1
    prog = int_program(op, bits, tech, signed=signed, k=k, rows=rows)
    if op == "dot":
        b = np.asarray(b)
        rows_in = np.concatenate(
            [np.concatenate([to_rows(a[i], bits), to_rows(b[i], bits)]) for i in range(k)]
        )
    elif op == "relu":
        rows_in = to_rows(a, bits)
    else:
        rows_in = np.concatenate([to_rows(a, bits), to_rows(np.asarray(b), bits)])
    out = from_rows(execute(prog, rows_in)).astype(np.int64)
    width = int_result_bits(op, bits, k=k)
    result_signed = signed and op != "lt"
    return _wrap(out, width, result_signed)
