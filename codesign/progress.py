"""Progress of a multi-step flow on stderr: one line per finished step with its elapsed
seconds, and, on a terminal only, a live line for the step that is running."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Report the steps of a flow as they run.

    Each step prints ``<prog>: [i/n] <name> … <seconds> s`` when it finishes (or
    ``skipped (<why>)``). When ``live`` is true (default: ``stream`` is a terminal), a line
    ``[i/n] <name> … <seconds> s`` is redrawn in place while the step runs. A step that
    raises prints nothing: the error that follows says what went wrong.

    Parameters
    ----------
    total
        The number of steps, run or skipped.
    prog
        Prefix of every line (``codesign run``).
    stream
        Where to write (default ``sys.stderr`` at the time of each write).
    live
        Redraw a running step's line every ``interval`` seconds; None: when ``stream`` is a
        terminal.
    clock
        Seconds as a float (default :func:`time.monotonic`), replaceable in tests.
    """

    def __init__(
        self,
        total: int,
        *,
        prog: str = "codesign",
        stream: TextIO | None = None,
        live: bool | None = None,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(total, int) or total < 1:
            raise ValueError(f"total must be a positive int, not {total!r}")
        self.total = total
        self.prog = prog
        self._stream = stream
        self._live = live
        self.interval = interval
        self.clock = clock
        self.done = 0
        self.seconds: dict[str, float] = {}  #: step name → elapsed seconds, in run order

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def live(self) -> bool:
        if self._live is not None:
            return self._live
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def _label(self, name: str) -> str:
        return f"[{self.done + 1}/{self.total}] {name}"

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the body as step ``name``; print its line when it finishes."""
        label = self._label(name)
        start = self.clock()
        stop = threading.Event()
        ticker = None
        if self.live:

            def tick() -> None:
                while True:
                    self._write(f"\r\x1b[K{label} … {self.clock() - start:.0f} s")
                    if stop.wait(self.interval):
                        return

            ticker = threading.Thread(target=tick, name=f"progress {name}", daemon=True)
            ticker.start()
        try:
            yield
        finally:
            if ticker is not None:
                stop.set()
                ticker.join()
                self._write("\r\x1b[K")
        elapsed = self.clock() - start
        self.seconds[name] = elapsed
        self._write(f"{self.prog}: {label} {elapsed:.1f} s\n")
        self.done += 1

    def skip(self, name: str, why: str) -> None:
        """Record step ``name`` as skipped, saying why."""
        self._write(f"{self.prog}: {self._label(name)} skipped ({why})\n")
        self.done += 1
