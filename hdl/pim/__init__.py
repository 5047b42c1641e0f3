"""Amaranth hardware of the processing-in-memory family (``docs/pim.md``)."""
