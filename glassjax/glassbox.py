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
import functools
import json
import os
import time
from typing import Callable, Iterator, NamedTuple, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from glassjax import classifiers, data, groups, parallel, reduction, streaming
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


def _used_projection(config: GlassBoxConfig, projection: rep.OrbitProjection) -> rep.OrbitProjection:
    """The orbit projection cut to the coordinates the representation reads (the rest would be computed and dropped)."""
    width = max(
        config.pool_dim if config.representation in ("invariant", "both") else 0,
        config.orbit_dim if config.representation in ("equivariant", "both") else 0,
    )
    return rep.OrbitProjection(projection.mean, projection.components[:width])


def represent(params: GlassBoxParams, x: jax.Array) -> jax.Array:
    """Layer 1, the representation: x (N, H, W, C) -> (N, D_rep).

    invariant: pooled over the group; equivariant: the orbit projection flattened (|G| * orbit_dim);
    both: the two side by side.
    """
    z = rep.project_orbit(_used_projection(params.config, params.projection), responses(params, x))
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


def _pad_rows(chunk: np.ndarray, size: int) -> np.ndarray:
    """chunk (n, ...) padded to ``size`` rows by repeating its last row."""
    return chunk if chunk.shape[0] == size else np.concatenate([chunk, np.repeat(chunk[-1:], size - chunk.shape[0], axis=0)])


def map_batches(
    fn: Callable[[jax.Array], jax.Array], x: np.ndarray, batch_size: int, *, desc: str = "", mesh: Mesh | None = None
) -> np.ndarray:
    """Apply a jitted ``fn`` (batch (B, ...) -> (B, ...)) to x (N, ...) in fixed-size batches (one compile), concatenated.

    Without a mesh each batch goes to the default device as is. With one, each batch is padded to
    a multiple of the mesh's devices and sharded by rows (``parallel.shard_batch``); ``fn`` gets
    the global batch and this host's rows come back. Batch i + 1 is dispatched before batch i
    is fetched, so the host's copying overlaps the devices' work.
    """
    n = x.shape[0]
    size = min(batch_size, n) if mesh is None else parallel.padded_size(min(batch_size, n), mesh)
    outs, pending = [], []
    for start in progress(range(0, n, size), total=-(-n // size), desc=desc, unit="batch"):
        chunk = x[start : start + size]
        batch = jnp.asarray(_pad_rows(chunk, size)) if mesh is None else parallel.shard_batch(mesh, chunk, size=size)[0]
        pending.append((fn(batch), chunk.shape[0]))
        if len(pending) > 1:
            out, real = pending.pop(0)
            outs.append(parallel.local_rows(out)[:real])
    outs.extend(parallel.local_rows(out)[:real] for out, real in pending)
    return np.concatenate(outs)


class _Stream(NamedTuple):
    """How fit reads its data: ``batches()`` starts a pass of (images, labels) batches of at most ``size`` rows."""

    batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]
    size: int
    total: int
    mesh: Mesh


def _accumulate(update, state, stream: _Stream, params, desc: str):
    """``state = update(state, params, x, y, mask)`` over one pass of sharded batches."""
    for x, y in progress(stream.batches(), total=stream.total, desc=desc, unit="batch"):
        state = update(state, params, *parallel.shard_batch(stream.mesh, x, y, size=stream.size))
    return state


# The rows each pass accumulates, as functions of (config, grids) and the params fitted so far.
# Module-level and jitted with the config static, so a second fit of the same config and shapes
# reuses the compiled passes.


def _orbit_rows(config: GlassBoxConfig, grids: tuple[int, ...], banks, chunk: jax.Array) -> jax.Array:
    """Pass 2: the response of every orbit element, (B, |G|, D)."""
    return _responses(config, list(zip(banks, grids)), chunk)


def _representation_rows(config: GlassBoxConfig, grids: tuple[int, ...], params, chunk: jax.Array) -> jax.Array:
    """Pass 3: the representation, (B, 1, D_rep)."""
    banks, projection = params
    z = rep.project_orbit(_used_projection(config, projection), _orbit_rows(config, grids, banks, chunk))
    return _represent(config, z)[:, None, :]


def _feature_rows(config: GlassBoxConfig, grids: tuple[int, ...], params, chunk: jax.Array) -> jax.Array:
    """Pass 4: the PCA features, (B, K)."""
    banks, projection, pca = params
    return reduction.project(pca, _representation_rows(config, grids, (banks, projection), chunk)[:, 0])


_ROWS = {"orbit": _orbit_rows, "representation": _representation_rows, "features": _feature_rows}


def _local(config: GlassBoxConfig, grids: tuple[int, ...], mesh: Mesh, rows: str):
    return parallel.per_device(functools.partial(_ROWS[rows], config, grids), mesh)


@functools.partial(jax.jit, static_argnames=("config", "grids", "mesh", "rows"))
def _moments_step(m, params, chunk, labels, mask, *, config, grids, mesh, rows):
    """m plus the (B, R, D) rows of one batch (each device its own), padding masked; XLA sums across devices."""
    out = _local(config, grids, mesh, rows)(params, chunk)
    b, r, d = out.shape
    return reduction.moments_update(m, out.reshape(b * r, d), jnp.repeat(mask, r))


@functools.partial(jax.jit, static_argnames=("config", "grids", "mesh"))
def _scatter_step(stats, params, chunk, labels, mask, *, config, grids, mesh):
    """Ridge/LDA class statistics plus one batch's PCA features."""
    return reduction.scatter_update(stats, _local(config, grids, mesh, "features")(params, chunk), labels, mask)


@functools.partial(jax.jit, static_argnames=("config", "grids", "mesh"))
def _features_step(params, chunk, *, config, grids, mesh):
    return _local(config, grids, mesh, "features")(params, chunk)


# --- fitting ------------------------------------------------------------------------------------

# A batch source's first pass keeps at most this many images per class (a seeded uniform
# reservoir sample) to fit the patch filters from; arrays in memory use every image.
FILTER_SAMPLE_PER_CLASS = 1000


class _Survey(NamedTuple):
    """What the first pass over a batch source learns: image count and shape, and the class data."""

    count: int
    image_shape: tuple[int, int, int]
    sample_x: np.ndarray
    sample_y: np.ndarray
    class_means: np.ndarray


def _survey(source, size: int, key: jax.Array, where: str) -> _Survey:
    """One pass: counts, per-class reservoir samples (FILTER_SAMPLE_PER_CLASS) and per-class mean images."""
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    count, seen, sums, samples = 0, [], [], []
    shape = None
    for x, y in progress(streaming.rebatch(streaming.batches(source, where), size, where), desc="fit: survey", unit="batch"):
        shape = x.shape[1:]
        count += x.shape[0]
        for c in np.unique(y):
            while len(seen) <= c:
                seen.append(0)
                sums.append(np.zeros(shape, np.float64))
                samples.append(np.zeros((0,) + shape, np.float32))
            rows = x[y == c]
            sums[c] += rows.sum(axis=0, dtype=np.float64)
            order = seen[c] + np.arange(rows.shape[0])  # Algorithm R: item k replaces slot j < R, j uniform in 0..k
            keep = order < FILTER_SAMPLE_PER_CLASS
            if keep.any():
                samples[c] = np.concatenate([samples[c], rows[keep]])
            slots = rng.integers(0, order[~keep] + 1)
            chosen = slots < FILTER_SAMPLE_PER_CLASS
            samples[c][slots[chosen]] = rows[~keep][chosen]
            seen[c] += rows.shape[0]
    if shape is None:
        raise ValueError(f"{where}: expected at least one batch of images, got an empty source")
    missing = [c for c, k in enumerate(seen) if k == 0]
    if len(seen) < 2 or missing:
        raise ValueError(f"{where}: expected labels 0..C-1 with C >= 2 classes, each present; got {len(seen)} classes, missing {missing}")
    sample_y = np.concatenate([np.full(s.shape[0], c, np.int32) for c, s in enumerate(samples)])
    means = np.stack([s / k for s, k in zip(sums, seen)]).astype(np.float32)
    return _Survey(count, shape, np.concatenate(samples), sample_y, means)


def _stream(x, y, size_limit: int, mesh: Mesh, n: int, where: str) -> _Stream:
    size = parallel.padded_size(min(size_limit, n), mesh)
    if streaming.is_source(x):
        return _Stream(lambda: streaming.rebatch(streaming.batches(x, where), size, where), size, -(-n // size), mesh)
    return _Stream(lambda: iter(streaming.ArraySource(x, y, size)), size, -(-n // size), mesh)


def fit(
    config: GlassBoxConfig,
    x,
    y=None,
    *,
    key: jax.Array,
    class_names: Sequence[str] | None = None,
    mesh: Mesh | None = None,
) -> GlassBoxParams:
    """Fit the three layers on images x (N, H, W[, C]) and labels y (N,) in 0..C-1, or on a batch source.

    A batch source (``glassjax.streaming``: re-iterable, or a function returning an iterator,
    of (images, labels) batches) comes with y None and is read once per pass, never held in
    memory. Passes: (1) filters from class-wise patches / class means (a source: from a seeded
    sample of FILTER_SAMPLE_PER_CLASS images per class and exact class means); (2) the orbit
    projection from the moments of every orbit element's response; (3) PCA from the moments
    of the representation; (4) the classifier: ridge and LDA from streaming class statistics,
    the iterative kinds on the (N, K) PCA features held in memory.
    Batches are sharded over ``mesh`` (default: every device, ``parallel.make_mesh()``).
    """
    mesh = parallel.make_mesh() if mesh is None else mesh
    k_filters, k_classifier = jax.random.split(key)
    if streaming.is_source(x):
        if y is not None:
            raise TypeError(f"GlassBox.fit: expected y=None with a batch source (its batches carry the labels), got {type(y).__name__}")
        survey = _survey(x, parallel.padded_size(config.batch_size, mesh), k_filters, "GlassBox.fit")
        n, image_shape, num_classes = survey.count, survey.image_shape, survey.class_means.shape[0]
        sample_x, sample_y = survey.sample_x, survey.sample_y
    else:
        x = data.as_images(x, "GlassBox.fit images")
        y = data.as_labels(y, x.shape[0], "GlassBox.fit labels")
        n, image_shape, num_classes = x.shape[0], x.shape[1:], int(y.max()) + 1
        sample_x, sample_y = x, y
    if class_names is None:
        class_names = tuple(str(c) for c in range(num_classes))
    class_names = tuple(class_names)
    if len(class_names) < num_classes:
        raise ValueError(f"GlassBox.fit: expected {num_classes} class names, got {len(class_names)}")
    config = config.resolved(image_shape, n)
    group = groups.get(config.group)
    group.check_image((n,) + tuple(image_shape), "GlassBox.fit")
    stream = _stream(x, y, config.batch_size, mesh, n, "GlassBox.fit")

    patches = prototypes = None
    if config.filters in ("patch", "both"):
        per_class = min(config.filters_per_class, config.patch_size**2 * image_shape[2] - 1)
        patches = patch_filters(sample_x, sample_y, num_classes, size=config.patch_size, per_class=per_class, key=k_filters)
    if config.filters in ("prototype", "both"):
        if streaming.is_source(x):
            # Each class mean is its own one-image class: class_prototypes then only averages over G.
            prototypes = class_prototypes(survey.class_means, np.arange(num_classes), num_classes, group)
        else:
            prototypes = class_prototypes(x, y, num_classes, group)
    banks = parallel.replicate(mesh, tuple(b for b in (patches, prototypes) if b is not None))
    static = dict(config=config, grids=tuple(g for b, g in ((patches, config.grid), (prototypes, 1)) if b is not None), mesh=mesh)
    probe = jnp.zeros((1,) + tuple(image_shape), jnp.float32)

    def moments_pass(rows: str, params, desc: str) -> reduction.Moments:
        dim = jax.eval_shape(functools.partial(_ROWS[rows], config, static["grids"]), params, probe).shape[-1]
        m = parallel.replicate(mesh, reduction.moments_init(dim))
        return _accumulate(functools.partial(_moments_step, rows=rows, **static), m, stream, params, desc)

    moments = moments_pass("orbit", banks, "fit: orbit")
    response_dim = moments.total.shape[0]
    proj_dim = min(max(config.pool_dim, config.orbit_dim), response_dim, n * group.order - 1)
    projection = rep.fit_orbit_projection(moments, proj_dim)
    moments = moments_pass("representation", (banks, projection), "fit: PCA")
    pca = reduction.fit_pca(moments, min(config.components, moments.total.shape[0], n - 1), whiten=config.whiten)

    params = (banks, projection, pca)
    option = {} if config.regularization is None else {_REGULARIZATION_OPTION[config.classifier]: config.regularization}
    if config.classifier in ("ridge", "lda"):
        stats = parallel.replicate(mesh, reduction.scatter_init(pca.components.shape[0], num_classes))
        stats = _accumulate(functools.partial(_scatter_step, **static), stats, stream, params, "fit: classifier")
        fit_stats = classifiers.fit_ridge_stats if config.classifier == "ridge" else classifiers.fit_lda_classifier_stats
        clf = fit_stats(stats, **option)
    else:
        features, labels = [], []
        for xb, yb in progress(stream.batches(), total=stream.total, desc="fit: features", unit="batch"):
            out = _features_step(params, parallel.shard_batch(mesh, xb, size=stream.size)[0], **static)
            features.append(parallel.local_rows(out)[: xb.shape[0]])
            labels.append(yb)
        clf = classifiers.fit_classifier(
            config.classifier, np.concatenate(features), np.concatenate(labels), num_classes=num_classes, key=k_classifier, **option
        )
    return GlassBoxParams(config, tuple(image_shape), class_names, patches, prototypes, projection, pca, clf)


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

    ``devices`` (default: all) is the mesh the batches are sharded over; ``fit`` also takes a
    batch source (``glassjax.streaming``) in place of (x, y).
    """

    def __init__(self, *, seed: int = 0, devices: Sequence[jax.Device] | None = None, **config):
        self.config = GlassBoxConfig(**config).validated()
        self.seed = seed
        self.devices = devices
        self.params_: GlassBoxParams | None = None
        self.fit_seconds_: float | None = None

    def fit(self, x, y=None, *, class_names: Sequence[str] | None = None) -> "GlassBox":
        start = time.perf_counter()
        mesh = parallel.make_mesh(self.devices)
        params = fit(self.config, x, y, key=jax.random.PRNGKey(self.seed), class_names=class_names, mesh=mesh)
        self._set(params)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def _set(self, params: GlassBoxParams) -> None:
        self.mesh_ = parallel.make_mesh(self.devices)
        self.params_ = parallel.replicate(self.mesh_, params)
        self._jitted = {
            name: jax.jit(parallel.per_device(fn, self.mesh_))
            for name, fn in (("represent", represent), ("transform", transform), ("apply", apply))
        }

    def _run(self, name: str, x) -> np.ndarray:
        if self.params_ is None:
            raise ValueError(f"GlassBox.{name}: the model is not fitted; call fit(x, y) or GlassBox.load(path) first")
        x = data.as_images(x, f"GlassBox.{name} images")
        if x.shape[1:] != self.params_.image_shape:
            raise ValueError(f"GlassBox.{name}: expected images of shape (N, {', '.join(map(str, self.params_.image_shape))}), got {x.shape}")
        fn = self._jitted[name]
        return map_batches(lambda chunk: fn(self.params_, chunk), x, self.config.batch_size, desc=name, mesh=self.mesh_)

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
        model.config, model.seed, model.devices, model.fit_seconds_ = params.config, 0, None, None
        model._set(params)
        return model
