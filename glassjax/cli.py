"""The ``glassjax`` command: a thin dispatcher over ``glassjax.commands.<name>`` modules.

Each command module defines ``add_parser(subparsers)``, which registers its sub-command and
sets ``run(args) -> int``. Bad input (ValueError, TypeError, a missing file) becomes one line
on stderr and exit status 2, with no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = ("datasets", "fit", "evaluate", "train_alexnet", "equivariance", "compare", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glassjax",
        description="Glass-box CNNs in JAX: fit transparent group-invariant classifiers and compare them with AlexNet.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"glassjax.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"glassjax {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"glassjax {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
