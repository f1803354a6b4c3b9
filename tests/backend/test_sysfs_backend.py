"""The sysfs backend and the status collector on an emulated kernel: start, tune, stop,
status that writes nothing, and foreign kdamonds that are shown and never touched."""

from __future__ import annotations

import attrs
import pytest

from backend_fixtures import start_foreign, tree
from fake_damon import FakeDamonFs
from kdamon.backend.control import backend_of, collect_status, owned_ids
from kdamon.backend.host import Host
from kdamon.backend.sysfs_backend import SysfsBackend
from kdamon.backend.types import KdamondId
from kdamon.errors import OwnershipError
from kdamon.model import AccessPattern, Context, Intervals, Kdamond, Scheme, Target

KDAMOND = Kdamond(
    contexts=(
        Context(
            targets=(Target(pid=4242),),
            schemes=(Scheme(action="pageout", access_pattern=AccessPattern(nr_accesses_max=0, age_min=50)),),
        ),
    )
)


def test_start_status_tune_stop(kernel: tuple[Host, FakeDamonFs]) -> None:
    host, fake = kernel
    backend = SysfsBackend(host)
    kid, pid = backend.start(KDAMOND)
    assert kid == KdamondId("sysfs", "0") and pid is not None
    [status] = collect_status(host)
    assert (status.owner, status.running, status.pid) == ("kdamon", True, pid)
    assert status.kdamond is not None
    assert status.kdamond.contexts[0].schemes[0].action == "pageout"
    assert len(status.stats) == 1

    faster = attrs.evolve(KDAMOND.contexts[0], intervals=Intervals(sample_us=1000, aggr_us=50000))
    backend.tune(kid, Kdamond(contexts=(faster,)))
    assert backend.configuration(kid).contexts[0].intervals.aggr_us == 50000

    assert owned_ids(host) == [kid]
    backend.stop(kid)
    [stopped] = collect_status(host)
    assert (stopped.owner, stopped.running) == ("free", False)
    assert owned_ids(host) == []


def test_status_writes_nothing(kernel: tuple[Host, FakeDamonFs]) -> None:
    host, fake = kernel
    start_foreign(fake)
    params = host.paths.module_root / "damon_reclaim" / "parameters"
    params.mkdir(parents=True)
    (params / "enabled").write_text("N\n")
    before = tree(host.paths.sysfs_root.parent)
    statuses = collect_status(host)
    assert [s.id for s in statuses] == [KdamondId("sysfs", "0")]
    assert fake.writes == []
    assert tree(host.paths.sysfs_root.parent) == before


def test_foreign_kdamond_is_shown_and_never_touched(kernel: tuple[Host, FakeDamonFs]) -> None:
    host, fake = kernel
    start_foreign(fake)
    [status] = collect_status(host)
    assert (status.id, status.owner, status.running) == (KdamondId("sysfs", "0"), "foreign", True)
    assert status.kdamond is not None and status.kdamond.contexts[0].targets[0].pid == 4242
    assert owned_ids(host) == []
    backend = backend_of(status.id, host)
    with pytest.raises(OwnershipError, match="not created by kdamon"):
        backend.stop(status.id)
    with pytest.raises(OwnershipError):
        backend.tune(status.id, KDAMOND)
    assert fake.writes == []


def test_module_kdamonds_are_foreign(kernel: tuple[Host, FakeDamonFs]) -> None:
    host, _ = kernel
    params = host.paths.module_root / "damon_stat" / "parameters"
    params.mkdir(parents=True)
    (params / "enabled").write_text("Y\n")
    (params / "kdamond_pid").write_text("77\n")
    [status] = collect_status(host)
    assert (str(status.id), status.owner, status.pid) == ("module:damon_stat", "foreign", 77)
    with pytest.raises(OwnershipError, match="kdamon module stat"):
        backend_of(status.id, host)


def test_ids_parse() -> None:
    assert KdamondId.parse("3") == KdamondId("sysfs", "3")
    assert str(KdamondId.parse("engine:2")) == "engine:2"
    for bad in ("engine:x", "nothing:1", "sysfs:", ""):
        with pytest.raises(Exception, match="names no kdamond"):
            KdamondId.parse(bad)
