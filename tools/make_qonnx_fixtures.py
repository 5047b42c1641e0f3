"""Build small real Brevitas models, export them to QONNX and write reference data.

Run with a throwaway venv that holds torch and Brevitas (never project dependencies)::

    /work/brevitas-venv/bin/python tools/make_qonnx_fixtures.py [-o tests/fixtures/qonnx]
        [--only NAME ...] [--no-check] [--list]

For every fixture ``NAME`` it writes ``NAME.onnx`` (the export) and ``NAME.npz`` with ``x``
(8 seeded sample inputs, float32, the ONNX input's shape with batch 8, on a 2**-8 grid so a
fixed-point input type with at least 8 fraction bits holds them exactly) and ``y`` (Brevitas's
own eval-mode torch outputs for ``x``, float32). Then (unless ``--no-check``) it reloads each
file with qonnx (``ModelWrapper``, ``cleanup_model``), runs ``execute_onnx`` on every sample
of ``x`` and prints a Markdown table: file, size, op types, max |qonnx - torch|.

Everything is seeded: ``torch.manual_seed(seed)`` before a model is built, a seeded
``torch.Generator`` for BatchNorm statistics, calibration batches and sample inputs.
Parameters: random weights (the layers' own seeded init); every BatchNorm gets running
statistics measured on calibration data and then perturbed, random gammas (a quarter of the
channels negative) and betas, so no BatchNorm is an identity; activation quantizers keep
Brevitas's default float (non power-of-two) scales, calibrated by forward passes in train mode
with the BatchNorms held in eval mode.
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

warnings.filterwarnings("ignore")

import brevitas.nn as qnn  # noqa: E402
from brevitas.quant import (  # noqa: E402
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
)

SAMPLES = 8
CALIB_BATCHES = 16
CALIB_BATCH = 32
GRID = 256.0  # sample inputs are multiples of 1/GRID


@dataclass(frozen=True)
class Fixture:
    """One exported model: how to build it, its per-sample input shape and range, and how
    it is exported (``qonnx``: Brevitas ``export_qonnx`` TorchScript; ``qonnx_dynamo``: the
    same with ``dynamo=True``; ``torch``: plain ``torch.onnx.export`` TorchScript)."""

    name: str
    build: Callable[[], nn.Module]
    shape: tuple[int, ...]
    low: float  # inputs are uniform in [low, high], on the 1/GRID grid (low, high on it)
    high: float
    seed: int
    exporter: str = "qonnx"
    opset: int | None = None
    about: str = ""


# -- models -------------------------------------------------------------------------------


def _mlp(per_channel: bool) -> nn.Module:
    w = dict(weight_bit_width=4, weight_scaling_per_output_channel=per_channel)
    return nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        qnn.QuantLinear(16, 32, bias=True, **w),
        qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        qnn.QuantLinear(32, 16, bias=True, **w),
        qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        qnn.QuantLinear(16, 5, bias=True, **w),
    )


def _conv_bn_relu(cin: int, cout: int, wbits: int, abits: int, **kw) -> list[nn.Module]:
    return [
        qnn.QuantConv2d(cin, cout, 3, padding=1, bias=False, weight_bit_width=wbits, **kw),
        nn.BatchNorm2d(cout),
        qnn.QuantReLU(bit_width=abits, return_quant_tensor=True),
    ]


def _cnn_bn() -> nn.Module:
    return nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        *_conv_bn_relu(3, 8, 4, 4),
        nn.MaxPool2d(2),
        *_conv_bn_relu(8, 16, 4, 4),
        nn.Flatten(),
        qnn.QuantLinear(16 * 6 * 6, 10, bias=True, weight_bit_width=4),
    )


def _cnn_bn_cw() -> nn.Module:
    # 8 channels on 8x8 at both BatchNorms: the channel axis is not told apart by its size
    return nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        *_conv_bn_relu(3, 8, 4, 4),
        *_conv_bn_relu(8, 8, 4, 4),
        nn.MaxPool2d(2),
        nn.Flatten(),
        qnn.QuantLinear(8 * 4 * 4, 5, bias=True, weight_bit_width=4),
    )


def _cnn_w2a2() -> nn.Module:
    return nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        *_conv_bn_relu(3, 8, 2, 2),
        nn.MaxPool2d(2),
        *_conv_bn_relu(8, 16, 2, 2),
        nn.MaxPool2d(2),
        nn.Flatten(),
        qnn.QuantLinear(16 * 4 * 4, 10, bias=True, weight_bit_width=2),
    )


class _DwsNet(nn.Module):
    """Stem conv, a depthwise-separable block, a 2x2 average pool, a global average pool,
    a quantizer and a classifier. ``trunc``: Brevitas's TruncAvgPool2d and
    TruncAdaptiveAvgPool2d instead of torch's AvgPool2d and AdaptiveAvgPool2d."""

    def __init__(self, trunc: bool) -> None:
        super().__init__()
        c = 8
        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.stem = nn.Sequential(*_conv_bn_relu(3, c, 4, 4))
        self.dw = nn.Sequential(
            qnn.QuantConv2d(c, c, 3, padding=1, groups=c, bias=False, weight_bit_width=4),
            nn.BatchNorm2d(c),
            qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        )
        self.pw = nn.Sequential(
            qnn.QuantConv2d(c, 2 * c, 1, bias=False, weight_bit_width=4),
            nn.BatchNorm2d(2 * c),
            qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        )
        if trunc:
            self.pool = qnn.TruncAvgPool2d(2, return_quant_tensor=True)
            self.gap = qnn.TruncAdaptiveAvgPool2d(1, return_quant_tensor=True)
        else:
            self.pool = nn.AvgPool2d(2)
            self.gap = nn.AdaptiveAvgPool2d(1)
        self.q = qnn.QuantIdentity(bit_width=4, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(2 * c, 5, bias=True, weight_bit_width=4)

    def forward(self, x):
        x = self.pw(self.dw(self.stem(self.inp(x))))
        x = self.q(self.gap(self.pool(x)))
        return self.fc(x.flatten(1))


class _ResNetBlock(nn.Module):
    """Stem conv-BN-QuantReLU, one residual block whose two branches are requantized by the
    one shared QuantIdentity before the Add, QuantReLU, global average pool, classifier."""

    def __init__(self) -> None:
        super().__init__()
        c = 8
        self.inp = qnn.QuantIdentity(bit_width=8, return_quant_tensor=True)
        self.stem = nn.Sequential(*_conv_bn_relu(3, c, 4, 4))
        self.conv1 = nn.Sequential(*_conv_bn_relu(c, c, 4, 4))
        self.conv2 = qnn.QuantConv2d(c, c, 3, padding=1, bias=False, weight_bit_width=4)
        self.bn2 = nn.BatchNorm2d(c)
        self.shared = qnn.QuantIdentity(bit_width=6, return_quant_tensor=True)
        self.relu = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.q = qnn.QuantIdentity(bit_width=6, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(c, 5, bias=True, weight_bit_width=4)

    def forward(self, x):
        s = self.stem(self.inp(x))
        r = self.bn2(self.conv2(self.conv1(s)))
        x = self.relu(self.shared(r) + self.shared(s))
        return self.fc(self.q(self.gap(x)).flatten(1))


def _bnn() -> nn.Module:
    def lin(i, o):
        return qnn.QuantLinear(i, o, bias=False, weight_quant=SignedBinaryWeightPerTensorConst)

    def sign():
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)

    return nn.Sequential(
        sign(),
        lin(64, 32),
        nn.BatchNorm1d(32),
        sign(),
        lin(32, 32),
        nn.BatchNorm1d(32),
        sign(),
        lin(32, 10),
        nn.BatchNorm1d(10),
    )


def _mlp_bn() -> nn.Module:
    return nn.Sequential(
        qnn.QuantIdentity(bit_width=8, return_quant_tensor=True),
        qnn.QuantLinear(16, 32, bias=True, weight_bit_width=4),
        nn.BatchNorm1d(32),
        qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        qnn.QuantLinear(32, 5, bias=True, weight_bit_width=4),
    )


def _float_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 5))


def _cnv(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from brevitas_examples.bnn_pynq.models import model_with_cfg

        model, _ = model_with_cfg(name, pretrained=False)  # never downloads weights
        return model

    return build


FIXTURES = [
    Fixture("mlp_w4a4_pt", lambda: _mlp(False), (16,), -2.0, 2.0, 1),
    Fixture("mlp_w4a4_pc", lambda: _mlp(True), (16,), -2.0, 2.0, 2),
    Fixture("cnn_bn", _cnn_bn, (3, 12, 12), -1.75, 1.75, 3),
    Fixture("mlp_w4a4_pt_dynamo", lambda: _mlp(False), (16,), -2.0, 2.0, 1, "qonnx_dynamo"),
    Fixture("cnn_bn_dynamo", _cnn_bn, (3, 12, 12), -1.75, 1.75, 3, "qonnx_dynamo"),
    Fixture("cnn_bn_cw", _cnn_bn_cw, (3, 8, 8), -1.75, 1.75, 4),
    Fixture("cnn_w2a2", _cnn_w2a2, (3, 16, 16), -1.75, 1.75, 5),
    Fixture("dws_avgpool", lambda: _DwsNet(False), (3, 8, 8), -1.75, 1.75, 6),
    Fixture("dws_truncavgpool", lambda: _DwsNet(True), (3, 8, 8), -1.75, 1.75, 7),
    Fixture("resnet_block", _ResNetBlock, (3, 8, 8), -1.75, 1.75, 8),
    Fixture("bnn_bipolar_in", _bnn, (64,), -1.0, 1.0, 9),
    Fixture("mlp_bn_opset", _mlp_bn, (16,), -2.0, 2.0, 10),
    Fixture("float_mlp", _float_mlp, (16,), -2.0, 2.0, 11, "torch", 17),
    Fixture("cnv_w1a1", _cnv("cnv_1w1a"), (3, 32, 32), 0.0, 1.0, 12),
    Fixture("cnv_w2a2", _cnv("cnv_2w2a"), (3, 32, 32), 0.0, 1.0, 13),
]


# -- parameters ---------------------------------------------------------------------------


def _norms(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """BatchNorms and Brevitas examples' TensorNorm: anything with running statistics."""
    return [
        (n, m)
        for n, m in model.named_modules()
        if hasattr(m, "running_mean") and hasattr(m, "running_var")
    ]


def _inputs(fx: Fixture, n: int, gen: torch.Generator) -> torch.Tensor:
    x = torch.rand((n, *fx.shape), generator=gen) * (fx.high - fx.low) + fx.low
    return (torch.round(x * GRID) / GRID).clamp(fx.low, fx.high).float()


def _perturb(m: nn.Module, mean, var, gen: torch.Generator) -> None:
    """Running statistics near the measured ones, random gamma (a quarter negative where
    there is more than one channel) and beta: a BatchNorm that is far from identity."""
    c = mean.numel()
    std = var.clamp_min(1e-6).sqrt()
    m.running_mean.copy_(mean + 0.5 * std * torch.randn(c, generator=gen))
    m.running_var.copy_(
        var.clamp_min(1e-6) * torch.exp(torch.empty(c).uniform_(-0.7, 0.7, generator=gen))
    )
    gamma = torch.empty(c).uniform_(0.5, 1.5, generator=gen)
    if c > 1:
        neg = torch.randperm(c, generator=gen)[: max(1, c // 4)]
        gamma[neg] = -gamma[neg]
    m.weight.data.copy_(gamma)
    m.bias.data.copy_(0.3 * torch.randn(c, generator=gen))


def prepare(fx: Fixture) -> nn.Module:
    """The fixture's model in eval mode with randomised BatchNorms and calibrated
    quantizers."""
    gen = torch.Generator().manual_seed(1000 + fx.seed)
    calib = [_inputs(fx, CALIB_BATCH, gen) for _ in range(CALIB_BATCHES)]
    torch.manual_seed(fx.seed)
    model = fx.build()
    norms = _norms(model)
    if norms:
        # measure each BatchNorm's input statistics on a scratch copy (its quantizers too
        # collect statistics there), then perturb them into the real model
        scratch = copy.deepcopy(model)
        for _, m in _norms(scratch):
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.momentum = None  # cumulative average
        scratch.train()
        with torch.no_grad():
            for b in calib:
                scratch(b)
        stats = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in _norms(scratch)}
        with torch.no_grad():
            for n, m in norms:
                _perturb(m, *stats[n], gen)
    model.train()
    for _, m in norms:
        m.eval()
    with torch.no_grad():
        for b in calib:
            model(b)
    model.eval()
    return model


def _value(y) -> torch.Tensor:
    return y.value if hasattr(y, "value") else y


# -- export -------------------------------------------------------------------------------


def export(fx: Fixture, outdir: Path) -> None:
    from brevitas.export import export_qonnx

    model = prepare(fx)
    gen = torch.Generator().manual_seed(2000 + fx.seed)
    x = _inputs(fx, SAMPLES, gen)
    with torch.no_grad():
        y = _value(model(x)).float()
    path = outdir / f"{fx.name}.onnx"
    kw = {} if fx.opset is None else {"opset_version": fx.opset}
    with torch.no_grad():
        if fx.exporter == "qonnx":
            export_qonnx(model, args=x[:1], export_path=str(path), dynamo=False, **kw)
        elif fx.exporter == "qonnx_dynamo":
            export_qonnx(model, args=x[:1], export_path=str(path), dynamo=True, **kw)
        elif fx.exporter == "torch":
            torch.onnx.export(model, (x[:1],), str(path), dynamo=False, input_names=["x"], **kw)
        else:  # pragma: no cover
            raise ValueError(f"exporter must be qonnx, qonnx_dynamo or torch, not {fx.exporter!r}")
    side = path.with_name(path.name + ".data")
    if side.exists():  # the dynamo exporter keeps weights in a side file: fold them in
        import onnx

        onnx.save_model(onnx.load(str(path)), str(path), save_as_external_data=False)
        side.unlink()
    np.savez(outdir / f"{fx.name}.npz", x=x.numpy(), y=y.numpy())


# -- check --------------------------------------------------------------------------------


def _op_types(path: Path) -> list[str]:
    import onnx

    g = onnx.load(str(path)).graph
    seen: list[str] = []
    for n in g.node:
        if n.op_type not in seen:
            seen.append(n.op_type)
    return seen


def _bn_attrs(path: Path) -> str:
    import onnx

    attrs = {
        a.name
        for n in onnx.load(str(path)).graph.node
        if n.op_type == "BatchNormalization"
        for a in n.attribute
    }
    return ", ".join(sorted(attrs))


def _levels_used(model, iname: str, x: np.ndarray) -> list[str]:
    """For each activation quantizer: how many of its levels the samples reach."""
    from qonnx.core.onnx_exec import execute_onnx

    quants = [
        n
        for n in model.graph.node
        if n.op_type in ("Quant", "IntQuant", "BipolarQuant")
        and model.get_initializer(n.input[0]) is None
    ]
    ctx = [
        execute_onnx(model, {iname: x[i : i + 1]}, return_full_exec_context=True)
        for i in range(len(x))
    ]
    out = []
    for n in quants:
        v = np.concatenate([np.ravel(c[n.output[0]]) for c in ctx])
        if n.op_type == "BipolarQuant":
            out.append(f"{len(np.unique(v))}/2")
            continue
        s = np.ravel(model.get_initializer(n.input[1]))
        bits = int(np.ravel(model.get_initializer(n.input[3]))[0])
        used = len(np.unique(np.round(v / s[0]))) if s.size == 1 else len(np.unique(v))
        out.append(f"{used}/{2**bits}")
    return out


def check(fx: Fixture, outdir: Path) -> dict:
    """qonnx's executor on the saved inputs against the saved torch outputs."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    path = outdir / f"{fx.name}.onnx"
    data = np.load(outdir / f"{fx.name}.npz")
    model = cleanup_model(ModelWrapper(str(path)))
    iname = model.graph.input[0].name
    oname = model.graph.output[0].name
    out = np.concatenate(
        [
            np.asarray(execute_onnx(model, {iname: data["x"][i : i + 1]})[oname])
            for i in range(len(data["x"]))
        ]
    ).reshape(data["y"].shape)
    levels = _levels_used(model, iname, data["x"])
    diff = np.abs(out.astype(np.float64) - data["y"].astype(np.float64))
    same = np.all(out == data["y"], axis=tuple(range(1, out.ndim)))
    scale = float(np.max(np.abs(data["y"])))
    return {
        "name": fx.name,
        "size": path.stat().st_size,
        "ops": _op_types(path),
        "bn_attrs": _bn_attrs(path),
        "max_abs_diff": float(diff.max()),
        "max_abs_y": scale,
        "exact": int(same.sum()),
        "samples": len(same),
        "levels": levels,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--outdir", default="tests/fixtures/qonnx", type=Path)
    p.add_argument("--only", nargs="+", metavar="NAME", help="fixtures to build")
    p.add_argument("--no-check", action="store_true", help="skip the qonnx execution check")
    p.add_argument("--check-only", action="store_true", help="check existing files only")
    p.add_argument("--list", action="store_true", help="list the fixtures and exit")
    a = p.parse_args(argv)
    names = {fx.name: fx for fx in FIXTURES}
    if a.list:
        print("\n".join(names))
        return 0
    chosen = FIXTURES
    if a.only:
        unknown = [n for n in a.only if n not in names]
        if unknown:
            p.error(f"--only: unknown fixture(s) {unknown}; known: {', '.join(names)}")
        chosen = [names[n] for n in a.only]
    a.outdir.mkdir(parents=True, exist_ok=True)
    if not a.check_only:
        for fx in chosen:
            print(f"export {fx.name}", file=sys.stderr, flush=True)
            export(fx, a.outdir)
    if a.no_check:
        return 0
    print(
        "| file | bytes | op types | BN attributes | max abs diff | max abs y | exact "
        "| activation levels used |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for fx in chosen:
        r = check(fx, a.outdir)
        print(
            f"| {r['name']}.onnx | {r['size']} | {', '.join(r['ops'])} | {r['bn_attrs']} | "
            f"{r['max_abs_diff']:.3g} | {r['max_abs_y']:.3g} | {r['exact']}/{r['samples']} | "
            f"{', '.join(r['levels'])} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
