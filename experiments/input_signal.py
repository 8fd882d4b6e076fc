"""What do the classifiers like to see? The input-signal probe (Palacio et al., CVPR 2018) on mnist5k.

Claim: a decoder fine-tuned on a frozen classifier's gradients shows the part of the input signal
that classifier uses; reading every classifier on every tuned autoencoder's reconstructions gives
a cross-classifier matrix M[A][B] = acc_B(reconstructions tuned for A) / acc_B(originals) and an
order. Probed: the glass-box (D4-invariant, one layer), AlexNet (trained from scratch at 64 px,
width 0.25, 3 epochs), LeNet-5 (8 epochs) and a logistic regression on the pixels; every other
registered system can be added with --systems (cnn_csg, saab_ff, pixelhop, glassbox_both and
alexnet_csg pass the gradient check too: k-means is used only while fitting saab_ff).

The autoencoder (glassjax.probes.input_signal): SegNet, widths 16, 32, two conv + BN + ReLU
blocks per stage, 2x2 max pooling with argmax and unpooling, 1x1 output conv; pretrained 6 epochs
(MSE, Adam 2e-3, batch 64), then per classifier 2 epochs of decoder-only fine-tuning on its
cross-entropy. Measures on the 1000 test images: M, the order by row means (and whether the
pairwise relation is total), NMI of originals and reconstructions (32 bins per image,
(H(A) + H(B)) / H(A, B), intra: same image, inter: a seeded derangement), and the share of
reconstructions closer to their original's orientation than to any other D4 element of it.

Command:   python experiments/input_signal.py --out results/input_signal
Runtime:   414 s wall, 316 CPU-s, on 2 CPU cores shared with other jobs (load 5-8); --quick 60 CPU-s.
Expected:  diagonal of M 0.995 glassbox, 1.017 alexnet, 0.999 lenet5, 0.984 logistic (>= 0.95: met);
           intra-NMI > inter-NMI on every row (gaps 0.18-0.26: met); order by row means
           glassbox > alexnet > logistic > lenet5, total, following neither accuracy (rho -0.20) nor
           parameter count (rho 0.60). The glass-box's tuned reconstructions change least (MSE 0.008)
           and keep orientation (margin 0.431 vs untuned 0.441, AlexNet 0.407), but the glass-box is
           the most fragile reader (column mean 0.594: 0.367 on LeNet-tuned reconstructions).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

from glassjax import data
from glassjax.core.files import write_bytes_atomic
from glassjax.probes import input_signal

# classifier -> config overrides of its registered system ({} for the logistic anchor).
PLAN = {
    "glassbox": {},
    "alexnet": {"width": 0.25, "epochs": 3},
    "lenet5": {"epochs": 8},
    "logistic": {},
}
QUICK_PLAN = {"glassbox": {}, "lenet5": {"epochs": 1}, "logistic": {}}
AUTOENCODER = input_signal.AutoencoderConfig(widths=(16, 32), convs=2, pretrain_epochs=6, finetune_epochs=2)
QUICK_AUTOENCODER = input_signal.AutoencoderConfig(widths=(4, 8), convs=1, pretrain_epochs=1, finetune_epochs=1,
                                                   batch_size=16)


def targets(result: dict) -> dict:
    """The issue's targets, each with its measured value and whether it is met."""
    out = {}
    for name in result["classifiers"]:
        diagonal = result["matrix"][name][name]
        out[f"M[{name}][{name}] >= 0.95"] = {"value": diagonal, "met": bool(diagonal >= 0.95)}
    for row, v in result["nmi"].items():
        out[f"NMI intra > inter ({row})"] = {"value": v["intra"] - v["inter"], "met": bool(v["intra"] > v["inter"])}
    # wall seconds, and CPU seconds (what dedicated cores would take, or less)
    for kind, seconds in (("total", result["seconds"]), ("cpu", result["stage_seconds"]["cpu"])):
        out[f"whole probe < 1200 s ({kind})"] = {"value": seconds, "met": bool(seconds < 1200)}
    return out


def main(argv=None) -> dict:
    p = _common.parser(__doc__, "results/input_signal")
    p.add_argument("--systems", default=None,
                   help="comma-separated classifiers to probe instead of the plan's (registered names, logistic); "
                        "each with its system's default config")
    args = p.parse_args(argv)
    clock = _common.Stopwatch()
    out = Path(args.out)
    plan = QUICK_PLAN if args.quick else PLAN
    if args.systems:
        plan = {n.strip(): plan.get(n.strip(), {}) for n in args.systems.split(",") if n.strip()}
    dataset = data.load("mnist5k", seed=args.seed)
    if args.quick:
        dataset = _common.shrink(dataset, train_per_class=20, test_per_class=8)
    _common.log(f"{dataset.name}: fitting {', '.join(plan)}")
    probed, skipped, fit_seconds = input_signal.prepare(list(plan), dataset, seed=args.seed,
                                                        overrides={n: o for n, o in plan.items() if o})
    result, samples = input_signal.run(dataset, probed, QUICK_AUTOENCODER if args.quick else AUTOENCODER,
                                       seed=args.seed)
    # Per stage (the probe's own), then the whole run as every experiment records it: "seconds".
    stages = result.pop("seconds")
    # CPU seconds of this process (all threads): the runtime on dedicated cores when others share the machine.
    result["stage_seconds"] = dict(stages, fit=fit_seconds, cpu=time.process_time())
    result["seconds"] = clock.elapsed
    result.update(environment=_common.environment(), quick=args.quick, seed=args.seed, plan=plan, skipped=skipped)
    result["targets"] = targets(result)
    names = result["classifiers"]
    rows = [input_signal.UNTUNED, *names]
    _common.table([{"A \\ B": r, **result["matrix"][r]} for r in rows], ["A \\ B", *names],
                  title="M[A][B] = accuracy of B on the reconstructions tuned for A / on the originals")
    _common.table([{"row": r, "nmi_intra": result["nmi"][r]["intra"], "nmi_inter": result["nmi"][r]["inter"],
                    "orientation_kept": (result["orientation_kept"] or {}).get(r, {}).get("kept"),
                    "orientation_margin": (result["orientation_kept"] or {}).get(r, {}).get("margin"),
                    "mse": result["mse"][r],
                    "accuracy": result["accuracy"].get(r, ""), "parameters": result["parameters"].get(r, ""),
                    "row_mean": (result["order_detail"] or {}).get("row_mean", {}).get(r, ""),
                    "column_mean": (result["order_detail"] or {}).get("column_mean", {}).get(r, "")} for r in rows],
                  ["row", "accuracy", "parameters", "row_mean", "column_mean", "nmi_intra", "nmi_inter",
                   "orientation_kept", "orientation_margin", "mse"],
                  title="per classifier (row: the autoencoder tuned for it)")
    print(f"\norder (row means, best first): {' > '.join(result['order'])}; total: "
          f"{(result['order_detail'] or {}).get('total')}; Spearman vs accuracy {result['order_vs_accuracy']:.2f}, "
          f"vs parameters {result['order_vs_parameters']:.2f}; orientation ceiling {result['orientation_ceiling']}")
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    _common.table([{"target": k, **v} for k, v in result["targets"].items()], ["target", "value", "met"],
                  title="the issue's targets")
    figures = {"input_signal_reconstructions.png": input_signal.reconstruction_grid(samples, rows),
               "input_signal_matrix.png": input_signal.matrix_heatmap(result["matrix"], rows, names)}
    written = [_common.write_json(out, "input_signal.json", result)]
    for filename, png in figures.items():
        write_bytes_atomic(out / filename, png)
        written.append(out / filename)
    write_bytes_atomic(out / "input_signal.html", input_signal.html_section(result, figures).encode())
    written.append(out / "input_signal.html")
    _common.done(clock, written)
    return result


if __name__ == "__main__":
    main()
