"""The ``glassjax`` command: a thin dispatcher over ``glassjax.cli.<name>`` modules.

Each command module defines ``add_parser(subparsers)``, which registers its sub-command and
sets ``run(args) -> int``. Bad input (a ValueError or TypeError raised by glassjax's own checks,
a missing or unreadable file) becomes one line on stderr and exit status 2, with no traceback;
the same exception raised inside another library is a bug and keeps its traceback. Path
arguments are checked before any work (``common.check_path_arguments``). SIGTERM unwinds like
SIGINT: temporary files are removed and the exit status is 143.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import signal
import sys
import threading
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
COMMANDS = ("datasets", "systems", "fit", "evaluate", "train_alexnet", "train_csg", "equivariance", "compare", "bench",
            "probe_input", "explain", "influence")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glassjax",
        description="Glass-box CNNs in JAX: fit transparent group-invariant classifiers and compare them with AlexNet.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"glassjax.cli.{name}").add_parser(subparsers)
    return parser


def _raised_here(err: BaseException) -> bool:
    """Whether ``err`` was raised by glassjax's own code: a deliberate check of the user's input.
    The same exception types raised inside jax, numpy or another library are bugs, not input errors."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)


class Terminated(BaseException):
    """SIGTERM, raised where the command is, so that every ``finally`` runs (temporary files removed)."""


def _terminate(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM raises ``Terminated`` in the main thread for the duration, like SIGINT's KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = _run(args)
    except BaseException:
        from glassjax.cli.common import crash_processes

        crash_processes()  # several processes: the traceback, then no wait at exit for the others
        raise
    from glassjax.cli.common import end_processes

    return end_processes(code)


def _run(args: argparse.Namespace) -> int:
    try:
        with _sigterm_unwinds():
            from glassjax.cli.common import check_path_arguments

            check_path_arguments(args)
            return int(args.run(args) or 0)
    except (ValueError, TypeError, OSError) as err:
        if not isinstance(err, OSError) and not _raised_here(err):
            raise
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"glassjax {args.command}: error: {message}", file=sys.stderr)
        return 2
    except Exception as err:  # several processes: another one failed, its collective with it
        from glassjax.cli.common import lost_process

        message = lost_process(err)
        if message is None:
            raise
        print(f"glassjax {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"glassjax {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"glassjax {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM


if __name__ == "__main__":
    sys.exit(main())
