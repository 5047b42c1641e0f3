"""The processing-in-memory family (``docs/pim.md``).

- :mod:`codesign.models.pim.isa` — the micro-ops of a digital bit-serial subarray and the two
  technologies (SOT-MRAM-style, NOR-only MAGIC baseline) with their cycles per micro-op;
- :mod:`codesign.models.pim.program` — the program builder (gates lowered to a technology's
  micro-ops) and the golden executor that runs a program bit by bit;
- :mod:`codesign.models.pim.integer` — integer add, subtract, multiply, compare, ReLU and dot
  product programs.
"""
