"""``kdamon vm``: run commands in a QEMU guest booted from a DAMON kernel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    vm = sub.add_parser("vm", help="boot a DAMON kernel under QEMU and run commands in it")
    vm_sub = vm.add_subparsers(dest="vm_command", metavar="VM_COMMAND")
    vm_sub.required = True

    run = vm_sub.add_parser(
        "run",
        help="run CMD as root in a guest, exit with its exit code",
        description="Boot KERNEL under QEMU (KVM when it works here, TCG otherwise) and run CMD in the guest as root. "
        "kdamon's checkout and --share directories are visible at their host paths.",
    )
    run.add_argument("--kernel", default="debian-6.12", help="a vm-images recipe name or a bzImage path (default: debian-6.12)")
    run.add_argument("--modules", type=Path, help="for a bzImage: the INSTALL_MOD_PATH tree of make modules_install")
    run.add_argument("--memory", default="1G", help="guest memory, QEMU syntax (default 1G)")
    run.add_argument("--cpus", type=int, default=2, help="guest vCPUs (default 2)")
    run.add_argument("--timeout", type=float, default=900.0, help="seconds before QEMU is killed (default 900)")
    run.add_argument("--share", type=Path, action="append", default=[], help="host directory to make readable in the guest (repeatable)")
    run.add_argument("--cmdline", action="append", default=[], help="extra kernel command line parameter (repeatable)")
    run.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment for CMD (repeatable)")
    run.add_argument("--quiet", action="store_true", help="do not stream the guest console")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    run.set_defaults(handler=_run)

    kernels = vm_sub.add_parser("kernels", help="list the kernel recipes of vm-images/")
    kernels.set_defaults(handler=_kernels)


def _run(args: argparse.Namespace) -> int:
    from kdamon.errors import GuestError
    from kdamon.vm import run

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise GuestError(f"--env {item!r}: use KEY=VALUE")
        env[key] = value

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def out(line: str) -> None:
        sys.stdout.write(line)
        sys.stdout.flush()

    result = run(
        cmd,
        kernel=args.kernel,
        memory=args.memory,
        cpus=args.cpus,
        timeout=args.timeout,
        share=args.share,
        modules=args.modules,
        cmdline=args.cmdline,
        env=env,
        output=None if args.quiet else out,
        progress=say,
    )
    if result.channel == "console":
        say("kdamon: the guest had no virtio console; its exit code came over the serial console")
    return result.exit_code


def _kernels(args: argparse.Namespace) -> int:
    from kdamon.vm import list_recipes

    for recipe in list_recipes():
        print(f"{recipe.name:20} {recipe.description}")
    return 0
