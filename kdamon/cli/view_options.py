"""The options that choose and filter what an access view shows (``show``, ``top``, ``report access``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kdamon.model.access import Temperature
    from kdamon.report.access import RegionFilter

__all__ = ["add_temperature_options", "add_view_options", "region_filter_of", "temperature_of"]


def add_view_options(parser: argparse.ArgumentParser) -> None:
    from kdamon.report.access import SORTS

    group = parser.add_argument_group("what to show")
    group.add_argument("--address-range", metavar="START-END", help="only these addresses (hex or decimal)")
    group.add_argument(
        "--access",
        metavar="MIN-MAX",
        help="only regions accessed this often: counts per aggregation or shares of the maximum, e.g. 1-max, 0%%-10%%",
    )
    group.add_argument(
        "--age", metavar="MIN-MAX", help="only regions this old, e.g. 10s-max (plain numbers are seconds)"
    )
    group.add_argument("--min-size", metavar="SIZE", help="only regions at least this big, e.g. 2M")
    group.add_argument("--sort", choices=SORTS, default="address", help="region order (default address)")
    add_temperature_options(group)


def add_temperature_options(group: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--hot`` and ``--cold-idle``: what counts as hot and cold (see ``kdamon.model.access``)."""
    group.add_argument(
        "--hot",
        "--hot-percent",
        dest="hot",
        default="50%",
        metavar="PERCENT",
        help="hot: accessed in at least this share of the samples (default 50%%)",
    )
    from kdamon.cli.arg_types import duration

    group.add_argument(
        "--cold-idle",
        type=duration(zero=True),
        default="1s",
        metavar="DURATION",
        help="cold: not accessed for at least this long (default 1s)",
    )


def temperature_of(args: argparse.Namespace) -> Temperature:
    from kdamon.model import parse_ratio_permil
    from kdamon.model.access import Temperature

    hot = args.hot if args.hot.endswith("%") else args.hot + "%"
    return Temperature(hot_permil=parse_ratio_permil(hot, "--hot"), cold_idle_us=args.cold_idle)


def region_filter_of(args: argparse.Namespace) -> RegionFilter:
    from kdamon.report.access import RegionFilter

    return RegionFilter.parse(address=args.address_range, access=args.access, age=args.age, min_size=args.min_size)
