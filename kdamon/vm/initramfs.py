"""The guest's initramfs: a cached base image plus a small archive per run.

The base holds busybox (static), the Python interpreter running kdamon (at its
own host path, with its venv's ``bin`` and ``pyvenv.cfg`` when it runs in one,
its stdlib as precompiled bytecode and the shared libraries ``ldd`` names),
the distributions kdamon, its installed extras and its tests need, and
``/init``.  It is cached under a key made of everything that goes in it (the
distributions' RECORDs by content), so it is rebuilt only when an input
changes.  The per-run archive carries kdamon's source checkout, ``--share``
directories, kernel modules, the ``kdamon`` command and the command to run;
the kernel unpacks both archives one after the other.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import importlib.util
import os
import py_compile
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

from kdamon.distribution import NAME, declared_names
from kdamon.errors import GuestError
from kdamon.vm.cpio import CpioWriter
from kdamon.vm.pyenv import GUEST_BIN, host_python, kdamon_command

# Distributions the guest needs besides kdamon's own requirements and its extras'.
GUEST_TOOLS = ("pytest", "hypothesis")
# Left out of the guest even when required: host-only tooling.
HOST_ONLY = frozenset({"mypy", "ruff", "matplotlib", "types-pyyaml", "mypy-extensions"})
STDLIB_SKIP = frozenset(
    {
        "test",
        "tests",
        "idlelib",
        "tkinter",
        "turtledemo",
        "lib2to3",
        "ensurepip",
        "site-packages",
        "pydoc_data",
        "__phello__",
        "distutils",
        "curses",
        "dbm",
        "msilib",
        "venv",
    }
)
# Libraries loaded with ctypes (not seen by ldd): pyudev's libudev.
CTYPES_LIBRARIES = ("libudev.so.1",)
# ctypes.util.find_library asks ldconfig, which reads the loader's cache.
LDCONFIG_FILES = (Path("/sbin/ldconfig"), Path("/etc/ld.so.cache"))
# Parts of distributions no guest run imports.
SITE_SKIP_DIRS = frozenset({"tests", "test", "include", "distutils", "f2py", "_pyinstaller"})
SITE_SKIP_SUFFIXES = frozenset({".pyi", ".h", ".c", ".pxd", ".f", ".a"})
# Extension modules the guest never needs (GUI, terminals, dbm databases, CPython's own tests).
# _ssl and _sqlite3 stay: prometheus-client (kdamon exporter) imports ssl and pyroute2
# (kdamon.events) imports sqlite3, both unconditionally.
DYNLOAD_SKIP = re.compile(
    r"^(_tkinter|_test|_codecs_|_ctypes_test|xx|_xx|_curses|readline|_dbm|_gdbm|nis|ossaudiodev|spwd|audioop)"
)
RESULT_PORT = "org.kdamon.result"
DMESG_PORT = "org.kdamon.dmesg"
SHARE_LIMIT_BYTES = 512 << 20
KEEP_BASES = 3
CHECKOUT_SKIP = frozenset({".git", ".mypy_cache", ".pytest_cache", ".hypothesis", ".ruff_cache", "build", "dist"})

INIT = r"""#!/bin/sh
export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts 2>/dev/null
mount -t tmpfs tmpfs /dev/shm
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
ip link set lo up 2>/dev/null
hostname kdamon-guest
if [ -f /kdamon/modules.list ]; then
  while read -r m; do insmod "$m" || echo "kdamon-guest: insmod $m failed"; done < /kdamon/modules.list
fi
res= log=
for p in /sys/class/virtio-ports/*; do
  [ -r "$p/name" ] || continue
  case "$(cat "$p/name")" in
    @RESULT@) res=/dev/${p##*/} ;;
    @DMESG@) log=/dev/${p##*/} ;;
  esac
done
[ -n "$res" ] || echo "kdamon-guest: no virtio result port (virtio_console missing); reporting over the serial console"
/bin/sh /kdamon/run.sh </dev/null &
wait $!
rc=$?
if [ -n "$log" ]; then dmesg > "$log"; fi
if [ -n "$res" ]; then echo "exit $rc" > "$res"; else echo "KDAMON-GUEST-EXIT $rc"; fi
sync
poweroff -f
"""


def init_script() -> str:
    """The guest's /init, with the names of its result ports."""
    return INIT.replace("@RESULT@", RESULT_PORT).replace("@DMESG@", DMESG_PORT)


def build_base(cache: Path, progress: object = None) -> Path:
    """Return the cached base image, building it when its inputs changed.

    One base per Python environment that runs kdamon (a venv, the checkout's
    interpreter): the ``KEEP_BASES`` used last are kept.
    """
    files = list(_base_inputs())
    key = _inputs_key(files)
    path = cache / "images" / f"base-{key}.cpio"
    if path.exists():
        path.touch()  # recently used
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in sorted(path.parent.glob("base-*.cpio"), key=_mtime, reverse=True)[KEEP_BASES - 1 :]:
        old.unlink(missing_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # concurrent runs may build the same base
    with tmp.open("wb") as out:
        writer = CpioWriter(out)
        _write_base(writer, files)
        writer.close()
    tmp.rename(path)
    return path


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # another run removed it
        return 0.0


def write_run_archive(
    out: Path,
    command: Sequence[str],
    *,
    cwd: str,
    env: Mapping[str, str],
    shares: Sequence[Path],
    modules: Sequence[Path] = (),
    bytecode: Path | None = None,
    python: str = "python3",
) -> None:
    """The per-run archive: shared trees, modules to load, the ``kdamon`` command, and the command to run.

    With ``bytecode`` (a host cache directory), Python sources in the shared
    trees travel with their compiled bytecode.  ``kdamon`` (in ``GUEST_BIN``,
    last on the guest's PATH, so an installed console script comes first) runs
    ``python -m kdamon``.
    """
    with out.open("wb") as f:
        writer = CpioWriter(f)
        total = 0
        for share in shares:
            total += _add_tree(writer, share, bytecode)
            if total > SHARE_LIMIT_BYTES:
                raise GuestError(
                    f"--share {share}: more than {SHARE_LIMIT_BYTES >> 20} MiB to copy into the guest; share a smaller directory"
                )
        names = []
        for module in modules:
            name = f"/kdamon/modules/{module.name}"
            writer.copy(module, name)
            names.append(name)
        if names:
            writer.file("/kdamon/modules.list", ("\n".join(names) + "\n").encode())
        writer.file(f"{GUEST_BIN}/kdamon", kdamon_command(python), mode=0o755)
        exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))
        script = f"{exports}cd {shlex.quote(cwd)} || exit 127\nexec {shlex.join(command)}\n"
        writer.file("/kdamon/run.sh", script.encode(), mode=0o755)
        writer.close()


def _add_tree(writer: CpioWriter, root: Path, bytecode: Path | None) -> int:
    total = 0
    root = root.resolve()
    if not root.is_dir():
        raise GuestError(f"--share {root}: not a directory")
    writer.directory(str(root))
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in CHECKOUT_SKIP and d != "__pycache__" and not d.endswith(".egg-info")
        )
        base = Path(dirpath)
        writer.directory(str(base), mtime=int(base.stat().st_mtime))
        for name in sorted(filenames):
            p = base / name
            if p.is_symlink():
                writer.symlink(str(p), os.readlink(p))
            elif p.is_file():
                total += p.stat().st_size
                writer.copy(p)
                if bytecode is not None and name.endswith(".py"):
                    _add_bytecode(writer, p, bytecode)
    return total


def _add_bytecode(writer: CpioWriter, source: Path, cache: Path) -> None:
    """The module's bytecode beside it, compiled once on the host (Python in a TCG guest compiles slowly)."""
    st = source.stat()
    key = hashlib.sha1(f"{source}\0{st.st_mtime_ns}\0{st.st_size}".encode()).hexdigest()
    compiled = cache / key[:2] / f"{key}.pyc"
    if not compiled.exists():
        compiled.parent.mkdir(parents=True, exist_ok=True)
        tmp = compiled.with_suffix(f".{os.getpid()}.tmp")
        try:
            py_compile.compile(str(source), cfile=str(tmp), doraise=True)
        except py_compile.PyCompileError:
            return  # the guest reports the syntax error when it imports the module
        tmp.rename(compiled)
    writer.file(importlib.util.cache_from_source(str(source)), compiled.read_bytes(), mtime=int(st.st_mtime))


# ---------------------------------------------------------------- base image


def _write_base(writer: CpioWriter, files: list[Path]) -> None:
    for d in ("dev", "proc", "sys", "tmp", "run", "root", "etc", "mnt", "var/tmp", "sys/kernel/debug"):
        writer.directory(d)
    writer.char_device("/dev/console", 5, 1)
    writer.char_device("/dev/null", 1, 3, mode=0o666)
    busybox = busybox_path()
    writer.copy(busybox, "/bin/busybox")
    for applet in busybox_applets(busybox):
        writer.symlink(f"/bin/{applet}", "busybox")
    writer.file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    writer.file("/etc/group", b"root:x:0:\n")
    writer.file("/init", init_script().encode(), mode=0o755)
    stdlib = Path(sysconfig.get_path("stdlib"))
    for path in files:
        if path == busybox:
            continue
        if path.is_symlink():
            writer.symlink(str(path), os.readlink(path))
        elif path.suffix == ".py" and path.is_relative_to(stdlib) and "site-packages" not in path.parts:
            source, dest = _stdlib_entry(path)
            writer.copy(source, dest)
        elif (path.suffix == ".so" or ".so." in path.name) and "site-packages" not in path.parts:
            # Wheels' bundled libraries are patchelf'd: strip would break them.
            writer.file(str(path), _stripped(path), mode=0o755)
        else:
            writer.copy(path)
    interpreter = Path(sys.executable)
    writer.symlink("/usr/bin/python3", str(interpreter))
    writer.symlink("/usr/bin/python", str(interpreter))


def _base_inputs() -> Iterator[Path]:
    """Every host file that goes into the base image (symlinks as themselves)."""
    yield busybox_path()
    yield from _interpreter_files()
    stdlib = Path(sysconfig.get_path("stdlib"))
    yield from _stdlib_files(stdlib)
    dist_files = list(_distribution_files())
    yield from dist_files
    binaries = [Path(sys.executable).resolve()] + [p for p in dist_files if p.suffix == ".so" or ".so." in p.name]
    binaries += [p for p in (stdlib / "lib-dynload").glob("*.so") if not DYNLOAD_SKIP.match(p.name)]
    ctypes_libraries = _host_libraries(CTYPES_LIBRARIES)
    for lib in ctypes_libraries:
        yield from _link_chain(lib)
    yield from _shared_libraries(binaries + ctypes_libraries)
    yield from (p for p in LDCONFIG_FILES if p.is_file())


def _stripped(path: Path) -> bytes:
    """A shared object without its debug symbols (libpython alone sheds about 17 MB)."""
    if shutil.which("strip") is None:
        return path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="kdamon-strip-") as tmp:
        out = Path(tmp) / path.name
        done = subprocess.run(
            ["strip", "--strip-unneeded", "-o", str(out), str(path)], capture_output=True, check=False
        )
        return out.read_bytes() if done.returncode == 0 else path.read_bytes()


def _inputs_key(files: list[Path]) -> str:
    """Every input's path, size and mtime, and the content of the distributions' RECORDs.

    A RECORD lists the hash of every file of its distribution: a reinstall
    that kept sizes and times (installers that link files from a cache) still
    changes the key.
    """
    h = hashlib.sha256(INIT.encode())
    for p in files:
        st = p.lstat()
        h.update(f"{p}\0{st.st_size}\0{int(st.st_mtime)}\0{p.is_symlink()}\n".encode())
        if p.name == "RECORD" and p.parent.name.endswith(".dist-info"):
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def busybox_path() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        p = Path(candidate)
        if p.is_file():
            out = subprocess.run(["file", "-b", str(p)], capture_output=True, text=True, check=False).stdout
            if "dynamically linked" not in out:
                return p
    raise GuestError("a static busybox is needed for the guest: apt-get install busybox-static")


def busybox_applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout
    return [a for a in out.split() if a and "/" not in a and not a.startswith("python")]


def _interpreter_files() -> Iterator[Path]:
    """The interpreter as invoked, its names in its environment's bin (console scripts name one), pyvenv.cfg."""
    env = host_python()
    yield from _link_chain(env.executable)
    for name in env.interpreter_names():
        yield from _link_chain(name)
    cfg = Path(sys.prefix) / "pyvenv.cfg"
    if cfg.is_file():
        yield cfg


def _stdlib_files(stdlib: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(stdlib):
        base = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if d not in STDLIB_SKIP and d != "__pycache__" and not d.startswith("config-")
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield base / name
            elif name.endswith(".so") and not DYNLOAD_SKIP.match(name):
                yield base / name


def _stdlib_entry(path: Path) -> tuple[Path, str]:
    """The stdlib goes in sourceless: a module's compiled bytecode stands at its own place."""
    if path.suffix == ".py":
        cached = path.parent / "__pycache__" / f"{path.stem}.{sys.implementation.cache_tag}.pyc"
        if cached.is_file():
            return cached, str(path.with_suffix(".pyc"))
    return path, str(path)


def _distribution_files() -> Iterator[Path]:
    tag = sys.implementation.cache_tag
    for dist in _guest_distributions():
        for f in dist.files or ():
            parts = Path(str(f)).parts
            if SITE_SKIP_DIRS & set(parts[:-1]) or Path(parts[-1]).suffix in SITE_SKIP_SUFFIXES:
                continue  # test suites, build-time tools, headers and stubs
            p = Path(str(dist.locate_file(f)))
            if p.suffix == ".pyc" and (not p.name.endswith(f".{tag}.pyc") or ".opt-" in p.name):
                continue
            if p.is_file():
                yield p


def _guest_distributions() -> list[md.Distribution]:
    """kdamon, what it and its extras require, and the test tools, with everything they require (those installed)."""
    roots = [NAME, *declared_names(), *GUEST_TOOLS]
    found: dict[str, md.Distribution] = {}
    queue = list(roots)
    while queue:
        name = _canonical(queue.pop())
        if name in found or name in HOST_ONLY:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        found[name] = dist
        queue.extend(_plain_requirements(dist.requires or ()))
    return [found[k] for k in sorted(found)]


def _plain_requirements(requires: Iterable[str]) -> list[str]:
    """Requirement names that apply without extras (markers on the host's environment)."""
    from packaging.requirements import Requirement

    names = []
    for text in requires:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _host_libraries(sonames: Iterable[str]) -> list[Path]:
    """Where the host's loader finds these sonames (those it does not have are left out)."""
    try:
        out = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) \((.*)\) => (\S+)", line)
        if m and "x86-64" in m.group(2) and m.group(1) not in found:
            found[m.group(1)] = Path(m.group(3))
    return [found[name] for name in sonames if name in found]


def _shared_libraries(binaries: list[Path]) -> Iterator[Path]:
    if shutil.which("ldd") is None:
        raise GuestError("ldd is needed to find the Python interpreter's libraries: apt-get install libc-bin")
    found: set[Path] = set()
    for chunk in range(0, len(binaries), 64):
        part = [str(b) for b in binaries[chunk : chunk + 64]]
        out = subprocess.run(["ldd", *part], capture_output=True, text=True, check=False).stdout
        for m in re.finditer(r"(?:=>\s*)?(/\S+)\s+\(0x", out):
            found.add(Path(os.path.normpath(m.group(1))))
    for lib in sorted(found):
        yield from _link_chain(lib)


def _link_chain(path: Path) -> Iterator[Path]:
    """A path and, when it is a symlink, everything it points through."""
    seen = set()
    while path.is_symlink() and path not in seen:
        seen.add(path)
        yield path
        path = path.parent / os.readlink(path)
    yield path
