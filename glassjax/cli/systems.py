"""``glassjax systems``: list every registered system with a one-line description."""
from __future__ import annotations

import argparse

from glassjax.cli.common import print_json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("systems", help="list the registered systems",
                                   description="List every registered system (what `fit --system`, `compare --systems` "
                                               "and `equivariance --systems` accept) with a one-line description.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from glassjax import systems

    listed = {name: systems.get(name) for name in systems.names()}
    if args.json:
        print_json({"systems": {name: {"title": s.title, "description": s.description,
                                       "config": dataclasses.asdict(s.config)} for name, s in listed.items()}})
    else:
        width = max(len(name) for name in listed)
        for name, system in listed.items():
            print(f"{name.ljust(width)}  {system.description}")
    return 0
