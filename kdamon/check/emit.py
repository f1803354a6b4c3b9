"""A pytest plugin object that turns each test's reports into one :class:`CheckResult`.

Used inside guests (the ``kdamon check`` suite and tests that the
``damon_guest`` marker sends there): every finished test becomes one console
line (``results.result_line``) written through ``write``, which should go to
a file descriptor that pytest's output capture does not redirect.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kdamon.check.results import CheckResult, Status, result_line

__all__ = ["NOTE", "ResultEmitter", "check_identity"]

NOTE = "note"
_NO_REASON = ("", "Skipped", "unconditional skip")  # what pytest reports for a skip that gave no reason
"""``record_property(NOTE, text)`` in a test adds ``text`` to its result's message."""


def check_identity(item: pytest.Item) -> tuple[str, str, str]:
    """``(id, group, title)`` of a test: ``test_monitor.py::test_hot_set[x]`` is ``monitor.hot_set[x]``.

    The title is the first line of the test's docstring (else its name).
    """
    module = item.path.stem.removeprefix("test_")
    parts = item.nodeid.split("::")[1:]
    names = [p.removeprefix("test_").removeprefix("Test") for p in parts]
    check_id = ".".join([module, *names])
    func = getattr(item, "function", None)
    doc = (getattr(func, "__doc__", None) or "").strip()
    title = doc.splitlines()[0].strip() if doc else item.name
    return check_id, module, title


def _crash_message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).strip()
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ").strip()
    return str(longrepr).strip()[-2000:] if longrepr is not None else ""


class ResultEmitter:
    """Collects each test's phase reports and emits its result when the test finishes.

    ``stop_after(result)`` returning True ends the session after that test
    (module teardowns still run).
    """

    def __init__(
        self, write: Callable[[str], object], *, stop_after: Callable[[CheckResult], bool] | None = None
    ) -> None:
        self._write = write
        self._stop_after = stop_after
        self._session: pytest.Session | None = None
        self._identity: dict[str, tuple[str, str, str]] = {}
        self._reports: dict[str, list[pytest.TestReport]] = {}
        self.results: list[CheckResult] = []

    def _emit(self, result: CheckResult) -> None:
        self.results.append(result)
        self._write(result_line(result) + "\n")
        if self._stop_after is not None and self._session is not None and self._stop_after(result):
            self._session.shouldstop = f"stopping after {result.id} ({result.status.value})"

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._session = session

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            self._identity[item.nodeid] = check_identity(item)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            stem = report.nodeid.rsplit("/", 1)[-1].removesuffix(".py").removeprefix("test_") or "session"
            self._emit(
                CheckResult(
                    id=f"{stem}.collect",
                    group=stem,
                    title=f"collect {report.nodeid or 'the suite'}",
                    status=Status.ERROR,
                    message=str(report.longrepr).strip()[-2000:],
                )
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        reports = self._reports.pop(nodeid, [])
        check_id, group, title = self._identity.get(nodeid, (nodeid, "", nodeid))
        self._emit(self.result_of(check_id, group, title, reports))

    @staticmethod
    def result_of(check_id: str, group: str, title: str, reports: list[pytest.TestReport]) -> CheckResult:
        """Fold a test's setup/call/teardown reports into one result."""
        duration = sum(r.duration for r in reports)
        notes = [str(v) for k, v in (reports[-1].user_properties if reports else ()) if k == NOTE]
        status, message = Status.PASS, ""
        for r in reports:
            if r.failed:
                status = Status.FAIL if r.when == "call" else Status.ERROR
                message = _crash_message(r)
                if r.when != "call":
                    message = f"{r.when} failed: {message}"
                break
            if r.skipped:
                status = Status.SKIP
                message = _crash_message(r)
                if hasattr(r, "wasxfail"):
                    message = f"expected failure: {r.wasxfail}"
        if status is Status.SKIP and message in _NO_REASON:
            status, message = Status.ERROR, "skipped without a reason: every skip must say why"
        if not reports:
            status, message = Status.ERROR, "the test produced no report"
        text = "; ".join(filter(None, [message, *notes]))
        return CheckResult(id=check_id, group=group, title=title, status=status, message=text, duration_s=duration)
