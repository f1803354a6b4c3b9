"""``kdamon module stat|reclaim|lru_sort``: the kernel's own DAMON modules.

Enabling or disabling a module is only ever done here, on explicit request.
"""

from __future__ import annotations

import argparse
from typing import Any

from kdamon.cli import common


def register(sub: Any) -> None:
    module = sub.add_parser(
        "module",
        help="show or drive the kernel's DAMON_STAT, DAMON_RECLAIM and DAMON_LRU_SORT modules",
        usage="kdamon module {stat,reclaim,lru_sort} [status [--json] | enable | disable | set KEY=VALUE ...]",
        description="Drive a DAMON module through /sys/module/damon_<name>/parameters. status (default) "
        "shows every parameter; set validates and writes parameters, then commits them with "
        "commit_inputs=Y when the module is enabled; enable and disable turn it on or off. "
        "Values take units: min_age=120s, quota_sz=128MiB, wmarks_high=50%.",
    )
    module.add_argument(
        "module",
        choices=("stat", "reclaim", "lru_sort"),
        help="the module: DAMON_STAT, DAMON_RECLAIM or DAMON_LRU_SORT",
    )
    module.add_argument(
        "action",
        nargs="?",
        default="status",
        choices=("status", "enable", "disable", "set"),
        help="status (the default): show every parameter; enable or disable the module; set parameters",
    )
    module.add_argument(
        "assignments", nargs="*", metavar="KEY=VALUE", help="with set: a parameter and its value (units accepted)"
    )
    common.add_json_option(
        module, "one document of every parameter, its value and whether it is read-only (with status only)"
    )
    module.set_defaults(handler=_module)


def _show(params: Any, as_json: bool) -> None:
    parameters = params.read()
    if as_json:
        common.write_json(
            {
                "module": params.name,
                "parameters": {p.name: {"value": p.value, "read_only": p.kind == "read-only"} for p in parameters},
            }
        )
        return
    for p in parameters:
        marker = "  (read-only)" if p.kind == "read-only" else ""
        print(f"{p.name:36} {p.value}{marker}")


def _module(args: argparse.Namespace) -> int:
    from kdamon.backend.module_params import ModuleParams
    from kdamon.errors import ConfigError

    params = ModuleParams(common.make_host(), args.module)
    if args.assignments and args.action != "set":
        raise ConfigError("KEY=VALUE", f"only `set` takes KEY=VALUE items, not {args.action}")
    if args.json and args.action != "status":
        raise ConfigError("--json", f"--json goes with status, which reports; {args.action} reports nothing")
    if args.action == "status":
        _show(params, args.json)
    elif args.action in ("enable", "disable"):
        params.set_enabled(args.action == "enable")
        common.say(f"{params.name} {args.action}d")
    else:
        if not args.assignments:
            raise ConfigError("KEY=VALUE", "set needs at least one KEY=VALUE item")
        values = params.validate(args.assignments)
        committed = params.write(values)
        written = ", ".join(f"{name}={text}" for name, text in values)
        common.say(
            f"{params.name}: wrote {written}; "
            + (
                "committed to the running module (commit_inputs=Y)"
                if committed
                else "the module uses them when it is next enabled"
            )
        )
    return 0
