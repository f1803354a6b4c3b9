"""An in-process emulation of DAMON's debugfs interface (6.1 behaviour) for host tests.

``FakeDebugfs`` implements ``kdamon.kernel.sysfs_io.RawFs``: the directory
tree (context directories and their files) exists under ``base`` so that
``exists``/``listdir`` see it, while reads are rendered from, and writes are
parsed into, a model of the kernel's state the way ``mm/damon/dbgfs.c`` does
it: one ``write()`` per input, ENOMEM for a missing pid, EBUSY while a context
runs, regions (and vaddr targets) dropped when a context stops, exclusive
starts.
``version`` "6.9" adds ``DEPRECATED`` and renames ``monitor_on``; "5.17" names
the targets of ``init_regions`` by their ``target_ids`` value, not their index;
"5.16" does too, and reads back only two stats per scheme (``nr_tried sz_tried``).

Every write is logged in ``writes`` as ``(relative path, text)``.
"""

from __future__ import annotations

import errno
from pathlib import Path

import attrs

from fake_damon import TreeQueries, oserr

CONTEXT_FILES = ("attrs", "schemes", "target_ids", "init_regions", "kdamond_pid")


@attrs.define
class FakeContext:
    attributes: tuple[int, ...] = (5000, 100000, 60000000, 10, 1000)
    paddr: bool = False
    targets: list[int] = attrs.field(factory=list)  # pids (paddr: one entry, 42)
    regions: list[list[tuple[int, int]]] = attrs.field(factory=list)
    schemes: list[list[int]] = attrs.field(factory=list)  # 18 inputs + 5 stats (5.16: 2)
    kdamond: int | None = None


class FakeDebugfs(TreeQueries):
    """DAMON's debugfs directory emulated at ``base`` (see the module docstring)."""

    def __init__(self, base: Path, version: str = "6.1") -> None:
        self.base = base
        self.deprecated = version == "6.9"
        self.ids_are_pids = version in ("5.16", "5.17")
        self.nr_stats = 2 if version == "5.16" else 5
        self.monitor = "monitor_on_DEPRECATED" if self.deprecated else "monitor_on"
        self.writes: list[tuple[str, str]] = []
        self.faults: dict[str, list[int]] = {}  # relative path -> errnos for the next writes
        self.live_pids: set[int] = {4242, 4343}
        self.other_damon_running = False  # a sysfs kdamond or a DAMON module
        self.contexts: dict[str, FakeContext] = {"": FakeContext()}
        self._next_pid = 700
        base.mkdir(parents=True)
        for name in (*CONTEXT_FILES, "mk_contexts", "rm_contexts", self.monitor):
            (base / name).touch()
        if self.deprecated:
            (base / "DEPRECATED").touch()

    # -- test controls ----------------------------------------------------
    def running(self) -> bool:
        return self.other_damon_running or any(c.kdamond is not None for c in self.contexts.values())

    def exit_targets(self, name: str) -> None:
        """The context's target processes all exit: its kdamond ends and drops them."""
        ctx = self.contexts[name]
        ctx.kdamond = None
        ctx.targets, ctx.regions = [], []

    def count_stats(self, name: str, stats: tuple[int, ...]) -> None:
        assert len(stats) == self.nr_stats
        for scheme in self.contexts[name].schemes:
            scheme[18:] = stats

    # -- RawFs -------------------------------------------------------------
    def _locate(self, path: Path) -> tuple[FakeContext | None, str]:
        rel = path.relative_to(self.base)
        if len(rel.parts) == 1:
            return self.contexts[""], rel.name
        if len(rel.parts) == 2 and rel.parts[0] in self.contexts:
            return self.contexts[rel.parts[0]], rel.name
        return None, rel.name

    def read(self, path: Path) -> str:
        if not path.is_file():
            raise oserr(errno.ENOENT, path)
        ctx, name = self._locate(path)
        if name == self.monitor:
            return "on\n" if self.running() else "off\n"
        if name == "DEPRECATED":
            return "DAMON debugfs interface is deprecated, so users should move to DAMON_SYSFS.\n"
        if ctx is None or name not in CONTEXT_FILES:
            raise oserr(errno.EINVAL, path)
        if name == "attrs":
            return " ".join(map(str, ctx.attributes)) + "\n"
        if name == "target_ids":
            return " ".join(map(str, ctx.targets)) + "\n"
        if name == "kdamond_pid":
            return f"{ctx.kdamond}\n" if ctx.kdamond is not None else "none\n"
        if name == "schemes":
            return "".join(" ".join(map(str, s)) + "\n" for s in ctx.schemes)
        if ctx.kdamond is not None:
            raise oserr(errno.EBUSY, path)
        ids = ctx.targets if self.ids_are_pids else range(len(ctx.targets))
        return "".join(f"{i} {s} {e}\n" for i, rs in zip(ids, ctx.regions, strict=True) for s, e in rs)

    def write(self, path: Path, data: bytes) -> None:
        if not path.is_file():
            raise oserr(errno.ENOENT, path)
        text = data.decode()
        rel = str(path.relative_to(self.base))
        self.writes.append((rel, text))
        if self.faults.get(rel):
            raise oserr(self.faults[rel].pop(0), path)
        ctx, name = self._locate(path)
        if name == self.monitor:
            self._monitor(path, text.strip())
        elif name in ("mk_contexts", "rm_contexts"):
            self._mk_rm(path, name, text.split()[0] if text.split() else "")
        elif ctx is None or name not in ("attrs", "schemes", "target_ids", "init_regions"):
            raise oserr(errno.EINVAL, path)
        else:
            getattr(self, f"_write_{name}")(ctx, path, text)

    # -- the kernel's parsers ------------------------------------------------
    def _busy(self, ctx: FakeContext, path: Path) -> None:
        if ctx.kdamond is not None:
            raise oserr(errno.EBUSY, path)

    def _write_attrs(self, ctx: FakeContext, path: Path, text: str) -> None:
        values = [int(x) for x in text.split()[:5]]
        if len(values) != 5:
            raise oserr(errno.EINVAL, path)
        self._busy(ctx, path)
        if values[3] < 3 or values[3] > values[4]:
            raise oserr(errno.EINVAL, path)
        ctx.attributes = tuple(values)

    def _write_target_ids(self, ctx: FakeContext, path: Path, text: str) -> None:
        paddr = "paddr\n".startswith(text) and text != ""
        pids: list[int] = []
        if not paddr:
            for token in text.split()[:32]:
                if not token.lstrip("-").isdigit():
                    break
                pids.append(int(token))
            if any(pid not in self.live_pids for pid in pids):
                raise oserr(errno.ENOMEM, path)
        self._busy(ctx, path)
        ctx.targets, ctx.regions = [], []
        if paddr or pids:
            ctx.paddr = paddr
            ctx.targets = [42] if paddr else pids
            ctx.regions = [[] for _ in ctx.targets]

    def _write_init_regions(self, ctx: FakeContext, path: Path, text: str) -> None:
        self._busy(ctx, path)
        ctx.regions = [[] for _ in ctx.targets]
        values = [int(x) for x in text.split()]
        for k in range(0, len(values) - 2, 3):
            key, start, end = values[k : k + 3]
            idx = ctx.targets.index(key) if self.ids_are_pids and key in ctx.targets else key
            if self.ids_are_pids and key not in ctx.targets:
                idx = -1
            ok = 0 <= idx < len(ctx.targets) and start < end
            if ok and ctx.regions[idx] and ctx.regions[idx][-1][1] > start:
                ok = False
            if not ok:
                ctx.regions = [[] for _ in ctx.targets]
                raise oserr(errno.EINVAL, path)
            ctx.regions[idx].append((start, end))

    def _write_schemes(self, ctx: FakeContext, path: Path, text: str) -> None:
        schemes = []
        for line in text.splitlines():
            values = [int(x) for x in line.split()]
            if len(values) < 18:
                break
            v = values[:18]
            if not 0 <= v[6] <= 5 or v[0] > v[1] or v[2] > v[3] or v[4] > v[5]:
                raise oserr(errno.EINVAL, path)
            if not v[15] >= v[16] >= v[17]:
                raise oserr(errno.EINVAL, path)
            schemes.append(v + [0] * self.nr_stats)
        self._busy(ctx, path)
        ctx.schemes = schemes

    def _monitor(self, path: Path, word: str) -> None:
        if word == "on":
            if any(not c.targets for c in self.contexts.values()):
                raise oserr(errno.EINVAL, path)
            if self.running():
                raise oserr(errno.EBUSY, path)
            for ctx in self.contexts.values():
                if ctx.paddr or any(pid in self.live_pids for pid in ctx.targets):
                    ctx.kdamond = self._next_pid
                    self._next_pid += 1
                else:  # all targets dead: the kdamond exits at once
                    ctx.targets, ctx.regions = [], []
        elif word == "off":
            for ctx in self.contexts.values():  # damon_stop gives up at the first stopped one
                if ctx.kdamond is None:
                    raise oserr(errno.EPERM, path)
                ctx.kdamond = None
                if not ctx.paddr:
                    ctx.targets = []
                ctx.regions = [[] for _ in ctx.targets]
        else:
            raise oserr(errno.EINVAL, path)

    def _mk_rm(self, path: Path, name: str, ctx_name: str) -> None:
        if not ctx_name:
            raise oserr(errno.EINVAL, path)
        if self.running():
            raise oserr(errno.EBUSY, path)
        d = self.base / ctx_name
        if name == "mk_contexts":
            if d.exists():
                raise oserr(errno.EEXIST, path)
            d.mkdir()
            for f in CONTEXT_FILES:
                (d / f).touch()
            self.contexts[ctx_name] = FakeContext()
        else:
            if ctx_name not in self.contexts or ctx_name == "":
                raise oserr(errno.ENOENT, path)
            for f in CONTEXT_FILES:
                (d / f).unlink()
            d.rmdir()
            del self.contexts[ctx_name]
