"""The guest's Python environment: the host's venv or user site, and a ``kdamon`` command (no boot)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kdamon.vm.initramfs import _inputs_key, write_run_archive
from kdamon.vm.pyenv import GUEST_BIN, PythonEnv, guest_variables, kdamon_command
from kdamon.vm.runner import _guest_env

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json
from kdamon.vm.initramfs import _interpreter_files
from kdamon.vm.pyenv import guest_variables, host_python
env = host_python()
print(json.dumps({"venv": str(env.venv), "scripts": str(env.scripts), "variables": guest_variables(env),
                  "files": [str(p) for p in _interpreter_files()]}))
"""


def test_a_venv_comes_first_on_the_guests_path() -> None:
    env = PythonEnv(executable=Path("/v/bin/python"), scripts=Path("/v/bin"), venv=Path("/v"), user_base=None)
    assert guest_variables(env) == {
        "VIRTUAL_ENV": "/v",
        "PATH": f"/v/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:{GUEST_BIN}",
    }


def test_the_user_site_is_found_where_the_host_has_it() -> None:
    env = PythonEnv(
        executable=Path("/usr/bin/python3"), scripts=Path("/usr/bin"), venv=None, user_base=Path("/home/me/.local")
    )
    assert guest_variables(env) == {
        "PYTHONUSERBASE": "/home/me/.local",
        "PATH": f"/usr/bin:/home/me/.local/bin:/usr/local/bin:/bin:/usr/sbin:/sbin:{GUEST_BIN}",
    }


def test_an_image_guest_gets_the_system_path_and_the_kdamon_command() -> None:
    env = _guest_env("debian-6.12", {"FOO": "1"}, None)
    assert env["PATH"] == f"/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:{GUEST_BIN}"
    assert "VIRTUAL_ENV" not in env and env["FOO"] == "1"


def test_the_command_line_env_wins() -> None:
    env = PythonEnv(executable=Path("/v/bin/python"), scripts=Path("/v/bin"), venv=Path("/v"), user_base=None)
    assert _guest_env("debian-6.12", {"PATH": "/opt/bin"}, env)["PATH"] == "/opt/bin"


def test_a_venv_is_seen_with_its_interpreter_names_and_pyvenv_cfg(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    seen = json.loads(out)
    assert seen["venv"] == str(venv) and seen["scripts"] == str(venv / "bin")
    assert seen["variables"]["VIRTUAL_ENV"] == str(venv)
    assert seen["variables"]["PATH"].startswith(f"{venv}/bin:")
    files = set(seen["files"])
    assert {str(venv / "bin" / "python"), str(venv / "bin" / "python3"), str(venv / "pyvenv.cfg")} <= files
    assert str(Path(sys.executable).resolve()) in files  # the real interpreter behind the venv's symlinks


def test_the_kdamon_command_runs_kdamon_with_the_given_python(tmp_path: Path) -> None:
    script = tmp_path / "kdamon"
    script.write_bytes(kdamon_command(sys.executable))
    script.chmod(0o755)
    out = subprocess.run(
        [str(script), "--version"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout
    assert out.startswith("kdamon ")


@pytest.mark.skipif(shutil.which("cpio") is None, reason="needs the cpio tool to read the archive back")
def test_the_run_archive_carries_the_kdamon_command(tmp_path: Path) -> None:
    archive = tmp_path / "run.cpio"
    write_run_archive(archive, ["kdamon", "status"], cwd="/root", env={}, shares=[], python="/v/bin/python")
    listing = subprocess.run(
        ["cpio", "-itv"], input=archive.read_bytes(), capture_output=True, check=True
    ).stdout.decode()
    line = next(x for x in listing.splitlines() if x.endswith(f"{GUEST_BIN.lstrip('/')}/kdamon"))
    assert line.startswith("-rwxr-xr-x")
    text = subprocess.run(
        ["cpio", "-i", "--to-stdout", f"{GUEST_BIN.lstrip('/')}/kdamon"],
        input=archive.read_bytes(),
        capture_output=True,
        check=True,
    ).stdout
    assert text == kdamon_command("/v/bin/python")


def test_a_distribution_reinstalled_with_the_same_sizes_and_times_changes_the_base_key(tmp_path: Path) -> None:
    record = tmp_path / "site-packages" / "x-1.0.dist-info" / "RECORD"
    record.parent.mkdir(parents=True)
    other = tmp_path / "site-packages" / "x.py"
    other.write_text("a = 1\n")
    record.write_text("x.py,sha256=AAAA,6\n")  # a reinstall below: same sizes and times, other hashes
    os.utime(record, (1_700_000_000, 1_700_000_000))
    before = _inputs_key([other, record])
    record.write_text("x.py,sha256=BBBB,6\n")
    os.utime(record, (1_700_000_000, 1_700_000_000))
    assert _inputs_key([other, record]) != before
