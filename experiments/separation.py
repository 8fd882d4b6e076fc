"""Claim (a): the representation layer shrinks intra-class and grows inter-class distance.

Compared with the pixels and with every layer of AlexNet (trained from scratch on the same
train split at 64 x 64, width 0.5), measured on the held-out test split, clean and with every
test image acted on by a seeded random D4 element. Glass-box layers (group D4, defaults):
the responses at the identity E(x)[e], the invariant representation, the "both"
representation (invariant + projected orbit), and the PCA output of each model.

Distances live in spaces of different dimension and scale, so each layer's distances are
divided by its RMS radius r = sqrt(mean_i ||f_i - mean f||^2) (the root of the total
variance): intra/r is the typical distance to the own class centroid, inter/r the mean
distance between class centroids, both as fractions of the spread of the whole test set.
The two scale-free summaries are inter/intra and the Fisher ratio tr(S_b)/tr(S_w)
(``glassjax.metrics.separability``); raw distances are kept in the JSON.

Command:   python experiments/separation.py --out results/separation
           (add --datasets lfw_faces mnist5k for MNIST as well; AlexNet then trains 3 epochs
           on 4000 images)
Runtime:   130 s for lfw_faces, 720 s for mnist5k, measured on 2 CPU cores shared with other jobs.
Expected:  the invariant representation's ratios are the same on clean and D4-moved images;
           on clean images they are level with the pixels and below every trained AlexNet
           layer (lfw_faces inter/intra 0.774 vs pixels 0.810, AlexNet 1.02-5.30); on
           D4-moved mnist5k they are above every AlexNet layer (0.761 vs 0.40-0.62).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from glassjax.analysis import comparison  # noqa: E402
from glassjax import data  # noqa: E402
from glassjax.analysis import scoring  # noqa: E402
from glassjax.analysis import metrics  # noqa: E402

ALEXNET_EPOCHS = {"lfw_faces": 10, "mnist5k": 3, "digits": 5}


def pixels() -> comparison.Features:
    return comparison.Features(("pixels",), lambda x: {"pixels": x.reshape(x.shape[0], -1)})


def geometry(f: np.ndarray, y: np.ndarray) -> dict:
    """Separability of f (N, D), raw and divided by the RMS radius of f."""
    sep = {k: float(v) for k, v in metrics.separability(f, y).items()}
    centred = f - f.mean(axis=0, keepdims=True)
    rms = float(np.sqrt(np.mean(np.sum(np.square(centred.astype(np.float64)), axis=1))))
    return {
        **sep,
        "rms_radius": rms,
        "intra_normalised": sep["intra_class_distance"] / rms,
        "inter_normalised": sep["inter_class_distance"] / rms,
        "inter_over_intra": sep["inter_class_distance"] / sep["intra_class_distance"],
        "dim": int(f.shape[1]),
    }


def measure(dataset, *, seed: int, epochs: int, width: float) -> dict:
    """Rows per layer (pixels, glass-box, AlexNet) of clean and D4-moved test-set geometry."""
    _common.log(f"{dataset.name}: fitting the glass-boxes")
    invariant = comparison.fit("glassbox", dataset, seed=seed)
    both = comparison.fit("glassbox_both", dataset, seed=seed)
    _common.log(f"{dataset.name}: training AlexNet ({epochs} epochs, width {width})")
    cnn = comparison.fit("alexnet", dataset, seed=seed, epochs=epochs, width=width)
    shape = dataset.x_test.shape[1:]

    def chosen(fitted, layers):
        every = comparison.system_features(fitted, shape)
        keep = tuple(f"{fitted.system.name}_{layer}" for layer in layers)
        return comparison.Features(keep, lambda x: {k: v for k, v in every.fn(x).items() if k in keep})

    features = comparison.combine(
        pixels(),
        chosen(invariant, ("response", "invariant", "pca")),
        chosen(both, ("representation", "pca")),
        comparison.system_features(cnn, shape),
    )
    moved = scoring.transformed_test_set(dataset.x_test, "d4", seed=seed)
    clean_f = _common.layer_features(features, dataset.x_test)
    moved_f = _common.layer_features(features, moved)
    rows = []
    for name in features.names:
        row = {"layer": name, **geometry(clean_f[name], dataset.y_test)}
        row["moved"] = geometry(moved_f[name], dataset.y_test)
        rows.append(row)
    alexnet_scores = scoring.scores(comparison.predictor(cnn), dataset.x_test, dataset.y_test, group="d4", seed=seed,
                                    num_classes=dataset.num_classes)
    info = dict(cnn.system.settings(cnn.params), seconds=cnn.fit_seconds, accuracy=alexnet_scores["accuracy"],
                accuracy_transformed=alexnet_scores["accuracy_transformed"])
    return {"rows": rows, "alexnet": info, "n_test": int(dataset.y_test.shape[0]), "n_train": int(dataset.y_train.shape[0])}


def separation_figure(name: str, rows: list[dict]):
    fig = _common.figure(10.0, 3.4)
    axes = fig.subplots(1, 3)
    labels = [r["layer"].replace("glassbox_both_", "gb both ").replace("glassbox_", "gb ").replace("alexnet_", "") for r in rows]
    colours = ["#999999" if r["layer"] == "pixels" else "#1b7837" if r["layer"].startswith("glassbox") else "#762a83" for r in rows]
    x = np.arange(len(rows))
    panels = (("intra_normalised", "intra-class distance / RMS radius"),
              ("inter_over_intra", "inter / intra"),
              ("fisher_ratio", "Fisher ratio tr(S_b)/tr(S_w)"))
    for ax, (key, title) in zip(axes, panels):
        ax.bar(x - 0.2, [r[key] for r in rows], 0.4, color=colours, label="clean")
        ax.bar(x + 0.2, [r["moved"][key] for r in rows], 0.4, color=colours, alpha=0.45, hatch="//", label="D4-moved")
        ax.set_xticks(x, labels, rotation=70, fontsize=7)
        ax.set_title(title, fontsize=9)
        if key == "fisher_ratio":
            ax.set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{name} test set: grey pixels, green glass-box, purple AlexNet; solid clean, hatched D4-moved", fontsize=9)
    return fig


def main(argv=None) -> dict:
    p = _common.parser(__doc__, "results/separation")
    p.add_argument("--datasets", nargs="+", default=["lfw_faces"], choices=sorted(data.BUNDLED))
    p.add_argument("--width", type=float, default=0.5, help="AlexNet width (times torchvision's channels)")
    args = p.parse_args(argv)
    clock = _common.Stopwatch()
    out = Path(args.out)
    result = {"environment": _common.environment(), "quick": args.quick, "seed": args.seed,
              "normalisation": "distances divided by the RMS radius sqrt(mean ||f - mean f||^2) of the same test features"}
    written = []
    for name in args.datasets:
        dataset = data.load(name, seed=args.seed)
        if args.quick:
            dataset = _common.shrink(dataset, train_per_class=12, test_per_class=6)
        epochs = 1 if args.quick else ALEXNET_EPOCHS[name]
        result[name] = measure(dataset, seed=args.seed, epochs=epochs, width=args.width)
        rows = [{"layer": r["layer"], "dim": r["dim"], "intra/r": r["intra_normalised"], "inter/r": r["inter_normalised"],
                 "inter/intra": r["inter_over_intra"], "Fisher": r["fisher_ratio"],
                 "inter/intra D4": r["moved"]["inter_over_intra"], "Fisher D4": r["moved"]["fisher_ratio"]}
                for r in result[name]["rows"]]
        a = result[name]["alexnet"]
        _common.table(rows, ["layer", "dim", "intra/r", "inter/r", "inter/intra", "Fisher", "inter/intra D4", "Fisher D4"],
                      title=f"{name}: class geometry of the test set (AlexNet accuracy {a['accuracy']:.3f} clean, "
                            f"{a['accuracy_transformed']:.3f} D4)")
        written.append(_common.save_figure(separation_figure(name, result[name]["rows"]), out, f"separation_{name}.png"))
    result["seconds"] = clock.elapsed
    written.insert(0, _common.write_json(out, "separation.json", result))
    _common.done(clock, written)
    return result


if __name__ == "__main__":
    main()
