"""``glassjax equivariance``: invariance, equivariance and separability per layer of the chosen systems."""
from __future__ import annotations

import argparse

from glassjax.cli.common import (
    Stages, add_comparison_arguments, check_comparison_arguments, fit_systems, load_dataset, print_json, print_result,
    selected_systems,
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "equivariance", help="per-layer invariance, equivariance and separability of registered systems",
        description="Fit or train the chosen systems and measure every layer of each, on the test split, under the "
                    "group: invariance error, Lenc-Vedaldi equivariance error, Lie derivative along rotation, class "
                    "separation (intra/inter distances, Fisher ratio, linear probe); one row per layer.")
    add_comparison_arguments(parser, systems="glassbox,alexnet")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from glassjax.analysis import comparison
    from glassjax.core import groups

    check_comparison_arguments(args)
    names = selected_systems(args)
    group = groups.get(args.group)
    dataset = load_dataset(args)
    stages = Stages("equivariance", [*names, "metrics"])
    fitted = fit_systems(stages, names, dataset, args, group.name)
    result = stages.run("metrics", comparison.run, dataset, fitted, group=group.name, images=args.images,
                        ridge=args.ridge, seed=args.seed)
    result.update(ridge=args.ridge, group_order=group.order)
    result["seconds"].update(stages.close())
    print_result(result)
    print(f"done in {result['seconds']['total']:.1f} s")
    if args.json:
        print_json(result)
    return 0
