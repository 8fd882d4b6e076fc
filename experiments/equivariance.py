"""Claim (b): layer by layer, the glass-box is exactly D4-invariant/equivariant where AlexNet is not.

The paper's comparison, through ``glassjax.analysis.comparison.run`` (the same table as
``glassjax compare``): for every glass-box stage (responses at the identity, projected orbit,
invariant pooling, the "both" representation, PCA) and every AlexNet layer (conv1..fc8,
trained from scratch on the train split at 64 x 64, width 0.5, without and with D4
augmentation), on lfw_faces under D4:
  invariance error   ||phi(g x) - phi(x)|| / ||phi(x)||, mean over g != e;
  equivariance error Lenc-Vedaldi residual of the best linear map M_g (fitted on the train
                     images and their orbit, measured on test images; 0 exact, 1 no better
                     than the mean), mean over g != e; the identity's value is the fit's floor;
  invariance rate    ||d/dt phi(rot_t x)|| / ||phi(x)|| along continuous rotation (jax.jvp; what
                     glassjax called the Lie derivative before);
  Lie derivative     Gruver et al.'s: the network's own input rotated, spatial maps rotated back;
  Fisher ratio and linear-probe accuracy of the layer.

Command:   python experiments/equivariance.py --out results/equivariance
Runtime:   860 s, measured on 2 CPU cores shared with other jobs.
Expected:  glass-box invariant and PCA layers: invariance error 0 (to float precision);
           orbit layer: equivariance error ~0; AlexNet: invariance errors well above 0 in
           every layer, equivariance errors between the floor and 1, growing with depth;
           D4 augmentation lowers AlexNet's invariance error in the late layers but not to 0;
           the glass-box's invariance rate (continuous rotation) is larger than AlexNet's.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from glassjax.systems import alexnet  # noqa: E402
from glassjax.analysis import comparison  # noqa: E402
from glassjax import data  # noqa: E402

COLUMNS = ["layer", "invariance", "equivariance", "eq. floor", "inv. rate", "Lie deriv.", "Fisher", "probe acc."]


def rows_for_table(rows: list[dict]) -> list[dict]:
    return [{"layer": r["name"], "invariance": r["invariance_error"], "equivariance": r["equivariance_error"],
             "eq. floor": r["equivariance_error_identity"], "inv. rate": r["invariance_rate"],
             "Lie deriv.": r["lie_derivative"], "Fisher": r["fisher_ratio"],
             "probe acc.": r.get("linear_probe_accuracy", float("nan"))} for r in rows]


def errors_figure(runs: dict[str, dict]):
    """Invariance and equivariance error per layer, glass-box stages then AlexNet layers."""
    fig = _common.figure(10.0, 3.6)
    axes = fig.subplots(1, 2, sharey=True)
    first = next(iter(runs.values()))
    glass = [r for r in first["layers"] if r["system"] != "alexnet"]
    cnn = [f"alexnet_{n}" for n in alexnet.LAYER_NAMES if any(r["name"] == f"alexnet_{n}" for r in first["layers"])]
    names = [r["name"].replace("glassbox_both_", "gb both ").replace("glassbox_", "gb ") for r in glass] + [
        n.replace("alexnet_", "") for n in cnn]
    x = np.arange(len(names))
    styles = {"none": ("#762a83", 1.0), "d4": ("#e08214", 1.0)}
    for ax, key, title in zip(axes, ("invariance_error", "equivariance_error"), ("invariance error (mean over g != e)", "equivariance error (Lenc-Vedaldi, held out)")):
        ax.bar(x[: len(glass)], [r[key] for r in glass], 0.8, color="#1b7837", label="glass-box")
        for i, (augment, run) in enumerate(runs.items()):
            by_name = {r["name"]: r for r in run["layers"]}
            colour, alpha = styles.get(augment, ("#333333", 1.0))
            offset = (i - (len(runs) - 1) / 2) * 0.4
            ax.bar(x[len(glass):] + offset, [by_name[n][key] for n in cnn], 0.4, color=colour, alpha=alpha,
                   label=f"AlexNet, augment={augment}")
        ax.set_xticks(x, names, rotation=70, fontsize=7)
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("relative error")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{first['dataset']}, group {first['group']}: 0 = exactly invariant / equivariant", fontsize=9)
    return fig


def main(argv=None) -> dict:
    p = _common.parser(__doc__, "results/equivariance")
    p.add_argument("--dataset", default="lfw_faces", choices=sorted(data.BUNDLED))
    p.add_argument("--augments", nargs="+", default=["none", "d4"], choices=["none", "d4"], help="AlexNet training augmentations")
    p.add_argument("--epochs", type=int, default=10, help="AlexNet epochs")
    p.add_argument("--images", type=int, default=200, help="metric images from each split (comparison.run)")
    args = p.parse_args(argv)
    clock = _common.Stopwatch()
    out = Path(args.out)
    dataset = data.load(args.dataset, seed=args.seed)
    epochs, images, augments = args.epochs, args.images, args.augments
    if args.quick:
        dataset = _common.shrink(dataset, train_per_class=6, test_per_class=4)
        # No AlexNet: its metrics compile for minutes; separation.py's smoke test trains one.
        epochs, images, augments = 1, 12, augments[:1]
    _common.log("fitting the glass-boxes")
    glassboxes = {name: comparison.fit(name, dataset, seed=args.seed) for name in ("glassbox", "glassbox_both")}
    result = {"environment": _common.environment(), "quick": args.quick, "seed": args.seed, "alexnet": {}, "runs": {}}
    for augment in augments:
        # The glass-box rows do not depend on the AlexNet, so only the first run measures them.
        fitted = dict(glassboxes) if not result["runs"] else {}
        if not args.quick:
            _common.log(f"training AlexNet, augment={augment}")
            cnn = comparison.fit("alexnet", dataset, seed=args.seed, epochs=epochs, width=0.5, augment=augment)
            result["alexnet"][augment] = dict(cnn.system.settings(cnn.params), seconds=cnn.fit_seconds)
            fitted["alexnet"] = cnn
        if not fitted:
            continue
        run = comparison.run(dataset, fitted, group="d4", images=images, seed=args.seed)
        result["runs"][augment] = run
        _common.table(rows_for_table(run["layers"]), COLUMNS, title=f"{args.dataset}, D4, AlexNet augment={augment}")
        for model, scores in run["accuracy"].items():
            if scores is not None:
                print(f"{model}: accuracy {scores['accuracy']:.3f} clean, {scores['accuracy_transformed']:.3f} D4")
    first = result["runs"][augments[0]]
    merged = {augment: dict(run, layers=first["layers"] if augment == augments[0] else
                             [r for r in first["layers"] if r["system"] != "alexnet"] + run["layers"])
              for augment, run in result["runs"].items()}
    return _common.finish(clock, out, result, "equivariance.json", errors_figure(merged), f"equivariance_{args.dataset}.png")


if __name__ == "__main__":
    main()
