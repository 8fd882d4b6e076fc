"""``glassjax influence``: rank the training images by their influence on one test image's loss."""
from __future__ import annotations

import argparse

from glassjax.cli.common import seed_option


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "influence", help="rank training images by d(test loss)/d(training weight) through the differentiable fit",
        description="For the glass-box `glassjax fit --dataset NAME` fits (GlassBox defaults, --seed), differentiate "
                    "test image I's loss (cross-entropy of the softmax of its class scores) with respect to every "
                    "training image's weight at weights 1, through the whole fit, and list the training images whose "
                    "upweighting raises it most (harmful) and lowers it most (helpful). Indices refer to "
                    "data.load(NAME).x_train and x_test.")
    parser.add_argument("--dataset", required=True, help="a bundled data set (see `glassjax datasets`) or a path")
    parser.add_argument("--test-index", type=int, required=True, metavar="I", help="the test image, an index into x_test")
    parser.add_argument("--top", type=int, default=10, metavar="K", help="how many harmful and helpful images (default: %(default)s)")
    parser.add_argument("--seed", type=seed_option, default=0, help="the fit's seed (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from glassjax.analysis.influence import influence
    from glassjax.cli.common import print_json

    if args.test_index < 0:
        raise ValueError(f"--test-index: expected an index >= 0, got {args.test_index}")
    if args.top < 1:
        raise ValueError(f"--top: expected K >= 1, got {args.top}")
    result = influence(args.dataset, args.test_index, top=args.top, seed=args.seed)
    print(f"test image {result['test_index']} of {result['dataset']} (label {result['label']}): loss {result['loss']:.4f}")
    print("harmful (upweighting raises the loss): " + ", ".join(
        f"{j} ({s:+.3g})" for j, s in zip(result["harmful"], result["harmful_scores"])))
    print("helpful (upweighting lowers the loss): " + ", ".join(
        f"{j} ({s:+.3g})" for j, s in zip(result["helpful"], result["helpful_scores"])))
    print(f"influence of every training image in {result['seconds']:.1f} s")
    if args.json:
        print_json(result)
    return 0
