"""Micro-op programs: a builder that lowers gates to a technology's micro-ops, and the golden
executor that runs a program bit by bit on a bit array.

:class:`Builder` hands out rows, lowers each gate to the micro-ops the technology has (a NOR-only
array builds AND from three MAGIC NORs, each after an INIT1; an SOT-MRAM array has AND), and
records the program. :func:`execute` runs a :class:`Program` on an R × C boolean array — every
micro-op on every column at once, as the subarray does — starting from seeded random cell
contents, so a program that reads a row it never wrote fails in the golden model.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .isa import OPERAND_ROWS, Instr, Op, Technology, technology

__all__ = ["Builder", "Program", "RowsExhaustedError", "execute", "from_rows", "to_rows"]


class RowsExhaustedError(ValueError):
    """A program needs more rows than its subarray has."""


@dataclass(frozen=True)
class Program:
    """A straight-line micro-op program for one technology.

    ``loads`` rows enter through LOAD (in order), ``stores`` rows leave through STORE; ``rows``
    is the subarray height it was built for.
    """

    tech: Technology
    rows: int
    instrs: tuple[Instr, ...]

    @property
    def loads(self) -> int:
        """Rows the program reads from its input stream."""
        return sum(1 for i in self.instrs if i.op is Op.LOAD)

    @property
    def stores(self) -> int:
        """Rows the program writes to its output stream."""
        return sum(1 for i in self.instrs if i.op is Op.STORE)

    @property
    def cycles(self) -> int:
        """Array cycles: each micro-op's cycles in the technology, summed (LOAD/STORE included)."""
        return sum(self.tech.cycles[i.op] for i in self.instrs)

    @property
    def compute_cycles(self) -> int:
        """Array cycles without the LOAD and STORE beats."""
        return sum(self.tech.cycles[i.op] for i in self.instrs if i.op not in (Op.LOAD, Op.STORE))

    def counts(self) -> Counter:
        """How many of each micro-op the program executes."""
        return Counter(i.op for i in self.instrs)

    @property
    def rows_used(self) -> int:
        """One more than the highest row any micro-op touches."""
        top = 0
        for i in self.instrs:
            n = OPERAND_ROWS[i.op]
            touched = [i.a, i.b, i.c][:n]
            if i.op is not Op.STORE:
                touched.append(i.d)
            if i.op is Op.FA:
                touched.append(i.e)
            top = max(top, *touched, 0)
        return top + 1

    def __len__(self) -> int:
        return len(self.instrs)


class Builder:
    """Builds a :class:`Program`: allocates rows and lowers gates to micro-ops.

    Every gate method writes a freshly allocated row and returns its index; free rows you no
    longer need with :meth:`free` (the builder reuses them). Rows holding constants
    (:meth:`const`) are shared and never freed.

    Parameters
    ----------
    tech
        The technology (``"sot-mram"``, ``"nor"`` or a :class:`Technology`).
    rows
        The subarray height; allocating beyond it raises :class:`RowsExhaustedError`.
    """

    def __init__(self, tech: str | Technology, *, rows: int = 256) -> None:
        self.tech = technology(tech)
        if not isinstance(rows, int) or rows < 2:
            raise ValueError(f"rows must be an int >= 2, not {rows!r}")
        self.rows = rows
        self._instrs: list[Instr] = []
        self._free = list(range(rows - 1, -1, -1))  # pop() hands out the lowest row first
        self._const: dict[int, int] = {}

    # -- rows ---------------------------------------------------------------------------------

    def alloc(self) -> int:
        """A free row."""
        if not self._free:
            raise RowsExhaustedError(f"program needs more than {self.rows} rows")
        return self._free.pop()

    def free(self, *rows: int | Iterable[int]) -> None:
        """Return rows (ints or iterables of ints) to the pool; constants are kept."""
        for r in rows:
            if isinstance(r, Iterable):
                self.free(*r)
            elif r not in self._const.values() and r not in self._free:
                self._free.append(r)
        self._free.sort(reverse=True)

    @property
    def free_rows(self) -> int:
        """Rows not allocated now."""
        return len(self._free)

    def emit(self, op: Op, d: int = 0, a: int = 0, b: int = 0, c: int = 0, e: int = 0) -> None:
        """Append a micro-op; it must exist in the technology."""
        if not self.tech.has(op):
            raise ValueError(f"micro-op must be one of the {self.tech.name} set, not {op.name}")
        self._instrs.append(Instr(op, d=d, a=a, b=b, c=c, e=e))

    def program(self) -> Program:
        """The program built so far."""
        return Program(self.tech, self.rows, tuple(self._instrs))

    # -- stream ports -------------------------------------------------------------------------

    def load(self, n: int) -> list[int]:
        """``n`` rows filled from the input stream, in order (bit 0 first for an operand)."""
        out = []
        for _ in range(n):
            r = self.alloc()
            self.emit(Op.LOAD, d=r)
            out.append(r)
        return out

    def store(self, rows: Sequence[int]) -> None:
        """Send ``rows`` to the output stream, in order."""
        for r in rows:
            self.emit(Op.STORE, a=r)

    # -- gates --------------------------------------------------------------------------------

    @property
    def _magic(self) -> bool:
        return not self.tech.has(Op.NOR)

    def _mnor(self, a: int, b: int | None = None) -> int:
        d = self.alloc()
        self.emit(Op.INIT1, d=d)
        if b is None:
            self.emit(Op.MNOT, d=d, a=a)
        else:
            self.emit(Op.MNOR, d=d, a=a, b=b)
        return d

    def _native(self, op: Op, *src: int) -> int:
        d = self.alloc()
        a, b, c = (*src, 0, 0, 0)[:3]
        self.emit(op, d=d, a=a, b=b, c=c)
        return d

    def const(self, value: int) -> int:
        """A shared row holding ``value`` (0 or 1) in every column."""
        if value not in (0, 1):
            raise ValueError(f"constant must be 0 or 1, not {value!r}")
        if value not in self._const:
            d = self.alloc()
            self.emit(Op.INIT1 if value else Op.INIT0, d=d)
            self._const[value] = d
        return self._const[value]

    def copy(self, a: int) -> int:
        """``a``."""
        if self._magic:
            t = self._mnor(a)
            d = self._mnor(t)
            self.free(t)
            return d
        return self._native(Op.COPY, a)

    def not_(self, a: int) -> int:
        """``¬a``."""
        return self._mnor(a) if self._magic else self._native(Op.NOT, a)

    def nor(self, a: int, b: int) -> int:
        """``¬(a ∨ b)``."""
        return self._mnor(a, b) if self._magic else self._native(Op.NOR, a, b)

    def or_(self, a: int, b: int) -> int:
        """``a ∨ b``."""
        if self._magic:
            t = self._mnor(a, b)
            d = self._mnor(t)
            self.free(t)
            return d
        return self._native(Op.OR, a, b)

    def and_(self, a: int, b: int) -> int:
        """``a ∧ b``."""
        if self._magic:
            na, nb = self._mnor(a), self._mnor(b)
            d = self._mnor(na, nb)
            self.free(na, nb)
            return d
        return self._native(Op.AND, a, b)

    def andn(self, a: int, b: int) -> int:
        """``a ∧ ¬b``."""
        if self._magic:
            na = self._mnor(a)
            d = self._mnor(na, b)
            self.free(na)
            return d
        nb = self._native(Op.NOT, b)
        d = self._native(Op.AND, a, nb)
        self.free(nb)
        return d

    def xnor(self, a: int, b: int) -> int:
        """``¬(a ⊕ b)``."""
        if self._magic:
            t1 = self._mnor(a, b)
            t2, t3 = self._mnor(a, t1), self._mnor(b, t1)
            d = self._mnor(t2, t3)
            self.free(t1, t2, t3)
            return d
        return self._native(Op.XNOR, a, b)

    def xor(self, a: int, b: int) -> int:
        """``a ⊕ b``."""
        if self._magic:
            t = self.xnor(a, b)
            d = self._mnor(t)
            self.free(t)
            return d
        return self._native(Op.XOR, a, b)

    def maj(self, a: int, b: int, c: int) -> int:
        """``maj(a, b, c)``."""
        if self._magic:
            ab, ac, bc = self._mnor(a, b), self._mnor(a, c), self._mnor(b, c)
            u = self._mnor(ab, ac)  # ¬(¬(a∨b) ∨ ¬(a∨c))
            v = self._mnor(u)
            d = self._mnor(v, bc)
            self.free(ab, ac, bc, u, v)
            return d
        return self._native(Op.MAJ, a, b, c)

    def fa(self, a: int, b: int, c: int) -> tuple[int, int]:
        """Full addition: ``(a ⊕ b ⊕ c, maj(a, b, c))`` as two new rows (sum, carry)."""
        if self._magic:  # the nine-NOR full adder
            t1 = self._mnor(a, b)
            t2, t3 = self._mnor(a, t1), self._mnor(b, t1)
            t4 = self._mnor(t2, t3)  # a xnor b
            t5 = self._mnor(t4, c)
            t6, t7 = self._mnor(t4, t5), self._mnor(c, t5)
            s = self._mnor(t6, t7)
            carry = self._mnor(t1, t5)
            self.free(t1, t2, t3, t4, t5, t6, t7)
            return s, carry
        s, carry = self.alloc(), self.alloc()
        self.emit(Op.FA, d=s, a=a, b=b, c=c, e=carry)
        return s, carry

    def mux(self, s: int, a: int, b: int) -> int:
        """``a`` where ``s`` is 1, else ``b``."""
        if self._magic:
            ns = self._mnor(s)
            x, y = self._mnor(a, ns), self._mnor(b, s)
            d = self._mnor(x, y)
            self.free(ns, x, y)
            return d
        x = self._native(Op.XOR, a, b)
        y = self._native(Op.AND, s, x)
        d = self._native(Op.XOR, b, y)
        self.free(x, y)
        return d


def to_rows(values, bits: int) -> np.ndarray:
    """Bit-transpose integers: a (bits, C) bool array, row ``i`` holding bit ``i`` of each."""
    v = np.asarray(values).astype(np.uint64, copy=False).ravel()
    shifts = np.arange(bits, dtype=np.uint64)[:, None]
    return ((v[None, :] >> shifts) & np.uint64(1)).astype(bool)


def from_rows(rows: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_rows`: uint64 values from a (bits, C) bool array."""
    rows = np.asarray(rows, dtype=bool)
    weights = np.left_shift(np.uint64(1), np.arange(rows.shape[0], dtype=np.uint64))
    return (rows.astype(np.uint64) * weights[:, None]).sum(axis=0, dtype=np.uint64)


def execute(program: Program, inputs: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Run ``program`` on a subarray of ``program.rows`` × C cells, micro-op by micro-op.

    Parameters
    ----------
    program
        The program.
    inputs
        (``program.loads``, C) bool: the rows its LOADs read, in order.
    seed
        Seeds the cells' initial contents (random bits: an array is never zeroed for free).

    Returns
    -------
    numpy.ndarray
        (``program.stores``, C) bool: the rows its STOREs wrote, in order.
    """
    inputs = np.asarray(inputs, dtype=bool)
    if inputs.ndim != 2 or inputs.shape[0] != program.loads:
        raise ValueError(
            f"inputs must be ({program.loads}, columns) bool, not shape {inputs.shape}"
        )
    cols = inputs.shape[1]
    rng = np.random.default_rng(seed)
    m = rng.integers(0, 2, size=(program.rows, cols), dtype=np.uint8).astype(bool)
    out = []
    feed = iter(inputs)
    for i in program.instrs:
        op = i.op
        if op is Op.LOAD:
            m[i.d] = next(feed)
        elif op is Op.STORE:
            out.append(m[i.a].copy())
        elif op is Op.INIT0:
            m[i.d] = False
        elif op is Op.INIT1:
            m[i.d] = True
        elif op is Op.COPY:
            m[i.d] = m[i.a]
        elif op is Op.NOT:
            m[i.d] = ~m[i.a]
        elif op is Op.AND:
            m[i.d] = m[i.a] & m[i.b]
        elif op is Op.OR:
            m[i.d] = m[i.a] | m[i.b]
        elif op is Op.NOR:
            m[i.d] = ~(m[i.a] | m[i.b])
        elif op is Op.XOR:
            m[i.d] = m[i.a] ^ m[i.b]
        elif op is Op.XNOR:
            m[i.d] = ~(m[i.a] ^ m[i.b])
        elif op is Op.MAJ:
            a, b, c = m[i.a], m[i.b], m[i.c]
            m[i.d] = (a & b) | (a & c) | (b & c)
        elif op is Op.FA:
            a, b, c = m[i.a].copy(), m[i.b].copy(), m[i.c].copy()
            m[i.d] = a ^ b ^ c
            m[i.e] = (a & b) | (a & c) | (b & c)
        elif op is Op.MNOR:
            m[i.d] &= ~(m[i.a] | m[i.b])
        elif op is Op.MNOT:
            m[i.d] &= ~m[i.a]
        else:  # pragma: no cover - Op is closed
            raise ValueError(f"unknown micro-op {op!r}")
    if not out:
        return np.zeros((0, cols), dtype=bool)
    return np.stack(out)
