"""kdamon start/status/tune/stop against an emulated kernel's sysfs and the engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from backend_fixtures import start_foreign, tree
from cli_helpers import Kdamon
from fake_damon import FakeDamonFs
from kdamon.backend.host import Host, HostPaths
from kdamon.backend.process import terminate

DATA = Path(__file__).resolve().parents[1] / "backend" / "data"


def test_start_tune_stop_on_kernel(kernel: tuple[Host, FakeDamonFs], kdamon: Kdamon) -> None:
    host, _ = kernel
    code, out, err = kdamon(
        host,
        "start",
        "--target-pid",
        "4242",
        "--aggr",
        "50ms",
        "--scheme",
        "action=pageout,sz=4K-max,nr_accesses=0-0,age=5s-max",
    )
    assert code == 0 and out.strip() == "sysfs:0"
    assert "kernel DAMON through sysfs" in err
    [scheme] = host.sysfs.read(0).contexts[0].schemes
    assert (scheme.action, scheme.access_pattern.sz_min, scheme.access_pattern.age_min) == ("pageout", 4096, 100)

    code, out, _ = kdamon(host, "status")
    assert code == 0
    assert out.splitlines()[0].split()[:3] == ["sysfs:0", "kdamon", "on"]
    assert "target 0: pid 4242" in out and "scheme 0: pageout" in out

    code, _, err = kdamon(host, "tune", "0", "--aggr", "200ms")
    assert code == 0, err
    assert host.sysfs.read(0).contexts[0].intervals.aggr_us == 200000
    assert host.sysfs.read(0).contexts[0].schemes == (scheme,)  # kept: --scheme not given

    code, _, err = kdamon(host, "stop")
    assert code == 0 and "stopped sysfs:0" in err
    assert host.sysfs.state(0) == "off"


def test_status_and_stop_leave_a_foreign_kdamond_alone(kernel: tuple[Host, FakeDamonFs], kdamon: Kdamon) -> None:
    host, fake = kernel
    start_foreign(fake)
    before = tree(host.paths.sysfs_root)

    code, out, _ = kdamon(host, "status")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["sysfs:0", "foreign", "on"]
    code, out, _ = kdamon(host, "status", "--json")
    [entry] = json.loads(out)
    assert (entry["id"], entry["owner"], entry["state"]) == ("sysfs:0", "foreign", "on")
    assert entry["config"]["contexts"][0]["targets"][0]["pid"] == 4242

    code, _, err = kdamon(host, "stop", "sysfs:0")
    assert code == 1 and "was not created by kdamon" in err
    code, _, err = kdamon(host, "tune", "0", "--aggr", "1s")
    assert code == 1 and "was not created by kdamon" in err
    code, _, err = kdamon(host, "stop")
    assert code == 0 and "no kdamond started by kdamon" in err
    assert fake.writes == []
    assert tree(host.paths.sysfs_root) == before


def test_start_from_damo_and_kdamon_files(kernel: tuple[Host, FakeDamonFs], kdamon: Kdamon, tmp_path: Path) -> None:
    host, _ = kernel
    damo = json.loads((DATA / "damo_kdamonds.json").read_text())
    damo["kdamonds"][0]["contexts"][0]["targets"][0]["pid"] = 4242
    del damo["kdamonds"][0]["contexts"][0]["schemes"][0]["quotas"]["goals"]  # a 6.8+ feature
    damo_file = tmp_path / "damo.json"
    damo_file.write_text(json.dumps(damo))
    code, out, err = kdamon(host, "start", str(damo_file), "--backend", "sysfs")
    assert code == 0, err
    ctx = host.sysfs.read(0).contexts[0]
    assert ctx.intervals.update_us == 1_000_000 and ctx.schemes[0].action == "pageout"

    yaml_file = tmp_path / "one.yaml"
    yaml_file.write_text(
        "kdamonds:\n- contexts:\n  - ops: vaddr\n    intervals: {aggr_us: 20ms}\n    targets: [{pid: 4242}]\n"
    )
    code, _, err = kdamon(host, "stop", "0")
    assert code == 0, err
    code, out, err = kdamon(host, "start", str(yaml_file))
    assert code == 0, err
    assert host.sysfs.read(0).contexts[0].intervals.aggr_us == 20000


def test_start_json_prints_each_started_kdamond(kernel: tuple[Host, FakeDamonFs], kdamon: Kdamon) -> None:
    host, _ = kernel
    code, out, err = kdamon(host, "start", "--json", "--pid", "4242", "--aggr", "50ms")
    assert code == 0, err
    [line] = out.splitlines()
    started = json.loads(line)
    assert started["id"] == "sysfs:0" and started["backend"] == "sysfs" and started["command_pid"] is None
    assert started["pid"] == host.sysfs.pid(0) and "kernel DAMON through sysfs" in started["reason"]
    assert kdamon(host, "stop")[0] == 0


def test_start_refuses_mixed_and_bad_input(kernel: tuple[Host, FakeDamonFs], kdamon: Kdamon, tmp_path: Path) -> None:
    host, fake = kernel
    config = tmp_path / "c.json"
    shutil.copy(DATA / "damo_kdamonds.json", config)
    code, _, err = kdamon(host, "start", str(config), "--aggr", "1s")
    assert code == 2 and "either a configuration file or the monitoring options" in err
    code, _, err = kdamon(host, "start", "--target-pid", "4242", "--scheme", "action=explode")
    assert code == 2 and "unknown action" in err
    code, _, err = kdamon(host, "start", "--ops", "vaddr")
    assert code == 2 and "give --pid PID or -- CMD" in err
    assert fake.writes == []


def test_start_command_on_engine(tmp_path: Path, kdamon: Kdamon) -> None:
    host = Host(HostPaths.under(tmp_path))
    code, out, err = kdamon(host, "start", "--aggr", "20ms", "--sample", "2ms", "--", "sleep", "60")
    assert code == 0, err
    assert out.strip() == "engine:0"
    assert "kdamon's engine, because this kernel has no DAMON sysfs" in err
    code, out, _ = kdamon(host, "status", "--json")
    [entry] = json.loads(out)
    assert entry["owner"] == "kdamon" and entry["state"] == "on"
    target_pid = entry["config"]["contexts"][0]["targets"][0]["pid"]
    try:
        code, _, err = kdamon(host, "tune", "engine:0", "--scheme", "action=stat,age=1s-max")
        assert code == 0, err
        assert "scheme 0: stat" in kdamon(host, "status")[1]
        code, _, err = kdamon(host, "stop", "engine:0")
        assert code == 0 and "stopped engine:0" in err
        assert kdamon(host, "status")[1].strip() == "no kdamond exists"
    finally:
        terminate(target_pid)
