"""Advising another process's memory: ``pidfd_open(2)`` and ``process_madvise(2)``.

The kernel accepts only some advice from another process: ``MADV_COLD``,
``MADV_PAGEOUT``, ``MADV_WILLNEED`` and ``MADV_COLLAPSE``.  Non-cold advice
needs ``CAP_SYS_NICE`` besides ptrace access.
"""

from __future__ import annotations

import ctypes
import errno
import os

from kdamon.errors import EngineError

__all__ = ["ADVICE", "ProcessAdvisor"]

_SYS_PROCESS_MADVISE = 440  # the same number on every architecture (new syscall table)

ADVICE = {"willneed": 3, "cold": 20, "pageout": 21, "collapse": 25}
"""DAMOS actions ``process_madvise()`` can perform, and their ``MADV_*`` values."""


class _Iovec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class ProcessAdvisor:
    """Gives ``madvise()`` advice to the memory of process ``pid``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError as error:
            raise EngineError(f"process {pid} does not exist; give a live pid") from error
        except OSError as error:
            raise EngineError(
                f"pidfd_open({pid}) failed ({error.strerror}); DAMOS actions on processes need Linux 5.10+"
            ) from error

    def advise(self, start: int, end: int, action: str) -> int:
        """Apply ``action``'s advice to ``[start, end)``; return the bytes advised.

        Gaps between mappings (ENOMEM) and a process that has exited advise
        nothing; an action without a ``process_madvise()`` advice is an error
        (the monitor refuses such schemes before it starts).
        """
        advice = ADVICE.get(action)
        if advice is None:
            raise EngineError(
                f"{action} has no process_madvise() advice: only {', '.join(ADVICE)} can be given to another process"
            )
        if self._pidfd < 0:
            return 0
        vector = _Iovec(start, end - start)
        done = int(_libc.syscall(_SYS_PROCESS_MADVISE, self._pidfd, ctypes.byref(vector), 1, advice, 0))
        if done >= 0:
            return done
        code = ctypes.get_errno()
        if code in (errno.ENOMEM, errno.ESRCH, errno.EINVAL, errno.EAGAIN):
            return 0
        if code == errno.EPERM:
            raise EngineError(
                f"process_madvise({action}) on process {self.pid} was refused: "
                "it needs CAP_SYS_NICE and ptrace access (run as root)"
            )
        raise EngineError(f"process_madvise({action}) on process {self.pid} failed: {os.strerror(code)}")

    def close(self) -> None:
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1
