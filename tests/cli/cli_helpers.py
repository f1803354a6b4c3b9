"""``kdamon`` run in this process on a given Host, for the CLI host tests."""

from __future__ import annotations

import io

import pytest

from kdamon.backend.host import Host
from kdamon.cli import common
from kdamon.cli.main import main


class Kdamon:
    """Runs ``kdamon ARGS`` in this process on a given Host; returns (exit code, stdout, stderr)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
        self._monkeypatch = monkeypatch
        self._capsys = capsys

    def __call__(self, host: Host, *argv: str) -> tuple[int, str, str]:
        self._monkeypatch.setattr(common, "make_host", lambda: host)
        self._capsys.readouterr()
        code = main(list(argv))
        out, err = self._capsys.readouterr()
        return code, out, err


class Terminal(io.StringIO):
    """A standard output that says it is a terminal."""

    def isatty(self) -> bool:
        return True
