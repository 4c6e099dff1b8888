"""The ``synthaug`` command line: ``demo``, ``fit``, ``sample``, ``compress``, ``evaluate``, ``benchmark`` and ``recommend``.

Results (tables, where files went) go to stdout; progress and the per-run lines of a benchmark go
to stderr; an error is one line on stderr and exit status 2. Building the parser imports neither
torch nor Lightning (each command imports what it needs when it runs), so ``--help`` and
``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import warnings
from collections.abc import Sequence

from synthaug._version import __version__
from synthaug.cli import demo, generate, measure, recommend
from synthaug.cli.common import BUILTIN_DATA, load_data, parse_options, train_test
from synthaug.cli.parsing import DefaultsFormatter, Parser

__all__ = ["BUILTIN_DATA", "build_parser", "load_data", "main", "parse_options", "train_test"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="synthaug",
        description="Train class-conditional generators on labelled images and sample extra training data.",
        epilog="Every command answers --help; docs/troubleshooting.md lists each error message and its fix.",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument("--version", action="version", version=f"synthaug {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    demo.add_parser(sub)
    generate.add_parsers(sub)
    measure.add_parsers(sub)
    recommend.add_parser(sub)
    return parser


#: the library's advice names Python arguments; on the command line the flag is the fix
_FLAGS = [
    (re.compile(r"\bckpt_path\b"), "--resume"),
    (re.compile(r"\bpass root= \(or set"), "give --root FOLDER (or set"),
    (re.compile(r"\bchannels=(\d)"), r"--channels \1"),
    (re.compile(r"\bresize=\(H, W\)"), "--resize SIZE"),
    (re.compile(r"\bpass data="), "give --data"),
]


def _first_line(err: BaseException) -> str:
    """The error's first line, with the library's Python arguments replaced by the command line's flags."""
    text = (str(err).strip() or type(err).__name__).splitlines()[0]
    if isinstance(err, KeyError) and text[:1] in "'\"":  # KeyError quotes its message
        text = text[1:-1]
    for pattern, flag in _FLAGS:
        text = pattern.sub(flag, text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (2 and one line on stderr for any bad input)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        if exit_.code in (0, None):  # --help, --version
            raise
        return 2  # the parser has printed its one-line error
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("synthaug")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO if args.command == "benchmark" else logging.WARNING)  # a benchmark's per-run lines
    try:
        with warnings.catch_warnings():
            # A deprecated flag's FutureWarning is for the person at the terminal: show it, in one line (any warning is one line).
            warnings.simplefilter("always", FutureWarning)
            warnings.showwarning = _one_line_warning
            return args.func(args)
    except (ValueError, TypeError, OSError) as err:  # BankError, CorruptSaveError, UnsafeCheckpointError are ValueErrors
        print(f"synthaug {args.command}: error: {_first_line(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        if type(err).__name__ != "MisconfigurationException":  # Lightning's, for a Trainer option it cannot honour
            raise
        print(f"synthaug {args.command}: error: {_first_line(err)}", file=sys.stderr)
        return 2
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, *args: object) -> None:
    print(f"synthaug: warning: {str(message).strip().splitlines()[0]}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
