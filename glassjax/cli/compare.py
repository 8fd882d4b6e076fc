"""``glassjax compare``: registered systems side by side, written as a self-contained report."""
from __future__ import annotations

import argparse
import shlex

from glassjax.cli.common import (
    Stages, add_comparison_arguments, add_process_arguments, check_comparison_arguments, check_processes, config_fields,
    fit_systems, load_dataset, print_json, print_result, selected_systems, shard_train, start_processes,
)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare", help="systems side by side: per-layer metrics, accuracy and figures in an HTML report",
        description="Fit or train the chosen systems (by default the glass-box invariant, invariant + orbit, and "
                    "AlexNet trained from scratch or read from --weights), measure every layer of each under the "
                    "group, and write index.html (self-contained), metrics.json and PNG figures into --out.")
    add_comparison_arguments(parser, systems="glassbox,glassbox_both,alexnet")
    parser.add_argument("--class-specificity", action="store_true",
                        help="add the class-specificity section (MIS, filter classes and gate density, "
                             "gradient-map and CAM localization, FGSM/PGD detection) for every system; minutes per system")
    parser.add_argument("--influence", type=int, default=0, metavar="K",
                        help="add the influence section: the K test images of highest loss under the default glass-box "
                             "(the model `glassjax fit` fits), each with its most helpful and most harmful training "
                             "images, by the exact gradient of its loss through the fit (default: %(default)s, none)")
    parser.add_argument("--out", default="glassjax-report",
                        help="report folder, replaced only if new, empty or an earlier report (default: %(default)s)")
    add_process_arguments(parser)
    parser.set_defaults(run=run)


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this report, every setting given spelled out."""
    words = ["glassjax", "compare", "--dataset", args.dataset, "--systems", args.systems, "--group", args.group,
             "--seed", str(args.seed)]
    if args.classes:
        words += ["--classes", args.classes]
    for name in sorted(config_fields()):
        value = getattr(args, name, None)
        if value is not None:
            text = ",".join(value) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else str(value)
            words += [f"--{name.replace('_', '-')}", text]
    words += ["--images", str(args.images), "--ridge", f"{args.ridge:g}"]
    if args.class_specificity:
        words.append("--class-specificity")
    if args.influence:
        words += ["--influence", str(args.influence)]
    words += ["--out", args.out]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from glassjax import report, systems
    from glassjax.analysis import class_specificity, comparison, influence
    from glassjax.core import groups

    check_comparison_arguments(args)
    if args.influence < 0:
        raise ValueError(f"compare: expected --influence K >= 0 test images, got {args.influence}")
    names = selected_systems(args)
    check_processes(args, [systems.get(name) for name in names])
    report.check_out(args.out)  # before minutes of work, not after
    main = start_processes(args)  # before any JAX computation
    group = groups.get(args.group)
    dataset = load_dataset(args)
    if args.influence and not hasattr(dataset.x_train, "shape"):
        raise ValueError(f"compare: --influence needs the training images in memory (the differentiable fit); "
                         f"{args.dataset} is streamed, drop --influence")
    extra = (["class specificity"] if args.class_specificity else []) + (["influence"] if args.influence else [])
    stages = Stages("compare", [*names, "metrics", *extra, "figures", "report"])
    # Each process fits on its share of the train split; process 0 alone measures and writes.
    fitted = fit_systems(stages, names, shard_train(dataset), args, group.name)
    if not main:
        stages.close()
        return 0
    result = stages.run("metrics", comparison.run, dataset, fitted, group=group.name, images=args.images,
                        ridge=args.ridge, seed=args.seed)
    result.update(model="compare", ridge=args.ridge, group_order=group.order, command=command_line(args))
    if args.class_specificity:
        result["class_specificity"] = stages.run("class specificity", class_specificity.run, dataset, fitted, seed=args.seed)
    if args.influence:
        result["influence"] = stages.run("influence", influence.highest_loss, dataset, args.influence, seed=args.seed)
    figures = stages.run("figures", report.make_figures, result, dataset=dataset, fitted=fitted, seed=args.seed)
    if args.class_specificity:
        figures.update(report.class_specificity_figures(result["class_specificity"]))
    if args.influence:
        figures["influence.png"] = report.influence_figure(result["influence"], dataset.x_train, dataset.y_train,
                                                           dataset.x_test, dataset.class_names)
    # The report states its own run time: everything but writing it.
    result["seconds"].update(stages.seconds, total=sum(stages.seconds.values()))
    out = stages.run("report", report.write_report, args.out, result, figures)
    result["seconds"].update(stages.close())
    print_result(result)
    print(f"report written to {out}/index.html in {result['seconds']['total']:.1f} s")
    if args.json:
        print_json(dict(result, out=str(out)))
    return 0
