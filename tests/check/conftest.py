"""Host tests of kdamon check: ``run_pytest`` runs a small pytest session in this process."""

from __future__ import annotations

import importlib.metadata as md
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from kdamon.check.emit import ResultEmitter
from kdamon.check.results import CheckResult, parse_console

# The plugin is loaded by its pytest11 entry point once kdamon is installed; else name it.
PLUGIN = [] if any(ep.name == "kdamon" for ep in md.entry_points(group="pytest11")) else ["-p", "kdamon.pytest_plugin"]

RunPytest = Callable[..., tuple[int, list[CheckResult]]]


@pytest.fixture
def run_pytest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunPytest:
    """Write ``source`` as a test file, run pytest on it in-process; ``(exit code, results)``."""

    def run(
        source: str, *args: str, name: str = "test_sample.py", stop_after: Callable[[CheckResult], bool] | None = None
    ) -> tuple[int, list[CheckResult]]:
        path = tmp_path / name
        path.write_text(source)
        lines: list[str] = []
        monkeypatch.chdir(tmp_path)
        modules = set(sys.modules)
        try:
            code = pytest.main(
                [str(path), "-q", "-p", "no:cacheprovider", "--import-mode=importlib", *PLUGIN, *args],
                plugins=[ResultEmitter(lines.append, stop_after=stop_after)],
            )
        finally:
            # The next run's test file has the same module name: forget the modules of this run's
            # files, and only those (a library first imported by this run stays imported: a second
            # copy of, e.g., hypothesis's internals would make it see its own data as flaky).
            for name in set(sys.modules) - modules:
                file = getattr(sys.modules[name], "__file__", None)
                if file is not None and Path(file).is_relative_to(tmp_path):
                    del sys.modules[name]
        return int(code), list(parse_console(lines).results)

    return run
