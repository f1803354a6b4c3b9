"""record's progress line: rewritten in place on a terminal, whole lines on a dumb one (a serial
console, a log), nothing in a pipe."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kdamon.cli import record


class _Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, tty: bool, term: str) -> str:
    stream = _Terminal(tty)
    monkeypatch.setattr("sys.stderr", stream)
    monkeypatch.setenv("TERM", term)
    clock = iter(float(t) for t in range(1000, 1100))
    monkeypatch.setattr(record.time, "monotonic", lambda: next(clock))
    progress = record._Progress(tmp_path / "out.kdrec")
    for count in range(1, 31):
        progress.update(count, 0)
    return stream.getvalue()


def test_a_terminal_rewrites_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shown = _run(monkeypatch, tmp_path, tty=True, term="xterm")
    assert shown.count("\r") == 30
    assert "\n" not in shown


def test_a_dumb_terminal_gets_whole_lines_now_and_then(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shown = _run(monkeypatch, tmp_path, tty=True, term="dumb")
    assert "\r" not in shown
    lines = shown.splitlines()
    # One second a tick on the fake clock: a line at the first update, then every ten seconds.
    assert len(lines) == 3
    assert all(line.startswith("kdamon: recording") for line in lines)


def test_a_pipe_gets_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _run(monkeypatch, tmp_path, tty=False, term="xterm") == ""
