"""Golden model of an imported QONNX network against qonnx's ``execute_onnx``, same inputs.

For each fixture in ``../shared/fixtures/qonnx/`` (or the paths given), in one run:

- **golden**: ``codesign.models.golden.golden(net, x)`` on ``--batch`` random inputs on the input
  type's grid (the imported integer network);
- **execute_onnx, batched**: qonnx's executor on the same inputs as one batch (the graph's
  batch size changed to ``--batch``, as ``codesign import --check`` runs it);
- **execute_onnx, one by one**: the executor on ``--single`` of those inputs, one call per
  input with the graph's own batch size 1 (how a QONNX user runs a model).

Inferences per second of each; the ratios golden / executor within the run are the figures
that matter (target: at least 1000x). Medians of ``--repeat`` timings.

Run from the project root::

    .venv/bin/python benchmarks/import_qonnx.py [MODEL.onnx ...] [--batch 1000] [--single 50]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from codesign.models.golden import golden, random_inputs

import codesign

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "qonnx"


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--single", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    models = args.models or sorted(FIXTURES.glob("*.onnx"))
    if not models:
        sys.exit(f"no models given and no fixtures in {FIXTURES}")
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}")
    for path in models:
        _measure(path, args, execute_onnx, ChangeBatchSize, InferShapes)


def _measure(path, args, execute_onnx, ChangeBatchSize, InferShapes) -> None:
    from codesign.importer.common import affine_value  # the check's own input scaling

    net = codesign.load(path)
    info = net.imported
    n = args.batch
    x_int = random_inputs(net, n, 0)
    x = affine_value(
        x_int.reshape(n, 1, -1),
        np.array([info.input_real_scale]),
        np.array([0], dtype=object),
    ).reshape(n, *info.onnx_input_shape)
    x32 = x.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batched = info.model.transform(ChangeBatchSize(n)).transform(InferShapes())
        single = info.model
        t_gold = _median(lambda: golden(net, x_int), args.repeat)
        t_batch = _median(lambda: execute_onnx(batched, {info.input_name: x32}), args.repeat)
        k = min(args.single, n)
        t_single = _median(
            lambda: [execute_onnx(single, {info.input_name: x32[i : i + 1]}) for i in range(k)],
            max(1, args.repeat // 2),
        )
    g, b, s = n / t_gold, n / t_batch, k / t_single
    print(
        f"{path.name}: golden {g:.3g}/s; execute_onnx batched {b:.3g}/s (ratio "
        f"{g / b:.0f}x); one by one {s:.3g}/s (ratio {g / s:.0f}x)",
        flush=True,
    )


if __name__ == "__main__":
    main()
