"""The glass-box fit as one pure, jittable, differentiable function of the training data.

Every parameter of the glass-box is a closed-form function of data statistics. The fit is split
in two phases:

  plan = plan_fit(config, x.shape, y, key=key)       host side: every discrete choice
  params = refit(plan, x, sample_weight, regularization)   pure jnp: every continuous parameter

``plan_fit`` resolves the config against the image size and count as ``fit`` does, and draws the
seeded patch sample (which image, row and column each filter patch comes from) with ``fit``'s
keys: random choices come from the key, outside the differentiated path. ``refit`` recomputes,
from (x, sample_weight, regularization), the class-wise patch PCA filters (or the G-averaged
class prototypes), the whitened orbit projection, the layer-2 PCA and the classifier, and returns
the ``GlassBoxParams`` that ``fit`` returns, so ``model.apply`` / ``transform`` apply. Run it in
float64 (``reduction.float64()``, x as float64) for gradients: the fit's statistics are float64.

What is differentiated (see ``glassjax.core.eigen_grad`` and docs/influence.md):
  * moments, means and covariances: weighted sums, plain jnp;
  * eigen-decompositions: each kept eigenvector of the patch, orbit and layer-2 PCAs is used on
    its own (a filter, a max-pooled coordinate, a standardised feature), so each is
    differentiated as the projector onto its own one-dimensional block, which is defined when its
    eigenvalue is separated from every other; a closed gap stops the gradient with an error
    (``eigen_grad.top_eigh``), never NaN. Orbit coordinates past those the representation reads
    are not differentiated (they feed only the ``orbit`` layer of ``model.layers``);
  * the logistic classifier implicitly, through its optimality condition grad L(theta) = 0 (one
    Hessian solve, no unrolled iterations); ridge and LDA through their closed forms.

Weights follow scikit-learn (``sample_weight``): each image's statistics and loss term are
multiplied by its weight, so integer weights equal repeated images, and weight 0 removes an
image, except that the seeded patch sample is drawn as if the image were there (its patches get
weight 0). ``regularization`` is the classifier's penalty (logistic l2, ridge alpha, LDA shrinkage).
Where a class has more than ``fit.SAMPLE_PER_CLASS`` images, the plan holds fit's seeded moment
sample too, and refit reads the orbit and PCA moments from it with fit's reweighting to the class
totals (a differentiable function of the weights).

Supported: representation "invariant" (any exact group), filters patch / prototype / both,
reduction "pca", classifiers logistic, ridge, lda; other configs get a ValueError from
``plan_fit``. ``differentiable_fit`` is plan + refit in one call.
"""
from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from glassjax import data
from glassjax.core import arrays, classifiers, groups, irreps, reduction
from glassjax.core.eigen_grad import top_eigh
from glassjax.systems.glassbox import representation as rep
from glassjax.systems.glassbox.config import REGULARIZATION_OPTION, GlassBoxConfig
from glassjax.systems.glassbox.filters import FilterBank, patch_filters, patch_positions
from glassjax.systems.glassbox.model import GlassBoxParams, _represent, _responses, _used_projection

__all__ = ["FitPlan", "plan_fit", "refit", "differentiable_fit", "default_regularization", "PATCHES_PER_CLASS"]

# filters.patch_filters' default sample size, which fit uses.
PATCHES_PER_CLASS = inspect.signature(patch_filters).parameters["patches_per_class"].default
_KINDS = ("logistic", "ridge", "lda")
_F32_EPS = float(np.finfo(np.float32).eps)
_HIGHEST = jax.lax.Precision.HIGHEST


def _dot(a, b):
    return jnp.matmul(a, b, precision=_HIGHEST)


def default_regularization(config: GlassBoxConfig) -> float:
    """The classifier's penalty the fit uses: config.regularization, or the classifier's default."""
    if config.regularization is not None:
        return float(config.regularization)
    fit = {"logistic": classifiers.fit_logistic, "ridge": classifiers.fit_ridge, "lda": classifiers.fit_lda_classifier}
    default = inspect.signature(fit[config.classifier]).parameters[REGULARIZATION_OPTION[config.classifier]].default
    return 0.0 if default is None else float(default)


class FitPlan(eqx.Module):
    """Every discrete choice of a glass-box fit: the resolved config, shapes, the labels and the
    seeded patch sample. labels (N,) int32; patch_image / patch_row / patch_col (C, P) int32 (the
    image, top row and left column of each class's P sampled patches; empty without patch filters)."""

    config: GlassBoxConfig = eqx.field(static=True)
    image_shape: tuple[int, int, int] = eqx.field(static=True)
    class_names: tuple[str, ...] = eqx.field(static=True)
    proj_dim: int = eqx.field(static=True)
    components: int = eqx.field(static=True)
    labels: jax.Array
    patch_image: jax.Array
    patch_row: jax.Array
    patch_col: jax.Array
    # fit's moment sample (SAMPLE_PER_CLASS images per class at most): the rows (M,) int32 the orbit
    # projection and the PCA read, and whether it is a sample (False: every image, rows = arange(N)).
    moment_rows: jax.Array
    sampled: bool = eqx.field(static=True)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def plan_fit(config: GlassBoxConfig, image_shape: Sequence[int], y: Any, *, key: jax.Array,
             class_names: Sequence[str] | None = None) -> FitPlan:
    """The discrete half of ``fit(config, x, y, key=key)`` for N images of ``image_shape`` (H, W, C)
    (or the images' full shape (N, H, W, C)) and labels y (N,) in 0..C-1. Host side, no images read."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) == 4:
        shape = shape[1:]
    if len(shape) != 3:
        raise ValueError(f"plan_fit: expected image_shape (H, W, C) or (N, H, W, C), got {tuple(image_shape)}")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"plan_fit: expected labels y of shape (N,), got shape {y.shape}")
    y = np.asarray(arrays.as_labels(y, y.shape[0], "plan_fit", name="labels y", min_classes=2))
    if len(tuple(image_shape)) == 4 and int(tuple(image_shape)[0]) != y.shape[0]:
        raise ValueError(f"plan_fit: expected one label per image ({int(tuple(image_shape)[0])} images), got {y.shape[0]} labels")
    n = y.shape[0]
    num_classes = int(y.max()) + 1
    missing = sorted(set(range(num_classes)) - set(np.unique(y).tolist()))
    if missing:
        raise ValueError(f"plan_fit: expected every class 0..{num_classes - 1} in the training set, missing {missing}")
    if not isinstance(config, GlassBoxConfig):
        raise TypeError(f"plan_fit: expected a GlassBoxConfig, got {type(config).__name__}")
    config = config.resolved(shape, n)
    group = groups.get(config.group)
    group.check_image((n,) + shape, "plan_fit")
    unsupported = {"representation": ("invariant",), "reduction": ("pca",), "classifier": _KINDS}
    for name, allowed in unsupported.items():
        if getattr(config, name) not in allowed:
            raise ValueError(f"plan_fit: the differentiable fit supports {name} in {'|'.join(allowed)}, got "
                             f"{getattr(config, name)!r}; fit it with glassjax.systems.glassbox.fit")
    names = tuple(str(c) for c in range(num_classes)) if class_names is None else tuple(class_names)
    if len(names) < num_classes:
        raise ValueError(f"plan_fit: expected {num_classes} class names, got {len(names)}")
    # The keys and draws of fit and filters.patch_filters / _sample_patches, in their order.
    k_filters, _ = jax.random.split(key)
    size = config.patch_size
    images, rows, cols = [], [], []
    if config.filters in ("patch", "both"):
        h, w = shape[:2]
        with jax.enable_x64(False):  # the draws of fit, which runs without x64 (randint's bits depend on it)
            draws = _draw_patches(y, num_classes, k_filters, h - size + 1, w - size + 1)
        images, rows, cols = draws
    as_table = lambda parts: jnp.asarray(np.stack(parts).astype(np.int32) if parts else np.zeros((0, 0), np.int32))  # noqa: E731
    passes = importlib.import_module("glassjax.systems.glassbox.fit")  # the module: the package exports fit, the function
    picked = passes._class_sample(y, None, passes.SAMPLE_PER_CLASS, jax.random.fold_in(key, 3))
    moment_rows = np.arange(n) if picked is None else picked[0]
    response_dim = _response_dim(config, shape, num_classes)
    proj_dim = min(max(config.pool_dim, config.orbit_dim), response_dim, n * group.order - 1)
    rep_dim = _representation_dim(config, proj_dim)
    components = min(config.components, rep_dim, n - 1)
    return FitPlan(config, shape, names, proj_dim, components, jnp.asarray(y, jnp.int32),
                   as_table(images), as_table(rows), as_table(cols), jnp.asarray(moment_rows, jnp.int32), picked is not None)


def _moment_weights(plan: FitPlan, w: jax.Array) -> jax.Array:
    """The weights (M,) of the moment sample's rows, as fit's ``_class_sample`` gives them: each
    image's weight times its class's total weight over the sample's."""
    if not plan.sampled:
        return w
    rows, num = plan.moment_rows, plan.num_classes
    totals = jax.ops.segment_sum(w, plan.labels, num)
    kept = jax.ops.segment_sum(w[rows], plan.labels[rows], num)
    scale = jnp.where(kept > 0, totals / jnp.where(kept > 0, kept, 1), 0)
    return w[rows] * scale[plan.labels[rows]]


def _draw_patches(y: np.ndarray, num_classes: int, key: jax.Array, rows: int, cols: int):
    """filters.patch_filters' draws: per class (split of key), PATCHES_PER_CLASS (image, row, col)."""
    images, tops, lefts = [], [], []
    for cls, cls_key in zip(range(num_classes), jax.random.split(key, num_classes)):
        members = np.flatnonzero(y == cls)
        image, top, left = (np.asarray(a) for a in patch_positions(PATCHES_PER_CLASS, members.size, rows, cols, cls_key))
        images.append(members[image])
        tops.append(top)
        lefts.append(left)
    return images, tops, lefts


def _response_dim(config: GlassBoxConfig, shape, num_classes: int) -> int:
    f = 0
    if config.filters in ("patch", "both"):
        f += config.grid**2 * config.filters_per_class * num_classes
    if config.filters in ("prototype", "both"):
        f += num_classes
    return f * (2 if config.rho == "relu_pair" else 1)


def _representation_dim(config: GlassBoxConfig, proj_dim: int) -> int:
    probe = jnp.zeros((1, groups.get(config.group).order, proj_dim), jnp.float32)
    return jax.eval_shape(functools.partial(_represent, config), probe).shape[-1]


# ----------------------------------------------------------------------------- the continuous half


def _weighted_cov(rows: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean (D,), scatter sum w (x - mean)(x - mean)^T (D, D) and total weight of rows (M, D), weights (M,).

    ``reduction``'s moments, taken around the weighted mean itself (no reference point: the rows
    are in memory and float64)."""
    total = jnp.sum(w)
    mean = _dot(w, rows) / total
    centred = rows - mean[None, :]
    return mean, _dot((centred * w[:, None]).T, centred), total


def _patch_bank(plan: FitPlan, x: jax.Array, w: jax.Array) -> FilterBank:
    """filters.patch_filters on the plan's patch sample, each patch weighted by its image's weight."""
    config, c = plan.config, plan.image_shape[2]
    k, per_class = config.patch_size, config.filters_per_class
    span = jnp.arange(k, dtype=plan.patch_row.dtype)
    rows = (plan.patch_row[..., None] + span[None, None, :])[..., :, None]  # (C, P, k, 1)
    cols = (plan.patch_col[..., None] + span[None, None, :])[..., None, :]  # (C, P, 1, k)
    patches = x[plan.patch_image[..., None, None], rows, cols]  # (C, P, k, k, c)
    patches = patches.reshape(patches.shape[:2] + (-1,))
    patches = patches - jnp.mean(patches, axis=-1, keepdims=True)
    weights = w[plan.patch_image]
    banks = []
    for cls in range(plan.num_classes):
        _, scatter, total = _weighted_cov(patches[cls], weights[cls])
        banks.append(top_eigh(scatter / total, per_class)[1].T)  # unit-norm rows, by explained variance
    filters = jnp.concatenate(banks).reshape(plan.num_classes * per_class, k, k, c)
    return FilterBank(filters, jnp.repeat(jnp.arange(plan.num_classes, dtype=jnp.int32), per_class))


def _prototype_bank(plan: FitPlan, x: jax.Array, w: jax.Array) -> FilterBank:
    """filters.class_prototypes with weighted class means."""
    onehot = jax.nn.one_hot(plan.labels, plan.num_classes, dtype=x.dtype) * w[:, None]
    means = jnp.einsum("nc,nhwk->chwk", onehot, x, precision=_HIGHEST) / jnp.sum(onehot, axis=0)[:, None, None, None]
    return FilterBank(jnp.mean(groups.orbit(plan.config.group, means), axis=1), jnp.arange(plan.num_classes, dtype=jnp.int32))


def _used_width(config: GlassBoxConfig) -> int:
    """How many orbit coordinates the representation reads (model._used_projection)."""
    return max(config.pool_dim if config.representation in ("invariant", "both") else 0,
               config.orbit_dim if config.representation in ("equivariant", "both") else 0)


def _whitening(variance: jax.Array, whiten: bool) -> jax.Array:
    """1 / sqrt(variance) where resolved (above float32 eps x the largest), 0 below; ones unless whiten."""
    if not whiten:
        return jnp.ones_like(variance)
    resolved = variance > _F32_EPS * jnp.max(variance)
    return jnp.where(resolved, jax.lax.rsqrt(jnp.where(resolved, variance, 1)), 0)


def _orbit_projection(plan: FitPlan, e: jax.Array, w: jax.Array) -> rep.OrbitProjection:
    """representation.fit_orbit_projection of the responses e (N, |G|, D), every orbit row weighted by its image."""
    n, g, d = e.shape
    mean, scatter, total = _weighted_cov(e.reshape(n * g, d), jnp.repeat(w, g))
    cov = scatter / (total - 1)
    width = min(_used_width(plan.config), plan.proj_dim)
    ev, vectors = top_eigh(cov, width)
    ev = jnp.maximum(ev, 0)
    # The coordinates past ``width`` feed only the ``orbit`` layer of model.layers: not differentiated.
    rest_ev, rest = top_eigh(jax.lax.stop_gradient(cov), plan.proj_dim)
    rest_ev = jnp.maximum(rest_ev, 0)
    resolved = rest_ev > _F32_EPS * rest_ev[0]
    rest_scale = jnp.where(resolved, jax.lax.rsqrt(jnp.where(resolved, rest_ev, 1)), 0)
    resolved = ev > _F32_EPS * jax.lax.stop_gradient(rest_ev[0])
    scale = jnp.where(resolved, jax.lax.rsqrt(jnp.where(resolved, ev, 1)), 0)
    components = jnp.concatenate([vectors.T * scale[:, None], (rest.T * rest_scale[:, None])[width:]])
    return rep.OrbitProjection(mean, components)


def _layer2(plan: FitPlan, r: jax.Array, w: jax.Array) -> tuple[reduction.PCA, reduction.Blocks]:
    """reduction.fit_symmetric_pca of an invariant layout: the weighted PCA of r (N, D_rep),
    variances with ddof = 1 over the N |G| rows of the symmetrised data, as fit_symmetric_pca."""
    order = groups.get(plan.config.group).order
    mean, scatter, n = _weighted_cov(r, w)
    norm = order / (n * order - 1)
    ev, vectors = top_eigh(scatter, plan.components)
    variance = jnp.maximum(ev, 0) * norm
    total = norm * jnp.trace(scatter)
    pca = reduction.PCA(mean, vectors.T, variance, variance / total, _whitening(variance, plan.config.whiten))
    k, table = plan.components, irreps.irreps(plan.config.group)
    isotypic = jnp.asarray(np.eye(len(table))[0], jnp.float32)
    return pca, reduction.Blocks(jnp.zeros((k,), jnp.int32), jnp.zeros((k,), jnp.int32), isotypic)


def refit(plan: FitPlan, x: jax.Array, sample_weight: jax.Array | None = None,
          regularization: jax.Array | float | None = None) -> GlassBoxParams:
    """Every continuous parameter of the glass-box from images x (N, H, W, C), weights (N,) (default
    ones) and the classifier's penalty (default: the fit's), as ``GlassBoxParams`` in x's dtype.

    Pure, jittable (``jax.jit(refit)``), differentiable with respect to x, sample_weight and
    regularization (module docstring). The labels and patch sample are the plan's.
    """
    config = plan.config
    n = plan.labels.shape[0]
    if x.shape != (n,) + plan.image_shape:
        raise ValueError(f"refit: expected images of shape {(n,) + plan.image_shape} (the plan's), got {tuple(x.shape)}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"refit: expected float images, got dtype {x.dtype}")
    dt = x.dtype
    w = jnp.ones((n,), dt) if sample_weight is None else jnp.asarray(sample_weight).astype(dt)
    if w.shape != (n,):
        raise ValueError(f"refit: expected sample_weight of shape ({n},), got shape {tuple(w.shape)}")
    lam = default_regularization(config) if regularization is None else regularization
    lam = jnp.asarray(lam).astype(dt)
    patches = _patch_bank(plan, x, w) if config.filters in ("patch", "both") else None
    prototypes = _prototype_bank(plan, x, w) if config.filters in ("prototype", "both") else None
    banks = [(b, grid) for b, grid in ((patches, config.grid), (prototypes, 1)) if b is not None]
    e = _responses(config, banks, x)
    sample = (lambda a: a[plan.moment_rows]) if plan.sampled else (lambda a: a)  # noqa: E731
    moment_w = _moment_weights(plan, w)
    projection = _orbit_projection(plan, sample(e), moment_w)
    r = _represent(config, rep.project_orbit(_used_projection(config, projection), e))
    pca, blocks = _layer2(plan, sample(r), moment_w)
    features = _dot(r - pca.mean[None, :], pca.components.T) * pca.scale[None, :]
    clf = _classifier(config.classifier, features, plan.labels, w, lam, plan.num_classes)
    return GlassBoxParams(config, plan.image_shape, plan.class_names, patches, prototypes, projection, pca, clf, blocks)


def differentiable_fit(config: GlassBoxConfig, x: Any, y: Any, *, key: jax.Array, sample_weight: Any = None,
                       regularization: Any = None, class_names: Sequence[str] | None = None) -> GlassBoxParams:
    """plan_fit + jitted refit: the model ``fit(config, x, y, key=key)`` fits (within float32
    tolerance), on images x (N, H, W[, C]) in memory; float64 when called under ``reduction.float64()``."""
    x = data.as_images(np.asarray(x), "differentiable_fit images")
    plan = plan_fit(config, x.shape, y, key=key, class_names=class_names)
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    return _refit_jit(plan, jnp.asarray(x, dtype), sample_weight, regularization)


_refit_jit = jax.jit(refit)


# ----------------------------------------------------------------------------- classifiers


def _classifier(kind: str, features: jax.Array, labels: jax.Array, w: jax.Array, lam: jax.Array, num_classes: int):
    if kind == "logistic":
        loc, inv_scale = classifiers._standardizer(features, w)
        xs = (features - loc[None, :]) * inv_scale[None, :]
        onehot = jax.nn.one_hot(labels, num_classes, dtype=features.dtype)
        weights, bias = _logistic_optimum(xs, onehot, w, lam)
        return classifiers.LogisticParams(loc, inv_scale, weights, bias)
    stats = reduction._scatter_accumulate(reduction.scatter_init(features.shape[1], num_classes, features.dtype),
                                          features, labels, w)
    if kind == "ridge":
        return classifiers._ridge(stats, lam)
    return classifiers._lda_classifier(stats, lam)


def _logistic_loss(theta, xs, onehot, w, l2):
    k, c = xs.shape[1], onehot.shape[1]
    return classifiers._logistic_loss((theta[: k * c].reshape(k, c), theta[k * c :]), xs, onehot, l2, w)


def _logistic_hessian(theta, xs, onehot, w, l2):
    """The Hessian ((K+1) C, (K+1) C) of the weighted logistic loss in theta = (W.ravel(), b), plus
    (1/C) 1 1^T on the bias block: the loss does not change when every bias moves alike, and the
    fit (from zero) keeps sum(b) = 0, so that direction is pinned there."""
    n, k = xs.shape
    c = onehot.shape[1]
    a = jnp.concatenate([xs, jnp.ones((n, 1), xs.dtype)], axis=1)  # (N, K+1)
    z = _dot(a, jnp.concatenate([theta[: k * c].reshape(k, c), theta[k * c :][None, :]]))
    p = jax.nn.softmax(z, axis=1)
    omega = w / jnp.sum(w)
    diag = jnp.einsum("ik,ic,il->kcl", a * omega[:, None], p, a, precision=_HIGHEST)  # (K+1, C, K+1)
    b = (jnp.sqrt(omega)[:, None, None] * a[:, :, None] * p[:, None, :]).reshape(n, -1)
    h = -_dot(b.T, b)
    eye_c = jnp.eye(c, dtype=xs.dtype)
    h = h + jnp.einsum("kcl,cd->kcld", diag, eye_c).reshape(h.shape)
    pen = jnp.concatenate([jnp.full((k * c,), 1.0, xs.dtype) * l2, jnp.zeros((c,), xs.dtype)])
    pin = jnp.zeros_like(h).at[k * c :, k * c :].set(jnp.ones((c, c), xs.dtype) / c)
    return h + jnp.diag(pen) + pin


def _solve_logistic(xs, onehot, w, l2):
    """The optimum theta: L-BFGS from zero (classifiers' solver), then one Newton step."""
    k, c = xs.shape[1], onehot.shape[1]
    loss = functools.partial(_logistic_loss, xs=xs, onehot=onehot, w=w, l2=l2)
    init = jnp.zeros(((k + 1) * c,), xs.dtype)
    tol = 1e-10 if xs.dtype == jnp.float64 else 1e-5
    theta = classifiers._lbfgs(loss, init, 2000, tol)
    hess = _logistic_hessian(theta, xs, onehot, w, l2)
    factor = jax.scipy.linalg.cho_factor(hess)
    theta = theta - jax.scipy.linalg.cho_solve(factor, jax.grad(loss)(theta))
    return theta, factor


@jax.custom_vjp
def _logistic_theta(xs, onehot, w, l2):
    return _solve_logistic(xs, onehot, w, l2)[0]


def _logistic_fwd(xs, onehot, w, l2):
    theta, factor = _solve_logistic(xs, onehot, w, l2)
    return theta, (theta, factor, xs, onehot, w, l2)


def _logistic_bwd(res, ct):
    # Implicit function theorem on grad L(theta; xs, w, l2) = 0:
    # d theta = -H^-1 d(grad L), so the cotangent of (xs, w, l2) is -(d grad L / d .)^T H^-1 ct.
    theta, factor, xs, onehot, w, l2 = res
    u = jax.scipy.linalg.cho_solve(factor, ct)
    _, pull = jax.vjp(lambda xs_, w_, l2_: jax.grad(_logistic_loss)(theta, xs_, onehot, w_, l2_), xs, w, l2)
    dxs, dw, dl2 = pull(-u)
    return dxs, jnp.zeros_like(onehot), dw, dl2


_logistic_theta.defvjp(_logistic_fwd, _logistic_bwd)


def _logistic_optimum(xs, onehot, w, l2):
    """(weights (K, C), bias (C,)) minimising classifiers' weighted logistic loss; differentiable implicitly."""
    k, c = xs.shape[1], onehot.shape[1]
    theta = _logistic_theta(xs, onehot, w, l2)
    return theta[: k * c].reshape(k, c), theta[k * c :]
