"""Modern DAMOS from the command line: quota goals, destinations, the intervals goal, NUMA nodes, goals-only tune."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend_fixtures import fake_host
from cli_helpers import Kdamon
from kdamon.backend.memory import node_ranges
from kdamon.cli.scheme_spec import parse_scheme
from kdamon.errors import ConfigError
from kdamon.model import Dest, Intervals, IntervalsGoal, QuotaGoal, Region


def test_quota_goals_destinations_and_tuner() -> None:
    scheme = parse_scheme(
        "action=pageout,quota_size=1G,quota_reset=1s,quota_goal=some_mem_psi_us:10ms,"
        "quota_goal=node_mem_free_bp:30%:1,quota_goal=node_memcg_used_bp:20%:0:/workload,"
        "quota_goal=user_input:1000:250,quota_goal_tuner=temporal"
    ).resolve(Intervals())
    assert scheme.quota.goals == (
        QuotaGoal("some_mem_psi_us", 10000),
        QuotaGoal("node_mem_free_bp", 3000, nid=1),
        QuotaGoal("node_memcg_used_bp", 2000, nid=0, path="/workload"),
        QuotaGoal("user_input", 1000, current_value=250),
    )
    assert scheme.quota.goal_tuner == "temporal"
    migrate = parse_scheme("action=migrate_hot,dest=0:30,dest=1:70").resolve(Intervals())
    assert migrate.dests == (Dest(0, 30), Dest(1, 70))


@pytest.mark.parametrize(
    "text, words",
    [
        ("quota_goal=some_mem_psi_us", "METRIC:TARGET"),
        ("quota_goal=node_memcg_used_bp:20%:0", "memory cgroup path"),
        ("quota_goal=some_mem_psi_us:10ms:3", "takes no node"),
        ("quota_goal=bogus_metric:5", "bogus_metric"),
        ("quota_goal_tuner=fast", "fast"),
        ("dest=0", "NID:WEIGHT"),
    ],
)
def test_bad_goals_and_destinations_are_refused(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        parse_scheme(f"action=pageout,{text}").resolve(Intervals())


def fake_system(base: Path, blocks: dict[int, str]) -> Path:
    system = base / "system"
    (system / "memory").mkdir(parents=True)
    (system / "memory" / "block_size_bytes").write_text("8000000\n")
    (system / "node" / "node1").mkdir(parents=True)
    for index, state in blocks.items():
        (system / "memory" / f"memory{index}").mkdir()
        (system / "memory" / f"memory{index}" / "state").write_text(state + "\n")
        (system / "node" / "node1" / f"memory{index}").mkdir()
    return system


def test_numa_node_ranges_join_online_blocks(tmp_path: Path) -> None:
    system = fake_system(tmp_path, {32: "online", 33: "online", 34: "offline", 36: "online"})
    block = 0x8000000
    assert node_ranges(1, system) == (Region(32 * block, 34 * block), Region(36 * block, 37 * block))
    with pytest.raises(ConfigError, match="no NUMA node 7"):
        node_ranges(7, system)


def test_intervals_goal_and_goals_only_tune(tmp_path: Path, kdamon: Kdamon) -> None:
    host, fake = fake_host(tmp_path, "7.3")
    code, _, err = kdamon(
        host,
        "start",
        "--target-pid",
        "4242",
        "--intervals-goal",
        "4%:3:5ms:10s",
        "--scheme",
        "action=pageout,quota_size=64M,quota_reset=1s,quota_goal=user_input:1000:100",
    )
    assert code == 0, err
    context = host.sysfs.read(0).contexts[0]
    assert context.intervals.goal == IntervalsGoal(400, 3, 5000, 10_000_000)
    fake.writes.clear()
    code, _, err = kdamon(
        host, "tune", "sysfs:0", "--goals-only", "--scheme", "action=stat,quota_goal=user_input:1000:640"
    )
    assert code == 0, err
    after = host.sysfs.read(0).contexts[0]
    assert after.schemes[0].quota.goals == (QuotaGoal("user_input", 1000, current_value=640),)
    assert after.schemes[0].action == "pageout", "a goals-only commit keeps everything but the goals"
    states = [data for path, data in fake.writes if path.endswith("/state")]
    assert states == ["commit_schemes_quota_goals"]
    code, _, err = kdamon(host, "tune", "sysfs:0", "--goals-only", "--scheme", "action=stat", "--scheme", "action=stat")
    assert code == 2 and "runs 1 schemes and 2 were given" in err
    code, _, err = kdamon(host, "start", "--numa-node", "0", "--target-pid", "1")
    assert code == 2 and "--numa-node" in err


def test_paddr_is_the_same_on_start_as_on_record_and_show(tmp_path: Path, kdamon: Kdamon) -> None:
    host, _ = fake_host(tmp_path, "6.12")
    code, _, err = kdamon(host, "start", "--paddr", "--regions", "0x100000-0x900000")
    assert code == 0, err
    context = host.sysfs.read(0).contexts[0]
    assert context.ops == "paddr" and context.targets[0].regions == (Region(0x100000, 0x900000),)
    for clash, words in ((("--pid", "1"), "--pid"), (("--ops", "vaddr"), "--ops must be paddr")):
        code, _, err = kdamon(host, "start", "--paddr", *clash)
        assert code == 2 and words in err, err
    code, _, err = kdamon(host, "record", "--paddr", "--pid", "1")
    assert code == 2 and "--paddr" in err, err
