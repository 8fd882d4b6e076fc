"""Claim (c): accuracy, clean and under random D4, binary (the paper's setting) and multi-class.

The glass-box (group D4, default settings, logistic classifier) with representation
``invariant`` and ``both`` (invariant + the projected orbit), on:
  1. lfw_faces, face vs non-face (the paper's binary setting);
  2. every binary pair of mnist5k digits (45 pairs, ~800 train / ~200 test images each),
     drawn as a 10 x 10 heat map (lower triangle invariant, upper triangle both);
  3. multi-class mnist5k (4000 / 1000) and digits (1257 / 540), with the confusion matrix.
"Transformed" is the test set with every image acted on by its own seeded random D4 element.
Peers are from issue 2 (measured by the issue author on this machine, same seeded splits).

Command:   python experiments/accuracy.py --out results/accuracy
Runtime:   1560 s, measured on 2 CPU cores shared with other jobs (the 90 pair fits ~22 min).
Expected:  lfw_faces invariant 1.000 / 1.000; invariant models score the same clean and
           transformed (exact D4 invariance); mnist5k invariant 0.939 / 0.939, both 0.982
           clean (goal 0.985 not met), 0.404 transformed; digits both 0.991. On the 6-vs-9
           pair the invariant model scores 0.905 against 0.995 for both, which falls to
           0.505 (chance) under D4; 2 vs 4 (0.845) and 2 vs 3 (0.855) are the invariant
           model's hardest pairs.
"""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from glassjax import data  # noqa: E402
from glassjax.core.progress import progress  # noqa: E402

REPRESENTATIONS = ("invariant", "both")

# Issue 2: measured by the issue author on this machine, same seeded splits; (clean, transformed).
PEERS = {
    "mnist5k": {
        "pixels->PCA->logistic": (0.876, 0.277),
        "scattering (kymatio J=2) + logistic": (0.983, 0.341),
        "scattering averaged over D4": (0.866, 0.866),
        "LeNet": (0.970, 0.326),
        "LeNet + D4 augmentation": (0.900, 0.898),
        "AlexNet from scratch (64px)": (0.972, 0.330),
    },
    "lfw_faces": {
        "pixels->PCA->logistic": (1.00, 0.75),
        "scattering (kymatio J=2) + logistic": (1.00, 0.93),
        "scattering averaged over D4": (1.00, 1.00),
        "LeNet": (1.00, 0.93),
        "LeNet + D4 augmentation": (0.97, 0.98),
    },
    "digits": {
        "pixels->PCA->logistic": (0.969, 0.311),
        "scattering (kymatio J=2) + logistic": (0.991, 0.293),
        "scattering averaged over D4": (0.935, 0.935),
        "LeNet": (0.973, 0.319),
        "LeNet + D4 augmentation": (0.837, 0.849),
    },
}


def score_set(dataset, *, seed: int, representations=REPRESENTATIONS) -> list[dict]:
    """One row per representation: accuracy clean / transformed, fit seconds, confusions."""
    rows = []
    for representation in representations:
        _common.log(f"{dataset.name}: fitting representation={representation}")
        _, scores = _common.fit_scored(dataset, seed=seed, representation=representation)
        rows.append({"dataset": dataset.name, "model": f"glass-box {representation}", "representation": representation, **scores})
    return rows


def score_pairs(dataset, classes, *, seed: int) -> list[dict]:
    """Every binary pair of ``classes`` (names), each with both representations."""
    rows = []
    pairs = list(itertools.combinations(classes, 2))
    for a, b in progress(pairs, total=len(pairs), desc="pairs", unit="pair"):
        pair = data.select_classes(dataset, [a, b])
        for representation in REPRESENTATIONS:
            _, scores = _common.fit_scored(pair, seed=seed, representation=representation)
            rows.append({"a": a, "b": b, "representation": representation, **scores})
    return rows


def pair_matrix(rows: list[dict], classes, key: str) -> np.ndarray:
    """(K, K): invariant accuracy below the diagonal, ``both`` above it, NaN on it."""
    index = {c: i for i, c in enumerate(classes)}
    m = np.full((len(classes), len(classes)), np.nan)
    for r in rows:
        i, j = index[r["a"]], index[r["b"]]
        if r["representation"] == "invariant":
            m[max(i, j), min(i, j)] = r[key]
        else:
            m[min(i, j), max(i, j)] = r[key]
    return m


def pairs_figure(rows: list[dict], classes):
    from matplotlib.patches import Rectangle

    fig = _common.figure(9.0, 4.4)
    axes = fig.subplots(1, 2)
    for ax, key, title in zip(axes, ("accuracy", "accuracy_transformed"), ("clean test images", "test images under random D4")):
        m = pair_matrix(rows, classes, key)
        im = ax.imshow(m, vmin=0.5, vmax=1.0, cmap="viridis")
        for i, j in itertools.product(range(len(classes)), repeat=2):
            if np.isfinite(m[i, j]):
                ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] < 0.8 else "black")
        for c6, c9 in (("6", "9"),):
            if c6 in classes and c9 in classes:
                i, j = classes.index(c6), classes.index(c9)
                for r, c in ((j, i), (i, j)):
                    ax.add_patch(Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        ax.set_xticks(range(len(classes)), classes)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_title(f"{title}\nbelow diagonal: invariant; above: both", fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.8, label="pair accuracy")
    fig.suptitle("mnist5k, every binary pair, glass-box D4 (accuracy in %)", fontsize=10)
    return fig


def confusion_figure(rows: list[dict], class_names):
    fig = _common.figure(4.2 * len(rows), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(rows)))
    for ax, row in zip(axes, rows):
        counts = np.asarray(row["confusion"])
        ax.imshow(np.log1p(counts), cmap="Blues")
        for i, j in itertools.product(range(len(class_names)), repeat=2):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=6,
                        color="red" if i != j and {class_names[i], class_names[j]} == {"6", "9"} else "black")
        ax.set_xticks(range(len(class_names)), class_names)
        ax.set_yticks(range(len(class_names)), class_names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{row['model']}: accuracy {row['accuracy']:.3f}", fontsize=9)
    fig.suptitle(f"{rows[0]['dataset']} confusion, clean test images (6/9 cells in red)", fontsize=10)
    return fig


def six_nine(row: dict, class_names) -> dict:
    """How many true 6s were called 9 and true 9s called 6, clean and transformed."""
    if "6" not in class_names or "9" not in class_names:
        return {}
    i, j = class_names.index("6"), class_names.index("9")
    out = {}
    for key in ("confusion", "confusion_transformed"):
        c = np.asarray(row[key])
        out[key] = {"6_as_9": int(c[i, j]), "9_as_6": int(c[j, i]), "n_6": int(c[i].sum()), "n_9": int(c[j].sum())}
    return out


def main(argv=None) -> dict:
    args = _common.parser(__doc__, "results/accuracy").parse_args(argv)
    clock = _common.Stopwatch()
    out = Path(args.out)

    def load(name, classes=None):
        d = data.load(name, classes=classes, seed=args.seed)
        return _common.shrink(d, train_per_class=12, test_per_class=6) if args.quick else d

    mnist = load("mnist5k")
    pair_classes = ["6", "9"] if args.quick else list(mnist.class_names)
    result = {"environment": _common.environment(), "quick": args.quick, "seed": args.seed, "peers": PEERS,
              "peers_source": "issue 2, measured by the issue author on this machine"}

    # --quick: one representation outside the pairs, and no digits.
    representations = REPRESENTATIONS[:1] if args.quick else REPRESENTATIONS
    result["lfw_faces"] = score_set(load("lfw_faces"), seed=args.seed, representations=representations)
    result["mnist5k_pairs"] = score_pairs(mnist, pair_classes, seed=args.seed)
    if args.quick:
        result["mnist5k"] = score_set(mnist, seed=args.seed, representations=representations)
        result["digits"] = []
    else:
        result["mnist5k"] = score_set(mnist, seed=args.seed)
        result["digits"] = score_set(load("digits"), seed=args.seed)
    for row in result["mnist5k"]:
        row["six_nine"] = six_nine(row, mnist.class_names)
    result["seconds"] = clock.elapsed

    rows = []
    for name in ("lfw_faces", "mnist5k", "digits"):
        for r in result[name]:
            rows.append({"data": name, "model": r["model"], "clean": r["accuracy"], "D4": r["accuracy_transformed"], "fit s": r["fit_seconds"]})
        for peer, (clean, moved) in PEERS[name].items():
            rows.append({"data": name, "model": f"{peer} (issue 2)", "clean": clean, "D4": moved})
    _common.table(rows, ["data", "model", "clean", "D4", "fit s"], title="accuracy, clean and under random D4")
    pair_rows = [{"pair": f"{r['a']} vs {r['b']}", "representation": r["representation"], "clean": r["accuracy"], "D4": r["accuracy_transformed"]}
                 for r in result["mnist5k_pairs"]]
    hardest = sorted(pair_rows, key=lambda r: r["clean"])[:6]
    _common.table(hardest, ["pair", "representation", "clean", "D4"], title="mnist5k: the hardest pairs")
    for r in result["mnist5k"]:
        print(f"{r['model']}: 6/9 confusions {r.get('six_nine')}")

    written = [_common.write_json(out, "accuracy.json", result)]
    written.append(_common.save_figure(pairs_figure(result["mnist5k_pairs"], pair_classes), out, "accuracy_pairs.png"))
    written.append(_common.save_figure(confusion_figure(result["mnist5k"], list(mnist.class_names)), out, "accuracy_confusion.png"))
    _common.done(clock, written)
    return result


if __name__ == "__main__":
    main()
