"""The design manifest that ``codesign hdl`` writes beside the Verilog, read and checked
for the verification bench (stream formats, stages, taps)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from codesign.hdl.dataflow.stream import to_channels_last
from codesign.models.errors import UserError
from codesign.models.qtype import Kind, QType, parse_qtype

__all__ = [
    "MANIFEST_FORMAT",
    "Manifest",
    "ManifestError",
    "StageSpec",
    "StreamSpec",
    "read_manifest",
]

#: The ``format`` of the manifests this module reads.
MANIFEST_FORMAT = 1


class ManifestError(UserError, ValueError):
    """A ``manifest.json`` that does not describe a design the bench can drive."""


@dataclass(frozen=True)
class StreamSpec:
    """One stream of a design: ``per_beat`` elements of ``qtype`` per beat, ``beats`` beats
    per frame, carrying a tensor of ``shape`` in stream order."""

    type: str
    qtype: QType
    element_bits: int
    per_beat: int
    elements: int
    beats: int
    shape: tuple[int, ...]
    order: tuple[int, ...] | None
    tdata_bits: int | None = None

    @property
    def payload_bits(self) -> int:
        return self.element_bits * self.per_beat

    def to_stream(self, x) -> np.ndarray:
        """A batch ``(N, *shape)`` of the tensor (IR layout, C-major) → ``(N, elements)`` in
        stream order: ``order`` when given, else channels-last for a (C, H, W) tensor and
        index order for a 1-D one (:func:`codesign.hdl.dataflow.stream.to_channels_last`)."""
        x = np.asarray(x)
        if x.shape[1:] != self.shape:
            raise ValueError(f"a batch must have shape (N, {self.shape}), not {x.shape}")
        if self.order is not None:
            return x.reshape(len(x), -1)[:, list(self.order)]
        if len(self.shape) not in (1, 3):
            raise ValueError(
                f"a tensor of shape {self.shape} has no default stream order; the manifest "
                "must give 'order'"
            )
        return to_channels_last(x)


@dataclass(frozen=True)
class StageSpec:
    """One pipeline stage of the manifest."""

    name: str
    kind: str
    layers: tuple[str, ...]
    tap: str  #: IR layer whose golden output the stage's output stream equals
    instance: str  #: instance name (or dotted path) of the stage in the Verilog
    out: StreamSpec
    pe: int | None = None
    simd: int | None = None
    cycles: int | None = None
    #: depth of the FIFO in front of the stage (``fifo_<name>`` in the Verilog); None where
    #: there is none (the first stage) or the manifest does not say
    fifo_depth: int | None = None
    #: the producing stage of each input (None: the network input); empty when the
    #: manifest does not say (a linear pipeline)
    inputs: tuple[str | None, ...] = ()
    #: depth of the FIFO on an add stage's second input (``fifo_<name>__b``), if any
    fifo_depth_b: int | None = None
    #: where a bench observes the stage: kind (``out``: the output stream's ``valid``,
    #: ``ready``, ``payload``; ``fifo``, ``fifo_b``: the input stream's ``valid``, ``ready``
    #: and the ``level`` of the FIFO on each input) → member → the instance names from the
    #: top module down, then the signal's name there. Empty in a manifest that does not say
    #: (the bench then uses the ports of ``instance`` and ``fifo_<name>``).
    probes: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)

    def fifos(self) -> list[str]:
        """Names of the FIFOs in front of the stage (instance ``fifo_<name>``)."""
        names = [self.name] if self.fifo_depth is not None else []
        return names + ([f"{self.name}__b"] if self.fifo_depth_b is not None else [])


@dataclass(frozen=True)
class Manifest:
    """What :func:`read_manifest` reads from a design directory."""

    path: Path
    name: str
    top: str
    verilog: Path
    network_hash: str | None
    ideal_ii: int | None
    clock_mhz: float | None
    input: StreamSpec
    output: StreamSpec
    stages: tuple[StageSpec, ...]

    def stage(self, name: str) -> StageSpec:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"{self.path}: no stage {name!r}; stages: {[s.name for s in self.stages]}")


def _get(doc: Mapping, key: str, kind, where: str, path: Path, *, optional: bool = False):
    if key not in doc or doc[key] is None:
        if optional:
            return None
        raise ManifestError(f"{path}: field {where}{key!r}: is missing")
    v = doc[key]
    ok = isinstance(v, kind) and not (kind is int and isinstance(v, bool))
    if kind is float:
        ok = isinstance(v, int | float) and not isinstance(v, bool)
    if not ok:
        name = {int: "an int", str: "a string", list: "a list", float: "a number"}[kind]
        raise ManifestError(f"{path}: field {where}{key!r}: must be {name}, not {v!r}")
    return v


def _positive(doc, key, where, path, optional=False) -> int | None:
    v = _get(doc, key, int, where, path, optional=optional)
    if v is not None and v < 1:
        raise ManifestError(f"{path}: field {where}{key!r}: must be a positive int, not {v!r}")
    return v


def _stream(doc, where: str, path: Path, *, top_level: bool) -> StreamSpec:
    if not isinstance(doc, Mapping):
        raise ManifestError(f"{path}: field {where!r}: must be an object, not {doc!r}")
    w = f"{where}."
    tname = _get(doc, "type", str, w, path)
    try:
        qt = parse_qtype(tname)
    except ValueError as e:
        raise ManifestError(f"{path}: field {w}'type': {e}") from None
    bits = 1 if qt.kind is Kind.BIPOLAR else qt.bits
    element_bits = _positive(doc, "element_bits", w, path)
    if element_bits != bits:
        raise ManifestError(
            f"{path}: field {w}'element_bits': must be {bits} for type {tname}, not {element_bits}"
        )
    per_beat = _positive(doc, "per_beat", w, path)
    elements = _positive(doc, "elements", w, path)
    beats = _positive(doc, "beats", w, path)
    if per_beat * beats != elements:
        raise ManifestError(
            f"{path}: field {w}'beats': must be elements / per_beat = "
            f"{elements} / {per_beat}, not {beats}"
        )
    shape = _get(doc, "shape", list, w, path)
    if not shape or not all(isinstance(s, int) and s >= 1 for s in shape):
        raise ManifestError(f"{path}: field {w}'shape': must be a list of positive ints")
    if int(np.prod(shape)) != elements:
        raise ManifestError(f"{path}: field {w}'shape': must hold {elements} elements, not {shape}")
    order = _get(doc, "order", list, w, path, optional=True)
    if order is not None and sorted(order) != list(range(elements)):
        raise ManifestError(f"{path}: field {w}'order': must be a permutation of range({elements})")
    tdata = _positive(doc, "tdata_bits", w, path, optional=not top_level)
    if tdata is not None and (tdata % 8 or tdata < per_beat * element_bits):
        raise ManifestError(
            f"{path}: field {w}'tdata_bits': must be a multiple of 8 holding "
            f"{per_beat * element_bits} payload bits, not {tdata}"
        )
    return StreamSpec(
        tname,
        qt,
        element_bits,
        per_beat,
        elements,
        beats,
        tuple(shape),
        None if order is None else tuple(order),
        tdata,
    )


#: The members of each kind of probe a stage may have (see :attr:`StageSpec.probes`).
PROBES = {
    "out": ("valid", "ready", "payload"),
    "fifo": ("valid", "ready", "level"),
    "fifo_b": ("valid", "ready", "level"),
}


def _probes(doc, where: str, path: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    v = doc.get("probes")
    if v is None:
        return {}
    w = f"{where}'probes'"
    if not isinstance(v, Mapping) or not set(v) <= set(PROBES):
        raise ManifestError(
            f"{path}: field {w}: must be an object with keys among {', '.join(PROBES)}, not {v!r}"
        )
    out = {}
    for kind, members in v.items():
        want = PROBES[kind]
        if not isinstance(members, Mapping) or sorted(members) != sorted(want):
            raise ManifestError(
                f"{path}: field {w}.{kind}: must be an object with keys {', '.join(want)}, "
                f"not {members!r}"
            )
        out[kind] = {}
        for m in want:
            p = members[m]
            if not isinstance(p, list) or not p or not all(isinstance(n, str) and n for n in p):
                raise ManifestError(
                    f"{path}: field {w}.{kind}.{m}: must be a list of instance names and a "
                    f"signal name, not {p!r}"
                )
            out[kind][m] = tuple(p)
    return out


def read_manifest(path: str | os.PathLike) -> Manifest:
    """Read and check a ``manifest.json`` (or the one in a design directory).

    Raises :class:`ManifestError` naming the file and field when it is malformed.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"{path}: does not exist; generate the design first") from None
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: must be JSON ({e})") from None
    if not isinstance(doc, Mapping):
        raise ManifestError(f"{path}: must hold a JSON object")
    fmt = doc.get("format")
    if fmt != MANIFEST_FORMAT:
        raise ManifestError(f"{path}: field 'format': must be {MANIFEST_FORMAT}, not {fmt!r}")
    top = _get(doc, "top", str, "", path)
    verilog = path.parent / _get(doc, "verilog", str, "", path)
    stages_doc = _get(doc, "stages", list, "", path)
    stages = []
    for k, s in enumerate(stages_doc):
        w = f"stages[{k}]."
        if not isinstance(s, Mapping):
            raise ManifestError(f"{path}: field 'stages[{k}]': must be an object, not {s!r}")
        name = _get(s, "name", str, w, path)
        layers = tuple(_get(s, "layers", list, w, path, optional=True) or ())
        inputs = _get(s, "inputs", list, w, path, optional=True)
        if inputs is not None and not all(x is None or isinstance(x, str) for x in inputs):
            raise ManifestError(
                f"{path}: field 'stages[{k}].inputs': must be a list of stage names or "
                f"nulls, not {inputs!r}"
            )
        # a graph manifest says where every FIFO is; a linear one has none on stage 0
        fifo_here = k > 0 or inputs is not None
        stages.append(
            StageSpec(
                name=name,
                kind=_get(s, "kind", str, w, path, optional=True) or "",
                layers=layers,
                tap=_get(s, "tap", str, w, path),
                instance=_get(s, "instance", str, w, path, optional=True) or f"stage_{name}",
                out=_stream(s.get("out"), f"stages[{k}].out", path, top_level=False),
                pe=_positive(s, "pe", w, path, optional=True),
                simd=_positive(s, "simd", w, path, optional=True),
                cycles=_positive(s, "cycles", w, path, optional=True),
                fifo_depth=(
                    _positive(s, "fifo_depth", w, path, optional=True) if fifo_here else None
                ),
                inputs=tuple(inputs or ()),
                fifo_depth_b=_positive(s, "fifo_depth_b", w, path, optional=True),
                probes=_probes(s, w, path),
            )
        )
    if len({s.name for s in stages}) != len(stages):
        raise ManifestError(f"{path}: field 'stages': stage names must be unique")
    return Manifest(
        path=path,
        name=_get(doc, "name", str, "", path, optional=True) or top,
        top=top,
        verilog=verilog,
        network_hash=_get(doc, "network_hash", str, "", path, optional=True),
        ideal_ii=_positive(doc, "ideal_ii", "", path, optional=True),
        clock_mhz=_get(doc, "clock_mhz", float, "", path, optional=True),
        input=_stream(doc.get("input"), "input", path, top_level=True),
        output=_stream(doc.get("output"), "output", path, top_level=True),
        stages=tuple(stages),
    )


# -- building ----------------------------------------------------------------------------------
