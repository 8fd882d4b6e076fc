"""The FF-CNN of Kuo et al. (2019): LeNet-5's shape, every parameter from data statistics, no back-propagation.

  canvas      images zero-padded (or resized) to size x size: 28 -> 32 for MNIST, as LeNet-5
  stage i     Saab transform of k x k windows (DC + ac_kernels[i] AC kernels), bias and ReLU
              after the first stage (the ReLU is the identity on the training patches), then
              pool x pool max pooling. Default: 5x5, 1 + 5 = 6 and 1 + 15 = 16 channels.
  fc j        least-squares regressors. Their input is the flattened last stage, standardised
              (mean and std of the training features). k-means cuts the training features into
              clusters[j] clusters (120, then 84); a cluster's label is its majority class, and an
              image whose class is not its cluster's moves to the nearest centroid of a cluster of
              its own class. Targets are one-hot over clusters, W = pinv([1, X]) Y, then a ReLU.
  output      a last least-squares regressor onto the one-hot classes: the class scores.

Shapes (defaults, 28x28 MNIST): saab1 (N, 28, 28, 6), pool1 (N, 14, 14, 6), saab2 (N, 10, 10, 16),
pool2 (N, 5, 5, 16), fc1 (N, 120), fc2 (N, 84), fc3 (N, classes).
"""
from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from glassjax.systems.saab import geometry, passes
from glassjax.systems.saab import transform as st

__all__ = ["FFCNNConfig", "FFCNNParams", "fit", "features", "scores", "least_squares", "pseudo_labels",
           "parameter_count"]

_HIGHEST = jax.lax.Precision.HIGHEST


@dataclasses.dataclass(frozen=True)
class FFCNNConfig:
    """How the FF-CNN is fitted.

    size            side of the input canvas (32: LeNet-5 on 28x28 MNIST padded by 2)
    input           pad (zero-pad each image around its centre to size) or resize (bilinear)
    kernel_size     k of the k x k Saab windows of every stage
    ac_kernels      AC kernels of each Saab stage (the DC kernel comes on top)
    pool            max pooling after each stage
    clusters        k-means clusters (pseudo-classes) of each least-squares fc layer before the output
    kmeans_samples  fit k-means on at most this many training images (a seeded subsample), None: all
    kmeans_init     k-means restarts (scikit-learn's n_init)
    batch_size      images per batch in every pass
    """

    size: int = 32
    input: str = "pad"
    kernel_size: int = 5
    ac_kernels: tuple[int, ...] = (5, 15)
    pool: int = 2
    clusters: tuple[int, ...] = (120, 84)
    kmeans_samples: int | None = None
    kmeans_init: int = 3
    batch_size: int = 256

    def validated(self) -> "FFCNNConfig":
        """The config with its values checked (one-line ValueError naming the field otherwise)."""
        where = "saab_ff"
        for name in ("size", "kernel_size", "pool", "kmeans_init", "batch_size"):
            passes.check_positive_int(where, name, getattr(self, name))
        if self.input not in geometry.INPUTS:
            raise ValueError(f"{where}: expected input one of {', '.join(geometry.INPUTS)}, got {self.input!r}")
        config = dataclasses.replace(self, ac_kernels=passes.check_int_tuple(where, "ac_kernels", self.ac_kernels, 0),
                                     clusters=passes.check_int_tuple(where, "clusters", self.clusters, 2))
        if self.kmeans_samples is not None:
            passes.check_positive_int(where, "kmeans_samples", self.kmeans_samples, 2)
        side = self.size
        for i in range(len(config.ac_kernels)):
            side = geometry.out_size(side, self.kernel_size)
            if side < 1:
                raise ValueError(f"{where}: a {self.size}x{self.size} canvas leaves no {self.kernel_size}x"
                                 f"{self.kernel_size} window at stage {i + 1}; use fewer stages or a larger size")
            side //= self.pool
            if side < 1:
                raise ValueError(f"{where}: stage {i + 1}'s map is smaller than the {self.pool}x{self.pool} pooling; "
                                 f"use fewer stages, a smaller pool or a larger size")
        dims = [self.kernel_size**2] + [self.kernel_size**2 * (1 + ac) for ac in config.ac_kernels[:-1]]
        for i, (ac, dim) in enumerate(zip(config.ac_kernels, dims)):
            # Stage 1's dimension grows with the image channels; the check for it is at fit time.
            if i > 0 and ac > dim - 1:
                raise ValueError(f"{where}: stage {i + 1} has {dim}-dimensional windows, so at most {dim - 1} AC "
                                 f"kernels, got ac_kernels[{i}] = {ac}")
        return config


class FFCNNParams(eqx.Module):
    """A fitted FF-CNN: Saab stages, the fc input's standardisation, fc weights (1 + d_in, d_out) with the
    bias as row 0, and each fc layer's k-means purity (the share of training images whose class is their
    cluster's majority class); its config and class names (static, so one compile serves every fit)."""

    config: FFCNNConfig = eqx.field(static=True)
    class_names: tuple[str, ...] = eqx.field(static=True)
    stages: tuple[st.Saab, ...]
    loc: jax.Array
    inv_scale: jax.Array
    fc: tuple[jax.Array, ...]
    kmeans_purity: jax.Array


# ----------------------------------------------------------------------------- forward


def _stage(saab: st.Saab, x: jax.Array, index: int, config: FFCNNConfig) -> jax.Array:
    r = st.layer(saab, x, config.kernel_size)
    return r if index == 0 else jax.nn.relu(r)


def _with_ones(f: jax.Array) -> jax.Array:
    return jnp.concatenate([jnp.ones(f.shape[:1] + (1,), f.dtype), f], axis=1)


def _dense(w: jax.Array, f: jax.Array) -> jax.Array:
    return jnp.matmul(_with_ones(f), w, precision=_HIGHEST)


def _standardise(params: FFCNNParams, f: jax.Array) -> jax.Array:
    return (f - params.loc[None, :]) * params.inv_scale[None, :]


def conv_features(stages: tuple[st.Saab, ...], config: FFCNNConfig, x: jax.Array) -> dict[str, jax.Array]:
    """saab1, pool1, saab2, pool2, ... of images x (N, H, W, C) in [0, 1]."""
    h = geometry.canvas(x, config.size, config.input)
    out = {}
    for i, saab in enumerate(stages):
        r = _stage(saab, h, i, config)
        h = geometry.max_pool(r, config.pool)
        out[f"saab{i + 1}"], out[f"pool{i + 1}"] = r, h
    return out


def features(params: FFCNNParams, x: jax.Array) -> dict[str, jax.Array]:
    """Every layer in depth order: saab1, pool1, saab2, pool2 (spatial), fc1, fc2, fc3 (vectors; fc3 the scores)."""
    out = conv_features(params.stages, params.config, x)
    f = _standardise(params, out[f"pool{len(params.stages)}"].reshape(x.shape[0], -1))
    for j, w in enumerate(params.fc):
        f = _dense(w, f)
        if j < len(params.fc) - 1:
            f = jax.nn.relu(f)
        out[f"fc{j + 1}"] = f
    return out


def scores(params: FFCNNParams, x: jax.Array) -> jax.Array:
    """Class scores (N, classes): the last least-squares regressor's outputs."""
    return features(params, x)[f"fc{len(params.fc)}"]


# ----------------------------------------------------------------------------- least squares and k-means


@jax.jit
def least_squares(f: jax.Array, targets: jax.Array) -> jax.Array:
    """W (1 + D, T) = pinv([1, f]) targets: the least-squares regressor of targets (N, T) on f (N, D) with a bias row."""
    a = _with_ones(f)
    return jnp.matmul(jnp.linalg.pinv(a), targets, precision=_HIGHEST)


def pseudo_labels(f: np.ndarray, y: np.ndarray, n_clusters: int, num_classes: int, *, seed: int,
                  samples: int | None = None, n_init: int = 3) -> tuple[np.ndarray, float]:
    """(labels (N,) in 0..n_clusters-1, purity): k-means clusters of f (N, D), each image moved to the nearest
    centroid of a cluster of its own class when its cluster's majority class is another one.

    purity is the share of images whose class is their k-means cluster's majority class (before moving).
    """
    from sklearn.cluster import KMeans

    n = f.shape[0]
    if n < n_clusters:
        raise ValueError(f"saab_ff: expected at least {n_clusters} training images for {n_clusters} k-means clusters, "
                         f"got {n}")
    rng = np.random.default_rng(seed)
    fit_rows = f if samples is None or samples >= n else f[np.sort(rng.choice(n, samples, replace=False))]
    kmeans = KMeans(n_clusters=n_clusters, n_init=n_init, random_state=int(rng.integers(2**31 - 1))).fit(fit_rows)
    assigned = kmeans.predict(f)
    counts = np.zeros((n_clusters, num_classes), np.int64)
    np.add.at(counts, (assigned, y), 1)
    majority = np.argmax(counts, axis=1)
    purity = float(np.mean(majority[assigned] == y))
    centroids = kmeans.cluster_centers_
    labels = assigned.copy()
    for i in np.flatnonzero(majority[assigned] != y):
        own = np.flatnonzero(majority == y[i])
        if own.size:  # a class that is no cluster's majority keeps its k-means cluster
            labels[i] = own[np.argmin(np.sum((centroids[own] - f[i]) ** 2, axis=1))]
    return labels, purity


# ----------------------------------------------------------------------------- fit


@jax.jit(static_argnames=("index", "config"))
def _stage_output(saab: st.Saab, x: jax.Array, *, index: int, config: FFCNNConfig) -> jax.Array:
    return geometry.max_pool(_stage(saab, x, index, config), config.pool)


@jax.jit(static_argnames=("size", "mode"))
def _canvas(x: jax.Array, *, size: int, mode: str) -> jax.Array:
    return geometry.canvas(x, size, mode)


def fit_stages(config: FFCNNConfig, x: np.ndarray, *, desc: str = "saab_ff") -> tuple[list[st.Saab], np.ndarray]:
    """The Saab stages fitted one after another on images x (N, H, W, C), and the last stage's pooled output."""
    k, batch = config.kernel_size, config.batch_size
    h = passes.map_images(lambda b: _canvas(b, size=config.size, mode=config.input), x, batch)
    stages = []
    for i, ac in enumerate(config.ac_kernels):
        dim = k * k * h.shape[-1]
        if ac > dim - 1:
            raise ValueError(f"saab_ff: stage {i + 1} has {dim}-dimensional windows, so at most {dim - 1} AC kernels, "
                             f"got ac_kernels[{i}] = {ac}")
        saab = st.fit(passes.layer_stats(h, k, batch, desc=f"{desc} stage {i + 1} statistics"), 1 + ac)
        if i > 0:
            saab = st.with_bias(saab, passes.layer_bias(saab, h, k, batch, desc=f"{desc} stage {i + 1} bias"))
        stages.append(saab)
        h = passes.map_images(lambda b, s=saab, i=i: _stage_output(s, b, index=i, config=config), h, batch)
    return stages, h


def fit(config: FFCNNConfig, dataset, *, key: jax.Array, mesh=None) -> FFCNNParams:
    """The FF-CNN fitted on ``dataset``'s train split in one forward pass per layer (``mesh`` is not used)."""
    del mesh  # the fc layers need the whole train split in memory (k-means, pinv); one device does it
    config = config.validated()
    x = np.asarray(dataset.x_train, np.float32)
    y = np.asarray(dataset.y_train, np.int32)
    geometry.check_canvas("saab_ff", x.shape, config.size, config.input)
    num_classes = len(dataset.class_names)
    seeds = np.asarray(jax.random.randint(key, (len(config.clusters),), 0, 2**31 - 1))
    stages, pooled = fit_stages(config, x)
    f = pooled.reshape(x.shape[0], -1)
    loc = f.mean(axis=0)
    std = f.std(axis=0)
    # A feature that never varies on the training set is left at 0 rather than divided by 0.
    inv_scale = np.where(std > 0, 1.0 / np.where(std > 0, std, 1.0), 0.0).astype(np.float32)
    f = jnp.asarray((f - loc) * inv_scale)
    fc, purities = [], []
    for j, n_clusters in enumerate(config.clusters):
        labels, purity = pseudo_labels(np.asarray(f), y, n_clusters, num_classes, seed=int(seeds[j]),
                                       samples=config.kmeans_samples, n_init=config.kmeans_init)
        w = least_squares(f, jax.nn.one_hot(jnp.asarray(labels), n_clusters, dtype=jnp.float32))
        f = jax.nn.relu(_dense(w, f))
        fc.append(w)
        purities.append(purity)
    fc.append(least_squares(f, jax.nn.one_hot(jnp.asarray(y), num_classes, dtype=jnp.float32)))
    return FFCNNParams(config, tuple(dataset.class_names), tuple(stages), jnp.asarray(loc), jnp.asarray(inv_scale),
                       tuple(fc), jnp.asarray(purities, jnp.float32))


def parameter_count(params: FFCNNParams) -> int:
    """Numbers the forward pass uses: Saab kernels, means, biases; the standardisation; the fc weights."""
    return (sum(st.parameter_count(s) for s in params.stages) + 2 * int(params.loc.shape[0])
            + sum(int(np.prod(w.shape)) for w in params.fc))
