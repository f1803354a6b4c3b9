"""The I/O layer: one write per value, encodings, errno translation."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from kdamon.errors import BusyError, FeatureMissingError, KernelError
from kdamon.kernel.sysfs_io import OsFs, RetryPolicy, SysfsIO, encode


class Recorder(OsFs):
    def __init__(self, fail: list[int] | None = None) -> None:
        self.calls: list[bytes] = []
        self.fail = fail or []

    def write(self, path: Path, data: bytes) -> None:
        self.calls.append(data)
        if self.fail:
            raise OSError(self.fail.pop(0), "injected")
        super().write(path, data)


def test_encodings() -> None:
    assert (encode(10), encode(True), encode(False), encode("vaddr")) == (b"10", b"Y", b"N", b"vaddr")
    assert encode(2**64 - 1) == b"18446744073709551615"


def test_real_files_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "x"
    f.write_text("0\n")
    rec = Recorder()
    io = SysfsIO(rec)
    io.write(f, 123)
    assert rec.calls == [b"123"] and io.read_int(f) == 123
    f.write_text("Y\n")
    assert io.read_bool(f) is True
    (tmp_path / "d" / "10").mkdir(parents=True)
    (tmp_path / "d" / "2").mkdir()
    (tmp_path / "d" / "total_bytes").write_text("0")
    assert io.numeric_subdirs(tmp_path / "d") == [2, 10]


def test_retry_policy_defaults_total_about_half_a_second() -> None:
    delays = RetryPolicy().delays()
    assert len(delays) == 9 and delays[0] == 0.005 and 0.4 < sum(delays) < 0.6


@pytest.mark.parametrize(
    ("name", "written", "err", "expect"),
    [
        ("state", "on", errno.EINVAL, "min < 3"),
        ("state", "off", errno.EPERM, "already exited"),
        ("state", "off", errno.EINVAL, "never started"),
        ("state", "update_schemes_stats", errno.EINVAL, "running kdamond"),
        ("state", "update_schemes_tried_regions", errno.ECANCELED, "cancelled"),
        ("nr_contexts", "2", errno.EINVAL, "only 0 or 1"),
        ("operations", "xaddr", errno.EINVAL, "not a keyword"),
        ("type", "young", errno.EINVAL, "layer"),
        ("sample_us", "x", errno.EACCES, "root"),
    ],
)
def test_errno_translation(tmp_path: Path, name: str, written: str, err: int, expect: str) -> None:
    f = tmp_path / name
    f.write_text("")
    io = SysfsIO(Recorder([err]))
    with pytest.raises(KernelError, match=expect) as info:
        io.write(f, written)
    assert info.value.errno == err and info.value.path == str(f)


def test_missing_file_is_a_feature_error(tmp_path: Path) -> None:
    with pytest.raises(FeatureMissingError, match="lacks this DAMON feature"):
        SysfsIO().write(tmp_path / "refresh_ms", 5)


def test_busy_after_bounded_retries(tmp_path: Path) -> None:
    f = tmp_path / "nr_kdamonds"
    f.write_text("0")
    rec = Recorder([errno.EBUSY] * 3)
    sleeps: list[float] = []
    io = SysfsIO(rec, retry=RetryPolicy(attempts=3), sleep=sleeps.append)
    with pytest.raises(BusyError, match="nr_kdamonds"):
        io.write(f, 1)
    assert len(rec.calls) == 3 and sleeps == [0.005, 0.01]
