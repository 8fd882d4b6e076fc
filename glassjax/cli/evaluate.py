"""``glassjax evaluate``: score a saved model of any registered system on a data set's test split."""
from __future__ import annotations

import argparse

from glassjax.cli.common import add_dataset_arguments, describe, load_dataset, print_json, print_report


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a saved model on a test split",
        description="Load a model saved by `glassjax fit --out` (any system) and report its accuracy on the test "
                    "split, with the same keys as `glassjax fit`.")
    parser.add_argument("--model", required=True, help="a .npz file written by `glassjax fit --out`")
    add_dataset_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import jax
    import jax.numpy as jnp

    from glassjax import systems
    from glassjax.analysis import comparison

    system, params = systems.load(args.model)
    dataset = load_dataset(args)
    fitted = comparison.Fitted(system, params, 0.0)
    probe = jax.ShapeDtypeStruct((1,) + dataset.x_test.shape[1:], jnp.float32)
    try:
        jax.eval_shape(system.scores, params, probe)
    except (ValueError, TypeError) as err:
        raise ValueError(f"model {args.model} cannot take the images of data set {dataset.name!r} "
                         f"{dataset.x_test.shape[1:]}: {str(err).splitlines()[0]}") from None
    outputs = len(system.class_names(params))
    if dataset.num_classes != outputs:
        raise ValueError(f"model {args.model} has {outputs} classes, "
                         f"data set {dataset.name!r} (as selected) has {dataset.num_classes}")
    report = describe(fitted, dataset, args.seed)
    report["model"] = args.model
    print_report(report)
    if args.json:
        print_json(report)
    return 0
