"""Regenerate the zoo: ``python -m models.zoo.generate [DIR]``.

Each network is a YAML description plus an ``.npz`` of seeded synthetic weights (no
downloads), shaped like a well-known published network. Requantization shifts are chosen
from the golden model's accumulator statistics on seeded random inputs, so activations use
their range. The output is byte-identical on every run (a test checks the shipped files).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

from ..fileio import atomic_write, write_npz
from ..golden import golden
from ..loader import load_description

HERE = Path(__file__).parent


class _Builder:
    """Accumulates a description; picks requant shifts by running what is built so far."""

    def __init__(self, name, shape, qtype, seed, summary, out_dir):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.doc = {
            "format": 1,
            "name": name,
            "description": summary,
            "weights": f"{name}.npz",
            "input": {"name": "input", "shape": list(shape), "type": qtype},
            "layers": [],
        }
        self.arrays: dict[str, np.ndarray] = {}
        self.out_dir = out_dir
        self.samples = None

    def layer(self, name, op, **fields):
        entry = {"name": name, "op": op}
        for key, value in fields.items():
            if isinstance(value, np.ndarray):
                self.arrays[f"{name}.{key}"] = value
                entry[key] = f"{name}.{key}"
            else:
                entry[key] = value
        self.doc["layers"].append(entry)

    def ints(self, shape, bits, std):
        """Rounded normal integers clipped to a signed ``bits``-bit range."""
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return np.clip(np.round(self.rng.normal(0, std, shape)), lo, hi).astype(np.int64)

    def bits01(self, shape):
        return self.rng.integers(0, 2, shape).astype(np.int64)

    def write(self, out_dir=None) -> tuple[Path, Path]:
        out_dir = Path(out_dir or self.out_dir)
        yml = out_dir / f"{self.name}.yaml"
        write_npz(out_dir / f"{self.name}.npz", self.arrays)
        atomic_write(
            yml, yaml.safe_dump(self.doc, sort_keys=False, default_flow_style=None, width=100)
        )
        return yml, out_dir / f"{self.name}.npz"

    def acc_stats(self, x) -> np.ndarray:
        """Outputs of the network built so far on ``x``."""
        yml, _ = self.write()
        return golden(load_description(yml), x)

    def requant_shift(self, x, out_max) -> int:
        """Shift mapping the 99.5th percentile of the current output onto ``out_max``."""
        y = self.acc_stats(x)
        p = float(np.percentile(np.abs(y), 99.5)) or 1.0
        return max(0, int(np.ceil(np.log2(p / out_max))))

    def thresholds(self, x, levels) -> np.ndarray:
        """Per-channel thresholds ``(C, levels)`` spreading the current output (C, H, W)
        evenly over ``levels + 1`` output values (quantiles of its values on ``x``)."""
        y = self.acc_stats(x)
        per_channel = np.moveaxis(y, 1, 0).reshape(y.shape[1], -1)
        q = np.quantile(per_channel, np.arange(1, levels + 1) / (levels + 1), axis=1).T
        t = np.round(q).astype(np.int64)
        return np.maximum.accumulate(t, axis=1)

    def bn_params(self, name, acc_mean, acc_std, channels):
        r = self.rng
        gamma = r.uniform(0.5, 1.5, channels) * np.where(r.random(channels) < 0.2, -1, 1)
        self.layer(
            name,
            "batchnorm",
            gamma=gamma,
            beta=r.normal(0, 0.2, channels),
            mean=acc_mean + r.normal(0, acc_std / 4, channels),
            var=(acc_std * r.uniform(0.7, 1.3, channels)) ** 2,
            eps=1e-5,
        )


def jet_tagger(out_dir) -> None:
    """16-64-32-32-5 MLP, 6-bit weights and activations, ReLU (hls4ml/QKeras jet tagger).
    Input ``fixed<16,6>`` (hls4ml's default input precision)."""
    b = _Builder(
        "jet_tagger",
        [16],
        "fixed<16,6>",
        1,
        "16-64-32-32-5 jet-tagging MLP, 6-bit weights/activations, ReLU",
        out_dir,
    )
    x = np.clip(np.round(b.rng.normal(0, 1024, (512, 16))), -32768, 32767).astype(np.int64)
    sizes = [16, 64, 32, 32, 5]
    for i in range(4):
        n_in, n_out = sizes[i], sizes[i + 1]
        b.layer(
            f"fc{i + 1}",
            "dense",
            weight=b.ints((n_out, n_in), 6, 10),
            bias=b.ints((n_out,), 16, 2000 if i == 0 else 60),
        )
        if i < 3:
            b.layer(f"relu{i + 1}", "relu")
            shift = b.requant_shift(x, 63)
            b.layer(
                f"act{i + 1}",
                "requant",
                multiplier=1,
                shift=shift,
                type="uint6",
                rounding="half_even",
                overflow="sat",
            )
    b.write()


def _tfc(name, seed, wbits, abits, out_dir) -> None:
    binary = wbits == 1
    summary = (
        f"784-64-64-64-10 MLP, {wbits}-bit weights, {abits}-bit activations, "
        "BatchNorm folded into thresholds (FINN TFC shape)"
    )
    b = _Builder(name, [784], "binary" if binary else "uint8", seed, summary, out_dir)
    sizes = [784, 64, 64, 64, 10]
    for i in range(4):
        n_in, n_out = sizes[i], sizes[i + 1]
        if binary:
            b.layer(f"fc{i}", "binary_dense", weight=b.bits01((n_out, n_in)), encoding="binary")
            mean, std = n_in / 2, np.sqrt(n_in) / 2  # popcount of random bits
        else:
            w = b.ints((n_out, n_in), wbits, 1.0)
            b.layer(f"fc{i}", "dense", weight=w)
            in_mean = 128.0 if i == 0 else 1.5
            in_std = 74.0 if i == 0 else 1.1
            mean = in_mean * w.sum(axis=1)
            std = in_std * np.sqrt((w**2).sum(axis=1)) + 1
        if i == 3:
            break
        b.bn_params(f"bn{i}", mean, std, n_out)
        if binary:
            b.layer(f"act{i}", "sign", encoding="binary")
        else:
            # 2-bit unsigned activation over [0, 3] from the normalised value
            b.layer(f"act{i}", "quant", type=f"uint{abits}", scale=0.5, rounding="half_even")
    b.write()


def cnv_tiny(out_dir) -> None:
    """conv3x3 → maxpool → conv3x3 → maxpool → dense on 1x28x28; 4-bit weights, 8-bit
    activations."""
    b = _Builder(
        "cnv_tiny",
        [1, 28, 28],
        "uint8",
        4,
        "small quantized CNN: conv3x3-maxpool-conv3x3-maxpool-dense, "
        "4-bit weights, 8-bit activations",
        out_dir,
    )
    x = b.rng.integers(0, 256, (256, 1, 28, 28))
    b.layer("conv1", "conv2d", weight=b.ints((8, 1, 3, 3), 4, 3), bias=b.ints((8,), 12, 200))
    b.layer("relu1", "relu")
    b.layer("act1", "requant", multiplier=1, shift=b.requant_shift(x, 255), type="uint8")
    b.layer("pool1", "maxpool2d", kernel=2)
    b.layer("conv2", "conv2d", weight=b.ints((16, 8, 3, 3), 4, 3), bias=b.ints((16,), 14, 800))
    b.layer("relu2", "relu")
    b.layer("act2", "requant", multiplier=1, shift=b.requant_shift(x, 255), type="uint8")
    b.layer("pool2", "maxpool2d", kernel=2)
    b.layer("flatten", "flatten")
    b.layer("fc", "dense", weight=b.ints((10, 400), 4, 3), bias=b.ints((10,), 16, 500))
    b.write()


def resnet_tiny(out_dir) -> None:
    """A residual network on 1x16x16: conv3x3 stem + thresholds, 2x2 average pool, one
    residual block (conv3x3-thresholds-conv3x3-thresholds, identity skip, add, thresholds),
    global average pool as an exact window sum whose division by the area is left to the
    thresholds after it, dense classifier; 4-bit weights, 3-bit activations."""
    b = _Builder(
        "resnet_tiny",
        [1, 16, 16],
        "uint4",
        5,
        "tiny residual CNN: conv3x3-avgpool-[conv3x3-conv3x3 + identity]-global sum pool-"
        "dense, 4-bit weights, 3-bit activations, multi-threshold activations",
        out_dir,
    )
    x = b.rng.integers(0, 16, (256, 1, 16, 16))
    c = 16
    b.layer("stem", "conv2d", weight=b.ints((c, 1, 3, 3), 4, 3), padding=1)
    b.layer("stem_act", "multithreshold", thresholds=b.thresholds(x, 7))
    b.layer("pool", "avgpool2d", kernel=2, rounding="half_even")
    b.layer("conv1", "conv2d", weight=b.ints((c, c, 3, 3), 4, 2), padding=1)
    b.layer("act1", "multithreshold", thresholds=b.thresholds(x, 7))
    b.layer("conv2", "conv2d", weight=b.ints((c, c, 3, 3), 4, 2), padding=1)
    b.layer("act2", "multithreshold", thresholds=b.thresholds(x, 7))
    b.layer("add", "add", inputs=["act2", "pool"])
    b.layer("add_act", "multithreshold", thresholds=b.thresholds(x, 7))
    b.layer("gap", "sumpool2d", kernel=8)
    b.layer("gap_act", "multithreshold", thresholds=b.thresholds(x, 7))
    b.layer("flatten", "flatten")
    b.layer("fc", "dense", weight=b.ints((10, c), 4, 3), bias=b.ints((10,), 8, 20))
    b.write()


def generate(out_dir=HERE) -> None:
    out_dir = Path(out_dir)
    jet_tagger(out_dir)
    _tfc("tfc_w1a1", 2, 1, 1, out_dir)
    _tfc("tfc_w2a2", 3, 2, 2, out_dir)
    cnv_tiny(out_dir)
    resnet_tiny(out_dir)


if __name__ == "__main__":
    generate(sys.argv[1] if len(sys.argv) > 1 else HERE)
