"""``glassjax datasets``: list what can be loaded."""
from __future__ import annotations

import argparse

from glassjax.cli.common import print_json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("datasets", help="list the data sets that can be loaded",
                                   description="List the bundled data sets and any prepared TFDS data sets; with --path, "
                                               "the user's data sets found there instead (image folders, .npz, Hugging "
                                               "Face save_to_disk folders, parquet), each usable as --dataset PATH.")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory to look in (default: $TFDS_DATA_DIR)")
    parser.add_argument("--path", action="append", default=None, metavar="PATH",
                        help="a data set, or a folder holding some, to describe (may be repeated)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from glassjax import data

    if args.path:
        names = {}
        for path in args.path:
            names.update(data.user.find(path))
    else:
        names = data.available(args.data_dir)
    if args.json:
        print_json({"datasets": names})
    else:
        width = max(len(n) for n in names)
        for name, description in names.items():
            print(f"{name.ljust(width)}  {description}")
    return 0
