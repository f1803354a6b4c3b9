"""Guest bases from container images: exact docker command lines (fake docker), and a real run.

The fake docker binary logs its arguments and answers like docker would; the
real run needs a Docker engine and QEMU and is skipped without them.
"""

from __future__ import annotations

import io
import json
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from kdamon.errors import GuestError
from kdamon.vm.docker import BUSYBOX, docker_client, image_base

whales = pytest.importorskip(
    "python_on_whales", reason="python-on-whales is not installed (pip install 'kdamon[docker]')"
)

IMAGE = "kdamon-test:1"
IMAGE_ID = "sha256:" + "ab" * 32
CONTAINER = "c0ffee1234"

FAKE_DOCKER = f"""#!{sys.executable}
import json, os, shutil, sys
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["image", "inspect"]:
    if args[2] != {IMAGE!r}:
        sys.exit("Error: No such image: " + args[2])
    print(json.dumps([{{"Id": {IMAGE_ID!r}, "RepoTags": [{IMAGE!r}]}}]))
elif args[:1] == ["create"]:
    print({CONTAINER!r})
elif args[:3] == ["container", "export", "--output"]:
    shutil.copy(os.environ["FAKE_DOCKER_TAR"], args[3])
elif args[:2] == ["container", "rm"]:
    print(args[2])
else:
    sys.exit("fake docker: unexpected " + " ".join(args))
"""


def _add(
    tar: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = "", mode: int = 0o644
) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.size, info.mtime = kind, link, mode, len(data), 1700000000
    tar.addfile(info, io.BytesIO(data) if data else None)


def _rootfs(path: Path) -> None:
    """A small usr-merged image: /bin is a symlink, ls and python3 exist, sh and mount do not."""
    with tarfile.open(path, "w") as tar:
        for d in ("usr", "usr/bin", "etc", "dev", "proc"):
            _add(tar, d, tarfile.DIRTYPE, mode=0o755)
        _add(tar, "bin", tarfile.SYMTYPE, link="usr/bin")
        _add(tar, "usr/bin/ls", data=b"\x7fELF ls", mode=0o755)
        _add(tar, "usr/bin/python3", data=b"\x7fELF python", mode=0o755)
        _add(tar, "usr/bin/python3.11", tarfile.LNKTYPE, link="usr/bin/python3", mode=0o755)
        _add(tar, "etc/kdamon-marker", data=b"from the image\n")
        _add(tar, "dev/console", tarfile.CHRTYPE)
        _add(tar, ".dockerenv")


def _cpio(path: Path) -> dict[str, tuple[int, bytes]]:
    """Entries of a newc archive: name -> (mode, data or symlink target)."""
    raw, entries, pos = path.read_bytes(), {}, 0
    while True:
        header = raw[pos : pos + 110]
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = raw[pos + 110 : pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += (-pos) % 4
        if name == "TRAILER!!!":
            return entries
        entries[name] = (mode, raw[pos : pos + size])
        pos += size + (-size) % 4


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, Path]:
    exe = tmp_path / "docker"
    exe.write_text(FAKE_DOCKER)
    exe.chmod(0o755)
    log = tmp_path / "docker.log"
    _rootfs(tmp_path / "rootfs.tar")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("FAKE_DOCKER_TAR", str(tmp_path / "rootfs.tar"))
    return docker_client([str(exe)]), log


def _calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_export_runs_exactly_these_docker_commands(fake_docker: tuple[object, Path], tmp_path: Path) -> None:
    client, log = fake_docker
    path = image_base(IMAGE, tmp_path / "cache", docker=client)
    calls = _calls(log)
    export = calls[-2]
    assert calls == [
        ["image", "inspect", IMAGE],
        ["create", "--pull", "never", IMAGE, "sh"],
        ["container", "export", "--output", export[3], CONTAINER],
        ["container", "rm", CONTAINER],
    ]
    assert export[3].endswith("rootfs.tar") and not Path(export[3]).exists()  # temporary
    assert path.parent == tmp_path / "cache" / "images" and path.exists()


def test_a_cached_base_is_not_exported_again(fake_docker: tuple[object, Path], tmp_path: Path) -> None:
    client, log = fake_docker
    first = image_base(IMAGE, tmp_path / "cache", docker=client)
    before = len(_calls(log))
    assert image_base(IMAGE, tmp_path / "cache", docker=client) == first
    assert _calls(log)[before:] == [["image", "inspect", IMAGE]]


def test_the_base_has_the_image_plus_what_booting_needs(fake_docker: tuple[object, Path], tmp_path: Path) -> None:
    client, _log = fake_docker
    entries = _cpio(image_base(IMAGE, tmp_path / "cache", docker=client))
    mode, init = entries["init"]
    assert stat.S_ISREG(mode) and mode & 0o111 and init.startswith(b"#!/bin/sh") and b"poweroff" in init
    assert entries["etc/kdamon-marker"][1] == b"from the image\n"
    assert entries["usr/bin/python3.11"] == entries["usr/bin/python3"]  # hard link copied
    assert entries["bin"] == (stat.S_IFLNK | 0o777, b"usr/bin")
    assert stat.S_ISREG(entries[BUSYBOX.lstrip("/")][0])
    # sh is missing: /bin/sh resolves through the image's /bin symlink to usr/bin/sh
    assert entries["usr/bin/sh"] == (stat.S_IFLNK | 0o777, BUSYBOX.encode())
    assert entries["usr/local/bin/mount"] == (stat.S_IFLNK | 0o777, BUSYBOX.encode())
    assert "usr/local/bin/ls" not in entries  # the image's own ls wins
    assert stat.S_ISCHR(entries["dev/console"][0])
    assert ".dockerenv" not in entries


def test_an_unknown_image_says_to_build_it(fake_docker: tuple[object, Path], tmp_path: Path) -> None:
    client, log = fake_docker
    with pytest.raises(GuestError, match="No such image: nope:latest.*build or load it"):
        image_base("nope:latest", tmp_path / "cache", docker=client)
    assert _calls(log) == [["image", "inspect", "nope:latest"]]


def _engine_or_skip() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker command")
    done = subprocess.run(
        [docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        pytest.skip(f"no Docker engine is running ({done.stderr.strip().splitlines()[-1:]})")
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("QEMU is not installed")


def test_a_guest_boots_from_a_real_image(tmp_path: Path) -> None:
    _engine_or_skip()
    from kdamon.vm import run
    from kdamon.vm.initramfs import busybox_path

    # No registry is reachable: make the image from a local tarball (docker import).
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add(busybox_path(), "bin/busybox")
        _add(tar, "etc/kdamon-marker", data=b"booted from kdamon-test-image\n")
    client = docker_client()
    tag = "kdamon-test-image:latest"
    client.image.import_(rootfs, tag=tag)
    try:
        base = image_base(tag, tmp_path / "cache", docker=client)
    finally:
        client.image.remove(tag, force=True)
    lines: list[str] = []
    result = run(["cat", "/etc/kdamon-marker"], image=base, output=lines.append, timeout=600)
    assert result.exit_code == 0
    assert "booted from kdamon-test-image\n" in lines
