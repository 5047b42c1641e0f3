"""The threshold-logic neuron (TLN): one programmable cell ``y = [Σ wᵢ·xᵢ ≥ T]``.

A TLN cell has ``fan_in`` binary inputs, small integer weights ``|wᵢ| ≤ max_weight`` and a
threshold ``T``. With the weights fixed, the threshold alone selects the function: three
inputs of weight 1 give OR (``T = 1``), MAJ (``T = 2``) and AND (``T = 3``); a weight of −1
with ``T = 0`` gives NOT, and NAND/NOR follow by negating every weight. Two evaluations make
a full adder::

    carry = [a + b + c ≥ 2]                  (MAJ)
    sum   = [a + b + c − 2·carry ≥ 1]        (a + b + c − 2·carry is the sum bit itself)

Defaults: ``fan_in = 4``, ``max_weight = 2``. This is the smallest cell that evaluates a
full adder's sum in one evaluation (four inputs, one of weight −2); TULIP (Wagle, Khatri,
Vrudhula, ICCD 2020) builds its PE from such programmable cells and also evaluates the
full adder as a carry then a sum. Its published cell parameters are not restated here; the
mapper (:mod:`codesign.models.binary.tulip`) needs exactly the forms above, so any cell at least
this
large runs its schedules unchanged.

The threshold range of a cell is the range of its weighted sums widened by one:
``−fan_in·max_weight ≤ T ≤ fan_in·max_weight + 1`` (beyond it the output is constant).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GATES", "TLNCell", "full_adder", "gate"]


@dataclass(frozen=True)
class TLNCell:
    """A threshold-logic neuron cell's programmable range (see the module docstring)."""

    fan_in: int = 4
    max_weight: int = 2

    def __post_init__(self) -> None:
        for name, lo in (("fan_in", 1), ("max_weight", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"TLN {name} must be an int, not {v!r}")
            if v < lo:
                raise ValueError(f"TLN {name} must be at least {lo}, not {v!r}")

    @property
    def t_min(self) -> int:
        """Lowest useful threshold (the output is 1 for every input at or below it)."""
        return -self.fan_in * self.max_weight

    @property
    def t_max(self) -> int:
        """Highest useful threshold (the output is 0 for every input at it)."""
        return self.fan_in * self.max_weight + 1

    @property
    def weight_bits(self) -> int:
        """Bits of one signed weight in the cell's local memory."""
        return self.max_weight.bit_length() + 1

    @property
    def threshold_bits(self) -> int:
        """Bits of a signed threshold in the cell's local memory."""
        return max(self.t_max.bit_length(), (-self.t_min - 1).bit_length()) + 1

    def check(self, weights, threshold) -> None:
        """Raise ``ValueError`` unless the cell can be programmed with ``weights`` (at most
        ``fan_in`` of them) and ``threshold``."""
        w = np.asarray(weights)
        if w.shape[-1:] and w.shape[-1] > self.fan_in:
            raise ValueError(f"a TLN takes at most {self.fan_in} inputs, not {w.shape[-1]}")
        if w.size and np.abs(w).max() > self.max_weight:
            raise ValueError(
                f"TLN weights must lie in [-{self.max_weight}, {self.max_weight}], not "
                f"{int(w.ravel()[np.abs(w.ravel()).argmax()])}"
            )
        t = np.asarray(threshold)
        if t.size and (t.min() < self.t_min or t.max() > self.t_max):
            bad = t.min() if t.min() < self.t_min else t.max()
            raise ValueError(
                f"TLN thresholds must lie in [{self.t_min}, {self.t_max}], not {int(bad)}"
            )

    def evaluate(self, inputs, weights, threshold) -> np.ndarray:
        """``[Σ wᵢ·xᵢ ≥ T]`` over the last axis of ``inputs`` (bits), as uint8."""
        self.check(weights, threshold)
        x = np.asarray(inputs, dtype=np.int64)
        s = (x * np.asarray(weights, dtype=np.int64)).sum(axis=-1)
        return (s >= np.asarray(threshold)).astype(np.uint8)


#: Gate forms: name → (weights, threshold) of one TLN evaluation.
GATES: dict[str, tuple[tuple[int, ...], int]] = {
    "buf": ((1,), 1),
    "not": ((-1,), 0),
    "and2": ((1, 1), 2),
    "or2": ((1, 1), 1),
    "nand2": ((-1, -1), -1),
    "nor2": ((-1, -1), 0),
    "and3": ((1, 1, 1), 3),
    "or3": ((1, 1, 1), 1),
    "maj3": ((1, 1, 1), 2),
}


def gate(name: str) -> tuple[tuple[int, ...], int]:
    """The ``(weights, threshold)`` of the gate ``name`` (a key of :data:`GATES`)."""
    try:
        return GATES[name]
    except KeyError:
        raise ValueError(f"gate must be one of {', '.join(GATES)}, not {name!r}") from None


def full_adder(a, b, c, cell: TLNCell | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(sum, carry)`` of three bit arrays by two evaluations of ``cell`` (see above)."""
    cell = cell or TLNCell()
    carry = cell.evaluate(np.stack([a, b, c], axis=-1), (1, 1, 1), 2)
    s = cell.evaluate(np.stack([a, b, c, carry], axis=-1), (1, 1, 1, -2), 1)
    return s, carry
