"""Cycle and energy models of the binary-neuron family.

- :mod:`codesign.sim.binary.tulip` — cycles of the TULIP PE array for a mapped network;
- :mod:`codesign.sim.binary.mst` — cycles of the MST-reuse binary MVAU;
- :mod:`codesign.sim.binary.energy` — energy per classification, TLN array vs a MAC baseline, from
  the project's one energy parameter table ``sim/energy.csv`` (one source per value).
"""
