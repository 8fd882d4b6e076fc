"""Arguments and output shared by the sub-commands."""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def add_dataset_arguments(parser: argparse.ArgumentParser, *, default: str | None = "lfw_faces") -> None:
    """--dataset, --classes, --data-dir, --seed."""
    parser.add_argument("--dataset", default=default, required=default is None,
                        help="bundled name (lfw_faces, digits, mnist5k) or a prepared TFDS name (default: %(default)s)")
    parser.add_argument("--classes", default=None, help="comma-separated class names or indices to keep, e.g. 6,9")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: $TFDS_DATA_DIR)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and of every random choice (default: 0)")


def load_dataset(args: argparse.Namespace):
    """The data set the arguments name, as a ``glassjax.data.Dataset``."""
    from glassjax import data

    classes = [c for c in args.classes.split(",") if c.strip()] if args.classes else None
    return data.load(args.dataset, classes=classes, data_dir=args.data_dir, seed=args.seed)


def _to_builtin(value):
    if isinstance(value, dict):
        return {str(k): _to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_builtin(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def print_json(obj: dict) -> None:
    """Print ``obj`` as one JSON line on stdout (numpy and JAX values become plain numbers)."""
    print(json.dumps(_to_builtin(obj), allow_nan=True))
    sys.stdout.flush()


def print_table(rows: list[dict], columns: list[str]) -> None:
    """Print ``rows`` as an aligned text table of ``columns`` (floats with 4 significant digits)."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return f"{v:.4g}"
        return str(v)

    cells = [[cell(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
