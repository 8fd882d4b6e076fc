"""``glassjax train-csg``: train a network with class-specific gates and the same network the standard
way (same seed and epochs), and measure both: accuracy with the gate off, MIS, gate density,
localization AP and adversarial detection AUC."""
from __future__ import annotations

import argparse

from glassjax.cli.common import add_dataset_arguments, load_dataset, print_json

_OPTIONS = (  # (option, type, help); each left out keeps the system's default
    ("epochs", int, "training epochs, standard and CSG together"),
    ("batch_size", int, "images per training step"),
    ("learning_rate", float, "AdamW learning rate of the network"),
    ("standard_learning_rate", float, "AdamW learning rate of the standard epochs after the warm-up"),
    ("gate_density", float, "target density d of the gate"),
    ("gate_sparsity", float, "weight lambda of the sparsity loss"),
    ("gate_learning_rate", float, "Adam learning rate of the gate"),
    ("warmup_epochs", int, "standard epochs before the first CSG epoch"),
    ("gate_period", int, "epoch e runs the CSG path when e %% period >= phase"),
    ("gate_phase", int, "see --gate-period"),
    ("channels", int, "cnn: filters of the gated layer"),
    ("size", int, "alexnet: side images are resized to"),
    ("width", float, "alexnet: multiplier of torchvision's widths"),
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-csg", help="train a CNN with class-specific gates and measure how class-specific its filters are",
        description="Train the small CNN (cnn_csg) or AlexNet (alexnet_csg) with class-specific gates (Liang et al. "
                    "2020) and the same network without gates (same seed and epochs); report for both the test "
                    "accuracy with the gate off, the mutual information score (MIS), localization AP (gradient maps, "
                    "CAM) and the ROC AUC of detecting PGD adversarial images.")
    add_dataset_arguments(parser, default=None)
    parser.add_argument("--model", choices=("cnn", "alexnet"), default="cnn", help="(default: %(default)s)")
    for name, kind, text in _OPTIONS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None,
                            help=f"{text} (default: the system's)")
    parser.add_argument("--images", type=int, default=1000, help="test images the MIS is measured on (default: %(default)s)")
    parser.add_argument("--eps", type=float, default=None,
                        help="L-inf radius of FGSM and PGD (default: 0.1)")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint of the CSG run, resumed from if it exists; the standard run's is beside it "
                             "with .standard appended")
    parser.add_argument("--out", default=None, help="write the CSG model file here (.npz; glassjax evaluate reads it)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import jax

    from glassjax import systems
    from glassjax.analysis import class_specificity, comparison
    from glassjax.systems.csg import system as csg_system

    if args.images < 2:
        raise ValueError(f"--images: expected at least 2, got {args.images}")
    name = f"{args.model}_csg"
    system = systems.get(name)
    given = {n: getattr(args, n) for n, _, _ in _OPTIONS if getattr(args, n) is not None}
    config = system.configure(**given).validated()  # unknown fields (--size for cnn) are a ValueError
    dataset = load_dataset(args)
    fitted = {}
    for label, gates in (("csg", True), ("standard", False)):
        checkpoint = None if args.checkpoint is None else (
            args.checkpoint if gates else f"{args.checkpoint}.standard")
        params = csg_system.fit(system.configure(**given, gates=gates), dataset, key=jax.random.key(args.seed),
                                checkpoint=checkpoint, system=name)
        fitted[label] = comparison.Fitted(system, params, params.info["train_seconds"])
    results = {label: class_specificity.evaluate(f, dataset, seed=args.seed, images=args.images, eps=args.eps)
               for label, f in fitted.items()}
    if args.out is not None:
        system.save(fitted["csg"].params, args.out)
    summary = class_specificity.csg_summary(results["csg"], results["standard"])
    summary.update(train_seconds=fitted["csg"].fit_seconds, train_seconds_standard=fitted["standard"].fit_seconds)
    print(f"{dataset.name}: {name}, {config.epochs} epochs, CSG epochs {[e + 1 for e in config.csg_epochs()]}")
    for label in ("csg", "standard"):
        suffix = "" if label == "csg" else "_standard"
        print(f"{label:>8}: accuracy {summary['accuracy' + suffix]:.4f} (gate off), MIS {summary['mis' + suffix]:.4f}, "
              f"localization AP {summary['localization_ap' + suffix]}, PGD detection AUC "
              f"{summary['detection_auc' + suffix]}, trained in {fitted[label].fit_seconds:.1f} s")
    print(f"gate density {summary['gate_density']:.4f}")
    if args.out is not None:
        print(f"CSG model written to {args.out}")
    if args.json:
        print_json(dict(summary, dataset=dataset.name, system=name, epochs=config.epochs,
                        csg_epochs=[e + 1 for e in config.csg_epochs()], results=results))
    return 0
