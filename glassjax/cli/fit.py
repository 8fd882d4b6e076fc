"""``glassjax fit``: fit a registered system on a data set's train split, report on its test split."""
from __future__ import annotations

import argparse

from glassjax.cli.common import (
    add_config_arguments, add_dataset_arguments, add_process_arguments, check_output_file, config_overrides, describe,
    check_processes, load_dataset, print_json, print_report, shard_train, start_processes,
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit", help="fit a system (default: the glass-box) and report test accuracy",
        description="Fit a registered system on the train split and report accuracy on the test split, clean and "
                    "acted on by random group elements, with the class geometry of the layer its classifier reads. "
                    "A user's data set (folder, .npz, Hugging Face, parquet) or a prepared TFDS set with a test split "
                    "streams its train split through systems that stream.")
    add_dataset_arguments(parser)
    parser.add_argument("--system", default="glassbox", help="a registered system, see `glassjax systems` "
                                                             "(default: %(default)s)")
    parser.add_argument("--out", default=None, help="save the fitted model to this .npz file")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    add_config_arguments(parser)
    add_process_arguments(parser)
    parser.set_defaults(run=run)


def check_out_file(path: str | None) -> None:
    """ValueError before any work when a model file cannot be written at ``path`` (``common.check_output_file``)."""
    check_output_file(path, "--out")


def run(args: argparse.Namespace) -> int:
    import time

    import jax

    from glassjax import systems
    from glassjax.analysis import comparison
    from glassjax.data import sources

    check_out_file(args.out)
    system = systems.get(args.system)
    check_processes(args, [system])
    main = start_processes(args)  # before any JAX computation
    config = system.configure(**config_overrides(args, [system.name])[system.name])
    if hasattr(config, "validated"):
        config = config.validated()
    # A user's folder / .npz / HF / parquet set, or a prepared TFDS set with a test split, streams its
    # train split; the rest loads into memory.
    stream = None if args.classes or not system.streams else sources.stream(
        args.dataset, args.data_dir, seed=args.seed, image_size=args.image_size)
    dataset = load_dataset(args) if stream is None else stream.test
    train = dataset if stream is None else dataset._replace(x_train=stream.train, y_train=None)
    start = time.perf_counter()
    params = system.fit(config, shard_train(train), key=jax.random.key(args.seed))
    jax.block_until_ready(params)
    if not main:  # process 0 alone reports and writes
        return 0
    fitted = comparison.Fitted(system, jax.device_put(params, jax.local_devices()[0]), time.perf_counter() - start)
    report = describe(fitted, dataset, args.seed)
    if stream is not None:
        report.update(n_train=len(stream.train), streamed=True)
    report["fit_seconds"] = round(fitted.fit_seconds, 3)
    if args.out:
        system.save(params, args.out)
        report["out"] = args.out
    print_report(report)
    print(f"fit in {report['fit_seconds']:.1f} s" + (f"; model saved to {args.out}" if args.out else ""))
    if args.json:
        print_json(report)
    return 0
