"""The ``synthaug`` command line: ``demo``, ``fit``, ``sample``, ``compress``, ``evaluate`` and ``benchmark``.

Results (tables, where files went) go to stdout; progress and the per-run lines of a benchmark go
to stderr; an error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from synthaug._version import __version__
from synthaug.cli import demo, generate, measure
from synthaug.cli.common import BUILTIN_DATA, load_data, parse_options, train_test

__all__ = ["BUILTIN_DATA", "build_parser", "load_data", "main", "parse_options", "train_test"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthaug",
        description="Train class-conditional generators on labelled images and sample extra training data.",
    )
    parser.add_argument("--version", action="version", version=f"synthaug {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parser(sub)
    generate.add_parsers(sub)
    measure.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("synthaug")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO if args.command == "benchmark" else logging.WARNING)  # a benchmark's per-run lines
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as err:  # BankError, CorruptSaveError, UnsafeCheckpointError are ValueErrors
        print(f"synthaug {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


if __name__ == "__main__":
    sys.exit(main())
