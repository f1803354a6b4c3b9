"""kdamon's own state files (ownership records, engine daemon files): atomic replacement.

A reader sees the old file or the new one, never a partial write: the text
goes to a fresh temporary file in the same directory, which is then renamed
over the target.  (The standard ``tempfile`` module would do the same, at the
cost of importing ``random`` and ``shutil`` on every command.)
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """Replace ``path`` with ``text`` atomically; ``durable`` also syncs it to disk first."""
    tmp = path.with_name(f".tmp-{os.getpid()}-{os.urandom(6).hex()}-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
