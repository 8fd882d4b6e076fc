"""The glass-box model: representation layer -> PCA -> classifier, fitted analytically.

Two faces over one core:
  pure     ``params = fit(config, x, y, key=key)``; ``apply(params, x)`` -> class scores,
           jittable; ``params`` is a pytree (an equinox Module whose config is static).
  object   ``GlassBox(group="d4", representation="invariant", ...)`` with fit / transform /
           predict / score / save / load, as in scikit-learn.

Fitting is a bounded number of passes over the training batches (filters, orbit projection,
PCA, classifier), each accumulating sufficient statistics, so no pass needs all the
representations in memory at once.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Callable, Iterable, Iterator, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from glassjax import classifiers, data, groups, reduction
from glassjax import representation as rep
from glassjax.files import atomic_write
from glassjax.filters import FilterBank, class_prototypes, patch_filters
from glassjax.progress import progress

__all__ = ["GlassBoxConfig", "GlassBoxParams", "fit", "apply", "transform", "represent", "responses", "predict", "GlassBox", "map_batches"]

REPRESENTATIONS = ("invariant", "equivariant", "both")
FILTER_KINDS = ("patch", "prototype", "both")
FORMAT_VERSION = 1
SMALL_TRAINING_SET = 1000  # below this many training images, the defaults favour fewer features
_REGULARIZATION_OPTION = {"ridge": "alpha", "lda": "shrinkage", "logistic": "l2", "svm": "l2", "mlp": "l2"}


@dataclasses.dataclass(frozen=True)
class GlassBoxConfig:
    """Every choice of the three layers. ``None`` means: chosen from the image size at fit time.

    group           group spec: d4, c4, flip, none, rot:N, trans:N
    representation  invariant (pooled over the group), equivariant (the projected orbit), both
    filters         patch (class-wise patch PCA), prototype (G-averaged class means), both
    patch_size      k of the k x k patch filters (5, or 3 for images under 16 pixels)
    filters_per_class  patch filters per class
    grid            spatial pooling grid of the responses (4; 2 for images under 16 pixels
                    or fewer than SMALL_TRAINING_SET training images)
    rho             fixed nonlinearity: relu_pair or abs
    poolings        invariant poolings over the group axis from mean, max, bilinear
                    (all three; mean and max alone for small training sets, where the
                    pool_dim^2 / 2 bilinear features would outnumber the images)
    pool_dim        width d of the orbit projection that is pooled
    orbit_dim       width per group element of the equivariant part
    components      PCA components (layer 2; 200, or 30 for small training sets); capped by the data
    whiten          whiten the PCA output
    classifier      ridge, lda, logistic, svm, mlp (layer 3)
    regularization  the classifier's penalty (ridge alpha, LDA shrinkage, logistic/SVM/MLP l2);
                    None keeps the classifier's default
    batch_size      images per batch in every pass
    """

    group: str = "d4"
    representation: str = "invariant"
    filters: str = "patch"
    patch_size: int | None = None
    filters_per_class: int = 8
    grid: int | None = None
    rho: str = "relu_pair"
    poolings: tuple[str, ...] | None = None
    pool_dim: int = 32
    orbit_dim: int = 128
    components: int | None = None
    whiten: bool = True
    classifier: str = "logistic"
    regularization: float | None = None
    batch_size: int = 256

    def validated(self) -> "GlassBoxConfig":
        """The config with its choices checked (ValueError naming the field otherwise)."""
        groups.get(self.group)
        choices = {"representation": REPRESENTATIONS, "filters": FILTER_KINDS, "rho": rep.RHOS, "classifier": classifiers.KINDS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"GlassBox: expected {name} in {'|'.join(allowed)}, got {getattr(self, name)!r}")
        poolings = None if self.poolings is None else tuple(self.poolings)
        if poolings is not None and (not poolings or any(p not in rep.POOLINGS for p in poolings)):
            raise ValueError(f"GlassBox: expected poolings from {'|'.join(rep.POOLINGS)}, got {self.poolings!r}")
        for name in ("filters_per_class", "pool_dim", "orbit_dim", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GlassBox: expected {name} a positive int, got {value!r}")
        for name in ("patch_size", "grid", "components"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"GlassBox: expected {name} a positive int or None, got {value!r}")
        if self.regularization is not None and not self.regularization > 0:
            raise ValueError(f"GlassBox: expected regularization > 0 or None, got {self.regularization!r}")
        return dataclasses.replace(self, poolings=poolings)

    def resolved(self, image_shape: tuple[int, int, int], n_train: int) -> "GlassBoxConfig":
        """The config with the defaults that depend on the images (H, W, C) and their count filled in."""
        tiny_images = min(image_shape[:2]) < 16
        few_images = n_train < SMALL_TRAINING_SET
        return dataclasses.replace(
            self.validated(),
            patch_size=self.patch_size or (3 if tiny_images else 5),
            grid=self.grid or (2 if tiny_images or few_images else 4),
            poolings=self.poolings or (("mean", "max") if few_images else ("mean", "max", "bilinear")),
            components=self.components or (30 if few_images else 200),
        )


class GlassBoxParams(eqx.Module):
    """A fitted glass-box: a pytree of arrays; config, shapes and class names are static."""

    config: GlassBoxConfig = eqx.field(static=True)
    image_shape: tuple[int, int, int] = eqx.field(static=True)
    class_names: tuple[str, ...] = eqx.field(static=True)
    patches: FilterBank | None
    prototypes: FilterBank | None
    projection: rep.OrbitProjection
    pca: reduction.PCA
    classifier: classifiers.ClassifierParams

    @property
    def group(self) -> groups.Group:
        return groups.get(self.config.group)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# --- the forward pass, layer by layer (all jittable) ------------------------------------------


def _banks(params) -> list[tuple[FilterBank, int]]:
    out = []
    if params.patches is not None:
        out.append((params.patches, params.config.grid))
    if params.prototypes is not None:
        out.append((params.prototypes, 1))  # a full-size filter has a single position
    return out


def _responses(config: GlassBoxConfig, banks: list[tuple[FilterBank, int]], x: jax.Array) -> jax.Array:
    orbit = groups.orbit(config.group, x)
    return jnp.concatenate([rep.respond(bank, orbit, rho=config.rho, grid=grid) for bank, grid in banks], axis=-1)


def responses(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """Equivariant responses E: x (N, H, W, C) -> (N, |G|, D)."""
    return _responses(params.config, _banks(params), x)


def _represent(config: GlassBoxConfig, z: jax.Array) -> jax.Array:
    parts = []
    if config.representation in ("invariant", "both"):
        parts.append(rep.pool_group(z[..., : config.pool_dim], config.poolings))
    if config.representation in ("equivariant", "both"):
        parts.append(z[..., : config.orbit_dim].reshape(z.shape[0], -1))
    return jnp.concatenate(parts, axis=-1)


def represent(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """Layer 1, the representation: x (N, H, W, C) -> (N, D_rep).

    invariant: pooled over the group; equivariant: the orbit projection flattened (|G| * orbit_dim);
    both: the two side by side.
    """
    z = rep.project_orbit(params.projection, responses(params, x))
    return _represent(params.config, z)


def transform(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """Layers 1 and 2: x (N, H, W, C) -> PCA features (N, K)."""
    return reduction.project(params.pca, represent(params, x))


def apply(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """All three layers: x (N, H, W, C) float32 in [0, 1] -> class scores (N, num_classes)."""
    return classifiers.predict_scores(params.classifier, transform(params, x))


def predict(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """Predicted labels (N,) int32."""
    return jnp.argmax(apply(params, x), axis=-1).astype(jnp.int32)


# --- batching ---------------------------------------------------------------------------------


def _padded_batches(x: np.ndarray, batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
    """Yield (batch padded to batch_size by repeating its last row, number of real rows)."""
    for start in range(0, x.shape[0], batch_size):
        chunk = x[start : start + batch_size]
        real = chunk.shape[0]
        if real < batch_size:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch_size - real, axis=0)])
        yield chunk, real


def map_batches(fn: Callable[[jax.Array], jax.Array], x: np.ndarray, batch_size: int, *, desc: str = "") -> np.ndarray:
    """Apply a jitted ``fn`` to x (N, ...) in fixed-size batches (one compile), concatenated."""
    batch_size = min(batch_size, x.shape[0])
    total = -(-x.shape[0] // batch_size)
    outs = [np.asarray(fn(jnp.asarray(chunk)))[:real] for chunk, real in progress(_padded_batches(x, batch_size), total=total, desc=desc, unit="batch")]
    return np.concatenate(outs)


def _accumulate_moments(rows_fn, x: np.ndarray, batch_size: int, dim: int, desc: str) -> reduction.Moments:
    """Streaming moments of rows_fn(batch) -> (B, R, dim) rows over all batches, padding masked."""
    batch_size = min(batch_size, x.shape[0])

    @jax.jit
    def update(m, chunk, real):
        rows = rows_fn(chunk)
        b, r = rows.shape[:2]
        mask = jnp.repeat(jnp.arange(b) < real, r)
        return reduction.moments_update(m, rows.reshape(b * r, dim), mask)

    m = reduction.moments_init(dim)
    total = -(-x.shape[0] // batch_size)
    for chunk, real in progress(_padded_batches(x, batch_size), total=total, desc=desc, unit="batch"):
        m = update(m, jnp.asarray(chunk), real)
    return m


# --- fitting ------------------------------------------------------------------------------------


def fit(
    config: GlassBoxConfig,
    x,
    y,
    *,
    key: jax.Array,
    class_names: Sequence[str] | None = None,
) -> GlassBoxParams:
    """Fit the three layers on images x (N, H, W[, C]) and labels y (N,) in 0..C-1.

    Passes: (1) filters from class-wise patches / class means; (2) the orbit projection from
    the moments of every orbit element's response; (3) PCA from the moments of the
    representation; (4) the classifier on the PCA features.
    """
    x = data.as_images(x, "GlassBox.fit images")
    y = data.as_labels(y, x.shape[0], "GlassBox.fit labels")
    num_classes = int(y.max()) + 1
    if class_names is None:
        class_names = tuple(str(c) for c in range(num_classes))
    class_names = tuple(class_names)
    if len(class_names) < num_classes:
        raise ValueError(f"GlassBox.fit: expected {num_classes} class names, got {len(class_names)}")
    config = config.resolved(x.shape[1:], x.shape[0])
    group = groups.get(config.group)
    group.check_image(x.shape, "GlassBox.fit")
    k_filters, k_classifier = jax.random.split(key)

    patches = prototypes = None
    if config.filters in ("patch", "both"):
        per_class = min(config.filters_per_class, config.patch_size**2 * x.shape[3] - 1)
        patches = patch_filters(x, y, num_classes, size=config.patch_size, per_class=per_class, key=k_filters)
    if config.filters in ("prototype", "both"):
        prototypes = class_prototypes(x, y, num_classes, group)
    banks = [(b, g) for b, g in ((patches, config.grid), (prototypes, 1)) if b is not None]

    response_dim = _responses(config, banks, jnp.asarray(x[:1])).shape[-1]
    moments = _accumulate_moments(lambda c: _responses(config, banks, c), x, config.batch_size, response_dim, "fit: orbit")
    proj_dim = min(max(config.pool_dim, config.orbit_dim), response_dim, x.shape[0] * group.order - 1)
    projection = rep.fit_orbit_projection(moments, proj_dim)

    def represent_batch(chunk):
        return _represent(config, rep.project_orbit(projection, _responses(config, banks, chunk)))[:, None, :]

    rep_dim = represent_batch(jnp.asarray(x[:1])).shape[-1]
    moments = _accumulate_moments(represent_batch, x, config.batch_size, rep_dim, "fit: PCA")
    pca = reduction.fit_pca(moments, min(config.components, rep_dim, x.shape[0] - 1), whiten=config.whiten)

    features = map_batches(jax.jit(lambda c: reduction.project(pca, represent_batch(c)[:, 0])), x, config.batch_size, desc="fit: features")
    options = {} if config.regularization is None else {_REGULARIZATION_OPTION[config.classifier]: config.regularization}
    clf = classifiers.fit_classifier(config.classifier, features, y, num_classes=num_classes, key=k_classifier, **options)
    return GlassBoxParams(config, tuple(x.shape[1:]), class_names, patches, prototypes, projection, pca, clf)


# --- saving -------------------------------------------------------------------------------------

_FIELDS = {"patches": FilterBank, "prototypes": FilterBank, "projection": rep.OrbitProjection, "pca": reduction.PCA}


def save_params(params: GlassBoxParams, path: str | os.PathLike) -> None:
    """Write params to an .npz file atomically; ``load_params`` reads them back bit-exactly."""
    arrays = {}
    for name in _FIELDS:
        part = getattr(params, name)
        if part is not None:
            arrays.update({f"{name}.{k}": np.asarray(v) for k, v in part._asdict().items()})
    arrays.update({f"classifier.{k}": v for k, v in classifiers.classifier_to_arrays(params.classifier).items()})
    meta = {
        "format": "glassjax.GlassBox",
        "version": FORMAT_VERSION,
        "config": dataclasses.asdict(params.config),
        "image_shape": list(params.image_shape),
        "class_names": list(params.class_names),
    }
    arrays["meta"] = np.asarray(json.dumps(meta))
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


def load_params(path: str | os.PathLike) -> GlassBoxParams:
    """Read params written by ``save_params``."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in stored.files}
    except (OSError, ValueError, EOFError) as err:
        if not os.path.exists(path):
            raise FileNotFoundError(f"no model file at {path}") from None
        raise ValueError(f"{path} is not a glassjax model file ({type(err).__name__}: {err})") from None
    if "meta" not in arrays:
        raise ValueError(f"{path} is not a glassjax model file (no 'meta' entry)")
    meta = json.loads(str(arrays.pop("meta")))
    if meta.get("format") != "glassjax.GlassBox" or meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: expected a glassjax.GlassBox model of version {FORMAT_VERSION}, got {meta.get('format')} {meta.get('version')}")
    config_fields = dict(meta["config"], poolings=tuple(meta["config"]["poolings"]))
    parts = {}
    for name, kind in _FIELDS.items():
        fields = {k.split(".", 1)[1]: jnp.asarray(v) for k, v in arrays.items() if k.startswith(name + ".")}
        parts[name] = kind(**fields) if fields else None
    clf = classifiers.classifier_from_arrays({k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("classifier.")})
    return GlassBoxParams(
        GlassBoxConfig(**config_fields), tuple(meta["image_shape"]), tuple(meta["class_names"]),
        parts["patches"], parts["prototypes"], parts["projection"], parts["pca"], clf,
    )


# --- the estimator ---------------------------------------------------------------------------------


class GlassBox:
    """scikit-learn-style estimator over ``fit`` / ``apply``.

    >>> model = GlassBox(group="d4", representation="invariant").fit(x_train, y_train)
    >>> model.score(x_test, y_test)
    """

    def __init__(self, *, seed: int = 0, **config):
        self.config = GlassBoxConfig(**config).validated()
        self.seed = seed
        self.params_: GlassBoxParams | None = None
        self.fit_seconds_: float | None = None

    def fit(self, x, y, *, class_names: Sequence[str] | None = None) -> "GlassBox":
        start = time.perf_counter()
        params = fit(self.config, x, y, key=jax.random.PRNGKey(self.seed), class_names=class_names)
        self._set(params)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _set(self, params: GlassBoxParams) -> None:
        self.params_ = params
        self._jitted = {name: jax.jit(fn) for name, fn in (("represent", represent), ("transform", transform), ("apply", apply))}

    def _run(self, name: str, x) -> np.ndarray:
        if self.params_ is None:
            raise ValueError(f"GlassBox.{name}: the model is not fitted; call fit(x, y) or GlassBox.load(path) first")
        x = data.as_images(x, f"GlassBox.{name} images")
        if x.shape[1:] != self.params_.image_shape:
            raise ValueError(f"GlassBox.{name}: expected images of shape (N, {', '.join(map(str, self.params_.image_shape))}), got {x.shape}")
        fn = self._jitted[name]
        return map_batches(lambda chunk: fn(self.params_, chunk), x, self.config.batch_size, desc=name)

    def represent(self, x) -> np.ndarray:
        """Layer 1 output (N, D_rep)."""
        return self._run("represent", x)

    def transform(self, x) -> np.ndarray:
        """Layers 1-2 output (N, K)."""
        return self._run("transform", x)

    def decision_function(self, x) -> np.ndarray:
        """Class scores (N, C)."""
        return self._run("apply", x)

    def predict(self, x) -> np.ndarray:
        """Labels (N,) int32."""
        return np.argmax(self.decision_function(x), axis=1).astype(np.int32)

    def score(self, x, y) -> float:
        """Accuracy on (x, y)."""
        y = data.as_labels(y, np.shape(x)[0], "GlassBox.score labels", min_classes=1)
        return float(np.mean(self.predict(x) == y))

    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to ``path`` (.npz), atomically."""
        if self.params_ is None:
            raise ValueError("GlassBox.save: the model is not fitted")
        save_params(self.params_, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "GlassBox":
        """A fitted GlassBox read from ``path``."""
        params = load_params(path)
        model = cls.__new__(cls)
        model.config, model.seed, model.fit_seconds_ = params.config, 0, None
        model._set(params)
        return model
