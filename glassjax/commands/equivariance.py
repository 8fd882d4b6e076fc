"""``glassjax equivariance``: invariance, equivariance and separability per layer, one row per layer."""
from __future__ import annotations

import argparse
import dataclasses
import time

from glassjax.commands._common import add_dataset_arguments, load_dataset, print_json, print_table

COLUMNS = ["name", "invariance_error", "equivariance_error", "lie_derivative", "fisher_ratio",
           "intra_class_distance", "inter_class_distance", "linear_probe_accuracy"]


def add_comparison_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``equivariance`` and ``compare``: data, group, AlexNet, metric images."""
    add_dataset_arguments(parser)
    parser.add_argument("--group", default="d4", help="d4 | c4 | flip | none | rot:N | trans:N (default: %(default)s)")
    parser.add_argument("--weights", default=None,
                        help="torchvision-format AlexNet weights (.safetensors, .npz, .pth); else AlexNet is trained")
    parser.add_argument("--size", type=int, default=64,
                        help="side AlexNet's input is resized to (default: %(default)s; 224 for ImageNet weights)")
    parser.add_argument("--epochs", type=int, default=10, help="AlexNet training epochs (default: %(default)s)")
    parser.add_argument("--width", type=float, default=0.5,
                        help="AlexNet width: multiplier of torchvision's channels and fc sizes (default: %(default)s)")
    parser.add_argument("--augment", choices=("none", "d4"), default="none",
                        help="AlexNet training augmentation (default: %(default)s, a plain CNN)")
    parser.add_argument("--images", type=int, default=200,
                        help="at most this many train images (with their orbits) fit the equivariance maps and "
                             "this many test images measure (default: %(default)s)")
    parser.add_argument("--ridge", type=float, default=1e-3,
                        help="ridge of the equivariance maps and linear probes, relative to the mean eigenvalue; "
                             "scaled up for layers wider than their fit rows (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "equivariance", help="per-layer invariance, equivariance and separability of AlexNet or the glass-box",
        description="Measure every layer, on the test split, under the group: invariance error, Lenc-Vedaldi "
                    "equivariance error, Lie derivative along rotation, class separation (intra/inter distances, "
                    "Fisher ratio, linear probe). --model alexnet trains AlexNet from scratch (or reads --weights) "
                    "and lists its layers beside the glass-box's.")
    parser.add_argument("--model", choices=("alexnet", "glassbox"), required=True, help="the model whose layers to measure")
    parser.add_argument("--representation", choices=("invariant", "equivariant", "both"), default="invariant",
                        help="the glass-box's layer 1 (default: %(default)s)")
    add_comparison_arguments(parser)
    parser.set_defaults(run=run)


def glassbox_settings(model) -> dict:
    """A fitted GlassBox's resolved configuration and fit time, for reports."""
    return dict(dataclasses.asdict(model.params_.config), fit_seconds=model.fit_seconds_)


class Stages:
    """A progress bar over a command's named stages, with the seconds each took."""

    def __init__(self, desc: str, names: list[str]):
        from glassjax.progress import progress

        self.bar = progress(None, total=len(names), desc=desc, unit="stage")
        self.seconds: dict[str, float] = {}
        self.start = time.perf_counter()

    def run(self, name: str, fn, *args, **kwargs):
        self.bar.set_postfix_str(name)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        self.bar.update(1)
        return out

    def close(self) -> dict[str, float]:
        self.bar.close()
        return dict(self.seconds, total=time.perf_counter() - self.start)


def check_arguments(args: argparse.Namespace) -> None:
    if args.images < 2:
        raise ValueError(f"--images: expected at least 2, got {args.images}")
    if not args.ridge > 0:
        raise ValueError(f"--ridge: expected > 0, got {args.ridge}")


def print_result(result: dict) -> None:
    """The per-layer table and the accuracies, as text."""
    print(f"{result['dataset']}: group {result['group']}, metrics on {result['n_fit_images']} fit images "
          f"(x {result['group_order']} with their orbits) and {result['n_eval_images']} test images")
    print_table(result["layers"], COLUMNS)
    ridges = sorted({(r["ridge"], r["name"]) for r in result["layers"]})
    scaled = [name for ridge, name in ridges if ridge != result["ridge"]]
    print(f"ridge {result['ridge']:g} relative to the mean eigenvalue"
          + (f"; scaled up for layers wider than their fit rows: {', '.join(scaled)}" if scaled else ""))
    for name, scores in result["accuracy"].items():
        if scores is None:
            print(f"{name}: accuracy not measured (its last layer does not have one output per class)")
        else:
            print(f"{name}: accuracy {scores['accuracy']:.4f} clean, {scores['accuracy_transformed']:.4f} under random "
                  f"{result['group']}")


def run(args: argparse.Namespace) -> int:
    from glassjax import comparison, groups

    check_arguments(args)
    if args.weights is not None and args.model != "alexnet":
        raise ValueError(f"--weights: expected only with --model alexnet, got --model {args.model}")
    group = groups.get(args.group)
    dataset = load_dataset(args)
    names = ["glass-box", "alexnet", "metrics"] if args.model == "alexnet" else ["glass-box", "metrics"]
    stages = Stages("equivariance", names)
    model = stages.run("glass-box", comparison.fit_glassbox, dataset, group=group.name,
                       representation=args.representation, seed=args.seed)
    models = {"glassbox": glassbox_settings(model)}
    params = None
    if args.model == "alexnet":
        params, models["alexnet"] = stages.run(
            "alexnet", comparison.load_or_train_alexnet, dataset, weights=args.weights, size=args.size,
            epochs=args.epochs, width=args.width, augment=args.augment, seed=args.seed)
    result = stages.run("metrics", comparison.run, dataset, glassboxes={"glassbox": model}, alexnet_params=params,
                        alexnet_size=args.size, group=group.name, images=args.images, ridge=args.ridge, seed=args.seed)
    result.update(model=args.model, models=models, ridge=args.ridge, group_order=group.order)
    result["seconds"].update(stages.close())
    print_result(result)
    print(f"done in {result['seconds']['total']:.1f} s")
    if args.json:
        print_json(result)
    return 0
