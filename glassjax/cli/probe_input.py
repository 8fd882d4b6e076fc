"""``glassjax probe-input`` (alias ``probe-signal``): what each classifier likes to see (Palacio et al. 2018).

A SegNet autoencoder is pretrained to reconstruct the train images; for each chosen classifier its
decoder is fine-tuned on that frozen classifier's cross-entropy. Every classifier then reads every
autoencoder's test reconstructions: the cross-classifier matrix, the order it shows, and the NMI of
originals and reconstructions. Writes input_signal.json, two PNG figures and input_signal.html into --out.
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from glassjax.cli.common import (
    add_config_arguments,
    add_dataset_arguments,
    config_overrides,
    load_dataset,
    print_json,
    print_table,
)

_QUICK_PER_CLASS = (20, 8)  # train, test images per class with --quick


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "probe-input", aliases=["probe-signal"],
        help="what the classifiers like to see: an autoencoder tuned on each classifier's gradients",
        description="Pretrain a SegNet autoencoder on the train images, fine-tune its decoder on each chosen "
                    "classifier's cross-entropy (the classifier frozen), and measure the cross-classifier matrix "
                    "M[A][B] = accuracy of B on A's reconstructions / B's accuracy on the originals, the order "
                    "it shows and the NMI of originals and reconstructions (Palacio et al., CVPR 2018). Systems "
                    "whose scores have no usable input gradient are listed as skipped.")
    add_dataset_arguments(parser, default="mnist5k")
    parser.add_argument("--systems", default="glassbox,alexnet,lenet5,logistic",
                        help="comma-separated registered systems to probe, and 'logistic' (a logistic regression "
                             "on the pixels) (default: %(default)s)")
    parser.add_argument("--ae-widths", default="16,32", help="channels of each encoder stage (default: %(default)s)")
    parser.add_argument("--ae-convs", type=int, default=2, help="conv blocks per stage (default: %(default)s)")
    parser.add_argument("--pretrain-epochs", type=int, default=6, help="reconstruction epochs (default: %(default)s)")
    parser.add_argument("--finetune-epochs", type=int, default=2,
                        help="decoder epochs per classifier (default: %(default)s)")
    parser.add_argument("--ae-batch-size", type=int, default=64, help="images per Adam step (default: %(default)s)")
    parser.add_argument("--ae-learning-rate", type=float, default=2e-3, help="Adam step size (default: %(default)s)")
    parser.add_argument("--nmi-bins", type=int, default=32,
                        help="histogram bins of each image in the NMI (default: %(default)s)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes (a smoke test; the numbers mean nothing): 20 train and 8 test images per "
                             "class, widths 4,8, one epoch of everything")
    parser.add_argument("--out", default="input_signal",
                        help="folder for input_signal.json, the figures and input_signal.html (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    add_config_arguments(parser)
    parser.set_defaults(run=run)


def _names(text: str) -> list[str]:
    from glassjax import systems
    from glassjax.probes.input_signal import ANCHOR

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"--systems: expected distinct registered names or {ANCHOR}, got {text!r}")
    for name in names:
        if name != ANCHOR:
            systems.get(name)  # ValueError naming the registered ones
    return names


def _config(args: argparse.Namespace):
    from glassjax.probes.input_signal import AutoencoderConfig

    try:
        widths = tuple(int(w) for w in args.ae_widths.split(",") if w.strip())
    except ValueError:
        raise ValueError(f"--ae-widths: expected comma-separated ints, got {args.ae_widths!r}") from None
    if args.quick:
        return AutoencoderConfig(widths=(4, 8), convs=1, pretrain_epochs=1, finetune_epochs=1, batch_size=16)
    return AutoencoderConfig(widths=widths, convs=args.ae_convs, pretrain_epochs=args.pretrain_epochs,
                             finetune_epochs=args.finetune_epochs, batch_size=args.ae_batch_size,
                             learning_rate=args.ae_learning_rate).validated()


def _quick_subset(dataset):
    """The first images of each class (``_QUICK_PER_CLASS``)."""
    def keep(y, count):
        return np.sort(np.concatenate([np.flatnonzero(y == c)[:count] for c in range(dataset.num_classes)]))

    tr, te = keep(dataset.y_train, _QUICK_PER_CLASS[0]), keep(dataset.y_test, _QUICK_PER_CLASS[1])
    return dataset._replace(x_train=dataset.x_train[tr], y_train=dataset.y_train[tr], x_test=dataset.x_test[te],
                            y_test=dataset.y_test[te])


def _quick_overrides(registered: list[str]) -> dict[str, dict]:
    """One epoch (the CSG schedule shrunk to fit) and the narrowest AlexNet, for the systems that have them."""
    import dataclasses

    from glassjax import systems

    out = {}
    for name in registered:
        fields = {f.name for f in dataclasses.fields(systems.get(name).config)}
        quick = {"epochs": 2, "warmup_epochs": 1, "gate_period": 2, "gate_phase": 1, "width": 0.125}
        out[name] = {k: v for k, v in quick.items() if k in fields}
    return out


def run(args: argparse.Namespace) -> int:
    from glassjax.core.files import write_bytes_atomic
    from glassjax.probes import input_signal

    names = _names(args.systems)
    config = _config(args)
    if args.nmi_bins < 2:
        raise ValueError(f"--nmi-bins: expected at least 2, got {args.nmi_bins}")
    registered = [n for n in names if n != input_signal.ANCHOR]
    overrides = config_overrides(args, registered)
    if args.quick:
        overrides = {n: {**_quick_overrides(registered)[n], **overrides[n]} for n in registered}
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise ValueError(f"--out: expected a folder, got {args.out} (a file)")
    os.makedirs(args.out, exist_ok=True)  # before minutes of work, not after
    dataset = load_dataset(args)
    if args.quick:
        dataset = _quick_subset(dataset)
    probed, skipped, fit_seconds = input_signal.prepare(names, dataset, seed=args.seed, overrides=overrides)
    result, samples = input_signal.run(dataset, probed, config, seed=args.seed, bins=args.nmi_bins)
    result.update(skipped=skipped, fit_seconds=fit_seconds, quick=args.quick, overrides=overrides)
    rows = [input_signal.UNTUNED, *result["classifiers"]]
    figures = {"input_signal_reconstructions.png": input_signal.reconstruction_grid(samples, rows),
               "input_signal_matrix.png": input_signal.matrix_heatmap(result["matrix"], rows, result["classifiers"])}
    for filename, png in figures.items():
        write_bytes_atomic(os.path.join(args.out, filename), png)
    write_bytes_atomic(os.path.join(args.out, "input_signal.json"),
                       (json.dumps(result, indent=1, allow_nan=True) + "\n").encode())
    write_bytes_atomic(os.path.join(args.out, "input_signal.html"),
                       input_signal.html_section(result, figures).encode())
    _print(result)
    if args.json:
        print_json(result)
    return 0


def _print(result: dict) -> None:
    names = result["classifiers"]
    print(f"{result['dataset']}: {result['n_train']} train / {result['n_test']} test images; M[A][B] = accuracy of B "
          f"on A's reconstructions / on the originals")
    print_table([{"A \\ B": row, **result["matrix"][row]} for row in result["matrix"]], ["A \\ B", *names])
    print_table([{"classifier": n, "accuracy": result["accuracy"][n], "parameters": result["parameters"][n],
                  "nmi_intra": result["nmi"][n]["intra"], "nmi_inter": result["nmi"][n]["inter"]} for n in names],
                ["classifier", "accuracy", "parameters", "nmi_intra", "nmi_inter"])
    print(f"order (row means, best first): {' > '.join(result['order'])}")
    for name, reason in result["skipped"].items():
        print(f"skipped {name}: {reason}")
