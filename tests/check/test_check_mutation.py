"""kdamon check --mutants with a fake build and a fake suite: classification, report, the tree left untouched."""

from __future__ import annotations

import json
import os
from collections.abc import Collection
from pathlib import Path

import pytest

from kdamon.check.mutants import Mutant, sample
from kdamon.check.mutation import MutantStatus, MutationReport, killers, mutation_table
from kdamon.check.mutation_run import Shadow, generate, run_mutants, shadow_for
from kdamon.check.results import CheckResult, KernelReport, Status
from kdamon.errors import GuestError

CORE = """int kdamond_merge(int age, int same)
{
	if (same)
		age++;
	else
		age = 0;
	return age + 0;
}

int broken(void)
{
	helper(1);
	return 0;
}
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "linux"
    (root / "mm" / "damon").mkdir(parents=True)
    (root / "mm" / "damon" / "core.c").write_text(CORE)
    (root / "Makefile").write_text("VERSION = 6\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref\n")
    return root


class FakeBuild:
    """``compiles`` a shadow's core.c: 'helper(2)' is a compile error; 'return age + 1' compiles to the same object."""

    def __init__(self, shadow: Shadow) -> None:
        self.shadow = shadow
        self.builds: list[str] = []

    def build(self, what: str) -> Path:
        text = self.shadow.read("mm/damon/core.c").decode()
        self.builds.append(text)
        if "helper(2)" in text:
            raise GuestError(f"{what} failed (exit 2): core.c:12: error: too many arguments")
        return self.shadow.root / "bzImage"

    def object_bytes(self, file: str) -> bytes | None:
        return self.builds[-1].replace("age + 1", "age + 0").encode()


def _result(check_id: str, status: Status, message: str = "") -> CheckResult:
    return CheckResult(check_id, check_id, status, message)


class FakeSuite:
    """ages.grow fails when ages never grow; errno.x fails on the baseline already; monitor.y is skipped."""

    def __init__(self, shadow: Shadow) -> None:
        self.shadow = shadow
        self.calls: list[tuple[frozenset[str], float | None, str | None]] = []

    def __call__(self, image: Path, stop: Collection[str], timeout: float | None, select: str | None) -> KernelReport:
        self.calls.append((frozenset(stop), timeout, select))
        text = self.shadow.read("mm/damon/core.c").decode()
        grows = "\t\tage++;" in text and "if (same)" in text
        results = (
            _result("ages.grow", Status.PASS if grows else Status.FAIL, "age stayed 0 over 10 aggregations"),
            _result("errno.x", Status.FAIL, "broken on every kernel"),
            _result("monitor.y", Status.SKIP, "needs 6.15"),
        )
        return KernelReport("fake", results, elapsed_s=100.0)


def _mutants(operator_lines: dict[tuple[str, int], str]) -> list[Mutant]:
    lines = CORE.split("\n")
    return [Mutant("mm/damon/core.c", n, 0, op, lines[n - 1], new) for (op, n), new in operator_lines.items()]


def _run(tree: Path, tmp_path: Path, mutants: list[Mutant]) -> tuple[MutationReport, Shadow, FakeSuite]:
    shadow, _build = shadow_for(tree, tmp_path / "cache")
    suite = FakeSuite(shadow)
    report = run_mutants(
        mutants, source=str(tree), seed=1, count=len(mutants), shadow=shadow, builder=FakeBuild(shadow), checker=suite
    )
    return report, shadow, suite


def test_outcomes_are_classified(tree: Path, tmp_path: Path) -> None:
    mutants = _mutants({
        ("delete", 4): "\t\t;",  # ages never grow: killed by ages.grow
        ("negate", 3): "\tif (!(same))",  # killed too
        ("delete", 6): "\t\t;",  # nothing observes the reset: survives
        ("constant", 7): "\treturn age + 1;",  # folded away: equivalent
        ("constant", 12): "\thelper(2);",  # does not compile
    })  # fmt: skip
    report, _shadow, suite = _run(tree, tmp_path, mutants)
    status = {o.mutant.line: o.status for o in report.outcomes}
    assert status == {
        4: MutantStatus.KILLED,
        3: MutantStatus.KILLED,
        6: MutantStatus.SURVIVED,
        7: MutantStatus.EQUIVALENT,
        12: MutantStatus.NOT_BUILT,
    }
    killed = next(o for o in report.outcomes if o.mutant.line == 4)
    assert killed.killed_by == ("ages.grow",) and "age stayed 0" in killed.detail
    assert "too many arguments" in next(o for o in report.outcomes if o.mutant.line == 12).detail
    assert report.score == pytest.approx(2 / 3)
    # the baseline runs the whole suite; mutants stop at the first failure of a check that passed on it,
    # and a kill is confirmed by running the killing check's group again
    assert suite.calls[0] == (frozenset(), None, None)
    stop = frozenset({"ages.grow"})
    assert suite.calls[1:] == [
        (stop, 250.0, None),
        (stop, 250.0, "test_ages"),
        (stop, 250.0, None),
        (stop, 250.0, "test_ages"),
        (stop, 250.0, None),
    ]


def test_a_kill_that_does_not_repeat_is_not_counted(tree: Path, tmp_path: Path) -> None:
    shadow, _ = shadow_for(tree, tmp_path / "cache")

    class Flaky(FakeSuite):
        """ages.grow fails the first time the mutant is checked, then passes."""

        def __call__(
            self, image: Path, stop: Collection[str], timeout: float | None, select: str | None
        ) -> KernelReport:
            report = super().__call__(image, stop, timeout, select)
            if len(self.calls) == 2:
                return KernelReport("fake", (_result("ages.grow", Status.FAIL, "fluke"),), elapsed_s=1.0)
            return report

    mutant = _mutants({("delete", 6): "\t\t;"})
    report = run_mutants(
        mutant, source="t", seed=1, count=1, shadow=shadow, builder=FakeBuild(shadow), checker=Flaky(shadow)
    )
    (outcome,) = report.outcomes
    assert outcome.status is MutantStatus.SURVIVED and "passed when run again" in outcome.detail
    assert report.score == 0.0


def test_after_a_fluke_later_checks_still_see_the_mutant(tree: Path, tmp_path: Path) -> None:
    shadow, _ = shadow_for(tree, tmp_path / "cache")

    class FlukeThenKill(FakeSuite):
        """The first run stops at a fluke of monitor.z; every later run fails ages.late, which the fluke hid."""

        def __call__(
            self, image: Path, stop: Collection[str], timeout: float | None, select: str | None
        ) -> KernelReport:
            super().__call__(image, stop, timeout, select)
            if len(self.calls) == 1:  # the baseline
                return KernelReport("fake", (_result("monitor.z", Status.PASS), _result("ages.late", Status.PASS)))
            if len(self.calls) == 2:
                return KernelReport("fake", (_result("monitor.z", Status.FAIL, "fluke"),))
            if select == "test_monitor":
                return KernelReport("fake", (_result("monitor.z", Status.PASS),))
            return KernelReport("fake", (_result("monitor.z", Status.PASS), _result("ages.late", Status.FAIL, "real")))

    suite = FlukeThenKill(shadow)
    report = run_mutants(
        _mutants({("delete", 6): "\t\t;"}),
        source="t",
        seed=1,
        count=1,
        shadow=shadow,
        builder=FakeBuild(shadow),
        checker=suite,
    )
    (outcome,) = report.outcomes
    assert outcome.status is MutantStatus.KILLED and outcome.killed_by == ("ages.late",)
    assert "real" in outcome.detail and "monitor.z" in outcome.detail
    # the rerun no longer stops at the flaky check; the kill was confirmed on its group
    assert [c[2] for c in suite.calls] == [None, None, "test_monitor", None, "test_ages"]
    assert "monitor.z" not in suite.calls[3][0]


def test_report_table_and_json(tree: Path, tmp_path: Path) -> None:
    report, _, _ = _run(tree, tmp_path, _mutants({("delete", 4): "\t\t;", ("delete", 6): "\t\t;"}))
    table = mutation_table(report, width=200)
    assert "mm/damon/core.c:4  delete" in table and "ages.grow" in table
    assert "No check observes these lines" in table and "mm/damon/core.c:6: age = 0; -> ;" in table
    assert "1 killed, 1 survived, 0 not built, 0 equivalent; score 50%" in table
    data = json.loads(json.dumps(report.to_dict()))
    assert data["summary"] == {"killed": 1, "survived": 1, "not built": 0, "equivalent": 0}
    assert data["score"] == 0.5 and data["mutants"][1]["original"] == "age = 0;"
    assert data["baseline"]["summary"]["fail"] == 1


def test_killers_ignore_checks_that_did_not_pass_on_the_baseline() -> None:
    base = KernelReport("k", (_result("a", Status.PASS), _result("b", Status.FAIL), _result("c", Status.SKIP)))
    now = KernelReport(
        "k",
        (_result("a", Status.ERROR), _result("b", Status.FAIL), _result("c", Status.FAIL), _result("new", Status.FAIL)),
    )
    assert killers(base, now) == ("a",)
    assert killers(base, base) == ()


def test_the_tree_is_never_written_and_the_shadow_is_restored(tree: Path, tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    mtimes = {p: p.stat().st_mtime_ns for p in before}
    shadow, _ = shadow_for(tree, tmp_path / "cache")

    class Interrupting(FakeSuite):
        def __call__(
            self, image: Path, stop: Collection[str], timeout: float | None, select: str | None
        ) -> KernelReport:
            if stop:
                raise KeyboardInterrupt
            return super().__call__(image, stop, timeout, select)

    with pytest.raises(KeyboardInterrupt):
        run_mutants(
            _mutants({("delete", 4): "\t\t;"}),
            source="t",
            seed=1,
            count=1,
            shadow=shadow,
            builder=FakeBuild(shadow),
            checker=Interrupting(shadow),
        )
    assert shadow.read("mm/damon/core.c") == CORE.encode()
    assert {p: p.read_bytes() for p in before} == before
    assert {p: p.stat().st_mtime_ns for p in before} == mtimes
    # the shadow links every other file to the tree, leaves out .git, and holds a real copy of the mutated file
    assert (shadow.root / "Makefile").is_symlink() and (shadow.root / "Makefile").resolve() == tree / "Makefile"
    assert not (shadow.root / ".git").exists()
    assert not (shadow.root / "mm" / "damon" / "core.c").is_symlink()


def test_a_file_mutated_by_an_earlier_run_is_rebuilt_fresh(tree: Path, tmp_path: Path) -> None:
    (tree / "mm" / "damon" / "ops.c").write_text("int x;\n")
    shadow, _ = shadow_for(tree, tmp_path / "cache")
    shadow.create(["mm/damon/ops.c"])
    shadow.write("mm/damon/ops.c", b"int mutated;\n")  # a run killed half-way
    shadow.create(["mm/damon/core.c"])
    ops = shadow.root / "mm" / "damon" / "ops.c"
    assert not ops.is_symlink() and ops.read_text() == "int x;\n"
    assert ops.stat().st_mtime_ns >= (tree / "mm" / "damon" / "ops.c").stat().st_mtime_ns


def test_generate_validates_before_anything_is_built(tree: Path) -> None:
    chosen = generate(tree, ["mm/damon/core.c"], 3, 5)
    assert chosen == sample("mm/damon/core.c", CORE, 3, 5)
    with pytest.raises(GuestError, match="not a C file"):
        generate(tree, ["mm/damon/nope.c"], 3, 5)
    with pytest.raises(GuestError, match="at least one"):
        generate(tree, ["mm/damon/core.c"], 0, 5)


def test_a_baseline_without_a_passing_check_is_refused(tree: Path, tmp_path: Path) -> None:
    shadow, _ = shadow_for(tree, tmp_path / "cache")

    def failing(image: Path, stop: Collection[str], timeout: float | None, select: str | None) -> KernelReport:
        return KernelReport("k", (_result("a", Status.FAIL),))

    with pytest.raises(GuestError, match="no check passed"):
        run_mutants(
            _mutants({("delete", 4): "\t\t;"}),
            source="t",
            seed=1,
            count=1,
            shadow=shadow,
            builder=FakeBuild(shadow),
            checker=failing,
        )
    assert os.listdir(tree / "mm" / "damon") == ["core.c"]
