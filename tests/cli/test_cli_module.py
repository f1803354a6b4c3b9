"""kdamon module: status, set (with commit_inputs only when enabled), enable and disable."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import Kdamon
from kdamon.backend.host import Host, HostPaths


def _host(tmp_path: Path) -> tuple[Host, Path]:
    host = Host(HostPaths.under(tmp_path))
    params = host.paths.module_root / "damon_lru_sort" / "parameters"
    params.mkdir(parents=True)
    for name, value in {
        "enabled": "N",
        "commit_inputs": "N",
        "hot_thres_access_freq": "500",
        "cold_min_age": "120000000",
        "kdamond_pid": "-1",
        "nr_hot_quota_exceeds": "0",
    }.items():
        (params / name).write_text(value + "\n")
    return host, params


def test_status_set_enable(tmp_path: Path, kdamon: Kdamon) -> None:
    host, params = _host(tmp_path)
    code, out, _ = kdamon(host, "module", "lru_sort")
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["cold_min_age"].split()[1] == "120000000"
    assert "(read-only)" in lines["kdamond_pid"] and "(read-only)" not in lines["cold_min_age"]

    code, _, err = kdamon(host, "module", "lru_sort", "set", "cold_min_age=30s", "hot_thres_access_freq=60%")
    assert code == 0, err
    assert (params / "cold_min_age").read_text().strip() == "30000000"
    assert (params / "hot_thres_access_freq").read_text().strip() == "600"
    assert (params / "commit_inputs").read_text().strip() == "N"
    assert (params / "enabled").read_text().strip() == "N"  # never toggled as a side effect

    assert kdamon(host, "module", "lru_sort", "enable")[0] == 0
    assert (params / "enabled").read_text().strip() == "Y"
    assert kdamon(host, "module", "lru_sort", "set", "cold_min_age=1m")[0] == 0
    assert (params / "commit_inputs").read_text().strip() == "Y"
    assert kdamon(host, "module", "lru_sort", "disable")[0] == 0
    assert (params / "enabled").read_text().strip() == "N"


def test_refusals(tmp_path: Path, kdamon: Kdamon) -> None:
    host, params = _host(tmp_path)
    code, _, err = kdamon(host, "module", "lru_sort", "set", "nr_hot_quota_exceeds=5")
    assert code == 2 and "read-only" in err
    code, _, err = kdamon(host, "module", "reclaim", "status")
    assert code == 1 and "no damon_reclaim module" in err
    code, _, err = kdamon(host, "module", "lru_sort", "enable", "x=1")
    assert code == 2 and "only `set`" in err
    assert (params / "enabled").read_text().strip() == "N"


def test_status_json(tmp_path: Path, kdamon: Kdamon) -> None:
    host, params = _host(tmp_path)
    code, out, err = kdamon(host, "module", "lru_sort", "status", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["module"] == "damon_lru_sort"
    assert document["parameters"]["cold_min_age"] == {"value": "120000000", "read_only": False}
    assert document["parameters"]["kdamond_pid"] == {"value": "-1", "read_only": True}
    assert set(document["parameters"]) == {p.name for p in params.iterdir()}
    assert json.loads(kdamon(host, "module", "lru_sort", "--json")[1]) == document  # status is the default
    code, _, err = kdamon(host, "module", "lru_sort", "enable", "--json")
    assert code == 2 and "--json goes with status" in err
    assert (params / "enabled").read_text().strip() == "N"
