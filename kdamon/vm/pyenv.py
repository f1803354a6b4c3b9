"""The Python environment running kdamon, as its guests get it.

kdamon's guest base carries the interpreter that runs kdamon at its host path.
When that interpreter is a virtual environment's (a venv, pipx's), the guest
must start Python through the venv's own ``bin`` so that ``pyvenv.cfg`` makes
its site-packages importable; when kdamon is installed in the user site
(``pip install --user``), the guest must look for the user site where the
host has it.  ``guest_variables`` sets the guest's ``PATH`` (the environment's
scripts first, so ``python3`` and the ``kdamon`` console script are the
host's), ``VIRTUAL_ENV`` and ``PYTHONUSERBASE`` accordingly.
"""

from __future__ import annotations

import shlex
import site
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import attrs

__all__ = ["GUEST_BIN", "SYSTEM_PATH", "PythonEnv", "guest_variables", "host_python", "kdamon_command"]

SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")
# The per-run archive's directory of commands every guest has (``kdamon``), last on PATH.
GUEST_BIN = "/kdamon/bin"


@attrs.frozen
class PythonEnv:
    """Where the interpreter running kdamon lives, and which of its site directories are in use."""

    executable: Path  # as invoked, not resolved: a venv's python is a symlink to its base's
    scripts: Path  # the environment's bin directory (console scripts, python3)
    venv: Path | None  # sys.prefix of a virtual environment
    user_base: Path | None  # site.USER_BASE when the user site is on sys.path

    def interpreter_names(self) -> Iterator[Path]:
        """The ``python``, ``python3`` and ``python3.X`` of the scripts directory (console scripts name one)."""
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        for name in ("python", f"python{sys.version_info.major}", version):
            path = self.scripts / name
            if path.exists():
                yield path


def host_python() -> PythonEnv:
    """The environment of the interpreter running this process."""
    venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else None
    user_site = site.ENABLE_USER_SITE and site.getusersitepackages() in sys.path
    return PythonEnv(
        executable=Path(sys.executable),
        scripts=Path(sysconfig.get_path("scripts")),
        venv=venv,
        user_base=Path(site.getuserbase()) if user_site else None,
    )


def guest_variables(env: PythonEnv) -> dict[str, str]:
    """The guest's PATH, VIRTUAL_ENV and PYTHONUSERBASE for ``env``."""
    path = [str(env.scripts)]
    variables = {}
    if env.venv is not None:
        variables["VIRTUAL_ENV"] = str(env.venv)
    if env.user_base is not None:
        variables["PYTHONUSERBASE"] = str(env.user_base)
        path.append(str(env.user_base / "bin"))
    path += [p for p in SYSTEM_PATH if p not in path]
    variables["PATH"] = ":".join([*path, GUEST_BIN])
    return variables


def kdamon_command(python: str) -> bytes:
    """The guest's fallback ``kdamon`` command (where no console script is installed): ``python -m kdamon``."""
    return f'#!/bin/sh\nexec {shlex.quote(python)} -m kdamon "$@"\n'.encode()
