"""Hardware of the binary-neuron family.

- :mod:`codesign.hdl.binary.tulip` — the TULIP PE array executing a mapper schedule;
- :mod:`codesign.hdl.binary.mst` — the binary MVAU that computes channels in MST reuse order.
"""
