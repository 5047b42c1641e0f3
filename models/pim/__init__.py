"""The processing-in-memory family (``docs/pim.md``).

- :mod:`codesign.models.pim.isa` — the micro-ops of a digital bit-serial subarray and the two
  technologies (SOT-MRAM-style, NOR-only MAGIC baseline) with their cycles per micro-op;
- :mod:`codesign.models.pim.program` — the program builder (gates lowered to a technology's
  micro-ops) and the golden executor that runs a program bit by bit;
- :mod:`codesign.models.pim.integer` — integer add, subtract, multiply, compare, ReLU and dot
  product programs;
- :mod:`codesign.models.pim.fp` — IEEE 754 add and multiply (fp32, bf16) as micro-op programs,
  ``fp_add(a, b, fmt)`` and ``fp_mul(a, b, fmt)`` on raw bit patterns
  (:mod:`codesign.models.pim.fp_rows`: their row-level building blocks);
- :mod:`codesign.models.pim.layer` — a network's dense layer on one subarray (one neuron per
  column), the mapping the RTL and the cycle model share;
- :mod:`codesign.models.pim.analog` — the integer-exact analog crossbar (bit-sliced weights,
  DAC cycles, ADC transfer function, shift-and-add, offset correction) and its error tables.
"""

from .fp import fp_add, fp_mul

__all__ = ["fp_add", "fp_mul"]
