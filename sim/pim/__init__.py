"""Cycle, energy and area model of the processing-in-memory family (``docs/pim.md``)."""
