"""The one exception hierarchy of kdamon.

Every message says what went wrong and what to do about it.  Only the CLI
turns these into exit codes and printed text.
"""

from __future__ import annotations


class KdamonError(Exception):
    """Base of every error kdamon raises on purpose."""


class ConfigError(KdamonError, ValueError):
    """Invalid configuration; ``field`` is the path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


class KernelError(KdamonError):
    """The kernel's DAMON interface refused an operation.

    ``path`` is the file involved and ``errno`` the kernel's error number
    (None when the failure was not an errno, e.g. a kdamond that died).
    """

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None) -> None:
        self.path = path
        self.errno = errno
        super().__init__(message)


class BusyError(KernelError):
    """DAMON stayed busy (EBUSY) after bounded retries, or an exclusive DAMON user runs."""


class FeatureMissingError(KernelError):
    """The running kernel lacks a DAMON feature the request needs."""


class OwnershipError(KdamonError):
    """The request would touch a kdamond that kdamon did not create."""


class EngineError(KdamonError):
    """The pure-Python engine cannot monitor as asked (no usable access check, ...)."""


class KdamonWarning(UserWarning):
    """Base of the warnings kdamon gives: it goes on, but not quite as asked.

    The CLI shows them on standard error as ``kdamon: MESSAGE``.
    """


class EngineWarning(KdamonWarning):
    """The engine runs, but not as configured: it widened its intervals, or only
    counts schemes whose action it cannot apply."""


class RecordFormatError(KdamonError):
    """A record file could not be parsed."""


class MissingExtraError(KdamonError):
    """An optional dependency is not installed; the message names the kdamon extra that brings it."""


class GuestError(KdamonError):
    """A QEMU guest could not be prepared, booted or run."""


class GuestCrash(GuestError):
    """The guest kernel printed a BUG/WARNING/Oops/panic, or died without reporting."""

    def __init__(self, message: str, *, log_path: str) -> None:
        self.log_path = log_path
        super().__init__(f"{message} (console log: {log_path})")


class GuestTimeout(GuestError):
    """The guest did not finish in time; QEMU was killed."""

    def __init__(self, message: str, *, log_path: str) -> None:
        self.log_path = log_path
        super().__init__(f"{message} (console log: {log_path})")
