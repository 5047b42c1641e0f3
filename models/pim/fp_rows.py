"""Row-level building blocks of the floating-point PIM programs (:mod:`.fp`).

:class:`Gates` wraps a :class:`~codesign.models.pim.program.Builder`: every row it hands out
carries a reference count (so a gate that folds to one of its inputs, ``x ∧ 1 = x``, can return
that row without a copy), gates on constant rows fold away at build time (a shift by a constant
is re-indexing, and the zeros it shifts in cost nothing), and a few gates take the cheaper form
their technology offers (a NOR-only array muxes with one shared ``¬s``, builds a half adder from
five NORs and a partial product from one NOR of complemented operands).

The helpers below it are the datapath pieces both algorithms share: OR/AND trees, ripple
addition, the logarithmic right shifter that collects a sticky bit, the leading-zero normaliser
(optionally limited by an exponent budget), the shift-and-add multiplier that folds its low bits
into a sticky bit, and the round-to-nearest-even step that packs exponent and significand.

Every function takes rows it does not consume (the caller still owns them) and returns rows the
caller owns, except where a docstring says *consumes*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from .isa import Op
from .program import Builder

__all__ = [
    "Gates",
    "add",
    "all_",
    "any_",
    "multiply",
    "normalize_left",
    "round_pack",
    "shift_right_sticky",
]

Rows = list[int]


class Gates:
    """Reference-counted, constant-folding gates over a :class:`Builder`.

    Parameters
    ----------
    builder
        The builder the micro-ops go to.
    """

    def __init__(self, builder: Builder) -> None:
        self.b = builder
        self.nor_only = not builder.tech.has(Op.NOR)
        self._refs: dict[int, int] = {}
        self._const: dict[int, int] = {}

    # -- ownership ----------------------------------------------------------------------------

    def const(self, value: int) -> int:
        """The shared row holding ``value`` (0 or 1); never freed."""
        r = self.b.const(value)
        self._const[r] = value
        return r

    def value(self, r: int) -> int | None:
        """0 or 1 if ``r`` is a constant row, else None."""
        return self._const.get(r)

    def adopt(self, r: int) -> int:
        """Take ownership of a fresh row the builder (or a builder-level helper) returned."""
        if r in self._const:
            return r
        if r in self._refs:
            raise ValueError(f"row must be fresh to be adopted, not the live row {r}")
        self._refs[r] = 1
        return r

    def ref(self, r: int) -> int:
        """One more reference to a live row (constants are not counted)."""
        if r not in self._const:
            self._refs[r] += 1
        return r

    def free(self, *rows: int | Iterable[int] | None) -> None:
        """Drop one reference to each row (ints, iterables of ints; None is ignored)."""
        for r in rows:
            if r is None:
                continue
            if not isinstance(r, int):
                self.free(*r)
                continue
            if r in self._const:
                continue
            n = self._refs[r] - 1
            if n:
                self._refs[r] = n
            else:
                del self._refs[r]
                self.b.free(r)

    def load(self, n: int) -> Rows:
        """``n`` rows from the input stream."""
        return [self.adopt(r) for r in self.b.load(n)]

    @property
    def live(self) -> int:
        """Rows held now (constants excluded)."""
        return len(self._refs)

    # -- gates --------------------------------------------------------------------------------

    def not_(self, a: int) -> int:
        """``¬a``."""
        va = self.value(a)
        if va is not None:
            return self.const(1 - va)
        return self.adopt(self.b.not_(a))

    def and_(self, a: int, b: int) -> int:
        """``a ∧ b``."""
        va, vb = self.value(a), self.value(b)
        if va == 0 or vb == 0:
            return self.const(0)
        if va == 1:
            return self.ref(b)
        if vb == 1 or a == b:
            return self.ref(a)
        return self.adopt(self.b.and_(a, b))

    def or_(self, a: int, b: int) -> int:
        """``a ∨ b``."""
        va, vb = self.value(a), self.value(b)
        if va == 1 or vb == 1:
            return self.const(1)
        if va == 0:
            return self.ref(b)
        if vb == 0 or a == b:
            return self.ref(a)
        return self.adopt(self.b.or_(a, b))

    def nor(self, a: int, b: int) -> int:
        """``¬(a ∨ b)``."""
        va, vb = self.value(a), self.value(b)
        if va == 1 or vb == 1:
            return self.const(0)
        if va == 0:
            return self.not_(b)
        if vb == 0 or a == b:
            return self.not_(a)
        return self.adopt(self.b.nor(a, b))

    def andn(self, a: int, b: int) -> int:
        """``a ∧ ¬b``."""
        va, vb = self.value(a), self.value(b)
        if va == 0 or vb == 1 or a == b:
            return self.const(0)
        if vb == 0:
            return self.ref(a)
        if va == 1:
            return self.not_(b)
        return self.adopt(self.b.andn(a, b))

    def xor(self, a: int, b: int) -> int:
        """``a ⊕ b``."""
        va, vb = self.value(a), self.value(b)
        if a == b:
            return self.const(0)
        if va is not None and vb is not None:
            return self.const(va ^ vb)
        if va is not None:
            return self.not_(b) if va else self.ref(b)
        if vb is not None:
            return self.not_(a) if vb else self.ref(a)
        return self.adopt(self.b.xor(a, b))

    def xnor(self, a: int, b: int) -> int:
        """``¬(a ⊕ b)``."""
        va, vb = self.value(a), self.value(b)
        if a == b:
            return self.const(1)
        if va is not None or vb is not None:
            t = self.xor(a, b)
            d = self.not_(t)
            self.free(t)
            return d
        return self.adopt(self.b.xnor(a, b))

    def half_add(self, a: int, b: int) -> tuple[int, int]:
        """``(a ⊕ b, a ∧ b)``; five NORs on a NOR-only array."""
        if self.value(a) is not None or self.value(b) is not None or a == b:
            return self.xor(a, b), self.and_(a, b)
        if not self.nor_only:
            return self.xor(a, b), self.and_(a, b)
        t = self.b.nor(a, b)
        na, nb = self.b.not_(a), self.b.not_(b)
        c = self.b.nor(na, nb)
        s = self.b.nor(t, c)
        self.b.free(t, na, nb)
        return self.adopt(s), self.adopt(c)

    def fa(self, a: int, b: int, c: int) -> tuple[int, int]:
        """Full addition ``(a ⊕ b ⊕ c, maj(a, b, c))``, folding constant inputs."""
        ins = [a, b, c]
        consts = [self.value(r) for r in ins]
        k = sum(v for v in consts if v is not None)
        var = [r for r, v in zip(ins, consts, strict=True) if v is None]
        if len(var) == 0:
            return self.const(k & 1), self.const(k >> 1)
        if len(var) == 1:
            x = var[0]
            if k == 0:
                return self.ref(x), self.const(0)
            if k == 1:
                return self.not_(x), self.ref(x)
            return self.ref(x), self.const(1)
        if len(var) == 2:
            x, y = var
            if k == 0:
                return self.half_add(x, y)
            return self.xnor(x, y), self.or_(x, y)
        s, carry = self.b.fa(a, b, c)
        return self.adopt(s), self.adopt(carry)

    def muxes(self, s: int, xs: Sequence[int], ys: Sequence[int], ns: int | None = None) -> Rows:
        """``xs[i]`` where ``s`` is 1, else ``ys[i]``, for every ``i`` (``ns``: ``¬s`` if known).

        ``¬s`` is computed at most once and shared by every mux that needs it.
        """
        cache = [] if ns is None else [ns]
        owned = ns is None

        def get_ns() -> int:
            if not cache:
                cache.append(self.not_(s))
            return cache[0]

        out = [self._mux(s, x, y, get_ns) for x, y in zip(xs, ys, strict=True)]
        if owned and cache:
            self.free(cache[0])
        return out

    def mux(self, s: int, x: int, y: int) -> int:
        """``x`` where ``s`` is 1, else ``y``."""
        return self.muxes(s, [x], [y])[0]

    def _mux(self, s: int, x: int, y: int, get_ns: Callable[[], int]) -> int:
        vs, vx, vy = self.value(s), self.value(x), self.value(y)
        if vs is not None:
            return self.ref(x if vs else y)
        if x == y:
            return self.ref(x)
        if vx == 1 and vy == 0:
            return self.ref(s)
        if vx == 0 and vy == 1:
            return self.ref(get_ns())
        if vx == 0:  # y ∧ ¬s
            return self.andn(y, s) if self.nor_only else self.and_(y, get_ns())
        if vy == 0:  # x ∧ s
            return self.andn(x, get_ns()) if self.nor_only else self.and_(x, s)
        if vx == 1:
            return self.or_(s, y)
        if vy == 1:
            return self.or_(get_ns(), x)
        if self.nor_only:  # ¬(¬x ∧ s ∨ ¬y ∧ ¬s): three NORs around the shared ¬s
            p, q = self.b.nor(x, get_ns()), self.b.nor(y, s)
            d = self.b.nor(p, q)
            self.b.free(p, q)
            return self.adopt(d)
        return self.adopt(self.b.mux(s, x, y))

    def swap(self, s: int, xs: Sequence[int], ys: Sequence[int]) -> tuple[Rows, Rows]:
        """``(ys, xs)`` where ``s`` is 1, else ``(xs, ys)``, row by row."""
        if self.nor_only:
            return self.muxes(s, ys, xs), self.muxes(s, xs, ys)
        out_x, out_y = [], []
        for x, y in zip(xs, ys, strict=True):  # t = s ∧ (x ⊕ y); x ⊕ t, y ⊕ t: 4 ops for 2
            d = self.xor(x, y)
            t = self.and_(s, d)
            out_x.append(self.xor(x, t))
            out_y.append(self.xor(y, t))
            self.free(d, t)
        return out_x, out_y


# -- trees and adders ---------------------------------------------------------------------------


def _tree(g: Gates, rows: Sequence[int], op: Callable[[int, int], int], empty: int) -> int:
    level = [g.ref(r) for r in rows]
    if not level:
        return g.const(empty)
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level) - 1, 2):
            nxt.append(op(level[i], level[i + 1]))
            g.free(level[i], level[i + 1])
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def any_(g: Gates, rows: Sequence[int]) -> int:
    """The OR of ``rows`` (0 for none), as a balanced tree."""
    return _tree(g, rows, g.or_, 0)


def all_(g: Gates, rows: Sequence[int]) -> int:
    """The AND of ``rows`` (1 for none), as a balanced tree."""
    return _tree(g, rows, g.and_, 1)


def add(g: Gates, xs: Sequence[int], ys: Sequence[int], cin: int | None = None) -> tuple[Rows, int]:
    """``xs + ys + cin`` by ripple carry: (``len(xs)`` sum rows, carry-out); equal widths."""
    if len(xs) != len(ys):
        raise ValueError(f"operands must have equal widths, not {len(xs)} and {len(ys)}")
    carry = g.ref(cin) if cin is not None else g.const(0)
    out = []
    for x, y in zip(xs, ys, strict=True):
        s, c = g.fa(x, y, carry)
        g.free(carry)
        carry = c
        out.append(s)
    return out, carry


# -- shifters -----------------------------------------------------------------------------------


def shift_right_sticky(g: Gates, v: Rows, amount: Sequence[int]) -> Rows:
    """Consumes ``v``: ``v`` shifted right by the number whose bit ``k`` is ``amount[k]``.

    Row 0 is the sticky position: bits shifted out past it are ORed into it. One stage per
    amount bit (a logarithmic shifter); a stage of ``2^k ≥ len(v) − 1`` sends every row into
    the sticky bit.
    """
    n = len(v)
    zero = g.const(0)
    for k, c in enumerate(amount):
        s = 1 << k
        lost = any_(g, v[1 : s + 1])
        t = g.and_(c, lost)
        first = g.or_(v[0], t)
        g.free(lost, t)
        rest = g.muxes(c, [v[i + s] if i + s < n else zero for i in range(1, n)], v[1:])
        g.free(v)
        v = [first, *rest]
    return v


def normalize_left(
    g: Gates, v: Rows, stages: int, budget: Rows | None = None
) -> tuple[Rows, Rows, Rows | None]:
    """Consumes ``v`` (and ``budget``): shift left until the top row is 1, greedily by
    ``2^(stages−1)``, …, 2, 1 — a stage shifts when the top ``2^k`` rows are all 0.

    With ``budget`` (an unsigned number of any width), a stage also needs ``budget ≥ 2^k`` and
    subtracts ``2^k`` from it, so the total shift is ``min(leading zeros, budget)`` (given
    fewer than ``2^stages`` leading zeros). Returns (shifted rows, the shift's bits low first, the
    remaining budget).
    """
    n = len(v)
    zero = g.const(0)
    bits: list[int] = [zero] * stages
    for k in reversed(range(stages)):
        s = 1 << k
        top = any_(g, v[max(n - s, 0) :])
        if budget is None:
            c, nc = g.not_(top), top
        else:
            ge = any_(g, budget[k:])
            c, nc = g.andn(ge, top), None
            g.free(ge, top)
            budget = _decrement_at(g, budget, k, c)
        shifted = [v[i - s] if i >= s else zero for i in range(n)]
        new = g.muxes(c, shifted, v, ns=nc)
        g.free(v, nc)
        v = new
        bits[k] = c
    return v, bits, budget


def _decrement_at(g: Gates, xs: Rows, k: int, c: int) -> Rows:
    """Consumes ``xs``: ``xs − c·2^k`` (no borrow out of the top: the caller checked)."""
    out = xs[:k]
    nb = g.not_(c)  # the borrow, complemented: ¬borrow' = ¬borrow ∨ x
    for x in xs[k:]:
        out.append(g.xnor(x, nb))
        nxt = g.or_(nb, x)
        g.free(nb, x)
        nb = nxt
    g.free(nb)
    return out


# -- multiplier ---------------------------------------------------------------------------------


def multiply(g: Gates, xs: Sequence[int], ys: Sequence[int], keep_from: int) -> tuple[int, Rows]:
    """Unsigned shift-and-add product of two n-row operands.

    Returns (sticky, high): ``sticky`` is the OR of the product's bits below ``keep_from``
    (each folded in as soon as it is final, so its row is freed), ``high`` the bits
    ``keep_from … 2n−1``.
    """
    n = len(xs)
    nor = g.nor_only
    if nor:  # a partial product is one NOR of complemented operands
        nx = [g.not_(x) for x in xs]
        ny = [g.not_(y) for y in ys]

    def pp(i: int, j: int) -> int:
        return g.nor(nx[i], ny[j]) if nor else g.and_(xs[i], ys[j])

    sticky = g.const(0)
    high: Rows = []

    def retire(bit: int, pos: int) -> None:
        nonlocal sticky
        if pos < keep_from:
            t = g.or_(sticky, bit)
            g.free(sticky, bit)
            sticky = t
        else:
            high.append(bit)

    acc = [pp(i, 0) for i in range(n)]  # bits 0 … n−1
    for j in range(1, n):
        retire(acc[0], j - 1)
        window = [*acc[1:], g.const(0)]  # bits j … j+n−1
        carry = g.const(0)
        out = []
        for i in range(n):
            p = pp(i, j)
            s, c = g.fa(window[i], p, carry)
            g.free(p, carry, window[i])
            carry = c
            out.append(s)
        acc = [*out, carry]  # bits j … j+n
    for pos, bit in enumerate(acc, start=n - 1):
        retire(bit, pos)
    if nor:
        g.free(nx, ny)
    return sticky, high


# -- rounding -----------------------------------------------------------------------------------


def round_pack(
    g: Gates,
    sig: Rows,
    guard: int,
    sticky: int,
    base: Rows,
    addend: Rows,
    exp_bits: int,
) -> tuple[Rows, Rows, int]:
    """Round a significand to nearest, ties to even, and form the exponent field.

    ``sig`` holds p rows, the hidden bit on top; ``guard`` is the first bit below it and
    ``sticky`` the OR of all lower ones. The exponent field is
    ``base + addend + (carry out of the rounded fraction)`` — the caller chooses ``base`` and
    ``addend`` so that the hidden bit (or the normalisation it stands for) is counted, and
    gives them wide enough that the sum cannot wrap. Returns (fraction rows, exponent-field
    rows, overflow row: field ≥ all ones in ``exp_bits`` bits).
    """
    zero = g.const(0)
    t = g.or_(sticky, sig[0])
    rnd = g.and_(guard, t)
    g.free(t)
    frac, c = add(g, sig[:-1], [zero] * (len(sig) - 1), cin=rnd)
    g.free(rnd)
    addend = [*addend, *[zero] * (len(base) - len(addend))]
    field, top = add(g, base, addend, cin=c)
    g.free(c, top)
    hi = any_(g, field[exp_bits:])
    ones = all_(g, field[:exp_bits])
    ovf = g.or_(hi, ones)
    g.free(hi, ones)
    return frac, field, ovf
