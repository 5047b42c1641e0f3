"""The micro-op set of a digital bit-serial PIM subarray, and the two technologies that run it.

A subarray holds R rows × C columns of one-bit cells. Operands are stored bit-transposed: one
element per column, bit ``i`` of an n-bit operand in row ``base + i``. A micro-op acts on whole
rows at once — every column in the same cycle — so an element-parallel, bit-serial program
computes C results in the time one takes (``docs/pim.md``).

The micro-ops (:class:`Op`) and what each does to the destination row ``d`` (and ``e``):

========  =====================================  ================================================
op        effect on every column                 where it comes from
========  =====================================  ================================================
INIT0/1   ``d ← 0`` / ``d ← 1``                   a row write of a constant
COPY      ``d ← a``                              read through the sense amplifier, write back
NOT       ``d ← ¬a``                             the sense amplifier's inverted output
AND, OR   ``d ← a ∧ b`` / ``a ∨ b``               two-row activation against a reference between
                                                 the 1-of-2 and 2-of-2 (0-of-2, 1-of-2) currents
NOR, XOR  ``d ← ¬(a ∨ b)`` / ``a ⊕ b``           the same sensing with two references (XOR = OR ∧
XNOR                                             ¬AND in the sense amplifier's logic)
MAJ       ``d ← maj(a, b, c)``                   triple-row activation, one reference
FA        ``d ← a ⊕ b ⊕ c``, ``e ← maj(a, b, c)`` in-array full addition: carry then sum
MNOR      ``d ← d ∧ ¬(a ∨ b)``                   MAGIC NOR: the output cell, initialised to 1,
                                                 switches to 0 when an input is 1
MNOT      ``d ← d ∧ ¬a``                         MAGIC NOT (one-input NOR)
LOAD      ``d ← `` the next row of the input     the array's write port (a stream beat)
STORE     the output stream ``← a``              the array's read port (a stream beat)
========  =====================================  ================================================

MNOR and MNOT keep the physics of MAGIC: a gate whose output row was not initialised to 1
computes the AND of the old value with the NOR, so a program that forgets an INIT1 is wrong in
the golden model just as it would be in the array.

Two technologies (:data:`SOT_MRAM`, :data:`NOR_ONLY`) say which micro-ops exist and how many
array cycles each takes; :mod:`codesign.models.pim.program` lowers gates to the micro-ops a
technology has. The cycle counts here are facts the cycle model (``sim/pim``) and the RTL
(``hdl/pim``) both read.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = [
    "NOR_ONLY",
    "OPERAND_ROWS",
    "SOT_MRAM",
    "TECHNOLOGIES",
    "Instr",
    "Op",
    "Technology",
    "decode",
    "encode",
    "instr_bits",
    "row_bits",
    "technology",
]


class Op(enum.IntEnum):
    """A micro-op. The value is its 4-bit opcode in the instruction word (:func:`encode`)."""

    INIT0 = 0
    INIT1 = 1
    COPY = 2
    NOT = 3
    AND = 4
    OR = 5
    NOR = 6
    XOR = 7
    XNOR = 8
    MAJ = 9
    FA = 10
    MNOR = 11
    MNOT = 12
    LOAD = 13
    STORE = 14


#: How many source rows (``a``, ``b``, ``c``) each op reads, and whether it writes ``d``/``e``.
OPERAND_ROWS = MappingProxyType(
    {
        Op.INIT0: 0,
        Op.INIT1: 0,
        Op.COPY: 1,
        Op.NOT: 1,
        Op.AND: 2,
        Op.OR: 2,
        Op.NOR: 2,
        Op.XOR: 2,
        Op.XNOR: 2,
        Op.MAJ: 3,
        Op.FA: 3,
        Op.MNOR: 2,
        Op.MNOT: 1,
        Op.LOAD: 0,
        Op.STORE: 1,
    }
)


@dataclass(frozen=True)
class Instr:
    """One micro-op with its row addresses (unused fields are 0).

    ``d`` is the destination row (``e`` the second one, FA's carry); ``a``, ``b``, ``c`` are the
    source rows.
    """

    op: Op
    d: int = 0
    a: int = 0
    b: int = 0
    c: int = 0
    e: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.op, Op):
            raise TypeError(f"op must be an Op, not {self.op!r}")
        for name in ("d", "a", "b", "c", "e"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"row {name} must be a non-negative int, not {value!r}")

    def __str__(self) -> str:
        n = OPERAND_ROWS[self.op]
        src = ", ".join(f"r{r}" for r in (self.a, self.b, self.c)[:n])
        if self.op is Op.STORE:
            return f"STORE {src}"
        dst = f"r{self.d}" + (f", r{self.e}" if self.op is Op.FA else "")
        return f"{self.op.name} {dst}" + (f" <- {src}" if src else "")


def row_bits(rows: int) -> int:
    """Bits of a row address in a subarray of ``rows`` rows."""
    if not isinstance(rows, int) or rows < 2:
        raise ValueError(f"rows must be an int >= 2, not {rows!r}")
    return (rows - 1).bit_length()


def instr_bits(rows: int) -> int:
    """Width of an instruction word: a 4-bit opcode and five row addresses."""
    return 4 + 5 * row_bits(rows)


def encode(instr: Instr, rows: int) -> int:
    """The instruction word of ``instr``: ``op | d | e | a | b | c`` from the low bits up."""
    w = row_bits(rows)
    word = int(instr.op)
    for k, value in enumerate((instr.d, instr.e, instr.a, instr.b, instr.c)):
        if value >= rows:
            raise ValueError(f"row address must be < {rows}, not {value!r} in {instr}")
        word |= value << (4 + k * w)
    return word


def decode(word: int, rows: int) -> Instr:
    """The inverse of :func:`encode`."""
    w = row_bits(rows)
    mask = (1 << w) - 1
    d, e, a, b, c = ((word >> (4 + k * w)) & mask for k in range(5))
    return Instr(Op(word & 0xF), d=d, a=a, b=b, c=c, e=e)


@dataclass(frozen=True)
class Technology:
    """A cell technology: the micro-ops its subarray executes and their array cycles.

    Parameters
    ----------
    name
        The name the CLI and the tables use (``sot-mram``, ``nor``).
    cycles
        Array cycles of each micro-op the technology has; a micro-op not listed does not exist
        in it (the program builder lowers around it).
    basis
        One line saying where the micro-op set comes from (``docs/pim.md`` has the argument).
    """

    name: str
    cycles: MappingProxyType = field(repr=False)
    basis: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cycles", MappingProxyType(dict(self.cycles)))
        for op, n in self.cycles.items():
            if not isinstance(op, Op) or not isinstance(n, int) or n < 1:
                raise ValueError(f"cycles must map Op to an int >= 1, not {op!r}: {n!r}")

    def has(self, op: Op) -> bool:
        """Whether the subarray executes ``op`` natively."""
        return op in self.cycles


#: SOT-MRAM-style subarray (the ISCAS 2020 seed's idea): separate read and write paths let a
#: sensed result be written back in the same cycle; two-row activation with one or two
#: references gives AND/OR/NOR/XOR/XNOR, triple-row activation gives MAJ, and the in-array
#: full adder senses the carry (MAJ) and then the sum (XOR3) — two cycles.
SOT_MRAM = Technology(
    "sot-mram",
    {
        Op.INIT0: 1,
        Op.INIT1: 1,
        Op.COPY: 1,
        Op.NOT: 1,
        Op.AND: 1,
        Op.OR: 1,
        Op.NOR: 1,
        Op.XOR: 1,
        Op.XNOR: 1,
        Op.MAJ: 1,
        Op.FA: 2,
        Op.LOAD: 1,
        Op.STORE: 1,
    },
    basis="multi-row sensing with one or two references; in-array full addition in 2 cycles",
)

#: NOR-only (MAGIC-style memristive) subarray, the baseline AritPIM counts against: every gate
#: is a NOR (or NOT) whose output row is first initialised to 1, one cycle each.
NOR_ONLY = Technology(
    "nor",
    {
        Op.INIT0: 1,
        Op.INIT1: 1,
        Op.MNOR: 1,
        Op.MNOT: 1,
        Op.LOAD: 1,
        Op.STORE: 1,
    },
    basis="MAGIC NOR/NOT, each gate's output initialised to 1 by its own cycle",
)

TECHNOLOGIES = MappingProxyType({t.name: t for t in (SOT_MRAM, NOR_ONLY)})


def technology(name: str | Technology) -> Technology:
    """The technology called ``name`` (``sot-mram`` or ``nor``)."""
    if isinstance(name, Technology):
        return name
    try:
        return TECHNOLOGIES[name]
    except (KeyError, TypeError):
        known = ", ".join(TECHNOLOGIES)
        raise ValueError(f"technology must be one of {known}, not {name!r}") from None
