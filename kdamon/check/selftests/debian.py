"""The selftests from Debian's ``linux-source`` package of a kernel version: found, downloaded, extracted.

Only the selftests' damon directory and what its runner needs are taken
from the source tarball, not the whole tree.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from kdamon.errors import GuestError

__all__ = ["SUITES", "extract", "source_deb"]

Progress = Callable[[str], None]
SUITES = ("trixie", "trixie-backports", "bookworm", "bookworm-backports")
_MEMBERS = (
    "tools/testing/selftests/damon",
    "tools/testing/selftests/kselftest",
    "tools/testing/selftests/run_kselftest.sh",
    "tools/testing/selftests/kselftest.h",
)


def source_deb(kernel: str, version: str, say: Progress) -> tuple[Path, str]:
    """The ``linux-source-VERSION`` .deb (downloaded once into the cache) and its Debian version.

    The suites are tried in turn, the recipe's own first when ``kernel`` names one.
    """
    from kdamon.vm.build import source_package
    from kdamon.vm.kernels import DebianKernels, Recipe, cache_dir, load_recipe

    suites = list(SUITES)
    if "/" not in kernel:
        suite = load_recipe(kernel).data.get("suite")
        if isinstance(suite, str):
            suites.insert(0, suite)
    apt = DebianKernels(cache_dir(), say)
    pattern = rf"linux-source-(?P<version>{re.escape(version)})"
    errors = []
    for suite in dict.fromkeys(suites):
        try:
            package, deb_version = apt.newest(
                Recipe(f"selftests-{version}", "", "source", {"suite": suite, "package": pattern})
            )
        except GuestError as err:
            errors.append(f"{suite}: {err}")
            continue
        return source_package(apt, suite, package, deb_version, cache_dir() / "sources"), deb_version
    raise GuestError(
        f"no Debian linux-source-{version} package found ({'; '.join(errors)}); "
        "the selftests come from it: check the kernel version or the network"
    )


def extract(deb: Path, dest: Path) -> None:
    """The selftests' damon directory and runner from the package's source tarball, into ``dest``."""
    from kdamon.vm.kernels import run_command

    with tempfile.TemporaryDirectory(prefix="kdamon-selftests-") as tmp:
        work = Path(tmp)
        run_command(
            ["sh", "-c", f"dpkg-deb --fsys-tarfile '{deb}' | tar -x --wildcards '*.tar.xz'"],
            f"unpacking {deb.name}",
            cwd=work,
        )
        tarballs = list(work.rglob("linux-source-*.tar.xz"))
        if not tarballs:
            raise GuestError(f"{deb.name} holds no linux-source tarball")
        tree = work / "tree"
        tree.mkdir()
        run_command(
            [
                "tar",
                "-xJf",
                str(tarballs[0]),
                "-C",
                str(tree),
                "--strip-components=1",
                "--wildcards",
                *(f"*/{m}" for m in _MEMBERS),
            ],
            f"extracting the selftests from {tarballs[0].name}",
        )
        selftests = tree / "tools" / "testing" / "selftests"
        if not (selftests / "damon").is_dir():
            raise GuestError(f"{tarballs[0].name} has no tools/testing/selftests/damon")
        shutil.copytree(selftests, dest, symlinks=True)
