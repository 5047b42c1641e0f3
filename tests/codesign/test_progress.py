"""Progress lines of ``codesign run``: one per step, live only on a terminal."""

from __future__ import annotations

import io

import pytest

from codesign.progress import Progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 1.25
        return self.t


def test_one_line_per_step_with_seconds():
    out = io.StringIO()
    p = Progress(3, prog="codesign run", stream=out, clock=Clock())
    with p.step("golden model"):
        pass
    p.skip("verify", "--no-hardware")
    with p.step("report"):
        pass
    assert out.getvalue() == (
        "codesign run: [1/3] golden model 1.2 s\n"
        "codesign run: [2/3] verify skipped (--no-hardware)\n"
        "codesign run: [3/3] report 1.2 s\n"
    )
    assert list(p.seconds) == ["golden model", "report"]


def test_not_live_unless_a_terminal():
    assert not Progress(1, stream=io.StringIO()).live


def test_live_line_is_redrawn_then_replaced():
    out = io.StringIO()
    p = Progress(1, prog="x", stream=out, live=True, interval=0.01, clock=Clock())
    with p.step("verify"):
        pass
    text = out.getvalue()
    assert text.startswith("\r\x1b[K[1/1] verify … ")
    assert text.endswith("\r\x1b[Kx: [1/1] verify " + text.rsplit(" verify ", 1)[1])
    assert text.count("\n") == 1


def test_failed_step_prints_nothing():
    out = io.StringIO()
    p = Progress(2, stream=out)
    with pytest.raises(KeyError), p.step("verify"):
        raise KeyError("x")
    assert out.getvalue() == "" and p.done == 0
