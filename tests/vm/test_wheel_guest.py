"""kdamon as a user installs it: a wheel of this checkout in a fresh venv, and a guest started from that venv.

The guest must run with the venv active (its ``python3`` imports kdamon's
dependencies) and have a ``kdamon`` command.  Building the wheel and
installing its dependencies needs the package index; the boot costs a few
seconds under TCG, the venv's guest base about ten more on first use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kdamon.vm.kernels import cache_dir

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed (scripts/test.sh installs it)"
)

ROOT = Path(__file__).resolve().parents[2]
# Imports, in the guest, the top-level modules of every requirement kdamon's metadata declares without an extra.
PROBE = """
import importlib, importlib.metadata as md, sys
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as canon
tops = {}
for top, dists in md.packages_distributions().items():
    for dist in dists:
        tops.setdefault(canon(dist), []).append(top)
for text in md.requires("kdamon"):
    req = Requirement(text)
    if req.marker is None or req.marker.evaluate({"extra": ""}):
        for top in sorted(t for t in tops[canon(req.name)] if not t.startswith("_")):
            importlib.import_module(top)
            print("imported", canon(req.name), top)
print("prefix", sys.prefix)
"""


def _run(command: list[str], **kwargs: object) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{command} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


def test_a_guest_started_from_a_wheels_venv_has_its_packages_and_kdamon(tmp_path: Path) -> None:
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT)])
    wheel = next((tmp_path / "dist").glob("kdamon-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    version = _run([str(venv / "bin" / "kdamon"), "--version"], cwd=tmp_path, env=env).strip()

    bases = set((cache_dir() / "images").glob("base-*.cpio"))
    try:
        out = _run(
            [
                str(venv / "bin" / "kdamon"),
                "vm",
                "run",
                "--timeout",
                "600",
                "--",
                "sh",
                "-c",
                'kdamon --version && command -v kdamon && python3 -c "$0"',
                PROBE,
            ],
            cwd=tmp_path,
            env=env,
        )
    finally:  # the throwaway venv's guest base would only push a useful one out of the cache
        for base in set((cache_dir() / "images").glob("base-*.cpio")) - bases:
            base.unlink(missing_ok=True)
    lines = out.splitlines()
    assert version in lines  # `kdamon --version` in the guest says what it says on the host
    assert f"{venv}/bin/kdamon" in lines  # the venv's console script, first on PATH
    assert f"prefix {venv}" in lines  # python3 is the venv's
    imported = {line.split()[1] for line in lines if line.startswith("imported ")}
    declared = {"attrs", "numpy", "cattrs", "pyyaml", "tomli-w", "packaging", "prometheus-client"}
    assert declared <= imported
