"""Linear reduction: PCA and LDA from statistics gathered in one streaming pass.

Features are (N, D) arrays. The statistics are sums over rows, so a pass over batches is
``init -> update -> ... -> fit`` and two statistics merge by adding them: across devices a
plain ``jax.lax.psum`` of the state is the merge.

Precision: the covariance is E[x x^T] - m m^T, and in float32 that difference loses digits
when the features have a large mean (pixels in [0, 1] have mean near 0.5). The sums are
therefore taken around a reference point ``c`` near the mean: sum (x - c), sum (x - c)(x - c)^T.
``c`` is given at init or taken from the first non-empty batch. States that share ``c`` merge
by a leaf-by-leaf sum; ``moments_merge`` also merges states with different ``c`` exactly.

Value checks (NaN, inf, label range) run only on concrete arrays, i.e. outside ``jax.jit``;
under jit a NaN propagates into the statistics and the eager ``fit_*`` call reports it.
"""
from __future__ import annotations

import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "Moments",
    "moments_init",
    "moments_update",
    "moments_merge",
    "moments_recenter",
    "PCA",
    "fit_pca",
    "fit_pca_array",
    "fit_pca_randomized",
    "fit_pca_gram",
    "project",
    "ScatterStats",
    "scatter_init",
    "scatter_update",
    "scatter_merge",
    "LDA",
    "fit_lda",
    "fit_lda_array",
    "lda_transform",
]

# Statistics and projections must not drop to bf16/tf32 passes on TPU/GPU.
_HIGHEST = jax.lax.Precision.HIGHEST


def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


# ----------------------------------------------------------------------------- input checks


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_int(fn: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{fn}: expected an int {name}, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: expected an int {name}, got {type(value).__name__}") from None
    if value < minimum:
        raise ValueError(f"{fn}: expected {name} >= {minimum}, got {value}")
    return value


def _float_dtype(fn: str, dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{fn}: expected a float dtype, got {dtype}")
    return dtype


@jax.jit
def _all_finite(a: jax.Array) -> jax.Array:
    return jnp.all(jnp.isfinite(a))


def _check_finite(fn: str, name: str, *arrays: Any) -> None:
    """Raise if a concrete array holds NaN or inf; numpy arrays are checked on the host."""
    if not all(_is_concrete(a) for a in arrays):
        return
    if not all(np.isfinite(a).all() if isinstance(a, np.ndarray) else bool(_all_finite(a)) for a in arrays):
        raise ValueError(f"{fn}: expected finite values in {name}, got NaN or inf")


def _features(fn: str, x: Any, *, dim: int | None = None, dtype: Any = None, min_rows: int = 0) -> jax.Array:
    """x as a float (N, D) array; integer input becomes float32, float input keeps its dtype."""
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{fn}: expected a float array x, got {type(x).__name__}")
    given = x
    try:
        x = jnp.asarray(x)
    except TypeError:
        raise TypeError(f"{fn}: expected a float array x, got {type(x).__name__}") from None
    if jnp.issubdtype(x.dtype, jnp.complexfloating):
        raise TypeError(f"{fn}: expected a real float array x, got dtype {x.dtype}")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    if dtype is not None:
        x = x.astype(dtype)
    if x.ndim != 2:
        raise ValueError(f"{fn}: expected x of shape (N, D), got shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{fn}: expected x with {dim} features, got shape {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{fn}: expected at least {min_rows} rows in x, got shape {tuple(x.shape)}")
    _check_finite(fn, "x", given if isinstance(given, np.ndarray) else x)
    return x


def _row_weights(fn: str, mask: Any, x: jax.Array) -> jax.Array:
    """(N,) row weights in x's dtype: ones, or the mask (bool or float) of real rows."""
    if mask is None:
        return jnp.ones(x.shape[:1], x.dtype)
    mask = jnp.asarray(mask)
    if mask.shape != x.shape[:1]:
        raise ValueError(f"{fn}: expected mask of shape {tuple(x.shape[:1])}, got shape {tuple(mask.shape)}")
    if not (mask.dtype == jnp.bool_ or jnp.issubdtype(mask.dtype, jnp.number)):
        raise TypeError(f"{fn}: expected a bool or float mask, got dtype {mask.dtype}")
    w = mask.astype(x.dtype)
    _check_finite(fn, "mask", w)
    return w


@jax.jit
def _min_max(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.min(a), jnp.max(a)


def _labels(fn: str, y: Any, n: int, num_classes: int) -> jax.Array:
    """y as an int32 (N,) array of labels in 0..num_classes-1."""
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{fn}: expected an int array y, got {type(y).__name__}")
    # The dtype as given: jnp.asarray would report float64 labels as float32.
    dtype = y.dtype if hasattr(y, "dtype") else np.asarray(y).dtype
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"{fn}: expected integer labels y, got dtype {dtype}")
    y = jnp.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{fn}: expected y of shape ({n},) to match x, got shape {tuple(y.shape)}")
    if _is_concrete(y) and n:
        lo, hi = (int(v) for v in _min_max(y))
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"{fn}: expected labels in 0..{num_classes - 1}, got labels in {lo}..{hi}")
    return y.astype(jnp.int32)


def _n_components(fn: str, k: Any, limit: int, what: str) -> int:
    k = _check_int(fn, "n_components", k, 1)
    if k > limit:
        raise ValueError(f"{fn}: expected n_components <= {limit} ({what}), got {k}")
    return k


def _positive_signs(v: jax.Array) -> jax.Array:
    """Flip each row of v (K, D) so that its largest-magnitude entry is positive."""
    idx = jnp.argmax(jnp.abs(v), axis=1)
    pivot = jnp.take_along_axis(v, idx[:, None], axis=1)
    sign = jnp.where(pivot < 0, -1.0, 1.0).astype(v.dtype)
    return v * sign


def _top_eigh(a: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
    """The k largest eigenvalues (k,) of a symmetric a, descending, and eigenvectors as rows (k, D)."""
    evals, evecs = jnp.linalg.eigh(0.5 * (a + a.T))
    return evals[::-1][:k], evecs[:, ::-1][:, :k].T


# ----------------------------------------------------------------------------- moments


class Moments(NamedTuple):
    """Streaming moments of (N, D) features around a reference point c.

    count: () sum of row weights; total: (D,) sum w (x - c); outer: (D, D) sum w (x - c)(x - c)^T;
    center: (D,) c times ``copies``; copies: () how many started states were summed into this
    one (0 while c is unset). Every field is a sum, which is what makes a leaf-by-leaf sum of
    states that share c (``jax.lax.psum``, ``jnp.sum`` over a device axis) a valid merge.
    """

    count: jax.Array
    total: jax.Array
    outer: jax.Array
    center: jax.Array
    copies: jax.Array


def _center_of(m: Moments) -> jax.Array:
    return m.center / jnp.maximum(m.copies, 1)


def moments_init(dim: int, dtype: Any = jnp.float32, *, center: Any = None) -> Moments:
    """Empty moments of ``dim`` features. ``center`` (scalar or (D,)) fixes c; else the first batch's mean.

    Give every device the same ``center`` when their states will be summed with ``psum``.
    """
    dim = _check_int("moments_init", "dim", dim, 1)
    dtype = _float_dtype("moments_init", dtype)
    if center is None:
        c, copies = jnp.zeros((dim,), dtype), jnp.zeros((), dtype)
    else:
        c = jnp.asarray(center, dtype)
        if c.shape not in ((), (dim,)):
            raise ValueError(f"moments_init: expected center of shape () or ({dim},), got shape {tuple(c.shape)}")
        _check_finite("moments_init", "center", c)
        c, copies = jnp.broadcast_to(c, (dim,)), jnp.ones((), dtype)
    return Moments(jnp.zeros((), dtype), jnp.zeros((dim,), dtype), jnp.zeros((dim, dim), dtype), c, copies)


def _set_center(m: Moments, x: jax.Array, w: jax.Array) -> Moments:
    """m with c set to the weighted mean of x (N, D) if c is unset and the batch is not empty."""
    n = jnp.sum(w)
    batch_mean = _dot(w, x) / jnp.where(n > 0, n, 1)
    take = (m.copies == 0) & (n > 0)
    return m._replace(
        center=jnp.where(take, batch_mean, m.center),
        copies=jnp.where(take, jnp.ones_like(m.copies), m.copies),
    )


def _accumulate(m: Moments, x: jax.Array, w: jax.Array) -> tuple[Moments, jax.Array]:
    """m plus the weighted rows of x (N, D); also returns x - c (N, D)."""
    # Masked rows are zeroed first: junk padding (even NaN) must not leak in through 0 * NaN.
    x = jnp.where(w[:, None] != 0, x, 0)
    m = _set_center(m, x, w)
    xc = x - _center_of(m)[None, :]
    wx = xc * w[:, None]
    m = m._replace(count=m.count + jnp.sum(w), total=m.total + jnp.sum(wx, axis=0), outer=m.outer + _dot(wx.T, xc))
    return m, xc


@jax.jit
def _moments_step(m: Moments, x: jax.Array, w: jax.Array) -> Moments:
    return _accumulate(m, x, w)[0]


def moments_update(m: Moments, x: Any, mask: Any = None) -> Moments:
    """m plus the rows of x (N, D); ``mask`` (N,) bool or float weights keeps only real rows."""
    x = _features("moments_update", x, dim=m.total.shape[0], dtype=m.total.dtype)
    w = _row_weights("moments_update", mask, x)
    return _moments_step(m, x, w)


def _moved(m: Moments, c: jax.Array) -> Moments:
    """m re-expressed around c (D,); exact algebra, and a no-op where c already is m's center."""
    d = _center_of(m) - c
    n = m.count
    return m._replace(
        total=m.total + n * d,
        outer=m.outer + jnp.outer(m.total, d) + jnp.outer(d, m.total) + n * jnp.outer(d, d),
        center=jnp.where(d == 0, m.center, c * m.copies),
    )


@jax.jit
def moments_recenter(m: Moments, center: Any) -> Moments:
    """m around a new reference point ``center`` (D,); use it to give states a common c before a psum."""
    c = jnp.broadcast_to(jnp.asarray(center, m.total.dtype), m.total.shape)
    moved = _moved(m, c)
    unset = m.copies == 0
    return moved._replace(
        center=jnp.where(unset, c, moved.center), copies=jnp.where(unset, jnp.ones_like(m.copies), m.copies)
    )


def _merge_target(a: Moments, b: Moments) -> jax.Array:
    return jnp.where(a.copies > 0, _center_of(a), _center_of(b))


@jax.jit
def moments_merge(a: Moments, b: Moments) -> Moments:
    """The moments of both; the leaf-by-leaf sum when a and b share c (b is moved onto a's c if not)."""
    c = _merge_target(a, b)
    return jax.tree.map(jnp.add, _moved(a, c), _moved(b, c))


def _mean_and_scatter(m: Moments) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean (D,) of the data, its centred scatter sum w (x - mean)(x - mean)^T (D, D), and the mean minus c."""
    shift = m.total / m.count
    scatter = m.outer - m.count * jnp.outer(shift, shift)
    return _center_of(m) + shift, scatter, shift


def _check_stats(fn: str, count: jax.Array, minimum: int, *arrays: jax.Array) -> None:
    """Raise if concrete statistics are not finite (NaN or inf got into the input) or hold too few rows."""
    _check_finite(fn, "the statistics", count, *arrays)
    if _is_concrete(count) and float(count) < minimum:
        raise ValueError(f"{fn}: expected statistics of at least {minimum} rows, got a total weight of {float(count)}")


# ----------------------------------------------------------------------------- PCA


class PCA(NamedTuple):
    """A fitted PCA. mean (D,), components (K, D) orthonormal rows, explained_variance (K,)
    (ddof=1, as scikit-learn), explained_variance_ratio (K,), scale (K,): ones, or
    1/sqrt(explained_variance) when whitened (0 for a zero-variance component)."""

    mean: jax.Array
    components: jax.Array
    explained_variance: jax.Array
    explained_variance_ratio: jax.Array
    scale: jax.Array


def _whiten_scale(ev: jax.Array, whiten: jax.Array) -> jax.Array:
    """(K,) ones, or 1/sqrt(ev) if ``whiten`` (a traced bool, so both cases share one compile)."""
    # Below eps * the largest variance an eigenvalue is rounding noise; scaling it up would amplify noise.
    resolved = ev > jnp.finfo(ev.dtype).eps * ev[0]
    return jnp.where(whiten, jnp.where(resolved, jax.lax.rsqrt(jnp.where(resolved, ev, 1)), 0), 1)


def _pca(mean, components, ev, total_var, whiten):
    ev = jnp.maximum(ev, 0)
    return PCA(mean, _positive_signs(components), ev, ev / total_var, _whiten_scale(ev, whiten))


@jax.jit(static_argnums=1)
def _fit_pca(m: Moments, k: int, whiten: jax.Array) -> PCA:
    mean, scatter, _ = _mean_and_scatter(m)
    cov = scatter / (m.count - 1)
    ev, components = _top_eigh(cov, k)
    return _pca(mean, components, ev, jnp.trace(cov), whiten)


def fit_pca(moments: Moments, n_components: int, *, whiten: bool = False) -> PCA:
    """PCA with ``n_components`` components from streaming moments (eigh of the covariance)."""
    dim = moments.total.shape[0]
    k = _n_components("fit_pca", n_components, dim, "the feature dimension")
    _check_stats("fit_pca", moments.count, 2, moments.total, moments.outer)
    return _fit_pca(moments, k, jnp.asarray(bool(whiten)))


@jax.jit(static_argnums=1)
def _moments_of_array(x: jax.Array, batch_size: int | None) -> Moments:
    m = moments_init(x.shape[1], x.dtype)
    if batch_size is None:
        return _accumulate(m, x, jnp.ones(x.shape[:1], x.dtype))[0]
    n, d = x.shape
    batches = -(-n // batch_size)
    pad = batches * batch_size - n
    xb = jnp.pad(x, ((0, pad), (0, 0))).reshape(batches, batch_size, d)
    wb = (jnp.arange(batches * batch_size) < n).astype(x.dtype).reshape(batches, batch_size)

    def step(m, batch):
        return _accumulate(m, *batch)[0], None

    return jax.lax.scan(step, m, (xb, wb))[0]


def _batch_size(fn: str, batch_size: Any) -> int | None:
    return None if batch_size is None else _check_int(fn, "batch_size", batch_size, 1)


def fit_pca_array(x: Any, n_components: int, whiten: bool = False, batch_size: int | None = None) -> PCA:
    """PCA of x (N, D), streaming it in batches of ``batch_size`` rows (one batch if None)."""
    x = _features("fit_pca_array", x, min_rows=2)
    k = _n_components("fit_pca_array", n_components, x.shape[1], "the feature dimension")
    m = _moments_of_array(x, _batch_size("fit_pca_array", batch_size))
    return _fit_pca(m, k, jnp.asarray(bool(whiten)))


@jax.jit(static_argnums=(1, 3))
def _fit_pca_randomized(x, k, key, oversample, iterations, whiten):
    n, d = x.shape
    mean = jnp.mean(x, axis=0)
    xc = x - mean[None, :]
    width = min(k + oversample, n, d)
    q = jnp.linalg.qr(_dot(xc, jax.random.normal(key, (d, width), x.dtype)))[0]

    def power_iteration(_, q):  # re-orthonormalised each half step
        return jnp.linalg.qr(_dot(xc, jnp.linalg.qr(_dot(xc.T, q))[0]))[0]

    q = jax.lax.fori_loop(0, iterations, power_iteration, q)
    _, s, vt = jnp.linalg.svd(_dot(q.T, xc), full_matrices=False)
    return _pca(mean, vt[:k], s[:k] ** 2 / (n - 1), jnp.sum(xc * xc) / (n - 1), whiten)


def fit_pca_randomized(
    x: Any, n_components: int, *, key: jax.Array, oversample: int = 10, iterations: int = 4, whiten: bool = False
) -> PCA:
    """Approximate PCA of x (N, D) by randomized SVD (Halko et al. 2011); for D too wide for a D x D covariance."""
    x = _features("fit_pca_randomized", x, min_rows=2)
    k = _n_components("fit_pca_randomized", n_components, min(x.shape), "min(N, D)")
    oversample = _check_int("fit_pca_randomized", "oversample", oversample, 0)
    iterations = _check_int("fit_pca_randomized", "iterations", iterations, 0)
    if not isinstance(key, jax.Array):
        raise TypeError(f"fit_pca_randomized: expected a jax.random key, got {type(key).__name__}")
    return _fit_pca_randomized(x, k, key, oversample, iterations, jnp.asarray(bool(whiten)))


@jax.jit(static_argnums=1)
def _fit_pca_gram(x, k, whiten):
    n = x.shape[0]
    mean = jnp.mean(x, axis=0)
    xc = x - mean[None, :]
    lam, u = _top_eigh(_dot(xc, xc.T), k)
    v = _dot(u, xc)  # rows are sqrt(lam) * components
    components = v / jnp.linalg.norm(v, axis=1, keepdims=True)
    return _pca(mean, components, lam / (n - 1), jnp.sum(xc * xc) / (n - 1), whiten)


def fit_pca_gram(x: Any, n_components: int, *, whiten: bool = False) -> PCA:
    """Exact PCA of x (N, D) through the N x N Gram matrix; the cheap path when N < D."""
    x = _features("fit_pca_gram", x, min_rows=2)
    k = _n_components("fit_pca_gram", n_components, min(x.shape[0] - 1, x.shape[1]), "min(N - 1, D)")
    return _fit_pca_gram(x, k, jnp.asarray(bool(whiten)))


@jax.jit
def _project(pca: PCA, x: jax.Array) -> jax.Array:
    return _dot(x - pca.mean[None, :], pca.components.T) * pca.scale[None, :]


def project(pca: PCA, x: Any) -> jax.Array:
    """x (N, D) -> (N, K) coordinates on the components, whitened if the PCA was."""
    x = _features("project", x, dim=pca.mean.shape[0], dtype=pca.mean.dtype)
    return _project(pca, x)


# ----------------------------------------------------------------------------- LDA


class ScatterStats(NamedTuple):
    """Streaming per-class statistics of (N, D) features with labels in 0..C-1.

    moments: the Moments of all rows (around c); class_count: (C,) sum of weights per class;
    class_total: (C, D) per-class sum w (x - c). Enough for LDA and for ridge regression to
    one-hot targets (sum x y^T is class_total^T). Mergeable by sum, like Moments.
    """

    moments: Moments
    class_count: jax.Array
    class_total: jax.Array


def scatter_init(dim: int, num_classes: int, dtype: Any = jnp.float32, *, center: Any = None) -> ScatterStats:
    """Empty statistics for ``dim`` features and ``num_classes`` classes; ``center`` as in moments_init."""
    num_classes = _check_int("scatter_init", "num_classes", num_classes, 2)
    m = moments_init(dim, dtype, center=center)
    dtype = m.count.dtype
    return ScatterStats(m, jnp.zeros((num_classes,), dtype), jnp.zeros((num_classes, m.total.shape[0]), dtype))


def _scatter_accumulate(s: ScatterStats, x: jax.Array, y: jax.Array, w: jax.Array) -> ScatterStats:
    m, xc = _accumulate(s.moments, x, w)
    onehot = jax.nn.one_hot(y, s.class_count.shape[0], dtype=x.dtype) * w[:, None]
    return ScatterStats(m, s.class_count + jnp.sum(onehot, axis=0), s.class_total + _dot(onehot.T, xc))


_scatter_step = jax.jit(_scatter_accumulate)


def scatter_update(s: ScatterStats, x: Any, y: Any, mask: Any = None) -> ScatterStats:
    """s plus rows x (N, D) with int labels y (N,); ``mask`` (N,) keeps only real rows."""
    dim, dtype = s.moments.total.shape[0], s.moments.total.dtype
    x = _features("scatter_update", x, dim=dim, dtype=dtype)
    y = _labels("scatter_update", y, x.shape[0], s.class_count.shape[0])
    return _scatter_step(s, x, y, _row_weights("scatter_update", mask, x))


def _scatter_moved(s: ScatterStats, c: jax.Array) -> ScatterStats:
    d = _center_of(s.moments) - c
    return ScatterStats(_moved(s.moments, c), s.class_count, s.class_total + s.class_count[:, None] * d[None, :])


@jax.jit
def scatter_merge(a: ScatterStats, b: ScatterStats) -> ScatterStats:
    """The statistics of both; the leaf-by-leaf sum when a and b share c."""
    c = _merge_target(a.moments, b.moments)
    return jax.tree.map(jnp.add, _scatter_moved(a, c), _scatter_moved(b, c))


@jax.jit(static_argnums=(2, 3))
def _scatter_of_array(x: jax.Array, y: jax.Array, num_classes: int, batch_size: int | None) -> ScatterStats:
    s = scatter_init(x.shape[1], num_classes, x.dtype)
    w = jnp.ones(x.shape[:1], x.dtype)
    if batch_size is None:
        return _scatter_accumulate(s, x, y, w)
    n, d = x.shape
    batches = -(-n // batch_size)
    pad = batches * batch_size - n
    xb = jnp.pad(x, ((0, pad), (0, 0))).reshape(batches, batch_size, d)
    yb = jnp.pad(y, (0, pad)).reshape(batches, batch_size)
    wb = jnp.pad(w, (0, pad)).reshape(batches, batch_size)

    def step(s, batch):
        return _scatter_accumulate(s, *batch), None

    return jax.lax.scan(step, s, (xb, yb, wb))[0]


def _shrunk(a: jax.Array, shrinkage: float) -> jax.Array:
    """(1 - shrinkage) a + shrinkage tr(a) / D I, scikit-learn's ``shrunk_covariance``."""
    d = a.shape[0]
    return (1 - shrinkage) * a + (shrinkage * jnp.trace(a) / d) * jnp.eye(d, dtype=a.dtype)


def _class_stats(s: ScatterStats, shrinkage: float) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Mean (D,), class means minus the mean (C, D), class priors (C,), within-class covariance (D, D).

    The covariance is the prior-weighted average of the class covariances (ddof=0), shrunk
    towards tr/D * I by ``shrinkage``, as scikit-learn's LinearDiscriminantAnalysis.
    """
    m = s.moments
    n = m.count
    mean, _, shift = _mean_and_scatter(m)
    present = s.class_count > 0
    class_shift = s.class_total / jnp.where(present, s.class_count, 1)[:, None]
    within = m.outer - _dot(class_shift.T, class_shift * s.class_count[:, None])
    within = _shrunk(0.5 * (within + within.T) / n, shrinkage)
    offsets = jnp.where(present[:, None], class_shift - shift[None, :], 0)
    return mean, offsets, s.class_count / n, within


def _inverse_sqrt(a: jax.Array) -> jax.Array:
    """W (D, D) with W^T a W = I for a symmetric PSD a, eigenvalues floored at eigh's resolution."""
    e, u = jnp.linalg.eigh(0.5 * (a + a.T))
    # eigh resolves eigenvalues to about eps * max; the floor keeps zero or negative ones finite.
    floor = jnp.finfo(a.dtype).eps * jnp.max(jnp.abs(e))
    return u * jax.lax.rsqrt(jnp.maximum(e, 0) + floor)[None, :]


def _whitener(a: jax.Array) -> jax.Array:
    """W (D, D) with W^T a W = I; one refinement pass on the near-identity W^T a W.

    In float32 a single eigh leaves W^T a W off the identity by about eps * cond(a); the
    second pass works on a well-conditioned matrix and removes most of that error.
    """
    w = _inverse_sqrt(a)
    return _dot(w, _inverse_sqrt(_dot(w.T, _dot(a, w))))


class LDA(NamedTuple):
    """A fitted LDA projection. mean (D,), scalings (D, K) with scalings^T S_w scalings = I,
    explained_variance_ratio (K,): each discriminant's share of the between-class eigenvalues."""

    mean: jax.Array
    scalings: jax.Array
    explained_variance_ratio: jax.Array


@jax.jit(static_argnums=1)
def _fit_lda(s: ScatterStats, k: int, shrinkage: float) -> LDA:
    mean, offsets, priors, within = _class_stats(s, shrinkage)
    # scikit-learn takes S_b = shrunk(S_t) - shrunk(S_w), i.e. S_b shrunk alike.
    between = _shrunk(_dot(offsets.T, offsets * priors[:, None]), shrinkage)
    w = _whitener(within)
    lam, q = _top_eigh(_dot(w.T, _dot(between, w)), w.shape[0])
    lam = jnp.maximum(lam, 0)
    scalings = _positive_signs(_dot(w, q.T).T[:k]).T
    return LDA(mean, scalings, lam[:k] / jnp.sum(lam))


def _shrinkage(fn: str, shrinkage: Any) -> float:
    if shrinkage is None:
        return 0.0
    if isinstance(shrinkage, bool) or not isinstance(shrinkage, (int, float, np.floating, np.integer)):
        raise TypeError(f"{fn}: expected shrinkage None or a float in [0, 1], got {type(shrinkage).__name__}")
    if not 0 <= shrinkage <= 1:
        raise ValueError(f"{fn}: expected shrinkage in [0, 1], got {shrinkage}")
    return float(shrinkage)


def fit_lda(stats: ScatterStats, n_components: int | None = None, *, shrinkage: float | None = None) -> LDA:
    """LDA projection onto ``n_components`` (default min(C - 1, D)) discriminants.

    Solves S_b v = lambda S_w v by whitening S_w (eigh, floored), then eigh. ``shrinkage`` in
    [0, 1] shrinks S_w towards a multiple of the identity (scikit-learn's float shrinkage,
    which shrinks S_b alike).
    """
    dim, num_classes = stats.moments.total.shape[0], stats.class_count.shape[0]
    limit = min(num_classes - 1, dim)
    k = limit if n_components is None else _n_components("fit_lda", n_components, limit, "min(C - 1, D)")
    shrink = _shrinkage("fit_lda", shrinkage)
    _check_stats("fit_lda", stats.moments.count, 2, stats.moments.total, stats.moments.outer, stats.class_total)
    return _fit_lda(stats, k, shrink)


def _scatter_of(fn: str, x: Any, y: Any, num_classes: int, batch_size: Any, min_rows: int) -> ScatterStats:
    x = _features(fn, x, min_rows=min_rows)
    num_classes = _check_int(fn, "num_classes", num_classes, 2)
    y = _labels(fn, y, x.shape[0], num_classes)
    return _scatter_of_array(x, y, num_classes, _batch_size(fn, batch_size))


def fit_lda_array(
    x: Any,
    y: Any,
    n_components: int | None = None,
    *,
    num_classes: int,
    shrinkage: float | None = None,
    batch_size: int | None = None,
) -> LDA:
    """LDA of x (N, D) with int labels y (N,) in 0..num_classes-1, streamed in batches if asked."""
    return fit_lda(_scatter_of("fit_lda_array", x, y, num_classes, batch_size, 2), n_components, shrinkage=shrinkage)


@jax.jit
def _lda_transform(lda: LDA, x: jax.Array) -> jax.Array:
    return _dot(x - lda.mean[None, :], lda.scalings)


def lda_transform(lda: LDA, x: Any) -> jax.Array:
    """x (N, D) -> (N, K) discriminant coordinates (centred on the training mean)."""
    x = _features("lda_transform", x, dim=lda.mean.shape[0], dtype=lda.mean.dtype)
    return _lda_transform(lda, x)
