"""Why an external tool failed: its own first error line, whether the failure is the
design's size, the full log kept beside the outputs, and unwritable cache directories.

:func:`diagnose` reads a failed tool's output; :class:`ToolError` (one line) carries what it
found; :func:`writable_dir` and :class:`CacheDirError` name a cache that cannot be written.
:mod:`codesign.hdl.tools` runs the tools and re-exports these names.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codesign.models.fileio import atomic_write

__all__ = [
    "ERROR_LINE",
    "CacheDirError",
    "Diagnosis",
    "ToolError",
    "check_yowasp_cache",
    "diagnose",
    "failure",
    "keep_log",
    "size_advice",
    "tool_output",
    "writable_dir",
]


class ToolError(RuntimeError):
    """An external tool is missing or failed; the message is one line.

    Attributes
    ----------
    first_error
        The tool's own first error line (None when the tool did not run).
    log
        Where the tool's full log was written (None when the tool did not run).
    too_large
        Whether the tool's output shows the failure is the design's size (see
        :func:`diagnose`); callers that know the design may then advise a smaller one.
    """

    def __init__(
        self,
        message: str,
        *,
        first_error: str | None = None,
        log: Path | None = None,
        too_large: bool = False,
    ) -> None:
        super().__init__(message)
        self.first_error = first_error
        self.log = log
        self.too_large = too_large


class CacheDirError(ToolError):
    """A cache directory cannot be created or written (read-only home, a path under a file)."""


def writable_dir(path: str | os.PathLike, what: str, setting: str) -> Path:
    """Create directory ``path`` if needed and check a file can be created in it.

    Raises :class:`CacheDirError` otherwise, in one line naming ``what`` the directory is
    (such as ``"simulator build cache"``), the operating system's reason and ``setting``, what
    to set to move it (such as ``"XDG_CACHE_HOME"``).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".codesign-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise CacheDirError(
            f"{what} {path} is not a writable directory ({e.strerror or e}): set {setting} "
            "to a writable directory"
        ) from None
    return path


@functools.cache
def _wasm_digest(package: str, wasm: str) -> str:
    from importlib import resources

    return hashlib.sha1(resources.files(package).joinpath(wasm).read_bytes()).hexdigest()


def check_yowasp_cache(package: str, wasm: str) -> None:
    """Raise :class:`CacheDirError` when YoWASP would have to compile ``wasm`` of ``package``
    but cannot store the result: its cache (``$YOWASP_CACHE_DIR``, else the user cache
    directory ``YoWASP``, which follows ``XDG_CACHE_HOME``) is not writable. A cache that
    already holds the compiled module may be read-only. (The layout
    ``<cache>/<package>/<wasm>/<sha1>`` is yowasp-runtime's; were it to change, this check
    only asks for a writable cache.)"""
    import platformdirs

    base = Path(
        os.environ.get("YOWASP_CACHE_DIR") or platformdirs.user_cache_dir("YoWASP", appauthor=False)
    )
    try:
        if (base / package / wasm / _wasm_digest(package, wasm)).is_file():
            return
    except OSError:
        pass
    writable_dir(base, "the YoWASP cache directory", "YOWASP_CACHE_DIR or XDG_CACHE_HOME")


@dataclass(frozen=True)
class Diagnosis:
    """What a failed tool's output says (:func:`diagnose`).

    Attributes
    ----------
    first_error
        The tool's own first error line.
    too_large
        Why the output shows the failure is the design's size (the device's room, memory,
        a kill), or None when it does not.
    """

    first_error: str
    too_large: str | None = None

    @property
    def size_note(self) -> str:
        """``"; the design is too large (<why>)"`` for a failure of the design's size, else
        empty: the part of a one-line message that says so."""
        if self.too_large is None:
            return ""
        why = "" if self.too_large == self.first_error else f" ({self.too_large})"
        return f"; the design is too large{why}"


#: The first error line of each tool's output.
ERROR_LINE = {
    # "ERROR: ..." and, from a frontend, "file.v:2: ERROR: ..."
    "yosys": re.compile(r"^(?:\S+:\d+: )?ERROR: .*"),
    "nextpnr": re.compile(r"^ERROR: .*"),
    # "%Error: file:line:col: ...", "%Error-PINNOTFOUND: ..."; the summary is not an error
    "verilator": re.compile(r"^%Error(?:-\w+)?: (?!Exiting due to).*"),
    # "file.v:2: syntax error", "file.v:2: error: ...", "error: ..."
    "icarus": re.compile(r"^(?:\S+:\d+: (?:syntax error|error: ).*|error: .*)"),
}
#: After the tool's own errors: a C++ compiler's or make's (a Verilator model build).
_BUILD_ERROR = re.compile(
    r"^(?:\S+:\d+:\d+: (?:fatal )?error: .*|\S+: fatal error: .*|make(?:\[\d+\])?: \*\*\* .*)"
)
#: A trap of the WebAssembly runtime (YoWASP tools): "wasm trap: call stack exhausted".
_WASM_TRAP = re.compile(r"wasm trap: .*")
#: The last line of a Python traceback (the YoWASP runner): "MemoryError", "OSError: ...".
_PY_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Trap)\b(?::.*)?$")
#: Output that shows the design is too large for the device or the tool's memory.
_SIZE = re.compile(
    r"Unable to place cell|Unable to find a placement location|Failed to expand region"
    r"|failed to route|out of memory|std::bad_alloc"
    r"|\bMemoryError\b|memory allocation of \d+ bytes failed|Cannot allocate memory"
    r"|failed to grow memory|call stack exhausted|virtual memory exhausted"
    r"|Killed signal terminated program",
    re.I,
)
#: nextpnr's utilisation table: "Info: \tICESTORM_LC:   11787/   7680   153%".
_UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def diagnose(tool: str, output: str, returncode: int | None = None) -> Diagnosis:
    """Read a failed tool's output (its log and captured streams).

    Parameters
    ----------
    tool
        ``"yosys"``, ``"nextpnr"``, ``"verilator"`` or ``"icarus"``: whose error lines to
        look for first.
    output
        Everything the tool wrote.
    returncode
        Its exit status; a negative one (killed by a signal, such as the kernel's
        out-of-memory killer) counts as the design's size.

    Returns
    -------
    Diagnosis
        ``first_error``: the first line matching the tool's error format (Yosys and nextpnr
        ``ERROR: ...``, Verilator ``%Error: file:line:col: ...``, Icarus ``file:line: error:
        ...``), else Verilator's first warning (warnings are fatal), a compiler's or make's
        error, a WebAssembly trap, the exception a
        traceback ended with, the last line, or the exit status. ``too_large``: why the
        failure is the design's size, from the output alone: the first error line says the
        tool could not place or route or ran out of memory (nextpnr's utilisation table then
        gives the resources over 100 %), or, where the tool wrote no error line of its own
        (it crashed), its output shows memory or the WebAssembly stack exhausted or the
        device over-full, or it was killed by a signal; else None.
    """
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    own = ERROR_LINE.get(tool)
    first = next((ln for ln in lines if own is not None and own.match(ln)), None)
    plain = first is None  # no error line of the tool's own: it crashed, or was killed
    killed = plain and returncode is not None and returncode < 0
    if killed:
        try:
            first = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            first = f"killed by signal {-returncode}"
    if first is None and tool == "verilator":  # warnings made fatal: the first one
        first = next((ln for ln in lines if re.match(r"^%Warning-\w+: ", ln)), None)
    if first is None:
        first = next((ln for ln in lines if _BUILD_ERROR.match(ln)), None)
    if first is None:
        first = next((m.group(0) for ln in lines if (m := _WASM_TRAP.search(ln))), None)
    if first is None:
        first = next((ln for ln in reversed(lines) if _PY_EXCEPTION.match(ln)), None)
    if first is None:
        first = lines[-1] if lines else f"exit status {returncode}"
    # the design's size only when the error that stopped the tool says so (an unrelated
    # error with the device over-full is reported as that error), or, when the tool has no
    # error line of its own, when its output shows memory or time ran out
    # (WebAssembly that cannot even reserve its memory is the process's limit, not the
    # design's: "mmap failed to reserve 0x104000000 bytes" under a low ulimit -v)
    plain = plain and "failed to reserve" not in first
    over = [
        f"{name} {used}/{avail}"
        for name, used, avail in _UTILISATION.findall(output)
        if int(used) > int(avail)
    ]
    size = _SIZE.search(first) or (_SIZE.search(output) if plain else None)
    # a crash right after nextpnr found the device over-full is the design's size, too
    if not size and not killed and not (plain and over):
        return Diagnosis(first_error=first)
    if over:
        why = "over the device's capacity: " + ", ".join(over)
    elif size:
        why = size.group(0)
    else:
        why = first  # killed: by the kernel's out-of-memory killer, a CPU limit, ...
    return Diagnosis(first_error=first, too_large=why)


def size_advice(design) -> str:
    """What to change when a :class:`~codesign.models.hwconfig.Design` is too large for a tool
    or device: a narrower folding, naming the stage with the most multipliers (PE·SIMD)."""
    if not design.stages:
        return "use a smaller design"
    width = {s.name: design.config[s.name].pe * design.config[s.name].simd for s in design.stages}
    widest = max(design.stages, key=lambda s: width[s.name])
    cfg = design.config[widest.name]
    return f"reduce PE·SIMD (largest: stage {widest.name!r}, pe={cfg.pe}, simd={cfg.simd})"


def keep_log(path: Path, text: str) -> Path:
    """Write a tool's full log to ``path`` atomically; where that directory cannot be
    written, to a new file in the temporary directory. Returns where it went."""
    try:
        return atomic_write(path, text)
    except OSError:
        fd, tmp = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=".log")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return Path(tmp)


def tool_output(log: Path, stdout: str, stderr: str) -> str:
    """A tool's own log file (its ``-l``), then whatever it wrote to its streams (with
    ``-q``, its warnings and errors again, and a WebAssembly trap's traceback)."""
    try:
        parts = [log.read_text(errors="replace")]
    except OSError:
        parts = []
    parts += [f"-- {name} --\n{text}" for name, text in (("stdout", stdout), ("stderr", stderr))]
    return "\n".join(p.rstrip("\n") for p in parts if p.strip()) + "\n"


def failure(
    what: str,
    tool: str,
    output: str,
    log: Path,
    returncode: int | None = None,
    *,
    kind: type[ToolError] = ToolError,
    write: bool = True,
) -> ToolError:
    """The ``kind`` (a :class:`ToolError`) of a failed run, its full output written to
    ``log`` (unless ``write`` is false: the tool wrote it there): one line,
    ``<what> failed: <first error line>[; the design is too large (<why>)]; log: <path>``."""
    d = diagnose(tool, output, returncode)
    kept = keep_log(log, output) if write else log
    return kind(
        f"{what} failed: {d.first_error}{d.size_note}; log: {kept}",
        first_error=d.first_error,
        log=kept,
        too_large=d.too_large is not None,
    )
