"""The pytest side: results emitted per test, ids, titles, notes, and reasons for skips."""

from __future__ import annotations

from collections.abc import Callable

from kdamon.check.results import CheckResult, Status

RunPytest = Callable[..., tuple[int, list[CheckResult]]]  # the run_pytest fixture (conftest.py)

SAMPLE = '''
import time

import pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture exploded")

def test_passes(record_property):
    """it passes"""
    record_property("note", "measured 3")
    time.sleep(0.05)

def test_fails():
    """it fails"""
    assert 1 == 2, "one is not two"

def test_skips():
    pytest.skip("needs Linux 9.9+")

def test_skips_silently():
    pytest.skip("")

def test_errors(broken):
    pass

@pytest.mark.parametrize("x", ["a", "b"])
def test_param(x):
    assert x == "a"

class TestGroup:
    def test_inner(self):
        """inside a class"""
'''


def test_emitter_reports_each_test_once(run_pytest: RunPytest) -> None:
    code, results = run_pytest(SAMPLE)
    assert code == 1
    by_id = {r.id: r for r in results}
    assert list(by_id) == [
        "sample.passes",
        "sample.fails",
        "sample.skips",
        "sample.skips_silently",
        "sample.errors",
        "sample.param[a]",
        "sample.param[b]",
        "sample.Group.inner",
    ]
    assert (by_id["sample.passes"].status, by_id["sample.passes"].message, by_id["sample.passes"].title) == (
        Status.PASS,
        "measured 3",
        "it passes",
    )
    assert by_id["sample.fails"].status is Status.FAIL and "one is not two" in by_id["sample.fails"].message
    assert by_id["sample.skips"].status is Status.SKIP and by_id["sample.skips"].message == "needs Linux 9.9+"
    assert by_id["sample.skips_silently"].status is Status.ERROR
    assert "every skip must say why" in by_id["sample.skips_silently"].message
    assert by_id["sample.errors"].status is Status.ERROR and "setup failed" in by_id["sample.errors"].message
    assert "fixture exploded" in by_id["sample.errors"].message
    assert by_id["sample.param[b]"].status is Status.FAIL and by_id["sample.param[a]"].status is Status.PASS
    assert by_id["sample.Group.inner"].title == "inside a class"
    assert all(r.group == "sample" for r in by_id.values())
    assert by_id["sample.passes"].duration_s >= 0.05  # it slept that long: durations are summed


def test_collection_errors_become_results(run_pytest: RunPytest) -> None:
    _, (result,) = run_pytest("import no_such_module_kdamon\n", name="test_broken.py")
    assert result.id == "broken.collect" and result.status is Status.ERROR
    assert "no_such_module_kdamon" in result.message


def test_stop_after_ends_the_session_after_that_result(run_pytest: RunPytest) -> None:
    source = "def test_a():\n    pass\n\ndef test_b():\n    assert False\n\ndef test_c():\n    assert False\n\ndef test_d():\n    pass\n"
    _, every = run_pytest(source)
    assert [r.id for r in every] == ["sample.a", "sample.b", "sample.c", "sample.d"]
    _, stopped = run_pytest(source, stop_after=lambda r: r.status.bad and r.id == "sample.c")
    assert [(r.id, r.status) for r in stopped] == [
        ("sample.a", Status.PASS),
        ("sample.b", Status.FAIL),
        ("sample.c", Status.FAIL),
    ]
