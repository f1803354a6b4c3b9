"""userfaultfd asynchronous write-protect, for processes that cooperate with monitoring.

A process registers its own memory with :class:`AsyncWriteProtect`; from
then on the kernel resolves write faults on that memory by itself (no
handler thread, ``UFFD_FEATURE_WP_ASYNC``, Linux 6.7+) and clears the
page's write-protect bit, which another process can read and re-arm with
the ``PAGEMAP_SCAN`` ioctl (see :mod:`kdamon.engine.ops.pagemap`).  Only
writes are observable this way.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform

from kdamon.errors import EngineError

__all__ = ["AsyncWriteProtect", "userfaultfd_syscall_number"]

_SYSCALL_USERFAULTFD = {"x86_64": 323, "aarch64": 282, "riscv64": 282, "i686": 374, "i386": 374}

_UFFD_API = 0xAA
_UFFD_USER_MODE_ONLY = 1
_UFFD_FEATURE_WP_UNPOPULATED = 1 << 13
_UFFD_FEATURE_WP_ASYNC = 1 << 15
_UFFDIO_REGISTER_MODE_WP = 1 << 1
_UFFDIO_WRITEPROTECT_MODE_WP = 1 << 0


class _Api(ctypes.Structure):
    _fields_ = [("api", ctypes.c_uint64), ("features", ctypes.c_uint64), ("ioctls", ctypes.c_uint64)]


class _Range(ctypes.Structure):
    _fields_ = [("start", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Register(ctypes.Structure):
    _fields_ = [("range", _Range), ("mode", ctypes.c_uint64), ("ioctls", ctypes.c_uint64)]


class _WriteProtect(ctypes.Structure):
    _fields_ = [("range", _Range), ("mode", ctypes.c_uint64)]


def _iowr(number: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (0xAA << 8) | number


_UFFDIO_API = _iowr(0x3F, ctypes.sizeof(_Api))
_UFFDIO_REGISTER = _iowr(0x00, ctypes.sizeof(_Register))
_UFFDIO_WRITEPROTECT = _iowr(0x06, ctypes.sizeof(_WriteProtect))

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def userfaultfd_syscall_number() -> int:
    """The ``userfaultfd`` system call number of this machine."""
    number = _SYSCALL_USERFAULTFD.get(platform.machine())
    if number is None:
        raise EngineError(
            f"userfaultfd's system call number on {platform.machine()} is not known to kdamon; use another access check"
        )
    return number


def _open_uffd() -> int:
    flags = os.O_CLOEXEC | os.O_NONBLOCK | _UFFD_USER_MODE_ONLY
    fd = int(_libc.syscall(userfaultfd_syscall_number(), flags))
    if fd < 0:
        code = ctypes.get_errno()
        hint = (
            " (unprivileged use needs vm.unprivileged_userfaultfd=1 or CAP_SYS_PTRACE)" if code == errno.EPERM else ""
        )
        raise EngineError(f"userfaultfd() failed: {os.strerror(code)}{hint}")
    return fd


class AsyncWriteProtect:
    """A userfaultfd in async write-protect mode for memory of this process."""

    def __init__(self) -> None:
        self.unpopulated = True
        """Whether never-touched pages are write-protected too (``WP_UNPOPULATED``)."""
        for features in (_UFFD_FEATURE_WP_ASYNC | _UFFD_FEATURE_WP_UNPOPULATED, _UFFD_FEATURE_WP_ASYNC):
            fd = _open_uffd()
            api = _Api(api=_UFFD_API, features=features)
            try:
                fcntl.ioctl(fd, _UFFDIO_API, api)
            except OSError as error:
                os.close(fd)
                if error.errno != errno.EINVAL:
                    raise EngineError(f"UFFDIO_API failed: {error.strerror}") from error
                self.unpopulated = False
                continue
            self.fd = fd
            return
        raise EngineError(
            "this kernel has no userfaultfd async write-protect "
            "(UFFD_FEATURE_WP_ASYNC needs Linux 6.7+ with "
            "CONFIG_PTE_MARKER_UFFD_WP); use another access check"
        )

    def register(self, start: int, length: int) -> None:
        """Track writes to ``[start, start + length)`` (page aligned, already mapped)."""
        request = _Register(range=_Range(start, length), mode=_UFFDIO_REGISTER_MODE_WP)
        try:
            fcntl.ioctl(self.fd, _UFFDIO_REGISTER, request)
        except OSError as error:
            raise EngineError(
                f"UFFDIO_REGISTER of {start:#x}+{length:#x} failed "
                f"({error.strerror}): the range must be page aligned anonymous "
                "or shmem memory"
            ) from error

    def write_protect(self, start: int, length: int) -> None:
        """Arm the range: the next write to each page is recorded."""
        request = _WriteProtect(range=_Range(start, length), mode=_UFFDIO_WRITEPROTECT_MODE_WP)
        try:
            fcntl.ioctl(self.fd, _UFFDIO_WRITEPROTECT, request)
        except OSError as error:
            raise EngineError(f"UFFDIO_WRITEPROTECT of {start:#x}+{length:#x} failed ({error.strerror})") from error

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
