"""Boot a kernel under QEMU, stream its console, and carry the guest's result out.

The command's exit code and the guest's kernel log leave the guest through
virtio-serial ports backed by host files, not by parsing the console.  Where
the kernel has no virtio console driver, the guest falls back to a marker line
on the serial console and the result says so.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import attrs

from kdamon.errors import GuestCrash, GuestError, GuestTimeout
from kdamon.vm.initramfs import DMESG_PORT, RESULT_PORT

LineSink = Callable[[str], None]

# Kernel lines (with their printk timestamp) that fail a run.
_KERNEL_LINE = re.compile(r"^\s*(?:<\d+>)?\[\s*\d+\.\d+\]\s?(.*)$")
_FAILURE = re.compile(r"(\bBUG:|\bWARNING:|\bOops\b|Kernel panic|general protection fault)")
_KVM_BROKEN = re.compile(r"KVM internal error|failed to set MSR|emulation failure|Could not access KVM kernel module")
_CONSOLE_EXIT = re.compile(r"^KDAMON-GUEST-EXIT (\d+)\s*$")


@attrs.frozen
class BootSpec:
    """Everything QEMU needs for one boot."""

    vmlinuz: Path
    initrd: Path
    cmdline: tuple[str, ...]
    accel: str
    memory: str = "1G"
    cpus: int = 2
    extra_args: tuple[str, ...] = ()
    qmp: bool = False
    virtio_results: bool = True


@attrs.frozen
class GuestResult:
    exit_code: int
    console_log: Path
    dmesg: str
    channel: str  # "virtio" or "console"
    accel: str
    elapsed_s: float
    first_output_s: float | None


def kernel_failures(text: str) -> list[str]:
    """Kernel BUG/WARNING/Oops/panic lines in console or dmesg text."""
    found = []
    for raw in text.splitlines():
        m = _KERNEL_LINE.match(raw)
        if m and _FAILURE.search(m.group(1)):
            found.append(m.group(1).strip())
    return found


def qemu_binary() -> str:
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        raise GuestError(
            "qemu-system-x86_64 is not installed: apt-get install qemu-system-x86 (or run scripts/install-test-deps.sh)"
        )
    return path


def qemu_command(spec: BootSpec, run_dir: Path) -> list[str]:
    # TCG runs every vCPU on one host thread: with one thread per vCPU (QEMU 7.2), a vCPU can
    # run stale kernel text after another patched it (enabling a trace event) and oops on int3.
    accel = ["-accel", "kvm", "-cpu", "host"] if spec.accel == "kvm" else ["-accel", "tcg,thread=single", "-cpu", "max"]
    return [
        qemu_binary(),
        *accel,
        "-machine", "q35",
        "-m", spec.memory,
        "-smp", str(spec.cpus),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", str(spec.vmlinuz),
        "-initrd", str(spec.initrd),
        "-append", " ".join(spec.cmdline),
        "-serial", "stdio",
        *(_virtio_ports(run_dir) if spec.virtio_results else []),
        *(["-qmp", f"unix:{run_dir / 'qmp.sock'},server=on,wait=off"] if spec.qmp else []),
        *spec.extra_args,
    ]  # fmt: skip


def _virtio_ports(run_dir: Path) -> list[str]:
    return [
        "-device", "virtio-serial-pci,id=vser0",
        "-chardev", f"file,id=kdres,path={run_dir / 'result'}",
        "-device", f"virtserialport,bus=vser0.0,chardev=kdres,name={RESULT_PORT}",
        "-chardev", f"file,id=kdlog,path={run_dir / 'dmesg'}",
        "-device", f"virtserialport,bus=vser0.0,chardev=kdlog,name={DMESG_PORT}",
    ]  # fmt: skip


def boot(
    spec: BootSpec,
    run_dir: Path,
    *,
    timeout: float,
    output: LineSink | None = None,
    qmp_client: Callable[[Path], None] | None = None,
) -> GuestResult:
    """Boot, stream the console to ``output`` and ``run_dir/console.log``, and collect the result.

    With ``spec.qmp``, ``qmp_client`` runs in a thread with the path of QEMU's
    QMP socket while the guest runs (e.g. to hot-plug memory); its exception,
    if any, is raised after the guest ends.
    """
    for name in ("result", "dmesg"):
        (run_dir / name).write_bytes(b"")
    log_path = run_dir / "console.log"
    cmd = qemu_command(spec, run_dir)
    (run_dir / "qemu-cmdline").write_text(" ".join(cmd) + "\n")
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    watcher = _ConsoleWatcher(proc, log_path, output, start)
    watcher.start()
    client = _QmpThread(qmp_client, run_dir / "qmp.sock") if spec.qmp and qmp_client is not None else None
    if client is not None:
        client.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill(proc)
        watcher.join()
        if client is not None:
            client.join()
    elapsed = time.monotonic() - start
    console = log_path.read_text(errors="replace")
    dmesg = (run_dir / "dmesg").read_text(errors="replace")
    if watcher.kvm_broken:
        raise GuestError(f"KVM cannot run this guest ({watcher.kvm_broken}); use TCG (KDAMON_ACCEL=tcg)")
    failures = kernel_failures(console) + kernel_failures(dmesg)
    if timed_out:
        raise GuestTimeout(f"the guest did not finish within {timeout:g} s; QEMU was killed", log_path=str(log_path))
    if failures:
        raise GuestCrash(f"the guest kernel reported: {failures[0]}", log_path=str(log_path))
    if client is not None and client.error is not None:
        raise GuestError(f"the QMP client failed: {client.error}") from client.error
    exit_code, channel = _exit_code(run_dir / "result", console)
    if exit_code is None:
        tail = " / ".join(console.strip().splitlines()[-3:])
        raise GuestCrash(
            f"the guest died before reporting an exit code (QEMU exit {proc.returncode}; last console lines: {tail})",
            log_path=str(log_path),
        )
    return GuestResult(
        exit_code=exit_code,
        console_log=log_path,
        dmesg=dmesg,
        channel=channel,
        accel=spec.accel,
        elapsed_s=elapsed,
        first_output_s=watcher.first_output_s,
    )


def _exit_code(result: Path, console: str) -> tuple[int | None, str]:
    m = re.search(r"^exit (\d+)$", result.read_text(errors="replace"), re.M)
    if m:
        return int(m.group(1)), "virtio"
    for line in console.splitlines():
        cm = _CONSOLE_EXIT.match(line.strip("\r"))
        if cm:
            return int(cm.group(1)), "console"
    return None, "none"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


class _ConsoleWatcher(threading.Thread):
    """Reads QEMU's console, logs it, streams it, and notices a KVM that cannot run the guest."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path, output: LineSink | None, start: float) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.log_path = log_path
        self.output = output
        self.start_time = start
        self.first_output_s: float | None = None
        self.kvm_broken: str | None = None

    def run(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("w") as log:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").replace("\r", "")
                log.write(line)
                log.flush()
                if self.first_output_s is None and not _KERNEL_LINE.match(line) and line.strip():
                    self.first_output_s = time.monotonic() - self.start_time
                if _KVM_BROKEN.search(line) and self.kvm_broken is None:
                    self.kvm_broken = line.strip()
                    _kill(self.proc)
                if self.output is not None:
                    self.output(line)


class _QmpThread(threading.Thread):
    def __init__(self, client: Callable[[Path], None], socket: Path) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.socket = socket
        self.error: BaseException | None = None

    def run(self) -> None:
        deadline = time.monotonic() + 30
        while not self.socket.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            self.client(self.socket)
        except BaseException as err:  # reported to the caller after the guest ends
            self.error = err
