"""The engine's limits on the command line: schemes it cannot apply are refused (start, tune,
record, and --backend auto falling back to it) unless --engine-stat-only, which says so on
standard error and in `kdamon status`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_helpers import Kdamon
from kdamon.backend.host import Host, HostPaths

FAST = ["--sample", "2ms", "--aggr", "20ms"]


@pytest.fixture
def sleeper() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def test_start_refuses_with_auto_saying_why_the_engine(tmp_path: Path, kdamon: Kdamon, sleeper: int) -> None:
    host = Host(HostPaths.under(tmp_path))  # no DAMON: auto falls back to the engine
    code, out, err = kdamon(
        host, "start", "--target-pid", str(sleeper), *FAST, "--scheme", "action=migrate_hot", "--scheme", "action=cold"
    )
    assert (code, out) == (1, "")
    assert (
        "kdamon: error: --backend auto chose kdamon's engine because this kernel has no DAMON sysfs interface"
    ) in err
    assert "cannot apply migrate_hot (scheme 0) to vaddr targets" in err
    assert "make kernel DAMON usable here" in err and "--engine-stat-only" in err
    assert kdamon(host, "status")[1].strip() == "no kdamond exists"


def test_start_and_tune_with_engine_stat_only(tmp_path: Path, kdamon: Kdamon, sleeper: int) -> None:
    host = Host(HostPaths.under(tmp_path))
    code, out, err = kdamon(
        host,
        "start",
        "--backend",
        "engine",
        "--target-pid",
        str(sleeper),
        *FAST,
        "--scheme",
        "action=pageout",
        "--scheme",
        "action=lru_deprio",
        "--engine-stat-only",
    )
    assert (code, out.strip()) == (0, "engine:0"), err
    assert "kdamon: engine:0 only counts scheme 1 (lru_deprio), as stat schemes, as --engine-stat-only asks" in err
    try:
        code, out, _ = kdamon(host, "status")
        assert "scheme 1 only counted, as stat (--engine-stat-only" in out
        code, out, _ = kdamon(host, "status", "--json")
        assert "scheme 1 only counted" in json.loads(out)[0]["note"]

        code, _, err = kdamon(host, "tune", "engine:0", "--scheme", "action=nohugepage")
        assert code == 1 and "cannot apply nohugepage (scheme 0)" in err and "--engine-stat-only" in err
        code, _, err = kdamon(host, "tune", "engine:0", "--scheme", "action=nohugepage", "--engine-stat-only")
        assert code == 0 and "engine:0 only counts scheme 0 (nohugepage)" in err
    finally:
        kdamon(host, "stop")


def test_start_refuses_every_action_on_paddr(tmp_path: Path, kdamon: Kdamon) -> None:
    host = Host(HostPaths.under(tmp_path))
    code, _, err = kdamon(
        host,
        "start",
        "--backend",
        "engine",
        "--ops",
        "paddr",
        "--regions",
        "0x100000000-0x140000000",
        "--scheme",
        "action=stat",
        "--scheme",
        "action=pageout",
    )
    assert code == 1
    assert (
        "cannot apply pageout (scheme 1) to paddr targets: it applies no action there (user space "
        "cannot act on physical page frames)"
    ) in err


def test_record_refuses_and_counts_when_asked(tmp_path: Path, kdamon: Kdamon, sleeper: int) -> None:
    host = Host(HostPaths.under(tmp_path))
    output = tmp_path / "out.kdr"
    code, _, err = kdamon(
        host,
        "record",
        "--backend",
        "engine",
        "--pid",
        str(sleeper),
        *FAST,
        "--scheme",
        "action=hugepage",
        "-o",
        str(output),
    )
    assert code == 1 and "cannot apply hugepage (scheme 0) to vaddr targets" in err
    assert "--backend auto or sysfs" in err
    code, _, err = kdamon(
        host,
        "record",
        "--backend",
        "engine",
        "--pid",
        str(sleeper),
        *FAST,
        "--scheme",
        "action=hugepage",
        "--engine-stat-only",
        "--duration",
        "0.5",
        "-o",
        str(output),
    )
    assert code == 0, err
    assert "kdamon: the engine only counts scheme 0 (hugepage), as stat schemes" in err
    assert "recorded" in err and output.stat().st_size > 0
