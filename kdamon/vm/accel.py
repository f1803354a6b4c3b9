"""Choose KVM or TCG by probing, not by assuming.

Some hosts have a ``/dev/kvm`` that accepts VM creation but cannot run a normal
guest (a paravirtual variant that fails to set MSRs or to emulate an
instruction).  The probe boots the real kernel under KVM with a tiny init that
powers off at once; the answer is cached per host kernel and QEMU binary.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from kdamon.errors import GuestError
from kdamon.vm.cpio import CpioWriter
from kdamon.vm.initramfs import busybox_path

PROBE_TIMEOUT_S = 30.0
_PROBE_MARK = "kdamon-kvm-probe-ok"


def choose_accel(vmlinuz: Path, cache: Path) -> str:
    """``"kvm"`` when KVM runs a guest here, else ``"tcg"``; ``KDAMON_ACCEL`` overrides."""
    forced = os.environ.get("KDAMON_ACCEL")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise GuestError(f"KDAMON_ACCEL={forced!r}: use 'kvm' or 'tcg'")
        return forced
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    from kdamon.vm.qemu import qemu_binary

    qemu = qemu_binary()
    key = f"{platform.release()} {qemu} {int(Path(qemu).stat().st_mtime)}"
    cache_file = cache / "accel.json"
    try:
        known = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = "kvm" if _kvm_boots(qemu, vmlinuz) else "tcg"
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(known, indent=1))
    return str(known[key])


def _kvm_boots(qemu: str, vmlinuz: Path) -> bool:
    with tempfile.TemporaryDirectory(prefix="kdamon-kvm-") as tmp:
        initrd = Path(tmp) / "probe.cpio"
        with initrd.open("wb") as out:
            writer = CpioWriter(out)
            writer.copy(busybox_path(), "/bin/busybox")
            writer.char_device("/dev/console", 5, 1)
            writer.file(
                "/init",
                f"#!/bin/busybox sh\n/bin/busybox echo {_PROBE_MARK}\n/bin/busybox poweroff -f\n".encode(),
                mode=0o755,
            )
            writer.close()
        cmd = [
            qemu, "-accel", "kvm", "-cpu", "host", "-m", "256", "-nodefaults", "-display", "none", "-no-reboot",
            "-kernel", str(vmlinuz), "-initrd", str(initrd), "-append", "console=ttyS0 panic=-1 loglevel=3",
            "-serial", "stdio",
        ]  # fmt: skip
        try:
            done = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return False
        return _PROBE_MARK in done.stdout.decode(errors="replace")
