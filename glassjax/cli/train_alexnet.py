"""``glassjax train-alexnet``: train AlexNet from scratch and report test accuracy, clean and under random D4."""
from __future__ import annotations

import argparse
import time

from glassjax.cli.common import add_dataset_arguments, add_process_arguments, load_dataset, print_json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-alexnet",
        help="train AlexNet from scratch on a data set",
        description="Train AlexNet (torchvision layout) from scratch with AdamW; print the test accuracy "
        "on clean images and on images acted on by random D4 elements.",
    )
    add_dataset_arguments(parser)
    parser.add_argument("--size", type=int, default=64, help="side images are resized to, >= 64 (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default: %(default)s)")
    parser.add_argument("--augment", choices=("none", "d4"), default="none",
                        help="random D4 element per image per step (default: %(default)s)")
    parser.add_argument("--width", type=float, default=0.5,
                        help="multiplier of torchvision's channel and fc widths (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32, help="(default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="AdamW learning rate (default: %(default)s)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint file, rewritten after every epoch and resumed from if it exists")
    parser.add_argument("--out", default=None,
                        help="write the trained weights here as a torchvision state dict (.safetensors or .npz)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    add_process_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import jax

    from glassjax import systems
    from glassjax.analysis import comparison, scoring
    from glassjax.systems.alexnet import training as alexnet_training
    from glassjax.systems.alexnet import weights
    from glassjax.systems.alexnet.system import AlexNetConfig, AlexNetParams

    if args.distributed or args.coordinator or args.num_processes or args.process_id is not None:
        raise ValueError("--num-processes: train-alexnet trains in one process (its devices data-parallel); "
                         "several processes fit the glass-box systems (fit, compare)")
    if args.out is not None and not args.out.lower().endswith((".safetensors", ".npz")):
        raise ValueError(f"--out: expected a .safetensors or .npz path, got {args.out!r}")
    dataset = load_dataset(args)
    key_train = jax.random.key(args.seed)
    start = time.perf_counter()
    params, history = alexnet_training.train(
        dataset,
        size=args.size,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        augment=args.augment,
        key=key_train,
        checkpoint=args.checkpoint,
        width=args.width,
    )
    train_seconds = time.perf_counter() - start
    config = AlexNetConfig(size=args.size, epochs=args.epochs, width=args.width, augment=args.augment,
                           batch_size=args.batch_size, learning_rate=args.learning_rate)
    trained = comparison.Fitted(systems.get("alexnet"), AlexNetParams(config, dataset.class_names, params), train_seconds)
    group = scoring.robustness_group(dataset.x_test.shape[1:3])
    scores = scoring.scores(comparison.predictor(trained), dataset.x_test, dataset.y_test, group=group, seed=args.seed,
                            num_classes=dataset.num_classes)
    if args.out is not None:
        weights.save_torchvision(params, args.out)
    result = {
        "dataset": dataset.name,
        "size": args.size,
        "epochs": args.epochs,
        "augment": args.augment,
        "width": args.width,
        "final_loss": history[-1]["loss"] if history else None,
        "accuracy": scores["accuracy"],
        "accuracy_transformed": scores["accuracy_transformed"],
        "train_seconds": train_seconds,
        "out": args.out,
    }
    print(f"{dataset.name}: {len(dataset.y_train)} train / {len(dataset.y_test)} test images at "
          f"{args.size}x{args.size}, {args.epochs} epochs, augment {args.augment}, width {args.width}")
    print(f"test accuracy {scores['accuracy']:.4f}; under random {group} {scores['accuracy_transformed']:.4f}; "
          f"trained in {train_seconds:.1f} s")
    if args.out is not None:
        print(f"weights written to {args.out}")
    if args.json:
        print_json(result)
    return 0
