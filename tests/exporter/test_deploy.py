"""The shipped dashboard, alert rules and systemd unit: every query names metrics the exporter emits
(as a collector run on the fake trees emits them), the rules and queries parse (promtool, where
installed), the unit verifies (systemd-analyze, where installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet import exporting, has_frames, make_fleet
from kdamon.exporter.shipped import SHIPPED, shipped_file

RULES_TESTS = Path(__file__).with_name("rules_tests.yml")
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "inf",
    "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana variables allowed)."""
    text = re.sub(r"\$\{?\w+\}?", "1m", expr)  # $__rate_interval in a range; in strings it goes with them
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'', '""', text)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    text = re.sub(r"\boffset\s+-?\w+", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        if not m[2] and m[1] not in _KEYWORDS:
            names.add(m[1])
    return names


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries() -> list[str]:
    dashboard = json.loads(shipped_file("dashboard").read_text())
    queries = [t["expr"] for p in _panels(dashboard["panels"]) for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            m = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["query"])
            assert m, f"variable {variable['name']}: not a label_values() query"
            queries.append(m[1])
    return queries


def rules_queries() -> list[str]:
    rules = yaml.safe_load(shipped_file("rules").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every metric name a collector emits on the fake machine (samples and families)."""
    names: set[str] = set()
    with make_fleet(tmp_path_factory.mktemp("fleet")) as fleet, exporting(fleet.host) as exported:
        samples = exported.scrape_until(has_frames("sysfs:0", "sysfs:1", "module:damon_stat"))
        assert has_frames("sysfs:0", "sysfs:1", "module:damon_stat")(samples)
        for name, _labels in samples:
            names.add(name)
            names.add(re.sub(r"_total$", "", name))
    return names


@pytest.mark.parametrize("kind,queries", [("dashboard", dashboard_queries), ("rules", rules_queries)])
def test_every_query_names_only_metrics_the_exporter_emits(emitted: set[str], kind: str, queries: Any) -> None:
    found = queries()
    assert len(found) >= 9
    for query in found:
        names = metric_names(query)
        assert names, f"{kind}: no metric found in {query!r}"
        assert names <= emitted, f"{kind}: {sorted(names - emitted)} are not emitted (query {query!r})"


def test_metric_names_are_found_in_promql() -> None:
    assert metric_names(
        'sum by (kdamond, target) (damon_cold_bytes{instance=~"$instance",a="b,c}"}) '
        "/ sum by (kdamond, target) (damon_monitored_bytes)"
    ) == {"damon_cold_bytes", "damon_monitored_bytes"}
    assert metric_names(
        "rate(damon_scheme_applied_bytes_total[$__rate_interval]) > 2e3 and on (x) "
        "avg_over_time(up[6h] offset 15m) unless time() - nope_total > 1"
    ) == {"damon_scheme_applied_bytes_total", "up", "nope_total"}
    assert metric_names('a * on (instance) group_left (owner, ops) b{owner!="free"}') == {"a", "b"}


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return tool


def test_the_rules_pass_promtool() -> None:
    done = subprocess.run([_promtool(), "check", "rules", str(shipped_file("rules"))], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_queries_parse(tmp_path: Path) -> None:
    """Each query as a recording rule, Grafana's variables replaced by values, for promtool to parse."""
    rules = [
        {
            "record": f"kdamon:query{i}",
            "expr": re.sub(r"\$\{?\w+\}?", lambda m: "5m" if "interval" in m[0] else ".*", query),
        }
        for i, query in enumerate(dashboard_queries())
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([_promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alerts_fire_when_they_should(tmp_path: Path) -> None:
    """promtool's rule unit tests (rules_tests.yml) on the shipped rules."""
    tests = yaml.safe_load(RULES_TESTS.read_text())
    tests["rule_files"] = [str(shipped_file("rules"))]
    path = tmp_path / RULES_TESTS.name
    path.write_text(yaml.safe_dump(tests))
    done = subprocess.run([_promtool(), "test", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian: the systemd package)")
    text = shipped_file("unit").read_text()
    program = "ExecStart=/usr/local/bin/kdamon "
    assert program in text
    # verify checks that the program exists: point it at this checkout's kdamon
    unit = tmp_path / SHIPPED["unit"]
    unit.write_text(text.replace(program, f"ExecStart={sys.executable} -m kdamon "))
    done = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
