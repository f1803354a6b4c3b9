"""Atomic replacement of kdamon's state files."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdamon.statefiles import write_atomic


def test_write_replaces_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    write_atomic(target, "new", durable=True)
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_failed_write_keeps_old_content_and_removes_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(target, "\udcff")  # a lone surrogate cannot be encoded: the write fails midway
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_new_file_is_private(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    write_atomic(target, "{}")
    assert target.stat().st_mode & 0o777 == 0o600
