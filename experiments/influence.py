"""Issue 18: the differentiable glass-box fit and the influence of training images, measured on digits.

1. Finite differences: the gradient of a test loss (mean cross-entropy of 20 test images) with
   respect to the training images, their weights and the regularization, through the whole
   differentiable fit of a 200-image digits subset in float64, against central differences
   along one seeded random direction each. The images carry 0.01 x U(0, 1) noise: on blank
   digit background a patch filter's correlation is exactly 0, the kink of relu_pair, where
   the model has one-sided derivatives only; the noise moves the check to a generic point.
   Even there, some of the ~4.6M relu arguments lie within a step of 0 and bend the
   difference quotient (2e-4 relative at step 1e-7): the image step is 1e-8, where float64
   rounding (~1e-13 / step) is still far below the tolerance.
2. Equality with ``fit``: GlassBox() on all of digits (seed 0) vs the differentiable fit
   (float64): the largest difference of the decision functions on the test set, relative to
   their largest magnitude, and the share of equal predictions.
3. Influence of all 1257 training images on one test image: seconds after compilation.
4. Refits: for the 5 highest-loss test images, the weights of the 10 most harmful training
   images set to 0 and the model refitted (the differentiable fit's forward pass, every
   parameter solved again), against 10 random training images zeroed (mean of RANDOM_DRAWS
   seeded draws): does zeroing the harmful ones lower that image's loss more?
5. Orbit turns: how many of the orbit coordinates the invariant pooling reads turn when 10 random
   training images are removed (filters held fixed), and the eigenvalue shift over its gap.

Command:   python experiments/influence.py --out results/influence
Runtime:   3 to 5 minutes on 2 CPU cores shared with other jobs (--quick: under a minute).
Expected:  relative errors <= 1e-6 (target 1e-4); decision functions equal to 2.4e-4 of their
           scale, every prediction equal; influence of 1257 images in 1.5-5 s after
           compilation (target 30 s); zeroing the 10 most harmful weights lowers the loss more
           than zeroing 10 random ones for 3 of 5 (target 4 of 5, missed): the default model's
           orbit projection has near-degenerate eigenvalue pairs (gap 2.6e-5 of the largest),
           whose eigenvectors turn by about 4 degrees when one image's weight changes by 1 %,
           so the derivative, exact, holds only for small weight changes (docs/influence.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

import glassjax  # noqa: E402
from glassjax import data  # noqa: E402
from glassjax.analysis import influence as infl_lib  # noqa: E402
from glassjax.core import reduction  # noqa: E402
from glassjax.core.files import write_bytes_atomic  # noqa: E402
from glassjax.report.influence import influence_figure  # noqa: E402
from glassjax.systems.glassbox import GlassBoxConfig, apply, differentiable  # noqa: E402
from glassjax.systems.glassbox import model as glassbox_model  # noqa: E402

TOP = 10
RANDOM_DRAWS = 5
HIGH_LOSS = 5
FD_STEPS = {"images": 1e-8, "weights": 1e-6, "regularization": 1e-9}


def finite_differences(dataset, *, n_train: int, n_test: int, seed: int) -> dict:
    """Relative error |analytic - central difference| / |central difference| per argument."""
    x, y = dataset.x_train[:n_train], dataset.y_train[:n_train]
    plan = differentiable.plan_fit(GlassBoxConfig(), x.shape, y, key=jax.random.PRNGKey(seed))
    rng = np.random.default_rng(seed)
    with reduction.float64():
        images = jnp.asarray(x, jnp.float64) + 0.01 * jnp.asarray(rng.random(x.shape))
        weights = jnp.ones((n_train,), jnp.float64)
        lam = jnp.asarray(differentiable.default_regularization(plan.config), jnp.float64)
        xt, yt = jnp.asarray(dataset.x_test[:n_test], jnp.float64), jnp.asarray(dataset.y_test[:n_test], jnp.int32)

        def loss(images, weights, lam):
            return jnp.mean(infl_lib.cross_entropy(apply(differentiable.refit(plan, images, weights, lam), xt), yt))

        value = jax.jit(loss)
        grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(images, weights, lam)
        directions = (jnp.asarray(rng.normal(size=images.shape)), jnp.asarray(rng.normal(size=weights.shape)),
                      jnp.ones((), jnp.float64))
        out = {}
        for i, name in enumerate(("images", "weights", "regularization")):
            h = FD_STEPS[name]
            point = [images, weights, lam]
            plus, minus = list(point), list(point)
            plus[i], minus[i] = point[i] + h * directions[i], point[i] - h * directions[i]
            fd = (float(value(*plus)) - float(value(*minus))) / (2 * h)
            analytic = float(jnp.sum(grads[i] * directions[i]))
            out[name] = {"analytic": analytic, "finite_difference": fd, "step": h,
                         "relative_error": abs(analytic - fd) / abs(fd)}
            _common.log(f"fd {name}: analytic {analytic:.8g} fd {fd:.8g} rel {out[name]['relative_error']:.2e}")
    return out


def equality_with_fit(dataset, seed: int, params64) -> dict:
    model = glassjax.GlassBox(seed=seed).fit(dataset.x_train, dataset.y_train)
    ref = np.asarray(model.decision_function(dataset.x_test), np.float64)
    with reduction.float64():
        got = np.asarray(jax.jit(apply)(params64, jnp.asarray(dataset.x_test, jnp.float64)))
    scale = float(np.abs(ref).max())
    return {"max_abs_difference": float(np.abs(ref - got).max()), "score_scale": scale,
            "relative_difference": float(np.abs(ref - got).max() / scale),
            "equal_predictions": float(np.mean(ref.argmax(1) == got.argmax(1))), "fit_seconds": float(model.fit_seconds_)}


def refit_check(dataset, infl, *, count: int, top: int, draws: int, seed: int) -> tuple[dict, list[dict]]:
    with reduction.float64():
        refit = differentiable._refit_jit  # compiled already by Influence.params
        xt_all = jnp.asarray(dataset.x_test, jnp.float64)
    rng = np.random.default_rng(seed)
    n = infl.x_train.shape[0]
    rows, entries = [], []
    for entry, scores in infl_lib.rank_highest_loss(infl, dataset.x_test, dataset.y_test, count, top=top):
        entries.append(entry)
        i, loss, harmful = entry["test_index"], entry["loss"], entry["harmful"]

        def loss_without(drop):
            with reduction.float64():
                w = np.ones(n)
                w[list(drop)] = 0
                params = refit(infl.plan, infl.x_train, jnp.asarray(w))
                return float(infl_lib.cross_entropy(apply(params, xt_all[i : i + 1]), jnp.asarray([int(dataset.y_test[i])]))[0])

        harmful_loss = loss_without(harmful)
        random_losses = [loss_without(rng.choice(n, top, replace=False)) for _ in range(draws)]
        predicted = -float(np.sum(scores[harmful]))  # first order: weight 1 -> 0
        rows.append({"test_index": int(i), "loss": loss, "loss_harmful_removed": harmful_loss,
                     "loss_random_removed": float(np.mean(random_losses)), "change_harmful": harmful_loss - loss,
                     "change_random": float(np.mean(random_losses)) - loss, "predicted_change_harmful": predicted,
                     "harmful_beats_random": bool(harmful_loss < np.mean(random_losses))})
        _common.log(f"test {i}: loss {loss:.4f}, harmful removed {harmful_loss:.4f}, random removed {np.mean(random_losses):.4f}")
    seconds = [e["seconds"] for e in entries]
    summary = {"images": rows, "harmful_beats_random": int(sum(r["harmful_beats_random"] for r in rows)), "of": len(rows),
               "influence_seconds": seconds, "influence_seconds_after_compile": float(np.median(seconds[1:] or seconds))}
    return summary, entries


def orbit_turns(dataset, params64, *, top: int, draws: int, seed: int) -> dict:
    """How the orbit coordinates the invariant pooling reads move when ``top`` random training images
    are removed (the filters held fixed): per draw, how many of them turn by more than 10 and 45
    degrees, and the largest eigenvalue shift over its nearest gap; the relative gaps themselves."""
    with reduction.float64():
        e = np.asarray(jax.jit(glassbox_model.responses)(params64, jnp.asarray(dataset.x_train, jnp.float64)))
    n, _, d = e.shape
    width = min(params64.config.pool_dim, params64.projection.components.shape[0])

    def top_eigh(keep):
        rows = e[keep].reshape(-1, d)
        rows = rows - rows.mean(0)
        w, v = np.linalg.eigh(rows.T @ rows / rows.shape[0])
        return w[::-1][: width + 1], v[:, ::-1][:, :width]

    w0, v0 = top_eigh(np.ones(n, bool))
    gaps = w0[:-1] - w0[1:]
    nearest = np.minimum(np.r_[np.inf, gaps[:-1]], gaps)
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(draws):
        keep = np.ones(n, bool)
        keep[rng.choice(n, top, replace=False)] = False
        w1, v1 = top_eigh(keep)
        cos = np.abs(np.sum(v0 * v1, axis=0))
        rows.append({"turned_over_10_degrees": int(np.sum(cos < np.cos(np.radians(10)))),
                     "turned_over_45_degrees": int(np.sum(cos < np.cos(np.radians(45)))),
                     "largest_shift_over_gap": float(np.max(np.abs(w1[:width] - w0[:width]) / nearest))})
    relative = gaps[:width] / w0[0]
    return {"coordinates": int(width), "draws": rows, "smallest_relative_gap": float(relative.min()),
            "largest_relative_gap": float(relative.max()), "relative_gaps": [float(g) for g in relative]}


def main(argv=None) -> dict:
    p = _common.parser(__doc__, "results/influence")
    args = p.parse_args(argv)
    clock = _common.Stopwatch()
    dataset = data.load("digits", seed=args.seed)
    n_fd, count, draws = (60, 2, 1) if args.quick else (200, HIGH_LOSS, RANDOM_DRAWS)
    if args.quick:
        dataset = _common.shrink(dataset, train_per_class=12, test_per_class=6)
    result = {"environment": _common.environment(), "quick": args.quick, "seed": args.seed, "top": TOP}
    result["finite_differences"] = finite_differences(dataset, n_train=min(n_fd, dataset.x_train.shape[0]), n_test=20, seed=args.seed)
    infl = infl_lib.Influence(dataset.x_train, dataset.y_train, key=jax.random.PRNGKey(args.seed), class_names=dataset.class_names)
    params64 = infl.params
    result["equality_with_fit"] = equality_with_fit(dataset, args.seed, params64)
    result["refits"], entries = refit_check(dataset, infl, count=count, top=TOP, draws=draws, seed=args.seed)
    result["orbit_turns"] = orbit_turns(dataset, params64, top=TOP, draws=draws, seed=args.seed)
    result["n_train"] = int(dataset.x_train.shape[0])
    _common.table([{"argument": k, **v} for k, v in result["finite_differences"].items()],
                  ["argument", "analytic", "finite_difference", "relative_error"], digits=8, title="finite differences (float64)")
    _common.table([result["equality_with_fit"]], ["relative_difference", "equal_predictions"], digits=6, title="differentiable fit vs fit")
    _common.table(result["refits"]["images"], ["test_index", "loss", "change_harmful", "change_random", "predicted_change_harmful",
                                               "harmful_beats_random"], title="zeroing the top-10 harmful vs 10 random weights")
    _common.table(result["orbit_turns"]["draws"], ["turned_over_10_degrees", "turned_over_45_degrees", "largest_shift_over_gap"],
                  title=f"the {result['orbit_turns']['coordinates']} pooled orbit coordinates when {TOP} random training images are removed")
    print(f"influence of {result['n_train']} training images: {result['refits']['influence_seconds_after_compile']:.2f} s "
          f"after compilation; harmful beats random for {result['refits']['harmful_beats_random']} of {result['refits']['of']}")
    png = influence_figure(entries, dataset.x_train, dataset.y_train, dataset.x_test, dataset.class_names, top=5)
    result["seconds"] = clock.elapsed
    Path(args.out).mkdir(parents=True, exist_ok=True)
    figure_path = Path(args.out) / "influence.png"
    write_bytes_atomic(figure_path, png)
    _common.done(clock, [_common.write_json(args.out, "influence.json", result), figure_path])
    return result


if __name__ == "__main__":
    main()
