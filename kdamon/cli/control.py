"""``kdamon start``, ``stop`` and ``tune``: run kdamonds on kernel DAMON or kdamon's engine."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kdamon.cli import common
from kdamon.cli.kdamond_options import add_kdamond_options, build_kdamond, kdamond_options_given

if TYPE_CHECKING:
    from kdamon.model import Config


_FORMAT_HELP = "CONFIG's layout: kdamon's, or damo's kdamonds JSON (default auto: recognised from its content)"


def register(sub: Any) -> None:
    start = sub.add_parser(
        "start",
        help="start monitoring (and DAMOS schemes) on kernel DAMON or kdamon's engine",
        usage="kdamon start [CONFIG] [options] [-- CMD [ARGS...]]",
        description="Start one kdamond per kdamond of CONFIG, or one described by the options, monitoring "
        "--pid or a command started with -- CMD. Prints the started kdamonds' ids, one a line "
        "(on standard error: which backend runs each, and why).",
    )
    start.add_argument("--format", choices=("auto", "kdamon", "damo"), default="auto", help=_FORMAT_HELP)
    common.add_backend_option(start)
    common.add_json_option(
        start,
        "one object a line per started kdamond (id, backend, pid, why that backend, "
        "the pid of -- CMD) instead of its id",
    )
    add_kdamond_options(start)
    start.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="[CONFIG] [-- CMD [ARGS...]]",
        help="CONFIG: a configuration file (kdamon's JSON, YAML or TOML, or damo's kdamonds "
        "JSON), instead of the monitoring options; -- CMD: a command to start and monitor",
    )
    start.set_defaults(handler=_start, parser=start)

    stop = sub.add_parser(
        "stop",
        help="stop kdamonds kdamon started (all of them without ID)",
        description="Stop kdamond ID, or every kdamond kdamon started. kdamon never stops a kdamond it did not start.",
    )
    stop.add_argument(
        "id",
        nargs="?",
        metavar="ID",
        help="a kdamond id from `kdamon status` (sysfs:0, engine:1, ...); default: every kdamond kdamon started",
    )
    stop.set_defaults(handler=_stop)

    tune = sub.add_parser(
        "tune",
        help="commit new parameters to a running kdamond kdamon started",
        description="Commit CONFIG (one kdamond), or the current configuration changed by "
        "the options, to the running kdamond ID. --scheme replaces every "
        "scheme. The engine restarts its monitor with the new parameters.",
    )
    tune.add_argument("id", metavar="ID", help="a kdamond id from `kdamon status`")
    tune.add_argument(
        "config",
        nargs="?",
        type=Path,
        metavar="CONFIG",
        help="a configuration file with one kdamond, instead of the options",
    )
    tune.add_argument("--format", choices=("auto", "kdamon", "damo"), default="auto", help=_FORMAT_HELP)
    tune.add_argument(
        "--goals-only",
        action="store_true",
        help="commit only the schemes' quota goals (e.g. a user_input goal's current value): "
        "the kernel's commit_schemes_quota_goals (6.8+), which leaves monitoring and "
        "regions undisturbed; give one --scheme per running scheme",
    )
    add_kdamond_options(tune, running=True)
    tune.set_defaults(handler=_tune)


def load_any_config(path: Path, fmt: str) -> Config:
    """kdamon's configuration file, or damo's kdamonds JSON (``fmt`` auto, kdamon or damo)."""
    from kdamon.backend.damo_config import config_from_damo, looks_like_damo
    from kdamon.errors import ConfigError
    from kdamon.model import load_config_file

    if fmt == "kdamon" or (fmt == "auto" and path.suffix.lower() != ".json"):
        return load_config_file(path)
    import json

    from kdamon.userfiles import reading

    with reading(path):
        data = path.read_bytes()
    try:
        document = json.loads(data)
    except ValueError as error:
        raise ConfigError("<document>", f"{path} is not valid JSON: {error}") from None
    if fmt == "damo" or looks_like_damo(document):
        return config_from_damo(document)
    return load_config_file(path)


def _split_rest(args: argparse.Namespace) -> tuple[Path | None, list[str]]:
    """``[CONFIG] [options] [-- CMD...]`` from the remainder (options after CONFIG are parsed here)."""
    rest: list[str] = list(args.rest)
    if not rest or rest[0] == "--":
        return None, rest[1:]
    config = Path(rest[0])
    after = rest[1:]
    cmd: list[str] = []
    if "--" in after:
        cmd = after[after.index("--") + 1 :]
        after = after[: after.index("--")]
    args.parser.parse_args(after, namespace=args)
    return config, cmd


def _start(args: argparse.Namespace) -> int:
    import json

    from kdamon.backend.choose import choose_backend
    from kdamon.backend.process import launch, terminate
    from kdamon.backend.types import MonitorRequest
    from kdamon.errors import ConfigError

    config_path, cmd = _split_rest(args)
    host = common.make_host()
    child = None
    if config_path is not None:
        if cmd or kdamond_options_given(args):
            raise ConfigError(
                "CONFIG",
                "give either a configuration file or the monitoring options "
                f"(and -- CMD), not both: {', '.join(kdamond_options_given(args)) or '-- CMD'}",
            )
        kdamonds = load_any_config(config_path, args.format).kdamonds
        if not kdamonds:
            raise ConfigError("kdamonds", f"{config_path} describes no kdamond")
    else:
        if cmd and args.pid:
            raise ConfigError("--pid", "give either --pid or -- CMD, not both")
        if cmd:
            child = launch(cmd, detach=True)
        kdamonds = (build_kdamond(args, pids=(child.pid,) if child else ()),)
    try:
        for kdamond in kdamonds:
            request = MonitorRequest(kdamond, engine_stat_only=args.engine_stat_only)
            backend, reason = choose_backend(request, args.backend, host=host)
            kid, pid = backend.start(kdamond)
            where = f" (pid {pid})" if pid else ""
            common.say(f"started {kid}{where} on {reason}")
            if args.json:
                print(
                    json.dumps(
                        {
                            "id": str(kid),
                            "backend": kid.backend,
                            "pid": pid or None,
                            "reason": reason,
                            "command_pid": child.pid if child is not None else None,
                        }
                    ),
                    flush=True,
                )
            else:
                print(kid, flush=True)
    except BaseException:
        if child is not None:
            terminate(child.pid)
        raise
    if child is not None:
        common.say(f"monitoring {cmd[0]} (pid {child.pid})")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from kdamon.backend.control import backend_of, owned_ids
    from kdamon.backend.types import KdamondId

    host = common.make_host()
    ids = [KdamondId.parse(args.id)] if args.id else owned_ids(host)
    if not ids:
        common.say("no kdamond started by kdamon is left")
    for kid in ids:
        backend_of(kid, host).stop(kid)
        common.say(f"stopped {kid}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    from kdamon.backend.control import backend_of
    from kdamon.backend.types import KdamondId
    from kdamon.errors import ConfigError

    host = common.make_host()
    kid = KdamondId.parse(args.id)
    backend = backend_of(kid, host, engine_stat_only=args.engine_stat_only)
    if args.config is not None:
        if kdamond_options_given(args):
            raise ConfigError("CONFIG", "give either a configuration file or options, not both")
        kdamonds = load_any_config(args.config, args.format).kdamonds
        if len(kdamonds) != 1:
            raise ConfigError(
                "kdamonds",
                f"{args.config} must describe exactly one kdamond to commit to {kid}, it has {len(kdamonds)}",
            )
        kdamond = kdamonds[0]
    elif kdamond_options_given(args):
        kdamond = build_kdamond(args, base=backend.configuration(kid))
    else:
        raise ConfigError(
            "options", "nothing to tune: give a configuration file or options such as --aggr 200ms or --scheme ..."
        )
    if args.goals_only:
        from kdamon.backend.sysfs_backend import SysfsBackend

        if not isinstance(backend, SysfsBackend):
            raise ConfigError(
                "--goals-only",
                f"{kid}: only kernel DAMON's sysfs interface commits quota goals alone; tune it without --goals-only",
            )
        backend.tune_goals(kid, kdamond)
        common.say(f"committed the quota goals to {kid}")
        return 0
    backend.tune(kid, kdamond)
    common.say(f"committed the new parameters to {kid}")
    return 0
