"""QONNX import: lower a quantized ONNX graph to the integer Network IR, exactly.

The graph is read with ``qonnx`` (cleanup: shape inference, constant folding, unique names),
then walked in topological order. Every activation is carried as an integer tensor of the IR
together with an exact affine map to the real value it stands for
(``real = scale * int + offset``, per channel, as :class:`fractions.Fraction`) and a chain of
pending element-wise ONNX nodes. A quantizer (``Quant``, ``IntQuant``, ``BipolarQuant``,
``MultiThreshold``) ends the chain: it becomes a
:class:`~codesign.models.activations.MultiThreshold`
whose integer thresholds are found by bisection on the source's own function, so the integer
comparison agrees with it at every integer accumulator value. A chain of only ``Add``/``Sub``/
``Mul``/``Div``/``Relu``/``Clip`` is evaluated exactly (rationals); a chain holding float-only
work (``BatchNormalization``) is evaluated in float32 by onnxruntime and qonnx's own quantizer
code, since that float32 computation is what the model means. See ``docs/import.md``.

Modules: ``read`` (reading, support check, cleanup), ``floateval`` (float evaluation of nodes,
:func:`evaluate_graph`), ``lower`` (:class:`ImportInfo` and the walk, element-wise ops),
``quantizers`` and ``products`` (the walk's quantizer and product/data-movement ops),
``api`` (:func:`import_qonnx`, :func:`save_import`), ``check`` (:func:`check_import`).
"""

from .api import import_qonnx, save_import
from .check import check_import as check_import
from .common import EXACT_CHAIN as EXACT_CHAIN
from .common import HOST_OPS as HOST_OPS
from .common import MAX_LEVELS as MAX_LEVELS
from .common import SUPPORTED as SUPPORTED
from .common import ImportError_
from .floateval import evaluate_graph as evaluate_graph
from .lower import ImportInfo

__all__ = ["ImportError_", "ImportInfo", "import_qonnx", "save_import"]
