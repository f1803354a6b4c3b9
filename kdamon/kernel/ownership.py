"""Which kdamonds kdamon created, and the rule that keeps kdamon off the others.

The rule
--------
kdamon never modifies, stops, re-stages or commands a kdamond it did not
create.  A kdamond directory ``kdamonds/<K>`` is, for kdamon, one of:

* **owned**: the state directory holds a record for (sysfs root, K) and either
  the kdamond runs with the recorded kthread pid, or it is stopped (or the
  record has no pid yet) and its configuration still has the recorded
  fingerprint (nobody re-staged it since), or it is stopped and the record
  is *pending*: kdamon was writing to the directory (see below);
* **free**: stopped and unconfigured (``nr_contexts`` 0), whatever the records
  say: claiming it loses nobody's configuration;
* **foreign**: anything else.

Creating a kdamond directory means rewriting ``nr_kdamonds``, which the
kernel refuses (EBUSY) while any kdamond of the directory runs, and which
wipes every existing kdamond directory.  So kdamon rewrites ``nr_kdamonds``
only when no kdamond runs and every existing directory is owned or free;
otherwise it refuses with ``OwnershipError`` (foreign kdamond) or
``BusyError`` (one of kdamon's own runs) naming the kdamond and its pid.

Records are JSON files, one per (root, index), written atomically
(temporary file + rename) in ``state_dir`` (default ``/run/kdamon``).

Crash consistency
-----------------
A kdamon process can be killed (SIGKILL) between any two writes.  So before
its first write to a kdamond directory it records its intent: a *pending*
record (no fingerprint yet, the pid of the kdamond if it runs), and only
after its last write the record with the new fingerprint.  A directory left
half-written is thus still kdamon's (while stopped; running, its pid says
so) and the next ``kdamon stop`` unconfigures it.  Creating a directory
rewrites ``nr_kdamonds``, which empties every other directory: their records
turn pending first, so that the emptied directories stay kdamon's until
``stop`` forgets them; the new directory is empty, hence free, until the
intent for it is recorded.  Records are only written under the lock, and
the lock dies with its holder, so a pending record seen under the lock is
always one a killed process left.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

import attrs

from kdamon.errors import KdamonError
from kdamon.statefiles import write_atomic

__all__ = ["Claim", "KdamondView", "OwnedKdamond", "OwnershipRegistry", "classify"]


@attrs.frozen
class OwnedKdamond:
    """What kdamon recorded about a kdamond it created."""

    root: str
    index: int
    pid: int | None
    fingerprint: str
    created_ns: int
    owner_pid: int
    pending: bool = False


@attrs.frozen
class KdamondView:
    """What the driver observed of one kdamond directory (read only).

    ``fingerprint`` is computed on demand: it walks the whole directory.
    """

    index: int
    running: bool
    pid: int | None
    configured: bool
    fingerprint: Callable[[], str] = attrs.field(eq=False, repr=False)


class Claim(Enum):
    OWNED = "owned"
    FREE = "free"
    FOREIGN = "foreign"


def classify(view: KdamondView, record: OwnedKdamond | None) -> Claim:
    """Apply the ownership rule (module docstring) to one directory."""
    if record is not None:
        if view.running and record.pid is not None:
            if record.pid == view.pid:
                return Claim.OWNED
        elif record.pending:
            if not view.running:
                return Claim.OWNED
        elif record.fingerprint == view.fingerprint():
            return Claim.OWNED
    if not view.running and not view.configured:
        return Claim.FREE
    return Claim.FOREIGN


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return True


class OwnershipRegistry:
    """The persistent records of owned kdamonds."""

    def __init__(self, state_dir: Path = Path("/run/kdamon")) -> None:
        self.state_dir = state_dir
        self._lock_fd: int | None = None
        self._depth = 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise kdamon processes' decisions (re-entrant within one registry)."""
        if self._depth == 0:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.state_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lock_fd = fd
            self._remove_dead_writers_files()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._lock_fd is not None:
                os.close(self._lock_fd)  # closing releases the flock
                self._lock_fd = None

    def _remove_dead_writers_files(self) -> None:
        """Temporary files of record writes whose process was killed before its rename."""
        for tmp in self.state_dir.glob(".tmp-*-kdamond-*.json"):
            writer = tmp.name.split("-")[1]
            if writer.isdigit() and not _alive(int(writer)):
                tmp.unlink(missing_ok=True)

    def _path(self, root: Path, index: int) -> Path:
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
        return self.state_dir / f"kdamond-{digest}-{index}.json"

    def get(self, root: Path, index: int) -> OwnedKdamond | None:
        path = self._path(root, index)
        try:
            data = json.loads(path.read_text())
            return OwnedKdamond(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise KdamonError(
                f"ownership record {path} is corrupt ({exc}); remove it if no kdamon process uses that kdamond"
            ) from exc

    def record(self, root: Path, index: int, pid: int | None, fingerprint: str) -> OwnedKdamond:
        """Record (or update) ownership of kdamond ``index`` under ``root``, atomically."""
        return self._write(root, index, pid, fingerprint, pending=False)

    def intend(self, root: Path, index: int, pid: int | None) -> OwnedKdamond:
        """Record that kdamon is about to write to kdamond ``index`` (a pending record)."""
        return self._write(root, index, pid, "", pending=True)

    def _write(self, root: Path, index: int, pid: int | None, fingerprint: str, *, pending: bool) -> OwnedKdamond:
        old = self.get(root, index)
        entry = OwnedKdamond(
            root=str(root),
            index=index,
            pid=pid,
            fingerprint=fingerprint,
            created_ns=old.created_ns if old is not None else time.time_ns(),
            owner_pid=os.getpid(),
            pending=pending,
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path(root, index), json.dumps(attrs.asdict(entry)), durable=True)
        return entry

    def forget(self, root: Path, index: int) -> None:
        self._path(root, index).unlink(missing_ok=True)
