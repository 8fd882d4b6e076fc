"""``glassjax compare``: the glass-box and AlexNet side by side, written as a self-contained report."""
from __future__ import annotations

import argparse
import shlex

from glassjax.commands._common import load_dataset, print_json
from glassjax.commands.equivariance import Stages, add_comparison_arguments, check_arguments, glassbox_settings, print_result


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="glass-box vs AlexNet: per-layer metrics, accuracy and figures in an HTML report",
        description="Fit the glass-box (invariant, and invariant + orbit), train AlexNet (or read --weights), "
                    "measure every layer of both under the group, and write index.html (self-contained), "
                    "metrics.json and PNG figures into --out.")
    add_comparison_arguments(parser)
    parser.add_argument("--out", default="glassjax-report",
                        help="report folder, replaced only if new, empty or an earlier report (default: %(default)s)")
    parser.set_defaults(run=run)


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this report, every setting spelled out."""
    words = ["glassjax", "compare", "--dataset", args.dataset, "--group", args.group, "--seed", str(args.seed)]
    if args.classes:
        words += ["--classes", args.classes]
    if args.weights is not None:
        words += ["--weights", args.weights]
    else:
        words += ["--epochs", str(args.epochs), "--width", f"{args.width:g}", "--augment", args.augment]
    words += ["--size", str(args.size), "--images", str(args.images), "--ridge", f"{args.ridge:g}", "--out", args.out]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from glassjax import comparison, groups, report

    check_arguments(args)
    report.check_out(args.out)  # before minutes of work, not after
    group = groups.get(args.group)
    dataset = load_dataset(args)
    stages = Stages("compare", ["glass-box", "glass-box (both)", "alexnet", "metrics", "figures", "report"])
    glassboxes = {
        "glassbox": stages.run("glass-box", comparison.fit_glassbox, dataset, group=group.name,
                               representation="invariant", seed=args.seed),
        "glassbox_both": stages.run("glass-box (both)", comparison.fit_glassbox, dataset, group=group.name,
                                    representation="both", seed=args.seed),
    }
    models = {name: glassbox_settings(model) for name, model in glassboxes.items()}
    params, models["alexnet"] = stages.run(
        "alexnet", comparison.load_or_train_alexnet, dataset, weights=args.weights, size=args.size,
        epochs=args.epochs, width=args.width, augment=args.augment, seed=args.seed)
    result = stages.run("metrics", comparison.run, dataset, glassboxes=glassboxes, alexnet_params=params,
                        alexnet_size=args.size, group=group.name, images=args.images, ridge=args.ridge, seed=args.seed)
    result.update(model="compare", models=models, ridge=args.ridge, group_order=group.order, command=command_line(args))
    scored = result["accuracy"].get("alexnet") is not None
    figures = stages.run(
        "figures", report.make_figures, result, dataset=dataset, glassboxes=glassboxes,
        alexnet_features=comparison.alexnet_layer(params, "fc7", size=args.size),
        alexnet_predict=comparison.alexnet_predictor(params, size=args.size) if scored else None, seed=args.seed)
    # The report states its own run time: everything but writing it.
    result["seconds"].update(stages.seconds, total=sum(stages.seconds.values()))
    out = stages.run("report", report.write_report, args.out, result, figures)
    result["seconds"].update(stages.close())
    print_result(result)
    print(f"report written to {out}/index.html in {result['seconds']['total']:.1f} s")
    if args.json:
        print_json(dict(result, out=str(out)))
    return 0
