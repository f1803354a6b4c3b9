"""Guest root file systems from container images, through python-on-whales (extra ``docker``).

``image_base(IMAGE)`` exports the image's file system (``docker create`` then
``docker container export``; the container never runs) and turns it into a
cached initramfs base that ``run(..., image=PATH)`` boots instead of the
Python base.  On top of the image's own files it adds kdamon's ``/init``, a
static busybox at ``/kdamon/busybox``, and busybox applets for the commands
the image lacks (in ``/usr/local/bin``, so the image's own tools win), so
that any image boots.  Commands run with the image's userland: Python
commands need the image's own ``python3`` with kdamon's requirements
installed (kdamon's checkout is shared and on ``PYTHONPATH`` as usual).
The base is cached by image id.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kdamon.errors import GuestError
from kdamon.vm.cpio import CpioWriter
from kdamon.vm.initramfs import INIT, busybox_applets, busybox_path, init_script
from kdamon.vm.kernels import Progress

__all__ = ["BUSYBOX", "docker_client", "image_base"]

BUSYBOX = "/kdamon/busybox"
# Where /init and run.sh look for commands (INIT's PATH).
GUEST_PATH = ("usr/local/bin", "usr/bin", "bin", "usr/sbin", "sbin")
APPLET_DIR = "usr/local/bin"
# The kernel mounts or creates these itself; the image's copies are empty or meaningless.
_SKIP_PREFIXES = ("dev/", "proc/", "sys/")
_SKIP = frozenset({".dockerenv"})
_BASE_DIRS = ("dev", "proc", "sys", "tmp", "run", "root", "etc", "mnt", "var/tmp", "sys/kernel/debug")


def docker_client(client_call: Sequence[str] | None = None) -> Any:
    """A python-on-whales ``DockerClient`` (``client_call``: the docker command to run)."""
    try:
        from python_on_whales import DockerClient
    except ImportError as exc:
        raise GuestError(f"container images need python-on-whales ({exc}): pip install 'kdamon[docker]'") from exc
    return DockerClient(client_call=list(client_call)) if client_call else DockerClient()


def image_base(image: str, cache: Path, *, docker: Any = None, progress: Progress | None = None) -> Path:
    """The cached initramfs base made from container ``image`` (exported on first use)."""
    say = progress or (lambda _msg: None)
    client = docker if docker is not None else docker_client()
    from python_on_whales.exceptions import DockerException

    try:
        image_id = client.image.inspect(image).id
    except DockerException as exc:
        raise GuestError(
            f"docker cannot inspect image {image!r} ({_reason(exc)}): build or load "
            "it first (no registry is pulled from), and check that a Docker engine runs"
        ) from exc
    key = hashlib.sha256(f"{image_id}\0{INIT}\0{busybox_path()}".encode()).hexdigest()[:16]
    path = cache / "images" / f"docker-{key}.cpio"
    if path.exists():
        return path
    say(f"kdamon: exporting the file system of {image} ({image_id[:19]})")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kdamon-docker-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        try:
            container = client.container.create(image, ["sh"], pull="never")
            try:
                client.container.export(container, tar)
            finally:
                client.container.remove(container)
        except DockerException as exc:
            raise GuestError(f"exporting image {image!r} failed ({_reason(exc)})") from exc
        part = path.with_suffix(".tmp")
        with part.open("wb") as out:
            writer = CpioWriter(out)
            _write_image(writer, tar)
            writer.close()
        part.rename(path)
    return path


def _reason(exc: Exception) -> str:
    """The last line docker printed (python-on-whales keeps its stderr)."""
    text = (getattr(exc, "stderr", None) or str(exc)).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def _write_image(writer: CpioWriter, tar_path: Path) -> None:
    with tarfile.open(tar_path) as tar:
        tree = _Tree(tar.getmembers())
        for member in tar.getmembers():
            name = _member_name(member)
            if not name or name in _SKIP or name.startswith(_SKIP_PREFIXES):
                continue
            mode, mtime = member.mode & 0o7777, int(member.mtime)
            if member.isdir():
                writer.directory(name, mode, mtime)
            elif member.issym():
                writer.symlink(name, member.linkname)
            elif member.isfile() or member.islnk():  # a hard link becomes a copy
                source = tar.extractfile(member)
                if source is not None:
                    writer.file(name, source.read(), mode, mtime)
    _write_boot(writer, tree)


def _write_boot(writer: CpioWriter, tree: _Tree) -> None:
    """kdamon's /init, busybox, and applets for the commands the image lacks."""
    for d in _BASE_DIRS:
        writer.directory(tree.resolve(d))
    writer.char_device("/dev/console", 5, 1)
    writer.char_device("/dev/null", 1, 3, mode=0o666)
    busybox = busybox_path()
    writer.copy(busybox, BUSYBOX)
    applet_dir = tree.resolve(APPLET_DIR)
    for applet in busybox_applets(busybox):
        if not any(tree.exists(f"{d}/{applet}") for d in GUEST_PATH):
            writer.symlink(f"{applet_dir}/{applet}", BUSYBOX)
    if not tree.exists("bin/sh"):  # /init's interpreter, named by absolute path
        writer.symlink(f"{tree.resolve('bin')}/sh", BUSYBOX)
    init = init_script()
    writer.file("/init", init.encode(), mode=0o755)


def _member_name(member: tarfile.TarInfo) -> str:
    return posixpath.normpath("/" + member.name).lstrip("/")


class _Tree:
    """The image's paths, to answer "does this command exist" through its symlinks."""

    def __init__(self, members: list[tarfile.TarInfo]) -> None:
        self._links: dict[str, str] = {}
        self._paths: set[str] = set()
        for m in members:
            name = _member_name(m)
            self._paths.add(name)
            if m.issym():
                self._links[name] = m.linkname

    def resolve(self, path: str) -> str:
        """``path`` with every symlink on the way followed (within the image)."""
        parts = [p for p in path.split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            current = "/".join([*done, parts.pop(0)])
            target = self._links.get(current)
            if target is None:
                done = current.split("/")
                continue
            hops += 1
            if hops > 40:
                raise GuestError(f"symlink loop in the image at /{current}")
            base = [] if target.startswith("/") else done
            full = posixpath.normpath("/" + "/".join([*base, target.lstrip("/")]))
            parts = [p for p in full.split("/") if p] + parts
            done = []
        return "/".join(done)

    def exists(self, path: str) -> bool:
        return self.resolve(path) in self._paths
