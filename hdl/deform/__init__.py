"""Deformable-convolution hardware (``docs/deformable.md``).

- :mod:`codesign.hdl.deform.window` — :class:`DeformWindow`, the deformable gather unit: a
  frame store in banks and a pipeline that turns offset beats into bilinear tap samples in
  the window order of :class:`codesign.hdl.dataflow.swg.SlidingWindow`.
"""

from .window import DeformWindow

__all__ = ["DeformWindow"]
