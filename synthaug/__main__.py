"""``python -m synthaug``: the same command line as ``synthaug``."""

import sys

from synthaug.cli import main

if __name__ == "__main__":
    sys.exit(main())
