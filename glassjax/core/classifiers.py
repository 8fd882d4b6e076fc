"""Classifiers on (N, D) features with int labels in 0..C-1; binary is C = 2, nothing special.

Analytic, from streaming ``ScatterStats`` (see ``glassjax.core.reduction``): ridge regression to
one-hot targets and LDA. Every ridge solve in glassjax (these classifiers, and ``ridge_predict``
for any targets, which the metrics use) is one Cholesky solve, ``_penalised_solve``.
Iterative, trained with optax under ``jax.jit``: multinomial logistic
regression and a one-vs-rest squared-hinge linear SVM (full-batch L-BFGS, convex, started at
zero), and a one-hidden-layer ReLU MLP (Adam on seeded minibatches, ``lax.scan`` over steps).
The iterative kinds standardise the features and keep the standardisation in their params.

Each fitted model is a NamedTuple of arrays whose type names its kind. Save and load::

    np.savez(path, **classifier_to_arrays(params))
    with np.load(path) as f:
        params = classifier_from_arrays(dict(f))   # bit-exact
"""
from __future__ import annotations

from typing import Any, NamedTuple, Union

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

from glassjax.core import arrays
from glassjax.core.reduction import (
    ScatterStats,
    _check_stats,
    _class_stats,
    _dot,
    _features,
    _labels,
    _mean_and_scatter,
    _sample_weight,
    _center_of,
    _scatter_of,
    _shrinkage,
    _whitener,
)

__all__ = [
    "RidgeParams",
    "LDAParams",
    "LogisticParams",
    "SVMParams",
    "MLPParams",
    "ClassifierParams",
    "KINDS",
    "fit_ridge",
    "fit_ridge_stats",
    "ridge_predict",
    "fit_lda_classifier",
    "fit_lda_classifier_stats",
    "fit_logistic",
    "fit_svm",
    "fit_mlp",
    "fit_classifier",
    "predict_scores",
    "predict",
    "classifier_kind",
    "classifier_to_arrays",
    "classifier_from_arrays",
]


class RidgeParams(NamedTuple):
    """Ridge regression to one-hot targets. scores = x @ weights + bias; weights (D, C), bias (C,)."""

    weights: jax.Array
    bias: jax.Array


class LDAParams(NamedTuple):
    """LDA classifier (shared covariance). scores = (x - mean) @ weights + bias;
    mean (D,), weights (D, C), bias (C,)."""

    mean: jax.Array
    weights: jax.Array
    bias: jax.Array


class LogisticParams(NamedTuple):
    """Multinomial logistic regression. scores = ((x - loc) * inv_scale) @ weights + bias;
    loc, inv_scale (D,), weights (D, C), bias (C,)."""

    loc: jax.Array
    inv_scale: jax.Array
    weights: jax.Array
    bias: jax.Array


class SVMParams(NamedTuple):
    """Linear SVM, one-vs-rest squared hinge; fields and scores as LogisticParams."""

    loc: jax.Array
    inv_scale: jax.Array
    weights: jax.Array
    bias: jax.Array


class MLPParams(NamedTuple):
    """One-hidden-layer ReLU MLP on standardised x: loc, inv_scale (D,), hidden_weights (D, H),
    hidden_bias (H,), weights (H, C), bias (C,)."""

    loc: jax.Array
    inv_scale: jax.Array
    hidden_weights: jax.Array
    hidden_bias: jax.Array
    weights: jax.Array
    bias: jax.Array


ClassifierParams = Union[RidgeParams, LDAParams, LogisticParams, SVMParams, MLPParams]

_TYPES: dict[str, type] = {
    "ridge": RidgeParams,
    "lda": LDAParams,
    "logistic": LogisticParams,
    "svm": SVMParams,
    "mlp": MLPParams,
}
KINDS: tuple[str, ...] = tuple(_TYPES)
_KIND_OF_TYPE = {t: k for k, t in _TYPES.items()}


# ----------------------------------------------------------------------------- checks


def _xy(fn: str, x: Any, y: Any, num_classes: Any) -> tuple[jax.Array, jax.Array, int]:
    x = _features(fn, x, min_rows=1)
    num_classes = arrays.as_int(num_classes, fn, "num_classes", 2)
    return x, _labels(fn, y, x.shape[0], num_classes), num_classes


# ----------------------------------------------------------------------------- analytic


# Smallest mean eigenvalue a relative penalty is scaled by: keeps the system positive definite
# (and a normal float32) when the features are all constant, e.g. dead ReLUs.
_MIN_SCALE = 1e-30


def _penalised_solve(gram: jax.Array, rhs: jax.Array, lam: jax.Array) -> jax.Array:
    """(gram + lam I)^-1 rhs by Cholesky; gram (M, M) symmetric PSD, rhs (M, K)."""
    system = 0.5 * (gram + gram.T) + lam * jnp.eye(gram.shape[0], dtype=gram.dtype)
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(system), rhs)


@jax.jit
def _ridge(s: ScatterStats, alpha: jax.Array) -> RidgeParams:
    m = s.moments
    _, scatter, shift = _mean_and_scatter(m)
    mean = _center_of(m) + shift
    # Centred X^T Y: sum (x - c) y^T minus the shift of the mean, since sum (x - mean) = 0.
    xy = s.class_total.T - jnp.outer(shift, s.class_count)
    weights = _penalised_solve(scatter, xy, alpha)
    return RidgeParams(weights, s.class_count / m.count - _dot(mean, weights))


def ridge_predict(x_fit: jax.Array, y_fit: jax.Array, x_eval: jax.Array, *, alpha: Any, relative: bool = False) -> jax.Array:
    """Ridge regression y ~ x W + b fitted on (x_fit (N, D), y_fit (N, K)), predicted at x_eval (M, D): (M, K).

    Centred, the intercept b not penalised (scikit-learn's Ridge). The penalty is ``alpha``, or
    with ``relative`` alpha times the mean eigenvalue of the centred Gram matrix (trace / D), so
    that it does not depend on the features' scale. The primal form solves a (D, D) system; when
    N < D the dual (kernel) form solves (N, N) instead, with the same solution. Jittable; the
    caller checks the values.
    """
    shapes_fit = x_fit.ndim == y_fit.ndim == x_eval.ndim == 2 and y_fit.shape[0] == x_fit.shape[0]
    if not (shapes_fit and x_eval.shape[1] == x_fit.shape[1]):
        raise ValueError(f"ridge_predict: expected x_fit (N, D), y_fit (N, K), x_eval (M, D), "
                         f"got shapes {x_fit.shape}, {y_fit.shape}, {x_eval.shape}")
    mean_x = jnp.mean(x_fit, axis=0, keepdims=True)
    mean_y = jnp.mean(y_fit, axis=0, keepdims=True)
    a, b = x_fit - mean_x, y_fit - mean_y
    n, d = a.shape
    primal = n >= d
    gram = _dot(a.T, a) if primal else _dot(a, a.T)
    lam = alpha * jnp.maximum(jnp.trace(gram) / d, _MIN_SCALE) if relative else jnp.asarray(alpha, gram.dtype)
    centred = x_eval - mean_x
    if primal:
        return _dot(centred, _penalised_solve(gram, _dot(a.T, b), lam)) + mean_y
    return _dot(_dot(centred, a.T), _penalised_solve(gram, b, lam)) + mean_y


def fit_ridge_stats(stats: ScatterStats, *, alpha: float = 1.0) -> RidgeParams:
    """Ridge regression to one-hot targets, centred, unpenalised intercept (scikit-learn's Ridge),
    from streaming statistics: weights = (X_c^T X_c + alpha I)^-1 X_c^T Y_c by Cholesky."""
    alpha = arrays.as_float(alpha, "fit_ridge_stats", "alpha", positive=True)
    m = stats.moments
    _check_stats("fit_ridge_stats", m.count, 1, m.total, m.outer, stats.class_total)
    return _ridge(stats, jnp.asarray(alpha, m.total.dtype))


def fit_ridge(
    x: Any, y: Any, *, num_classes: int, alpha: float = 1.0, batch_size: int | None = None, sample_weight: Any = None
) -> RidgeParams:
    """Ridge classifier on x (N, D), int labels y (N,); streamed in batches of ``batch_size`` if given.
    ``sample_weight`` (N,) weights each row's squared error (weighted centring, as scikit-learn's Ridge)."""
    stats = _scatter_of("fit_ridge", x, y, num_classes, batch_size, 1, sample_weight)
    return fit_ridge_stats(stats, alpha=alpha)


@jax.jit
def _lda_classifier(s: ScatterStats, shrinkage: jax.Array) -> LDAParams:
    mean, offsets, priors, within = _class_stats(s, shrinkage)
    w = _whitener(within)
    weights = _dot(w, _dot(w.T, offsets.T))  # within^-1 (class mean - mean), (D, C)
    # An absent class gets log(0) = -inf: it is never predicted.
    bias = -0.5 * jnp.sum(offsets.T * weights, axis=0) + jnp.log(priors)
    return LDAParams(mean, weights, bias)


def fit_lda_classifier_stats(stats: ScatterStats, *, shrinkage: float | None = None) -> LDAParams:
    """LDA classifier from streaming statistics: class means, empirical priors, the shared
    within-class covariance (ddof=0, optionally shrunk), as scikit-learn's LinearDiscriminantAnalysis."""
    shrink = _shrinkage("fit_lda_classifier_stats", shrinkage)
    m = stats.moments
    _check_stats("fit_lda_classifier_stats", m.count, 2, m.total, m.outer, stats.class_total)
    return _lda_classifier(stats, jnp.asarray(shrink, m.total.dtype))


def fit_lda_classifier(
    x: Any, y: Any, *, num_classes: int, shrinkage: float | None = None, batch_size: int | None = None,
    sample_weight: Any = None,
) -> LDAParams:
    """LDA classifier on x (N, D), int labels y (N,); ``sample_weight`` (N,) weights the class
    means, priors and covariance (integer weights = repeated rows)."""
    stats = _scatter_of("fit_lda_classifier", x, y, num_classes, batch_size, 2, sample_weight)
    return fit_lda_classifier_stats(stats, shrinkage=shrinkage)


# ----------------------------------------------------------------------------- iterative


def _standardizer(x: jax.Array, w: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """loc (D,) and inv_scale (D,) that give each feature mean 0 and variance 1 (constant ones stay
    put); with row weights w (N,), the weighted mean and variance."""
    if w is None:
        loc = jnp.mean(x, axis=0)
        var = jnp.mean(jnp.square(x - loc[None, :]), axis=0)
    else:
        total = jnp.sum(w)
        loc = _dot(w, x) / total
        var = _dot(w, jnp.square(x - loc[None, :])) / total
    # A constant feature's std is rounding noise of order eps * |loc|; do not blow it up. The square
    # root only of resolved variances: its derivative at 0 is infinite, and 0 * inf is a NaN gradient.
    resolved = var > jnp.square(16 * jnp.finfo(x.dtype).eps * loc)
    return loc, jnp.where(resolved, 1 / jnp.sqrt(jnp.where(resolved, var, 1)), 1)


def _linear(weights: jax.Array, bias: jax.Array, xs: jax.Array) -> jax.Array:
    return _dot(xs, weights) + bias[None, :]


def _row_mean(values: jax.Array, w: jax.Array | None) -> jax.Array:
    """The mean of values (N,), or their w-weighted mean: sum w v / sum w (integer w = repeated rows)."""
    return jnp.mean(values) if w is None else jnp.sum(w * values) / jnp.sum(w)


def _logistic_loss(wb, xs, onehot, l2, w=None):
    z = _linear(*wb, xs)
    nll = jax.nn.logsumexp(z, axis=1) - jnp.sum(onehot * z, axis=1)
    return _row_mean(nll, w) + 0.5 * l2 * jnp.sum(jnp.square(wb[0]))


def _squared_hinge_loss(wb, xs, onehot, l2, w=None):
    signs = 2 * onehot - 1
    violation = jnp.maximum(0, 1 - signs * _linear(*wb, xs))
    return _row_mean(jnp.sum(jnp.square(violation), axis=1), w) + 0.5 * l2 * jnp.sum(jnp.square(wb[0]))


def _lbfgs(loss, init, max_iter, tol):
    """Minimise loss(params) by full-batch L-BFGS until |grad| < tol or max_iter steps."""
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry):
        params, state = carry
        # optax's line search mixes int32 and int64 counters under float64 (x64), which strict promotion rejects.
        with jax.numpy_dtype_promotion("standard"):
            value, grad = value_and_grad(params, state=state)
            updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=loss)
        return optax.apply_updates(params, updates), state

    def running(carry):
        _, state = carry
        count = otu.tree_get(state, "count")
        return (count == 0) | ((count < max_iter) & (otu.tree_norm(otu.tree_get(state, "grad")) >= tol))

    return jax.lax.while_loop(running, step, (init, opt.init(init)))[0]


@jax.jit(static_argnums=(2, 3))
def _fit_convex(x, y, num_classes, hinge, l2, max_iter, tol, w=None):
    loc, inv_scale = _standardizer(x, w)
    xs = (x - loc[None, :]) * inv_scale[None, :]
    onehot = jax.nn.one_hot(y, num_classes, dtype=x.dtype)
    loss_fn = _squared_hinge_loss if hinge else _logistic_loss
    init = (jnp.zeros((x.shape[1], num_classes), x.dtype), jnp.zeros((num_classes,), x.dtype))
    weights, bias = _lbfgs(lambda wb: loss_fn(wb, xs, onehot, l2, w), init, max_iter, tol)
    return loc, inv_scale, weights, bias


def _convex(fn, x, y, num_classes, hinge, l2, max_iter, tol, sample_weight):
    x, y, num_classes = _xy(fn, x, y, num_classes)
    w = _sample_weight(fn, sample_weight, x.shape[0], x.dtype)
    l2 = arrays.as_float(l2, fn, "l2", positive=False)
    max_iter = arrays.as_int(max_iter, fn, "max_iter", 1)
    tol = arrays.as_float(tol, fn, "tol", positive=False)
    dt = x.dtype
    return _fit_convex(x, y, num_classes, hinge, jnp.asarray(l2, dt), jnp.asarray(max_iter, jnp.int32), jnp.asarray(tol, dt), w)


def fit_logistic(
    x: Any, y: Any, *, num_classes: int, l2: float = 1e-3, max_iter: int = 300, tol: float = 1e-5,
    sample_weight: Any = None,
) -> LogisticParams:
    """Multinomial logistic regression on standardised x (N, D): mean cross-entropy + l2/2 |W|^2
    (l2 = 1 / (C * N) in scikit-learn's terms), by L-BFGS from zero; deterministic, no key.
    ``sample_weight`` (N,): the weighted mean cross-entropy sum w l / sum w and the weighted
    standardisation, so integer weights equal repeated rows and weight 0 removes a row."""
    return LogisticParams(*_convex("fit_logistic", x, y, num_classes, False, l2, max_iter, tol, sample_weight))


def fit_svm(
    x: Any, y: Any, *, num_classes: int, l2: float = 1e-3, max_iter: int = 300, tol: float = 1e-5,
    sample_weight: Any = None,
) -> SVMParams:
    """Linear SVM on standardised x (N, D): one-vs-rest squared hinge, summed over classes and
    averaged over rows, + l2/2 |W|^2, by L-BFGS from zero; deterministic, no key.
    ``sample_weight`` (N,) as in ``fit_logistic``."""
    return SVMParams(*_convex("fit_svm", x, y, num_classes, True, l2, max_iter, tol, sample_weight))


def _mlp_scores(p: MLPParams, x: jax.Array) -> jax.Array:
    xs = (x - p.loc[None, :]) * p.inv_scale[None, :]
    h = jax.nn.relu(_linear(p.hidden_weights, p.hidden_bias, xs))
    return _linear(p.weights, p.bias, h)


@jax.jit(static_argnums=(3, 4, 5, 6))
def _fit_mlp(x, y, key, num_classes, hidden, steps, batch_size, learning_rate, l2, w=None):
    n, d = x.shape
    loc, inv_scale = _standardizer(x, w)
    onehot = jax.nn.one_hot(y, num_classes, dtype=x.dtype)
    k_init, k_order = jax.random.split(key)
    # One random draw for both layers and one for the batch order: each draw adds compile time.
    init = jax.random.normal(k_init, (d * hidden + hidden * num_classes,), x.dtype)
    params = MLPParams(
        loc,
        inv_scale,
        init[: d * hidden].reshape(d, hidden) * np.sqrt(2 / d).astype(x.dtype),  # He init for ReLU
        jnp.zeros((hidden,), x.dtype),
        init[d * hidden :].reshape(hidden, num_classes) * np.sqrt(1 / hidden).astype(x.dtype),
        jnp.zeros((num_classes,), x.dtype),
    )
    # Minibatches walk through one fresh permutation of the rows per epoch.
    epochs = -(-steps * batch_size // n)
    order = jnp.argsort(jax.random.uniform(k_order, (epochs, n)), axis=1)
    order = order.reshape(-1)[: steps * batch_size].reshape(steps, batch_size)
    opt = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))

    def loss(trainable, rows):
        p = params._replace(
            hidden_weights=trainable[0], hidden_bias=trainable[1], weights=trainable[2], bias=trainable[3]
        )
        z = _mlp_scores(p, x[rows])
        nll = jax.nn.logsumexp(z, axis=1) - jnp.sum(onehot[rows] * z, axis=1)
        # Weighted: sum w l over the batch / (batch size x the mean weight), an unbiased estimate of
        # the weighted mean loss (a batch of zero-weight rows contributes 0, never 0 / 0).
        data_loss = jnp.mean(nll) if w is None else jnp.sum(w[rows] * nll) / (rows.shape[0] * jnp.mean(w))
        return data_loss + 0.5 * l2 * (jnp.sum(jnp.square(trainable[0])) + jnp.sum(jnp.square(trainable[2])))

    def step(carry, rows):
        trainable, state = carry
        grads = jax.grad(loss)(trainable, rows)
        # optax's Adam raises a Python float to an int32 step count, which strict promotion rejects.
        with jax.numpy_dtype_promotion("standard"):
            updates, state = opt.update(grads, state, trainable)
        return (optax.apply_updates(trainable, updates), state), None

    trainable = params[2:]
    trainable = jax.lax.scan(step, (trainable, opt.init(trainable)), order)[0][0]
    return MLPParams(loc, inv_scale, *trainable)


def fit_mlp(
    x: Any,
    y: Any,
    *,
    num_classes: int,
    key: jax.Array,
    hidden: int = 256,
    steps: int = 500,
    batch_size: int = 128,
    learning_rate: float = 3e-3,
    l2: float = 1e-4,
    sample_weight: Any = None,
) -> MLPParams:
    """One-hidden-layer ReLU MLP on standardised x (N, D): Adam with a cosine-decayed learning rate,
    ``steps`` minibatches of ``batch_size`` rows, cross-entropy + l2/2 |weights|^2. Same key, same params.
    ``sample_weight`` (N,): weighted standardisation, and each minibatch's loss is sum w l / (batch
    size x mean w), the weighted mean in expectation; minibatches are drawn uniformly, so integer
    weights equal repeated rows in expectation only, not draw for draw."""
    fn = "fit_mlp"
    x, y, num_classes = _xy(fn, x, y, num_classes)
    w = _sample_weight(fn, sample_weight, x.shape[0], x.dtype)
    hidden = arrays.as_int(hidden, fn, "hidden", 1)
    steps = arrays.as_int(steps, fn, "steps", 1)
    batch_size = min(arrays.as_int(batch_size, fn, "batch_size", 1), x.shape[0])
    learning_rate = arrays.as_float(learning_rate, fn, "learning_rate", positive=True)
    l2 = arrays.as_float(l2, fn, "l2", positive=False)
    if not isinstance(key, jax.Array):
        raise TypeError(f"{fn}: expected a jax.random key, got {type(key).__name__}")
    dt = x.dtype
    return _fit_mlp(
        x, y, key, num_classes, hidden, steps, batch_size, jnp.asarray(learning_rate, dt), jnp.asarray(l2, dt), w
    )


# ----------------------------------------------------------------------------- interface


def fit_classifier(
    kind: str, x: Any, y: Any, *, num_classes: int, key: jax.Array | None = None, sample_weight: Any = None, **options: Any
):
    """Fit a ``kind`` classifier (ridge|lda|logistic|svm|mlp) on x (N, D) and int labels y (N,).

    ``options`` go to the kind's fit function (``fit_ridge``, ``fit_lda_classifier``,
    ``fit_logistic``, ``fit_svm``, ``fit_mlp``). ``key`` seeds the MLP and is required for it;
    the other kinds are deterministic without one. ``sample_weight`` (N,) >= 0, scikit-learn's
    convention: each row's loss term times its weight (integer weights = repeated rows, 0 = removed).
    """
    if not isinstance(kind, str):
        raise TypeError(f"fit_classifier: expected kind as a str, got {type(kind).__name__}")
    if kind not in _TYPES:
        raise ValueError(f"fit_classifier: expected kind in {'|'.join(KINDS)}, got {kind!r}")
    if kind == "mlp":
        if key is None:
            raise TypeError("fit_classifier: expected key= (a jax.random key) for kind 'mlp', got None")
        return fit_mlp(x, y, num_classes=num_classes, key=key, sample_weight=sample_weight, **options)
    fit = {"ridge": fit_ridge, "lda": fit_lda_classifier, "logistic": fit_logistic, "svm": fit_svm}[kind]
    return fit(x, y, num_classes=num_classes, sample_weight=sample_weight, **options)


def classifier_kind(params: Any) -> str:
    """The kind name (ridge|lda|logistic|svm|mlp) of fitted params."""
    kind = _KIND_OF_TYPE.get(type(params))
    if kind is None:
        names = ", ".join(t.__name__ for t in _TYPES.values())
        raise TypeError(f"classifier_kind: expected classifier params ({names}), got {type(params).__name__}")
    return kind


def predict_scores(params: ClassifierParams, x: Any) -> jax.Array:
    """Class scores (N, C) for x (N, D); larger is more likely. Jittable."""
    classifier_kind(params)  # TypeError for anything but fitted params
    # Every kind's first field has one row per feature.
    dim, dtype = params[0].shape[0], params[-1].dtype
    x = _features("predict_scores", x, dim=dim, dtype=dtype)
    return _scores(params, x)


@jax.jit
def _scores(params: ClassifierParams, x: jax.Array) -> jax.Array:
    kind = classifier_kind(params)
    if kind == "ridge":
        return _linear(params.weights, params.bias, x)
    if kind == "lda":
        return _linear(params.weights, params.bias, x - params.mean[None, :])
    if kind == "mlp":
        return _mlp_scores(params, x)
    return _linear(params.weights, params.bias, (x - params.loc[None, :]) * params.inv_scale[None, :])


def predict(params: ClassifierParams, x: Any) -> jax.Array:
    """Predicted labels (N,) int32 for x (N, D). Jittable."""
    return jnp.argmax(predict_scores(params, x), axis=1).astype(jnp.int32)


def classifier_to_arrays(params: ClassifierParams) -> dict[str, np.ndarray]:
    """Params as numpy arrays by field name, plus ``kind`` (a 0-d str array); ready for ``np.savez``."""
    out = {"kind": np.asarray(classifier_kind(params))}
    out.update({name: np.asarray(value) for name, value in params._asdict().items()})
    return out


def classifier_from_arrays(arrays: dict[str, Any]) -> ClassifierParams:
    """Params back from ``classifier_to_arrays``' dict (or an ``np.load`` of it), bit-exact."""
    if "kind" not in arrays:
        raise ValueError(f"classifier_from_arrays: expected a 'kind' entry, got keys {sorted(arrays)}")
    kind = str(np.asarray(arrays["kind"]))
    if kind not in _TYPES:
        raise ValueError(f"classifier_from_arrays: expected kind in {'|'.join(KINDS)}, got {kind!r}")
    cls = _TYPES[kind]
    missing = [f for f in cls._fields if f not in arrays]
    if missing:
        raise ValueError(f"classifier_from_arrays: expected fields {list(cls._fields)} for {kind!r}, missing {missing}")
    return cls(*(jnp.asarray(arrays[f]) for f in cls._fields))
