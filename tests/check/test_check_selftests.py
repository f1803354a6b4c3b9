from __future__ import annotations

from pathlib import Path

from kdamon.check.results import CheckResult, Status
from kdamon.check.selftests import (
    TIMING_DEPENDENT,
    apply_limits,
    listed_tests,
    parse_tap,
)
from kdamon.check.selftests.guest import set_timeout

MAKEFILE = """\
TEST_GEN_FILES += access_memory
TEST_FILES = _chk_dependency.sh
TEST_PROGS = debugfs_attrs.sh debugfs_schemes.sh
TEST_PROGS += sysfs.sh \\
\tdamos_quota.py
# TEST_PROGS += commented.sh
TEST_PROGS += reclaim.sh
include ../lib.mk
"""

TAP = """\
TAP version 13
1..4
# timeout set to 300
# selftests: damon: debugfs_attrs.sh
# /sys/kernel/debug/damon not found
ok 1 selftests: damon: debugfs_attrs.sh # SKIP
# timeout set to 300
# selftests: damon: sysfs.sh
ok 2 selftests: damon: sysfs.sh
# selftests: damon: damos_apply_interval.py
# scheme(s) are not tried
# first line
not ok 3 selftests: damon: damos_apply_interval.py # exit=1
# selftests: damon: reclaim.sh
not ok 4 selftests: damon: reclaim.sh # TIMEOUT 300 seconds
"""


def test_listed_tests_follow_the_makefile() -> None:
    assert listed_tests(MAKEFILE) == [
        "debugfs_attrs.sh",
        "debugfs_schemes.sh",
        "sysfs.sh",
        "damos_quota.py",
        "reclaim.sh",
    ]


def test_parse_tap() -> None:
    stamped = [(float(n), line) for n, line in enumerate(TAP.splitlines())]
    results = parse_tap(stamped)
    assert [(r.id, r.status) for r in results] == [
        ("selftests.debugfs_attrs.sh", Status.SKIP),
        ("selftests.sysfs.sh", Status.PASS),
        ("selftests.damos_apply_interval.py", Status.FAIL),
        ("selftests.reclaim.sh", Status.FAIL),
    ]
    assert results[0].message == "SKIP; /sys/kernel/debug/damon not found"
    assert results[1].message == "" and results[1].duration_s == 3.0
    assert results[2].message == "exit=1; scheme(s) are not tried / first line"
    assert results[3].message == "TIMEOUT 300 seconds"
    assert all(r.group == "selftests" for r in results)


def test_limits_turn_only_guest_artefacts_into_reasoned_skips() -> None:
    timing = next(iter(TIMING_DEPENDENT))
    results = [
        CheckResult(f"selftests.{timing}", "t", Status.FAIL, "exit=1", group="selftests"),
        CheckResult("selftests.sysfs.py", "t", Status.FAIL, "exit=1; drgn not found", group="selftests"),
        CheckResult("selftests.sysfs.sh", "t", Status.FAIL, "exit=1", group="selftests"),
        CheckResult(f"selftests.{timing}", "t", Status.PASS, group="selftests"),
        CheckResult("monitor.drgn_like", "t", Status.FAIL, "drgn", group="monitor"),
    ]
    out = apply_limits(results, "tcg")
    assert out[0].status is Status.SKIP and "TCG" in out[0].message and "exit=1" in out[0].message
    assert out[1].status is Status.SKIP and "drgn" in out[1].message
    assert out[2:] == results[2:]
    under_kvm = apply_limits(results, "kvm")
    assert under_kvm[0] == results[0] and under_kvm[1].status is Status.SKIP


def test_the_timeout_goes_into_the_settings_every_runner_reads(tmp_path: Path) -> None:
    set_timeout(tmp_path, 300)
    assert (tmp_path / "settings").read_text() == "timeout=300\n"
    (tmp_path / "settings").write_text("timeout=45\nother=1\n")
    set_timeout(tmp_path, 300)
    assert (tmp_path / "settings").read_text() == "other=1\ntimeout=300\n"
