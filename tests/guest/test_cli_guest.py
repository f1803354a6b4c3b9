"""The kdamon command line on a real DAMON kernel (6.1, 6.12 and 7.3 guests, as root).

Every command runs as its own process (``python3 -m kdamon``), as a user would
run it.  A foreign kdamond is made with raw sysfs writes, as another tool
would; kdamon must show it and never touch it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kdamon.records.detect import open_any
from kdamon.testing.raw_sysfs import raw_write
from kdamon.testing.workloads import Layout
from kdamon_cli import Kdamon
from quirks import skip_if_reclaim_ignores_enabled

ADMIN = Path("/sys/kernel/mm/damon/admin")
KDAMONDS = ADMIN / "kdamonds"
MODULES = Path("/sys/module")


def damon_tree() -> dict[str, str]:
    """Every readable file of DAMON sysfs and the DAMON modules, with its content."""
    out = {}
    for base in [ADMIN] + [MODULES / n / "parameters" for n in ("damon_reclaim", "damon_lru_sort", "damon_stat")]:
        for path in sorted(base.rglob("*")) if base.exists() else ():
            if path.is_file() and os.access(path, os.R_OK):
                out[str(path)] = path.read_text()
    return out


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; b = bytearray(1 << 24); time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def start_foreign(pid: int) -> None:
    """A kdamond started by another tool: raw writes, no kdamon involved."""
    raw_write(KDAMONDS / "nr_kdamonds", "1")
    raw_write(KDAMONDS / "0" / "contexts" / "nr_contexts", "1")
    ctx = KDAMONDS / "0" / "contexts" / "0"
    raw_write(ctx / "operations", "vaddr")
    raw_write(ctx / "targets" / "nr_targets", "1")
    raw_write(ctx / "targets" / "0" / "pid_target", str(pid))
    raw_write(KDAMONDS / "0" / "state", "on")


def test_start_status_tune_stop(kdamon: Kdamon, sleeper: subprocess.Popen[bytes]) -> None:
    done = kdamon("start", "--target-pid", str(sleeper.pid), "--scheme", "action=stat,age=1s-max")
    assert done.stdout.strip() == "sysfs:0"
    assert "kernel DAMON through sysfs" in done.stderr
    assert (KDAMONDS / "0" / "state").read_text().strip() == "on"

    [entry] = json.loads(kdamon("status", "--json").stdout)
    assert (entry["id"], entry["owner"], entry["state"]) == ("sysfs:0", "kdamon", "on")
    assert entry["config"]["contexts"][0]["targets"][0]["pid"] == sleeper.pid
    assert len(entry["stats"]) == 1

    kdamon("tune", "sysfs:0", "--aggr", "200ms")
    intervals = KDAMONDS / "0" / "contexts" / "0" / "monitoring_attrs" / "intervals"
    assert (intervals / "aggr_us").read_text().strip() == "200000"
    assert (KDAMONDS / "0" / "state").read_text().strip() == "on"

    assert "stopped sysfs:0" in kdamon("stop").stderr
    assert (KDAMONDS / "0" / "state").read_text().strip() == "off"


def test_status_writes_nothing(kdamon: Kdamon, sleeper: subprocess.Popen[bytes]) -> None:
    kdamon("start", "--target-pid", str(sleeper.pid), "--scheme", "action=stat")
    before = damon_tree()
    # Run status under an audit hook that records every open for writing.
    probe = (
        "import os, sys\n"
        "writes = []\n"
        "def hook(event, args):\n"
        "    if event == 'open' and args and isinstance(args[0], (str, bytes)):\n"
        "        mode, flags = args[1], args[2]\n"
        "        writing = (isinstance(mode, str) and any(c in mode for c in 'wax+')) or \\\n"
        "            (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR))\n"
        "        path = os.path.abspath(os.fsdecode(args[0]))\n"
        "        if writing and path.startswith(('/sys/', os.environ['KDAMON_STATE_DIR'])):\n"
        "            writes.append(path)\n"
        "sys.addaudithook(hook)\n"
        "from kdamon.cli.main import main\n"
        "code = main(['status'])\n"
        "print('WRITES', writes, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=kdamon.env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "sysfs:0" in done.stdout
    assert "WRITES []" in done.stderr
    assert damon_tree() == before


def test_foreign_kdamond_shown_and_never_touched(kdamon: Kdamon, sleeper: subprocess.Popen[bytes]) -> None:
    start_foreign(sleeper.pid)
    pid = (KDAMONDS / "0" / "pid").read_text().strip()
    before = damon_tree()

    [entry] = json.loads(kdamon("status", "--json").stdout)
    assert (entry["id"], entry["owner"], entry["state"], str(entry["pid"])) == ("sysfs:0", "foreign", "on", pid)

    refused = kdamon("stop", "sysfs:0", check=False)
    assert refused.returncode == 1 and "was not created by kdamon" in refused.stderr
    assert kdamon("tune", "0", "--aggr", "1s", check=False).returncode == 1
    assert "no kdamond started by kdamon" in kdamon("stop").stderr

    started = kdamon("start", "--target-pid", str(sleeper.pid), "--aggr", "50ms")
    assert started.stdout.strip() == "engine:0"
    assert "kdamond 0 holds another tool's configuration" in started.stderr
    kdamon("stop", "engine:0")

    assert (KDAMONDS / "0" / "state").read_text().strip() == "on"
    assert (KDAMONDS / "0" / "pid").read_text().strip() == pid
    assert damon_tree() == before


def test_record_on_kernel_damon(kdamon: Kdamon, tmp_path: Path) -> None:
    out, layout_file = tmp_path / "rec.kdr", tmp_path / "layout.json"
    done = kdamon(
        "record",
        "-o",
        str(out),
        "--duration",
        "10",
        "--ready-file",
        str(layout_file),
        "--",
        sys.executable,
        "-m",
        "kdamon.testing.workloads",
        "hot_cold",
        "--sizes",
        "4MiB",
        "32MiB",
        "--seconds",
        "120",
        "--layout",
        str(layout_file),
    )
    assert "kernel DAMON through sysfs" in done.stderr
    source = open_any(out)
    assert source.meta.producer == "sysfs"
    snapshots = list(source.snapshots())
    assert len(snapshots) >= 5
    layout = Layout.from_json(layout_file.read_text())

    def mean_accesses(start: int, end: int) -> float:
        total = weight = 0
        for snap in snapshots[len(snapshots) // 2 :]:
            for r in snap.regions.tolist():
                overlap = min(r[1], end) - max(r[0], start)
                if overlap > 0:
                    total += r[2] * overlap
                    weight += overlap
        return total / max(weight, 1)

    assert mean_accesses(*layout.hot) > 2 * mean_accesses(*layout.cold) + 1
    # The recording's kdamond is stopped and its directory released.
    assert (KDAMONDS / "0" / "state").read_text().strip() == "off"
    assert (KDAMONDS / "0" / "contexts" / "nr_contexts").read_text().strip() == "0"


def test_module_reclaim(kdamon: Kdamon, sleeper: subprocess.Popen[bytes]) -> None:
    params = MODULES / "damon_reclaim" / "parameters"
    if not params.exists():
        pytest.skip("this kernel has no DAMON_RECLAIM")
    skip_if_reclaim_ignores_enabled()
    lines = {line.split()[0]: line for line in kdamon("module", "reclaim").stdout.splitlines()}
    assert "enabled" in lines and "(read-only)" in lines["kdamond_pid"]

    kdamon("module", "reclaim", "set", "min_age=10s", "quota_ms=20")
    assert (params / "min_age").read_text().strip() == "10000000"
    assert (params / "enabled").read_text().strip() == "N"

    kdamon("module", "reclaim", "enable")
    assert (params / "enabled").read_text().strip() == "Y"
    statuses = json.loads(kdamon("status", "--json").stdout)
    assert [(s["id"], s["owner"]) for s in statuses] == [("module:damon_reclaim", "foreign")]
    started = kdamon("start", "--target-pid", str(sleeper.pid))
    assert started.stdout.strip() == "engine:0" and "DAMON_RECLAIM is enabled" in started.stderr
    kdamon("stop", "engine:0")

    kdamon("module", "reclaim", "set", "quota_ms=30")
    assert (params / "quota_ms").read_text().strip() == "30"
    kdamon("module", "reclaim", "disable")
    assert (params / "enabled").read_text().strip() == "N"
