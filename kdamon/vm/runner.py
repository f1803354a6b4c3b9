"""``kdamon vm run``: boot a DAMON kernel and run one command in it as root."""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from kdamon.distribution import source_checkout
from kdamon.errors import GuestError
from kdamon.userfiles import reading, require_dir, require_file
from kdamon.vm.accel import choose_accel
from kdamon.vm.initramfs import build_base, write_run_archive
from kdamon.vm.kernels import Progress, cache_dir
from kdamon.vm.pyenv import GUEST_BIN, SYSTEM_PATH, PythonEnv, guest_variables, host_python
from kdamon.vm.qemu import BootSpec, GuestResult, LineSink, boot
from kdamon.vm.resolve import resolve_kernel

DEFAULT_KERNEL = "debian-6.12"
DEFAULT_TIMEOUT_S = 900.0
KEEP_RUNS = 20
STALE_RUN_S = 6 * 3600
# Modules a user's kernel may need as modules for the result channel.
GUEST_MODULES = ("virtio_pci", "virtio_console")


def run(
    command: Sequence[str],
    *,
    kernel: str = DEFAULT_KERNEL,
    memory: str = "1G",
    cpus: int = 2,
    timeout: float = DEFAULT_TIMEOUT_S,
    share: Sequence[Path] = (),
    modules: Path | None = None,
    cmdline: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    qemu_args: Sequence[str] = (),
    qmp_client: Callable[[Path], None] | None = None,
    virtio_results: bool = True,
    image: Path | None = None,
    output: LineSink | None = None,
    progress: Progress | None = None,
) -> GuestResult:
    """Run ``command`` as root in a guest booted from ``kernel``; return its exit code and logs.

    The guest sees kdamon's source checkout (when kdamon runs from one) and
    every ``share`` directory at their host paths, read-only copies made at
    boot.  It runs with the Python environment that runs kdamon here: the
    same venv (or user site) is active, and ``kdamon`` is a command.  Raises
    :class:`GuestCrash` when the guest kernel reports a BUG, WARNING, Oops or
    panic, or dies; :class:`GuestTimeout` after ``timeout``.
    ``qmp_client`` is called in a thread with QEMU's QMP socket path while
    the guest runs (``memory="1G,slots=4,maxmem=4G"`` makes room for hotplug).
    ``virtio_results=False`` leaves out the virtio-serial ports, as for a
    kernel without virtio console: the exit code then comes over the serial console.
    ``image`` boots a base made by ``kdamon.vm.docker.image_base`` (a container
    image's file system) instead of kdamon's Python base.
    """
    if not command:
        raise GuestError("no command to run in the guest: kdamon vm run [options] -- CMD ...")
    say = progress or (lambda _msg: None)
    shares = _shares(share)  # the user's paths first, before kernels are fetched or probed
    if modules is not None:
        require_dir(modules)
    if image is not None:
        require_file(image)
    cache = cache_dir()
    k = resolve_kernel(kernel, modules=modules, progress=say)
    base = image if image is not None else build_base(cache)
    accel = choose_accel(k.vmlinuz, cache)
    if accel == "tcg":
        say("kdamon: KVM cannot run guests here; using TCG (software emulation) with pti=on")
    cwd = _guest_cwd(shares)
    python = host_python() if image is None else None
    guest_env = _guest_env(k.name, env, python)
    run_dir = _new_run_dir(cache)
    module_files = _module_files(k.modules_dir, say) if k.modules_dir is not None else []
    (run_dir / "command").write_text(shlex.join(command) + "\n")
    archive = run_dir / "run.cpio"
    write_run_archive(
        archive,
        command,
        cwd=cwd,
        env=guest_env,
        shares=shares,
        modules=module_files,
        bytecode=cache / "pyc",
        python=str(python.executable) if python is not None else "python3",
    )
    initrd = run_dir / "initrd"
    with initrd.open("wb") as out:
        for part in (base, archive):
            with reading(part), part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    archive.unlink()
    spec = BootSpec(
        vmlinuz=k.vmlinuz,
        initrd=initrd,
        cmdline=_kernel_cmdline(accel, (*k.cmdline, *cmdline)),
        accel=accel,
        memory=memory,
        cpus=cpus,
        extra_args=tuple(qemu_args),
        qmp=qmp_client is not None,
        virtio_results=virtio_results,
    )
    try:
        return boot(spec, run_dir, timeout=timeout, output=output, qmp_client=qmp_client)
    finally:
        initrd.unlink(missing_ok=True)


def _kernel_cmdline(accel: str, extra: Sequence[str]) -> tuple[str, ...]:
    base = ["console=ttyS0", "rdinit=/init", "panic=-1", "loglevel=4", "printk.time=1", "random.trust_cpu=on"]
    if accel == "tcg":
        # Without PTI, QEMU's software TLB hides most re-accesses from DAMON.  On a busy host
        # the emulated timer can look broken to the boot-time check, which then panics.
        base += ["pti=on", "no_timer_check"]
    return tuple(base + list(extra))


def _shares(share: Sequence[Path]) -> list[Path]:
    shares = []
    checkout = source_checkout()
    if checkout is not None:
        shares.append(checkout)
    for s in share:
        require_dir(s)
        path = Path(s).resolve()
        if path not in shares:
            shares.append(path)
    return shares


def _guest_cwd(shares: Sequence[Path]) -> str:
    here = Path.cwd().resolve()
    for s in shares:
        if here == s or s in here.parents:
            return str(here)
    return "/root"


def _guest_env(kernel_name: str, extra: Mapping[str, str] | None, python: PythonEnv | None) -> dict[str, str]:
    """The command's environment; ``python`` is the host's Python environment on kdamon's base, None on an image's."""
    env = {
        "KDAMON_GUEST": "1",
        "KDAMON_GUEST_KERNEL": kernel_name,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONHASHSEED": "0",
        "TERM": "dumb",
        "LANG": "C.UTF-8",
        "HOME": "/root",
        "PATH": ":".join([*SYSTEM_PATH, GUEST_BIN]),
    }
    if python is not None:
        env.update(guest_variables(python))
    checkout = source_checkout()
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout)
    env.update(extra or {})
    return env


def _module_files(modules_dir: Path, say: Progress) -> list[Path]:
    """Guest modules (with their dependencies, in load order) that the kernel has as modules."""
    dep_file = modules_dir / "modules.dep"
    if not dep_file.is_file():
        say(f"kdamon: {dep_file} is missing (run depmod); loading no modules")
        return []
    deps: dict[str, list[str]] = {}
    for line in dep_file.read_text().splitlines():
        if ":" in line:
            mod, rest = line.split(":", 1)
            deps[mod] = rest.split()
    by_name = {Path(m).name.split(".ko")[0].replace("-", "_"): m for m in deps}
    ordered: list[str] = []

    def visit(mod: str) -> None:
        for d in deps.get(mod, []):
            visit(d)
        if mod not in ordered:
            ordered.append(mod)

    for name in GUEST_MODULES:
        if name in by_name:
            visit(by_name[name])
    files = [modules_dir / m for m in ordered]
    compressed = [f for f in files if f.suffix in (".xz", ".zst", ".gz")]
    if compressed:
        say(
            f"kdamon: {compressed[0].name} is compressed and busybox insmod may not load it; install modules uncompressed"
        )
    return files


def _new_run_dir(cache: Path) -> Path:
    runs = cache / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    old = sorted(runs.iterdir(), key=lambda p: p.stat().st_mtime)
    now = time.time()
    for stale in old[: max(0, len(old) - KEEP_RUNS + 1)]:
        if now - stale.stat().st_mtime > STALE_RUN_S:  # never a run still going on beside this one
            shutil.rmtree(stale, ignore_errors=True)
    run_dir = runs / time.strftime(f"%Y%m%d-%H%M%S-{os.getpid()}")
    suffix = 0
    while run_dir.exists():
        suffix += 1
        run_dir = runs / time.strftime(f"%Y%m%d-%H%M%S-{os.getpid()}-{suffix}")
    run_dir.mkdir()
    return run_dir
