"""``glassjax fit``: fit the glass-box on a data set's train split, report on its test split."""
from __future__ import annotations

import argparse

from glassjax.commands._common import add_dataset_arguments, load_dataset, print_json


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The GlassBox choices as command-line options."""
    from glassjax import classifiers, representation
    from glassjax.glassbox import FILTER_KINDS, REPRESENTATIONS

    parser.add_argument("--group", default="d4", help="d4 | c4 | flip | none | rot:N | trans:N (default: %(default)s)")
    parser.add_argument("--representation", default="invariant", choices=REPRESENTATIONS, help="default: %(default)s")
    parser.add_argument("--filters", default="patch", choices=FILTER_KINDS, help="filter kind (default: %(default)s)")
    parser.add_argument("--poolings", default=None,
                        help=f"comma-separated group poolings from {','.join(representation.POOLINGS)} "
                             "(default: all three; mean,max under 1000 training images)")
    parser.add_argument("--grid", type=int, default=None, help="spatial pooling grid (default: 4; 2 for small images or data)")
    parser.add_argument("--components", type=int, default=None, help="PCA components of layer 2 (default: 200; 30 under 1000 training images)")
    parser.add_argument("--classifier", default="logistic", choices=classifiers.KINDS, help="default: %(default)s")
    parser.add_argument("--regularization", type=float, default=None,
                        help="classifier penalty: ridge alpha, LDA shrinkage, logistic/SVM/MLP l2 (default: the classifier's)")


def model_config(args: argparse.Namespace):
    from glassjax.glassbox import GlassBoxConfig

    poolings = tuple(p.strip() for p in args.poolings.split(",") if p.strip()) if args.poolings else None
    return GlassBoxConfig(group=args.group, representation=args.representation, filters=args.filters,
                          poolings=poolings, grid=args.grid, components=args.components, classifier=args.classifier,
                          regularization=args.regularization).validated()


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit", help="fit a glass-box model and report test accuracy",
        description="Fit the three-layer glass-box (representation, PCA, classifier) on the train split "
                    "and report accuracy on the test split, clean and acted on by random group elements.")
    add_dataset_arguments(parser)
    add_model_arguments(parser)
    parser.add_argument("--out", default=None, help="save the fitted model to this .npz file")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    parser.set_defaults(run=run)


def describe(model, dataset, seed: int) -> dict:
    """The report of ``fit`` and ``evaluate``: the model's settings and its test-set scores."""
    from glassjax.evaluation import classification_report

    params = model.params_
    report = {
        "dataset": dataset.name,
        "classes": list(dataset.class_names),
        "n_train": int(dataset.x_train.shape[0]),
        "n_test": int(dataset.x_test.shape[0]),
        "group": params.config.group,
        "representation": params.config.representation,
        "filters": params.config.filters,
        "poolings": list(params.config.poolings),
        "classifier": params.config.classifier,
        "feature_dim": int(params.pca.mean.shape[0]),
        "components": int(params.pca.components.shape[0]),
    }
    report.update(classification_report(model.predict, model.represent, dataset.x_test, dataset.y_test, seed=seed))
    return report


def print_report(report: dict) -> None:
    print(f"{report['dataset']}: {report['n_train']} train / {report['n_test']} test, classes {', '.join(report['classes'])}")
    print(f"model: group {report['group']}, {report['representation']} representation ({report['feature_dim']} -> "
          f"{report['components']} PCA), {report['classifier']} classifier")
    print(f"accuracy {report['accuracy']:.4f} clean, {report['accuracy_transformed']:.4f} under random {report['test_group']}")
    print(f"class geometry (test, representation layer): intra {report['intra_class_distance']:.4g}, "
          f"inter {report['inter_class_distance']:.4g}, Fisher ratio {report['fisher_ratio']:.4g}")


def run(args: argparse.Namespace) -> int:
    from glassjax import streaming
    from glassjax.glassbox import GlassBox

    config = model_config(args)
    # A prepared TFDS set with a test split streams its train split; the rest loads into memory.
    stream = None if args.classes else streaming.tfds_stream(args.dataset, args.data_dir)
    dataset = load_dataset(args) if stream is None else stream.test
    train = (dataset.x_train, dataset.y_train) if stream is None else (stream.train,)
    model = GlassBox(seed=args.seed, **vars(config)).fit(*train, class_names=dataset.class_names)
    report = describe(model, dataset, args.seed)
    if stream is not None:
        report.update(n_train=len(stream.train), streamed=True)
    report["fit_seconds"] = round(model.fit_seconds_, 3)
    if args.out:
        model.save(args.out)
        report["out"] = args.out
    print_report(report)
    print(f"fit in {report['fit_seconds']:.1f} s" + (f"; model saved to {args.out}" if args.out else ""))
    if args.json:
        print_json(report)
    return 0
