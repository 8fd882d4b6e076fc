"""PixelHop++ (Chen, Rouhsedaghat, You, Rao & Kuo, ICIP 2020): channel-wise Saab hops grown as a tree
by energy, leaf features ranked by cross-entropy, a classifier on the selected ones.

  hop 1     a Saab transform of k x k x C windows of the canvas: one node per kernel, its energy
            the kernel's share of the patches' variance (DC first); no bias, no ReLU
  hop h>1   channel-wise: each node of hop h - 1 that grows (see TH1) gets its own Saab transform
            of the k x k windows of its own (pooled) response map; a child's energy is its
            parent's energy times its share of the parent's patch variance; bias max ||x - mu||
            per parent, so the ReLU after it is the identity on the training patches
  nodes     energy > TH1: intermediate, grows another hop (not at the last hop);
            TH2 <= energy <= TH1 (or > TH1 at the last hop): leaf, its responses are features;
            energy < TH2: discarded, its kernel is never stored nor computed
  pooling   pools[h] x pools[h] max pooling after hop h (default 2, 2, 1 on a 32x32 canvas:
            28 -> 14, 10 -> 5, 1)
  selection every leaf response at every pooled position is a candidate feature; each is cut into
            ``bins`` equal-width bins over its training range and ranked by the cross-entropy
            H(class | bin) = sum_b (n_b / N) H(p(class | b)) (nats; lower: more discriminant);
            the ``features`` lowest are kept
  classifier ``glassjax.core.classifiers`` (logistic by default; the paper uses XGBoost, which
            glassjax does not depend on)

Each hop is stored with its kept kernels only: mean (P, D) and bias (P,) per parent map,
kernels (M, D), parent (M,) and slot (M,) (the kernel's rank within its parent's Saab, DC = 0),
energy (M,), and the kept nodes that grow (grow) or are leaves (leaf) as indices into M.
"""
from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from glassjax.core import classifiers
from glassjax.systems.saab import geometry, passes
from glassjax.systems.saab import transform as st

__all__ = ["PixelHopConfig", "PixelHopParams", "Hop", "fit", "features", "scores", "cross_entropy",
           "parameter_count", "REGULARIZATION_OPTION"]

_HIGHEST = jax.lax.Precision.HIGHEST
REGULARIZATION_OPTION = {"ridge": "alpha", "lda": "shrinkage", "logistic": "l2", "svm": "l2", "mlp": "l2"}


@dataclasses.dataclass(frozen=True)
class PixelHopConfig:
    """How PixelHop++ is fitted.

    size            side of the input canvas (32: 28x28 MNIST padded by 2)
    input           pad (zero-pad each image around its centre to size) or resize (bilinear)
    kernel_size     k of every hop's k x k neighbourhood
    pools           max pooling after each hop; its length is the number of hops
    th1             energy above which a node grows another hop (the paper's TH1)
    th2             energy below which a node is discarded (TH2 <= TH1)
    bins            equal-width bins of each feature for its cross-entropy
    features        leaf features kept by cross-entropy (fewer if there are fewer)
    classifier      one of glassjax.core.classifiers.KINDS
    regularization  the classifier's penalty (ridge alpha, LDA shrinkage, logistic/SVM/MLP l2); None: its default
    batch_size      images per batch in every pass
    """

    size: int = 32
    input: str = "pad"
    kernel_size: int = 5
    pools: tuple[int, ...] = (2, 2, 1)
    th1: float = 0.005
    th2: float = 0.001
    bins: int = 32
    features: int = 1000
    classifier: str = "logistic"
    regularization: float | None = None
    batch_size: int = 256

    def validated(self) -> "PixelHopConfig":
        """The config with its values checked (one-line ValueError naming the field otherwise)."""
        where = "pixelhop"
        for name in ("size", "kernel_size", "features", "batch_size"):
            passes.check_positive_int(where, name, getattr(self, name))
        passes.check_positive_int(where, "bins", self.bins, 2)
        config = dataclasses.replace(self, pools=passes.check_int_tuple(where, "pools", self.pools))
        if self.input not in geometry.INPUTS:
            raise ValueError(f"{where}: expected input one of {', '.join(geometry.INPUTS)}, got {self.input!r}")
        for name in ("th1", "th2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ValueError(f"{where}: expected {name} a float in [0, 1), got {value!r}")
        if self.th2 > self.th1:
            raise ValueError(f"{where}: expected th2 <= th1 (discarded below th2, grown above th1), "
                             f"got th1={self.th1}, th2={self.th2}")
        if self.classifier not in classifiers.KINDS:
            raise ValueError(f"{where}: expected classifier one of {', '.join(classifiers.KINDS)}, "
                             f"got {self.classifier!r}")
        if self.regularization is not None and (isinstance(self.regularization, bool)
                                                or not isinstance(self.regularization, (int, float))
                                                or not self.regularization >= 0):
            raise ValueError(f"{where}: expected regularization >= 0 or None, got {self.regularization!r}")
        side = self.size
        for i, pool in enumerate(config.pools):
            side = geometry.out_size(side, self.kernel_size)
            if side < 1:
                raise ValueError(f"{where}: a {self.size}x{self.size} canvas leaves no {self.kernel_size}x"
                                 f"{self.kernel_size} neighbourhood at hop {i + 1}; use fewer pools or a larger size")
            side //= pool
            if side < 1:
                raise ValueError(f"{where}: hop {i + 1}'s {side * pool}x{side * pool} map is smaller than its "
                                 f"{pool}x{pool} pooling")
        return config


class Hop(NamedTuple):
    """One hop's kept nodes. mean (P, D), bias (P,) per parent map; kernels (M, D), parent (M,), slot (M,),
    energy (M,) per kept node; grow (G,), leaf (L,) indices into the kept nodes."""

    mean: jax.Array
    bias: jax.Array
    kernels: jax.Array
    parent: jax.Array
    slot: jax.Array
    energy: jax.Array
    grow: jax.Array
    leaf: jax.Array


class PixelHopParams(eqx.Module):
    """Fitted PixelHop++: hops, the selected leaf features (indices into the concatenated flattened
    leaf maps of every hop) and their cross-entropies, the classifier; config, class names and the number of
    candidate features static (they follow from the hops' shapes, so they cost no extra compile)."""

    config: PixelHopConfig = eqx.field(static=True)
    class_names: tuple[str, ...] = eqx.field(static=True)
    hops: tuple[Hop, ...]
    selected: jax.Array
    selected_entropy: jax.Array
    classifier: Any
    candidates: int = eqx.field(static=True, default=0)


# ----------------------------------------------------------------------------- forward


def _responses(hop: Hop, x: jax.Array, index: int, size: int) -> jax.Array:
    """Kept nodes' responses (N, h, w, M) of one hop on its input x (N, H, W, C) (hop 1) or (N, H, W, P)."""
    parents, dim = hop.mean.shape
    if index == 0:
        p = geometry.patches(x, size)[..., None, :]  # (N, h, w, 1, D): one parent, all channels
    else:
        p = geometry.channel_patches(x, size)  # (N, h, w, P, D)
    p = p - hop.mean.reshape((1, 1, 1) + hop.mean.shape)
    # Every kept kernel in a dense (P, D, D) stack (zeros elsewhere): one contraction, then the kept columns.
    dense = jnp.zeros((parents, dim, dim), hop.kernels.dtype).at[hop.parent, hop.slot].set(hop.kernels)
    y = jnp.einsum("nhwpd,pkd->nhwpk", p, dense, precision=_HIGHEST).reshape(p.shape[:3] + (parents * dim,))
    y = jnp.take(y, hop.parent * dim + hop.slot, axis=3) + hop.bias[hop.parent].reshape(1, 1, 1, -1)
    return y if index == 0 else jax.nn.relu(y)


def _hop_output(hop: Hop, x: jax.Array, index: int, config: PixelHopConfig) -> jax.Array:
    return geometry.max_pool(_responses(hop, x, index, config.kernel_size), config.pools[index])


def hop_features(hops: tuple[Hop, ...], config: PixelHopConfig, x: jax.Array) -> dict[str, jax.Array]:
    """hop1, hop2, ...: every kept node's pooled responses (N, h, w, M) of images x (N, H, W, C)."""
    h = geometry.canvas(x, config.size, config.input)
    out = {}
    for i, hop in enumerate(hops):
        y = _hop_output(hop, h, i, config)
        out[f"hop{i + 1}"] = y
        h = jnp.take(y, hop.grow, axis=3)
    return out


def leaf_features(hops: tuple[Hop, ...], maps: dict[str, jax.Array]) -> jax.Array:
    """Every candidate feature (N, F): each hop's leaf maps flattened (h, w, leaf order), hops concatenated."""
    parts = [jnp.take(maps[f"hop{i + 1}"], hop.leaf, axis=3) for i, hop in enumerate(hops)]
    return jnp.concatenate([p.reshape(p.shape[0], -1) for p in parts], axis=1)


def features(params: PixelHopParams, x: jax.Array) -> dict[str, jax.Array]:
    """hop1..hopH (spatial, every kept node), selected (N, F) the cross-entropy-selected leaf features, scores."""
    out = hop_features(params.hops, params.config, x)
    out["selected"] = jnp.take(leaf_features(params.hops, out), params.selected, axis=1)
    out["scores"] = classifiers.predict_scores(params.classifier, out["selected"])
    return out


def scores(params: PixelHopParams, x: jax.Array) -> jax.Array:
    """Class scores (N, classes) of the classifier on the selected features."""
    maps = hop_features(params.hops, params.config, x)
    selected = jnp.take(leaf_features(params.hops, maps), params.selected, axis=1)
    return classifiers.predict_scores(params.classifier, selected)


# ----------------------------------------------------------------------------- cross-entropy


@jax.jit(static_argnames=("num_classes", "bins"))
def _cross_entropy(v: jax.Array, y: jax.Array, *, num_classes: int, bins: int) -> jax.Array:
    n, f = v.shape
    lo, hi = jnp.min(v, axis=0), jnp.max(v, axis=0)
    width = jnp.where(hi > lo, hi - lo, jnp.ones_like(hi))
    b = jnp.clip(jnp.floor((v - lo[None, :]) / width[None, :] * bins).astype(jnp.int32), 0, bins - 1)
    cell = (jnp.arange(f, dtype=jnp.int32)[None, :] * bins + b) * num_classes + y[:, None]
    counts = jnp.zeros((f * bins * num_classes,), v.dtype).at[cell.reshape(-1)].add(1).reshape(f, bins, num_classes)
    per_bin = jnp.sum(counts, axis=2, keepdims=True)
    p = counts / jnp.where(per_bin > 0, per_bin, jnp.ones_like(per_bin))
    plogp = jnp.where(counts > 0, p * jnp.log(jnp.where(counts > 0, p, jnp.ones_like(p))), jnp.zeros_like(p))
    return -jnp.sum(per_bin[..., 0] * jnp.sum(plogp, axis=2), axis=1) / n


def cross_entropy(v: Any, y: Any, *, num_classes: int, bins: int = 32, chunk: int = 512) -> np.ndarray:
    """(F,) H(class | bin) in nats of each column of v (N, F): ``bins`` equal-width bins over the column's range."""
    v = np.asarray(v, np.float32)
    y = jnp.asarray(np.asarray(y, np.int32))
    if v.ndim != 2 or v.shape[0] != y.shape[0]:
        raise ValueError(f"cross_entropy: expected v (N, F) with N = {y.shape[0]} labels, got shape {v.shape}")
    out = [np.asarray(_cross_entropy(jnp.asarray(v[:, s : s + chunk]), y, num_classes=num_classes, bins=bins))
           for s in range(0, v.shape[1], chunk)]
    return np.concatenate(out) if out else np.zeros((0,), np.float32)


# ----------------------------------------------------------------------------- fit


@jax.jit(static_argnames=("index", "config"))
def _hop_step(hop: Hop, x: jax.Array, *, index: int, config: PixelHopConfig) -> jax.Array:
    return _hop_output(hop, x, index, config)


@jax.jit(static_argnames=("size", "mode"))
def _canvas(x: jax.Array, *, size: int, mode: str) -> jax.Array:
    return geometry.canvas(x, size, mode)


@jax.jit(static_argnames=("k",))
def _fit_stacked(stats, *, k: int) -> st.Saab:
    return jax.vmap(lambda m: st.fit(m, k))(stats)


def _index(a) -> jax.Array:
    return jnp.asarray(np.asarray(a, np.int32).reshape(-1))


def fit_hops(config: PixelHopConfig, x: np.ndarray) -> tuple[list[Hop], dict[str, np.ndarray]]:
    """The hops grown on images x (N, H, W, C), and every hop's pooled kept-node maps on x (numpy)."""
    k, batch = config.kernel_size, config.batch_size
    h = passes.map_images(lambda b: _canvas(b, size=config.size, mode=config.input), x, batch)
    parent_energy = np.ones((1,), np.float32)
    hops, maps = [], {}
    for i in range(len(config.pools)):
        desc = f"pixelhop hop {i + 1}"
        if i == 0:
            stats = jax.tree.map(lambda a: a[None], passes.layer_stats(h, k, batch, desc=desc + " statistics"))
        else:
            stats = passes.channel_stats(h, k, batch, desc=desc + " statistics")
        dim = int(stats.total.shape[-1])
        saab = _fit_stacked(stats, k=dim)  # every kernel of every parent: (P, D, D)
        if i > 0:
            saab = saab._replace(bias=passes.channel_bias(saab, h, k, batch, desc=desc + " bias"))
        energy = parent_energy[:, None] * np.asarray(saab.energy)  # (P, D)
        parent, slot = np.nonzero(energy >= config.th2)  # parent-major, each parent's kernels in energy order
        kept_energy = energy[parent, slot]
        last = i == len(config.pools) - 1
        grows = (kept_energy > config.th1) & (not last)
        hop = Hop(saab.mean, saab.bias, jnp.asarray(np.asarray(saab.kernels)[parent, slot]), _index(parent),
                  _index(slot), jnp.asarray(kept_energy, jnp.float32), _index(np.flatnonzero(grows)),
                  _index(np.flatnonzero(~grows)))
        hops.append(hop)
        out = passes.map_images(lambda b, hop=hop, i=i: _hop_step(hop, b, index=i, config=config), h, batch)
        maps[f"hop{i + 1}"] = out
        if not grows.any():
            break  # nothing left to grow: fewer hops than pools
        h = out[..., np.flatnonzero(grows)]
        parent_energy = kept_energy[grows].astype(np.float32)
    return hops, maps


def fit(config: PixelHopConfig, dataset, *, key: jax.Array, mesh=None) -> PixelHopParams:
    """PixelHop++ fitted on ``dataset``'s train split: hops, cross-entropy selection, classifier (``mesh`` unused)."""
    del mesh  # feature selection and the classifier work on the whole train split in memory; one device
    config = config.validated()
    x = np.asarray(dataset.x_train, np.float32)
    y = np.asarray(dataset.y_train, np.int32)
    geometry.check_canvas("pixelhop", x.shape, config.size, config.input)
    num_classes = len(dataset.class_names)
    hops, maps = fit_hops(config, x)
    candidates = np.asarray(leaf_features(tuple(hops), {name: jnp.asarray(m) for name, m in maps.items()}))
    ce = cross_entropy(candidates, y, num_classes=num_classes, bins=config.bins)
    order = np.argsort(ce, kind="stable")[: config.features]
    selected = np.sort(order)
    option = {} if config.regularization is None else {REGULARIZATION_OPTION[config.classifier]: config.regularization}
    classifier = classifiers.fit_classifier(config.classifier, jnp.asarray(candidates[:, selected]), jnp.asarray(y),
                                            num_classes=num_classes, key=key, **option)
    return PixelHopParams(config, tuple(dataset.class_names), tuple(hops), _index(selected),
                          jnp.asarray(ce[selected], jnp.float32), classifier, int(candidates.shape[1]))


def saab_parameter_count(params: PixelHopParams) -> int:
    """Numbers the hops use: kept kernels (M x D), each parent's mean (D) and bias."""
    return sum(int(np.prod(h.kernels.shape)) + int(np.prod(h.mean.shape)) + int(h.bias.shape[0]) for h in params.hops)


def parameter_count(params: PixelHopParams) -> int:
    """The hops' numbers plus the classifier's (weights, biases, standardisation)."""
    return saab_parameter_count(params) + sum(int(np.prod(np.shape(a))) for a in jax.tree.leaves(params.classifier))
