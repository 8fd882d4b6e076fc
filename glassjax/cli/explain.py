"""``glassjax explain``: train the explainer network (Zhang et al. 2018) on a frozen system's middle layer
and measure its interpretable filters' location instability against the system's own filters, an
ICNN-trained AlexNet and the glass-box's patch filters; p, reconstruction error, head accuracy."""
from __future__ import annotations

import argparse

from glassjax.cli.common import add_dataset_arguments, load_dataset, print_json

_OPTIONS = (  # (option, type, help); each left out keeps ExplainerConfig's default
    ("epochs", int, "explainer training epochs"),
    ("filters", int, "filters of each encoder track"),
    ("interpretable_layers", int, "conv layers of the interpretable track"),
    ("batch_size", int, "maps per step"),
    ("learning_rate", float, "Adam learning rate"),
    ("eta", float, "weight of -log p"),
    ("filter_weight", float, "lambda_f: weight of the mean filter loss"),
)
_QUICK = {"epochs": 2, "filters": 8, "performer_epochs": 1, "icnn_epochs": 1, "top": 4}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "explain", help="train an explainer network with interpretable part filters on a system's middle layer",
        description="Train the explainer of Zhang et al. (2018) on a frozen performer's layer (no labels): two "
                    "encoder tracks, interpretable (ICNN filter loss, masks) and ordinary, mixed by a learned p; a "
                    "decoder that reconstructs the performer's higher layers. Report the location instability of "
                    "the interpretable filters, the performer's own, an ICNN-trained AlexNet's and the glass-box's; "
                    "p; reconstruction error; the performer's head accuracy on reconstructed features. Writes "
                    "explain.json, PNG figures and explain.html into --out.")
    add_dataset_arguments(parser)
    parser.add_argument("--system", default="alexnet", help="the performer, a registered system (default: %(default)s)")
    parser.add_argument("--model", default=None, help="a fitted model file of the performer (else it is fitted here)")
    parser.add_argument("--layer", default="conv4", help="the performer's spatial layer the explainer reads "
                                                          "(default: %(default)s)")
    for name, kind, text in _OPTIONS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None,
                            help=f"{text} (default: ExplainerConfig's)")
    parser.add_argument("--top", type=int, default=20, help="M, the top images per filter (default: %(default)s)")
    parser.add_argument("--no-icnn", dest="icnn", action="store_false",
                        help="leave out the ICNN-trained AlexNet (trained only for AlexNet performers)")
    parser.add_argument("--no-glassbox", dest="glassbox", action="store_false", help="leave out the glass-box's filters")
    parser.add_argument("--out", default="explain", help="folder for the JSON, figures and HTML (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="tiny settings (seconds) for a smoke test; numbers "
                                                             "are not meaningful")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    parser.set_defaults(run=run)


def _summary(result: dict) -> dict:
    inst = result["instability"]
    heads = result["head_accuracy_by_layer"]
    deepest = [t for t in result["targets"] if t in heads]
    return {
        "instability_performer": inst["performer"]["instability"],
        "instability_explainer": inst["explainer"]["instability"],
        "instability_explainer_ordinary": inst["explainer_ordinary"]["instability"],
        "instability_icnn": inst["icnn"]["instability"] if "icnn" in inst else None,
        "instability_glassbox": inst["glassbox"]["instability"] if "glassbox" in inst else None,
        "p": result["p"], "reconstruction_error": result["reconstruction_error"],
        "head_accuracy": result["head_accuracy"],
        "head_accuracy_reconstructed": heads[deepest[-1]]["reconstructed"] if deepest else None,
        "head_layer": deepest[-1] if deepest else None,
        "train_seconds": result["train_seconds"],
    }


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import os
    from pathlib import Path

    import jax
    import numpy as np

    from glassjax import systems
    from glassjax.core.files import write_bytes_atomic
    from glassjax.probes.explainer import ExplainerConfig, Performer, icnn, study
    from glassjax.probes.explainer.performer import alexnet_weights
    from glassjax.report import explainer as figures

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out: expected a folder, got {args.out} (a file)")
    if args.top < 2:
        raise ValueError(f"--top: expected at least 2, got {args.top}")
    given = {n: getattr(args, n) for n, _, _ in _OPTIONS if getattr(args, n) is not None}
    if args.quick:
        given = {**{k: v for k, v in _QUICK.items() if k in ("epochs", "filters")}, **given}
    config = ExplainerConfig(layer=args.layer, **given).validated()
    top = _QUICK["top"] if args.quick else args.top
    dataset = load_dataset(args)
    key = jax.random.key(args.seed)
    if args.model is not None:
        system, params = systems.load(args.model)
    else:
        system = systems.get(args.system)
        overrides = {"epochs": _QUICK["performer_epochs"]} if args.quick and "epochs" in {
            f.name for f in dataclasses.fields(system.config)} else {}
        params = system.fit(system.configure(**overrides), dataset, key=key)
    performer = Performer(system, params)
    icnn_performer = bank = None
    if args.icnn and alexnet_weights(performer) is not None:
        alex_config = systems.get("alexnet").configure(
            size=int(params.config.size), width=float(params.config.width),
            epochs=_QUICK["icnn_epochs"] if args.quick else int(params.config.epochs))
        icnn_performer = Performer(systems.get("alexnet"),
                                   icnn.train(dataset, layer=args.layer, config=alex_config, key=key))
    if args.glassbox:
        glassbox = systems.get("glassbox")
        bank = np.asarray(glassbox.fit(glassbox.config, dataset, key=key).patches.filters)
    done = study.run(performer, dataset, config, key=key, top=top, baselines=study.Baselines(icnn_performer, bank))
    result = dict(done.result)
    if icnn_performer is not None:
        pred = icnn.scores(icnn_performer.params, dataset.x_test, args.layer)
        result["icnn_accuracy"] = float(np.mean(pred == dataset.y_test))
    pngs = figures.make_figures(result, done.arrays)
    os.makedirs(out, exist_ok=True)
    for name, png in pngs.items():
        write_bytes_atomic(out / name, png)
    summary = _summary(result)
    import json

    document = dict(result, summary=summary)
    write_bytes_atomic(out / "explain.json", json.dumps(document, indent=1, allow_nan=True, default=float).encode())
    write_bytes_atomic(out / "explain.html", figures.html_section(result, pngs).encode())
    print(f"{dataset.name}: explainer of {system.name} {config.layer} -> {', '.join(result['targets'])}, "
          f"trained in {result['train_seconds']:.1f} s")
    for name, entry in result["instability"].items():
        print(f"  location instability {figures.SET_TITLES.get(name, name):>36}: {entry['instability']:.4f} "
              f"({entry['measured']} of {entry['filters']} filters measured)")
    print(f"  p {result['p']:.3f}; reconstruction error "
          + ", ".join(f"{k} {v:.3f}" for k, v in result["reconstruction_error"].items())
          + f"; head accuracy {result['head_accuracy']:.3f}, on reconstructed {summary['head_layer']} "
          + (f"{summary['head_accuracy_reconstructed']:.3f}" if summary["head_layer"] else "not measured"))
    print(f"wrote {out}/explain.json, explain.html and {len(pngs)} figures")
    if args.json:
        print_json(summary)
    return 0
