"""Reading user files with guards, and atomic, byte-deterministic writing.

Readers (:func:`read_yaml`, :func:`read_json`, :func:`read_document`, :func:`read_npz`,
:func:`read_npy`) refuse a malformed, oversized or hostile file with one
:class:`~codesign.models.errors.DescriptionError` line naming the file and what was expected.
Writers give the same bytes for the same content, through a temporary file and a rename.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import tokenize
import zipfile
import zlib
from pathlib import Path

import numpy as np
import yaml

from .errors import DescriptionError

__all__ = [
    "MAX_ARRAY_BYTES",
    "MAX_DOCUMENT_BYTES",
    "MAX_EXPANDED_NODES",
    "atomic_write",
    "npz_bytes",
    "read_document",
    "read_json",
    "read_npy",
    "read_npz",
    "read_text",
    "read_yaml",
    "write_npz",
]


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` through a temporary file and a rename, so a reader never
    sees a half-written file and an existing file is never left truncated."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` archive that ``numpy.load`` reads, with fixed timestamps and sorted
    members (``numpy.savez`` stamps the current time, so its bytes vary run to run)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(
                member, np.asarray(arrays[name], order="C"), allow_pickle=False
            )
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Atomically write a deterministic ``.npz``."""
    return atomic_write(path, npz_bytes(arrays))


# -- guarded reading -----------------------------------------------------------------------
#
# Every user file goes through one of the readers below. Each raises a one-line
# DescriptionError naming the file (and where known the key) and what was expected; none
# lets a library exception, a numpy warning or an unbounded expansion through.

#: Largest YAML or JSON document read (bytes): descriptions keep their arrays in an ``.npz``.
MAX_DOCUMENT_BYTES = 64 << 20
#: Most nodes a YAML document may expand to through its aliases (``*name``), counted with
#: every alias expanded: an "alias bomb" (billion laughs) is refused before it is built.
MAX_EXPANDED_NODES = 1_000_000
#: Largest array read from an ``.npy`` file, and largest sum of the arrays of an ``.npz``
#: (bytes, once loaded).
MAX_ARRAY_BYTES = 1 << 30
#: dtype kinds an array file may hold: bool, signed and unsigned integers, floats.
ARRAY_KINDS = "biuf"


def read_text(path: str | os.PathLike, label: str | None = None) -> str:
    """The UTF-8 text of ``path``, at most :data:`MAX_DOCUMENT_BYTES` long."""
    path = Path(path)
    label = label or str(path)
    data = _read_bytes(path, label, MAX_DOCUMENT_BYTES)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DescriptionError(
            f"must be UTF-8 text, not bytes such as {data[e.start : e.start + 4]!r} at "
            f"offset {e.start}",
            file=label,
        ) from None


def _read_bytes(path: Path, label: str, limit: int) -> bytes:
    try:
        if path.is_dir():
            raise DescriptionError("is a directory, not a file", file=label)
        with open(path, "rb") as f:  # at most limit + 1 bytes: a device or a pipe too
            data = f.read(limit + 1)
        if len(data) > limit:
            size = path.stat().st_size
            shown = f"{size} bytes" if size > limit else f"more than {limit} bytes"
            raise DescriptionError(
                f"is {shown}; files this tool reads must be at most {limit} bytes",
                file=label,
            )
        return data
    except FileNotFoundError:
        raise DescriptionError("no such file", file=label) from None
    except OSError as e:
        raise DescriptionError(f"cannot be read: {e.strerror or e}", file=label) from None


def read_document(path: str | os.PathLike, label: str | None = None):
    """A YAML (or, for a ``.json`` suffix, JSON) document, read with the guards of
    :func:`read_yaml` and :func:`read_json`."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return read_json(path, label)
    return read_yaml(path, label)


def read_json(path: str | os.PathLike, label: str | None = None):
    """A JSON document: at most :data:`MAX_DOCUMENT_BYTES`, no key twice in one object.

    ``NaN`` and ``Infinity`` are read as floats; the readers of each field refuse them.
    """
    label = label or str(path)
    text = read_text(path, label)

    def pairs(items):
        doc = {}
        for key, value in items:
            if key in doc:
                raise _Duplicate(key)
            doc[key] = value
        return doc

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except _Duplicate as e:
        raise DescriptionError(
            "is given twice in one object; each key may appear once", file=label, field=e.key
        ) from None
    except json.JSONDecodeError as e:
        raise DescriptionError(
            f"is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}", file=label
        ) from None
    except (ValueError, RecursionError) as e:  # an integer too long to convert; nesting
        raise DescriptionError(f"is not valid JSON: {_first_line(e)}", file=label) from None


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """The safe loader, with integers too long to convert reported at their line."""

    def construct_yaml_int(self, node):
        try:
            return super().construct_yaml_int(node)
        except ValueError:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"an integer of {len(node.value)} characters is too long to read",
                node.start_mark,
            ) from None


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def read_yaml(path: str | os.PathLike, label: str | None = None):
    """A YAML document read safely: at most :data:`MAX_DOCUMENT_BYTES`, at most
    :data:`MAX_EXPANDED_NODES` nodes with its aliases expanded (checked on the composed
    graph, before anything is built), no recursive alias, no key twice in one mapping
    (PyYAML would keep the last silently), and only string keys."""
    label = label or str(path)
    text = read_text(path, label)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_nodes(node, label)
        return loader.construct_document(node)
    except DescriptionError:
        raise
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1} column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or _first_line(e)
        first = getattr(e, "context_mark", None)
        if problem == "second occurrence" and first:  # libyaml's word for a duplicate anchor
            problem = f"an anchor (&name) is defined twice, first at line {first.line + 1}"
        raise DescriptionError(f"is not valid YAML: {where}{problem}", file=label) from None
    except (ValueError, OverflowError, RecursionError) as e:  # e.g. a date out of range
        raise DescriptionError(f"is not valid YAML: {_first_line(e)}", file=label) from None
    finally:
        loader.dispose()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


_MERGE = "tag:yaml.org,2002:merge"
_STR = "tag:yaml.org,2002:str"


def _check_nodes(root, label: str) -> None:
    """Count the nodes ``root`` expands to (each distinct node once, its expanded size
    memoised, so an alias bomb costs its composed size), and find duplicate and non-string
    keys and recursive aliases, naming where."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    # (node, path, layer name, children visited) — iterative: no recursion limit to hit
    stack = [(root, (), None, False)]
    while stack:
        node, path, layer, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            size[key] = 1 + len(getattr(node, "value", ())) * isinstance(node, yaml.MappingNode)
            size[key] += sum(size[id(c)] for c in _children(node))
            if size[key] > MAX_EXPANDED_NODES:
                raise DescriptionError(
                    f"expands to more than {MAX_EXPANDED_NODES} nodes through its aliases "
                    f"(*name); a description or config must not (line "
                    f"{node.start_mark.line + 1})",
                    file=label,
                )
            continue
        if key in size:
            continue
        if key in on_path:
            raise DescriptionError(
                f"has a recursive alias at line {node.start_mark.line + 1}; a description "
                "or config must be a tree",
                file=label,
            )
        on_path.add(key)
        stack.append((node, path, layer, True))
        if isinstance(node, yaml.MappingNode):
            layer = (_mapping_name(node) if path else None) or layer  # not the top
            seen: dict[str, int] = {}
            for k, v in node.value:
                if k.tag == _MERGE:
                    stack.append((v, path, layer, False))
                    continue
                if k.tag != _STR or not isinstance(k, yaml.ScalarNode):
                    where = ".".join(map(str, path)) or None
                    raise DescriptionError(
                        f"has key {_node_text(k)} at line {k.start_mark.line + 1}, which is "
                        "not a string; quote it",
                        file=label,
                        layer=layer,
                        field=where,
                    )
                if k.value in seen:
                    field = k.value if layer else ".".join(map(str, (*path, k.value)))
                    raise DescriptionError(
                        f"is given twice (lines {seen[k.value]} and {k.start_mark.line + 1}); "
                        "each key may appear once",
                        file=label,
                        layer=layer,
                        field=field,
                    )
                seen[k.value] = k.start_mark.line + 1
                stack.append((v, (*path, k.value), layer, False))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                stack.append(
                    (v, (*path[:-1], f"{path[-1]}[{i}]") if path else (f"[{i}]",), layer, False)
                )


def _children(node):
    """The nodes below ``node`` whose size the walk records (a mapping's values: its keys
    are strings, one node each)."""
    if isinstance(node, yaml.MappingNode):
        return [v for _, v in node.value]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return ()


def _mapping_name(node) -> str | None:
    for k, v in node.value:
        if (
            isinstance(k, yaml.ScalarNode)
            and k.value == "name"
            and isinstance(v, yaml.ScalarNode)
            and v.tag == _STR
        ):
            return v.value
    return None


def _node_text(node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return repr(node.value) if node.tag == _STR else node.value
    return "a " + ("mapping" if isinstance(node, yaml.MappingNode) else "list")


def read_npz(path: str | os.PathLike, label: str | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive, read without pickles: every member an ``.npy`` of
    a :data:`ARRAY_KINDS` dtype, at most :data:`MAX_ARRAY_BYTES`, its size checked against
    its header before it is read (so a truncated or forged archive is one error)."""
    path = Path(path)
    label = label or str(path)
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DescriptionError("no such file", file=label) from None
    except IsADirectoryError:
        raise DescriptionError("is a directory, not an .npz file", file=label) from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise DescriptionError(
            f"is not an .npz archive (a zip of .npy arrays), or is truncated: {_first_line(e)}",
            file=label,
        ) from None
    arrays: dict[str, np.ndarray] = {}
    total = 0
    with zf:
        for info in zf.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise DescriptionError(
                    f"holds {name!r}, which is not an .npy array; an .npz holds only arrays",
                    file=label,
                )
            key = name[: -len(".npy")]
            if key in arrays:
                raise DescriptionError(f"holds array {key!r} twice", file=label)
            try:
                with zf.open(info) as f:
                    arrays[key] = _read_npy_stream(f, info.file_size, MAX_ARRAY_BYTES - total)
                total += arrays[key].nbytes
            except DescriptionError as e:
                raise DescriptionError(f"array {key!r} {e.message}", file=label) from None
            except (zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error,
                    NotImplementedError, RuntimeError) as e:  # fmt: skip
                # (an unsupported compression or flag; an encrypted member)
                raise DescriptionError(
                    f"array {key!r} cannot be read (a truncated or corrupt .npz?): "
                    f"{_first_line(e)}",
                    file=label,
                ) from None
    return arrays


def read_npy(path: str | os.PathLike, label: str | None = None) -> np.ndarray:
    """The array of an ``.npy`` file, read without pickles (see :func:`read_npz`)."""
    path = Path(path)
    label = label or str(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(6)
            if head[:4] == b"PK\x03\x04":
                raise DescriptionError("is an .npz archive; give one .npy array", file=label)
            f.seek(0)
            return _read_npy_stream(f, size)
    except DescriptionError as e:
        raise e.at(file=label) from None
    except FileNotFoundError:
        raise DescriptionError("no such file", file=label) from None
    except IsADirectoryError:
        raise DescriptionError("is a directory, not an .npy file", file=label) from None
    except (OSError, ValueError, EOFError) as e:
        raise DescriptionError(
            f"is not a readable .npy array: {_first_line(e)}", file=label
        ) from None


def _read_npy_stream(f, size: int, limit: int | None = None) -> np.ndarray:
    """One ``.npy`` from ``f`` (``size`` bytes in all), its header checked first; at most
    ``limit`` bytes of data (default :data:`MAX_ARRAY_BYTES`)."""
    limit = MAX_ARRAY_BYTES if limit is None else limit
    try:
        version = np.lib.format.read_magic(f)
    except ValueError:
        raise DescriptionError("is not an .npy array (no NUMPY magic string)") from None
    if version not in ((1, 0), (2, 0)):
        raise DescriptionError(f"has .npy format version {version}, which is not 1.0 or 2.0")
    read_header = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
    try:  # numpy parses the header (a Python dict literal) with the tokenizer
        shape, fortran, dtype = read_header(f)
    except tokenize.TokenError:
        raise DescriptionError("has a malformed .npy header: not a dict literal") from None
    except (ValueError, TypeError, SyntaxError) as e:
        raise DescriptionError(f"has a malformed .npy header: {_first_line(e)}") from None
    if dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise DescriptionError(
            f"must hold bools, integers or floats, not dtype {dtype.str!r}"
            + (" (pickled objects are never loaded)" if dtype.hasobject else "")
        )
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes > limit:
        in_all = " in all" if limit < MAX_ARRAY_BYTES else ""
        raise DescriptionError(
            f"has shape {shape} ({nbytes} bytes); arrays must be at most "
            f"{MAX_ARRAY_BYTES} bytes{in_all}"
        )
    data = f.read(nbytes)
    if len(data) != nbytes:
        raise DescriptionError(
            f"is truncated: its header says shape {shape} of {dtype.str} ({nbytes} bytes), "
            f"but {len(data)} bytes follow"
        )
    arr = np.frombuffer(data, dtype=dtype, count=count)
    arr = arr.reshape(shape, order="F" if fortran else "C")
    return np.array(arr, dtype=dtype.newbyteorder("="), order="C")
