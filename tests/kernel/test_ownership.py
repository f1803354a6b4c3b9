"""kdamon never touches a kdamond it did not create."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from fake_damon import FakeDamonFs
from kdamon.errors import BusyError, KdamonError, OwnershipError
from kdamon.kernel.ownership import Claim, KdamondView, OwnedKdamond, OwnershipRegistry, classify
from kdamon.kernel.sysfs import SysfsDriver
from test_sysfs import vaddr

Kernel = tuple[SysfsDriver, FakeDamonFs]


def raw(fake: FakeDamonFs, rel: str, value: str) -> None:
    """A write by another tool, straight to the (fake) kernel."""
    fake.write(fake.base / rel, value.encode())


def foreign_kdamond(fake: FakeDamonFs, *, start: bool) -> None:
    raw(fake, "kdamonds/nr_kdamonds", "1")
    k = "kdamonds/0/contexts"
    raw(fake, f"{k}/nr_contexts", "1")
    raw(fake, f"{k}/0/targets/nr_targets", "1")
    raw(fake, f"{k}/0/targets/0/pid_target", "4242")
    if start:
        raw(fake, "kdamonds/0/state", "on")


def snapshot(fake: FakeDamonFs) -> dict[str, str]:
    return {str(p.relative_to(fake.base)): p.read_text() for p in fake.base.rglob("*") if p.is_file()}


def test_running_foreign_kdamond_blocks_creation_and_names_its_pid(kernel: Kernel) -> None:
    driver, fake = kernel
    foreign_kdamond(fake, start=True)
    pid = driver.pid(0)
    before = snapshot(fake)
    fake.writes.clear()
    with pytest.raises(OwnershipError) as info:
        driver.launch(vaddr())
    assert f"pid {pid}" in str(info.value) and "nr_kdamonds" in str(info.value)
    for mutate in (
        driver.stop,
        driver.start,
        driver.update_schemes_stats,
        driver.update_tried_regions,
        driver.clear_tried_regions,
        driver.commit_quota_goals,
        driver.release,
        lambda i: driver.commit(i, vaddr()),
        lambda i: driver.apply(i, vaddr()),
    ):
        with pytest.raises(OwnershipError, match="not created by kdamon"):
            mutate(0)
    assert fake.writes == [] and snapshot(fake) == before


def test_stopped_foreign_configuration_is_never_wiped(kernel: Kernel) -> None:
    driver, fake = kernel
    foreign_kdamond(fake, start=False)
    fake.writes.clear()
    with pytest.raises(OwnershipError, match="would be lost"):
        driver.launch(vaddr())
    with pytest.raises(OwnershipError):
        driver.apply(0, vaddr())
    assert fake.writes == []


def test_free_directory_is_reused_without_rewriting_nr_kdamonds(kernel: Kernel) -> None:
    driver, fake = kernel
    raw(fake, "kdamonds/nr_kdamonds", "2")
    fake.writes.clear()
    index, _ = driver.launch(vaddr())
    assert index == 0
    assert "kdamonds/nr_kdamonds" not in [p for p, _ in fake.writes]


def test_own_running_kdamond_blocks_creation_with_busy_error(kernel: Kernel) -> None:
    driver, _ = kernel
    index, pid = driver.launch(vaddr())
    with pytest.raises(BusyError, match=f"pid {pid}"):
        driver.apply(index + 1, vaddr())
    driver.stop(index)
    assert driver.launch(vaddr()) == (index, driver.pid(index))


def test_restaged_by_another_tool_becomes_foreign(kernel: Kernel) -> None:
    driver, fake = kernel
    index, _ = driver.launch(vaddr())
    driver.stop(index)
    raw(fake, f"kdamonds/{index}/contexts/0/targets/0/pid_target", "1")
    assert driver.claim(index) is Claim.FOREIGN
    with pytest.raises(OwnershipError):
        driver.start(index)


def test_kernel_rewriting_volatile_files_keeps_ownership(kernel: Kernel) -> None:
    driver, fake = kernel
    index, _ = driver.launch(vaddr())
    (fake.base / f"kdamonds/{index}/contexts/0/monitoring_attrs/intervals/sample_us").write_text("777\n")
    fake.stats = {0: (1, 2, 3, 4, 5)}
    driver.update_schemes_stats(index)
    driver.stop(index)
    assert driver.claim(index) is Claim.OWNED


def test_classify_rule() -> None:
    def view(running: bool, pid: int | None, configured: bool = True, fp: str = "x") -> KdamondView:
        return KdamondView(0, running, pid, configured, lambda: fp)

    rec = OwnedKdamond("/r", 0, 10, "x", 0, 1)
    assert classify(view(True, 10), rec) is Claim.OWNED
    assert classify(view(True, 11), rec) is Claim.FOREIGN  # a new kthread someone else started
    assert classify(view(False, None), rec) is Claim.OWNED
    assert classify(view(False, None, fp="y"), rec) is Claim.FOREIGN
    assert classify(view(False, None, configured=False, fp="y"), rec) is Claim.FREE
    assert classify(view(False, None, configured=False), None) is Claim.FREE
    assert classify(view(True, 10), None) is Claim.FOREIGN
    unstarted = OwnedKdamond("/r", 0, None, "x", 0, 1)  # crashed between 'on' and recording the pid
    assert classify(view(True, 12), unstarted) is Claim.OWNED
    # Pending: kdamon was killed while writing the directory, whose fingerprint is then unknown.
    staging = OwnedKdamond("/r", 0, None, "", 0, 1, pending=True)
    assert classify(view(False, None, fp="half-written"), staging) is Claim.OWNED
    assert classify(view(False, None, configured=False, fp="y"), staging) is Claim.OWNED
    assert classify(view(True, 12), staging) is Claim.FOREIGN  # someone else started it
    committing = OwnedKdamond("/r", 0, 10, "", 0, 1, pending=True)  # killed in a commit
    assert classify(view(True, 10, fp="y"), committing) is Claim.OWNED
    assert classify(view(True, 11), committing) is Claim.FOREIGN
    assert classify(view(False, None, fp="y"), committing) is Claim.OWNED  # its targets exited since


def test_records_are_json_written_atomically(tmp_path: Path) -> None:
    reg = OwnershipRegistry(tmp_path / "run")
    reg.record(Path("/a"), 3, 77, "fp")
    first = reg.get(Path("/a"), 3)
    reg.record(Path("/a"), 3, None, "fp2")
    again = reg.get(Path("/a"), 3)
    assert first is not None and again is not None
    assert (again.pid, again.fingerprint, again.created_ns) == (None, "fp2", first.created_ns)
    assert reg.get(Path("/b"), 3) is None
    files = [p for p in (tmp_path / "run").iterdir() if p.suffix == ".json"]
    assert len(files) == 1 and json.loads(files[0].read_text())["index"] == 3
    files[0].write_text("{not json")
    with pytest.raises(KdamonError, match="corrupt"):
        reg.get(Path("/a"), 3)
    reg.forget(Path("/a"), 3)
    assert reg.get(Path("/a"), 3) is None


def test_the_lock_removes_temporary_files_of_killed_writers(tmp_path: Path) -> None:
    reg = OwnershipRegistry(tmp_path / "run")
    reg.record(Path("/a"), 0, None, "f")
    dead = _exited_pid()
    killed = tmp_path / "run" / f".tmp-{dead}-0123456789ab-kdamond-0123456789abcdef-1.json"
    writing = tmp_path / "run" / f".tmp-{os.getpid()}-0123456789ab-kdamond-0123456789abcdef-2.json"
    for tmp in (killed, writing):
        tmp.write_text('{"root": ')
    with reg.locked():
        pass
    assert not killed.exists() and writing.exists()
    assert reg.get(Path("/a"), 0) is not None


def _exited_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_lock_is_reentrant(tmp_path: Path) -> None:
    reg = OwnershipRegistry(tmp_path / "run")
    with reg.locked():
        with reg.locked():
            reg.record(Path("/a"), 0, None, "f")
    assert reg.get(Path("/a"), 0) is not None
