"""The built-kernel recipe: fragment parsing, the .config check, the cache key."""

from __future__ import annotations

import pytest

from kdamon.errors import GuestError
from kdamon.vm.build import options_not_landed, parse_fragment, recipe_digest
from kdamon.vm.kernels import Recipe, load_recipe, recipes_dir

# What the linux-6.1-dbgfs guest needs (issue 6), besides tinyconfig.
REQUIRED = (
    "64BIT",
    "PRINTK",
    "SERIAL_8250",
    "SERIAL_8250_CONSOLE",
    "TTY",
    "BLK_DEV_INITRD",
    "RD_GZIP",
    "PROC_FS",
    "SYSFS",
    "DEVTMPFS",
    "TMPFS",
    "SHMEM",
    "DEBUG_FS",
    "FTRACE",
    "EVENT_TRACING",
    "BINFMT_ELF",
    "BINFMT_SCRIPT",
    "MULTIUSER",
    "FUTEX",
    "EPOLL",
    "EVENTFD",
    "SIGNALFD",
    "TIMERFD",
    "POSIX_TIMERS",
    "FILE_LOCKING",
    "ADVISE_SYSCALLS",
    "RSEQ",
    "SYSVIPC",
    "NET",
    "UNIX",
    "IKCONFIG_PROC",
    "DAMON",
    "DAMON_VADDR",
    "DAMON_PADDR",
    "DAMON_SYSFS",
    "DAMON_DBGFS",
    "PCI",
    "VIRTIO_PCI",
    "VIRTIO_CONSOLE",
    "ACPI",
    "SMP",
    "PAGE_TABLE_ISOLATION",
    "PROC_SYSCTL",
    "UNIX98_PTYS",
    "PRINTK_TIME",
    "INET",
    "CONNECTOR",
    "PROC_EVENTS",
    "IDLE_PAGE_TRACKING",
)


def test_parse_fragment() -> None:
    text = '# a comment\n\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=0x10\n'
    assert parse_fragment(text) == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"x y"', "CONFIG_D": "0x10"}
    with pytest.raises(GuestError, match="line 2"):
        parse_fragment("CONFIG_A=y\nA=y\n")


def test_options_not_landed() -> None:
    wanted = {"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_C": "n", "CONFIG_D": "n", "CONFIG_E": "y"}
    config = "CONFIG_A=y\n# CONFIG_B is not set\n# CONFIG_C is not set\nCONFIG_E=m\n"
    assert options_not_landed(wanted, config) == ["CONFIG_B=y (got n)", "CONFIG_E=y (got m)"]
    assert options_not_landed({"CONFIG_A": "y"}, "CONFIG_A=y\n") == []


def test_the_dbgfs_recipe_asks_for_everything_the_guest_needs() -> None:
    recipe = load_recipe("linux-6.1-dbgfs")
    assert recipe.kind == "build" and recipe.get_str("base_config") == "tinyconfig"
    wanted = parse_fragment((recipes_dir() / recipe.get_str("config_fragment")).read_text())
    missing = [name for name in REQUIRED if wanted.get(f"CONFIG_{name}") != "y"]
    assert missing == []


def test_the_cache_key_follows_recipe_and_fragment() -> None:
    recipe = Recipe(name="r", description="", kind="build", data={"suite": "bookworm"})
    other = Recipe(name="r", description="", kind="build", data={"suite": "trixie"})
    key = recipe_digest(recipe, "CONFIG_A=y\n")
    assert key == recipe_digest(recipe, "CONFIG_A=y\n")
    assert len({key, recipe_digest(recipe, "CONFIG_A=n\n"), recipe_digest(other, "CONFIG_A=y\n")}) == 3
