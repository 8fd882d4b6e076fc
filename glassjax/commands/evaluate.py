"""``glassjax evaluate``: score a saved glass-box model on a data set's test split."""
from __future__ import annotations

import argparse

from glassjax.commands._common import add_dataset_arguments, load_dataset, print_json
from glassjax.commands.fit import describe, print_report


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a saved model on a test split",
        description="Load a model saved by `glassjax fit --out` and report its accuracy on the test split.")
    parser.add_argument("--model", required=True, help="a .npz file written by `glassjax fit --out`")
    add_dataset_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from glassjax.glassbox import GlassBox

    model = GlassBox.load(args.model)
    dataset = load_dataset(args)
    if dataset.x_test.shape[1:] != model.params_.image_shape:
        raise ValueError(f"model {args.model} expects images {model.params_.image_shape}, "
                         f"data set {dataset.name!r} has {dataset.x_test.shape[1:]}")
    if dataset.num_classes != model.params_.num_classes:
        raise ValueError(f"model {args.model} has {model.params_.num_classes} classes, "
                         f"data set {dataset.name!r} (as selected) has {dataset.num_classes}")
    report = describe(model, dataset, args.seed)
    report["model"] = args.model
    print_report(report)
    if args.json:
        print_json(report)
    return 0
