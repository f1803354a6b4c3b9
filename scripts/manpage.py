"""Build kdamon's man page, kdamon(1), from the parser that parses kdamon's command line.

    python3 scripts/manpage.py [-o kdamon.1]      # then: man ./kdamon.1

Every command with its options, the --scheme syntax, the command-line grammar
and the exit codes, all from ``kdamon.cli.main.build_parser()`` (through
argparse-manpage: ``pip install 'kdamon[man]'``), so the page says what the
command line accepts.  A build step for packagers: the page is not installed
with the wheel.  ``SOURCE_DATE_EPOCH`` fixes its date.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _roff(text: str) -> str:
    """``text`` as lines kept as written (no filling), escaped for roff (leading dots: ``_protect``)."""
    lines = [line.replace("\\", "\\\\").replace("-", "\\-") for line in text.splitlines()]
    return "\n".join([".nf", *lines, ".fi"])


def _protect(roff: str) -> str:
    """Lines of text that roff would take for requests (argparse-manpage leaves a help wrapped
    onto ``...`` as it is) made text, with ``\\&``; requests (``.TH``, ``.RS 7``) are left."""
    return "\n".join(
        "\\&" + line if line.startswith("'") or re.match(r"\.(?![A-Za-z])", line) else line for line in roff.split("\n")
    )


def manpage() -> str:
    """The man page, as roff."""
    sys.path.insert(0, str(ROOT))  # this checkout's kdamon
    from argparse_manpage.manpage import Manpage

    from kdamon import __version__
    from kdamon.cli.kdamond_options import SCHEME_HELP
    from kdamon.cli.main import build_parser

    page = Manpage(build_parser(), format="single-commands-section")
    page.description = "drive Linux DAMON, or monitor with kdamon's own engine"
    page.source = f"kdamon {__version__}"
    page.manual = "kdamon manual"
    page.add_section("scheme syntax", ">", _roff(SCHEME_HELP))
    return _protect(str(page))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, help="write the page here (default: standard output)")
    args = parser.parse_args(argv)
    text = manpage()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
