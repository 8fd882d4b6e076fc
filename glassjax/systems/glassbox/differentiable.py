"""The glass-box fit as one pure, jittable, differentiable function of the training data.

Every parameter of the glass-box is a closed-form function of data statistics. The fit is split
in two phases:

  plan = plan_fit(config, x.shape, y, key=key)       host side: every discrete choice
                                                     (images=x too with a group axis: layer 2's blocks)
  params = refit(plan, x, sample_weight, regularization)   pure jnp: every continuous parameter

``plan_fit`` resolves the config against the image size and count as ``fit`` does, and draws the
seeded patch sample (which image, row and column each filter patch comes from) with ``fit``'s
keys: random choices come from the key, outside the differentiated path. ``refit`` recomputes,
from (x, sample_weight, regularization), the class-wise patch PCA filters (or the G-averaged
class prototypes), the whitened orbit projection, the layer-2 PCA or LDA and the classifier, and returns
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
  * the logistic and SVM classifiers implicitly, through the optimality condition grad L(theta) = 0
    (one Hessian solve, no unrolled iterations; the squared hinge is piecewise quadratic, so its
    Hessian is that of the optimum's active margins); ridge and LDA through their closed forms.

Weights follow scikit-learn (``sample_weight``): each image's statistics and loss term are
multiplied by its weight, so integer weights equal repeated images, and weight 0 removes an
image, except that the seeded patch sample is drawn as if the image were there (its patches get
weight 0). ``regularization`` is the classifier's penalty (logistic and svm l2, ridge alpha, LDA shrinkage).
Where a class has more than ``fit.SAMPLE_PER_CLASS`` images, the plan holds fit's seeded moment
sample too, and refit reads the orbit and PCA moments from it with fit's reweighting to the class
totals (a differentiable function of the weights).

Layer 2 is ``reduction.fit_symmetric_pca`` / ``fit_symmetric_lda``: with a group axis in the
representation it solves one eigenproblem per irrep (the irrep's coordinate form; LDA: the
Cholesky-whitened between-class form) and keeps whole irrep blocks by value. Which blocks are kept
is discrete and data-dependent, so ``plan_fit`` chooses them from the images (as fit does) and
``refit`` keeps them; a 2-D irrep's block (E of d4) is one eigenvector of its form, read by its
two features alike, so it is differentiated whole, never as two eigenvectors of a degenerate
pair. Each kept eigenvector must be separated from the others of its form (``top_eigh``), and the
smallest kept block from the largest cut one of any irrep (``eigen_grad.separated``); a closed
gap refuses the derivative with an error.

Supported: representation "invariant" (any exact group), "equivariant" and "both" (groups whose
irreps are all of real type: d4, flip, none), filters patch / prototype / both, reduction "pca"
or "lda", classifiers logistic, svm (squared hinge, implicit as logistic), ridge, lda; other
configs get a ValueError from ``plan_fit``. ``differentiable_fit`` is plan + refit in one call.
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
from glassjax.core.eigen_grad import canonical_columns, separated, top_eigh
from glassjax.core.reduction import _dot
from glassjax.systems.glassbox import representation as rep
from glassjax.systems.glassbox.config import REGULARIZATION_OPTION, GlassBoxConfig
from glassjax.systems.glassbox.filters import FilterBank, patch_filters, patch_positions
from glassjax.systems.glassbox.model import GlassBoxParams, _represent, _responses, _used_projection

__all__ = ["FitPlan", "plan_fit", "refit", "differentiable_fit", "default_regularization", "PATCHES_PER_CLASS"]

# filters.patch_filters' default sample size, which fit uses.
PATCHES_PER_CLASS = inspect.signature(patch_filters).parameters["patches_per_class"].default
_KINDS = ("logistic", "svm", "ridge", "lda")
_F32_EPS = float(np.finfo(np.float32).eps)
_HIGHEST = jax.lax.Precision.HIGHEST


def default_regularization(config: GlassBoxConfig) -> float:
    """The classifier's penalty the fit uses: config.regularization, or the classifier's default."""
    if config.regularization is not None:
        return float(config.regularization)
    fit = {"logistic": classifiers.fit_logistic, "svm": classifiers.fit_svm, "ridge": classifiers.fit_ridge,
           "lda": classifiers.fit_lda_classifier}
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
    # Layer 2's discrete choices (fit_symmetric_pca / fit_symmetric_lda): where the group acts on the
    # representation, the kept irrep blocks (irrep, eigenvector index) in feature order, and the first
    # block cut (None: none), whose gap to the kept ones must stay open for a derivative.
    layout: reduction.Layout = eqx.field(static=True)
    kept: tuple[tuple[int, int], ...] = eqx.field(static=True)
    dropped: tuple[int, int] | None = eqx.field(static=True)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def plan_fit(config: GlassBoxConfig, image_shape: Sequence[int], y: Any, *, key: jax.Array,
             class_names: Sequence[str] | None = None, images: Any = None, sample_weight: Any = None) -> FitPlan:
    """The discrete half of ``fit(config, x, y, key=key)`` for N images of ``image_shape`` (H, W, C)
    (or the images' full shape (N, H, W, C)) and labels y (N,) in 0..C-1. Host side.

    With a group axis in the representation (``equivariant``, ``both``), layer 2 keeps whole irrep
    blocks by their variance (discriminant ratio): that choice reads the data, so ``images`` (N, H,
    W, C) (and the fit's ``sample_weight`` (N,)) are then required; otherwise no images are read."""
    x_images = images  # the name ``images`` is fit's patch draws below
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
    unsupported = {"representation": ("invariant", "equivariant", "both"), "reduction": ("pca", "lda"), "classifier": _KINDS}
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
    layout = passes._layout(config, group, rep_dim, proj_dim)
    table, _, mult = reduction._irrep_tables(layout)
    complex_type = [rho.name for rho, m in zip(table, mult) if m and rho.kind == "complex"]
    if complex_type:
        raise ValueError(f"plan_fit: the differentiable fit supports a group axis in the representation for groups whose "
                         f"irreps are all of real type (d4, flip, none), got group {config.group!r} with complex-type "
                         f"irreps {complex_type}; use representation='invariant' or fit it with glassjax.systems.glassbox.fit")
    if config.reduction == "lda":
        classes = num_classes * (group.order if layout.channels else 1)  # fit's count: (class, element) pairs
        components = min(config.components, classes - 1, layout.dim)
    else:
        components = min(config.components, rep_dim, n - 1)
    plan = FitPlan(config, shape, names, proj_dim, components, jnp.asarray(y, jnp.int32), as_table(images), as_table(rows),
                   as_table(cols), jnp.asarray(moment_rows, jnp.int32), picked is not None, layout,
                   tuple((0, i) for i in range(components)), None)
    if layout.channels == 0:  # one eigenproblem: its top components, no data needed
        return plan
    if x_images is None:
        raise ValueError(f"plan_fit: representation={config.representation!r} keeps whole irrep blocks chosen by the data: "
                         "expected images=x (and the fit's sample_weight), got images=None")
    x_images = np.asarray(x_images)
    if x_images.shape != (n,) + shape:
        raise ValueError(f"plan_fit: expected images of shape {(n,) + shape}, got {x_images.shape}")
    kept, dropped = _choose_blocks(plan, x_images, sample_weight)
    return FitPlan(config, shape, names, proj_dim, components, plan.labels, plan.patch_image, plan.patch_row, plan.patch_col,
                   plan.moment_rows, plan.sampled, layout, kept, dropped)


def _choose_blocks(plan: FitPlan, x: np.ndarray, sample_weight: Any):
    """fit_symmetric_pca's (fit_symmetric_lda's) choice of kept blocks, from the data's per-irrep
    spectra (float64): ((irrep, index), ...) in feature order, and the first block cut or None."""
    with reduction.float64():
        x64 = jnp.asarray(x, jnp.float64)
        w = jnp.ones((x.shape[0],), jnp.float64) if sample_weight is None else jnp.asarray(sample_weight, jnp.float64)
        mats = _spectra_jit(plan, x64, w)
        mats = [np.asarray(m) for m in mats]
    table = irreps.irreps(plan.config.group)
    dims, k = [rho.dim for rho in table], plan.components
    candidates = []
    for r, m in enumerate(mats):
        if m.shape[0] == 0:
            continue
        # fit computes the top ceil(K / n) eigenpairs of a PCA block, every eigenpair of an LDA block.
        top = m.shape[0] if plan.config.reduction == "lda" else min(m.shape[0], -(-k // dims[r]))
        values = np.linalg.eigvalsh(0.5 * (m + m.T))[::-1][:top]
        candidates += [(max(float(v), 0.0), r, i) for i, v in enumerate(values)]
    kept = reduction._select(candidates, dims, k)
    ranked = sorted(candidates, key=lambda c: (-c[0], c[1], c[2]))
    dropped = ranked[len(kept)][1:] if len(kept) < len(ranked) else None
    return tuple((r, i) for _, r, i in kept), dropped


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


@functools.lru_cache(maxsize=None)
def _direction_map(layout: reduction.Layout, r: int) -> np.ndarray:
    """reduction._directions as a linear map (n, D, M) of the multiplicity vector v (M,) (real type)."""
    mult = reduction._irrep_tables(layout)[2][r]
    return np.stack([reduction._directions(layout, r, e) for e in np.eye(mult)], axis=-1)


@functools.lru_cache(maxsize=None)
def _mean_map(layout: reduction.Layout) -> np.ndarray:
    """reduction._mean_row as a linear map (D, M_0) of the trivial coordinates' mean."""
    mult = reduction._irrep_tables(layout)[2][0]
    return np.stack([reduction._mean_row(layout, e) for e in np.eye(mult)], axis=-1)


def _spectra(plan: FitPlan, r: jax.Array, w: jax.Array, labels: jax.Array):
    """Per irrep the symmetric matrix S (M, M) whose eigenpairs are layer 2's candidate blocks, the
    map L (M, M) or None from its eigenvectors to multiplicity vectors (v = L^-T q), and the trivial
    coordinates' mean (M_0,); of rows r (M_rows, D_rep) with weights w and labels (M_rows,).

    PCA (fit_symmetric_pca): S = the irrep's coordinate form x |G| / (n |G| - 1), eigenvalues the
    feature variances. LDA (fit_symmetric_lda): S = L^-1 B L^-T, B the between-class form and
    L L^T the within-class one, both shrunk; eigenvalues the discriminant ratios. The forms are
    reduction._forms' of the symmetric moments, here from the rows in memory."""
    layout = plan.layout
    table, _, mult = reduction._irrep_tables(layout)
    blocks = reduction.irrep_rows(layout, r)  # per irrep (M_rows, n, M)
    mean0, scatter0, n = _weighted_cov(blocks[0][:, 0], w)
    forms = [scatter0] + [jnp.einsum("bjm,bjl->ml", y * w[:, None, None], y, precision=_HIGHEST) / rho.dim
                          for rho, y in zip(table[1:], blocks[1:])]
    if plan.config.reduction == "pca":
        order = groups.get(layout.group).order
        norm = order / (n * order - 1)
        return [f * norm for f in forms], [None] * len(forms), mean0
    shrink = importlib.import_module("glassjax.systems.glassbox.fit").LDA_SHRINKAGE
    onehot = jax.nn.one_hot(labels, plan.num_classes, dtype=r.dtype) * w[:, None]
    counts = jnp.sum(onehot, axis=0)
    present = counts > 0
    between = []
    for i, (rho, y) in enumerate(zip(table, blocks)):
        nu = jnp.einsum("nc,njm->cjm", onehot, y, precision=_HIGHEST) / jnp.where(present, counts, 1)[:, None, None]
        if i == 0:
            nu = nu - mean0[None, None, :]
        nu = jnp.where(present[:, None, None], nu, 0)
        between.append(jnp.einsum("c,cjm,cjl->ml", counts / n, nu, nu, precision=_HIGHEST) / rho.dim)
    within = [f / n - b for f, b in zip(forms, between)]
    trace = lambda mats: sum(rho.dim * jnp.trace(a) for rho, a, m in zip(table, mats, mult) if m)  # noqa: E731
    t_within, t_between = trace(within), trace(between)
    mats, maps = [], []
    for m, a, b in zip(mult, within, between):
        eye = jnp.eye(m, dtype=r.dtype)
        a = (1 - shrink) * a + shrink * t_within / layout.dim * eye
        b = (1 - shrink) * b + shrink * t_between / layout.dim * eye
        if m == 0:
            mats.append(b)
            maps.append(None)
            continue
        chol = jnp.linalg.cholesky(0.5 * (a + a.T))
        half = jax.scipy.linalg.solve_triangular(chol, b, lower=True)
        s = jax.scipy.linalg.solve_triangular(chol, half.T, lower=True)
        mats.append(0.5 * (s + s.T))
        maps.append(chol)
    return mats, maps, mean0


def _layer2(plan: FitPlan, r: jax.Array, w: jax.Array, labels: jax.Array):
    """reduction.fit_symmetric_pca / fit_symmetric_lda of rows r (M, D_rep), weights w (M,), labels
    (M,), keeping the plan's blocks: (PCA or LDA, Blocks). Each kept eigenvector is a block of its
    irrep's n features read on their own, so it is differentiated isolated (top_eigh); the kept
    and cut blocks of different irreps must stay apart too (``separated``)."""
    layout, kept = plan.layout, plan.kept
    table = irreps.irreps(layout.group)
    dims = [rho.dim for rho in table]
    mult = reduction._irrep_tables(layout)[2]
    mats, maps, mean0 = _spectra(plan, r, w, labels)
    need = {}
    for i, j in kept:
        need[i] = max(need.get(i, 0), j + 1)
    values, vectors = {}, {}
    for i, count in need.items():
        ev, v = top_eigh(mats[i], count)
        if maps[i] is not None:  # the generalized eigenvectors, signs as fit_symmetric_lda's
            v = canonical_columns(jax.scipy.linalg.solve_triangular(maps[i].T, v, lower=False))
        values[i], vectors[i] = jnp.maximum(ev, 0), v
    block_values = jnp.stack([values[i][j] for i, j in kept])
    if plan.dropped is not None:
        i, j = plan.dropped
        block_values = separated(block_values, jnp.maximum(jnp.linalg.eigvalsh(mats[i])[::-1][j], 0))
    dt = r.dtype
    components = jnp.concatenate([jnp.einsum("jdm,m->jd", jnp.asarray(_direction_map(layout, i), dt), vectors[i][:, j],
                                             precision=_HIGHEST) for i, j in kept])
    which = np.concatenate([np.full(dims[i], b) for b, (i, _) in enumerate(kept)])
    value = block_values[which]
    irrep = np.concatenate([np.full(dims[i], i) for i, _ in kept]).astype(np.int32)
    coordinate = np.concatenate([np.arange(dims[i]) for i, _ in kept]).astype(np.int32)
    mean = _dot(jnp.asarray(_mean_map(layout), dt), mean0)
    traces = [dims[i] * jnp.trace(a) if m else jnp.zeros((), dt) for i, (a, m) in enumerate(zip(mats, mult))]
    total = sum(traces)
    isotypic = jnp.stack(traces) / total
    if plan.config.reduction == "pca":
        reducer = reduction.PCA(mean, components, value, value / total, _whitening(value, plan.config.whiten))
    else:
        reducer = reduction.LDA(mean, components, value / total)
    return reducer, reduction.Blocks(jnp.asarray(irrep), jnp.asarray(coordinate), isotypic.astype(jnp.float32))


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
    patches, prototypes, projection, r = _layer1(plan, x, w)
    sample = (lambda a: a[plan.moment_rows]) if plan.sampled else (lambda a: a)  # noqa: E731
    reducer, blocks = _layer2(plan, sample(r), _moment_weights(plan, w), sample(plan.labels))
    features = reduction._project(reducer, r)
    clf = _classifier(config.classifier, features, plan.labels, w, lam, plan.num_classes)
    return GlassBoxParams(config, plan.image_shape, plan.class_names, patches, prototypes, projection, reducer, clf, blocks)


def _layer1(plan: FitPlan, x: jax.Array, w: jax.Array):
    """The filter banks, the orbit projection and the representation r (N, D_rep) of x (N, H, W, C)."""
    config = plan.config
    patches = _patch_bank(plan, x, w) if config.filters in ("patch", "both") else None
    prototypes = _prototype_bank(plan, x, w) if config.filters in ("prototype", "both") else None
    banks = [(b, grid) for b, grid in ((patches, config.grid), (prototypes, 1)) if b is not None]
    e = _responses(config, banks, x)
    sample = (lambda a: a[plan.moment_rows]) if plan.sampled else (lambda a: a)  # noqa: E731
    projection = _orbit_projection(plan, sample(e), _moment_weights(plan, w))
    r = _represent(config, rep.project_orbit(_used_projection(config, projection), e))
    return patches, prototypes, projection, r


@jax.jit
def _spectra_jit(plan: FitPlan, x: jax.Array, w: jax.Array):
    """The per-irrep matrices of ``_spectra`` of images x (N, H, W, C), weights w (N,), for the plan's block choice."""
    r = _layer1(plan, x, w)[3]
    sample = (lambda a: a[plan.moment_rows]) if plan.sampled else (lambda a: a)  # noqa: E731
    return _spectra(plan, sample(r), _moment_weights(plan, w), sample(plan.labels))[0]


def differentiable_fit(config: GlassBoxConfig, x: Any, y: Any, *, key: jax.Array, sample_weight: Any = None,
                       regularization: Any = None, class_names: Sequence[str] | None = None) -> GlassBoxParams:
    """plan_fit + jitted refit: the model ``fit(config, x, y, key=key)`` fits (within float32
    tolerance), on images x (N, H, W[, C]) in memory; float64 when called under ``reduction.float64()``."""
    x = data.as_images(np.asarray(x), "differentiable_fit images")
    plan = plan_fit(config, x.shape, y, key=key, class_names=class_names, images=x, sample_weight=sample_weight)
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    return _refit_jit(plan, jnp.asarray(x, dtype), sample_weight, regularization)


_refit_jit = jax.jit(refit)


# ----------------------------------------------------------------------------- classifiers


def _classifier(kind: str, features: jax.Array, labels: jax.Array, w: jax.Array, lam: jax.Array, num_classes: int):
    if kind in ("logistic", "svm"):
        loc, inv_scale = classifiers._standardizer(features, w)
        xs = (features - loc[None, :]) * inv_scale[None, :]
        onehot = jax.nn.one_hot(labels, num_classes, dtype=features.dtype)
        weights, bias = _convex_optimum(kind == "svm", xs, onehot, w, lam)
        params = classifiers.SVMParams if kind == "svm" else classifiers.LogisticParams
        return params(loc, inv_scale, weights, bias)
    stats = reduction._scatter_accumulate(reduction.scatter_init(features.shape[1], num_classes, features.dtype),
                                          features, labels, w)
    if kind == "ridge":
        return classifiers._ridge(stats, lam)
    return classifiers._lda_classifier(stats, lam)


def _convex_loss(hinge, theta, xs, onehot, w, l2):
    """classifiers' weighted logistic (hinge: one-vs-rest squared hinge) loss of theta = (W.ravel(), b)."""
    k, c = xs.shape[1], onehot.shape[1]
    loss = classifiers._squared_hinge_loss if hinge else classifiers._logistic_loss
    return loss((theta[: k * c].reshape(k, c), theta[k * c :]), xs, onehot, l2, w)


def _convex_hessian(hinge, theta, xs, onehot, w, l2):
    """The Hessian ((K+1) C, (K+1) C) of the weighted loss in theta = (W.ravel(), b).

    Logistic: plus (1/C) 1 1^T on the bias block: the loss does not change when every bias moves
    alike, and the fit (from zero) keeps sum(b) = 0, so that direction is pinned there.
    Squared hinge: one block per class, 2 sum_i omega_i [margin_ic < 1] a_i a_i^T (a_i = (x_i, 1)),
    the Hessian wherever no margin is exactly 1 (the loss is piecewise quadratic)."""
    n, k = xs.shape
    c = onehot.shape[1]
    a = jnp.concatenate([xs, jnp.ones((n, 1), xs.dtype)], axis=1)  # (N, K+1)
    z = _dot(a, jnp.concatenate([theta[: k * c].reshape(k, c), theta[k * c :][None, :]]))
    omega = w / jnp.sum(w)
    eye_c = jnp.eye(c, dtype=xs.dtype)
    pen = jnp.concatenate([jnp.full((k * c,), 1.0, xs.dtype) * l2, jnp.zeros((c,), xs.dtype)])
    if hinge:
        active = ((1 - (2 * onehot - 1) * z) > 0).astype(xs.dtype)
        diag = 2 * jnp.einsum("ik,ic,il->kcl", a * omega[:, None], active, a, precision=_HIGHEST)
        return jnp.einsum("kcl,cd->kcld", diag, eye_c).reshape((k + 1) * c, (k + 1) * c) + jnp.diag(pen)
    p = jax.nn.softmax(z, axis=1)
    diag = jnp.einsum("ik,ic,il->kcl", a * omega[:, None], p, a, precision=_HIGHEST)  # (K+1, C, K+1)
    b = (jnp.sqrt(omega)[:, None, None] * a[:, :, None] * p[:, None, :]).reshape(n, -1)
    h = -_dot(b.T, b)
    h = h + jnp.einsum("kcl,cd->kcld", diag, eye_c).reshape(h.shape)
    pin = jnp.zeros_like(h).at[k * c :, k * c :].set(jnp.ones((c, c), xs.dtype) / c)
    return h + jnp.diag(pen) + pin


def _solve_convex(hinge, xs, onehot, w, l2):
    """The optimum theta: L-BFGS from zero (classifiers' solver), then one Newton step (for the
    squared hinge, exact once the active margins are the optimum's)."""
    k, c = xs.shape[1], onehot.shape[1]
    loss = functools.partial(_convex_loss, hinge, xs=xs, onehot=onehot, w=w, l2=l2)
    init = jnp.zeros(((k + 1) * c,), xs.dtype)
    tol = 1e-10 if xs.dtype == jnp.float64 else 1e-5
    theta = classifiers._lbfgs(loss, init, 2000, tol)
    factor = jax.scipy.linalg.cho_factor(_convex_hessian(hinge, theta, xs, onehot, w, l2))
    theta = theta - jax.scipy.linalg.cho_solve(factor, jax.grad(loss)(theta))
    if hinge:  # the Hessian at the optimum (the active margins may have moved in the step)
        factor = jax.scipy.linalg.cho_factor(_convex_hessian(hinge, theta, xs, onehot, w, l2))
    return theta, factor


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _convex_theta(hinge, xs, onehot, w, l2):
    return _solve_convex(hinge, xs, onehot, w, l2)[0]


def _convex_fwd(hinge, xs, onehot, w, l2):
    theta, factor = _solve_convex(hinge, xs, onehot, w, l2)
    return theta, (theta, factor, xs, onehot, w, l2)


def _convex_bwd(hinge, res, ct):
    # Implicit function theorem on grad L(theta; xs, w, l2) = 0:
    # d theta = -H^-1 d(grad L), so the cotangent of (xs, w, l2) is -(d grad L / d .)^T H^-1 ct.
    theta, factor, xs, onehot, w, l2 = res
    u = jax.scipy.linalg.cho_solve(factor, ct)
    grad = jax.grad(_convex_loss, argnums=1)
    _, pull = jax.vjp(lambda xs_, w_, l2_: grad(hinge, theta, xs_, onehot, w_, l2_), xs, w, l2)
    dxs, dw, dl2 = pull(-u)
    return dxs, jnp.zeros_like(onehot), dw, dl2


_convex_theta.defvjp(_convex_fwd, _convex_bwd)


def _convex_optimum(hinge, xs, onehot, w, l2):
    """(weights (K, C), bias (C,)) minimising classifiers' weighted logistic (hinge: squared hinge)
    loss; differentiable implicitly."""
    k, c = xs.shape[1], onehot.shape[1]
    theta = _convex_theta(bool(hinge), xs, onehot, w, l2)
    return theta[: k * c].reshape(k, c), theta[k * c :]
