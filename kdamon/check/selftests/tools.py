"""The host tools the selftests need and the guest's busybox lacks or gets wrong, packed with their libraries.

bash, GNU grep, procps pgrep, util-linux dmesg (``-C``) and GNU timeout
(the runner calls ``/usr/bin/timeout --foreground``) go to ``bin/``, the
shared libraries ``ldd`` lists for them to ``lib/``, all but libc and the
loader, which the guest has.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from kdamon.errors import GuestError

__all__ = ["TOOLS", "pack_tools"]

TOOLS = ("bash", "grep", "pgrep", "dmesg", "timeout")


def pack_tools(tools: Path) -> None:
    """Host binaries of ``TOOLS`` into ``tools/bin`` and the shared libraries the guest lacks into ``tools/lib``."""
    (tools / "bin").mkdir(parents=True)
    (tools / "lib").mkdir()
    for name in TOOLS:
        path = shutil.which(name, path="/usr/bin:/bin")
        if path is None:
            raise GuestError(
                f"the selftests need {name} from the host: install it (bash, grep, procps, util-linux, coreutils)"
            )
        real = Path(path).resolve()
        if "busybox" in real.name:
            raise GuestError(f"{path} is busybox; the selftests need the GNU/procps/util-linux {name}")
        shutil.copy2(real, tools / "bin" / name)
        for lib in _shared_libraries(real):
            if not lib.name.startswith(("libc.so", "ld-linux")) and not (tools / "lib" / lib.name).exists():
                shutil.copy2(lib.resolve(), tools / "lib" / lib.name)


def _shared_libraries(program: Path) -> list[Path]:
    """The libraries ``ldd`` resolves for ``program`` (none for a static one)."""
    out = subprocess.run(["ldd", str(program)], capture_output=True, text=True, check=False).stdout
    return [Path(lib) for lib in re.findall(r"=>\s*(/\S+)", out)]
