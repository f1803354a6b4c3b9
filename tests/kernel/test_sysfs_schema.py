"""The declarative sysfs schema against the fake kernel (the oracle), for every release the fake models:
the same tree, the same defaults, the same writable files, the same state keywords."""

from __future__ import annotations

import errno
from pathlib import Path

import attrs
import pytest

from fake_damon import FakeDamonFs, make_driver
from kdamon.kernel.sysfs_io import encode
from kdamon.kernel.sysfs_nodes import Dir, File, Placed, present, version, walk
from kdamon.kernel.sysfs_read import VOLATILE
from kdamon.kernel.sysfs_schema import KDAMOND, STATE, TRIED_REGION
from kdamon.model import Context, Kdamond, Scheme

RELEASES = {"6.12": "6.12", "7.3": "7.3"}  # the fake's versions and the release each models


def _populated(fake: FakeDamonFs) -> Path:
    """Kdamond 0 with one of every numbered directory (``nr_* = 1`` depth first), written
    straight to the fake as another tool would."""
    fake.write(fake.base / "kdamonds" / "nr_kdamonds", b"1")

    def fill(d: Path) -> None:
        for entry in sorted(d.iterdir()):
            if entry.is_file() and entry.name.startswith("nr_") and entry.read_text() == "0\n":
                try:
                    fake.write(entry, b"1")
                except OSError as exc:  # read-only counters (nr_tried ...)
                    assert exc.errno == errno.EACCES
                    continue
                if not (d / "0").is_dir():  # a value, not a count (nr_accesses_permil)
                    fake.write(entry, b"0")
        for entry in sorted(d.iterdir()):
            if entry.is_dir():
                fill(entry)

    kdir = fake.base / "kdamonds" / "0"
    fill(kdir)
    return kdir


def _entries(d: Path) -> set[str]:
    """Every path below ``d``, numbered directories as ``N``, directories ending with ``/``."""
    out = set()
    for path in d.rglob("*"):
        rel = "/".join("N" if part.isdigit() else part for part in path.relative_to(d).parts)
        out.add(f"{rel}/" if path.is_dir() else rel)
    return out


def _expected(release: str, tree: Dir = KDAMOND, since: str = "5.18") -> list[Placed]:
    return [p for p in walk(tree, since=since) if present(p, release)]


@pytest.fixture(params=sorted(RELEASES))
def fake(request: pytest.FixtureRequest, tmp_path: Path) -> FakeDamonFs:
    return FakeDamonFs(tmp_path / "admin", request.param)


def test_the_tree_is_the_fakes(fake: FakeDamonFs) -> None:
    release = RELEASES["7.3" if fake.new else "6.12"]
    kdir = _populated(fake)
    assert _entries(kdir) == {p.path for p in _expected(release)}


def test_defaults_and_writable_files_are_the_fakes(fake: FakeDamonFs) -> None:
    release = RELEASES["7.3" if fake.new else "6.12"]
    kdir = _populated(fake)
    checked = 0
    for placed in _expected(release):
        node = placed.node
        if not isinstance(node, File) or node.kind in ("count", "list", "state"):
            continue
        path = kdir / "/".join("0" if part == "N" else part for part in placed.path.split("/"))
        assert path.read_text() == encode(node.default).decode() + "\n", placed.path
        if node.writable:
            fake.write(path, encode(node.default))  # accepted: the right kind of value
        else:
            with pytest.raises(OSError) as info:
                fake.write(path, b"0")
            assert info.value.errno == errno.EACCES, placed.path
        checked += 1
    assert checked > 40


def test_tried_region_files_are_the_fakes(fake: FakeDamonFs, tmp_path: Path) -> None:
    driver, fake = make_driver(tmp_path / "k", "7.3" if fake.new else "6.12")
    release = RELEASES["7.3" if fake.new else "6.12"]
    index, _ = driver.launch(Kdamond(contexts=(Context(targets=(), schemes=(Scheme(),)),)))
    fake.tried = {0: [(4096, 8192, 1, 2)]}
    driver.update_tried_regions(index)
    region = fake.base / "kdamonds" / str(index) / "contexts/0/schemes/0/tried_regions/0"
    assert _entries(region) == {p.path for p in _expected(release, TRIED_REGION, "6.2")}


def test_state_keywords_are_the_fakes(fake: FakeDamonFs, tmp_path: Path) -> None:
    driver, fake = make_driver(tmp_path / "k", "7.3" if fake.new else "6.12")
    release = RELEASES["7.3" if fake.new else "6.12"]
    index, _ = driver.launch(Kdamond(contexts=(Context(targets=(), schemes=(Scheme(),)),)))
    state = fake.base / "kdamonds" / str(index) / "state"
    for keyword in STATE.keywords:
        if keyword.name in ("on", "off"):
            continue
        known = present(Placed("", STATE, keyword.since, KDAMOND), release)
        if known:
            fake.write(state, keyword.name.encode())
        else:
            with pytest.raises(OSError) as info:
                fake.write(state, keyword.name.encode())
            assert info.value.errno == errno.EINVAL
        assert fake.writes[-1] == (f"kdamonds/{index}/state", keyword.name)


def test_keyword_evidence_names_files_of_the_keywords_release() -> None:
    kinds = {p.node.kind: p.node for p in walk(KDAMOND) if isinstance(p.node, Dir) and p.node.kind}
    for keyword in STATE.keywords:
        releases = []
        for evidence in keyword.came_with:
            kind, name = evidence.split("/")
            releases.append(next(e for e in kinds[kind].entries() if e.name == name).since)
        if releases:
            assert max(releases, key=version) == keyword.since, keyword


def test_every_model_field_has_its_file() -> None:
    """A configuration field without a sysfs file would be a schema entry missing."""
    for placed in walk(KDAMOND):
        item = placed.node
        if not isinstance(item, Dir) or item.model is None:
            continue
        held = {
            node.field.split(".")[0]
            for inner in walk(item)
            if "N/" not in inner.path
            for node in (inner.node,)
            if node.field is not None
        }
        fields = {f.name for f in attrs.fields(item.model)} - {"layer"}  # a filter's layer picks its directory
        assert fields <= held, (item.model, fields - held)


def test_the_fingerprint_leaves_out_what_the_kernel_rewrites() -> None:
    # Ownership records store fingerprints: this set must not change between releases of kdamon.
    assert VOLATILE == {
        "state",
        "pid",
        "stats",
        "tried_regions",
        "effective_bytes",
        "sample_us",
        "aggr_us",
        "avail_operations",
    }


def test_same_named_files_read_alike() -> None:
    """Error hints are found by file name: files sharing a name share their kind."""
    kinds: dict[str, set[str]] = {}
    for placed in walk(KDAMOND):
        if isinstance(placed.node, File):
            kinds.setdefault(placed.node.name, set()).add(placed.node.kind)
    assert {name: k for name, k in kinds.items() if len(k) > 1} == {}
