from __future__ import annotations

from pathlib import Path

import pytest

from kdamon.check.source import adjust_fragment, build_tree, declared_symbols
from kdamon.errors import GuestError


def test_declared_symbols(tmp_path: Path) -> None:
    (tmp_path / "mm" / "damon").mkdir(parents=True)
    (tmp_path / "mm" / "damon" / "Kconfig").write_text("config DAMON\n\tbool\nmenuconfig DAMON_SYSFS\n  bool\n")
    (tmp_path / "Kconfig.debug").write_text("config DEBUG_FS\n")
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "Kconfig").write_text("config NOT_KERNEL\n")
    assert declared_symbols(tmp_path) == {"CONFIG_DAMON", "CONFIG_DAMON_SYSFS", "CONFIG_DEBUG_FS"}


def test_adjust_fragment() -> None:
    wanted = {"CONFIG_DAMON": "y", "CONFIG_DAMON_DBGFS": "y", "CONFIG_PAGE_TABLE_ISOLATION": "y", "CONFIG_GONE": "y"}
    v612 = frozenset(
        {
            "CONFIG_DAMON",
            "CONFIG_DAMON_DBGFS",
            "CONFIG_DAMON_DBGFS_DEPRECATED",
            "CONFIG_MITIGATION_PAGE_TABLE_ISOLATION",
        }
    )
    out, notes = adjust_fragment(wanted, v612)
    assert out == {
        "CONFIG_DAMON": "y",
        "CONFIG_DAMON_DBGFS_DEPRECATED": "y",
        "CONFIG_MITIGATION_PAGE_TABLE_ISOLATION": "y",
    }
    assert len(notes) == 3 and any("GONE left out" in n for n in notes)
    v61 = frozenset({"CONFIG_DAMON", "CONFIG_DAMON_DBGFS", "CONFIG_PAGE_TABLE_ISOLATION"})
    assert adjust_fragment(wanted, v61)[0] == {
        "CONFIG_DAMON": "y",
        "CONFIG_DAMON_DBGFS": "y",
        "CONFIG_PAGE_TABLE_ISOLATION": "y",
    }


def test_build_tree_refuses_what_is_not_a_damon_tree(tmp_path: Path) -> None:
    with pytest.raises(GuestError, match="not a Linux source tree"):
        build_tree(tmp_path)
    (tmp_path / "Makefile").write_text("VERSION = 5\n")
    (tmp_path / "mm").mkdir()
    with pytest.raises(GuestError, match="no mm/damon"):
        build_tree(tmp_path)


def test_a_tree_is_configured_with_the_damon_and_debugging_fragments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kdamon.check.source import TreeBuild
    from kdamon.vm.build import Make

    tree = tmp_path / "linux"
    (tree / "mm" / "damon").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    (tree / "mm" / "damon" / "Kconfig").write_text("config DAMON\nconfig DAMON_SYSFS\n")
    (tree / "lib").mkdir()
    (tree / "lib" / "Kconfig.debug").write_text("config DEBUG_KERNEL\nconfig DEBUG_MUTEXES\nconfig DEBUG_LIST\n")
    asked: list[tuple[str, dict[str, str]]] = []

    def configure(self: Make, base: str, wanted: dict[str, str], source: str) -> list[str]:
        asked.append((base, dict(wanted)))
        return []

    monkeypatch.setattr(Make, "configure", configure)
    said: list[str] = []
    TreeBuild(tree, tmp_path / "out", said.append).configure()
    [(base, wanted)] = asked
    assert base == "tinyconfig"
    assert wanted == {
        "CONFIG_DAMON": "y",
        "CONFIG_DAMON_SYSFS": "y",
        "CONFIG_DEBUG_KERNEL": "y",
        "CONFIG_DEBUG_MUTEXES": "y",
        "CONFIG_DEBUG_LIST": "y",
    }
    assert "linux-6.1-dbgfs.config + check-debug.config" in said[0] and "DEBUG_SPINLOCK left out" in said[0]
