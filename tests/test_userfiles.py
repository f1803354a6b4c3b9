"""A user's file is replaced only once the new content is complete, and errors name the user's path."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kdamon.userfiles import Replacement, ensure_writable, reading, require_dir, require_file, write_replacing


class Boom(Exception):
    pass


def test_the_old_content_stays_until_the_commit(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"precious")
    with Replacement(target) as out:
        out.stream.write(b"new")
        out.stream.flush()
        assert target.read_bytes() == b"precious"
        out.commit()
        out.stream.write(b" and more")  # writing goes on in the file now in place
    assert target.read_bytes() == b"new and more"
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_failure_leaves_the_file_byte_identical_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"precious")
    with pytest.raises(Boom), Replacement(target) as out:
        out.stream.write(b"half")
        raise Boom
    assert target.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["out.json"]
    with pytest.raises(Boom), Replacement(tmp_path / "new.json") as out:
        raise Boom
    assert os.listdir(tmp_path) == ["out.json"]  # no empty file either


def test_mode_owner_and_symlink_are_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.png"
    real.write_bytes(b"old")
    real.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(real, 1234, 5678)
    link = tmp_path / "link.png"
    link.symlink_to(real)
    write_replacing(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    st = real.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    ensure_writable(fifo)  # does not open it: the reader would see the end of its data
    write_replacing(fifo, "through the pipe")
    reader.join(timeout=10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(fifo.stat().st_mode) and os.listdir(tmp_path) == ["pipe"]


def test_errors_name_the_users_path_not_a_temporary_file(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "out.png"
    for attempt in (ensure_writable, lambda p: write_replacing(p, "x")):
        with pytest.raises(FileNotFoundError) as info:
            attempt(missing)
        assert info.value.filename == str(missing)
    with pytest.raises(IsADirectoryError) as directory:
        ensure_writable(tmp_path)
    assert directory.value.filename == str(tmp_path)
    assert os.listdir(tmp_path) == []


def test_input_checks_and_read_errors_name_the_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    require_file(tmp_path / "f")
    require_dir(tmp_path)
    with pytest.raises(IsADirectoryError):
        require_file(tmp_path)
    with pytest.raises(NotADirectoryError) as info:
        require_dir(tmp_path / "f")
    assert info.value.filename == str(tmp_path / "f")
    with pytest.raises(OSError) as failed:
        require_file("/proc/self/mem")  # opens, but page 0 cannot be read
    assert failed.value.filename == "/proc/self/mem"
    with pytest.raises(OSError) as named, reading(tmp_path / "f"):
        raise OSError(5, "Input/output error")
    assert named.value.filename == str(tmp_path / "f")


def test_dev_stdout_redirected_to_a_file_writes_through_kdamons_own_descriptor(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    program = (
        "from kdamon.userfiles import write_replacing; "
        "print('table', flush=True); write_replacing('/dev/stdout', 'json\\n'); print('end')"
    )
    with out.open("w") as stdout:
        subprocess.run(
            [sys.executable, "-c", program], stdout=stdout, check=True, cwd=Path(__file__).resolve().parents[1]
        )
    assert out.read_text() == "table\njson\nend\n"
    assert os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.parametrize("name", ["-", "/dev/stdout"])
def test_dash_is_standard_output_and_creates_no_file(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    program = (
        "from kdamon.userfiles import ensure_writable, write_replacing; "
        f"ensure_writable({name!r}); print('table', flush=True); write_replacing({name!r}, 'json\\n'); "
        "print('end')"
    )
    with out.open("w") as stdout:
        subprocess.run(
            [sys.executable, "-c", program],
            stdout=stdout,
            check=True,
            cwd=tmp_path,
            env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])),
        )
    assert out.read_text() == "table\njson\nend\n"
    assert os.listdir(tmp_path) == ["out.txt"]  # no file named "-", no temporary one
