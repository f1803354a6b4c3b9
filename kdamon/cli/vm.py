"""``kdamon vm``: run commands in a QEMU guest booted from a DAMON kernel."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from kdamon.cli import common
from kdamon.cli.arg_types import count, duration


def register(sub: Any) -> None:
    vm = sub.add_parser(
        "vm",
        help="boot a DAMON kernel under QEMU and run commands in it",
        description="Run commands in a QEMU guest booted from a DAMON kernel, make guest bases "
        "from container images, list the kernels kdamon knows.",
    )
    vm_sub = vm.add_subparsers(dest="vm_command", metavar="VM_COMMAND", title="commands")
    vm_sub.required = True

    run = vm_sub.add_parser(
        "run",
        help="run CMD as root in a guest, exit with its exit code",
        usage="kdamon vm run [options] -- CMD [ARGS...]",
        description="Boot KERNEL under QEMU (KVM when it works here, TCG otherwise) and run CMD in the guest as root. "
        "kdamon's checkout and --share directories are visible at their host paths.",
    )
    run.add_argument(
        "--kernel",
        default="debian-6.12",
        metavar="NAME|PATH",
        help="a kernel recipe (`kdamon vm kernels`) or a bzImage path (default: debian-6.12)",
    )
    run.add_argument(
        "--modules", type=Path, metavar="DIR", help="for a bzImage: the INSTALL_MOD_PATH tree of make modules_install"
    )
    run.add_argument("--memory", default="1G", metavar="SIZE", help="guest memory, QEMU syntax (default 1G)")
    run.add_argument("--cpus", type=count(), default=2, metavar="N", help="guest vCPUs (default 2)")
    run.add_argument(
        "--timeout",
        type=duration(),
        default="15m",
        metavar="DURATION",
        help="how long before QEMU is killed (default 15m; plain numbers are seconds)",
    )
    run.add_argument(
        "--share",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="host directory to make readable in the guest (repeatable)",
    )
    run.add_argument(
        "--cmdline",
        action="append",
        default=[],
        metavar="PARAM",
        help="extra kernel command line parameter (repeatable)",
    )
    run.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="environment for CMD (repeatable)")
    run.add_argument("--quiet", action="store_true", help="do not stream the guest console")
    run.add_argument(
        "--image",
        type=Path,
        metavar="PATH",
        help="boot this base (from `kdamon vm image`) instead of kdamon's Python base",
    )
    run.add_argument(
        "cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS...]", help="the command to run in the guest"
    )
    run.set_defaults(handler=_run)

    image = vm_sub.add_parser(
        "image",
        help="make a guest base from a container image (needs kdamon[docker])",
        description="Export a Docker image's file system (the container never runs) into a cached guest base "
        "and print its path, for `kdamon vm run --image PATH`. Python commands in such a guest use the image's python3.",
    )
    image.add_argument(
        "--from-docker", required=True, metavar="IMAGE", help="a local image (no registry is pulled from)"
    )
    image.set_defaults(handler=_image)

    kernels = vm_sub.add_parser(
        "kernels",
        help="list the kernel recipes of vm-images/",
        description="List the kernels `--kernel NAME` boots: the recipes of vm-images/.",
    )
    common.add_json_option(kernels, "one document: each recipe's name, kind and description")
    kernels.set_defaults(handler=_kernels)


def _run(args: argparse.Namespace) -> int:
    from kdamon.errors import ConfigError
    from kdamon.vm import run

    cmd = common.strip_dashes(list(args.cmd))
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError("--env", f"{item!r}: use KEY=VALUE")
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
        timeout=args.timeout / 1e6,
        share=args.share,
        modules=args.modules,
        cmdline=args.cmdline,
        env=env,
        output=None if args.quiet else out,
        image=args.image,
        progress=say,
    )
    if result.channel == "console":
        say("kdamon: the guest had no virtio console; its exit code came over the serial console")
    return result.exit_code


def _image(args: argparse.Namespace) -> int:
    from kdamon.vm import cache_dir
    from kdamon.vm.docker import image_base

    path = image_base(args.from_docker, cache_dir(), progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(path)
    return 0


def _kernels(args: argparse.Namespace) -> int:
    from kdamon.vm import list_recipes

    recipes = list_recipes()
    if args.json:
        common.write_json([{"name": r.name, "kind": r.kind, "description": r.description} for r in recipes])
        return 0
    for recipe in recipes:
        print(f"{recipe.name:20} {recipe.description}")
    return 0
