"""Regenerate the zoo: ``python -m codesign.models.zoo.generate [DIR]``.

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


class Builder:
    """Accumulates a description with seeded weights (a zoo network's, or one of the cost
    model's sweep networks, :mod:`codesign.cost_fit`); picks requant shifts by running what
    is built so far."""

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

    def decaying_ints(self, shape, bits, std, decay=1.0):
        """Rounded integers, clipped to a signed ``bits``-bit range, of a Gaussian tensor
        whose spectrum falls off along every mode as a trained layer's does: each mode is
        mapped through a random orthonormal basis whose k-th direction is scaled by
        ``k**-decay``, then the tensor is scaled to ``std``. (Independent weights have a
        flat spectrum, which no decomposition below full rank approximates.)"""
        g = self.rng.normal(0, 1, shape)
        for mode, n in enumerate(shape):
            q, _ = np.linalg.qr(self.rng.normal(0, 1, (n, n)))
            m = q * (1.0 + np.arange(n)) ** -decay
            g = np.moveaxis(np.tensordot(m, np.moveaxis(g, mode, 0), axes=1), 0, mode)
        g *= std / g.std()
        lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return np.clip(np.round(g), lo, hi).astype(np.int64)

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
    b = Builder(
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
    b = Builder(name, [784], "binary" if binary else "uint8", seed, summary, out_dir)
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
    b = Builder(
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


def cnv_small(out_dir) -> None:
    """A VGG-like CNN on a 3x32x32 image, W4A8 like cnv_tiny, big enough for per-layer
    decomposition to show (issue 19): four padded conv3x3 layers in two blocks,
    16-16-maxpool-32-32-maxpool, each with ReLU and a requantization to uint8, then a dense
    classifier on the flattened 32x8x8. Its weights have the decaying spectra of trained
    ones (:meth:`Builder.decaying_ints`), so that low-rank factors approximate them."""
    b = Builder(
        "cnv_small",
        [3, 32, 32],
        "uint8",
        12,
        "VGG-like CNN on 3x32x32: conv3x3 16-16-maxpool-32-32-maxpool (padded), dense 10, "
        "4-bit weights, 8-bit activations",
        out_dir,
    )
    x = b.rng.integers(0, 256, (128, 3, 32, 32))
    c = 3
    for i, (oc, bias_bits, bias_std) in enumerate(
        [(16, 12, 200), (16, 14, 800), (32, 14, 800), (32, 14, 1000)], start=1
    ):
        b.layer(
            f"conv{i}",
            "conv2d",
            weight=b.decaying_ints((oc, c, 3, 3), 4, 3),
            bias=b.ints((oc,), bias_bits, bias_std),
            padding=1,
        )
        b.layer(f"relu{i}", "relu")
        b.layer(f"act{i}", "requant", multiplier=1, shift=b.requant_shift(x, 255), type="uint8")
        if i % 2 == 0:
            b.layer(f"pool{i // 2}", "maxpool2d", kernel=2)
        c = oc
    b.layer("flatten", "flatten")
    b.layer(
        "fc", "dense", weight=b.decaying_ints((10, c * 8 * 8), 4, 3), bias=b.ints((10,), 16, 500)
    )
    b.write()


def resnet_tiny(out_dir) -> None:
    """A residual network on 1x16x16: conv3x3 stem + thresholds, 2x2 average pool, one
    residual block (conv3x3-thresholds-conv3x3-thresholds, identity skip, add, thresholds),
    global average pool as an exact window sum whose division by the area is left to the
    thresholds after it, dense classifier; 4-bit weights, 3-bit activations."""
    b = Builder(
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


def dcn_tiny(out_dir, *, depthwise: bool = False) -> None:
    """A deformable CNN on 1x32x32 (CoDeNet's building block, W4A8): conv3x3 stem, a conv3x3
    offset convolution requantised to quarter-pixel offsets (``fixed<6,4>``, 2 fraction bits:
    -8 to +7.75 pixels), a 3x3 deformable convolution reading both (full 8 -> 16 channels,
    or depthwise 8 -> 8), 2x2 max pool, global sum pool, dense classifier."""
    name = "dcn_tiny_dw" if depthwise else "dcn_tiny"
    b = Builder(
        name,
        [1, 32, 32],
        "uint8",
        11 if depthwise else 10,
        "deformable CNN: conv3x3 stem, conv3x3 offset conv (quarter-pixel offsets), "
        + ("depthwise" if depthwise else "full")
        + " 3x3 deformable conv, maxpool, global sum pool, dense; 4-bit weights, 8-bit "
        "activations",
        out_dir,
    )
    x = b.rng.integers(0, 256, (64, 1, 32, 32))
    c = 8
    oc = c if depthwise else 16
    b.layer(
        "stem", "conv2d", weight=b.ints((c, 1, 3, 3), 4, 3), bias=b.ints((c,), 12, 200), padding=1
    )
    b.layer("stem_relu", "relu")
    b.layer("stem_act", "requant", multiplier=1, shift=b.requant_shift(x, 255), type="uint8")
    b.layer(
        "offconv",
        "conv2d",
        weight=b.ints((18, c, 3, 3), 4, 2),
        bias=b.ints((18,), 12, 300),
        padding=1,
    )
    # quarter pixels: the 99.5th percentile of |offset| becomes 3 pixels, so offsets move by
    # fractions, exact integers and halves, and reach beyond the image at its border
    b.layer("offsets", "requant", multiplier=1, shift=b.requant_shift(x, 12), type="fixed<6,4>")
    wshape = (oc, 1, 3, 3) if depthwise else (oc, c, 3, 3)
    b.layer(
        "dconv",
        "deform_conv2d",
        inputs=["stem_act", "offsets"],
        weight=b.ints(wshape, 4, 3),
        bias=b.ints((oc,), 12, 2000),
        padding=1,
        variant="free",
    )
    b.layer("dconv_relu", "relu")
    b.layer("dconv_act", "requant", multiplier=1, shift=b.requant_shift(x, 255), type="uint8")
    b.layer("pool", "maxpool2d", kernel=2)
    b.layer("gap", "sumpool2d", kernel=16)
    b.layer("gap_act", "requant", multiplier=1, shift=b.requant_shift(x, 255), type="uint8")
    b.layer("flatten", "flatten")
    b.layer("fc", "dense", weight=b.ints((10, oc), 4, 3), bias=b.ints((10,), 12, 200))
    b.write()


#: FINN's CNV topology (``cnv_w1a1``/``cnv_w2a2`` of finn-examples, from BinaryNet/
#: Courbariaux et al.): (name, output channels) of its six unpadded 3x3 convolutions, with
#: a 2x2 max pool after the second and the fourth, then three dense layers.
CNV_CONVS = (("conv0", 64), ("conv1", 64), ("conv2", 128), ("conv3", 128))
CNV_CONVS += (("conv4", 256), ("conv5", 256))
CNV_DENSE = (("fc0", 512), ("fc1", 512), ("fc2", 10))


def cnv(name: str, out_dir, *, wbits: int, abits: int, seed: int = 5) -> tuple[Path, Path]:
    """FINN's CNV on a 3x32x32 ``uint8`` image with seeded synthetic weights:
        conv3x3 64 - conv3x3 64 - maxpool2 - conv3x3 128 - conv3x3 128 - maxpool2 -
        conv3x3 256 - conv3x3 256 - FC 512 - FC 512 - FC 10 (no padding: 32 → 30 → 28 → 14 →
        12 → 10 → 5 → 3 → 1), each layer but the last followed by BatchNorm and its activation.

        ``wbits=abits=1`` is ``cnv_w1a1``: the first convolution takes the 8-bit image with
        weights in {-1, +1}, every later layer is ``binary_dense``/``binary_conv2d`` (FINN's
        binary encoding) on 1-bit activations from BatchNorm + sign. ``wbits=abits=2`` is
        ``cnv_w2a2``: 2-bit signed weights, narrow as Brevitas's CNV quantizes them ({-1, 0, 1}:
    a BatchNorm of negative scale negates its channel's weights and stays in 2 bits), and 2-bit
    unsigned activations (BatchNorm + quant).
        The BatchNorm statistics are those of random inputs (as :func:`_tfc`'s), so every
        threshold lies inside its accumulator's range. 1.54 M weights: written as
        ``int8`` arrays (the loader widens them), 0.31 MB (w1a1) and 0.50 MB (w2a2) of npz.
        Returns the description and npz paths.
    """
    if (wbits, abits) not in ((1, 1), (2, 2)):
        raise ValueError(f"(wbits, abits) must be (1, 1) or (2, 2), not {(wbits, abits)!r}")
    binary = wbits == 1
    summary = (
        f"FINN CNV on 3x32x32: 6 conv3x3 (64-64-pool-128-128-pool-256-256) + FC 512-512-10, "
        f"{wbits}-bit weights, {abits}-bit activations, BatchNorm folded into thresholds, "
        "8-bit input"
    )
    b = Builder(name, [3, 32, 32], "uint8", seed, summary, out_dir)
    c = 3
    layers = [(n, oc, "conv") for n, oc in CNV_CONVS] + [(n, o, "dense") for n, o in CNV_DENSE]
    for i, (lname, oc, kind) in enumerate(layers):
        k = c * 9 if kind == "conv" else c
        shape = (oc, c, 3, 3) if kind == "conv" else (oc, c)
        if i == 0:  # the 8-bit image: a multiplying convolution
            w = 2 * b.bits01(shape) - 1 if binary else np.clip(b.ints(shape, wbits, 1.0), -1, 1)
            b.layer(lname, "conv2d", weight=w.astype(np.int8))
            wsum = w.reshape(oc, -1)
            mean = 127.5 * wsum.sum(axis=1)
            std = 74.0 * np.sqrt((wsum**2).sum(axis=1)) + 1
        elif binary:
            op = "binary_conv2d" if kind == "conv" else "binary_dense"
            b.layer(lname, op, weight=b.bits01(shape).astype(np.int8), encoding="binary")
            mean, std = k / 2, np.sqrt(k) / 2  # popcount of random bits
        else:
            w = np.clip(b.ints(shape, wbits, 1.0), -1, 1)  # narrow, as Brevitas's CNV
            b.layer(lname, "conv2d" if kind == "conv" else "dense", weight=w.astype(np.int8))
            wsum = w.reshape(oc, -1)
            mean = 1.5 * wsum.sum(axis=1)
            std = 1.1 * np.sqrt((wsum**2).sum(axis=1)) + 1
        c = oc
        if lname == "fc2":
            break
        n = lname[-1]
        b.bn_params(f"bn{n}" if kind == "conv" else f"bnfc{n}", mean, std, oc)
        act = f"act{n}" if kind == "conv" else f"actfc{n}"
        if binary:
            b.layer(act, "sign", encoding="binary")
        else:
            b.layer(act, "quant", type=f"uint{abits}", scale=0.5, rounding="half_even")
        if lname in ("conv1", "conv3"):
            b.layer(f"pool{int(n) // 2}", "maxpool2d", kernel=2)
        if lname == "conv5":
            b.layer("flatten", "flatten")
    return b.write()


def generate(out_dir=HERE) -> None:
    out_dir = Path(out_dir)
    jet_tagger(out_dir)
    _tfc("tfc_w1a1", 2, 1, 1, out_dir)
    _tfc("tfc_w2a2", 3, 2, 2, out_dir)
    cnv_tiny(out_dir)
    cnv_small(out_dir)
    resnet_tiny(out_dir)
    dcn_tiny(out_dir)
    dcn_tiny(out_dir, depthwise=True)


def main(argv: list[str]) -> None:
    """``python -m codesign.models.zoo.generate [DIR]`` remakes the zoo; ``--cnv DIR`` writes
    ``cnv_w1a1`` and ``cnv_w2a2`` (not in the zoo, see docs) into DIR."""
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m codesign.models.zoo.generate",
        description="Regenerate the zoo's descriptions and weights (seeded, byte-identical).",
    )
    ap.add_argument("dir", nargs="?", default=str(HERE), help="output folder (default: the zoo)")
    ap.add_argument(
        "--cnv", metavar="DIR", help="write FINN's cnv_w1a1 and cnv_w2a2 into DIR instead"
    )
    args = ap.parse_args(argv)
    if args.cnv is not None:
        out = Path(args.cnv)
        cnv("cnv_w1a1", out, wbits=1, abits=1)
        cnv("cnv_w2a2", out, wbits=2, abits=2)
        return
    generate(args.dir)


if __name__ == "__main__":
    main(sys.argv[1:])
