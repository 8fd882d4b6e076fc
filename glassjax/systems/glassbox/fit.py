"""Fitting the glass-box: a bounded number of streaming passes over the training batches.

Passes: (1) filters from class-wise patches / class means; (2) the orbit projection from the
moments of every orbit element's response; (3) the symmetry-adapted PCA of the representation
(``reduction.fit_symmetric_pca``: the PCA of every image's representation moved by every group
element, cut in whole irrep blocks, so the group acts on the features by ``feature_action``), or
its LDA; (4) the classifier. Each pass accumulates sufficient statistics, so no pass needs all
the representations in memory at once. The statistics of passes 2 and 3 are float64 sums of the
float32 rows (``reduction.float64()``): the same model whatever the batch size and the number of
devices. Above RANDOMIZED_PCA_ABOVE features a PCA (an irrep block) is randomized rather than an
O(D^3) eigh.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
from typing import Callable, Iterator, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from glassjax import data
from glassjax.core import arrays, classifiers, distributed, groups, parallel, reduction
from glassjax.core.progress import progress
from glassjax.data import sharding
from glassjax.data import sources as streaming
from glassjax.systems.glassbox import representation as rep
from glassjax.systems.glassbox.config import REGULARIZATION_OPTION, GlassBoxConfig
from glassjax.systems.glassbox.filters import class_prototypes, patch_filters
from glassjax.systems.glassbox.model import GlassBoxParams, _represent, _responses, _used_projection

__all__ = ["fit", "SAMPLE_PER_CLASS", "RANDOMIZED_PCA_ABOVE", "LDA_SHRINKAGE"]

# reduction="lda" shrinks the within-class covariance this far towards tr/D * I (scikit-learn's
# float shrinkage): the representation can have as many features as there are training images,
# where the plain covariance is singular. On digits (1257 images) with representation="both"
# (1616 features), 0 gives 86% test accuracy and 0.001 to 0.3 give 99%.
LDA_SHRINKAGE = 0.01

# Wider features than this get randomized PCAs: eigh of a (D, D) covariance costs O(D^3) and
# takes minutes on a CPU from D ~ 4000, where subspace iteration takes seconds.
RANDOMIZED_PCA_ABOVE = 4096


class _Stream(NamedTuple):
    """How fit reads its data: ``batches()`` starts a pass of (images, labels, weights) batches of at most ``size`` rows."""

    batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]]
    size: int
    total: int
    mesh: Mesh


def _accumulate(state, stream: _Stream, params, static: dict, desc: str, *, rows: str, update, layout=None, wide: bool = True):
    """``state = update(state, rows of the batch, labels, mask, layout)`` over one pass of sharded batches.

    ``wide``: the pass runs under ``reduction.float64()``, so float64 statistics sum the float32
    rows (computed there exactly as ``transform`` computes them) the same whatever the batch size
    and device count.
    """
    for x, y, w in progress(stream.batches(), total=stream.total, desc=desc, unit="batch"):
        chunk, labels, weights, mask = parallel.shard_batch(stream.mesh, x, y, w, size=stream.size)
        with reduction.float64() if wide else contextlib.nullcontext():
            state = _stats_step(state, params, chunk, labels, weights * mask, rows=rows, update=update, layout=layout, **static)
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
    """Pass 4: the layer-2 (PCA or LDA) features, (B, K)."""
    banks, projection, reducer = params
    return reduction.project(reducer, _representation_rows(config, grids, (banks, projection), chunk)[:, 0])


_ROWS = {"orbit": _orbit_rows, "representation": _representation_rows, "features": _feature_rows}


def _local(config: GlassBoxConfig, grids: tuple[int, ...], mesh: Mesh, rows: str):
    return parallel.per_device(functools.partial(_ROWS[rows], config, grids), mesh)


# What each pass adds to its statistics: update(state, rows (B, R, D), labels (B,), weights (B,), layout);
# padding rows have weight 0.


def _moments_update(m, rows, labels, mask, layout):
    """Moments plus the rows, R per image, padding masked."""
    b, r, d = rows.shape
    return reduction.moments_update(m, rows.reshape(b * r, d), jnp.repeat(mask, r))


def _symmetric_update(s, rows, labels, mask, layout):
    """Symmetric moments (PCA) plus the (B, 1, D) representation rows."""
    return reduction.symmetric_moments_update(s, layout, rows[:, 0], mask)


def _symmetric_scatter_update(s, rows, labels, mask, layout):
    """Symmetric class statistics (LDA) plus the (B, 1, D) representation rows."""
    return reduction.symmetric_scatter_update(s, layout, rows[:, 0], labels, mask)


def _scatter_update(stats, rows, labels, mask, layout):
    """Class statistics (the ridge and LDA classifiers) plus one row per image."""
    return reduction.scatter_update(stats, rows.reshape(rows.shape[0], -1), labels, mask)


@functools.partial(jax.jit, static_argnames=("config", "grids", "mesh", "rows", "update", "layout"))
def _stats_step(state, params, chunk, labels, mask, *, config, grids, mesh, rows, update, layout):
    """``update`` with one batch's rows (each device its own); XLA sums the statistics across devices."""
    return update(state, _local(config, grids, mesh, rows)(params, chunk), labels, mask, layout)


@functools.partial(jax.jit, static_argnames=("config", "grids", "mesh", "rows"))
def _rows_step(params, chunk, *, config, grids, mesh, rows="features"):
    """One batch's rows (B, ...) as ``rows`` names them, each device its own, float32."""
    return _local(config, grids, mesh, rows)(params, chunk)


def _host_moments_pass(stream: _Stream, params, static: dict, rows: str, dim: int, desc: str) -> reduction.Moments:
    """The float64 moments of every image's R rows (B, R, D), summed on the host (CPU backends:
    ``reduction.HostMoments``), then across processes."""
    acc = reduction.HostMoments(dim)
    for x, _, w in progress(stream.batches(), total=stream.total, desc=desc, unit="batch"):
        out = parallel.local_rows(_rows_step(params, parallel.shard_batch(stream.mesh, x, size=stream.size)[0], rows=rows, **static))
        acc.add(out[: x.shape[0]].reshape(-1, dim), np.repeat(w, out.shape[1]))
    return _sum_over_processes(acc.moments())


def _sum_over_processes(m: reduction.Moments) -> reduction.Moments:
    """Host moments of this process's rows merged with every other process's, in process order."""
    if jax.process_count() == 1:
        return m
    # Each process's c is its first batch's mean: bring all to process 0's before summing.
    # distributed.gather moves the bytes: float64 arrives float64 whatever jax_enable_x64 says.
    stacked = [distributed.gather(np.asarray(leaf, np.float64)) for leaf in m]
    with reduction.float64():
        parts = [reduction.Moments(*(leaf[p] for leaf in stacked)) for p in range(jax.process_count())]
        total = parts[0]
        for part in parts[1:]:
            total = reduction.moments_merge(total, part)
        return jax.tree.map(np.asarray, total)


# --- fitting ------------------------------------------------------------------------------------


def _check_class_weights(weights: np.ndarray, labels: np.ndarray, num_classes: int) -> None:
    """Every class keeps some weight: a class of total weight 0 would be fitted from nothing."""
    totals = np.bincount(np.asarray(labels), weights=np.asarray(weights, np.float64), minlength=num_classes)
    empty = np.flatnonzero(totals <= 0).tolist()
    if empty:
        raise ValueError(f"GlassBox.fit: expected every class to have some sample_weight > 0, classes {empty} have total weight 0; "
                         "drop those classes from the data instead")


def _layout(config: GlassBoxConfig, group: groups.Group, dim: int, proj_dim: int) -> reduction.Layout:
    """Where the group acts on the representation (``model._represent``): the pooled invariant
    features first, then the orbit projection's group axis, |G| blocks of orbit_dim channels."""
    channels = min(config.orbit_dim, proj_dim) if config.representation in ("equivariant", "both") else 0
    return reduction.Layout(group.name, dim - group.order * channels, channels)


# The unsupervised layers (orbit projection, PCA or LDA) are fitted from at most this many images
# per class: a seeded uniform sample, weighted so its sums estimate the whole set's (every image
# when no class has more); the classifier sees every image. A batch source's survey keeps this
# sample (``_lowest``: the same for any number of processes) and fits its patch filters from it
# too; arrays in memory fit the filters from every image.
SAMPLE_PER_CLASS = 1000


class _Survey(NamedTuple):
    """What the first pass over a batch source learns: image count and shape, and the class data."""

    count: int
    image_shape: tuple[int, int, int]
    sample_x: np.ndarray
    sample_y: np.ndarray
    sample_w: np.ndarray  # (M,) class count / class sample size: the sample's sums estimate the whole set's
    class_means: np.ndarray
    class_sums: np.ndarray  # (C, H, W, C') float64
    class_counts: np.ndarray  # (C,)


def _priorities(x: np.ndarray, y: np.ndarray, key: jax.Array) -> np.ndarray:
    """(B,) uint64 seeded pseudo-random priorities of the rows of x (B, ...) float32 with labels y
    (B,): a keyed BLAKE2b hash of each row's bytes and label, so a row's priority depends on the
    row and the key only, never on the batch or process that reads it. Equal rows with equal
    labels tie."""
    rows = np.ascontiguousarray(x, np.float32).reshape(x.shape[0], -1)
    secret = np.asarray(jax.random.key_data(key), np.uint32).tobytes()[:64]
    return np.fromiter((int.from_bytes(hashlib.blake2b(rows[i].data, digest_size=8, key=secret,
                                                       salt=int(y[i]).to_bytes(16, "little", signed=True)).digest(), "little")
                        for i in range(rows.shape[0])), np.uint64, rows.shape[0])


class _ClassSample:
    """One class's bottom-k sample, updated in place: rows (m, ...), their priorities (m,) and
    stream positions (m,), m <= k. A row enters when it is among the k lowest (priority, position)
    pairs seen; the row it displaces leaves its slot to it. Which rows are kept therefore does not
    depend on how the rows were batched, and (with each process reading a contiguous block, in
    process order) not on how they were split over processes either."""

    def __init__(self, k: int):
        self.k, self.rows, self.prio, self.order = k, None, np.zeros((0,), np.uint64), np.zeros((0,), np.int64)

    def offer(self, rows: np.ndarray, prio: np.ndarray, order: np.ndarray) -> None:
        m = self.prio.shape[0]
        if m == self.k:
            below = prio < self.prio.max()
            rows, prio, order = rows[below], prio[below], order[below]
        if not prio.size:
            return
        winners = np.lexsort((np.concatenate([self.order, order]), np.concatenate([self.prio, prio])))[: self.k]
        stay = np.zeros(m, bool)
        stay[winners[winners < m]] = True
        new = winners[winners >= m] - m
        slots = np.flatnonzero(~stay)  # displaced rows: no more of them than new winners
        if self.rows is None:
            self.rows = rows[:0]
        self.rows[slots], self.prio[slots], self.order[slots] = rows[new[: slots.size]], prio[new[: slots.size]], order[new[: slots.size]]
        rest = new[slots.size :]
        self.rows = np.concatenate([self.rows, rows[rest]])
        self.prio, self.order = np.concatenate([self.prio, prio[rest]]), np.concatenate([self.order, order[rest]])


def _offer(samples: dict, x: np.ndarray, y: np.ndarray, prio: np.ndarray, order: np.ndarray, per_class: int) -> None:
    """Offer the rows x (B, ...), y (B,) with their priorities and stream positions (B,) to the
    class samples {class: _ClassSample}, making a class's sample when its first row comes."""
    for c in np.unique(y):
        rows = y == c
        samples.setdefault(int(c), _ClassSample(per_class)).offer(x[rows], prio[rows], order[rows])


def _drawn(samples: dict) -> tuple[np.ndarray, np.ndarray]:
    """The class samples' rows (M, ...) and labels (M,) together, in stream order."""
    classes = sorted(samples)
    order = np.argsort(np.concatenate([samples[c].order for c in classes]))
    x = np.concatenate([samples[c].rows for c in classes])[order]
    y = np.concatenate([np.full(samples[c].prio.shape[0], c, np.int32) for c in classes])[order]
    return x, y


def _lowest(x: np.ndarray, y: np.ndarray, key: jax.Array, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of x (M, ...), y (M,) of the ``per_class`` lowest priorities of each class, in their
    order in x: what ``_survey`` keeps when it reads these rows in this order."""
    samples: dict = {}
    _offer(samples, x, y, _priorities(x, y, key), np.arange(x.shape[0]), per_class)
    return _drawn(samples)


def _survey(source, size: int, key: jax.Array, where: str) -> _Survey:
    """One pass: counts, per-class mean images and a per-class sample of SAMPLE_PER_CLASS images:
    the rows of lowest ``_priorities`` (bottom-k sampling), in stream order, which, unlike a
    reservoir, is the same sample whether one process reads the source or several read their shards."""
    count, seen, sums, samples = 0, [], [], {}
    shape = None
    for x, y in progress(streaming.rebatch(streaming.batches(source, where), size, where), desc="fit: survey", unit="batch"):
        x, y = np.ascontiguousarray(x, np.float32), np.asarray(y, np.int32)
        shape = x.shape[1:]
        _offer(samples, x, y, _priorities(x, y, key), count + np.arange(x.shape[0]), SAMPLE_PER_CLASS)
        count += x.shape[0]
        for c in np.unique(y):
            while len(seen) <= c:
                seen.append(0)
                sums.append(np.zeros(shape, np.float64))
            rows = y == c
            sums[c] += x[rows].sum(axis=0, dtype=np.float64)
            seen[c] += int(rows.sum())
    if shape is None:
        raise ValueError(f"{where}: expected at least one batch of images, got an empty source")
    sample_x, sample_y = _drawn(samples)
    if jax.process_count() > 1:  # every process's survey merged; the classes checked on the whole
        return _merge_surveys(count, shape, seen, sums, sample_x, sample_y, key, where)
    missing = [c for c, k in enumerate(seen) if k == 0]
    if len(seen) < 2 or missing:
        raise ValueError(f"{where}: expected labels 0..C-1 with C >= 2 classes, each present; got {len(seen)} classes, missing {missing}")
    means = np.stack([s / k for s, k in zip(sums, seen)]).astype(np.float32)
    weights = _to_class_totals(sample_y, np.ones(sample_y.shape[0], np.float32), np.asarray(seen))
    return _Survey(count, shape, sample_x, sample_y, weights, means, np.stack(sums), np.asarray(seen))


def _to_class_totals(sample_y: np.ndarray, sample_w: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """(M,) float32 weights of the sample rows (labels sample_y (M,), weights sample_w (M,)), each
    scaled by its class's total weight in the whole set (totals (C,)) over the class's weight in the
    sample, so the sample's weighted sums estimate the whole set's."""
    kept = np.bincount(sample_y, weights=np.asarray(sample_w, np.float64), minlength=totals.shape[0])
    scale = np.divide(totals, kept, out=np.zeros(totals.shape, np.float64), where=kept > 0)
    return (sample_w * scale[sample_y]).astype(np.float32)


def _merge_surveys(count: int, shape, seen: list, sums: list, sample_x: np.ndarray, sample_y: np.ndarray, key: jax.Array,
                   where: str) -> _Survey:
    """Several processes: counts and class sums added, and the class samples gathered and cut to
    the SAMPLE_PER_CLASS lowest priorities of each class again: one process's sample exactly."""
    if len({tuple(s) for s in distributed.gather_rows(np.asarray([shape]))}) != 1:
        raise ValueError(f"{where}: expected the same image shape in every process, got {shape} here")
    classes = int(distributed.largest(np.asarray(len(seen))))
    seen = distributed.total(np.asarray(seen + [0] * (classes - len(seen)), np.int64))
    sums = distributed.total(np.stack(sums + [np.zeros(shape, np.float64)] * (classes - len(sums))))
    missing = [c for c, k in enumerate(seen) if k == 0]
    if classes < 2 or missing:
        raise ValueError(f"{where}: expected labels 0..C-1 with C >= 2 classes, each present; got {classes} classes, missing {missing}")
    sample_x, sample_y = _lowest(distributed.gather_rows(sample_x), distributed.gather_rows(sample_y), key, SAMPLE_PER_CLASS)
    means = (sums / seen.reshape((-1,) + (1,) * len(shape))).astype(np.float32)
    weights = _to_class_totals(sample_y, np.ones(sample_y.shape[0], np.float32), seen)
    return _Survey(int(distributed.total(np.asarray(count, np.int64))), tuple(shape), sample_x, sample_y, weights, means, sums, seen)


def _class_sample(y: np.ndarray, w: np.ndarray | None, per_class: int, key: jax.Array) -> tuple[np.ndarray, np.ndarray] | None:
    """A seeded sample of at most ``per_class`` rows of every class of labels y (N,): (indices
    (M,) ascending, weights (M,): each row's weight w times its class's total weight over the
    sample's), so the sample's weighted sums estimate the whole set's. None if it is every row."""
    counts = np.bincount(y)
    if counts.max() <= per_class:
        return None
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel())
    w = np.ones(y.shape[0], np.float32) if w is None else np.asarray(w, np.float32)
    chosen = []
    for c in range(counts.size):
        members = np.flatnonzero(y == c)
        chosen.append(members if members.size <= per_class else np.sort(rng.choice(members, per_class, replace=False)))
    indices = np.sort(np.concatenate(chosen))
    totals = np.bincount(y, weights=w.astype(np.float64), minlength=counts.size)
    return indices, _to_class_totals(y[indices], w[indices], totals)


def _sample_stream(x: np.ndarray, y: np.ndarray, w: np.ndarray, size_limit: int, mesh: Mesh) -> _Stream:
    """Batches of the moment sample x (M, ...), y (M,), w (M,), the same on every process: each
    process reads its block (``data.sharding.block``), whose statistics are summed across them."""
    rows = sharding.block(x.shape[0], jax.process_index(), jax.process_count())
    return _stream(x[rows], y[rows], size_limit, mesh, x.shape[0], "GlassBox.fit", x[rows].shape[0], x.shape[1:], w[rows])


def _weighted(pairs: Iterator[tuple[np.ndarray, np.ndarray]], weights: np.ndarray | None):
    """(images, labels, weights) batches: the pairs' rows with their slices of ``weights`` (N,), or ones."""
    start = 0
    for x, y in pairs:
        stop = start + x.shape[0]
        yield x, y, np.ones(x.shape[0], np.float32) if weights is None else weights[start:stop]
        start = stop


def _stream(x, y, size_limit: int, mesh: Mesh, n: int, where: str, n_local: int | None = None,
            image_shape: tuple = (), weights: np.ndarray | None = None) -> _Stream:
    """Batches of ``size`` rows; with several processes, n is the total and ``n_local`` this
    process's rows, and every process makes as many steps as the one with the most (its last
    batches empty: all padding, weight 0), since each step is one program across all of them."""
    size = parallel.padded_size(min(size_limit, n), mesh)
    if streaming.is_source(x):
        local = lambda: _weighted(streaming.rebatch(streaming.batches(x, where), size, where), None)  # noqa: E731
    else:
        local = lambda: _weighted(iter(streaming.ArraySource(x, y, size)), weights)  # noqa: E731
    if jax.process_count() == 1:
        return _Stream(local, size, -(-n // size), mesh)
    steps = -(-n_local // size)
    total = int(distributed.largest(np.asarray(steps)))
    empty = (np.zeros((0,) + tuple(image_shape), np.float32), np.zeros((0,), np.int32), np.zeros((0,), np.float32))
    return _Stream(lambda: itertools.chain(local(), itertools.repeat(empty, total - steps)), size, total, mesh)


def fit(
    config: GlassBoxConfig,
    x,
    y=None,
    *,
    key: jax.Array,
    class_names: Sequence[str] | None = None,
    mesh: Mesh | None = None,
    sample_weight=None,
) -> GlassBoxParams:
    """Fit the three layers on images x (N, H, W[, C]) and labels y (N,) in 0..C-1, or on a batch source.

    A batch source (``glassjax.streaming``: re-iterable, or a function returning an iterator,
    of (images, labels) batches) comes with y None and is read once per pass, never held in
    memory. Passes: (1) filters from class-wise patches / class means (a source: from a seeded
    sample of SAMPLE_PER_CLASS images per class and exact class means); (2) the orbit
    projection from the float64 moments of every orbit element's response; (3) the
    symmetry-adapted PCA (or LDA) of the representation from its float64 symmetric moments (or
    class statistics); (4) the classifier: ridge and LDA from streaming class statistics, the
    iterative kinds on the (N, K) features held in memory. Passes 2 and 3 read a seeded sample
    of at most SAMPLE_PER_CLASS images per class, weighted to estimate the whole set's moments
    (every image when no class has more); passes 1 (a source) and 4 read every image.
    Batches are sharded over ``mesh`` (default: every device, ``parallel.make_mesh()``).

    ``sample_weight`` (N,) >= 0 (arrays only; several processes: this process's rows) weighs every
    image in every statistic, scikit-learn's convention: integer weights fit the model of the rows
    repeated, weight 0 removes a row, with one exception: the patch filters' seeded sample of patch
    positions is drawn as if every image had weight 1 (a weight-0 image's patches are drawn, then
    weigh 0). The size-dependent defaults (``GlassBoxConfig.resolved``) see the total weight.
    """
    mesh = parallel.make_mesh() if mesh is None else mesh
    k_filters, k_classifier = jax.random.split(key)
    # Folded in, not split off: a three-way split would change the filter and classifier keys.
    k_pca = jax.random.fold_in(key, 2)
    k_sample = jax.random.fold_in(key, 3)
    if streaming.is_source(x):
        if y is not None:
            raise TypeError(f"GlassBox.fit: expected y=None with a batch source (its batches carry the labels), got {type(y).__name__}")
        if sample_weight is not None:
            raise ValueError("GlassBox.fit: sample_weight is for images in memory; a batch source cannot carry weights "
                             "(repeat or drop its rows instead, or load it as arrays)")
        survey = _survey(x, parallel.padded_size(config.batch_size, mesh), k_filters, "GlassBox.fit")
        n, image_shape, num_classes = survey.count, survey.image_shape, survey.class_means.shape[0]
        sample_x, sample_y, sample_w, weights = survey.sample_x, survey.sample_y, None, None
        n_local = len(x) if hasattr(x, "__len__") else None
    else:
        x = data.as_images(x, "GlassBox.fit images")
        # One process's block may hold a single class; the classes are checked on the gathered labels.
        y = data.as_labels(y, x.shape[0], "GlassBox.fit labels", min_classes=2 if jax.process_count() == 1 else 1)
        weights = None if sample_weight is None else arrays.as_weights(np.asarray(sample_weight), x.shape[0], "GlassBox.fit")
        n, image_shape, num_classes = x.shape[0], x.shape[1:], int(y.max()) + 1
        sample_x, sample_y, sample_w, n_local = x, y, weights, x.shape[0]
        if jax.process_count() > 1:
            # Each process holds its block of rows: the filters see every block, in process order
            # (``data.sharding``: the train split as one process would read it).
            sample_x, sample_y = distributed.gather_rows(x), distributed.gather_rows(y)
            sample_y = data.as_labels(sample_y, sample_x.shape[0], "GlassBox.fit labels")
            sample_w = None if weights is None else distributed.gather_rows(weights)
            n, num_classes = sample_x.shape[0], int(sample_y.max()) + 1
        if sample_w is not None:
            _check_class_weights(sample_w, sample_y, num_classes)
    if class_names is None:
        class_names = tuple(str(c) for c in range(num_classes))
    class_names = tuple(class_names)
    if len(class_names) < num_classes:
        raise ValueError(f"GlassBox.fit: expected {num_classes} class names, got {len(class_names)}")
    # The defaults and the component limits count images as the weights do (integer weights: repeats).
    n_fit = n if sample_w is None else max(int(round(float(np.sum(sample_w, dtype=np.float64)))), 2)
    config = config.resolved(image_shape, n_fit)
    group = groups.get(config.group)
    group.check_image((n,) + tuple(image_shape), "GlassBox.fit")
    if streaming.is_source(x) and jax.process_count() > 1 and n_local is None:
        n_local = sum(b[0].shape[0] for b in streaming.batches(x, "GlassBox.fit"))
    stream = _stream(x, y, config.batch_size, mesh, n, "GlassBox.fit", n_local, tuple(image_shape), weights)
    if streaming.is_source(x):
        sample = None if survey.sample_x.shape[0] == n else (survey.sample_x, survey.sample_y, survey.sample_w)
    else:
        picked = _class_sample(np.asarray(sample_y), sample_w, SAMPLE_PER_CLASS, k_sample)
        sample = None if picked is None else (sample_x[picked[0]], np.asarray(sample_y)[picked[0]], picked[1])
    moment_stream = stream if sample is None else _sample_stream(*sample, config.batch_size, mesh)

    patches = prototypes = None
    if config.filters in ("patch", "both"):
        per_class = min(config.filters_per_class, config.patch_size**2 * image_shape[2] - 1)
        patches = patch_filters(sample_x, sample_y, num_classes, size=config.patch_size, per_class=per_class, key=k_filters,
                                sample_weight=sample_w)
    if config.filters in ("prototype", "both"):
        if streaming.is_source(x):
            # Each class mean is its own one-image class: class_prototypes then only averages over G.
            prototypes = class_prototypes(survey.class_means, np.arange(num_classes), num_classes, group)
        else:
            prototypes = class_prototypes(sample_x, sample_y, num_classes, group, sample_weight=sample_w)
    banks = parallel.replicate(mesh, tuple(b for b in (patches, prototypes) if b is not None))
    static = dict(config=config, grids=tuple(g for b, g in ((patches, config.grid), (prototypes, 1)) if b is not None), mesh=mesh)
    probe = jnp.zeros((1,) + tuple(image_shape), jnp.float32)

    def row_dim(rows: str, params) -> int:
        return jax.eval_shape(functools.partial(_ROWS[rows], config, static["grids"]), params, probe).shape[-1]

    def stats_pass(rows: str, params, init, update, desc: str, layout=None):
        """One pass of float64 statistics over the moment sample: ``init()`` then ``update`` with every batch's rows."""
        with reduction.float64():
            state = parallel.replicate(mesh, init())
        return _accumulate(state, moment_stream, params, static, desc, rows=rows, update=update, layout=layout)

    def scatter_pass(rows: str, params, desc: str) -> reduction.ScatterStats:
        stats = parallel.replicate(mesh, reduction.scatter_init(row_dim(rows, params), num_classes))
        return _accumulate(stats, stream, params, static, desc, rows=rows, update=_scatter_update, wide=False)

    if mesh.devices.flat[0].platform == "cpu":
        # The widest statistics (|G| rows per image): BLAS's float64 rank-k update on the host.
        moments = _host_moments_pass(moment_stream, banks, static, "orbit", row_dim("orbit", banks), "fit: orbit")
    else:
        moments = stats_pass("orbit", banks, lambda: reduction.moments_init(row_dim("orbit", banks), reduction.stats_dtype()),
                             _moments_update, "fit: orbit")
    response_dim = moments.total.shape[0]
    proj_dim = min(max(config.pool_dim, config.orbit_dim), response_dim, n_fit * group.order - 1)
    with reduction.float64():
        key = k_pca if response_dim > RANDOMIZED_PCA_ABOVE else None
        projection = rep.fit_orbit_projection(moments, proj_dim, key=key)
    layout = _layout(config, group, row_dim("representation", (banks, projection)), proj_dim)
    if config.reduction == "lda":
        init = functools.partial(reduction.symmetric_scatter_init, layout, num_classes, reduction.stats_dtype())
        stats = stats_pass("representation", (banks, projection), init, _symmetric_scatter_update, "fit: LDA", layout)
        # With a group axis, each (class, element) pair is a class of the symmetrised statistics.
        classes = num_classes * (group.order if layout.channels else 1)
        k = min(config.components, classes - 1, layout.dim)
        with reduction.float64():
            reducer, blocks = reduction.fit_symmetric_lda(stats, layout, k, shrinkage=LDA_SHRINKAGE)
    else:
        init = functools.partial(reduction.symmetric_moments_init, layout, reduction.stats_dtype())
        stats = stats_pass("representation", (banks, projection), init, _symmetric_update, "fit: PCA", layout)
        k = min(config.components, layout.dim, n_fit - 1)
        with reduction.float64():
            reducer, blocks = reduction.fit_symmetric_pca(stats, layout, k, whiten=config.whiten, key=k_pca,
                                                          randomized_above=RANDOMIZED_PCA_ABOVE)

    params = (banks, projection, reducer)
    option = {} if config.regularization is None else {REGULARIZATION_OPTION[config.classifier]: config.regularization}
    if config.classifier in ("ridge", "lda"):
        stats = scatter_pass("features", params, "fit: classifier")
        fit_stats = classifiers.fit_ridge_stats if config.classifier == "ridge" else classifiers.fit_lda_classifier_stats
        clf = fit_stats(stats, **option)
    else:
        features, labels = [], []
        for xb, yb, _ in progress(stream.batches(), total=stream.total, desc="fit: features", unit="batch"):
            out = _rows_step(params, parallel.shard_batch(mesh, xb, size=stream.size)[0], **static)
            features.append(parallel.local_rows(out)[: xb.shape[0]])
            labels.append(yb)
        features, labels = distributed.gather_rows(np.concatenate(features)), distributed.gather_rows(np.concatenate(labels))
        if sample_w is not None:
            option["sample_weight"] = sample_w
        clf = classifiers.fit_classifier(config.classifier, features, labels, num_classes=num_classes, key=k_classifier, **option)
    params = GlassBoxParams(config, tuple(image_shape), class_names, patches, prototypes, projection, reducer, clf, blocks)
    if jax.process_count() > 1:  # arrays replicated over every process's devices -> this process's copy
        params = jax.tree.map(lambda a: np.asarray(a.addressable_data(0)) if isinstance(a, jax.Array) else a, params)
    return params

