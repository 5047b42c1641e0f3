"""Hardware of the binary-neuron family.

- :mod:`hdl.binary.tulip` — the TULIP PE array executing a mapper schedule;
- :mod:`hdl.binary.mst` — the binary MVAU that computes channels in MST reuse order.
"""
