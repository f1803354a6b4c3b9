"""Processes kdamon monitors or runs: launching a command, liveness, waiting for an exit.

Waiting uses a pidfd (Linux 5.3+), so nothing sleeps a fixed time; a child
of this process is also reaped, because a zombie target keeps a kdamond
running.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kdamon.errors import KdamonError

if TYPE_CHECKING:
    import subprocess

__all__ = ["launch", "pid_alive", "terminate", "wait_exit"]


def launch(cmd: Sequence[str], *, detach: bool = False) -> subprocess.Popen[bytes]:
    """Start ``cmd``; ``detach`` puts it in its own session with no terminal input,
    so that it outlives kdamon (``kdamon start -- CMD``)."""
    import subprocess  # not on the path of the commands that only look at processes

    if not cmd:
        raise KdamonError("no command given after --: write `-- CMD [ARGS...]`")
    try:
        return subprocess.Popen(
            list(cmd),
            start_new_session=detach,
            stdin=subprocess.DEVNULL if detach else None,
        )
    except OSError as error:
        raise KdamonError(f"cannot run {cmd[0]!r}: {error.strerror}; check the command and PATH") from error


def _reap(pid: int) -> bool:
    """Reap ``pid`` if it is an exited child of this process; True if it was."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == pid


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (an exited child is reaped)."""
    from kdamon.events.proc import has_exited  # the event machinery loads only when needed

    if _reap(pid):
        return False
    return not has_exited(pid)


def wait_exit(pid: int, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for ``pid`` to exit; True once it has."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        _reap(pid)
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        exited = bool(poller.poll(max(0, int(timeout_s * 1000))))
    finally:
        os.close(fd)
    if exited:
        _reap(pid)
    return exited or not pid_alive(pid)


def terminate(pid: int, timeout_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; returns once ``pid`` is gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            _reap(pid)
            return
        if wait_exit(pid, timeout_s):
            return
