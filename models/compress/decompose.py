"""Per-layer tensor decomposition as transforms of the Network IR (Mixed-TD's SVD and CPD).

Mixed-TD (Yu and Bouganis, FPL 2023, https://github.com/Yu-Zhewen/Mixed-TD) chooses per
layer of a dataflow accelerator between a singular value decomposition (SVD) and a canonical
polyadic decomposition (CPD) of its weights. Here each is a function from a
:class:`~codesign.models.ir.Network` to a new one in which the chosen layer is replaced by a
chain of ordinary layers (dense or convolution factors with requantizations between them),
so that the golden model, ``codesign info``, descriptions, the planner, the simulators and
the RTL generator take the result as they take any network.

Arithmetic of a chain
---------------------
Every factor is quantised to the original layer's weight type: the narrowest type covering
its weights (``QType.covering(w.min(), w.max())``, as the RTL and the cost model type a weight
memory), symmetrically (values in ``[-max, max]``); an unsigned weight type, which a factor
cannot keep (factors of a nonnegative matrix have negative entries), becomes the signed type
one bit wider. Factors are quantised in chain order, and each is fitted again to the
original weights given the quantised ones before it (least squares: for SVD, U given the
quantised V; for CPD, alternating least squares of the remaining modes), so that later
factors absorb earlier rounding. A factor that feeds another is quantised per output
channel; its per-channel step is folded into the next factor's input channels before that
one is quantised, so no requantization needs a per-channel multiplier (each is one
constant: shifts and adds in fabric, no DSP block). The last factor is quantised per tensor
(a per-channel one would need per-channel multipliers in the final rescale). Each step is
the one of least squared rounding error among ``peak * ratio / max`` (:data:`CLIP_RATIOS`):
a row of 2,048 weights loses less by clipping its rare extremes than by coarse steps.

Between two factors a :class:`~codesign.models.activations.Requant` brings the accumulator
into :data:`INTERMEDIATE` (``int16``), with a multiplier of :data:`STEP_BITS` bits and one
shift chosen from the accumulator's *exact* range (the IR's range analysis,
:meth:`~codesign.models.ir.Layer.infer`): the largest value it can take maps to at most
32767, so the requantization never saturates. Exact ranges are far wider than typical values,
and more so deeper in a network: in cnv_small's chains the 99th percentile of the values on
random frames lies 1.3 (conv1) to 97 (conv4) times below the bound, 207 times for the
classifier's SVD. int8 would keep one to seven levels of them; int16 keeps 150 to 17,000.
On ECP5 a 16 x 4-bit product is one MULT18X18D, as an 8 x 4-bit one is, so the factors'
lanes cost the DSPs they would with int8 inputs; only the accumulators and adder trees widen.

The chain ends with a requantization (the *final rescale*) back into the original layer's
accumulator units and type (saturating), and it takes the original layer's name: the layers
that read it (ReLU, requant, pooling ...) apply unchanged, and :func:`codesign.trace` of the
two networks can be compared layer by layer. The original bias goes on the last factor,
divided by the final rescale's exact value and rounded: an error of at most half an output
step, below the rounding of the rescale itself. Multipliers come from
:func:`codesign.models.arith.choose_multiplier`; every rounding is the golden model's.

Layer names: SVD of ``L`` gives ``L_v`` (dense or 1x1, rank R), ``L_v_q`` (requant), ``L_u``
(to the original outputs, with the bias) and ``L`` (the final rescale); CPD of ``L`` gives
``L_pw`` (1x1, C to R), ``L_kh`` (depthwise KH x 1), ``L_kw`` (depthwise 1 x KW), each
followed by ``<name>_q``, then ``L_mix`` (1x1, R to OC, with the bias) and ``L``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..activations import Requant
from ..arith import choose_multiplier
from ..errors import DescriptionError
from ..ir import Layer, Network, Tensor
from ..layers import Conv2d, Dense
from ..qtype import Overflow, QType, Rounding
from .factorise import als_sweeps, check_rank, cp_als, cp_tensor, svd_factors

__all__ = [
    "CLIP_RATIOS",
    "CP_RIDGE",
    "INTERMEDIATE",
    "RESCALE_BITS",
    "STEP_BITS",
    "Method",
    "cp_als",
    "cp_tensor",
    "cpd",
    "decompose",
    "factor_type",
    "full_rank",
    "svd",
    "svd_factors",
]

#: Type of the activations between two factors of a chain (see the module's docstring).
INTERMEDIATE = QType.int(16)
#: Bits of the multiplier of a requantization between factors: its error does not matter
#: (the final rescale uses the exact product of the steps), only the range it leaves unused.
STEP_BITS = 8
#: Bits of the final rescale's multiplier: a relative gain error below 2**-12.
RESCALE_BITS = 12
#: Clipping ratios tried when a factor is quantised: the step that rounds a row with the least
#: squared error may clip its largest entries (a long row's extremes are rare).
CLIP_RATIOS = np.linspace(0.5, 1.0, 26)
#: Relative damping of the ALS updates of :func:`cpd` (:func:`cp_als`'s ``ridge``): without
#: it, ALS on weights of no exact low CP rank finds large terms that cancel, which 4-bit
#: factors cannot keep (term norms summing to 25 times the weights' norm for cnv_small's conv1
#: at rank 16, 167 for cnv_tiny's at rank 6); with 1e-2 they sum to 5.4 and 0.5 to 3.5 on
#: cnv_small's other layers at ranks 4 to 16, for residuals within 0.013 of the undamped ones.
CP_RIDGE = 1e-2


class Method(enum.Enum):
    """How a layer is decomposed."""

    #: a dense layer or a 1x1 convolution W (out x in) as U (out x R) times V (R x in)
    SVD = "svd"
    #: a KH x KW convolution as the chain 1x1 (C to R), depthwise KH x 1, depthwise 1 x KW,
    #: 1x1 (R to OC), from a rank-R CP decomposition of its weights
    CPD = "cpd"


# -- plans -----------------------------------------------------------------------------------


def full_rank(layer: Layer, method: Method | str) -> int:
    """The rank at and above which ``method`` gains nothing on ``layer``: ``min(out, in)``
    for SVD, and for CPD the product of the weight tensor's dimensions but the largest (every
    tensor is a sum of that many rank-one terms; Mixed-TD's ``get_max_rank``). Valid ranks
    are ``1 .. full_rank - 1``."""
    method = _method(method, layer.name)
    w = layer.weight
    if method is Method.SVD:
        return int(min(w.shape[0], w[0].size))
    dims = sorted(int(d) for d in w.shape)
    return int(np.prod(dims[:-1]))


def factor_type(layer: Layer) -> QType:
    """The type of the factors of ``layer``: its weights' covering type, or the signed type
    one bit wider when that is unsigned (see the module's docstring)."""
    w = layer.weight
    t = QType.covering(int(w.min()), int(w.max()))
    return t if t.signed else QType.int(t.bits + 1)


def svd(net: Network, layer: str, rank: int) -> Network:
    """``net`` with the dense layer or 1x1 convolution ``layer`` replaced by its rank-``rank``
    SVD chain (see the module's docstring); :func:`decompose` of one entry."""
    return decompose(net, {layer: (Method.SVD, rank)})


def cpd(net: Network, layer: str, rank: int, *, seed: int = 0, iters: int = 500) -> Network:
    """``net`` with the KH x KW convolution ``layer`` (groups 1) replaced by the chain
    1x1 (C to R) - requant - depthwise KH x 1 - requant - depthwise 1 x KW - requant -
    1x1 (R to OC) - final rescale, from a rank-``rank`` CP decomposition of its weights
    (:func:`cp_als` with ``seed`` and ``iters``).

    This is the CP-decomposed convolution of Lebedev et al. (ICLR 2015, "Speeding-up
    convolutional neural networks using fine-tuned CP-decomposition"), and the chain Mixed-TD
    builds for its CPD layers (``decomposition/cp.py``, groups 1): the two 1x1 convolutions
    carry the channel modes and the two depthwise ones the kernel's rows and columns, so
    every factor is an ordinary layer the dataflow hardware builds (MVAU and VVAU stages).
    The padding is split over the depthwise convolutions (rows on the KH x 1, columns on the
    1 x KW) and so are the stride and dilation (``(sh, 1)`` and ``(1, sw)``): the first 1x1
    runs on the full input, whose zero padding it maps to zeros (it has no bias), and the
    output is the original's size. The decomposition is damped (:data:`CP_RIDGE`), and each
    factor after the first is refitted to the weights given the quantised ones before it.
    """
    return decompose(net, {layer: (Method.CPD, rank)}, seed=seed, iters=iters)


def decompose(
    net: Network,
    plan: Mapping[str, tuple[Method | str, int]],
    *,
    seed: int = 0,
    iters: int = 500,
) -> Network:
    """``net`` with every layer of ``plan`` replaced by its decomposition chain.

    Parameters
    ----------
    net
        The network; it is not changed.
    plan
        Layer name to ``(method, rank)``: ``("svd", r)`` for a dense layer or a 1x1
        convolution, ``("cpd", R)`` for a KH x KW convolution (KH, KW >= 2); groups 1 for
        both. The rank must lie in ``1 .. full_rank - 1`` (:func:`full_rank`).
    seed, iters
        Of the CP decompositions (:func:`cp_als`).

    Returns
    -------
    Network
        A new network of the same name, input and output. Layers are decomposed in network
        order, each from the exact ranges of the network decomposed so far.

    Raises
    ------
    DescriptionError
        For a plan that names no layer, a layer of the wrong kind, a grouped convolution, a
        rank outside its range or a derived layer name already taken, naming the layer and
        the field.
    """
    if not isinstance(plan, Mapping):
        raise TypeError(f"plan must be a mapping of layer names to (method, rank), not {plan!r}")
    steps = [_check_entry(net, name, entry) for name, entry in plan.items()]
    order = {la.name: i for i, la in enumerate(net.layers)}
    steps.sort(key=lambda s: order[s[0]])
    out = net
    for name, method, rank in steps:
        out = _replace(out, name, method, rank, seed, iters)
    return out


def _method(method, layer: str) -> Method:
    if isinstance(method, Method):
        return method
    try:
        return Method(method)
    except ValueError:
        raise DescriptionError(
            f"must be one of {', '.join(repr(m.value) for m in Method)}, not {method!r}",
            layer=layer,
            field="method",
        ) from None


def _check_entry(net: Network, name, entry) -> tuple[str, Method, int]:
    names = [la.name for la in net.layers]
    if not isinstance(name, str) or name not in names:
        raise DescriptionError(f"names no layer {name!r}; expected one of {names}", field="plan")
    if not isinstance(entry, tuple | list) or len(entry) != 2:
        raise DescriptionError(
            f"must be a (method, rank) pair such as ('svd', 4), not {entry!r}",
            layer=name,
            field="plan",
        )
    method = _method(entry[0], name)
    layer = net[name]
    kind = f"{layer.op}" + (
        f" {layer.kernel[0]}x{layer.kernel[1]}" if type(layer) is Conv2d else ""
    )
    if method is Method.SVD:
        fits = type(layer) is Dense or (type(layer) is Conv2d and layer.kernel == (1, 1))
        if not fits:
            raise DescriptionError(
                f"svd needs a dense layer or a 1x1 conv2d, not a {kind} layer",
                layer=name,
                field="method",
            )
    elif type(layer) is not Conv2d or min(layer.kernel) < 2:
        raise DescriptionError(
            f"cpd needs a conv2d with a kernel of at least 2x2 (svd takes a 1x1), not a {kind} "
            "layer",
            layer=name,
            field="method",
        )
    if type(layer) is Conv2d and layer.groups != 1:
        raise DescriptionError(
            f"must be 1 to decompose a convolution, not {layer.groups}",
            layer=name,
            field="groups",
        )
    full = full_rank(layer, method)
    if full < 2:
        raise DescriptionError(
            f"cannot be decomposed: its full rank is {full}", layer=name, field="rank"
        )
    check_rank(entry[1], full, name)
    return name, method, int(entry[1])


# -- chains -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Factor:
    """One factor of a chain: how its float weights are fitted given the quantised factors
    before it, and how its integers become a layer."""

    suffix: str
    #: (the stages before it) -> float matrix: output channels x input channels, or x taps
    #: for a depthwise factor, on the real values of its input stream
    fit: Callable[[list], np.ndarray]
    #: (name, source, integer matrix, bias or None) -> layer
    make: Callable[[str, str, np.ndarray, np.ndarray | None], Layer]
    depthwise: bool = False


@dataclass(frozen=True)
class _Stage:
    """A quantised factor that feeds another: ``real`` is the factor its integers stand for
    (on the real values of its input stream), and the real value of its output stream is
    ``scale`` times the integers there (per channel)."""

    real: np.ndarray
    scale: np.ndarray


def _quantize_rows(w: np.ndarray, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row quantisation: integers in [-qmax, qmax] and each row's step, the
    one of ``peak * ratio / qmax`` (ratio in :data:`CLIP_RATIOS`) with the least squared
    error (the largest ratio of equal errors)."""
    peak = np.abs(w).max(axis=1)
    best_q = np.zeros(w.shape, dtype=np.int64)
    best_step = np.where(peak > 0, peak / qmax, 1.0)
    best_err = np.full(w.shape[0], np.inf)
    for ratio in CLIP_RATIOS[::-1]:
        step = np.where(peak > 0, peak * ratio / qmax, 1.0)
        q = np.clip(np.round(w / step[:, None]), -qmax, qmax)
        err = np.sum((w - q * step[:, None]) ** 2, axis=1)
        better = err < best_err * (1 - 1e-12)
        best_q[better] = q[better]
        best_step[better] = step[better]
        best_err[better] = err[better]
    return best_q, best_step


def _step_multiplier(bound: int) -> tuple[int, int, Fraction]:
    """A requantization ``m * 2**-s`` into :data:`INTERMEDIATE` under which ``bound`` maps
    to at most its largest value (so nothing saturates); returns ``(m, s, m * 2**-s)``.
    An accumulator that already fits passes unchanged."""
    top = INTERMEDIATE.max
    if bound <= top:
        return 1, 0, Fraction(1)
    mult = choose_multiplier(top / bound, bits=STEP_BITS)
    m, s = mult.multiplier, mult.shift
    while m > 1 and bound * Fraction(m, 2**s) > top:
        m -= 1
    return m, s, Fraction(m, 2**s)


def _build_chain(net: Network, layer: Layer, factors: list[_Factor]) -> list[Layer]:
    """The layers of a chain: every factor but the last fitted, quantised per row and
    requantized to :data:`INTERMEDIATE`; the last fitted, quantised per tensor, and
    followed by the final rescale."""
    qmax = factor_type(layer).max
    tensor: Tensor = net.tensors[layer.inputs[0]]
    src = layer.inputs[0]
    layers: list[Layer] = []
    stages: list[_Stage] = []
    scale = np.ones(1)  # real value of the current stream = scale * integer, per channel
    for f in factors[:-1]:
        real_w = f.fit(stages)
        # the stream's steps into this factor's input channels
        w = real_w * scale[:, None] if f.depthwise else real_w * scale[None, :]
        q, step = _quantize_rows(w, qmax)
        real = q * step[:, None]
        real = real / scale[:, None] if f.depthwise else real / scale[None, :]
        name = f"{layer.name}_{f.suffix}"
        main = f.make(name, src, q, None)
        acc = main.infer([tensor])
        m, s, value = _step_multiplier(acc.magnitude)
        rq = Requant(
            name=f"{name}_q",
            inputs=(name,),
            multiplier=m,
            shift=s,
            qtype=INTERMEDIATE,
            rounding=Rounding.HALF_EVEN,
            overflow=Overflow.SAT,
        )
        tensor = rq.infer([acc])
        layers += [main, rq]
        src = rq.name
        scale = step / float(value)
        stages.append(_Stage(real, scale))
    last = factors[-1]
    w = last.fit(stages) * scale[None, :]  # on the integers of the last stream
    step = float(_quantize_rows(w.reshape(1, -1), qmax)[1][0])
    final = choose_multiplier(step, bits=RESCALE_BITS)
    e = float(final.value)
    q = np.clip(np.round(w / e), -qmax, qmax).astype(np.int64)
    bias = None
    if layer.bias is not None:
        bias = np.round(layer.bias.astype(np.float64) / e).astype(np.int64)
    name = f"{layer.name}_{last.suffix}"
    layers.append(last.make(name, src, q, bias))
    layers.append(
        Requant(
            name=layer.name,
            inputs=(name,),
            multiplier=final.multiplier,
            shift=final.shift,
            qtype=net.tensors[layer.name].qtype,
            rounding=Rounding.HALF_EVEN,
            overflow=Overflow.SAT,
        )
    )
    return layers


def _svd_chain(net: Network, layer: Layer, rank: int) -> list[Layer]:
    w = layer.weight.reshape(layer.weight.shape[0], -1).astype(np.float64)
    # U is refitted to the quantised V below: on V itself, W pinv(V) is the balanced U
    _, v = svd_factors(w, rank)
    if type(layer) is Dense:

        def first(name, src, q, bias):
            return Dense(name=name, inputs=(src,), weight=q, bias=bias)

        second = first
    else:
        oc, c = layer.weight.shape[:2]

        def first(name, src, q, bias):
            return Conv2d(
                name=name,
                inputs=(src,),
                weight=q.reshape(rank, c, 1, 1),
                stride=layer.stride,
                padding=layer.padding,
                dilation=layer.dilation,
            )

        def second(name, src, q, bias):
            return Conv2d(name=name, inputs=(src,), weight=q.reshape(oc, rank, 1, 1), bias=bias)

    def refit(stages):  # U given the quantised V: least squares on W
        return w @ np.linalg.pinv(stages[0].real)

    return _build_chain(
        net, layer, [_Factor("v", lambda stages: v, first), _Factor("u", refit, second)]
    )


def _cpd_chain(net: Network, layer: Layer, rank: int, seed: int, iters: int) -> list[Layer]:
    w = layer.weight.astype(np.float64)
    kh, kw = layer.kernel
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    cp = cp_als(w, rank, seed=seed, iters=iters, ridge=CP_RIDGE)

    def pointwise(name, src, q, bias):
        return Conv2d(name=name, inputs=(src,), weight=q.reshape(q.shape[0], -1, 1, 1), bias=bias)

    def rows(name, src, q, bias):
        return Conv2d(
            name=name,
            inputs=(src,),
            weight=q.reshape(rank, 1, kh, 1),
            stride=(sh, 1),
            padding=(ph, 0),
            dilation=(dh, 1),
            groups=rank,
        )

    def cols(name, src, q, bias):
        return Conv2d(
            name=name,
            inputs=(src,),
            weight=q.reshape(rank, 1, 1, kw),
            stride=(1, sw),
            padding=(0, pw),
            dilation=(1, dw),
            groups=rank,
        )

    # weight modes (out, in, rows, cols); the chain's factors in the order they compute
    def fit(mode):
        def fitted(stages):  # the quantised factors so far fixed, ALS of the others
            fixed = {1 + k: s.real.T for k, s in enumerate(stages)}
            start = [fixed.get(m, f) for m, f in enumerate(cp)]
            free = [0] + [m for m in (1, 2, 3) if m not in fixed]
            out = als_sweeps(w, start, free, iters, 1e-13, CP_RIDGE) if stages else cp
            return out[mode].T if mode else out[0]

        return fitted

    return _build_chain(
        net,
        layer,
        [
            _Factor("pw", fit(1), pointwise),
            _Factor("kh", fit(2), rows, depthwise=True),
            _Factor("kw", fit(3), cols, depthwise=True),
            _Factor("mix", fit(0), pointwise),
        ],
    )


def _replace(net: Network, name: str, method: Method, rank: int, seed: int, iters: int):
    layer = net[name]
    if method is Method.SVD:
        chain = _svd_chain(net, layer, rank)
    else:
        chain = _cpd_chain(net, layer, rank, seed, iters)
    taken = {la.name.casefold() for la in net.layers if la.name != name}
    for la in chain:
        if la.name.casefold() in taken:
            raise DescriptionError(
                f"its {method.value} layer {la.name!r} would take the name of another layer; "
                "rename that layer",
                layer=name,
                field="name",
            )
    layers = []
    for la in net.layers:
        layers.extend(chain if la.name == name else [la])
    out = Network(net.name, layers, output=net.output)
    out.folded = dict(net.folded)
    return out
