"""Linear reduction: PCA and LDA from statistics gathered in one streaming pass.

Features are (N, D) arrays. The statistics are sums over rows, so a pass over batches is
``init -> update -> ... -> fit`` and two statistics merge by adding them: across devices a
plain ``jax.lax.psum`` of the state is the merge.

    m = moments_init(D); m = moments_update(m, x_batch, mask); pca = fit_pca(m, K)
    s = scatter_init(D, C); s = scatter_update(s, x_batch, y_batch, mask); lda = fit_lda(s)
    z = project(pca_or_lda, x)                     # (N, K), one projection for both

``fit_pca`` is exact (eigh) or, given a key, randomized for very wide features.

Rows on which a group acts by permuting a group axis (``Layout``) get symmetry-adapted
statistics and solvers that keep the reduction equivariant (the last section):

    s = symmetric_moments_init(layout); s = symmetric_moments_update(s, layout, x_batch, mask)
    pca, blocks = fit_symmetric_pca(s, layout, K)   # = the PCA of the rows moved by every element

Precision: the covariance is E[x x^T] - m m^T, and in float32 that difference loses digits
when the features have a large mean (pixels in [0, 1] have mean near 0.5). The sums are
therefore taken around a reference point ``c`` near the mean: sum (x - c), sum (x - c)(x - c)^T.
``c`` is given at init or taken from the first non-empty batch. States that share ``c`` merge
by a leaf-by-leaf sum; ``moments_merge`` also merges states with different ``c`` exactly.

Value checks (NaN, inf, label range) run only on concrete arrays, i.e. outside ``jax.jit``;
under jit a NaN propagates into the statistics and the eager ``fit_*`` call reports it.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import arrays, groups, irreps

__all__ = [
    "Moments",
    "moments_init",
    "moments_update",
    "HostMoments",
    "moments_merge",
    "moments_recenter",
    "PCA",
    "fit_pca",
    "fit_pca_top",
    "fit_pca_array",
    "ScatterStats",
    "scatter_init",
    "scatter_update",
    "scatter_merge",
    "LDA",
    "fit_lda",
    "project",
    "float64",
    "stats_dtype",
    "Layout",
    "irrep_rows",
    "SymmetricMoments",
    "symmetric_moments_init",
    "symmetric_moments_update",
    "symmetric_moments_merge",
    "SymmetricScatter",
    "symmetric_scatter_init",
    "symmetric_scatter_update",
    "Blocks",
    "fit_symmetric_pca",
    "fit_symmetric_lda",
]

# Statistics and projections must not drop to bf16/tf32 passes on TPU/GPU.
_HIGHEST = jax.lax.Precision.HIGHEST


def _dot(a: jax.Array, b: jax.Array) -> jax.Array:
    return jnp.matmul(a, b, precision=_HIGHEST)


# ----------------------------------------------------------------------------- input checks


def _is_concrete(x: Any) -> bool:
    return not isinstance(x, jax.core.Tracer)


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


def _labels(fn: str, y: Any, n: int, num_classes: int) -> jax.Array:
    """y as an int32 (N,) array of labels in 0..num_classes-1 (values checked when concrete)."""
    return jnp.asarray(arrays.as_labels(y, n, fn, name="labels y", num_classes=num_classes))


def _n_components(fn: str, k: Any, limit: int, what: str) -> int:
    k = arrays.as_int(k, fn, "n_components", 1)
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
    dim = arrays.as_int(dim, "moments_init", "dim", 1)
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
    m = m._replace(count=m.count + jnp.sum(w), total=m.total + jnp.sum(wx, axis=0), outer=m.outer + _gram(wx, xc))
    return m, xc


# float64 products cost 2-3x float32 ones on CPUs: wide float64 Gram matrices are computed as their
# upper triangle of blocks of about this many features, mirrored (about 3/5 of the work).
_GRAM_BLOCK = 256


def _gram(wx: jax.Array, xc: jax.Array) -> jax.Array:
    """wx^T xc (D, D) for wx = w * xc (so symmetric); float64 and wide: upper block triangle, mirrored
    (exactly symmetric)."""
    d = xc.shape[1]
    if xc.dtype != jnp.float64 or d < 2 * _GRAM_BLOCK:
        return _dot(wx.T, xc)
    edges = np.linspace(0, d, -(-d // _GRAM_BLOCK) + 1).astype(int)
    parts = list(zip(edges[:-1], edges[1:]))
    upper = {(i, j): _dot(wx[:, a:b].T, xc[:, c:e]) for i, (a, b) in enumerate(parts) for j, (c, e) in enumerate(parts) if j >= i}
    for i in range(len(parts)):  # a diagonal block is symmetric only up to the product's rounding: make it exact
        upper[(i, i)] = 0.5 * (upper[(i, i)] + upper[(i, i)].T)
    rows = [jnp.concatenate([upper[(i, j)] if j >= i else upper[(j, i)].T for j in range(len(parts))], axis=1) for i in range(len(parts))]
    return jnp.concatenate(rows, axis=0)


@jax.jit
def _moments_step(m: Moments, x: jax.Array, w: jax.Array) -> Moments:
    return _accumulate(m, x, w)[0]


def moments_update(m: Moments, x: Any, mask: Any = None) -> Moments:
    """m plus the rows of x (N, D); ``mask`` (N,) bool or float weights keeps only real rows."""
    x = _features("moments_update", x, dim=m.total.shape[0], dtype=m.total.dtype)
    w = _row_weights("moments_update", mask, x)
    return _moments_step(m, x, w)


class HostMoments:
    """Float64 moments of rows summed on the host: ``add(x, mask)`` batch by batch, then ``moments()``.

    For CPU backends: the Gram matrix accumulates in place by BLAS's symmetric rank-k update
    (dsyrk), its upper triangle only, mirrored once by ``moments()``; float64 at about XLA's
    float32 speed, where XLA's own float64 product is 2-3x slower. c is the first non-empty
    batch's mean, as in ``moments_update``, whose float64 sums it equals to rounding.
    """

    def __init__(self, dim: int):
        dim = arrays.as_int(dim, "HostMoments", "dim", 1)
        self.count, self.total, self.center = 0.0, np.zeros(dim), None
        self.upper = np.zeros((dim, dim), order="F")

    def add(self, x: Any, mask: Any = None) -> None:
        """Add the rows of x (N, D) with weights ``mask`` (N,) >= 0 (default ones; 0 drops a row)."""
        import scipy.linalg.blas

        x = np.asarray(x, np.float64)
        if x.ndim != 2 or x.shape[1] != self.total.shape[0]:
            raise ValueError(f"HostMoments.add: expected x of shape (N, {self.total.shape[0]}), got shape {x.shape}")
        w = np.ones(x.shape[0]) if mask is None else np.asarray(mask, np.float64).reshape(-1)
        if w.shape != x.shape[:1] or (w < 0).any():
            raise ValueError(f"HostMoments.add: expected mask of {x.shape[0]} weights >= 0, got shape {w.shape}")
        keep = w != 0
        x, w = x[keep], w[keep]
        _check_finite("HostMoments.add", "x", x)
        if x.shape[0] == 0:
            return
        if self.center is None:
            self.center = (w @ x) / w.sum()
        xc = x - self.center
        scaled = (xc * np.sqrt(w)[:, None]).T  # (D, N), Fortran-ordered: BLAS reads it without a copy
        self.upper = scipy.linalg.blas.dsyrk(1.0, scaled, beta=1.0, c=self.upper, trans=0, lower=0, overwrite_c=1)
        self.count += float(w.sum())
        self.total += w @ xc

    def moments(self) -> Moments:
        """The sums so far as float64 ``Moments`` (numpy arrays; use them under ``float64()``)."""
        outer = np.triu(self.upper) + np.triu(self.upper, 1).T
        dim = self.total.shape[0]
        center, copies = (np.zeros(dim), 0.0) if self.center is None else (self.center, 1.0)
        return Moments(np.asarray(self.count), self.total.copy(), outer, np.asarray(center), np.asarray(copies))


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


@jax.jit(static_argnums=(1, 3, 4))
def _fit_pca_randomized(m: Moments, k: int, key: jax.Array, oversample: int, iterations: int, whiten: jax.Array) -> PCA:
    mean, scatter, _ = _mean_and_scatter(m)
    cov = 0.5 * (scatter + scatter.T) / (m.count - 1)
    d = cov.shape[0]
    # Subspace iteration (Halko et al. 2011, algorithm 4.4 on the covariance): each step
    # multiplies by cov and re-orthonormalises, so the top k directions dominate the basis.
    q = jnp.linalg.qr(_dot(cov, jax.random.normal(key, (d, min(k + oversample, d)), cov.dtype)))[0]
    q = jax.lax.fori_loop(0, iterations, lambda _, q: jnp.linalg.qr(_dot(cov, q))[0], q)
    ev, u = _top_eigh(_dot(q.T, _dot(cov, q)), k)  # Rayleigh-Ritz on the basis
    return _pca(mean, _dot(u, q.T), ev, jnp.trace(cov), whiten)


def fit_pca(
    moments: Moments,
    n_components: int,
    *,
    whiten: bool = False,
    key: jax.Array | None = None,
    oversample: int = 10,
    iterations: int = 4,
) -> PCA:
    """PCA with ``n_components`` components from streaming moments.

    Exact by default: ``eigh`` of the (D, D) covariance, O(D^3). With a ``key``, randomized
    subspace iteration (``iterations`` products of the covariance with ``n_components +
    oversample`` random directions, then Rayleigh-Ritz), O(D^2 K): for features too wide for
    ``eigh``, accurate where the spectrum falls off past the K-th component.
    """
    dim = moments.total.shape[0]
    k = _n_components("fit_pca", n_components, dim, "the feature dimension")
    _check_stats("fit_pca", moments.count, 2, moments.total, moments.outer)
    whiten = jnp.asarray(bool(whiten))
    if key is None:
        return _fit_pca(moments, k, whiten)
    if not isinstance(key, jax.Array):
        raise TypeError(f"fit_pca: expected key a jax.random key or None, got {type(key).__name__}")
    oversample = arrays.as_int(oversample, "fit_pca", "oversample", 0)
    iterations = arrays.as_int(iterations, "fit_pca", "iterations", 0)
    return _fit_pca_randomized(moments, k, key, oversample, iterations, whiten)


def fit_pca_top(moments: Moments, n_components: int, *, whiten: bool = False) -> PCA:
    """PCA with ``n_components`` components solved in float64 on the host, float32 out.

    The covariance, formed in float64 from the moments, goes to LAPACK's subset eigen-solver
    (``scipy.linalg.eigh``, driver evr), which computes the top K eigenpairs only: for K << D
    about half the time of a float32 ``eigh`` of all D, and with float64's resolution, so that
    eigenvalues closer than float32 can tell apart keep their eigenvectors whatever batches and
    devices summed the moments. Signs: ``_canonical``. Call it with float64 moments (made under
    ``float64()``) for that reproducibility; any float moments work.
    """
    import scipy.linalg

    dim = moments.total.shape[0]
    k = _n_components("fit_pca_top", n_components, dim, "the feature dimension")
    _check_stats("fit_pca_top", moments.count, 2, moments.total, moments.outer)
    m = _host(moments)
    shift = m.total / m.count
    cov = (m.outer - m.count * np.outer(shift, shift)) / (m.count - 1)
    cov = 0.5 * (cov + cov.T)
    ev, vectors = scipy.linalg.eigh(cov, subset_by_index=[dim - k, dim - 1], driver="evr")
    ev, vectors = np.maximum(ev[::-1], 0), vectors[:, ::-1]
    components = np.stack([_canonical(vectors[:, i]) for i in range(k)])
    resolved = ev > np.finfo(np.float32).eps * ev[0]
    scale = np.where(resolved, 1 / np.sqrt(np.where(resolved, ev, 1)), 0) if whiten else np.ones_like(ev)
    f32 = lambda a: jnp.asarray(np.asarray(a, np.float32))  # noqa: E731
    mean = m.center / max(float(m.copies), 1.0) + shift
    return PCA(f32(mean), f32(components), f32(ev), f32(ev / np.trace(cov)), f32(scale))


def _scan_batches(step, state, batch_size: int | None, *rows: jax.Array, weights: jax.Array | None = None):
    """``state`` after ``step(state, *batch_rows, w)`` over rows (N, ...) in batches of
    ``batch_size`` (the last padded by ``arrays.pad_rows``, its padding of weight w = 0), or
    in one step when batch_size is None; ``weights`` (N,) weigh the rows (default ones)."""
    n = rows[0].shape[0]
    dtype = rows[0].dtype
    weights = jnp.ones((n,), dtype) if weights is None else weights.astype(dtype)
    if batch_size is None:
        return step(state, *rows, weights)
    batches = -(-n // batch_size)
    size = batches * batch_size
    padded = [arrays.pad_rows(r, size).reshape((batches, batch_size) + r.shape[1:]) for r in rows]
    weights = jnp.where(jnp.arange(size) < n, arrays.pad_rows(weights, size), 0).reshape(batches, batch_size)
    return jax.lax.scan(lambda s, batch: (step(s, *batch), None), state, (*padded, weights))[0]


@jax.jit(static_argnums=1)
def _moments_of_array(x: jax.Array, batch_size: int | None, weights: jax.Array | None = None) -> Moments:
    return _scan_batches(lambda m, x, w: _accumulate(m, x, w)[0], moments_init(x.shape[1], x.dtype), batch_size, x,
                         weights=weights)


def _sample_weight(fn: str, sample_weight: Any, n: int, dtype: Any = np.float32) -> jax.Array | None:
    """sample_weight as a jax (n,) array of ``dtype``, checked by ``arrays.as_weights``; None stays
    None (no weights). scikit-learn's convention: a row's weight multiplies its statistics and loss
    term, so integer weights equal repeated rows and weight 0 removes the row."""
    return None if sample_weight is None else jnp.asarray(arrays.as_weights(sample_weight, n, fn, dtype=dtype))


def _batch_size(fn: str, batch_size: Any) -> int | None:
    return None if batch_size is None else arrays.as_int(batch_size, fn, "batch_size", 1)


def fit_pca_array(x: Any, n_components: int, whiten: bool = False, batch_size: int | None = None,
                  sample_weight: Any = None) -> PCA:
    """PCA of x (N, D), streaming it in batches of ``batch_size`` rows (one batch if None);
    ``sample_weight`` (N,) weighs the rows (integer weights: the rows repeated)."""
    x = _features("fit_pca_array", x, min_rows=2)
    k = _n_components("fit_pca_array", n_components, x.shape[1], "the feature dimension")
    w = _sample_weight("fit_pca_array", sample_weight, x.shape[0])
    m = _moments_of_array(x, _batch_size("fit_pca_array", batch_size), w)
    return _fit_pca(m, k, jnp.asarray(bool(whiten)))


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
    num_classes = arrays.as_int(num_classes, "scatter_init", "num_classes", 2)
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
def _scatter_of_array(x: jax.Array, y: jax.Array, num_classes: int, batch_size: int | None,
                      weights: jax.Array | None = None) -> ScatterStats:
    return _scan_batches(_scatter_accumulate, scatter_init(x.shape[1], num_classes, x.dtype), batch_size, x, y,
                         weights=weights)


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
    """A fitted LDA projection. mean (D,), components (K, D): the discriminant directions as
    rows (scikit-learn's ``scalings_`` transposed), with components S_w components^T = I;
    explained_variance_ratio (K,): each discriminant's share of the between-class eigenvalues."""

    mean: jax.Array
    components: jax.Array
    explained_variance_ratio: jax.Array


@jax.jit(static_argnums=1)
def _fit_lda(s: ScatterStats, k: int, shrinkage: float) -> LDA:
    mean, offsets, priors, within = _class_stats(s, shrinkage)
    # scikit-learn takes S_b = shrunk(S_t) - shrunk(S_w), i.e. S_b shrunk alike.
    between = _shrunk(_dot(offsets.T, offsets * priors[:, None]), shrinkage)
    w = _whitener(within)
    lam, q = _top_eigh(_dot(w.T, _dot(between, w)), w.shape[0])
    lam = jnp.maximum(lam, 0)
    return LDA(mean, _positive_signs(_dot(w, q.T).T[:k]), lam[:k] / jnp.sum(lam))


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


def _scatter_of(fn: str, x: Any, y: Any, num_classes: int, batch_size: Any, min_rows: int,
                sample_weight: Any = None) -> ScatterStats:
    """ScatterStats of x (N, D), labels y (N,), rows weighted by ``sample_weight`` (N,) (default ones)."""
    x = _features(fn, x, min_rows=min_rows)
    num_classes = arrays.as_int(num_classes, fn, "num_classes", 2)
    y = _labels(fn, y, x.shape[0], num_classes)
    w = _sample_weight(fn, sample_weight, x.shape[0], x.dtype)
    return _scatter_of_array(x, y, num_classes, _batch_size(fn, batch_size), w)


# ----------------------------------------------------------------------------- projection


@jax.jit
def _project(reducer: PCA | LDA, x: jax.Array) -> jax.Array:
    z = _dot(x - reducer.mean[None, :], reducer.components.T)
    return z * reducer.scale[None, :] if isinstance(reducer, PCA) else z


def project(reducer: PCA | LDA, x: Any) -> jax.Array:
    """x (N, D) -> (N, K): coordinates on a fitted PCA's components (whitened if it was) or an
    LDA's discriminants, centred on the training mean."""
    if not isinstance(reducer, (PCA, LDA)):
        raise TypeError(f"project: expected a fitted PCA or LDA, got {type(reducer).__name__}")
    x = _features("project", x, dim=reducer.mean.shape[0], dtype=reducer.mean.dtype)
    return _project(reducer, x)


# ----------------------------------------------------------------------------- symmetry-adapted PCA and LDA
#
# Rows whose group axis a group permutes (an equivariant representation) get a reduction that
# stays equivariant: its statistics are those of the rows acted on by every group element (the
# average of the moments under the |G| permutations, taken exactly, never by augmenting the
# data), and its eigen-problems are solved per isotypic component of the group's real irreps
# (``glassjax.core.irreps``). Components are kept or cut in whole irrep blocks, each with a
# canonical basis, so every element acts on the output features by a fixed block-diagonal
# matrix (``irreps.action``). Statistics are float64 (``stats_dtype()``; made and updated under
# ``float64()``), the small per-irrep eigen-problems float64 too.


def float64():
    """The context in which float64 statistics can be made and updated (``jax.enable_x64``)."""
    return jax.enable_x64(True)


def _in_float64(fn):
    """``fn`` run inside ``float64()``: its statistics and small eigen-problems in float64."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with float64():
            return fn(*args, **kwargs)

    return wrapped


def stats_dtype() -> np.dtype:
    """The dtype of streaming statistics that must not depend on how the rows were batched:
    float64, whose sums are the same to ~1e-15 whatever the batch size and device count that
    summed them; float32 on TPUs, which emulate float64 slowly (there a fit is reproducible only
    to float32 rounding). Asked at fit time, so importing glassjax initialises no backend."""
    return np.dtype(np.float32 if jax.default_backend() == "tpu" else np.float64)


# The sign (or complex phase) rule's pivot is the first entry within this relative distance of
# the largest magnitude: entries equal up to float64 noise resolve to the lower index.
_PIVOT_TIE = 1e-9


class Layout(NamedTuple):
    """Where a group acts on feature rows (D,): ``invariant`` features it leaves alone, then a group
    axis of |G| blocks of ``channels`` features (g-major) that element h permutes as z_g -> z_{g h}.
    Hashable, so a static jit argument. ``channels=0``: every feature is invariant."""

    group: str
    invariant: int
    channels: int

    @property
    def dim(self) -> int:
        return self.invariant + _group(self.group).order * self.channels


def _group(spec) -> groups.Group:
    return groups.get(spec)


def _irrep_tables(layout: Layout):
    """(irreps, regular basis, multiplicities M per irrep) of a layout."""
    group = _group(layout.group)
    table, basis = irreps.irreps(group), irreps.regular_basis(group)
    mult = [rho.copies * layout.channels + (layout.invariant if r == 0 else 0) for r, rho in enumerate(table)]
    return table, basis, mult


def irrep_rows(layout: Layout, x: jax.Array) -> list[jax.Array]:
    """Rows x (N, D) in irrep coordinates: per irrep rho, Y (N, n, M). Coordinate j of copy i,
    channel k is Y[:, j, i * channels + k]; the trivial irrep puts the invariant features first.
    Element h acts on every Y by rho(h) along its n axis. An orthogonal change of basis."""
    table, basis, _ = _irrep_tables(layout)
    n = x.shape[0]
    order = basis.q.shape[0]
    if layout.channels:
        z = x[:, layout.invariant :].reshape(n, order, layout.channels)
        y = jnp.einsum("bgk,gc->bck", z, jnp.asarray(basis.q, x.dtype), precision=_HIGHEST)
    out = []
    for r, (rho, cols) in enumerate(zip(table, basis.columns)):
        if layout.channels:
            block = jnp.swapaxes(y[:, cols], 1, 2).reshape(n, rho.dim, rho.copies * layout.channels)
        else:
            block = jnp.zeros((n, rho.dim, 0), x.dtype)
        if r == 0:
            block = jnp.concatenate([x[:, None, : layout.invariant], block], axis=-1)
        out.append(block)
    return out


class SymmetricMoments(NamedTuple):
    """Streaming moments of rows as the group sees them: ``trivial`` the Moments of the trivial
    irrep's coordinates (M_0,) around c; per other irrep, ``second`` (M, M) the sum over rows and
    coordinates j of Y_j Y_j^T, and ``twist`` (M, M) sum Y_1 Y_0^T - Y_0 Y_1^T for a complex-type
    irrep ((0, 0) otherwise). Their mean is 0: the group averages it away. Every leaf is a sum."""

    trivial: Moments
    second: tuple
    twist: tuple


def symmetric_moments_init(layout: Layout, dtype: Any = None) -> SymmetricMoments:
    """Empty symmetric moments for rows of ``layout`` (``dtype`` default ``stats_dtype()``; float64 needs ``float64()``)."""
    dtype = _float_dtype("symmetric_moments_init", stats_dtype() if dtype is None else dtype)
    table, _, mult = _irrep_tables(layout)
    second = tuple(jnp.zeros((m, m), dtype) for m in mult[1:])
    twist = tuple(jnp.zeros((m, m) if rho.kind == "complex" else (0, 0), dtype) for rho, m in zip(table[1:], mult[1:]))
    return SymmetricMoments(moments_init(max(mult[0], 1), dtype), second, twist)


def _symmetric_accumulate(s: SymmetricMoments, layout: Layout, x: jax.Array, w: jax.Array):
    x = jnp.where(w[:, None] != 0, x, 0)
    blocks = irrep_rows(layout, x)
    trivial = blocks[0][:, 0]
    if trivial.shape[1] == 0:  # no trivial coordinates: the Moments only count the rows
        trivial = jnp.zeros((x.shape[0], 1), x.dtype)
    m, centred = _accumulate(s.trivial, trivial, w)
    table = _irrep_tables(layout)[0]
    second, twist = [], []
    for rho, y, sec, tw in zip(table[1:], blocks[1:], s.second, s.twist):
        wy = y * w[:, None, None]
        second.append(sec + jnp.einsum("bjm,bjl->ml", wy, y, precision=_HIGHEST))
        if rho.kind == "complex":
            t = jnp.einsum("bm,bl->ml", wy[:, 1], y[:, 0], precision=_HIGHEST)
            twist.append(tw + t - t.T)
        else:
            twist.append(tw)
    coords = jnp.concatenate([centred[:, : blocks[0].shape[2]]] + [y.reshape(x.shape[0], -1) for y in blocks[1:]], axis=1)
    return SymmetricMoments(m, tuple(second), tuple(twist)), coords


@jax.jit(static_argnums=1)
def _symmetric_step(s: SymmetricMoments, layout: Layout, x: jax.Array, w: jax.Array) -> SymmetricMoments:
    return _symmetric_accumulate(s, layout, x, w)[0]


def symmetric_moments_update(s: SymmetricMoments, layout: Layout, x: Any, mask: Any = None) -> SymmetricMoments:
    """s plus rows x (N, D) of ``layout`` (cast to the statistics' dtype); ``mask`` (N,) keeps only real rows."""
    x = _features("symmetric_moments_update", x, dim=layout.dim, dtype=s.trivial.total.dtype)
    return _symmetric_step(s, layout, x, _row_weights("symmetric_moments_update", mask, x))


@jax.jit
def symmetric_moments_merge(a: SymmetricMoments, b: SymmetricMoments) -> SymmetricMoments:
    """The symmetric moments of both (their trivial Moments merged by ``moments_merge``)."""
    rest = jax.tree.map(jnp.add, (a.second, a.twist), (b.second, b.twist))
    return SymmetricMoments(moments_merge(a.trivial, b.trivial), *rest)


class SymmetricScatter(NamedTuple):
    """Symmetric moments plus per-class statistics: class_count (C,) and class_total (C, D) the
    per-class sums of the irrep coordinates (each irrep's (n, M) flattened, in irrep order; the
    trivial ones minus c). Enough for the LDA of the rows acted on by every group element."""

    moments: SymmetricMoments
    class_count: jax.Array
    class_total: jax.Array


def symmetric_scatter_init(layout: Layout, num_classes: int, dtype: Any = None) -> SymmetricScatter:
    """Empty symmetric class statistics for rows of ``layout`` and ``num_classes`` classes."""
    num_classes = arrays.as_int(num_classes, "symmetric_scatter_init", "num_classes", 2)
    m = symmetric_moments_init(layout, dtype)
    dtype = m.trivial.count.dtype
    return SymmetricScatter(m, jnp.zeros((num_classes,), dtype), jnp.zeros((num_classes, layout.dim), dtype))


@jax.jit(static_argnums=1)
def _symmetric_scatter_step(s: SymmetricScatter, layout: Layout, x, y, w) -> SymmetricScatter:
    m, coords = _symmetric_accumulate(s.moments, layout, x, w)
    onehot = jax.nn.one_hot(y, s.class_count.shape[0], dtype=x.dtype) * w[:, None]
    return SymmetricScatter(m, s.class_count + jnp.sum(onehot, axis=0), s.class_total + _dot(onehot.T, coords))


def symmetric_scatter_update(s: SymmetricScatter, layout: Layout, x: Any, y: Any, mask: Any = None) -> SymmetricScatter:
    """s plus rows x (N, D) of ``layout`` with int labels y (N,); ``mask`` (N,) keeps only real rows."""
    x = _features("symmetric_scatter_update", x, dim=layout.dim, dtype=s.class_total.dtype)
    y = _labels("symmetric_scatter_update", y, x.shape[0], s.class_count.shape[0])
    return _symmetric_scatter_step(s, layout, x, y, _row_weights("symmetric_scatter_update", mask, x))


class Blocks(NamedTuple):
    """The irrep block of every output feature of a symmetry-adapted reduction.

    irrep (K,) int32: index into ``irreps.irreps(group)``; coordinate (K,) int32: the feature's
    coordinate in its block (a block is a run 0..n-1 of one irrep); isotypic (R,): each irrep's
    isotypic component's share of the total variance (PCA) or of the discriminant sum (LDA).
    """

    irrep: jax.Array
    coordinate: jax.Array
    isotypic: jax.Array


def _host(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def _canonical(v: np.ndarray) -> np.ndarray:
    """v (M,) times the unit scalar (a sign, or a phase if complex) that makes its pivot entry real
    and positive; the pivot is the first entry within _PIVOT_TIE of the largest magnitude."""
    mag = np.abs(v)
    pivot = int(np.argmax(mag >= mag.max() * (1 - _PIVOT_TIE)))
    return v * (np.conj(v[pivot]) / mag[pivot]) if mag[pivot] > 0 else v


@jax.jit
def _eigh_device(a: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.linalg.eigh(a)


def _eigh(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """eigh of a float64 (or complex128) host matrix, by XLA's solver under ``float64()``: numpy's
    threaded LAPACK beside XLA's busy thread pool ran 5-10x slower on the project's CPUs."""
    w, v = _eigh_device(jnp.asarray(0.5 * (a + a.conj().T)))
    return np.asarray(w), np.asarray(v)


def _eigh_desc(a: np.ndarray, top: int, rng: np.random.Generator | None = None, oversample: int = 10, iterations: int = 4):
    """The ``top`` largest eigenpairs (values (t,), vectors (M, t)) of a symmetric / Hermitian a,
    descending; with ``rng``, by subspace iteration (for wide real blocks) instead of eigh."""
    if rng is None or np.iscomplexobj(a):
        w, v = _eigh(a)
        return w[::-1][:top], v[:, ::-1][:, :top]
    q = np.linalg.qr(a @ rng.standard_normal((a.shape[0], min(top + oversample, a.shape[0]))))[0]
    for _ in range(iterations):
        q = np.linalg.qr(a @ q)[0]
    w, u = _eigh(q.T @ a @ q)
    return w[::-1][:top], (q @ u)[:, ::-1][:, :top]


def _forms(s: SymmetricMoments, layout: Layout):
    """Per irrep the coordinate form F (M, M): the scatter (sum over rows) of any one coordinate's
    multiplicity vector, symmetrised (trivial: centred on the mean; complex type: Hermitian); and the
    trivial coordinates' mean (M_0,)."""
    table, _, mult = _irrep_tables(layout)
    trivial, second, twist = _host(s.trivial), _host(s.second), _host(s.twist)
    n = trivial.count
    shift = trivial.total / n
    mean = trivial.center / max(trivial.copies, 1) + shift
    forms = [(trivial.outer - n * np.outer(shift, shift))[: mult[0], : mult[0]]]
    for rho, sec, tw in zip(table[1:], second, twist):
        forms.append((sec + 1j * tw) / 2 if rho.kind == "complex" else sec / rho.dim)
    return forms, mean[: mult[0]], float(n)


def _directions(layout: Layout, r: int, v: np.ndarray) -> np.ndarray:
    """The rows (n, D) in feature space of the n features of irrep r's block with multiplicity
    vector v (M,) (complex for a complex-type irrep): feature j of a real-type block reads v . Y_j;
    a complex-type block reads Re and Im of conj(v) . (Y_0 + i Y_1)."""
    table, basis, _ = _irrep_tables(layout)
    rho, cols = table[r], basis.columns[r]
    if rho.kind == "complex":
        p, q = v.real, v.imag
        alphas = [np.stack([p, q]), np.stack([-q, p])]
    else:
        alphas = [np.eye(rho.dim)[:, j, None] * v[None, :] for j in range(rho.dim)]
    order = basis.q.shape[0]
    rows = []
    for alpha in alphas:  # alpha (n, M): the coefficient of each coordinate's multiplicity vector
        row = np.zeros(layout.dim)
        if r == 0:
            row[: layout.invariant] = alpha[0, : layout.invariant]
            alpha = alpha[:, layout.invariant :]
        if layout.channels:
            coef = alpha.reshape(rho.dim, rho.copies, layout.channels)
            row[layout.invariant :] = np.einsum("jik,gij->gk", coef, basis.q[:, cols].reshape(order, rho.copies, rho.dim)).ravel()
        rows.append(row)
    return np.stack(rows)


def _mean_row(layout: Layout, trivial_mean: np.ndarray) -> np.ndarray:
    """The symmetric mean (D,) from the trivial coordinates' mean: invariant part as is, each
    group block the trivial channel mean / sqrt(|G|)."""
    order = _group(layout.group).order
    eq = np.tile(trivial_mean[layout.invariant :] / np.sqrt(order), order)
    return np.concatenate([trivial_mean[: layout.invariant], eq])


def _select(candidates: list, dims: list[int], k: int) -> list:
    """The candidate blocks (value, irrep, index) by descending value (ties: irrep, then index), as
    long as their features fit in k: the kept set is a prefix, cut only between whole blocks."""
    kept, width = [], 0
    for cand in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if width + dims[cand[1]] > k:
            break
        kept.append(cand)
        width += dims[cand[1]]
    return kept


def _assemble(layout: Layout, kept: list, vectors: dict):
    """components (K, D), irrep (K,), coordinate (K,), per-feature value (K,) of the kept blocks."""
    rows, irrep, coord, values = [], [], [], []
    for value, r, i in kept:
        block = _directions(layout, r, vectors[r][:, i])
        rows.append(block)
        irrep += [r] * block.shape[0]
        coord += list(range(block.shape[0]))
        values += [value] * block.shape[0]
    return np.concatenate(rows), np.asarray(irrep, np.int32), np.asarray(coord, np.int32), np.asarray(values)


def _check_symmetric(fn: str, layout: Any, count: Any, *leaves) -> Layout:
    if not isinstance(layout, Layout):
        raise TypeError(f"{fn}: expected a reduction.Layout, got {type(layout).__name__}")
    _check_stats(fn, count, 2, *leaves)
    return layout


@_in_float64
def fit_symmetric_pca(
    stats: SymmetricMoments,
    layout: Layout,
    n_components: int,
    *,
    whiten: bool = False,
    key: jax.Array | None = None,
    randomized_above: int | None = None,
) -> tuple[PCA, Blocks]:
    """The PCA of the rows acted on by every group element, with its irrep blocks.

    Equal (up to the basis inside degenerate blocks) to the PCA of the explicitly augmented rows
    {z acted on by h : z a row, h in G}: its mean is the symmetric mean, its covariance (ddof=1 over
    N |G| rows) the average of the covariance under the group. Components are eigenvectors of each
    isotypic component's form, n features per eigenvector of an n-dimensional irrep; at most
    ``n_components`` features, in whole blocks of largest variance. Signs and phases: ``_canonical``.
    Whitening scales a block as a whole (every feature of a block has its variance), so the group
    still acts by the irrep's orthogonal matrices. With ``key``, real blocks wider than
    ``randomized_above`` use subspace iteration. Returns float32 (PCA, Blocks).
    """
    layout = _check_symmetric("fit_symmetric_pca", layout, stats.trivial.count, stats.trivial.outer, *stats.second)
    table, _, mult = _irrep_tables(layout)
    k = _n_components("fit_symmetric_pca", n_components, layout.dim, "the feature dimension")
    rng = None if key is None else np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    forms, trivial_mean, n = _forms(stats, layout)
    order = _group(layout.group).order
    norm = order / (n * order - 1)  # feature variance = norm * eigenvalue of the form
    dims = [rho.dim for rho in table]
    candidates, vectors = [], {}
    for r, (rho, form) in enumerate(zip(table, forms)):
        if mult[r] == 0:
            continue
        wide = rng is not None and randomized_above is not None and mult[r] > randomized_above
        w, v = _eigh_desc(form, min(mult[r], -(-k // rho.dim)), rng if wide else None)
        vectors[r] = np.stack([_canonical(v[:, i]) for i in range(v.shape[1])], axis=1)
        candidates += [(max(float(w[i]), 0.0) * norm, r, i) for i in range(w.shape[0])]
    total = norm * sum(rho.dim * float(np.trace(f).real) for rho, f, m in zip(table, forms, mult) if m)
    kept = _select(candidates, dims, k)
    components, irrep, coord, variance = _assemble(layout, kept, vectors)
    resolved = variance > np.finfo(np.float32).eps * variance.max()  # below: noise of float32 rows
    scale = np.where(resolved, 1 / np.sqrt(np.where(resolved, variance, 1)), 0) if whiten else np.ones_like(variance)
    isotypic = np.asarray([norm * rho.dim * float(np.trace(f).real) / total if m else 0.0 for rho, f, m in zip(table, forms, mult)])
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    pca = PCA(f32(_mean_row(layout, trivial_mean)), f32(components), f32(variance), f32(variance / total), f32(scale))
    return pca, Blocks(jnp.asarray(irrep), jnp.asarray(coord), f32(isotypic))


def _inverse_sqrt_host(a: np.ndarray) -> np.ndarray:
    """W with W^H a W = I for a Hermitian PSD a, eigenvalues floored at float64 eigh's resolution."""
    e, u = _eigh(a)
    floor = np.finfo(np.float64).eps * max(np.max(np.abs(e)), np.finfo(np.float64).tiny)
    return u / np.sqrt(np.maximum(e, 0) + floor)[None, :]


@_in_float64
def fit_symmetric_lda(
    stats: SymmetricScatter, layout: Layout, n_components: int, *, shrinkage: float | None = None
) -> tuple[LDA, Blocks]:
    """The LDA of the rows acted on by every group element, each (class, element) pair its own class.

    Equal (up to the basis inside degenerate blocks) to scikit-learn's eigen-solver LDA of the
    augmented rows {z acted on by h} labelled (c, h): the between-class and within-class scatter
    are the group averages of the data's (around the symmetric mean), shrunk alike. For an
    invariant layout this is the plain LDA. The generalized eigen-problem is solved per isotypic
    component; at most ``n_components`` features in whole blocks of largest discriminant ratio,
    each feature with unit within-class variance. Returns float32 (LDA, Blocks).
    """
    m = stats.moments
    layout = _check_symmetric("fit_symmetric_lda", layout, m.trivial.count, m.trivial.outer, stats.class_total, *m.second)
    table, _, mult = _irrep_tables(layout)
    k = _n_components("fit_symmetric_lda", n_components, layout.dim, "the feature dimension")
    shrink = _shrinkage("fit_symmetric_lda", shrinkage)
    forms, trivial_mean, n = _forms(m, layout)
    counts, totals = _host(stats.class_count), _host(stats.class_total)
    priors = counts / n
    present = counts > 0
    means = np.where(present[:, None], totals / np.where(present, counts, 1)[:, None], 0)
    shift = _host(m.trivial.total) / n
    between, start = [], 0
    for r, rho in enumerate(table):
        if mult[r] == 0:
            between.append(np.zeros((0, 0)))
            continue
        nu = means[:, start : start + rho.dim * mult[r]].reshape(-1, rho.dim, mult[r])
        start += rho.dim * mult[r]
        if r == 0:
            nu = np.where(present[:, None, None], nu - shift[None, None, : mult[0]], 0)
        if rho.kind == "complex":
            c = nu[:, 0] + 1j * nu[:, 1]
            between.append(np.einsum("c,cm,cl->ml", priors, c, c.conj()) / 2)
        else:
            between.append(np.einsum("c,cjm,cjl->ml", priors, nu, nu) / rho.dim)
    within = [f / n - b for f, b in zip(forms, between)]
    trace = lambda mats: sum(rho.dim * float(np.trace(a).real) for rho, a, mm in zip(table, mats, mult) if mm)  # noqa: E731
    t_within, t_between = trace(within), trace(between)
    candidates, vectors = [], {}
    for r, rho in enumerate(table):
        if mult[r] == 0:
            continue
        eye = np.eye(mult[r])
        w_r = (1 - shrink) * within[r] + shrink * t_within / layout.dim * eye
        b_r = (1 - shrink) * between[r] + shrink * t_between / layout.dim * eye
        wh = _inverse_sqrt_host(w_r)
        lam, q = _eigh_desc(wh.conj().T @ b_r @ wh, mult[r])
        vecs = wh @ q
        vectors[r] = np.stack([_canonical(vecs[:, i]) for i in range(vecs.shape[1])], axis=1)
        candidates += [(max(float(lam[i]), 0.0), r, i) for i in range(lam.shape[0])]
    dims = [rho.dim for rho in table]
    total = sum(c[0] * dims[c[1]] for c in candidates)
    kept = _select(candidates, dims, k)
    components, irrep, coord, ratio = _assemble(layout, kept, vectors)
    iso = np.zeros(len(table))
    for value, r, _ in candidates:
        iso[r] += value * dims[r]
    f32 = lambda a: jnp.asarray(a, jnp.float32)  # noqa: E731
    total = total if total > 0 else 1.0
    lda = LDA(f32(_mean_row(layout, trivial_mean)), f32(components), f32(ratio / total))
    return lda, Blocks(jnp.asarray(irrep), jnp.asarray(coord), f32(iso / total))
